//! The pictures convscope shows: filter grids, RGB filter patches, feature-map grids, probes.

use super::colormap::{self, Rgb};
use super::norm::{self, Standardised};
use super::raster::{Grid, Raster, columns_for, layout, tile};
use crate::config::{ColormapName, FilterNorm};

/// Colour of the gaps between tiles.
pub const BACKGROUND: Rgb = [16, 16, 16];
/// Frame colour of the selected tile.
pub const SELECTED: Rgb = [255, 255, 255];
/// Frame colour of a dead (constant) channel.
pub const DEAD: Rgb = [230, 40, 40];

/// Kernel shape `[out, in, kh, kw]`.
pub type KernelShape = [usize; 4];

/// Normalise a conv kernel for display: min-max to 0..1 over the layer or per filter, or, for a
/// diverging colormap (`signed`), symmetric about zero so that white means zero.
#[must_use]
pub fn filter_values(
    weights: &[f32],
    shape: KernelShape,
    scope: FilterNorm,
    signed: bool,
) -> Vec<f32> {
    let f = if signed {
        norm::symmetric
    } else {
        norm::min_max
    };
    match scope {
        FilterNorm::Layer => f(weights),
        FilterNorm::Filter => {
            let per = (shape[1] * shape[2] * shape[3]).max(1);
            weights.chunks(per).flat_map(f).collect()
        }
    }
}

/// One kernel slice `(filter, channel)` of normalised values as a `kh` × `kw` raster.
#[must_use]
pub fn kernel(
    values: &[f32],
    shape: KernelShape,
    filter: usize,
    channel: usize,
    map: ColormapName,
) -> Raster {
    let [_, inp, kh, kw] = shape;
    let base = (filter * inp + channel) * kh * kw;
    Raster::from_fn(kw, kh, |x, y| {
        colormap::color(map, values.get(base + y * kw + x).copied().unwrap_or(0.5))
    })
}

/// One filter: its input channels side by side, one pixel apart.
#[must_use]
pub fn filter_strip(
    values: &[f32],
    shape: KernelShape,
    filter: usize,
    map: ColormapName,
) -> Raster {
    let tiles: Vec<Raster> = (0..shape[1])
        .map(|c| kernel(values, shape, filter, c, map))
        .collect();
    // No outer gap: strips get their own gaps when tiled into the grid.
    let t = tile(&tiles, tiles.len(), 1, BACKGROUND, |_| None);
    crop_border(&t)
}

/// One filter's input channels tiled to fill a `fit` = (width, height) pixel box, for the zoom.
#[must_use]
pub fn filter_channels(
    values: &[f32],
    shape: KernelShape,
    filter: usize,
    map: ColormapName,
    fit: (usize, usize),
) -> Raster {
    let tiles: Vec<Raster> = (0..shape[1])
        .map(|c| kernel(values, shape, filter, c, map))
        .collect();
    let cols = columns_for(tiles.len(), shape[3], shape[2], 1, fit);
    crop_border(&tile(&tiles, cols, 1, BACKGROUND, |_| None))
}

/// Where each filter's strip sits in [`filter_grid`] for `shape` and `fit`: every filter when
/// they fit with one pixel per weight, else the page of them that holds `selected` (a weight
/// is never shrunk into its neighbours).
#[must_use]
pub fn filter_grid_geometry(shape: KernelShape, fit: (usize, usize), selected: usize) -> Grid {
    let [out, inp, kh, kw] = shape;
    let tile_w = (inp * (kw + 1)).saturating_sub(1).max(1);
    let tile_h = kh.max(1);
    layout(out, tile_w, tile_h, 2, fit, selected, None)
}

/// The filters of a layer (a page of them where they do not all fit), each a strip of its input
/// channels, tiled to fill a `fit` pixel box, with the selected filter framed.
#[must_use]
pub fn filter_grid(
    values: &[f32],
    shape: KernelShape,
    map: ColormapName,
    selected: Option<usize>,
    fit: (usize, usize),
) -> Raster {
    let g = filter_grid_geometry(shape, fit, selected.unwrap_or(0));
    let strips: Vec<Raster> = (g.first..g.first + g.count)
        .map(|f| filter_strip(values, shape, f, map))
        .collect();
    tile(&strips, g.columns, g.gap, BACKGROUND, |i| {
        (Some(g.first + i) == selected).then_some(SELECTED)
    })
}

/// The filters of an RGB-input layer as colour patches: channel 0/1/2 -> red/green/blue, each
/// min-max normalised over the layer or per filter. `None` when the layer does not read 3 channels.
#[must_use]
pub fn filter_rgb(
    weights: &[f32],
    shape: KernelShape,
    scope: FilterNorm,
    selected: Option<usize>,
    fit: (usize, usize),
) -> Option<Raster> {
    let [out, inp, kh, kw] = shape;
    if inp != 3 || out == 0 {
        return None;
    }
    let patches = rgb_patches(weights, shape, scope);
    let cols = columns_for(out, kw, kh, 1, fit);
    Some(tile(&patches, cols, 1, BACKGROUND, |i| {
        (Some(i) == selected).then_some(SELECTED)
    }))
}

/// One colour patch per filter of a layer that reads 3 channels (channel 0/1/2 -> red/green/
/// blue), min-max normalised over the layer or per filter.
#[must_use]
pub fn rgb_patches(weights: &[f32], shape: KernelShape, scope: FilterNorm) -> Vec<Raster> {
    let [out, _, kh, kw] = shape;
    let v = filter_values(weights, shape, scope, false);
    (0..out)
        .map(|f| {
            Raster::from_fn(kw, kh, |x, y| {
                let at = |c: usize| {
                    let t = v
                        .get(((f * 3 + c) * kh + y) * kw + x)
                        .copied()
                        .unwrap_or(0.5);
                    (t * 255.0).round().clamp(0.0, 255.0) as u8
                };
                [at(0), at(1), at(2)]
            })
        })
        .collect()
}

/// Standardise every channel of a `[channels, h, w]` activation the tutorial's way.
#[must_use]
pub fn feature_levels(data: &[f32], channels: usize, h: usize, w: usize) -> Vec<Standardised> {
    let per = h * w;
    (0..channels)
        .map(|c| {
            let start = (c * per).min(data.len());
            let end = ((c + 1) * per).min(data.len());
            let mut s = norm::standardise(&data[start..end]);
            s.levels.resize(per, 128);
            s
        })
        .collect()
}

/// One standardised channel as an `h` × `w` raster.
#[must_use]
pub fn channel(levels: &Standardised, h: usize, w: usize, map: ColormapName) -> Raster {
    Raster::from_fn(w, h, |x, y| {
        colormap::color_u8(map, levels.levels.get(y * w + x).copied().unwrap_or(128))
    })
}

/// Smallest side, in pixels, a feature map is shrunk to in a grid; where they would be smaller,
/// fewer maps are shown (a page).
pub const MIN_MAP_SIDE: usize = 8;

/// Where each channel sits in [`feature_grid`]: all channels at their own size when they fit
/// (drawing enlarges them by a whole factor), else shrunk into the box with their one-pixel gaps
/// kept, and where they would shrink below [`MIN_MAP_SIDE`], the page of them that holds
/// `selected`.
#[must_use]
pub fn feature_grid_geometry(
    channels: usize,
    h: usize,
    w: usize,
    fit: (usize, usize),
    selected: usize,
) -> Grid {
    layout(channels, w, h, 1, fit, selected, Some(MIN_MAP_SIDE))
}

/// The channels (a page of them where they do not all fit) as a grid filling a `fit` pixel box,
/// dead channels framed red, the selected one white.
#[must_use]
pub fn feature_grid(
    levels: &[Standardised],
    h: usize,
    w: usize,
    map: ColormapName,
    selected: Option<usize>,
    fit: (usize, usize),
) -> Raster {
    let g = feature_grid_geometry(levels.len(), h, w, fit, selected.unwrap_or(0));
    let tiles: Vec<Raster> = levels[g.first..g.first + g.count]
        .iter()
        .map(|l| {
            let t = channel(l, h, w, map);
            if (g.tile_w, g.tile_h) == (t.width(), t.height()) {
                t
            } else {
                t.shrunk(g.tile_w, g.tile_h)
            }
        })
        .collect();
    tile(&tiles, g.columns, g.gap, BACKGROUND, |i| {
        let i = g.first + i;
        if Some(i) == selected {
            Some(SELECTED)
        } else if levels[i].dead {
            Some(DEAD)
        } else {
            None
        }
    })
}

/// The probe image as the network sees it (`[c, h, w]`, 0..1): RGB, or gray for one channel.
#[must_use]
pub fn probe(input: &[f32], shape: [usize; 3]) -> Raster {
    let [c, h, w] = shape;
    let plane = h * w;
    let at = |ch: usize, x: usize, y: usize| {
        let v = input.get(ch * plane + y * w + x).copied().unwrap_or(0.0);
        if v.is_finite() {
            (v * 255.0).round().clamp(0.0, 255.0) as u8
        } else {
            0
        }
    };
    Raster::from_fn(w, h, |x, y| {
        if c >= 3 {
            [at(0, x, y), at(1, x, y), at(2, x, y)]
        } else {
            [at(0, x, y); 3]
        }
    })
}

fn crop_border(r: &Raster) -> Raster {
    if r.width() < 2 || r.height() < 2 {
        return r.clone();
    }
    Raster::from_fn(r.width() - 2, r.height() - 2, |x, y| r.pixel(x + 1, y + 1))
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the expected values are exact
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn ramp(n: usize) -> Vec<f32> {
        (0..n).map(|i| i as f32 - n as f32 / 2.0).collect()
    }

    #[test]
    fn layer_scope_spans_the_whole_layer_filter_scope_each_filter() {
        let w = ramp(2 * 3 * 3 * 3);
        let shape = [2, 3, 3, 3];
        let layer = filter_values(&w, shape, FilterNorm::Layer, false);
        assert_eq!(layer[0], 0.0);
        assert_eq!(layer[53], 1.0);
        assert!(layer[26] < 0.5);
        let filt = filter_values(&w, shape, FilterNorm::Filter, false);
        assert_eq!(
            (filt[0], filt[26], filt[27], filt[53]),
            (0.0, 1.0, 0.0, 1.0)
        );
    }

    #[test]
    fn filter_grid_shows_every_weight_and_frames_the_selection() {
        let shape = [16, 3, 3, 3];
        let v = filter_values(&ramp(16 * 27), shape, FilterNorm::Layer, false);
        let g = filter_grid(&v, shape, ColormapName::Viridis, Some(0), (200, 100));
        let colours: HashSet<Rgb> = g.pixels().iter().copied().collect();
        assert!(colours.len() > 100, "{}", colours.len());
        assert!(colours.contains(&colormap::color(ColormapName::Viridis, 0.0)));
        assert!(colours.contains(&colormap::color(ColormapName::Viridis, 1.0)));
        assert_eq!(g.pixel(1, 1), SELECTED);
        // First weight of filter 0 sits at (2, 2) (outer gap 2).
        assert_eq!(g.pixel(2, 2), colormap::color(ColormapName::Viridis, v[0]));
    }

    #[test]
    fn zoom_tiles_many_channels_into_a_block() {
        let shape = [2, 32, 3, 3];
        let v = filter_values(&ramp(2 * 32 * 9), shape, FilterNorm::Layer, false);
        let z = filter_channels(&v, shape, 1, ColormapName::Gray, (40, 40));
        // A block of 3×3 kernels, one pixel apart, no outer border.
        let cols = columns_for(32, 3, 3, 1, (40, 40));
        assert!(cols > 1 && cols < 32, "{cols}");
        assert_eq!(
            (z.width(), z.height()),
            (cols * 4 - 1, 32_usize.div_ceil(cols) * 4 - 1)
        );
        let first = v[32 * 9];
        assert_eq!(z.pixel(0, 0), colormap::color(ColormapName::Gray, first));
    }

    #[test]
    fn grid_geometry_matches_the_rasters() {
        let shape = [16, 3, 3, 3];
        let v = filter_values(&ramp(16 * 27), shape, FilterNorm::Layer, false);
        let g = filter_grid_geometry(shape, (200, 100), 0);
        let r = filter_grid(&v, shape, ColormapName::Viridis, None, (200, 100));
        let rows = 16_usize.div_ceil(g.columns);
        assert_eq!(r.width(), g.gap + g.columns * (g.tile_w + g.gap));
        assert_eq!(r.height(), g.gap + rows * (g.tile_h + g.gap));
        assert_eq!(g.tile_at(2, 2), Some(0));
        assert_eq!(g.tile_at(2 + g.tile_w + g.gap, 2), Some(1));
        let fg = feature_grid_geometry(8, 4, 6, (60, 60), 0);
        let levels = feature_levels(&ramp(8 * 24), 8, 4, 6);
        let fr = feature_grid(&levels, 4, 6, ColormapName::Viridis, None, (60, 60));
        assert_eq!(fr.width(), fg.gap + fg.columns * (fg.tile_w + fg.gap));
    }

    #[test]
    fn rgb_patches_only_for_three_input_channels() {
        let w = ramp(4 * 3 * 2 * 2);
        assert!(filter_rgb(&w, [4, 3, 2, 2], FilterNorm::Layer, None, (50, 50)).is_some());
        assert!(filter_rgb(&w, [4, 3, 2, 2], FilterNorm::Filter, None, (50, 50)).is_some());
        assert!(filter_rgb(&ramp(8), [2, 1, 2, 2], FilterNorm::Layer, None, (50, 50)).is_none());
    }

    #[test]
    fn feature_grid_marks_a_dead_channel_and_draws_it_flat() {
        let (h, w) = (4, 4);
        let mut data = ramp(3 * h * w);
        for v in &mut data[16..32] {
            *v = 0.0;
        }
        let levels = feature_levels(&data, 3, h, w);
        assert_eq!(
            levels.iter().map(|l| l.dead).collect::<Vec<_>>(),
            vec![false, true, false]
        );
        let g = feature_grid(&levels, h, w, ColormapName::Viridis, None, (100, 10));
        // Three columns: channel 1 starts at x = 1 + 5.
        let mid = colormap::color_u8(ColormapName::Viridis, 128);
        for y in 1..5 {
            for x in 6..10 {
                assert_eq!(g.pixel(x, y), mid);
            }
        }
        assert_eq!(g.pixel(5, 0), DEAD);
    }

    #[test]
    fn probe_is_rgb_or_gray() {
        let rgb = probe(&[1.0, 0.0, 0.5], [3, 1, 1]);
        assert_eq!(rgb.pixel(0, 0), [255, 0, 128]);
        let gray = probe(&[0.5], [1, 1, 1]);
        assert_eq!(gray.pixel(0, 0), [128; 3]);
    }
}
