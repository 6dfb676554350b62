//! Rasters derived from the snapshots and the selections, rebuilt in `update`/`apply` (never
//! while drawing), each with a generation so that encoders know when to redo their work.

use ratatui::layout::Rect;

use super::state::AppState;
use super::tabs;
use crate::config::ColormapName;
use crate::viz::Raster;
use crate::viz::norm::Standardised;
use crate::viz::pictures as vp;
use crate::viz::raster::Grid;

/// A raster and the generation it was built at.
#[derive(Debug, Clone, Default)]
pub struct Pic {
    pub raster: Raster,
    pub generation: u64,
}

/// All derived rasters.
#[derive(Debug, Default)]
pub struct Pictures {
    generation: u64,
    pub filter_grid: Pic,
    pub filter_rgb: Option<Pic>,
    pub filter_zoom: Pic,
    pub probe: Pic,
    pub feature_grid: Pic,
    pub channel_zoom: Pic,
    /// How the filter grid is tiled (for mouse selection).
    pub filter_geom: Option<Grid>,
    /// How the feature grid is tiled (for mouse selection).
    pub feature_geom: Option<Grid>,
    /// Standardised channels of the shown feature layer.
    pub levels: Vec<Standardised>,
    /// The layer `levels` were computed for; `None` after a new snapshot.
    levels_key: Option<usize>,
}

/// A cell area's size in the pixels pictures are drawn with: `cell` pixels a cell (half
/// blocks: one per column, two per row; a graphics protocol: the font's size).
#[must_use]
pub fn pixels(r: Rect, cell: (usize, usize)) -> (usize, usize) {
    (
        usize::from(r.width) * cell.0,
        usize::from(r.height) * cell.1,
    )
}

impl Pictures {
    fn pic(&mut self, raster: Raster) -> Pic {
        self.generation += 1;
        Pic {
            raster,
            generation: self.generation,
        }
    }

    /// Forget the standardised channels (a new feature snapshot arrived).
    pub fn invalidate_features(&mut self) {
        self.levels_key = None;
    }

    /// Rebuild the Filters tab's rasters from `state`.
    pub fn rebuild_filters(&mut self, state: &AppState) {
        let Some(layer) = state.filter_layer() else {
            self.filter_grid = Pic::default();
            self.filter_geom = None;
            self.filter_rgb = None;
            self.filter_zoom = Pic::default();
            return;
        };
        let shape = [
            layer.out_channels,
            layer.in_channels,
            layer.kernel[0],
            layer.kernel[1],
        ];
        let signed = state.colormap == ColormapName::Diverging;
        let values = vp::filter_values(&layer.weights, shape, state.filter_norm, signed);
        let areas = tabs::filters::areas(state, state.body());
        let px = |r: Rect| pixels(r, state.cell_pixels);
        let grid = vp::filter_grid(
            &values,
            shape,
            state.colormap,
            Some(state.filter),
            px(areas.grid),
        );
        self.filter_grid = self.pic(grid);
        self.filter_geom = Some(vp::filter_grid_geometry(
            shape,
            px(areas.grid),
            state.filter,
        ));
        let zoom =
            vp::filter_channels(&values, shape, state.filter, state.colormap, px(areas.zoom));
        self.filter_zoom = self.pic(zoom);
        self.filter_rgb = vp::filter_rgb(
            &layer.weights,
            shape,
            state.filter_norm,
            Some(state.filter),
            areas.rgb.map_or((1, 1), px),
        )
        .map(|r| self.pic(r));
    }

    /// Rebuild the Feature maps tab's rasters from `state`.
    pub fn rebuild_features(&mut self, state: &AppState) {
        let Some(snap) = state.features.as_ref() else {
            self.probe = Pic::default();
            self.feature_grid = Pic::default();
            self.feature_geom = None;
            self.channel_zoom = Pic::default();
            self.levels.clear();
            self.levels_key = None;
            return;
        };
        let key = state.feature_layer;
        if self.levels_key != Some(key) {
            self.probe = {
                let r = vp::probe(&snap.input, snap.input_shape);
                self.pic(r)
            };
            self.levels = state.feature_layer().map_or_else(Vec::new, |l| {
                vp::feature_levels(&l.data, l.channels, l.height, l.width)
            });
            self.levels_key = Some(key);
        }
        let Some(layer) = state.feature_layer() else {
            self.feature_geom = None;
            self.feature_grid = Pic::default();
            self.channel_zoom = Pic::default();
            return;
        };
        let areas = tabs::features::areas(state, state.body());
        let fit = pixels(areas.grid, state.cell_pixels);
        let grid = vp::feature_grid(
            &self.levels,
            layer.height,
            layer.width,
            state.colormap,
            Some(state.channel),
            fit,
        );
        self.feature_grid = self.pic(grid);
        self.feature_geom = Some(vp::feature_grid_geometry(
            self.levels.len(),
            layer.height,
            layer.width,
            fit,
            state.channel,
        ));
        let zoom = self
            .levels
            .get(state.channel)
            .map_or_else(Raster::default, |l| {
                vp::channel(l, layer.height, layer.width, state.colormap)
            });
        self.channel_zoom = self.pic(zoom);
    }
}
