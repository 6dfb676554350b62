//! `convscope export RUN [--epoch N] [--image IMG]... --out DIR`: the TUI's pictures as PNG
//! files, the training curves as a plot, and the epoch metrics as CSV.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::cli::ExportArgs;
use crate::config::{ColormapName, FilterNorm, UiConfig};
use crate::events::{EpochMetrics, Event, FeatureSnapshot, LayerFilters, LayerMaps};
use crate::run::checkpoint::Checkpoint;
use crate::run::{RunDir, event_log};
use crate::train::probe::{self, Probe};
use crate::train::restore;
use crate::viz::colormap::{self, Rgb};
use crate::viz::pictures::{self, BACKGROUND, DEAD};
use crate::viz::plot::{self, Plot, Series};
use crate::viz::raster::{self, Raster};
use crate::viz::text;

/// Pixels per weight in the filter pictures (one weight is one `BLOCK`² square).
pub const BLOCK: usize = 8;
/// Pixels between the cells of the filter pictures.
pub const FILTER_GAP: usize = 2;
/// The RGB filter patches are tiled to fill this box before the `BLOCK` upscale.
pub const RGB_FIT: (usize, usize) = (800, 400);
/// Pixels between the channels of the feature-map pictures.
pub const FEATURE_GAP: usize = 2;
/// Channels per row in the feature-map pictures (the tutorial's 8 × 8 square).
pub const FEATURE_COLUMNS: usize = 8;
/// Feature maps are upscaled by a whole factor to at least this many pixels a side.
pub const FEATURE_MIN_SIDE: usize = 64;
/// Size of each of the two panels (loss, accuracy) of `curves.png`.
pub const CURVE_PANEL: (usize, usize) = (480, 320);
/// Header of `metrics.csv`.
pub const CSV_HEADER: &str =
    "epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds,images_per_sec";

/// Training blue and validation orange, as matplotlib draws a first and second line, and as
/// the TUI's charts (cyan and yellow).
const TRAIN: Rgb = [31, 119, 180];
const VAL: Rgb = [255, 127, 14];

/// Whole-number upscale of an `h` × `w` feature map in the feature-map pictures.
#[must_use]
pub fn feature_scale(h: usize, w: usize) -> usize {
    FEATURE_MIN_SIDE.div_ceil(h.max(w).max(1)).max(1)
}

/// Run the command.
pub fn run(args: &ExportArgs) -> Result<i32> {
    let run = RunDir::open(&args.run)?;
    let restored = restore::load(&run, args.epoch)?;
    let mut stderr = std::io::stderr();
    if let Some(note) = &restored.note {
        let _ = writeln!(stderr, "convscope: {note}");
    }
    for image in &args.images {
        if !image.is_file() {
            bail!(
                "image {} does not exist or is not a file; pass --image with a JPEG, PNG, WebP, BMP or GIF file",
                image.display()
            );
        }
    }
    // Everything is read and computed before anything is written: no half export on an error.
    let events_path = run.events_path();
    let (events, bad_lines) = event_log::read_all(&events_path)?;
    if bad_lines > 0 {
        let _ = writeln!(
            stderr,
            "convscope: {}: {bad_lines} unreadable line(s) skipped",
            events_path.display()
        );
    }
    let epochs = epoch_metrics(&events);
    let bundled = TempSamples::new();
    let images = if args.images.is_empty() {
        default_images(&run, &bundled)?
    } else {
        args.images.clone()
    };

    let cp = &restored.checkpoint;
    let epoch = cp.state.epoch;
    let label = checkpoint_label(cp);
    let ui = &restored.cfg.ui;

    let prober = Probe::new(&restored.cfg, &restored.classes);
    let mut stems = HashSet::new();
    let mut probes = Vec::new();
    for image in &images {
        match prober.feature_maps(&restored.net, image, epoch) {
            Event::FeatureMaps(snap) => probes.push((unique_stem(image, &mut stems), snap)),
            Event::Warning(w) => bail!(
                "{}; pass --image with a readable JPEG, PNG, WebP, BMP or GIF file",
                w.message
            ),
            _ => {}
        }
    }

    std::fs::create_dir_all(&args.out).with_context(|| {
        format!(
            "cannot create the output folder {}; choose a writable --out folder",
            args.out.display()
        )
    })?;
    let mut written = Vec::new();

    if let Event::Filters(snap) = probe::filters(&restored.net, epoch) {
        for (i, layer) in snap.layers.iter().enumerate() {
            let path = args
                .out
                .join(format!("filters_{}.png", file_part(&layer.name)));
            save(&filter_picture(layer, ui, &label), &path)?;
            written.push(path);
            if i == 0
                && let Some(pic) = filter_rgb_picture(layer, ui, &label)
            {
                let path = args
                    .out
                    .join(format!("filters_{}_rgb.png", file_part(&layer.name)));
                save(&pic, &path)?;
                written.push(path);
            }
        }
    }

    for (stem, snap) in &probes {
        let class = restored
            .classes
            .get(snap.predicted)
            .map_or("?", String::as_str);
        for layer in &snap.layers {
            let path = args
                .out
                .join(format!("features_{stem}_{}.png", file_part(&layer.name)));
            save(
                &feature_picture(layer, snap, class, ui.colormap, &label),
                &path,
            )?;
            written.push(path);
        }
    }

    let csv_path = args.out.join("metrics.csv");
    std::fs::write(&csv_path, metrics_csv(&epochs)).with_context(|| {
        format!(
            "cannot write {}; check that the --out folder is writable",
            csv_path.display()
        )
    })?;
    written.push(csv_path);
    let curves_path = args.out.join("curves.png");
    save(&curves(&epochs), &curves_path)?;
    written.push(curves_path);

    let mut stdout = std::io::stdout();
    for path in &written {
        let _ = writeln!(stdout, "{}", path.display());
    }
    let _ = writeln!(
        stderr,
        "convscope: wrote {} files from checkpoint {} of {}",
        written.len(),
        cp.name,
        run.path.display()
    );
    Ok(0)
}

/// "epoch 7", or "epoch 8, batch 12 of 40" for a mid-epoch checkpoint.
fn checkpoint_label(cp: &Checkpoint) -> String {
    let s = &cp.state;
    if s.epoch_complete() {
        format!("epoch {}", s.epoch)
    } else {
        format!(
            "epoch {}, batch {} of {}",
            s.epoch, s.batch, s.batches_per_epoch
        )
    }
}

/// The filters of one conv layer: a row per filter, a column per input channel, each weight a
/// `BLOCK`² square, normalised and coloured as in the TUI.
fn filter_picture(layer: &LayerFilters, ui: &UiConfig, label: &str) -> Raster {
    let shape = [
        layer.out_channels,
        layer.in_channels,
        layer.kernel[0],
        layer.kernel[1],
    ];
    let signed = ui.colormap == ColormapName::Diverging;
    let values = pictures::filter_values(&layer.weights, shape, ui.filter_norm, signed);
    let tiles: Vec<Raster> = (0..shape[0])
        .flat_map(|f| (0..shape[1]).map(move |c| (f, c)))
        .map(|(f, c)| pictures::kernel(&values, shape, f, c, ui.colormap).upscale(BLOCK))
        .collect();
    let grid = raster::tile(&tiles, shape[1], FILTER_GAP, BACKGROUND, |_| None);
    let norm = match (ui.filter_norm, signed) {
        (FilterNorm::Layer, false) => "min-max over layer",
        (FilterNorm::Filter, false) => "min-max per filter",
        (FilterNorm::Layer, true) => "symmetric about 0 over layer",
        (FilterNorm::Filter, true) => "symmetric about 0 per filter",
    };
    let title = format!(
        "{} · {label} · {} filters × {} channels · {norm}",
        layer.name, shape[0], shape[1]
    );
    let (lo, hi) = finite_range(&layer.weights);
    let detail = format!(
        "rows: filters, columns: input channels · {}×{} kernels · {} · weights {lo:.3} to {hi:.3}",
        shape[2],
        shape[3],
        colormap::name(ui.colormap)
    );
    text::titled(&grid, &layer.name, &[&title, &detail], BACKGROUND)
}

/// A first layer reading RGB: each filter as a colour patch (channel 0/1/2 -> red/green/blue).
fn filter_rgb_picture(layer: &LayerFilters, ui: &UiConfig, label: &str) -> Option<Raster> {
    let shape = [
        layer.out_channels,
        layer.in_channels,
        layer.kernel[0],
        layer.kernel[1],
    ];
    let patches = pictures::filter_rgb(&layer.weights, shape, ui.filter_norm, None, RGB_FIT)?;
    let scope = match ui.filter_norm {
        FilterNorm::Layer => "over layer",
        FilterNorm::Filter => "per filter",
    };
    let title = format!(
        "{} · {label} · {} filters as RGB patches · min-max {scope}",
        layer.name, shape[0]
    );
    let detail = "input channel 0/1/2 -> red/green/blue";
    Some(text::titled(
        &patches.upscale(BLOCK),
        &format!("{} RGB", layer.name),
        &[&title, detail],
        BACKGROUND,
    ))
}

/// Every channel of one layer for one image, standardised the tutorial's way.
fn feature_picture(
    layer: &LayerMaps,
    snap: &FeatureSnapshot,
    class: &str,
    map: ColormapName,
    label: &str,
) -> Raster {
    let (c, h, w) = (layer.channels, layer.height, layer.width);
    let levels = pictures::feature_levels(&layer.data, c, h, w);
    let s = feature_scale(h, w);
    let tiles: Vec<Raster> = levels
        .iter()
        .map(|l| pictures::channel(l, h, w, map).upscale(s))
        .collect();
    let grid = raster::tile(
        &tiles,
        FEATURE_COLUMNS.min(c).max(1),
        FEATURE_GAP,
        BACKGROUND,
        |i| levels[i].dead.then_some(DEAD),
    );
    let image = snap.image.file_name().map_or_else(
        || snap.image.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let title = format!(
        "{} · {image} · predicted {class} ({:.3}) · {label}",
        layer.name, snap.probability
    );
    let dead = levels.iter().filter(|l| l.dead).count();
    let detail = format!(
        "{c} channels of {h}×{w}, shown ×{s} · per channel (x-mean)/std·64+128 clipped 0..255 · {} · {dead} constant (red frame)",
        colormap::name(map)
    );
    text::titled(&grid, &layer.name, &[&title, &detail], BACKGROUND)
}

/// The newest record of each epoch, in epoch order (a resumed run may repeat one).
fn epoch_metrics(events: &[Event]) -> Vec<EpochMetrics> {
    let mut by_epoch = BTreeMap::new();
    for e in events {
        if let Event::Epoch(m) = e {
            by_epoch.insert(m.epoch, *m);
        }
    }
    by_epoch.into_values().collect()
}

/// `metrics.csv`: a header and one row per epoch; validation cells are empty without validation.
pub(crate) fn metrics_csv(epochs: &[EpochMetrics]) -> String {
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
pub(crate) fn curves(epochs: &[EpochMetrics]) -> Raster {
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

fn save(r: &Raster, path: &Path) -> Result<()> {
    r.to_rgb_image().save(path).with_context(|| {
        format!(
            "cannot write {}; check that the --out folder is writable",
            path.display()
        )
    })
}

fn finite_range(values: &[f32]) -> (f32, f32) {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi { (0.0, 0.0) } else { (lo, hi) }
}

/// A name safe in a file name: letters, digits, `-`, `_` and `.` kept, the rest `_`.
fn file_part(name: &str) -> String {
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

/// The image's file stem for output names, `-2`, `-3`, ... added when two images share one.
fn unique_stem(image: &Path, seen: &mut HashSet<String>) -> String {
    let base = file_part(
        &image
            .file_stem()
            .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned()),
    );
    let mut stem = base.clone();
    let mut n = 1;
    while !seen.insert(stem.clone()) {
        n += 1;
        stem = format!("{base}-{n}");
    }
    stem
}

/// The run's `samples/*.jpg`, else the bundled sample photos written to a temporary folder.
fn default_images(run: &RunDir, bundled: &TempSamples) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(run.samples_path())
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("jpg")))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    if !found.is_empty() {
        return Ok(found);
    }
    bundled.write()
}

/// A temporary folder for the bundled sample photos, removed on drop.
struct TempSamples {
    dir: PathBuf,
}

impl TempSamples {
    fn new() -> Self {
        Self {
            dir: std::env::temp_dir().join(format!("convscope-export-{}", std::process::id())),
        }
    }

    fn write(&self) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let mut out = Vec::new();
        for (name, bytes) in crate::viz::SAMPLE_PHOTOS {
            let p = self.dir.join(name);
            std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
            out.push(p);
        }
        Ok(out)
    }
}

impl Drop for TempSamples {
    fn drop(&mut self) {
        if self.dir.exists() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
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
    fn stems_are_made_unique_and_file_safe() {
        let mut seen = HashSet::new();
        assert_eq!(unique_stem(Path::new("a/cat.jpg"), &mut seen), "cat");
        assert_eq!(unique_stem(Path::new("b/cat.png"), &mut seen), "cat-2");
        assert_eq!(unique_stem(Path::new("my dog.jpg"), &mut seen), "my_dog");
    }

    #[test]
    fn feature_scale_reaches_the_minimum_side() {
        assert_eq!(feature_scale(150, 150), 1);
        assert_eq!(feature_scale(16, 16), 4);
        assert_eq!(feature_scale(2, 2), 32);
        assert_eq!(feature_scale(0, 0), 64);
    }

    #[test]
    fn curves_have_two_panels_even_without_epochs() {
        let r = curves(&[]);
        assert_eq!((r.width(), r.height()), (2 * CURVE_PANEL.0, CURVE_PANEL.1));
        let r = curves(&[epoch(1, Some(0.6)), epoch(2, Some(0.7))]);
        assert!(r.pixels().contains(&TRAIN) && r.pixels().contains(&VAL));
    }
}
