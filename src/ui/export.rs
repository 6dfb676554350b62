//! `e`: write what the current tab shows into the run's `export/` folder: the pictures as PNG
//! files, the training curves as a PNG plot with the metrics as CSV, the model summary as text.

use std::path::PathBuf;

use super::pictures::Pictures;
use super::state::AppState;
use super::vocab::Tab;
use crate::viz::raster::Raster;
use crate::viz::sheets;

/// Smallest side of an exported picture; smaller rasters are upscaled by whole factors.
const MIN_SIDE: usize = 512;

fn save(raster: &Raster, path: PathBuf, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let side = raster.width().max(raster.height()).max(1);
    let factor = MIN_SIDE.div_ceil(side).max(1);
    let img = if factor > 1 {
        raster.upscale(factor)
    } else {
        raster.clone()
    }
    .to_rgb_image();
    img.save(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    out.push(path);
    Ok(())
}

fn write(text: String, path: PathBuf, out: &mut Vec<PathBuf>) -> Result<(), String> {
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    out.push(path);
    Ok(())
}

fn clean(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Where `e` writes: `RUN/export`, or, when the run cannot be written to (another user's, a
/// read-only disk), `convscope-export/<run>` in the current folder.
fn export_dir(run: &std::path::Path) -> Result<PathBuf, String> {
    let inside = run.join("export");
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
    std::fs::create_dir_all(&outside).map(|()| outside.clone()).map_err(|e| {
        format!(
            "cannot create {} ({first}) nor {} ({e}); start the viewer in a folder you can write to",
            inside.display(),
            outside.display()
        )
    })
}

/// Export what the current tab shows; returns the files written.
#[expect(
    clippy::too_many_lines,
    reason = "one arm per tab, each naming its files; the pictures move to viz (issue 13 item 3)"
)]
pub fn export_tab(state: &AppState, pictures: &Pictures) -> Result<Vec<PathBuf>, String> {
    let dir = export_dir(state.run_dir())?;
    let mut out = Vec::new();
    match state.tab() {
        Tab::Filters => {
            let (Some(snap), Some(layer)) = (state.filters(), state.filter_layer()) else {
                return Err("no filters to export yet".into());
            };
            let source = sheets::Source {
                run: crate::commands::export::run_name(state.run_dir()),
                epoch: format!("epoch {}", snap.epoch),
            };
            let shape = [
                layer.out_channels,
                layer.in_channels,
                layer.kernel[0],
                layer.kernel[1],
            ];
            let stem = format!("filters-{}-epoch-{:04}", clean(&layer.name), snap.epoch);
            let (map, norm) = (state.colormap(), state.filter_norm());
            save(
                &sheets::filters(&layer.weights, shape, map, norm, &layer.name, &source),
                dir.join(format!("{stem}.png")),
                &mut out,
            )?;
            save(
                &sheets::filter(
                    &layer.weights,
                    shape,
                    state.filter(),
                    map,
                    norm,
                    &layer.name,
                    &source,
                ),
                dir.join(format!("{stem}-filter-{}.png", state.filter() + 1)),
                &mut out,
            )?;
            if let Some(rgb) =
                sheets::filters_rgb(&layer.weights, shape, norm, &layer.name, &source)
            {
                save(&rgb, dir.join(format!("{stem}-rgb.png")), &mut out)?;
            }
        }
        Tab::Features => {
            let (Some(snap), Some(layer)) = (state.features(), state.feature_layer()) else {
                return Err("no feature maps to export yet".into());
            };
            let source = sheets::Source {
                run: crate::commands::export::run_name(state.run_dir()),
                epoch: format!("epoch {}", snap.epoch),
            };
            let image = snap
                .image
                .file_stem()
                .map_or_else(|| "probe".into(), |s| clean(&s.to_string_lossy()));
            let name = crate::commands::export::image_name(&snap.image);
            let class = state
                .start()
                .and_then(|s| s.classes.get(snap.predicted))
                .map_or_else(|| format!("class {}", snap.predicted), Clone::clone);
            let prediction = format!("{class} ({:.3})", snap.probability);
            let stem = format!(
                "features-{image}-{}-epoch-{:04}",
                clean(&layer.name),
                snap.epoch
            );
            let (h, w) = (layer.height, layer.width);
            let levels = &pictures.levels;
            save(
                &sheets::feature_maps(
                    levels,
                    h,
                    w,
                    state.colormap(),
                    &layer.name,
                    &name,
                    &prediction,
                    &source,
                ),
                dir.join(format!("{stem}.png")),
                &mut out,
            )?;
            if let Some(level) = levels.get(state.channel()) {
                save(
                    &sheets::feature_map(
                        level,
                        h,
                        w,
                        state.colormap(),
                        (state.channel(), levels.len()),
                        &layer.name,
                        &name,
                        &source,
                    ),
                    dir.join(format!("{stem}-channel-{}.png", state.channel() + 1)),
                    &mut out,
                )?;
            }
            save(
                &sheets::probe(&snap.input, snap.input_shape, &name, &prediction, &source),
                dir.join(format!("{stem}-input.png")),
                &mut out,
            )?;
        }
        Tab::Training => {
            let mut epochs = state.epochs().to_vec();
            epochs.sort_by_key(|m| m.epoch);
            let Some(last) = epochs.last().map(|m| m.epoch) else {
                return Err("no finished epoch to export yet".into());
            };
            let stem = format!("training-epoch-{last:04}");
            save(
                &crate::commands::export::curves(&epochs),
                dir.join(format!("{stem}-curves.png")),
                &mut out,
            )?;
            write(
                crate::commands::export::metrics_csv(&epochs),
                dir.join(format!("{stem}-metrics.csv")),
                &mut out,
            )?;
        }
        Tab::Model => {
            let Some(start) = state.start() else {
                return Err("no model summary yet".into());
            };
            write(
                crate::model::summary::render_table(&start.summary),
                dir.join("model-summary.txt"),
                &mut out,
            )?;
        }
        Tab::Help => {
            return Err(format!(
                "nothing to export on the Help tab; e exports the Training, Model, Filters and Feature maps tabs, and every layer at once: convscope export {}",
                state.run_dir().display()
            ));
        }
    }
    Ok(out)
}
