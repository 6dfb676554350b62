//! Rasters derived from the snapshots and the selections, each with a generation so that
//! encoders know when to redo their work. [`Pictures::sync`] runs after every change of the
//! state or the screen (never while drawing) and rebuilds only what that change touched.

use ratatui::layout::Rect;

use super::layout::Layout;
use super::state::{AppState, CamView};
use super::vocab::Slot;
use crate::config::{ColormapName, FilterNorm};
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

/// What the Filters tab's rasters were built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FilterKey {
    snapshot: u64,
    layer: usize,
    filter: usize,
    colormap: ColormapName,
    norm: FilterNorm,
    grid: (usize, usize),
    zoom: (usize, usize),
    rgb: (usize, usize),
    /// The answer of the "what it looks for" mode shown (its generation); `None`: weights.
    looks: Option<u64>,
}

/// What a comparison's pictures were built from: the order, and the health epoch the
/// selectivity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CompareKey {
    order: crate::viz::compare::Order,
    health: Option<usize>,
}

/// The (feature snapshot, layer, comparison) the feature levels were computed for.
type LevelsKey = (u64, usize, Option<CompareKey>, Option<usize>);

/// What the Feature maps tab's rasters were built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FeatureKey {
    channel: usize,
    colormap: ColormapName,
    grid: (usize, usize),
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
    /// Validation tab: the selected image of a cell's list, and thumbnails of its page.
    pub val_image: Pic,
    pub val_thumbs: Pic,
    /// What the Validation tab's pictures were built from.
    val_key: Option<(u64, (usize, usize))>,
    /// Standardised channels of the shown feature layer (while comparing: A's at the scale
    /// shared with B, in the order of `compared`).
    pub levels: Vec<Standardised>,
    /// The (snapshot, layer, comparing) `levels` were computed for.
    levels_key: Option<LevelsKey>,
    /// While comparing: the shown layer of A and B compared, the grid's tiles in its rows'
    /// order (tile `i` is channel `compared.rows[i].channel`).
    pub compared: Option<crate::viz::compare::Layer>,
    /// With the scale pinned (`z`) and another epoch shown, of the same image: the shown layer
    /// at the pinned epoch and the shown epoch's difference from it.
    pub epoch_diff: Option<EpochDiff>,
    filter_key: Option<FilterKey>,
    feature_key: Option<(FeatureKey, LevelsKey)>,
    /// The (snapshot, overlay) the probe picture was built for.
    probe_key: Option<(u64, CamView)>,
}

/// One image's layer at two epochs: the pinned one's maps (at its own scale, the shown ones'
/// being at that scale too) and, per channel, shown − pinned on the diverging palette.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochDiff {
    /// The pinned epoch and the shown one.
    pub epochs: (usize, usize),
    /// Per channel, the pinned epoch's maps.
    pub then: Vec<Standardised>,
    /// Per channel, shown − pinned, symmetric about 0 (`viz::compare::difference`).
    pub diff: Vec<Standardised>,
    /// Per channel, the largest |shown − pinned|.
    pub diff_max: Vec<f32>,
    /// Per channel, the mean at the pinned epoch and at the shown one.
    pub means: Vec<(f64, f64)>,
}

impl EpochDiff {
    /// The shown `layer` (`now`, at epoch `shown`) against its maps `then` at the pinned epoch
    /// (`scales` its channels' scales there); `None` when the two do not fit.
    #[must_use]
    pub fn new(
        layer: &crate::events::LayerMaps,
        shown: usize,
        pinned: usize,
        then: &[f32],
        scales: &[crate::viz::compare::Scale],
    ) -> Option<Self> {
        let per = layer.height * layer.width;
        if shown == pinned || then.len() != layer.data.len() || scales.len() != layer.channels {
            return None;
        }
        let mut out = Self {
            epochs: (pinned, shown),
            then: Vec::with_capacity(layer.channels),
            diff: Vec::with_capacity(layer.channels),
            diff_max: Vec::with_capacity(layer.channels),
            means: Vec::with_capacity(layer.channels),
        };
        let mean_then = crate::viz::compare::channel_means(then, layer.channels);
        let mean_now = crate::viz::compare::channel_means(&layer.data, layer.channels);
        for (c, scale) in scales.iter().enumerate() {
            let old = then.get(c * per..(c + 1) * per).unwrap_or(&[]);
            let now = layer.data.get(c * per..(c + 1) * per).unwrap_or(&[]);
            out.then.push(pinned_levels(scale, old, per));
            let (d, max) = crate::viz::compare::difference(now, old);
            out.diff.push(d);
            out.diff_max.push(max);
            out.means.push((
                mean_then.get(c).copied().unwrap_or(0.0),
                mean_now.get(c).copied().unwrap_or(0.0),
            ));
        }
        Some(out)
    }
}

/// One channel's `plane` at a pinned `scale` (a channel constant there: at its own).
fn pinned_levels(scale: &crate::viz::compare::Scale, plane: &[f32], per: usize) -> Standardised {
    let mut s = if scale.constant() {
        crate::viz::norm::standardise(plane)
    } else {
        scale.levels(plane)
    };
    s.levels.resize(per, 128);
    s
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
    /// The pictures for `state` laid out as `layout`, in cells of `cell` pixels: rebuilt where
    /// what they show changed.
    #[must_use]
    pub fn new(state: &AppState, layout: &Layout, cell: (usize, usize)) -> Self {
        let mut p = Self::default();
        p.sync(state, layout, cell);
        p
    }

    fn pic(&mut self, raster: Raster) -> Pic {
        self.generation += 1;
        Pic {
            raster,
            generation: self.generation,
        }
    }

    /// The picture drawn in `slot`, if there is one.
    #[must_use]
    pub fn get(&self, slot: Slot) -> Option<&Pic> {
        match slot {
            Slot::FilterGrid => Some(&self.filter_grid),
            Slot::FilterRgb => self.filter_rgb.as_ref(),
            Slot::FilterZoom => Some(&self.filter_zoom),
            Slot::Probe => Some(&self.probe),
            Slot::FeatureGrid => Some(&self.feature_grid),
            Slot::ChannelZoom => Some(&self.channel_zoom),
            Slot::ValImage => Some(&self.val_image),
            Slot::ValThumbs => Some(&self.val_thumbs),
        }
    }

    /// The pictures on screen in `layout`: slot, area and raster.
    pub fn placed<'a>(&'a self, layout: &'a Layout) -> impl Iterator<Item = (Slot, Rect, &'a Pic)> {
        layout
            .slots
            .iter()
            .filter_map(|&(slot, area)| Some((slot, area, self.get(slot)?)))
    }

    /// Bring the rasters up to date with `state` laid out as `layout` in cells of `cell` pixels.
    pub fn sync(&mut self, state: &AppState, layout: &Layout, cell: (usize, usize)) {
        self.sync_filters(state, layout, cell);
        self.sync_features(state, layout, cell);
        self.sync_validation(state, layout, cell);
    }

    fn sync_validation(&mut self, state: &AppState, layout: &Layout, cell: (usize, usize)) {
        let v = state.validation();
        let Some(list) = v.list() else {
            if self.val_key.is_some() {
                self.val_image = Pic::default();
                self.val_thumbs = Pic::default();
                self.val_key = None;
            }
            return;
        };
        let key = (v.generation(), pixels(layout.validation.thumbs, cell));
        if self.val_key == Some(key) {
            return;
        }
        self.val_key = Some(key);
        let index_of = |at: usize| v.loaded().and_then(|d| d.rows.get(at)).map(|r| r.index);
        let selected = list.items.get(list.selected).copied().and_then(index_of);
        let image = selected
            .and_then(|i| v.thumb(i))
            .cloned()
            .unwrap_or_default();
        self.val_image = self.pic(image);
        let start = list.page_start();
        let page: Vec<Option<&Raster>> = list
            .items
            .iter()
            .skip(start)
            .take(super::state::THUMB_PAGE)
            .map(|&at| index_of(at).and_then(|i| v.thumb(i)))
            .collect();
        let sheet = super::record::thumbnail_sheet(&page, list.selected - start, key.1);
        self.val_thumbs = self.pic(sheet);
    }

    fn sync_filters(&mut self, state: &AppState, layout: &Layout, cell: (usize, usize)) {
        let Some(layer) = state.filter_layer() else {
            self.filter_grid = Pic::default();
            self.filter_geom = None;
            self.filter_rgb = None;
            self.filter_zoom = Pic::default();
            self.filter_key = None;
            return;
        };
        let areas = &layout.filters;
        let px = |r: Rect| pixels(r, cell);
        let key = FilterKey {
            snapshot: state.snapshots().0,
            layer: state.filter_layer_index(),
            filter: state.filter(),
            colormap: state.colormap(),
            norm: state.filter_norm(),
            grid: px(areas.grid),
            zoom: px(areas.zoom),
            rgb: areas.rgb.map_or((1, 1), px),
            looks: state.looks_shown().map(|_| state.looks().generation()),
        };
        if self.filter_key == Some(key) {
            return;
        }
        self.filter_key = Some(key);
        if let Some(looks) = state.looks_shown() {
            self.filter_grid = self.pic(super::looks::grid(looks, key.grid, key.filter));
            self.filter_geom = Some(super::looks::grid_geometry(looks, key.grid, key.filter));
            self.filter_zoom = self.pic(super::looks::zoom(looks, key.zoom, key.filter));
            self.filter_rgb = None;
            return;
        }
        let shape = [
            layer.out_channels,
            layer.in_channels,
            layer.kernel[0],
            layer.kernel[1],
        ];
        let signed = key.colormap == ColormapName::Diverging;
        let values = vp::filter_values(&layer.weights, shape, key.norm, signed);
        let grid = vp::filter_grid(&values, shape, key.colormap, Some(key.filter), key.grid);
        self.filter_grid = self.pic(grid);
        self.filter_geom = Some(vp::filter_grid_geometry(shape, key.grid, key.filter));
        let zoom = vp::filter_channels(&values, shape, key.filter, key.colormap, key.zoom);
        self.filter_zoom = self.pic(zoom);
        self.filter_rgb =
            vp::filter_rgb(&layer.weights, shape, key.norm, Some(key.filter), key.rgb)
                .map(|r| self.pic(r));
    }

    /// The shown layer's levels, and while comparing the comparison they come from.
    fn sync_levels(&mut self, state: &AppState) {
        self.epoch_diff = match (
            state.pinned_scale(),
            state.features(),
            state.feature_layer(),
        ) {
            (Some(p), Some(snap), Some(l))
                if state.compare_image().is_none() && p.image == snap.image =>
            {
                p.layer(&l.name)
                    .zip(p.maps(&l.name))
                    .and_then(|(scales, then)| EpochDiff::new(l, snap.epoch, p.epoch, then, scales))
            }
            _ => None,
        };
        self.compared = state.compare_layers().map(|(a, b)| {
            let sel = state
                .class_means(&a.name)
                .map(crate::viz::compare::selectivity);
            crate::viz::compare::layer(
                &a.data,
                &b.data,
                a.channels,
                a.height * a.width,
                sel.as_deref(),
                state.compare_order(),
            )
        });
        self.levels = match &self.compared {
            Some(c) => c
                .rows
                .iter()
                .filter_map(|r| c.a.get(r.channel).cloned())
                .collect(),
            None => state.feature_layer().map_or_else(Vec::new, |l| {
                let pinned = state
                    .pinned_scale()
                    .and_then(|p| p.layer(&l.name))
                    .filter(|s| s.len() == l.channels);
                match pinned {
                    // Each channel at the pinned epoch's scale: brightness compares across epochs.
                    Some(scales) => {
                        let per = l.height * l.width;
                        scales
                            .iter()
                            .enumerate()
                            .map(|(c, scale)| {
                                let plane = l.data.get(c * per..(c + 1) * per).unwrap_or(&[]);
                                pinned_levels(scale, plane, per)
                            })
                            .collect()
                    }
                    None => vp::feature_levels(&l.data, l.channels, l.height, l.width),
                }
            }),
        };
    }

    fn sync_features(&mut self, state: &AppState, layout: &Layout, cell: (usize, usize)) {
        let Some(snap) = state.features() else {
            self.probe = Pic::default();
            self.feature_grid = Pic::default();
            self.feature_geom = None;
            self.channel_zoom = Pic::default();
            self.levels.clear();
            self.compared = None;
            self.epoch_diff = None;
            self.levels_key = None;
            self.feature_key = None;
            self.probe_key = None;
            return;
        };
        let probe_key = (state.snapshots().1, state.cam());
        if self.probe_key != Some(probe_key) {
            self.probe_key = Some(probe_key);
            let photo = vp::probe(&snap.input, snap.input_shape);
            let r = match (&snap.cam, state.cam()) {
                (Some(map), cam) if cam.on && map.has_evidence() => overlay(&photo, map, cam),
                // The pane says so in words instead (`tabs/features.rs`).
                (Some(_), cam) if cam.on => Raster::default(),
                _ => photo,
            };
            self.probe = self.pic(r);
        }
        let compare_key = state.compare_layers().map(|_| CompareKey {
            order: state.compare_order(),
            health: state.health().and_then(|h| h.latest()).map(|e| e.epoch),
        });
        let levels_key = (
            state.snapshots().1,
            state.feature_layer_index(),
            compare_key,
            state.pinned_scale().map(|p| p.epoch),
        );
        if self.levels_key != Some(levels_key) {
            self.sync_levels(state);
            self.levels_key = Some(levels_key);
        }
        let Some(layer) = state.feature_layer() else {
            self.feature_geom = None;
            self.feature_grid = Pic::default();
            self.channel_zoom = Pic::default();
            self.feature_key = None;
            return;
        };
        let key = FeatureKey {
            channel: state.channel(),
            colormap: state.colormap(),
            grid: pixels(layout.features.grid, cell),
        };
        if self.feature_key == Some((key, levels_key)) {
            return;
        }
        self.feature_key = Some((key, levels_key));
        let grid = vp::feature_grid(
            &self.levels,
            layer.height,
            layer.width,
            key.colormap,
            Some(key.channel),
            key.grid,
        );
        self.feature_grid = self.pic(grid);
        self.feature_geom = Some(vp::feature_grid_geometry(
            self.levels.len(),
            layer.height,
            layer.width,
            key.grid,
            key.channel,
        ));
        let zoom = self.zoom_raster(layer, key);
        self.channel_zoom = self.pic(zoom);
    }

    /// The selected channel's zoom: its map, or three panes (A | B | A−B while comparing,
    /// pinned | shown | difference with the scale pinned at another epoch).
    fn zoom_raster(&self, layer: &crate::events::LayerMaps, key: FeatureKey) -> Raster {
        match (&self.compared, &self.epoch_diff) {
            (Some(c), _) => c.rows.get(key.channel).map_or_else(Raster::default, |r| {
                three_panes(
                    [
                        c.a.get(r.channel),
                        c.b.get(r.channel),
                        c.diff.get(r.channel),
                    ],
                    layer.height,
                    layer.width,
                    key.colormap,
                )
            }),
            (None, Some(d)) => three_panes(
                [
                    d.then.get(key.channel),
                    self.levels.get(key.channel),
                    d.diff.get(key.channel),
                ],
                layer.height,
                layer.width,
                key.colormap,
            ),
            (None, None) => self
                .levels
                .get(key.channel)
                .map_or_else(Raster::default, |l| {
                    vp::channel(l, layer.height, layer.width, key.colormap)
                }),
        }
    }
}

/// One channel three times side by side, a quarter of a map apart: two maps at one scale (A and
/// B, or the pinned epoch and the shown one) and their difference on the diverging palette.
fn three_panes(panes: [Option<&Standardised>; 3], h: usize, w: usize, map: ColormapName) -> Raster {
    let gap = (w / 4).max(1);
    let mut out = Raster::new(3 * w + 2 * gap, h, vp::BACKGROUND);
    let colours = [map, map, ColormapName::Diverging];
    for (i, (levels, colours)) in panes.into_iter().zip(colours).enumerate() {
        if let Some(l) = levels {
            out.blit(&vp::channel(l, h, w, colours), i * (w + gap), 0);
        }
    }
    out
}

/// The probe photo with Grad-CAM's map over it, as the user set the overlay.
fn overlay(photo: &Raster, map: &crate::events::CamMap, cam: CamView) -> Raster {
    let heat = crate::model::explain::Heat {
        width: map.width,
        height: map.height,
        values: map.values.clone(),
    };
    crate::viz::overlay::overlay(photo, &heat, cam.weight, cam.colormap)
}
