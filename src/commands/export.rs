//! `convscope export RUN [--epoch N] [--image IMG]... --out DIR`: the TUI's pictures as PNG
//! files, the training curves as a plot, and the epoch metrics as CSV (composed in
//! [`crate::viz::export`], written here).

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::cli::ExportArgs;
use crate::events::{EpochMetrics, Event, FeatureSnapshot};
use crate::infer::probe::{self, Probe};
use crate::infer::restore::{self, Restored};
use crate::run::checkpoint::Checkpoint;
use crate::run::{RunDir, RunSource, event_log};
use crate::viz::export::{
    self as compose, Content, ExportFile, FeatureMaps, FeatureParts, FilterParts, Naming, Style,
};
use crate::viz::{pictures, sheets};

pub use crate::viz::export::{CSV_HEADER, CURVE_PANEL};
pub use crate::viz::sheets::{BLOCK, FEATURE_COLUMNS, feature_scale};

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
    if args.compare {
        return run_compare(args, &run, &restored);
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
    let epochs = compose::epoch_metrics(&events);
    let bundled = TempSamples::new();
    let images = if args.images.is_empty() {
        default_images(&run, &events, &bundled)?
    } else {
        args.images.clone()
    };

    let files = compose_all(&restored, &run, &epochs, &images)?;

    std::fs::create_dir_all(&args.out).with_context(|| {
        format!(
            "cannot create the output folder {}; choose a writable --out folder",
            args.out.display()
        )
    })?;
    let mut written = Vec::new();
    for file in &files {
        written.push(save(file, &args.out)?);
    }

    let mut stdout = std::io::stdout();
    for path in &written {
        let _ = writeln!(stdout, "{}", path.display());
    }
    let _ = writeln!(
        stderr,
        "convscope: wrote {} files from checkpoint {} of {}",
        written.len(),
        restored.checkpoint.name,
        run.path.display()
    );
    Ok(0)
}

/// Every file of the export: each conv layer's filters, each probe image's feature maps in
/// every layer, the curves and the metrics.
fn compose_all(
    restored: &Restored,
    run: &RunDir,
    epochs: &[EpochMetrics],
    images: &[PathBuf],
) -> Result<Vec<ExportFile>> {
    let style = style(restored, run);
    // Every image is probed before any picture is made: an unreadable one fails at once.
    let probes = probe_all(restored, images)?;
    let mut files = filter_files(restored, &style, None)?;
    files.extend(feature_files(restored, &probes, &style, None));
    files.extend(compose::training(epochs, Naming::Folder));
    files.extend(validation_files(restored, run, &style));
    Ok(files)
}

/// The confusion matrix (CSV, PNG) and unit health (CSV) of the checkpoint's epoch, from the
/// run's validation record and health files; what is not recorded is left out, with a note.
fn validation_files(restored: &Restored, run: &RunDir, style: &Style) -> Vec<ExportFile> {
    use crate::run::validation;
    let epoch = restored.checkpoint.state.epoch;
    let mut files = Vec::new();
    let mut stderr = std::io::stderr();
    match validation::read_epoch(&run.path, epoch)
        .and_then(|r| Ok((validation::read_list(&run.path, r.list_id)?, r)))
    {
        Ok((list, record)) => {
            let counts = crate::analysis::confusion(&record.rows, list.classes.len());
            files.extend(compose::confusion(
                &compose::Confusion {
                    classes: &list.classes,
                    counts: &counts,
                    epoch,
                },
                style,
                Naming::Folder,
            ));
        }
        Err(e) => {
            let _ = writeln!(
                stderr,
                "convscope: no confusion matrix: epoch {epoch} has no readable validation record ({e})"
            );
        }
    }
    match crate::run::health::read(&run.path, epoch) {
        Ok(h) => files.extend(compose::unit_health(&h, Naming::Folder)),
        Err(e) => {
            let _ = writeln!(
                stderr,
                "convscope: no unit health: epoch {epoch} has none recorded ({e})"
            );
        }
    }
    files
}

/// How the pictures of `restored` look and are labelled.
pub(crate) fn style(restored: &Restored, run: &RunDir) -> Style {
    Style {
        colormap: restored.cfg.ui.colormap,
        filter_norm: restored.cfg.ui.filter_norm,
        source: sheets::Source {
            run: compose::run_name(&run.path),
            epoch: checkpoint_label(&restored.checkpoint),
        },
    }
}

/// The feature maps of every image, each with a file-name stem unique among them; an image
/// that cannot be read fails the whole.
pub(crate) fn probe_all(
    restored: &Restored,
    images: &[PathBuf],
) -> Result<Vec<(String, Box<FeatureSnapshot>)>> {
    let epoch = restored.checkpoint.state.epoch;
    let prober = Probe::new(&restored.cfg, &restored.classes);
    let mut stems = HashSet::new();
    let mut probes = Vec::new();
    for image in images {
        match prober.feature_maps(&restored.net, image, epoch)? {
            Event::FeatureMaps(snap) => probes.push((unique_stem(image, &mut stems), snap)),
            Event::Warning(w) => bail!(
                "{}; pass --image with a readable JPEG, PNG, WebP, BMP or GIF file",
                w.message
            ),
            _ => {}
        }
    }
    Ok(probes)
}

/// Each conv layer's filter sheets (the first layer's also in RGB); only `layer`'s when given.
pub(crate) fn filter_files(
    restored: &Restored,
    style: &Style,
    layer: Option<&str>,
) -> Result<Vec<ExportFile>> {
    let epoch = restored.checkpoint.state.epoch;
    let mut files = Vec::new();
    if let Event::Filters(snap) = probe::filters(&restored.net, epoch)? {
        for (i, l) in snap.layers.iter().enumerate() {
            if layer.is_some_and(|name| name != l.name) {
                continue;
            }
            let parts = FilterParts {
                one: None,
                rgb: i == 0,
            };
            files.extend(compose::filters(l, epoch, parts, style, Naming::Folder));
        }
    }
    Ok(files)
}

/// Each probe's feature maps in every layer (only `layer` when given).
pub(crate) fn feature_files(
    restored: &Restored,
    probes: &[(String, Box<FeatureSnapshot>)],
    style: &Style,
    layer: Option<&str>,
) -> Vec<ExportFile> {
    let epoch = restored.checkpoint.state.epoch;
    let mut files = Vec::new();
    for (stem, snap) in probes {
        let class = restored
            .classes
            .get(snap.predicted)
            .map_or("?", String::as_str);
        let prediction = format!("{class} ({:.3})", snap.probability);
        for l in snap
            .layers
            .iter()
            .filter(|l| layer.is_none_or(|name| name == l.name))
        {
            let (c, h, w) = (l.channels, l.height, l.width);
            let levels = pictures::feature_levels(&l.data, c, h, w);
            let maps = FeatureMaps {
                layer: &l.name,
                levels: &levels,
                height: h,
                width: w,
                image: &snap.image,
                stem,
                prediction: &prediction,
                epoch,
            };
            files.extend(compose::feature_maps(
                &maps,
                FeatureParts::default(),
                style,
                Naming::Folder,
            ));
        }
    }
    files
}

/// `--compare`: every layer of the two images compared (the A, B and A−B sheets and a CSV),
/// channels in the order asked for.
fn run_compare(args: &ExportArgs, run: &RunDir, restored: &Restored) -> Result<i32> {
    use crate::cli::CompareOrder;
    use crate::viz::compare::{self as cmp, Order};
    let [a, b] = args.images.as_slice() else {
        bail!(
            "--compare takes two images, A and B (--image A --image B); got {}",
            args.images.len()
        );
    };
    let epoch = restored.checkpoint.state.epoch;
    let order = match args.order {
        CompareOrder::Diff => Order::Diff,
        CompareOrder::Selectivity => Order::Selectivity,
    };
    let mut stderr = std::io::stderr();
    // Class selectivity comes from the epoch's unit health; only --order selectivity needs it.
    let health = match crate::run::health::read(&run.path, epoch) {
        Ok(h) if h.layers.iter().any(|l| !l.class_means.is_empty()) => Some(h),
        found => {
            let why = match found {
                Ok(_) => format!(
                    "the unit health of epoch {epoch} ({}) was written before class means were gathered",
                    crate::run::health::epoch_path(&run.path, epoch).display()
                ),
                Err(e) => format!("epoch {epoch} has no unit health ({e})"),
            };
            if order == Order::Selectivity {
                bail!(
                    "--order selectivity needs the class means gathered while validating: {why}; run at least one epoch with validation images (convscope resume {} --epochs N), or use --order diff",
                    run.path.display()
                );
            }
            let _ = writeln!(stderr, "convscope: no class selectivity: {why}");
            None
        }
    };
    let probes = probe_all(restored, &[a.clone(), b.clone()])?;
    let [(_, snap_a), (_, snap_b)] = probes.as_slice() else {
        bail!("--compare: the two images gave no feature maps");
    };
    let style = style(restored, run);
    let prediction = |s: &FeatureSnapshot| {
        let class = restored
            .classes
            .get(s.predicted)
            .map_or("?", String::as_str);
        format!("{class} ({:.3})", s.probability)
    };
    let predictions = [prediction(snap_a), prediction(snap_b)];
    let mut files = Vec::new();
    for (la, lb) in snap_a.layers.iter().zip(&snap_b.layers) {
        let sel = health
            .as_ref()
            .and_then(|h| h.layer(&la.name))
            .filter(|l| !l.class_means.is_empty())
            .map(|l| cmp::selectivity(&l.class_means));
        let compared = cmp::layer(
            &la.data,
            &lb.data,
            la.channels,
            la.height * la.width,
            sel.as_deref(),
            order,
        );
        files.extend(compose::compared(
            &compose::Compared {
                layer: &la.name,
                compared: &compared,
                height: la.height,
                width: la.width,
                images: [a, b],
                predictions: [&predictions[0], &predictions[1]],
                order,
                classes: &restored.classes,
            },
            &style,
        ));
    }
    std::fs::create_dir_all(&args.out).with_context(|| {
        format!(
            "cannot create the output folder {}; choose a writable --out folder",
            args.out.display()
        )
    })?;
    let mut stdout = std::io::stdout();
    for file in &files {
        let path = save(file, &args.out)?;
        let _ = writeln!(stdout, "{}", path.display());
    }
    let _ = writeln!(
        stderr,
        "convscope: compared {} and {} in {} layers from checkpoint {} of {}",
        a.display(),
        b.display(),
        snap_a.layers.len(),
        restored.checkpoint.name,
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

/// Write one file into `out`; returns its path.
fn save(file: &ExportFile, out: &Path) -> Result<PathBuf> {
    let path = out.join(&file.name);
    let written = match &file.content {
        Content::Picture(r) => r.to_rgb_image().save(&path).map_err(anyhow::Error::from),
        Content::Text(t) => std::fs::write(&path, t).map_err(anyhow::Error::from),
    };
    written.with_context(|| {
        format!(
            "cannot write {}; check that the --out folder is writable",
            path.display()
        )
    })?;
    Ok(path)
}

/// The image's file stem for output names, `-2`, `-3`, ... added when two images share one.
fn unique_stem(image: &Path, seen: &mut HashSet<String>) -> String {
    let base = compose::image_stem(image, "image");
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
        Event::Started(s) => {
            let mut s = s.clone();
            s.locate_probe_images(&run.path);
            Some(s)
        }
        _ => None,
    });
    let started = started.as_ref();
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
    RunSource::read(run)
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
}
