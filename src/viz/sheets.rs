//! Labelled pictures for export, the same from the TUI (`e`) and from `convscope export`: a title
//! (run, layer, epoch, image), every tile with its index, and a colour scale saying what the
//! colours mean. No selection frame: what is exported is the layer, not the screen.

use super::colormap::{self, Rgb};
use super::norm::Standardised;
use super::pictures::{self, BACKGROUND, DEAD, KernelShape};
use super::raster::{Raster, tile};
use super::text::{self, DIM, GLYPH, INK};
use crate::config::{ColormapName, FilterNorm};

/// Pixels per weight in the filter sheets (one weight is one `BLOCK`² square).
pub const BLOCK: usize = 8;
/// Pixels between the tiles of a sheet.
pub const GAP: usize = 6;
/// Pixels between the input channels inside one filter's strip.
pub const CHANNEL_GAP: usize = 2;
/// A sheet's grid is made about this wide, where its tiles allow.
pub const TARGET_WIDTH: usize = 1200;
/// Channels per row in the feature-map sheets (the tutorial's 8 × 8 square).
pub const FEATURE_COLUMNS: usize = 8;
/// Feature maps are enlarged by a whole factor to at least this many pixels a side.
pub const FEATURE_MIN_SIDE: usize = 64;
/// Height of the colour scale's bar.
const BAR_H: usize = 12;
/// Height of a colour scale: the bar and the numbers under it.
pub const SCALE_H: usize = BAR_H + 3 + GLYPH;
/// Height of the index above each tile.
pub const LABEL_H: usize = GLYPH + 2;
/// Width of the ring around each feature map (red for a constant one).
pub const RING: usize = 2;
/// Width of the colour scale's bar.
const BAR_W: usize = 256;

/// What every sheet's title says: the run and the checkpoint the pictures come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The run's name (its folder's name).
    pub run: String,
    /// "epoch 7", or "epoch 8, batch 12 of 40" for a mid-epoch checkpoint.
    pub epoch: String,
}

/// Whole-number enlargement of an `h` × `w` feature map in the sheets.
#[must_use]
pub fn feature_scale(h: usize, w: usize) -> usize {
    FEATURE_MIN_SIDE.div_ceil(h.max(w).max(1)).max(1)
}

/// `body` with `label` (small, dim) above it, as wide as the wider of the two.
fn labelled(body: &Raster, label: &str) -> Raster {
    let top = LABEL_H;
    let mut out = Raster::new(
        body.width().max(text::width(label, 1)),
        top + body.height(),
        BACKGROUND,
    );
    text::draw(&mut out, 0, 0, label, 1, DIM);
    out.blit(body, 0, top);
    out
}

/// `body` inside a ring `width` pixels wide of colour `ring`.
fn ringed(body: &Raster, width: usize, ring: Rgb) -> Raster {
    let mut out = Raster::new(body.width() + 2 * width, body.height() + 2 * width, ring);
    out.blit(body, width, width);
    out
}

/// Rasters of different sizes on one background, each in a cell as big as the biggest, row by
/// row in `columns` columns.
fn sheet_grid(cells: &[Raster], columns: usize) -> Raster {
    let w = cells.iter().map(Raster::width).max().unwrap_or(0);
    let h = cells.iter().map(Raster::height).max().unwrap_or(0);
    let padded: Vec<Raster> = cells
        .iter()
        .map(|c| {
            let mut p = Raster::new(w, h, BACKGROUND);
            p.blit(c, 0, 0);
            p
        })
        .collect();
    tile(&padded, columns, GAP, BACKGROUND, |_| None)
}

/// Columns for `n` tiles `tile_w` wide so that the grid is about [`TARGET_WIDTH`] wide, its
/// rows as full as they can be.
#[must_use]
pub fn columns(n: usize, tile_w: usize) -> usize {
    let fit = (TARGET_WIDTH / (tile_w + GAP).max(1)).clamp(1, n.max(1));
    let rows = n.max(1).div_ceil(fit);
    n.max(1).div_ceil(rows)
}

/// Rasters one under another, `GAP` apart, left-aligned.
fn stack(parts: &[&Raster]) -> Raster {
    let w = parts.iter().map(|p| p.width()).max().unwrap_or(0);
    let h = parts.iter().map(|p| p.height()).sum::<usize>() + GAP * parts.len().saturating_sub(1);
    let mut out = Raster::new(w, h, BACKGROUND);
    let mut y = 0;
    for p in parts {
        out.blit(p, 0, y);
        y += p.height() + GAP;
    }
    out
}

/// A colour scale: the colormap from 0 to 1 as a bar, with `ends` written under its two ends
/// and `middle` under its middle, and `caption` to its right.
#[must_use]
pub fn scale_bar(map: ColormapName, ends: (&str, &str), middle: &str, caption: &str) -> Raster {
    let label_y = BAR_H + 3;
    let caption_x = BAR_W + 2 * GAP;
    let width = caption_x + text::width(caption, 1);
    let mut out = Raster::new(
        width.max(BAR_W + text::width(ends.1, 1) / 2),
        label_y + GLYPH,
        BACKGROUND,
    );
    for x in 0..BAR_W {
        let c = colormap::color(map, x as f32 / (BAR_W - 1) as f32);
        for y in 0..BAR_H {
            out.set(x, y, c);
        }
    }
    text::draw(&mut out, 0, label_y, ends.0, 1, DIM);
    let right = BAR_W.saturating_sub(text::width(ends.1, 1));
    text::draw(&mut out, right, label_y, ends.1, 1, DIM);
    let mid = (BAR_W / 2).saturating_sub(text::width(middle, 1) / 2);
    text::draw(&mut out, mid, label_y, middle, 1, DIM);
    text::draw(&mut out, caption_x, 2, caption, 1, INK);
    out
}

/// Finite minimum and maximum of `values` (0, 0 when there is none).
#[must_use]
pub fn finite_range(values: &[f32]) -> (f32, f32) {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi { (0.0, 0.0) } else { (lo, hi) }
}

/// How the weights were normalised, in words.
fn norm_words(norm: FilterNorm, signed: bool) -> &'static str {
    match (norm, signed) {
        (FilterNorm::Layer, false) => "min-max over layer",
        (FilterNorm::Filter, false) => "min-max per filter",
        (FilterNorm::Layer, true) => "symmetric about 0 over layer",
        (FilterNorm::Filter, true) => "symmetric about 0 per filter",
    }
}

/// The colour scale of a filter sheet: which weights the two ends of the colormap are.
fn filter_scale(weights: &[f32], map: ColormapName, norm: FilterNorm) -> Raster {
    let signed = map == ColormapName::Diverging;
    let (lo, hi) = finite_range(weights);
    match (norm, signed) {
        (FilterNorm::Layer, false) => scale_bar(
            map,
            (&format!("{lo:.3}"), &format!("{hi:.3}")),
            &format!("{:.3}", f32::midpoint(lo, hi)),
            "weight",
        ),
        (FilterNorm::Layer, true) => {
            let m = lo.abs().max(hi.abs());
            scale_bar(
                map,
                (&format!("{:.3}", -m), &format!("{m:.3}")),
                "0",
                "weight",
            )
        }
        (FilterNorm::Filter, false) => {
            scale_bar(map, ("min", "max"), "", "each filter's own weight range")
        }
        (FilterNorm::Filter, true) => scale_bar(
            map,
            ("-max|w|", "+max|w|"),
            "0",
            "each filter's own weights, 0 in the middle",
        ),
    }
}

/// One filter's input channels side by side, each weight a `BLOCK`² square.
fn filter_strip(values: &[f32], shape: KernelShape, filter: usize, map: ColormapName) -> Raster {
    let kernels: Vec<Raster> = (0..shape[1])
        .map(|c| pictures::kernel(values, shape, filter, c, map).upscale(BLOCK))
        .collect();
    let t = tile(&kernels, kernels.len(), CHANNEL_GAP, BACKGROUND, |_| None);
    // No outer gap: the sheet puts its own around each filter.
    Raster::from_fn(
        t.width() - 2 * CHANNEL_GAP,
        t.height() - 2 * CHANNEL_GAP,
        |x, y| t.pixel(x + CHANNEL_GAP, y + CHANNEL_GAP),
    )
}

/// Every filter of a conv layer: a grid of filters (each numbered, its input channels side by
/// side), a colour scale with the weights it spans, and a title.
#[must_use]
pub fn filters(
    weights: &[f32],
    shape: KernelShape,
    map: ColormapName,
    norm: FilterNorm,
    layer: &str,
    source: &Source,
) -> Raster {
    let signed = map == ColormapName::Diverging;
    let values = pictures::filter_values(weights, shape, norm, signed);
    let cells: Vec<Raster> = (0..shape[0])
        .map(|f| labelled(&filter_strip(&values, shape, f, map), &(f + 1).to_string()))
        .collect();
    let tile_w = cells.iter().map(Raster::width).max().unwrap_or(1);
    let grid = sheet_grid(&cells, columns(cells.len(), tile_w));
    let body = stack(&[&grid, &filter_scale(weights, map, norm)]);
    let [out, inp, kh, kw] = shape;
    let title = format!(
        "run {} · {} · {} · {out} filters × {inp} input channels",
        source.run, layer, source.epoch
    );
    let detail = format!(
        "each filter numbered, its {inp} input channel{} left to right · {kh}×{kw} kernels · {} · {}",
        if inp == 1 { "" } else { "s" },
        norm_words(norm, signed),
        colormap::name(map)
    );
    text::titled(&body, layer, &[&title, &detail], BACKGROUND)
}

/// One filter of a conv layer, its input channels tiled, each weight a `BLOCK`² square.
#[must_use]
pub fn filter(
    weights: &[f32],
    shape: KernelShape,
    filter: usize,
    map: ColormapName,
    norm: FilterNorm,
    layer: &str,
    source: &Source,
) -> Raster {
    let signed = map == ColormapName::Diverging;
    let values = pictures::filter_values(weights, shape, norm, signed);
    let cells: Vec<Raster> = (0..shape[1])
        .map(|c| {
            labelled(
                &pictures::kernel(&values, shape, filter, c, map).upscale(BLOCK),
                &format!("ch {}", c + 1),
            )
        })
        .collect();
    let tile_w = cells.iter().map(Raster::width).max().unwrap_or(1);
    let grid = sheet_grid(&cells, columns(cells.len(), tile_w));
    let body = stack(&[&grid, &filter_scale(weights, map, norm)]);
    let title = format!(
        "run {} · {} · {} · filter {} of {}",
        source.run,
        layer,
        source.epoch,
        filter + 1,
        shape[0]
    );
    let detail = format!(
        "its {} input channels · {}×{} kernels · {} · {}",
        shape[1],
        shape[2],
        shape[3],
        norm_words(norm, signed),
        colormap::name(map)
    );
    text::titled(
        &body,
        &format!("{layer} filter {}", filter + 1),
        &[&title, &detail],
        BACKGROUND,
    )
}

/// A first layer reading RGB: each filter as a numbered colour patch (input channel 0/1/2 ->
/// red/green/blue). `None` when the layer does not read 3 channels.
#[must_use]
pub fn filters_rgb(
    weights: &[f32],
    shape: KernelShape,
    norm: FilterNorm,
    layer: &str,
    source: &Source,
) -> Option<Raster> {
    let [out, inp, ..] = shape;
    if inp != 3 || out == 0 {
        return None;
    }
    let cells: Vec<Raster> = pictures::rgb_patches(weights, shape, norm)
        .iter()
        .enumerate()
        .map(|(f, patch)| labelled(&patch.upscale(BLOCK), &(f + 1).to_string()))
        .collect();
    let tile_w = cells.iter().map(Raster::width).max().unwrap_or(1);
    let grid = sheet_grid(&cells, columns(out, tile_w));
    let scope = match norm {
        FilterNorm::Layer => "over layer",
        FilterNorm::Filter => "per filter",
    };
    let title = format!(
        "run {} · {} · {} · {out} filters as RGB patches",
        source.run, layer, source.epoch
    );
    let detail = format!("input channel 0/1/2 -> red/green/blue, each min-max {scope}");
    Some(text::titled(
        &grid,
        &format!("{layer} RGB"),
        &[&title, &detail],
        BACKGROUND,
    ))
}

/// The colour scale of a feature-map sheet: the tutorial's standardisation.
fn feature_scale_bar(map: ColormapName) -> Raster {
    scale_bar(
        map,
        ("-2σ", "+2σ"),
        "mean",
        "each channel: (x-mean)/std·64+128, clipped",
    )
}

/// Every channel of one layer for one image: numbered maps in the tutorial's 8 columns,
/// constant (dead) channels ringed red, a colour scale and a title naming the image and what
/// the network predicted for it.
#[must_use]
#[allow(clippy::too_many_arguments)] // the maps, their shape and colormap, and what the title names
pub fn feature_maps(
    levels: &[Standardised],
    h: usize,
    w: usize,
    map: ColormapName,
    layer: &str,
    image: &str,
    prediction: &str,
    source: &Source,
) -> Raster {
    let s = feature_scale(h, w);
    let cells: Vec<Raster> = levels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let ring = if l.dead { DEAD } else { BACKGROUND };
            let body = ringed(&pictures::channel(l, h, w, map).upscale(s), RING, ring);
            labelled(&body, &(i + 1).to_string())
        })
        .collect();
    let grid = sheet_grid(&cells, FEATURE_COLUMNS.min(cells.len()).max(1));
    let body = stack(&[&grid, &feature_scale_bar(map)]);
    let c = levels.len();
    let dead = levels.iter().filter(|l| l.dead).count();
    let title = format!(
        "run {} · {} · {} · image {image} · predicted {prediction}",
        source.run, layer, source.epoch
    );
    let detail = format!(
        "{c} channels of {h}×{w}, shown ×{s} · {} · {dead} constant (red ring)",
        colormap::name(map)
    );
    text::titled(&body, layer, &[&title, &detail], BACKGROUND)
}

/// One channel of one layer for one image, enlarged.
#[must_use]
#[allow(clippy::too_many_arguments)] // the map, its shape and colormap, and what the title names
pub fn feature_map(
    level: &Standardised,
    h: usize,
    w: usize,
    map: ColormapName,
    index: (usize, usize),
    layer: &str,
    image: &str,
    source: &Source,
) -> Raster {
    let s = (4 * FEATURE_MIN_SIDE).div_ceil(h.max(w).max(1)).max(1);
    let body = stack(&[
        &pictures::channel(level, h, w, map).upscale(s),
        &feature_scale_bar(map),
    ]);
    let title = format!(
        "run {} · {} · {} · image {image} · channel {} of {}",
        source.run,
        layer,
        source.epoch,
        index.0 + 1,
        index.1
    );
    let detail = format!(
        "{h}×{w}, shown ×{s} · {}{}",
        colormap::name(map),
        if level.dead {
            " · constant (dead)"
        } else {
            ""
        }
    );
    text::titled(
        &body,
        &format!("{layer} channel {}", index.0 + 1),
        &[&title, &detail],
        BACKGROUND,
    )
}

/// The probe image as the network sees it, enlarged, titled with what it predicted.
#[must_use]
pub fn probe(
    input: &[f32],
    shape: [usize; 3],
    image: &str,
    prediction: &str,
    source: &Source,
) -> Raster {
    let [_, h, w] = shape;
    let s = (4 * FEATURE_MIN_SIDE).div_ceil(h.max(w).max(1)).max(1);
    let body = pictures::probe(input, shape).upscale(s);
    let title = format!(
        "run {} · {} · predicted {prediction}",
        source.run, source.epoch
    );
    let detail = format!("{w}×{h} as the network sees it, shown ×{s}");
    text::titled(&body, image, &[&title, &detail], BACKGROUND)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Source {
        Source {
            run: "pets".into(),
            epoch: "epoch 3".into(),
        }
    }

    fn ramp(n: usize) -> Vec<f32> {
        (0..n).map(|i| i as f32 / n as f32 - 0.5).collect()
    }

    /// Whether any pixel of rows `y0..y1` is `ink`.
    fn inked(r: &Raster, y0: usize, y1: usize, ink: Rgb) -> bool {
        (y0..y1.min(r.height())).any(|y| (0..r.width()).any(|x| r.pixel(x, y) == ink))
    }

    #[test]
    fn a_first_layer_s_filters_fill_a_grid_not_a_column() {
        let shape = [16, 3, 3, 3];
        let r = filters(
            &ramp(16 * 27),
            shape,
            ColormapName::Viridis,
            FilterNorm::Layer,
            "conv2d",
            &source(),
        );
        // 16 strips of three 24-px kernels: 8 a row, two rows, and the scale under them.
        let strip = 3 * 3 * BLOCK + 2 * CHANNEL_GAP;
        assert!(r.width() >= 8 * strip, "{}", r.width());
        assert!(r.width() < 8 * (strip + GAP) + 400, "{}", r.width());
        assert!(r.height() < r.width(), "{}×{}", r.width(), r.height());
        // The title is there: headline text in the top rows.
        assert!(inked(&r, 0, text::header_height(2), INK));
        // The weights span the picture, not a column at its left.
        let viridis: std::collections::HashSet<Rgb> = colormap::VIRIDIS.iter().copied().collect();
        let weight_columns = (0..r.width())
            .filter(|&x| {
                (text::header_height(2)..r.height()).any(|y| viridis.contains(&r.pixel(x, y)))
            })
            .count();
        assert!(
            weight_columns * 10 >= r.width() * 7,
            "{weight_columns} of {} columns",
            r.width()
        );
        // No selection frame in an export.
        assert!(!r.pixels().contains(&pictures::SELECTED));
        // The colour scale spans the colormap.
        assert!(
            r.pixels()
                .contains(&colormap::color(ColormapName::Viridis, 0.0))
        );
        assert!(
            r.pixels()
                .contains(&colormap::color(ColormapName::Viridis, 1.0))
        );
    }

    #[test]
    fn feature_sheets_number_the_maps_and_ring_dead_ones() {
        let (h, w) = (6, 6);
        let mut data = ramp(10 * h * w);
        for v in &mut data[36..72] {
            *v = 0.0;
        }
        let levels = pictures::feature_levels(&data, 10, h, w);
        let r = feature_maps(
            &levels,
            h,
            w,
            ColormapName::Viridis,
            "conv2d",
            "cat.jpg",
            "cats (0.910)",
            &source(),
        );
        assert!(r.pixels().contains(&DEAD), "the dead channel is ringed");
        assert!(!r.pixels().contains(&pictures::SELECTED));
        assert!(inked(&r, 0, text::header_height(2), INK));
        // 8 columns of 66-px maps (6 × 11): at least 8 × 70 wide.
        assert!(r.width() >= 8 * 70, "{}", r.width());
    }

    #[test]
    fn columns_fill_rows_evenly() {
        assert_eq!(columns(16, 80), 8);
        assert_eq!(columns(64, 830), 1);
        assert_eq!(columns(3, 40), 3);
        assert_eq!(columns(0, 40), 1);
    }
}
