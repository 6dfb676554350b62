//! A plain RGB raster, nearest-neighbour scaling and tiling into grids.

use super::colormap::Rgb;

/// A row-major RGB image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Raster {
    width: usize,
    height: usize,
    pixels: Vec<Rgb>,
}

impl Raster {
    /// Create a raster filled with one colour.
    #[must_use]
    pub fn new(width: usize, height: usize, fill: Rgb) -> Self {
        Self {
            width,
            height,
            pixels: vec![fill; width * height],
        }
    }

    /// Create a raster from a function of `(x, y)`.
    #[must_use]
    pub fn from_fn(width: usize, height: usize, mut f: impl FnMut(usize, usize) -> Rgb) -> Self {
        let mut pixels = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                pixels.push(f(x, y));
            }
        }
        Self {
            width,
            height,
            pixels,
        }
    }

    /// Width in pixels.
    #[must_use]
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    #[must_use]
    pub fn height(&self) -> usize {
        self.height
    }

    /// Whether the raster has no pixels.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// The pixels, row-major.
    #[must_use]
    pub fn pixels(&self) -> &[Rgb] {
        &self.pixels
    }

    /// The pixel at `(x, y)`; panics when outside.
    #[must_use]
    pub fn pixel(&self, x: usize, y: usize) -> Rgb {
        self.pixels[y * self.width + x]
    }

    /// Set the pixel at `(x, y)`; ignored when outside.
    pub fn set(&mut self, x: usize, y: usize, c: Rgb) {
        if x < self.width && y < self.height {
            self.pixels[y * self.width + x] = c;
        }
    }

    /// Copy `src` with its top-left corner at `(x0, y0)`, clipped to this raster.
    pub fn blit(&mut self, src: &Raster, x0: usize, y0: usize) {
        for y in 0..src.height.min(self.height.saturating_sub(y0)) {
            let row = &src.pixels[y * src.width..][..src.width.min(self.width - x0)];
            let dst = (y0 + y) * self.width + x0;
            self.pixels[dst..dst + row.len()].copy_from_slice(row);
        }
    }

    /// Fill the one-pixel ring just outside the rectangle `(x, y, w, h)`, clipped.
    #[allow(clippy::many_single_char_names)] // x, y, w, h, c read best as a rectangle
    pub fn frame(&mut self, x: usize, y: usize, w: usize, h: usize, c: Rgb) {
        let (x0, y0) = (x as isize - 1, y as isize - 1);
        let (x1, y1) = ((x + w) as isize, (y + h) as isize);
        for px in x0..=x1 {
            for py in [y0, y1] {
                if px >= 0 && py >= 0 {
                    self.set(px as usize, py as usize, c);
                }
            }
        }
        for py in y0..=y1 {
            for px in [x0, x1] {
                if px >= 0 && py >= 0 {
                    self.set(px as usize, py as usize, c);
                }
            }
        }
    }

    /// Scale up by an integer factor, nearest neighbour: one pixel becomes a `factor`² block.
    #[must_use]
    pub fn upscale(&self, factor: usize) -> Raster {
        let f = factor.max(1);
        Raster::from_fn(self.width * f, self.height * f, |x, y| {
            self.pixel(x / f, y / f)
        })
    }

    /// Nearest-neighbour size that fits in `max_w` × `max_h` keeping the aspect ratio; an integer
    /// multiple of the raster's size whenever at least one whole copy fits.
    #[must_use]
    pub fn fit_size(&self, max_w: usize, max_h: usize) -> (usize, usize) {
        fit_size(self.width, self.height, max_w, max_h)
    }

    /// The source pixel shown at `(x, y)` when the raster is drawn at `w` × `h`.
    #[must_use]
    pub fn sample(&self, x: usize, y: usize, w: usize, h: usize) -> Rgb {
        let sx = (x * self.width / w.max(1)).min(self.width - 1);
        let sy = (y * self.height / h.max(1)).min(self.height - 1);
        self.pixel(sx, sy)
    }

    /// Each channel cut to multiples of `step`, at the middle of its band: fewer colours, for
    /// pictures that must take fewer bytes.
    #[must_use]
    pub fn posterized(&self, step: u8) -> Raster {
        let step = step.max(1);
        let band = |c: u8| (c / step) * step + (step / 2).min(255 - (c / step) * step);
        Raster::from_fn(self.width, self.height, |x, y| {
            let [r, g, b] = self.pixel(x, y);
            [band(r), band(g), band(b)]
        })
    }

    /// Resize nearest neighbour to exactly `w` × `h`.
    #[must_use]
    pub fn resized(&self, w: usize, h: usize) -> Raster {
        if self.is_empty() {
            return Raster::new(w, h, [0, 0, 0]);
        }
        Raster::from_fn(w, h, |x, y| self.sample(x, y, w, h))
    }

    /// Shrink to `w` × `h` (each at most the raster's size), every new pixel the mean of the
    /// pixels it covers: a map made smaller stays readable, where picking one pixel of each
    /// block would turn it to noise.
    #[must_use]
    pub fn shrunk(&self, w: usize, h: usize) -> Raster {
        let (w, h) = (
            w.clamp(1, self.width.max(1)),
            h.clamp(1, self.height.max(1)),
        );
        if self.is_empty() || (w, h) == (self.width, self.height) {
            return self.resized(w, h);
        }
        Raster::from_fn(w, h, |x, y| {
            let (x0, x1) = (
                x * self.width / w,
                ((x + 1) * self.width / w).max(x * self.width / w + 1),
            );
            let (y0, y1) = (
                y * self.height / h,
                ((y + 1) * self.height / h).max(y * self.height / h + 1),
            );
            let mut sum = [0_u32; 3];
            for sy in y0..y1 {
                for sx in x0..x1 {
                    let p = self.pixel(sx, sy);
                    for k in 0..3 {
                        sum[k] += u32::from(p[k]);
                    }
                }
            }
            let n = ((x1 - x0) * (y1 - y0)) as u32;
            sum.map(|v| ((v + n / 2) / n) as u8)
        })
    }

    /// Convert to an `image` buffer (for the graphics protocols and PNG export).
    #[must_use]
    pub fn to_rgb_image(&self) -> image::RgbImage {
        let mut raw = Vec::with_capacity(self.pixels.len() * 3);
        for p in &self.pixels {
            raw.extend_from_slice(p);
        }
        image::RgbImage::from_raw(self.width as u32, self.height as u32, raw)
            .unwrap_or_else(|| image::RgbImage::new(self.width as u32, self.height as u32))
    }
}

/// The geometry of a grid built by [`tile`], to map a pixel back to its tile: `count` tiles
/// from tile `first` on (a page of a larger set), each drawn `tile_w` × `tile_h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grid {
    pub columns: usize,
    pub tile_w: usize,
    pub tile_h: usize,
    pub gap: usize,
    pub count: usize,
    pub first: usize,
    /// All the tiles there are (`first..first + count` are shown).
    pub total: usize,
}

impl Grid {
    /// The tile at pixel `(x, y)`; a gap pixel counts for the tile after it.
    #[must_use]
    pub fn tile_at(&self, x: usize, y: usize) -> Option<usize> {
        let col = x.checked_sub(self.gap)? / (self.tile_w + self.gap);
        let row = y.checked_sub(self.gap)? / (self.tile_h + self.gap);
        let i = row * self.columns + col;
        (col < self.columns && i < self.count).then_some(self.first + i)
    }

    /// Whether only some of the tiles are shown.
    #[must_use]
    pub fn paged(&self) -> bool {
        self.count < self.total
    }

    /// The grid's size in pixels.
    #[must_use]
    pub fn size(&self) -> (usize, usize) {
        let columns = self.columns.max(1);
        let rows = self.count.div_ceil(columns).max(1);
        (
            self.gap + columns * (self.tile_w + self.gap),
            self.gap + rows * (self.tile_h + self.gap),
        )
    }
}

/// Lay out `n` tiles of `tile_w` × `tile_h` pixels with `gap` pixels around each in a `fit`
/// pixel box, keeping tile `selected` in view.
///
/// When the whole grid fits at the tiles' own size, that is the layout (drawing enlarges it by
/// a whole factor). Otherwise the picture is made for the box itself, so that no gap or frame
/// is lost to scaling: each tile is shrunk (`shrink` gives the smallest side a shrunk tile may
/// have; `None`: tiles are never shrunk, as for filter weights, where a pixel is a weight),
/// and where that is not enough, fewer tiles are shown: the page of them that holds
/// `selected`.
#[must_use]
pub fn layout(
    n: usize,
    tile_w: usize,
    tile_h: usize,
    gap: usize,
    fit: (usize, usize),
    selected: usize,
    shrink: Option<usize>,
) -> Grid {
    let (tw, th) = (tile_w.max(1), tile_h.max(1));
    let whole = |p: usize, columns: usize, w: usize, h: usize| Grid {
        columns,
        tile_w: w,
        tile_h: h,
        gap,
        count: p,
        first: 0,
        total: n,
    };
    if n == 0 {
        return whole(0, 1, tw, th);
    }
    let fits = |g: &Grid| {
        let (w, h) = g.size();
        w <= fit.0 && h <= fit.1
    };
    let columns = columns_for(n, tw, th, gap, fit).clamp(1, n);
    let all = whole(n, columns, tw, th);
    if fits(&all) {
        return all;
    }
    // The biggest tiles `p` tiles can have in the box, over every column count.
    let best = |p: usize| -> Option<Grid> {
        (1..=p)
            .filter_map(|c| {
                let rows = p.div_ceil(c);
                let room_w = fit.0.checked_sub(gap * (c + 1))? as f64 / (c * tw) as f64;
                let room_h = fit.1.checked_sub(gap * (rows + 1))? as f64 / (rows * th) as f64;
                let s = room_w.min(room_h).min(1.0);
                let (w, h) = match shrink {
                    _ if s >= 1.0 => (tw, th),
                    None => return None,
                    Some(_) => (
                        ((tw as f64 * s).floor() as usize).max(1),
                        ((th as f64 * s).floor() as usize).max(1),
                    ),
                };
                Some(whole(p, c, w, h))
            })
            .max_by_key(|g| (g.tile_w * g.tile_h, std::cmp::Reverse(g.columns)))
    };
    let readable = |g: &Grid| match shrink {
        None => true,
        // A tile smaller than `min` to begin with is fine at its own size.
        Some(min) => g.tile_w.min(g.tile_h) >= min.min(tw.min(th)),
    };
    let page = (1..=n)
        .rev()
        .find_map(|p| best(p).filter(|g| readable(g)))
        .or_else(|| best(1))
        .unwrap_or_else(|| whole(1, 1, tw, th));
    let p = page.count.max(1);
    let first = selected.min(n - 1) / p * p;
    Grid {
        count: p.min(n - first),
        first,
        ..page
    }
}

/// Where tile `i` landed in a grid built by [`tile`]: `(x, y, w, h)` in pixels.
#[must_use]
pub fn tile_rect(
    i: usize,
    columns: usize,
    tile_w: usize,
    tile_h: usize,
    gap: usize,
) -> (usize, usize, usize, usize) {
    let columns = columns.max(1);
    let (c, r) = (i % columns, i / columns);
    (
        gap + c * (tile_w + gap),
        gap + r * (tile_h + gap),
        tile_w,
        tile_h,
    )
}

/// Tile equal-sized rasters row by row into `columns` columns with `gap` pixels around each.
///
/// `frame(i)` may give a colour for the ring of gap pixels around tile `i` (selection, dead
/// channel); it needs `gap >= 1` to be visible.
#[must_use]
pub fn tile(
    tiles: &[Raster],
    columns: usize,
    gap: usize,
    background: Rgb,
    frame: impl Fn(usize) -> Option<Rgb>,
) -> Raster {
    let Some(first) = tiles.first() else {
        return Raster::default();
    };
    let columns = columns.clamp(1, tiles.len());
    let rows = tiles.len().div_ceil(columns);
    let (tw, th) = (first.width(), first.height());
    let mut out = Raster::new(
        gap + columns * (tw + gap),
        gap + rows * (th + gap),
        background,
    );
    for (i, t) in tiles.iter().enumerate() {
        let (x, y, _, _) = tile_rect(i, columns, tw, th, gap);
        out.blit(t, x, y);
    }
    if gap > 0 {
        // Frames after all tiles, so the selected tile's frame is never covered by a neighbour.
        for i in 0..tiles.len() {
            if let Some(c) = frame(i) {
                let (x, y, w, h) = tile_rect(i, columns, tw, th, gap);
                out.frame(x, y, w, h, c);
            }
        }
    }
    out
}

/// Nearest-neighbour size of a `w` × `h` raster fitted into `max_w` × `max_h` (see
/// [`Raster::fit_size`]).
#[must_use]
pub fn fit_size(w: usize, h: usize, max_w: usize, max_h: usize) -> (usize, usize) {
    if w == 0 || h == 0 || max_w == 0 || max_h == 0 {
        return (0, 0);
    }
    let factor = (max_w / w).min(max_h / h);
    if factor >= 1 {
        return (w * factor, h * factor);
    }
    let s = (max_w as f64 / w as f64).min(max_h as f64 / h as f64);
    (
        ((w as f64 * s).floor() as usize).max(1),
        ((h as f64 * s).floor() as usize).max(1),
    )
}

/// Columns for `n` tiles of `tile_w` × `tile_h` (plus `gap`) that show the grid biggest in a
/// `fit` = (width, height) pixel box, whole-pixel upscaling preferred; ties go to the shape
/// closest to the box's.
#[must_use]
pub fn columns_for(
    n: usize,
    tile_w: usize,
    tile_h: usize,
    gap: usize,
    fit: (usize, usize),
) -> usize {
    let (max_w, max_h) = (fit.0.max(1), fit.1.max(1));
    let target = max_w as f64 / max_h as f64;
    let score = |c: usize| {
        let rows = n.div_ceil(c);
        let w = gap + c * (tile_w + gap);
        let h = gap + rows * (tile_h + gap);
        let (pw, ph) = fit_size(w, h, max_w, max_h);
        let shape = ((w as f64 / h as f64) / target).ln().abs();
        (pw * ph, shape)
    };
    (1..=n.max(1))
        .max_by(|&a, &b| {
            let (sa, sb) = (score(a), score(b));
            sa.0.cmp(&sb.0).then(sb.1.total_cmp(&sa.1))
        })
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {

    #[test]
    fn posterized_channels_sit_in_the_middle_of_their_band() {
        let r = Raster::from_fn(4, 1, |x, _| [[0, 7, 8, 255][x], 100, 250]);
        let p = r.posterized(8);
        assert_eq!(p.pixel(0, 0), [4, 100, 252]);
        assert_eq!(p.pixel(1, 0), [4, 100, 252]);
        assert_eq!(p.pixel(2, 0), [12, 100, 252]);
        assert_eq!(p.pixel(3, 0), [252, 100, 252]);
        assert_eq!(r.posterized(32).pixel(3, 0), [240, 112, 240]);
    }
    use super::*;

    #[test]
    fn upscale_fills_whole_blocks() {
        let r = Raster::from_fn(2, 1, |x, _| [x as u8 * 100, 0, 0]);
        let u = r.upscale(3);
        assert_eq!((u.width(), u.height()), (6, 3));
        for y in 0..3 {
            for x in 0..6 {
                assert_eq!(u.pixel(x, y), [(x / 3) as u8 * 100, 0, 0]);
            }
        }
    }

    #[test]
    fn fit_size_prefers_integer_factors() {
        let r = Raster::new(3, 3, [0; 3]);
        assert_eq!(r.fit_size(20, 10), (9, 9));
        assert_eq!(r.fit_size(2, 10), (2, 2));
        assert_eq!(Raster::new(100, 50, [0; 3]).fit_size(40, 40), (40, 20));
        assert_eq!(Raster::default().fit_size(4, 4), (0, 0));
    }

    #[test]
    fn tile_places_tiles_with_gaps_and_frames() {
        let a = Raster::new(2, 2, [1, 1, 1]);
        let b = Raster::new(2, 2, [2, 2, 2]);
        let c = Raster::new(2, 2, [3, 3, 3]);
        let g = tile(&[a, b, c], 2, 1, [0; 3], |i| (i == 2).then_some([9; 3]));
        assert_eq!((g.width(), g.height()), (7, 7));
        assert_eq!(g.pixel(0, 0), [0; 3]);
        assert_eq!(g.pixel(1, 1), [1; 3]);
        assert_eq!(g.pixel(4, 2), [2; 3]);
        assert_eq!(g.pixel(1, 4), [3; 3]);
        // Frame ring of tile 2 is at x 0..=3, y 3..=6.
        assert_eq!(g.pixel(0, 3), [9; 3]);
        assert_eq!(g.pixel(3, 6), [9; 3]);
        assert_eq!(g.pixel(4, 4), [0; 3]);
    }

    #[test]
    fn grid_maps_pixels_back_to_tiles() {
        let g = Grid {
            columns: 2,
            tile_w: 2,
            tile_h: 2,
            gap: 1,
            count: 3,
            first: 0,
            total: 3,
        };
        assert_eq!(g.tile_at(1, 1), Some(0));
        assert_eq!(g.tile_at(4, 2), Some(1));
        assert_eq!(g.tile_at(1, 5), Some(2));
        assert_eq!(g.tile_at(4, 5), None, "no fourth tile");
        assert_eq!(g.tile_at(0, 0), None, "outer gap");
        assert_eq!(g.tile_at(7, 1), None, "right of the grid");
    }

    #[test]
    fn columns_for_shows_the_grid_biggest() {
        assert_eq!(columns_for(16, 10, 10, 0, (40, 40)), 4);
        assert_eq!(columns_for(16, 10, 10, 0, (80, 20)), 8);
        assert_eq!(columns_for(1, 10, 10, 0, (80, 20)), 1);
        // 16 strips of 11×3 in 120×58 pixels: 4 columns (54×22) can be doubled, 3 (41×32) and
        // 5 (67×22) cannot.
        assert_eq!(columns_for(16, 11, 3, 2, (120, 58)), 4);
    }

    #[test]
    fn image_conversion_keeps_pixels() {
        let r = Raster::from_fn(3, 2, |x, y| [x as u8, y as u8, 7]);
        let img = r.to_rgb_image();
        assert_eq!(img.get_pixel(2, 1).0, [2, 1, 7]);
    }
}
