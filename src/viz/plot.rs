//! Line plots on rasters: axes with tick labels, a legend, one polyline with markers per series.

use super::colormap::Rgb;
use super::raster::Raster;
use super::text::{self, GLYPH, LINE_GAP, PAD};

/// Background of a plot.
pub const BACKGROUND: Rgb = [16, 16, 16];
/// Colour of the axes and tick labels.
pub const AXIS: Rgb = [150, 150, 150];
/// Colour of the horizontal grid lines.
pub const GRID: Rgb = [44, 44, 44];
/// Side of the square marker drawn at each point.
pub const MARKER: usize = 5;
/// Horizontal ticks (and grid lines) on the y axis.
pub const Y_TICKS: usize = 5;

/// One line of a plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub color: Rgb,
    /// `(x, y)` points in drawing order; non-finite points are left out.
    pub points: Vec<(f32, f32)>,
}

/// A line plot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plot {
    pub title: String,
    pub x_label: String,
    /// Fixed y range (e.g. 0..1 for accuracy); `None` spans the data.
    pub y_range: Option<(f32, f32)>,
    pub series: Vec<Series>,
}

/// The data area of a plot, inclusive pixel bounds: the largest y value is drawn on `top`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    pub left: usize,
    pub top: usize,
    pub right: usize,
    pub bottom: usize,
}

/// Where the data lands in a `width` × `height` plot (room for title, legend, labels).
#[must_use]
pub fn area(width: usize, height: usize) -> Area {
    let top = PAD + 2 * (GLYPH + LINE_GAP) + PAD;
    let left = PAD + 7 * GLYPH + 6;
    let right = width.saturating_sub(PAD + GLYPH).max(left + 1);
    let bottom = height
        .saturating_sub(PAD + 2 * GLYPH + 2 * LINE_GAP)
        .max(top + 1);
    Area {
        left,
        top,
        right,
        bottom,
    }
}

/// Draw `plot` into a `width` × `height` raster.
#[must_use]
pub fn render(plot: &Plot, width: usize, height: usize) -> Raster {
    let mut r = Raster::new(width, height, BACKGROUND);
    let a = area(width, height);
    text::draw(&mut r, PAD, PAD, &plot.title, 1, text::INK);
    legend(&mut r, plot, PAD + GLYPH + LINE_GAP);

    let finite = |p: &&(f32, f32)| p.0.is_finite() && p.1.is_finite();
    let all: Vec<(f32, f32)> = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter(finite).copied())
        .collect();
    let (x0, x1) = widen(span(all.iter().map(|p| p.0)));
    let (y0, y1) = widen(
        plot.y_range
            .map_or_else(|| span(all.iter().map(|p| p.1)), Some),
    );
    let px = |x: f32| {
        let t = ((x - x0) / (x1 - x0)).clamp(0.0, 1.0);
        a.left + (t * (a.right - a.left) as f32).round() as usize
    };
    let py = |y: f32| {
        let t = ((y - y0) / (y1 - y0)).clamp(0.0, 1.0);
        a.bottom - (t * (a.bottom - a.top) as f32).round() as usize
    };

    // Grid lines and y tick labels.
    for i in 0..Y_TICKS {
        let v = y0 + (y1 - y0) * i as f32 / (Y_TICKS - 1) as f32;
        let y = py(v);
        for x in a.left..=a.right {
            r.set(x, y, GRID);
        }
        let label = tick_label(v, (y1 - y0) / (Y_TICKS - 1) as f32);
        let lx = a.left.saturating_sub(6 + text::width(&label, 1));
        text::draw(&mut r, lx, y.saturating_sub(GLYPH / 2), &label, 1, AXIS);
        for x in a.left.saturating_sub(4)..a.left {
            r.set(x, y, AXIS);
        }
    }
    // Axes just outside the data area.
    for y in a.top..=a.bottom + 1 {
        r.set(a.left - 1, y, AXIS);
    }
    for x in a.left - 1..=a.right {
        r.set(x, a.bottom + 1, AXIS);
    }
    // Integer x ticks (epochs), at most about ten.
    if x0.is_finite() && x1.is_finite() {
        let step = ((x1 - x0) / 10.0).ceil().max(1.0);
        let mut v = x0.ceil();
        while v <= x1 {
            let x = px(v);
            for y in a.bottom + 2..a.bottom + 5 {
                r.set(x, y, AXIS);
            }
            let label = format!("{v:.0}");
            let lx = x.saturating_sub(text::width(&label, 1) / 2);
            text::draw(&mut r, lx, a.bottom + 6, &label, 1, AXIS);
            v += step;
        }
    }
    let xl = &plot.x_label;
    let lx = (a.left + a.right).saturating_sub(text::width(xl, 1)) / 2;
    text::draw(&mut r, lx, a.bottom + 6 + GLYPH + LINE_GAP, xl, 1, AXIS);

    for s in &plot.series {
        let pts: Vec<(usize, usize)> = s
            .points
            .iter()
            .filter(finite)
            .map(|&(x, y)| (px(x), py(y)))
            .collect();
        for w in pts.windows(2) {
            line(&mut r, w[0], w[1], s.color);
        }
        for &(x, y) in &pts {
            let h = MARKER / 2;
            for dy in 0..MARKER {
                for dx in 0..MARKER {
                    r.set(
                        (x + dx).saturating_sub(h),
                        (y + dy).saturating_sub(h),
                        s.color,
                    );
                }
            }
        }
    }
    r
}

fn legend(r: &mut Raster, plot: &Plot, y: usize) {
    let mut x = PAD;
    for s in &plot.series {
        for dy in 2..GLYPH - 2 {
            for dx in 0..2 * GLYPH {
                r.set(x + dx, y + dy, s.color);
            }
        }
        x += 2 * GLYPH + 4;
        text::draw(r, x, y, &s.label, 1, text::INK);
        x += text::width(&s.label, 1) + 2 * GLYPH;
    }
}

/// A two-pixel-thick line from `a` to `b` (Bresenham).
fn line(r: &mut Raster, a: (usize, usize), b: (usize, usize), c: Rgb) {
    let (mut x, mut y) = (a.0 as isize, a.1 as isize);
    let (x1, y1) = (b.0 as isize, b.1 as isize);
    let (dx, dy) = ((x1 - x).abs(), -(y1 - y).abs());
    let (sx, sy) = (if x < x1 { 1 } else { -1 }, if y < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        for (ox, oy) in [(0, 0), (1, 0), (0, 1)] {
            if x + ox >= 0 && y + oy >= 0 {
                r.set((x + ox) as usize, (y + oy) as usize, c);
            }
        }
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

fn span(values: impl Iterator<Item = f32>) -> Option<(f32, f32)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// A range with room to draw: an empty input gives 0..1, a single value ±0.5 around it.
fn widen(range: Option<(f32, f32)>) -> (f32, f32) {
    match range {
        Some((lo, hi)) if hi > lo => (lo, hi),
        Some((v, _)) => (v - 0.5, v + 0.5),
        None => (0.0, 1.0),
    }
}

/// `v` with as many decimals as the tick step needs: exact steps (0.25) in full, others to
/// about two significant digits of the step.
fn tick_label(v: f32, step: f32) -> String {
    let exact = (0..=3).find(|&d| {
        let scaled = step * 10_f32.powi(d);
        (scaled - scaled.round()).abs() <= 0.01 * scaled
    });
    let decimals = exact.unwrap_or_else(|| (1 - step.log10().floor() as i32).clamp(0, 4));
    format!("{v:.*}", decimals.max(0) as usize)
        .chars()
        .take(7)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED: Rgb = [255, 0, 0];
    const BLUE: Rgb = [0, 0, 255];

    fn plot(points: Vec<(f32, f32)>, y_range: Option<(f32, f32)>) -> Plot {
        Plot {
            title: "loss".into(),
            x_label: "epoch".into(),
            y_range,
            series: vec![Series {
                label: "train".into(),
                color: RED,
                points,
            }],
        }
    }

    #[test]
    fn max_point_is_at_the_top_and_min_at_the_bottom_of_the_area() {
        let (w, h) = (400, 300);
        let r = render(&plot(vec![(1.0, 0.2), (2.0, 0.9), (3.0, 0.5)], None), w, h);
        let a = area(w, h);
        let mid = a.left + (a.right - a.left) / 2;
        assert_eq!(r.pixel(mid, a.top), RED, "max at the top");
        assert_eq!(r.pixel(a.left, a.bottom), RED, "min at the bottom left");
        // Nothing of the series above the area but the marker's upper half.
        for y in 0..a.top - MARKER / 2 {
            assert_ne!(r.pixel(mid, y), RED, "y {y}");
        }
        // A point far from the polyline stays background (or grid).
        let p = r.pixel(a.right - 2, a.top + 2);
        assert!(p == BACKGROUND || p == GRID, "{p:?}");
    }

    #[test]
    fn fixed_range_places_values_proportionally() {
        let (w, h) = (300, 200);
        let a = area(w, h);
        let r = render(&plot(vec![(1.0, 0.5), (2.0, 0.5)], Some((0.0, 1.0))), w, h);
        let y = a.bottom - (a.bottom - a.top) / 2;
        assert_eq!(r.pixel(a.left + 20, y), RED);
        assert_ne!(r.pixel(a.left + 20, a.top), RED);
    }

    #[test]
    fn legend_axes_and_labels_are_drawn() {
        let mut p = plot(vec![(1.0, 1.0), (2.0, 0.5)], None);
        p.series.push(Series {
            label: "val".into(),
            color: BLUE,
            points: vec![(1.0, f32::NAN), (2.0, 0.7)],
        });
        let (w, h) = (320, 240);
        let r = render(&p, w, h);
        let a = area(w, h);
        // Legend swatches in the legend line.
        let legend_row = PAD + GLYPH + LINE_GAP + GLYPH / 2;
        let row: Vec<Rgb> = (0..w).map(|x| r.pixel(x, legend_row)).collect();
        assert!(row.contains(&RED) && row.contains(&BLUE));
        assert_eq!(r.pixel(a.left - 1, a.top + 3), AXIS);
        assert_eq!(r.pixel(a.left + 3, a.bottom + 1), AXIS);
        // Tick labels and the x label left text pixels below the axis and left of it.
        assert!((0..a.left - 1).any(|x| (a.top..a.bottom).any(|y| r.pixel(x, y) == AXIS)));
        assert!((a.bottom + 6..h).any(|y| (0..w).any(|x| r.pixel(x, y) == AXIS)));
    }

    #[test]
    fn tick_labels_show_the_step() {
        assert_eq!(tick_label(0.25, 0.25), "0.25");
        assert_eq!(tick_label(0.5, 0.25), "0.50");
        assert_eq!(tick_label(2.0, 1.0), "2");
        assert_eq!(tick_label(0.69, 0.0207), "0.690");
        assert_eq!(tick_label(25.0, 12.5), "25.0");
    }

    #[test]
    fn empty_and_single_point_plots_do_not_panic() {
        let r = render(&Plot::default(), 200, 120);
        assert_eq!((r.width(), r.height()), (200, 120));
        let r = render(&plot(vec![(1.0, 0.3)], None), 200, 120);
        assert!(r.pixels().contains(&RED));
        let tiny = render(&plot(vec![(1.0, 0.3), (2.0, 0.1)], None), 10, 10);
        assert_eq!((tiny.width(), tiny.height()), (10, 10));
    }
}
