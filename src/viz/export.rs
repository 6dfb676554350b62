//! What `convscope export` and the viewer's `e` write, composed here (pure) and only written
//! by them: filter and feature-map sheets, the training curves, the metrics CSV and the model
//! summary, each with its file name.
//!
//! One naming scheme, in two folders ([`Naming`]): `convscope export --out DIR` fills a folder
//! of its own, so its names leave the epoch out (`filters_conv2d.png`,
//! `features_cat_conv2d.png`, `curves.png`, `metrics.csv`); the viewer collects every export
//! of a run in one `export/` folder, so its names carry the epoch
//! (`filters-conv2d-epoch-0007.png`, `training-epoch-0007-curves.png`). Every name part comes
//! through [`sanitise`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::colormap::Rgb;
use super::norm::Standardised;
use super::plot::{self, Plot, Series};
use super::raster::Raster;
use super::sheets::{self, Source};
use crate::config::{ColormapName, FilterNorm};
use crate::events::{EpochMetrics, Event, LayerFilters, SummaryRow};

/// Size of each of the two panels (loss, accuracy) of the curves picture.
pub const CURVE_PANEL: (usize, usize) = (480, 320);
/// Header of the metrics CSV.
pub const CSV_HEADER: &str =
    "epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds,images_per_sec";

/// Training blue and validation orange, as matplotlib draws a first and second line, and as
/// the TUI's charts (cyan and yellow).
pub const TRAIN: Rgb = [31, 119, 180];
pub const VAL: Rgb = [255, 127, 14];

/// What an exported file holds.
#[derive(Debug, Clone)]
pub enum Content {
    /// A picture, written as PNG.
    Picture(Raster),
    /// Text (CSV, a table), written as is.
    Text(String),
}

/// One exported file: its name in the export folder and what it holds.
#[derive(Debug, Clone)]
pub struct ExportFile {
    pub name: String,
    pub content: Content,
}

impl ExportFile {
    fn picture(name: String, raster: Raster) -> Self {
        Self {
            name,
            content: Content::Picture(raster),
        }
    }

    fn text(name: String, text: String) -> Self {
        Self {
            name,
            content: Content::Text(text),
        }
    }
}

/// Which folder the files go to, and so how they are named (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// A folder of its own for this export (`convscope export --out DIR`).
    Folder,
    /// The run's `export/` folder, shared by every export of the run (the viewer's `e`).
    Run,
}

/// A name part safe in a file name: letters, digits, `-`, `_` and `.` kept, the rest `_`.
#[must_use]
pub fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An image's file stem as a name part (`fallback` when it has none).
#[must_use]
pub fn image_stem(image: &Path, fallback: &str) -> String {
    sanitise(
        &image
            .file_stem()
            .map_or_else(|| fallback.into(), |s| s.to_string_lossy().into_owned()),
    )
}

/// An image's file name, for titles.
#[must_use]
pub fn image_name(image: &Path) -> String {
    image.file_name().map_or_else(
        || image.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// A run's name in titles: its folder's name.
#[must_use]
pub fn run_name(run: &Path) -> String {
    run.file_name().map_or_else(
        || run.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// How the pictures are drawn.
#[derive(Debug, Clone)]
pub struct Style {
    pub colormap: ColormapName,
    pub filter_norm: FilterNorm,
    /// The run and checkpoint named in every picture's header.
    pub source: Source,
}

/// Which pictures of a conv layer's filters to make: the sheet of all of them, always.
#[derive(Debug, Clone, Copy, Default)]
pub struct FilterParts {
    /// One filter enlarged, by index.
    pub one: Option<usize>,
    /// The filters as colour patches, when the layer reads RGB.
    pub rgb: bool,
}

/// A conv layer's filters at `epoch`: the sheet, then what `parts` asks for.
#[must_use]
pub fn filters(
    layer: &LayerFilters,
    epoch: usize,
    parts: FilterParts,
    style: &Style,
    naming: Naming,
) -> Vec<ExportFile> {
    let shape = [
        layer.out_channels,
        layer.in_channels,
        layer.kernel[0],
        layer.kernel[1],
    ];
    let (w, name, (map, norm)) = (
        &layer.weights,
        &layer.name,
        (style.colormap, style.filter_norm),
    );
    let stem = match naming {
        Naming::Folder => format!("filters_{}", sanitise(name)),
        Naming::Run => format!("filters-{}-epoch-{epoch:04}", sanitise(name)),
    };
    let mut out = vec![ExportFile::picture(
        format!("{stem}.png"),
        sheets::filters(w, shape, map, norm, name, &style.source),
    )];
    if let Some(i) = parts.one {
        let suffix = match naming {
            Naming::Folder => format!("_filter_{}", i + 1),
            Naming::Run => format!("-filter-{}", i + 1),
        };
        out.push(ExportFile::picture(
            format!("{stem}{suffix}.png"),
            sheets::filter(w, shape, i, map, norm, name, &style.source),
        ));
    }
    if parts.rgb
        && let Some(rgb) = sheets::filters_rgb(w, shape, norm, name, &style.source)
    {
        let suffix = match naming {
            Naming::Folder => "_rgb",
            Naming::Run => "-rgb",
        };
        out.push(ExportFile::picture(format!("{stem}{suffix}.png"), rgb));
    }
    out
}

/// One layer's feature maps for one probe image, standardised (see
/// [`super::pictures::feature_levels`]).
#[derive(Debug, Clone, Copy)]
pub struct FeatureMaps<'a> {
    pub layer: &'a str,
    pub levels: &'a [Standardised],
    pub height: usize,
    pub width: usize,
    /// The probe image.
    pub image: &'a Path,
    /// Its name part in file names (unique among the images of one export).
    pub stem: &'a str,
    /// What the network made of it, e.g. `cat (0.973)`.
    pub prediction: &'a str,
    pub epoch: usize,
}

/// Which pictures of a layer's feature maps to make: the sheet of all channels, always.
#[derive(Debug, Clone, Copy, Default)]
pub struct FeatureParts<'a> {
    /// One channel enlarged, by index.
    pub channel: Option<usize>,
    /// The probe as the network sees it: `[channels, h, w]` values 0..1 and their shape.
    pub input: Option<(&'a [f32], [usize; 3])>,
}

/// A layer's feature maps: the sheet, then what `parts` asks for.
#[must_use]
pub fn feature_maps(
    maps: &FeatureMaps,
    parts: FeatureParts,
    style: &Style,
    naming: Naming,
) -> Vec<ExportFile> {
    let (h, w, map) = (maps.height, maps.width, style.colormap);
    let title = image_name(maps.image);
    let layer = sanitise(maps.layer);
    let stem = match naming {
        Naming::Folder => format!("features_{}_{layer}", maps.stem),
        Naming::Run => format!("features-{}-{layer}-epoch-{:04}", maps.stem, maps.epoch),
    };
    let sep = match naming {
        Naming::Folder => '_',
        Naming::Run => '-',
    };
    let mut out = vec![ExportFile::picture(
        format!("{stem}.png"),
        sheets::feature_maps(
            maps.levels,
            h,
            w,
            map,
            maps.layer,
            &title,
            maps.prediction,
            &style.source,
        ),
    )];
    if let Some(c) = parts.channel
        && let Some(level) = maps.levels.get(c)
    {
        out.push(ExportFile::picture(
            format!("{stem}{sep}channel{sep}{}.png", c + 1),
            sheets::feature_map(
                level,
                h,
                w,
                map,
                (c, maps.levels.len()),
                maps.layer,
                &title,
                &style.source,
            ),
        ));
    }
    if let Some((input, shape)) = parts.input {
        out.push(ExportFile::picture(
            format!("{stem}{sep}input.png"),
            sheets::probe(input, shape, &title, maps.prediction, &style.source),
        ));
    }
    out
}

/// Two probe images compared in one layer (`convscope export --compare`).
#[derive(Debug, Clone, Copy)]
pub struct Compared<'a> {
    pub layer: &'a str,
    pub compared: &'a super::compare::Layer,
    pub height: usize,
    pub width: usize,
    /// A's and B's images, and what the network made of each, e.g. `cat (0.973)`.
    pub images: [&'a Path; 2],
    pub predictions: [&'a str; 2],
    pub order: super::compare::Order,
    /// Class names, for the table's preferred class.
    pub classes: &'a [String],
}

/// A layer's comparison of two images: the A, B and A−B sheets (channels in the order chosen,
/// each numbered with its channel) and the table (`compare_LAYER.csv`, see
/// [`super::compare::csv`]).
#[must_use]
pub fn compared(c: &Compared, style: &Style) -> Vec<ExportFile> {
    use super::compare::{self, Pane};
    let layer = sanitise(c.layer);
    let order: Vec<usize> = c.compared.rows.iter().map(|r| r.channel).collect();
    let names = [image_name(c.images[0]), image_name(c.images[1])];
    let mut out = Vec::new();
    for (pane, suffix) in [(Pane::A, "a"), (Pane::B, "b"), (Pane::Diff, "diff")] {
        let levels = match pane {
            Pane::A => &c.compared.a,
            Pane::B => &c.compared.b,
            Pane::Diff => &c.compared.diff,
        };
        let cells: Vec<(usize, &Standardised)> = order
            .iter()
            .filter_map(|&ch| levels.get(ch).map(|l| (ch, l)))
            .collect();
        let title = format!(
            "run {} · {} · {} · {} · A {} ({}) · B {} ({})",
            style.source.run,
            c.layer,
            style.source.epoch,
            pane.caption(),
            names[0],
            c.predictions[0],
            names[1],
            c.predictions[1]
        );
        let detail = format!(
            "{} channels of {}×{} · ordered by {} · A and B share each channel's scale",
            order.len(),
            c.height,
            c.width,
            c.order.name()
        );
        out.push(ExportFile::picture(
            format!("compare_{layer}_{suffix}.png"),
            compare::sheet(
                &cells,
                (c.height, c.width),
                pane,
                style.colormap,
                (
                    &format!("{} {}", c.layer, pane.caption()),
                    &[&title, &detail],
                ),
            ),
        ));
    }
    out.push(ExportFile::text(
        format!("compare_{layer}.csv"),
        compare::csv(&c.compared.rows, c.classes),
    ));
    out
}

/// The training curves and the metrics CSV of `epochs` (in epoch order); none before the
/// first finished epoch in the run's folder, whose names carry the last epoch.
#[must_use]
pub fn training(epochs: &[EpochMetrics], naming: Naming) -> Vec<ExportFile> {
    let (csv, png) = match naming {
        Naming::Folder => ("metrics.csv".to_string(), "curves.png".to_string()),
        Naming::Run => {
            let Some(last) = epochs.last().map(|m| m.epoch) else {
                return Vec::new();
            };
            let stem = format!("training-epoch-{last:04}");
            (format!("{stem}-metrics.csv"), format!("{stem}-curves.png"))
        }
    };
    let csv = ExportFile::text(csv, metrics_csv(epochs));
    let png = ExportFile::picture(png, curves(epochs));
    match naming {
        Naming::Folder => vec![csv, png],
        Naming::Run => vec![png, csv],
    }
}

/// The model summary table as a text file.
#[must_use]
pub fn summary(rows: &[SummaryRow]) -> ExportFile {
    ExportFile::text("model-summary.txt".into(), super::table::summary(rows))
}

/// The newest record of each epoch, in epoch order (a resumed run may repeat one).
#[must_use]
pub fn epoch_metrics(events: &[Event]) -> Vec<EpochMetrics> {
    let mut by_epoch = BTreeMap::new();
    for e in events {
        if let Event::Epoch(m) = e {
            by_epoch.insert(m.epoch, *m);
        }
    }
    by_epoch.into_values().collect()
}

/// The metrics CSV: a header and one row per epoch; validation cells are empty without
/// validation.
#[must_use]
pub fn metrics_csv(epochs: &[EpochMetrics]) -> String {
    let opt = |v: Option<f32>| v.map_or_else(String::new, |v| v.to_string());
    let mut out = format!("{CSV_HEADER}\n");
    for m in epochs {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.3},{:.1}",
            m.epoch,
            m.train_loss,
            m.train_accuracy,
            opt(m.val_loss),
            opt(m.val_accuracy),
            m.seconds,
            m.images_per_sec
        );
    }
    out
}

/// Loss and accuracy per epoch, train and validation, side by side.
#[must_use]
pub fn curves(epochs: &[EpochMetrics]) -> Raster {
    let series = |label: &str, color, f: &dyn Fn(&EpochMetrics) -> Option<f32>| Series {
        label: label.into(),
        color,
        points: epochs
            .iter()
            .filter_map(|m| f(m).map(|v| (m.epoch as f32, v)))
            .collect(),
    };
    let panel = |title: &str, y_range, train: Series, val: Series| {
        let mut s = vec![train];
        if !val.points.is_empty() {
            s.push(val);
        }
        let title = if epochs.is_empty() {
            format!("{title} (no finished epoch yet)")
        } else {
            title.to_owned()
        };
        plot::render(
            &Plot {
                title,
                x_label: "epoch".into(),
                y_range,
                series: s,
            },
            CURVE_PANEL.0,
            CURVE_PANEL.1,
        )
    };
    let loss = panel(
        "loss",
        None,
        series("train loss", TRAIN, &|m| Some(m.train_loss)),
        series("val loss", VAL, &|m| m.val_loss),
    );
    let acc = panel(
        "accuracy",
        Some((0.0, 1.0)),
        series("train accuracy", TRAIN, &|m| Some(m.train_accuracy)),
        series("val accuracy", VAL, &|m| m.val_accuracy),
    );
    let mut out = Raster::new(2 * CURVE_PANEL.0, CURVE_PANEL.1, plot::BACKGROUND);
    out.blit(&loss, 0, 0);
    out.blit(&acc, CURVE_PANEL.0, 0);
    out
}

/// Header of the confusion matrix CSV: the actual class, then one column per predicted class.
pub const CONFUSION_CORNER: &str = "actual\\predicted";
/// Header of the per-unit health CSV.
pub const HEALTH_CSV_HEADER: &str =
    "layer,unit,on_rate,mean,std,max,mean_abs,dead,dormant,always_on,dead_by_weights";
/// Header of the per-layer health CSV (then one column per on-rate tenth).
pub const HEALTH_LAYERS_HEADER: &str =
    "layer,units,dead_pct,dormant_pct,always_on_pct,output_saturated_pct";

/// A validation confusion matrix to export: actual (row) x predicted (column) counts.
#[derive(Debug, Clone, Copy)]
pub struct Confusion<'a> {
    pub classes: &'a [String],
    pub counts: &'a [Vec<u64>],
    pub epoch: usize,
}

/// The confusion matrix as CSV and as a picture (counts and row percentages, cells shaded by
/// the row percentage).
#[must_use]
pub fn confusion(m: &Confusion, style: &Style, naming: Naming) -> Vec<ExportFile> {
    let stem = match naming {
        Naming::Folder => "confusion".to_string(),
        Naming::Run => format!("confusion-epoch-{:04}", m.epoch),
    };
    vec![
        ExportFile::text(format!("{stem}.csv"), confusion_csv(m.classes, m.counts)),
        ExportFile::picture(format!("{stem}.png"), confusion_picture(m, style)),
    ]
}

/// A CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The confusion matrix CSV: a header of predicted classes, one row per actual class.
#[must_use]
pub fn confusion_csv(classes: &[String], counts: &[Vec<u64>]) -> String {
    let mut out = CONFUSION_CORNER.to_string();
    for c in classes {
        out.push(',');
        out.push_str(&csv_field(c));
    }
    out.push('\n');
    for (c, row) in classes.iter().zip(counts) {
        out.push_str(&csv_field(c));
        for n in row {
            let _ = write!(out, ",{n}");
        }
        out.push('\n');
    }
    out
}

/// The confusion matrix drawn: one cell per (actual, predicted) pair with its count and row %.
#[must_use]
pub fn confusion_picture(m: &Confusion, style: &Style) -> Raster {
    use super::text::{self, GLYPH};
    const CELL_W: usize = 12 * GLYPH;
    const CELL_H: usize = 4 * GLYPH;
    let n = m.classes.len();
    let label = |c: &str| -> String { c.chars().take(11).collect() };
    let label_w = m
        .classes
        .iter()
        .map(|c| text::width(&label(c), 1))
        .max()
        .unwrap_or(0)
        + GLYPH;
    let top = 2 * GLYPH;
    let mut body = Raster::new(label_w + n * CELL_W, top + n * CELL_H, plot::BACKGROUND);
    for (j, c) in m.classes.iter().enumerate() {
        text::draw(
            &mut body,
            label_w + j * CELL_W + 4,
            0,
            &label(c),
            1,
            text::INK,
        );
    }
    for (i, row) in m.counts.iter().enumerate().take(n) {
        let y = top + i * CELL_H;
        text::draw(
            &mut body,
            0,
            y + CELL_H / 2 - GLYPH / 2,
            &label(&m.classes[i]),
            1,
            text::INK,
        );
        let total: u64 = row.iter().sum();
        for (j, &count) in row.iter().enumerate().take(n) {
            let pct = 100.0 * count as f32 / total.max(1) as f32;
            let x = label_w + j * CELL_W;
            let fill = super::colormap::color(style.colormap, pct / 100.0);
            for yy in y + 1..y + CELL_H - 1 {
                for xx in x + 1..x + CELL_W - 1 {
                    body.set(xx, yy, fill);
                }
            }
            // Dark ink on a light cell, light ink on a dark one.
            let light = u32::from(fill[0]) * 3 + u32::from(fill[1]) * 6 + u32::from(fill[2]) > 1280;
            let ink = if light { [20, 20, 20] } else { text::INK };
            text::draw(&mut body, x + 6, y + 6, &count.to_string(), 1, ink);
            text::draw(
                &mut body,
                x + 6,
                y + 6 + GLYPH + 4,
                &format!("{pct:.1}%"),
                1,
                ink,
            );
        }
    }
    let total: u64 = m.counts.iter().flatten().sum();
    let right: u64 = m
        .counts
        .iter()
        .enumerate()
        .map(|(i, r)| r.get(i).copied().unwrap_or(0))
        .sum();
    let title = format!(
        "run {} · {} · {total} validation images · accuracy {:.1} %",
        style.source.run,
        style.source.epoch,
        100.0 * right as f64 / total.max(1) as f64
    );
    text::titled(
        &body,
        "confusion matrix",
        &[
            &title,
            "rows: actual class · columns: predicted · count and row %",
        ],
        plot::BACKGROUND,
    )
}

/// Unit health as two CSV files: one row per unit, and one per layer with the output's
/// saturation.
#[must_use]
pub fn unit_health(h: &crate::events::health::EpochHealth, naming: Naming) -> Vec<ExportFile> {
    let (units, layers) = match naming {
        Naming::Folder => (
            "unit_health.csv".to_string(),
            "unit_health_layers.csv".to_string(),
        ),
        Naming::Run => (
            format!("unit-health-epoch-{:04}.csv", h.epoch),
            format!("unit-health-layers-epoch-{:04}.csv", h.epoch),
        ),
    };
    vec![
        ExportFile::text(units, unit_health_csv(h)),
        ExportFile::text(layers, layer_health_csv(h)),
    ]
}

/// One row per unit: its statistics and whether it is dead, dormant, always on, and dead by
/// its weights alone (`1`/`0`).
#[must_use]
pub fn unit_health_csv(h: &crate::events::health::EpochHealth) -> String {
    use crate::model::health::{ALWAYS_ON_RATE, DORMANT_FRACTION};
    let mut out = format!("{HEALTH_CSV_HEADER}\n");
    for l in &h.layers {
        let layer_mean =
            l.channels.iter().map(|c| c.mean_abs).sum::<f64>() / l.channels.len().max(1) as f64;
        for (i, c) in l.channels.iter().enumerate() {
            let _ = writeln!(
                out,
                "{},{i},{},{},{},{},{},{},{},{},{}",
                csv_field(&l.name),
                c.on_rate,
                c.mean,
                c.std,
                c.max,
                c.mean_abs,
                u8::from(c.on_rate <= 0.0),
                u8::from(c.mean_abs <= DORMANT_FRACTION * layer_mean),
                u8::from(c.on_rate > ALWAYS_ON_RATE),
                u8::from(c.dead_by_weights),
            );
        }
    }
    out
}

/// One row per layer: % dead, dormant, always on and the on-rate histogram; the output's %
/// saturated on a row of its own (`output`).
#[must_use]
pub fn layer_health_csv(h: &crate::events::health::EpochHealth) -> String {
    use crate::events::health::HISTOGRAM_BINS;
    let mut out = HEALTH_LAYERS_HEADER.to_string();
    for b in 0..HISTOGRAM_BINS {
        let _ = write!(out, ",on_rate_{b}");
    }
    out.push('\n');
    for l in &h.layers {
        let _ = write!(
            out,
            "{},{},{},{},{},",
            csv_field(&l.name),
            l.units,
            l.dead_pct,
            l.dormant_pct,
            l.always_on_pct
        );
        for n in l.on_rate_histogram {
            let _ = write!(out, ",{n}");
        }
        out.push('\n');
    }
    let _ = write!(out, "output,,,,,{}", h.output_saturated_pct);
    out.push_str(&",".repeat(HISTOGRAM_BINS));
    out.push('\n');
    out
}

/// `raster` enlarged by the smallest whole factor that makes its longer side at least
/// `min_side` (as is when it is already).
#[must_use]
pub fn at_least(raster: &Raster, min_side: usize) -> Raster {
    let side = raster.width().max(raster.height()).max(1);
    let factor = min_side.div_ceil(side).max(1);
    if factor > 1 {
        raster.upscale(factor)
    } else {
        raster.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(e: usize, val: Option<f32>) -> EpochMetrics {
        EpochMetrics {
            epoch: e,
            train_loss: 0.5,
            train_accuracy: 0.75,
            val_loss: val,
            val_accuracy: val,
            seconds: 1.25,
            images_per_sec: 100.0,
        }
    }

    #[test]
    fn csv_has_empty_cells_without_validation_and_keeps_the_newest_epoch_record() {
        let mut second = epoch(1, Some(0.25));
        second.train_loss = 0.4;
        let events = vec![
            Event::Epoch(epoch(1, None)),
            Event::Epoch(epoch(2, None)),
            Event::Epoch(second),
        ];
        let csv = metrics_csv(&epoch_metrics(&events));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines[1], "1,0.4,0.75,0.25,0.25,1.250,100.0");
        assert_eq!(lines[2], "2,0.5,0.75,,,1.250,100.0");
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn curves_have_two_panels_even_without_epochs() {
        let r = curves(&[]);
        assert_eq!((r.width(), r.height()), (2 * CURVE_PANEL.0, CURVE_PANEL.1));
        let r = curves(&[epoch(1, Some(0.6)), epoch(2, Some(0.7))]);
        assert!(r.pixels().contains(&TRAIN) && r.pixels().contains(&VAL));
    }

    #[test]
    fn both_folders_name_the_same_files_their_way() {
        let epochs = [epoch(1, None), epoch(7, None)];
        let names =
            |n| -> Vec<String> { training(&epochs, n).into_iter().map(|f| f.name).collect() };
        assert_eq!(names(Naming::Folder), ["metrics.csv", "curves.png"]);
        assert_eq!(
            names(Naming::Run),
            [
                "training-epoch-0007-curves.png",
                "training-epoch-0007-metrics.csv"
            ]
        );
        assert!(training(&[], Naming::Run).is_empty());
        let layer = LayerFilters {
            name: "conv 2d/1".into(),
            out_channels: 2,
            in_channels: 3,
            kernel: [3, 3],
            weights: (0..54).map(|i| i as f32 / 54.0 - 0.5).collect(),
        };
        let style = Style {
            colormap: ColormapName::Viridis,
            filter_norm: FilterNorm::Layer,
            source: Source {
                run: "r".into(),
                epoch: "epoch 7".into(),
            },
        };
        let parts = FilterParts {
            one: Some(1),
            rgb: true,
        };
        let names = |n| -> Vec<String> {
            filters(&layer, 7, parts, &style, n)
                .into_iter()
                .map(|f| f.name)
                .collect()
        };
        assert_eq!(
            names(Naming::Folder),
            [
                "filters_conv_2d_1.png",
                "filters_conv_2d_1_filter_2.png",
                "filters_conv_2d_1_rgb.png"
            ]
        );
        assert_eq!(
            names(Naming::Run),
            [
                "filters-conv_2d_1-epoch-0007.png",
                "filters-conv_2d_1-epoch-0007-filter-2.png",
                "filters-conv_2d_1-epoch-0007-rgb.png"
            ]
        );
    }

    #[test]
    fn small_pictures_are_enlarged_by_whole_factors() {
        let r = Raster::new(100, 40, [0, 0, 0]);
        let big = at_least(&r, 512);
        assert_eq!((big.width(), big.height()), (600, 240));
        assert_eq!(at_least(&big, 512).width(), 600);
    }
}
