//! Text on rasters with the public-domain 8×8 bitmap font (font8x8), and titled pictures.
//!
//! Characters U+0020..U+007E and U+00A0..U+00FF (which include `·` and `×`) have glyphs;
//! anything else is drawn as `?`.

use font8x8::legacy::{BASIC_LEGACY, LATIN_LEGACY};

use super::colormap::Rgb;
use super::raster::Raster;

/// Glyph size in pixels at scale 1 (the font is 8×8, monospaced).
pub const GLYPH: usize = 8;
/// Space around a titled picture's content, in pixels.
pub const PAD: usize = 8;
/// Space between text lines, in pixels.
pub const LINE_GAP: usize = 4;
/// Scale of a titled picture's heading.
pub const HEADING_SCALE: usize = 2;
/// Colour of headings and body text.
pub const INK: Rgb = [235, 235, 235];
/// Colour of secondary text.
pub const DIM: Rgb = [170, 170, 170];

/// The 8 rows of `c`'s glyph; bit 0 of a row is its leftmost pixel.
#[must_use]
pub fn glyph(c: char) -> [u8; 8] {
    let code = c as usize;
    match code {
        0x20..=0x7E => BASIC_LEGACY[code],
        0xA0..=0xFF => LATIN_LEGACY[code - 0xA0],
        _ => BASIC_LEGACY[usize::from(b'?')],
    }
}

/// Width in pixels of `text` drawn at `scale`.
#[must_use]
pub fn width(text: &str, scale: usize) -> usize {
    text.chars().count() * GLYPH * scale.max(1)
}

/// Draw `text` with its top-left corner at `(x, y)`, each font pixel a `scale`² block; clipped.
pub fn draw(r: &mut Raster, x: usize, y: usize, text: &str, scale: usize, color: Rgb) {
    let s = scale.max(1);
    for (i, c) in text.chars().enumerate() {
        let gx = x + i * GLYPH * s;
        if gx >= r.width() {
            break;
        }
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..GLYPH {
                if bits >> col & 1 == 1 {
                    for dy in 0..s {
                        for dx in 0..s {
                            r.set(gx + col * s + dx, y + row * s + dy, color);
                        }
                    }
                }
            }
        }
    }
}

/// Height of the header [`titled`] puts above its body for `lines` lines under the heading.
#[must_use]
pub const fn header_height(lines: usize) -> usize {
    PAD + GLYPH * HEADING_SCALE + lines * (LINE_GAP + GLYPH) + PAD
}

/// Put `body` under a heading (drawn twice the size) and `lines` of smaller text.
///
/// The body's top-left corner lands at `(PAD, header_height(lines.len()))`; the picture is as
/// wide as the widest of body and text plus `PAD` on each side, and `PAD` taller than the body.
#[must_use]
pub fn titled(body: &Raster, heading: &str, lines: &[&str], background: Rgb) -> Raster {
    let top = header_height(lines.len());
    let text_w = lines
        .iter()
        .map(|l| width(l, 1))
        .chain([width(heading, HEADING_SCALE)])
        .max()
        .unwrap_or(0);
    let mut out = Raster::new(
        body.width().max(text_w) + 2 * PAD,
        top + body.height() + PAD,
        background,
    );
    draw(&mut out, PAD, PAD, heading, HEADING_SCALE, INK);
    let mut y = PAD + GLYPH * HEADING_SCALE;
    for (i, line) in lines.iter().enumerate() {
        y += LINE_GAP;
        draw(&mut out, PAD, y, line, 1, if i == 0 { INK } else { DIM });
        y += GLYPH;
    }
    out.blit(body, PAD, top);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(r: &Raster, ink: Rgb) -> usize {
        r.pixels().iter().filter(|&&p| p == ink).count()
    }

    #[test]
    fn a_glyph_lights_its_28_pixels_scaled() {
        // font8x8 'A': 0x0C 0x1E 0x33 0x33 0x3F 0x33 0x33 0x00 -> 2+4+4+4+6+4+4 = 28 pixels.
        let mut r = Raster::new(8, 8, [0; 3]);
        draw(&mut r, 0, 0, "A", 1, INK);
        assert_eq!(lit(&r, INK), 28);
        // Top row 0x0C: bit 0 is the leftmost pixel, so pixels 2 and 3 are lit.
        let top: Vec<bool> = (0..8).map(|x| r.pixel(x, 0) == INK).collect();
        assert_eq!(top, [false, false, true, true, false, false, false, false]);
        let mut big = Raster::new(16, 16, [0; 3]);
        draw(&mut big, 0, 0, "A", 2, INK);
        assert_eq!(lit(&big, INK), 28 * 4);
    }

    #[test]
    fn text_advances_one_cell_per_char_and_clips() {
        let mut r = Raster::new(12, 8, [0; 3]);
        draw(&mut r, 0, 0, "AA", 1, INK);
        // The second 'A' starts at x = 8 and is cut at x = 12: columns 8..11 hold its left half.
        let second = (8..12)
            .flat_map(|x| (0..8).map(move |y| (x, y)))
            .filter(|&(x, y)| r.pixel(x, y) == INK)
            .count();
        assert!(second > 0 && second < 28, "{second}");
        assert_eq!(width("AA", 1), 16);
        assert_eq!(width("a·b×c", 2), 80);
    }

    #[test]
    fn space_is_empty_and_unknown_chars_draw_a_question_mark() {
        assert_eq!(glyph(' '), [0; 8]);
        assert_eq!(glyph('\u{2603}'), glyph('?'));
        assert_ne!(glyph('·'), [0; 8]);
        assert_ne!(glyph('×'), [0; 8]);
    }

    #[test]
    fn titled_puts_the_body_under_the_header() {
        let body = Raster::new(30, 20, [9, 9, 9]);
        let t = titled(&body, "hi", &["one line"], [0; 3]);
        let top = header_height(1);
        assert_eq!(t.height(), top + 20 + PAD);
        assert_eq!(t.width(), width("one line", 1).max(30) + 2 * PAD);
        assert_eq!(t.pixel(PAD, top), [9, 9, 9]);
        assert_eq!(t.pixel(PAD + 29, top + 19), [9, 9, 9]);
        assert_eq!(t.pixel(PAD, top - 1), [0; 3]);
        assert!(t.pixels().contains(&INK));
    }
}
