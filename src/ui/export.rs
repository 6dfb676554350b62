//! `e`: write what the current tab shows into the run's `export/` folder: the pictures as PNG
//! files, the training curves as a PNG plot with the metrics as CSV, the model summary as text.

use std::path::PathBuf;

use super::state::{AppState, Tab};
use crate::viz::raster::Raster;

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

/// Export what the current tab shows; returns the files written.
pub fn export_tab(state: &AppState) -> Result<Vec<PathBuf>, String> {
    let dir = state.run_dir.join("export");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let p = &state.pictures;
    let mut out = Vec::new();
    match state.tab {
        Tab::Filters => {
            let Some(snap) = &state.filters else {
                return Err("no filters to export yet".into());
            };
            let layer = state
                .filter_layer()
                .map_or_else(|| "filters".to_string(), |l| clean(&l.name));
            let stem = format!("filters-{layer}-epoch-{:04}", snap.epoch);
            save(
                &p.filter_grid.raster,
                dir.join(format!("{stem}.png")),
                &mut out,
            )?;
            save(
                &p.filter_zoom.raster,
                dir.join(format!("{stem}-filter-{}.png", state.filter + 1)),
                &mut out,
            )?;
            if let Some(rgb) = &p.filter_rgb {
                save(&rgb.raster, dir.join(format!("{stem}-rgb.png")), &mut out)?;
            }
        }
        Tab::Features => {
            let Some(snap) = &state.features else {
                return Err("no feature maps to export yet".into());
            };
            let image = snap
                .image
                .file_stem()
                .map_or_else(|| "probe".into(), |s| clean(&s.to_string_lossy()));
            let layer = state
                .feature_layer()
                .map_or_else(|| "layer".into(), |l| clean(&l.name));
            let stem = format!("features-{image}-{layer}-epoch-{:04}", snap.epoch);
            save(
                &p.feature_grid.raster,
                dir.join(format!("{stem}.png")),
                &mut out,
            )?;
            save(
                &p.channel_zoom.raster,
                dir.join(format!("{stem}-channel-{}.png", state.channel + 1)),
                &mut out,
            )?;
            save(
                &p.probe.raster,
                dir.join(format!("{stem}-input.png")),
                &mut out,
            )?;
        }
        Tab::Training => {
            let mut epochs = state.epochs.clone();
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
            let Some(start) = &state.start else {
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
                state.run_dir.display()
            ));
        }
    }
    Ok(out)
}
