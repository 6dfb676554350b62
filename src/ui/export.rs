//! `e`: write what the current tab shows into the run's `export/` folder: the pictures as PNG
//! files, the training curves as a PNG plot with the metrics as CSV, the model summary as text.
//! The files are composed in [`crate::viz::export`]; this writes them.

use std::path::{Path, PathBuf};

use super::pictures::Pictures;
use super::state::AppState;
use super::vocab::Tab;
use crate::run::RunDir;
use crate::viz::export::{
    self as compose, Content, ExportFile, FeatureMaps, FeatureParts, FilterParts, Naming, Style,
};
use crate::viz::sheets;

/// Smallest side of an exported picture; smaller rasters are upscaled by whole factors.
const MIN_SIDE: usize = 512;

/// Why the current tab could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no filters to export yet")]
    NoFilters,
    #[error("no feature maps to export yet")]
    NoFeatureMaps,
    #[error("no finished epoch to export yet")]
    NoEpoch,
    #[error("no model summary yet")]
    NoSummary,
    #[error(
        "nothing to export on the Help tab; e exports the Training, Model, Filters and Feature maps tabs, and every layer at once: convscope export {run}"
    )]
    Help { run: PathBuf },
    #[error(
        "the Validation tab exports nothing yet; its numbers as JSON: convscope report {run} --json"
    )]
    Validation { run: PathBuf },
    #[error(
        "cannot create {inside} ({first}) nor {outside} ({error}); start the viewer in a folder you can write to"
    )]
    NoFolder {
        inside: PathBuf,
        first: std::io::Error,
        outside: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot write {path}: {error}")]
    Picture {
        path: PathBuf,
        error: image::ImageError,
    },
    #[error("cannot write {path}: {error}")]
    Text {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Write `file` into `dir`, pictures enlarged to [`MIN_SIDE`]; returns its path.
fn save(file: &ExportFile, dir: &Path) -> Result<PathBuf, ExportError> {
    let path = dir.join(&file.name);
    match &file.content {
        Content::Picture(r) => compose::at_least(r, MIN_SIDE)
            .to_rgb_image()
            .save(&path)
            .map_err(|error| ExportError::Picture {
                path: path.clone(),
                error,
            })?,
        Content::Text(t) => std::fs::write(&path, t).map_err(|error| ExportError::Text {
            path: path.clone(),
            error,
        })?,
    }
    Ok(path)
}

/// Where `e` writes: `RUN/export`, or, when the run cannot be written to (another user's, a
/// read-only disk), `convscope-export/<run>` in the current folder.
fn export_dir(run: &Path) -> Result<PathBuf, ExportError> {
    let inside = RunDir {
        path: run.to_path_buf(),
    }
    .export_path();
    // The folder may exist on a disk that is read-only now: try a file in it.
    let writable = std::fs::create_dir_all(&inside).and_then(|()| {
        let probe = inside.join(format!(".write-test-{}", std::process::id()));
        std::fs::write(&probe, b"")?;
        std::fs::remove_file(&probe)
    });
    let Err(first) = writable else {
        return Ok(inside);
    };
    let name = crate::run::resolve(run)
        .file_name()
        .map_or_else(|| "run".into(), std::ffi::OsStr::to_os_string);
    let outside = std::env::current_dir()
        .unwrap_or_default()
        .join("convscope-export")
        .join(name);
    match std::fs::create_dir_all(&outside) {
        Ok(()) => Ok(outside),
        Err(error) => Err(ExportError::NoFolder {
            inside,
            first,
            outside,
            error,
        }),
    }
}

/// Export what the current tab shows; returns the files written.
pub fn export_tab(state: &AppState, pictures: &Pictures) -> Result<Vec<PathBuf>, ExportError> {
    let files = compose_tab(state, pictures)?;
    let dir = export_dir(state.run_dir())?;
    files.iter().map(|f| save(f, &dir)).collect()
}

/// The files that show the current tab.
fn compose_tab(state: &AppState, pictures: &Pictures) -> Result<Vec<ExportFile>, ExportError> {
    let style = |epoch: usize| Style {
        colormap: state.colormap(),
        filter_norm: state.filter_norm(),
        source: sheets::Source {
            run: compose::run_name(state.run_dir()),
            epoch: format!("epoch {epoch}"),
        },
    };
    match state.tab() {
        Tab::Filters => {
            let (Some(snap), Some(layer)) = (state.filters(), state.filter_layer()) else {
                return Err(ExportError::NoFilters);
            };
            let parts = FilterParts {
                one: Some(state.filter()),
                rgb: true,
            };
            Ok(compose::filters(
                layer,
                snap.epoch,
                parts,
                &style(snap.epoch),
                Naming::Run,
            ))
        }
        Tab::Features => {
            let (Some(snap), Some(layer)) = (state.features(), state.feature_layer()) else {
                return Err(ExportError::NoFeatureMaps);
            };
            let class = state
                .start()
                .and_then(|s| s.classes.get(snap.predicted))
                .map_or_else(|| format!("class {}", snap.predicted), Clone::clone);
            let prediction = format!("{class} ({:.3})", snap.probability);
            let stem = compose::image_stem(&snap.image, "probe");
            let maps = FeatureMaps {
                layer: &layer.name,
                levels: &pictures.levels,
                height: layer.height,
                width: layer.width,
                image: &snap.image,
                stem: &stem,
                prediction: &prediction,
                epoch: snap.epoch,
            };
            let parts = FeatureParts {
                channel: Some(state.channel()),
                input: Some((&snap.input, snap.input_shape)),
            };
            Ok(compose::feature_maps(
                &maps,
                parts,
                &style(snap.epoch),
                Naming::Run,
            ))
        }
        Tab::Training => {
            let mut epochs = state.epochs().to_vec();
            epochs.sort_by_key(|m| m.epoch);
            let files = compose::training(&epochs, Naming::Run);
            if files.is_empty() {
                return Err(ExportError::NoEpoch);
            }
            Ok(files)
        }
        Tab::Model => {
            let Some(start) = state.start() else {
                return Err(ExportError::NoSummary);
            };
            let mut files = vec![compose::summary(&start.summary)];
            // The unit health the tab shows, per unit and per layer.
            if let Some(h) = state.health().and_then(|h| h.latest()) {
                files.extend(compose::unit_health(h, Naming::Run));
            }
            Ok(files)
        }
        Tab::Help => Err(ExportError::Help {
            run: state.run_dir().to_path_buf(),
        }),
        Tab::Validation => Err(ExportError::Validation {
            run: state.run_dir().to_path_buf(),
        }),
    }
}
