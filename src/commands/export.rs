//! `convscope export RUN [--epoch N] [--image IMG]... --out DIR`: the TUI's pictures as PNG
//! files, the training curves as a plot, and the epoch metrics as CSV.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::cli::ExportArgs;
use crate::config::ColormapName;
use crate::events::{EpochMetrics, Event, FeatureSnapshot, LayerMaps};
use crate::run::checkpoint::Checkpoint;
use crate::run::{RunDir, event_log};
use crate::train::probe::{self, Probe};
use crate::train::restore;
use crate::viz::colormap::Rgb;
use crate::viz::pictures;
use crate::viz::plot::{self, Plot, Series};
use crate::viz::raster::Raster;
use crate::viz::sheets;

pub use crate::viz::sheets::{BLOCK, FEATURE_COLUMNS, feature_scale};
/// Size of each of the two panels (loss, accuracy) of `curves.png`.
pub const CURVE_PANEL: (usize, usize) = (480, 320);
/// Header of `metrics.csv`.
pub const CSV_HEADER: &str =
    "epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds,images_per_sec";

/// Training blue and validation orange, as matplotlib draws a first and second line, and as
/// the TUI's charts (cyan and yellow).
const TRAIN: Rgb = [31, 119, 180];
const VAL: Rgb = [255, 127, 14];

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
        default_images(&run, &events, &bundled)?
    } else {
        args.images.clone()
    };

    let cp = &restored.checkpoint;
    let source = sheet_source(&run, cp);
    let probes = probe_all(&restored, &images)?;

    std::fs::create_dir_all(&args.out).with_context(|| {
        format!(
            "cannot create the output folder {}; choose a writable --out folder",
            args.out.display()
        )
    })?;
    let mut written = Vec::new();
    let pictures = filter_sheets(&restored, &source, None)
        .into_iter()
        .chain(feature_sheets(&restored, &probes, &source, None));
    for (name, pic) in pictures {
        let path = args.out.join(format!("{name}.png"));
        save(&pic, &path)?;
        written.push(path);
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

/// What every sheet's title says for checkpoint `cp` of `run`.
pub(crate) fn sheet_source(run: &RunDir, cp: &Checkpoint) -> sheets::Source {
    sheets::Source {
        run: run_name(&run.path),
        epoch: checkpoint_label(cp),
    }
}

/// Each image's feature maps from the restored network, with the file stem its sheets are
/// named by; an unreadable image is an error naming it.
pub(crate) fn probe_all(
    restored: &restore::Restored,
    images: &[PathBuf],
) -> Result<Vec<(String, FeatureSnapshot)>> {
    let prober = Probe::new(&restored.cfg, &restored.classes);
    let epoch = restored.checkpoint.state.epoch;
    let mut stems = HashSet::new();
    let mut probes = Vec::new();
    for image in images {
        match prober.feature_maps(&restored.net, image, epoch) {
            Event::FeatureMaps(snap) => probes.push((unique_stem(image, &mut stems), *snap)),
            Event::Warning(w) => bail!(
                "{}; pass --image with a readable JPEG, PNG, WebP, BMP or GIF file",
                w.message
            ),
            _ => {}
        }
    }
    Ok(probes)
}

/// Whether a sheet of layer `name` is wanted (`only`: one layer's, by name).
fn wanted(name: &str, only: Option<&str>) -> bool {
    only.is_none_or(|o| o == name)
}

/// The filter sheets of every conv layer (of `only`, when given), named as `export` writes
/// them (`filters_conv2d`, and `filters_conv2d_rgb` for the first layer's colours).
pub(crate) fn filter_sheets(
    restored: &restore::Restored,
    source: &sheets::Source,
    only: Option<&str>,
) -> Vec<(String, Raster)> {
    let ui = &restored.cfg.ui;
    let mut out = Vec::new();
    if let Event::Filters(snap) = probe::filters(&restored.net, restored.checkpoint.state.epoch) {
        for (i, layer) in snap.layers.iter().enumerate() {
            if !wanted(&layer.name, only) {
                continue;
            }
            let shape = [
                layer.out_channels,
                layer.in_channels,
                layer.kernel[0],
                layer.kernel[1],
            ];
            let pic = sheets::filters(
                &layer.weights,
                shape,
                ui.colormap,
                ui.filter_norm,
                &layer.name,
                source,
            );
            out.push((format!("filters_{}", file_part(&layer.name)), pic));
            if i == 0
                && let Some(pic) =
                    sheets::filters_rgb(&layer.weights, shape, ui.filter_norm, &layer.name, source)
            {
                out.push((format!("filters_{}_rgb", file_part(&layer.name)), pic));
            }
        }
    }
    out
}

/// The feature-map sheets of every layer (of `only`, when given) for each probed image, named
/// as `export` writes them (`features_cat_conv2d`).
pub(crate) fn feature_sheets(
    restored: &restore::Restored,
    probes: &[(String, FeatureSnapshot)],
    source: &sheets::Source,
    only: Option<&str>,
) -> Vec<(String, Raster)> {
    let mut out = Vec::new();
    for (stem, snap) in probes {
        let class = restored
            .classes
            .get(snap.predicted)
            .map_or("?", String::as_str);
        for layer in snap.layers.iter().filter(|l| wanted(&l.name, only)) {
            out.push((
                format!("features_{stem}_{}", file_part(&layer.name)),
                feature_sheet(layer, snap, class, restored.cfg.ui.colormap, source),
            ));
        }
    }
    out
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

/// Every channel of one layer for one image, standardised the tutorial's way.
fn feature_sheet(
    layer: &LayerMaps,
    snap: &FeatureSnapshot,
    class: &str,
    map: ColormapName,
    source: &sheets::Source,
) -> Raster {
    let (c, h, w) = (layer.channels, layer.height, layer.width);
    let levels = pictures::feature_levels(&layer.data, c, h, w);
    sheets::feature_maps(
        &levels,
        h,
        w,
        map,
        &layer.name,
        &image_name(&snap.image),
        &format!("{class} ({:.3})", snap.probability),
        source,
    )
}

/// An image's file name, for titles.
pub(crate) fn image_name(image: &Path) -> String {
    image.file_name().map_or_else(
        || image.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// A run's name in titles: its folder's name.
pub(crate) fn run_name(run: &Path) -> String {
    run.file_name().map_or_else(
        || run.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The newest record of each epoch, in epoch order (a resumed run may repeat one).
pub(crate) fn epoch_metrics(events: &[Event]) -> Vec<EpochMetrics> {
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

/// Most images the feature-map pictures are made for when none is named.
pub const DEFAULT_IMAGES: usize = 4;

/// The images to probe when none is named: a run on its own data gets its own images, one of
/// each class (up to [`DEFAULT_IMAGES`]), validation images first (the TUI probes them first),
/// else training images; the demo, which starts on the bundled photos, gets those (the run's
/// `samples/*.jpg`, else the bundled ones written to a temporary folder).
pub(crate) fn default_images(
    run: &RunDir,
    events: &[Event],
    bundled: &TempSamples,
) -> Result<Vec<PathBuf>> {
    let samples = run.samples_path();
    let started = events.iter().rev().find_map(|e| match e {
        Event::Started(s) => Some(s),
        _ => None,
    });
    let demo = started
        .and_then(|s| s.probe_images.first())
        .is_some_and(|p| p.starts_with(&samples));
    if !demo {
        let validation: Vec<PathBuf> = started
            .map(|s| {
                s.probe_images
                    .iter()
                    .filter(|p| !p.starts_with(&samples) && p.is_file())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let own = if validation.is_empty() {
            training_images(run)
        } else {
            validation
        };
        let picked = one_per_class(&own);
        if !picked.is_empty() {
            return Ok(picked);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(&samples)
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

/// The run's training images (from the data folder it was trained on), in class order.
fn training_images(run: &RunDir) -> Vec<PathBuf> {
    crate::train::RunSource::read(run)
        .ok()
        .and_then(|src| crate::data::scan(&src.data_dir).ok())
        .map(|scan| scan.samples.into_iter().map(|s| s.path).collect())
        .unwrap_or_default()
}

/// The first image of each folder (a class), in order, at most [`DEFAULT_IMAGES`].
fn one_per_class(images: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    images
        .iter()
        .filter(|p| seen.insert(p.parent().map(Path::to_path_buf)))
        .take(DEFAULT_IMAGES)
        .cloned()
        .collect()
}

/// A temporary folder for the bundled sample photos, removed on drop.
pub(crate) struct TempSamples {
    dir: PathBuf,
}

impl TempSamples {
    pub(crate) fn new() -> Self {
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
