//! Drawing a raster: half-block cells (`▀`, fg = upper pixel, bg = lower pixel) always, or a
//! graphics-protocol image prepared beforehand by [`super::graphics::Graphics`].

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::Widget;

use super::graphics::Graphics;
use super::pictures::Pic;
use super::vocab::{ColorDepth, Slot};
use crate::viz::{Raster, Rgb};

/// A raster drawn as half blocks, fitted (nearest neighbour, aspect kept) and centred.
#[derive(Debug, Clone, Copy)]
pub struct HalfBlocks<'a> {
    pub raster: &'a Raster,
    pub depth: ColorDepth,
}

/// Where a raster lands inside `area` in cells, and its pixel size (`w`, `2 h` addressable).
#[must_use]
pub fn placement(raster: &Raster, area: Rect) -> (Rect, usize, usize) {
    let (pw, ph) = raster.fit_size(usize::from(area.width), usize::from(area.height) * 2);
    let cw = pw as u16;
    let ch = ph.div_ceil(2) as u16;
    let x = area.x + (area.width - cw.min(area.width)) / 2;
    let y = area.y + (area.height - ch.min(area.height)) / 2;
    (Rect::new(x, y, cw, ch), pw, ph)
}

impl Widget for HalfBlocks<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if self.raster.is_empty() || area.is_empty() {
            return;
        }
        let (cells, pw, ph) = placement(self.raster, area);
        let area = cells.intersection(buf.area);
        for cy in 0..area.height {
            for cx in 0..area.width {
                let x = usize::from(cx);
                let top = self.raster.sample(x, usize::from(cy) * 2, pw, ph);
                let bottom_y = usize::from(cy) * 2 + 1;
                let cell = &mut buf[(area.x + cx, area.y + cy)];
                cell.set_char('▀').set_fg(to_color(top, self.depth));
                if bottom_y < ph {
                    let bottom = self.raster.sample(x, bottom_y, pw, ph);
                    cell.set_bg(to_color(bottom, self.depth));
                } else {
                    cell.set_bg(Color::Reset);
                }
            }
        }
    }
}

/// Draw `pic` into `area`: the prepared graphics image when there is one for exactly this
/// raster and area (or the previous one while it is being encoded), else half blocks.
pub fn draw(
    frame: &mut Frame,
    gfx: &Graphics,
    depth: ColorDepth,
    slot: Slot,
    area: Rect,
    pic: &Pic,
) {
    if let Some((proto, cells)) = gfx.shown(slot, pic.generation, area) {
        // Clicks map through the same cells (`Graphics::shown_rect`).
        frame.render_widget(ratatui_image::Image::new(proto), cells);
    } else {
        frame.render_widget(
            HalfBlocks {
                raster: &pic.raster,
                depth,
            },
            area,
        );
    }
}

/// The grid pixel under cell `(col, row)` when `raster` is drawn as half blocks into `area`.
#[must_use]
pub fn pixel_at(raster: &Raster, area: Rect, col: u16, row: u16) -> Option<(usize, usize)> {
    let (cells, pw, ph) = placement(raster, area);
    if raster.is_empty() || !cells.contains(ratatui::layout::Position::new(col, row)) {
        return None;
    }
    let x = usize::from(col - cells.x) * raster.width() / pw.max(1);
    let y = usize::from(row - cells.y) * 2 * raster.height() / ph.max(1);
    Some((x.min(raster.width() - 1), y.min(raster.height() - 1)))
}

/// The raster pixel under cell `(col, row)` when `raster` fills the cells `shown` (a graphics
/// image: its cells, whatever its pixel size).
#[must_use]
pub fn pixel_in(raster: &Raster, shown: Rect, col: u16, row: u16) -> Option<(usize, usize)> {
    if raster.is_empty() || !shown.contains(ratatui::layout::Position::new(col, row)) {
        return None;
    }
    // The centre of the cell, in raster pixels.
    let x = (2 * usize::from(col - shown.x) + 1) * raster.width() / (2 * usize::from(shown.width));
    let y =
        (2 * usize::from(row - shown.y) + 1) * raster.height() / (2 * usize::from(shown.height));
    Some((x.min(raster.width() - 1), y.min(raster.height() - 1)))
}

/// A colour for the terminal: 24-bit, or the nearest of the xterm 256-colour palette.
#[must_use]
pub fn to_color(c: Rgb, depth: ColorDepth) -> Color {
    match depth {
        ColorDepth::TrueColor => Color::Rgb(c[0], c[1], c[2]),
        ColorDepth::Palette256 => Color::Indexed(xterm256(c)),
    }
}

const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

/// Nearest xterm-256 index (6×6×6 cube or the 24 grays) by squared RGB distance.
#[must_use]
pub fn xterm256(c: Rgb) -> u8 {
    let nearest_level = |v: u8| {
        (0..6)
            .min_by_key(|&i| (i32::from(CUBE[i]) - i32::from(v)).abs())
            .unwrap_or(0)
    };
    let (r, g, b) = (
        nearest_level(c[0]),
        nearest_level(c[1]),
        nearest_level(c[2]),
    );
    let cube = [CUBE[r], CUBE[g], CUBE[b]];
    let avg = (u32::from(c[0]) + u32::from(c[1]) + u32::from(c[2])) / 3;
    let gi = ((avg.saturating_sub(3)) / 10).min(23) as u8;
    let gv = 8 + 10 * gi;
    let dist = |p: [u8; 3]| -> i32 {
        (0..3)
            .map(|k| (i32::from(p[k]) - i32::from(c[k])).pow(2))
            .sum()
    };
    if dist([gv; 3]) < dist(cube) {
        232 + gi
    } else {
        16 + 36 * r as u8 + 6 * g as u8 + b as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_fallback_hits_exact_entries() {
        assert_eq!(xterm256([0, 0, 0]), 16);
        assert_eq!(xterm256([255, 255, 255]), 231);
        assert_eq!(xterm256([255, 0, 0]), 196);
        assert_eq!(xterm256([128, 128, 128]), 244);
    }

    #[test]
    fn half_blocks_put_two_pixels_in_a_cell() {
        let r = Raster::from_fn(2, 2, |x, y| [x as u8 * 200, y as u8 * 200, 0]);
        let mut buf = Buffer::empty(Rect::new(0, 0, 2, 1));
        HalfBlocks {
            raster: &r,
            depth: ColorDepth::TrueColor,
        }
        .render(buf.area, &mut buf);
        assert_eq!(buf[(0, 0)].symbol(), "▀");
        assert_eq!(buf[(1, 0)].fg, Color::Rgb(200, 0, 0));
        assert_eq!(buf[(1, 0)].bg, Color::Rgb(200, 200, 0));
    }
}
