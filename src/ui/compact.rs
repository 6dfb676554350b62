//! A crossterm backend that writes fewer bytes: the same screen as ratatui's, drawn with the
//! shortest colour changes. Over SSH every byte of a picture counts.
//!
//! ratatui's `CrosstermBackend` writes both colours of a cell whenever either changed. Here a
//! cell writes only the colour that changed, and a half-block picture cell (`▀`, fg = upper
//! pixel, bg = lower pixel) may be drawn as `▄` with the colours swapped, or as a space or a
//! full block when both pixels match, whichever needs the fewest bytes given the colours
//! already set. Cursor moves along a row are relative. The terminal shows the same pixels.

use std::fmt::Write as _;
use std::io::{self, Write};

use ratatui::backend::{Backend, ClearType, CrosstermBackend, IntoCrossterm, WindowSize};
use ratatui::buffer::Cell;
use ratatui::crossterm::style::Colored;
use ratatui::layout::{Position, Size};
use ratatui::style::{Color, Modifier};

/// [`CrosstermBackend`] with a smaller [`Backend::draw`]; everything else is delegated.
pub struct Compact<W: Write> {
    inner: CrosstermBackend<W>,
    written: u64,
}

impl<W: Write> Compact<W> {
    pub fn new(writer: W) -> Self {
        Self {
            inner: CrosstermBackend::new(writer),
            written: 0,
        }
    }

    /// Bytes the draws have written so far (pictures included: a sixel rides in a cell).
    pub fn written(&self) -> u64 {
        self.written
    }
}

/// The colours and attributes the terminal has now, as far as this draw knows.
struct Pen {
    fg: Color,
    bg: Color,
    modifier: Modifier,
}

/// One way to draw a cell: symbol, foreground, background.
type Look<'a> = (&'a str, Color, Color);

/// Bytes that `Colored`'s parameters take, counted without building a string: this runs for
/// every candidate look of every picture cell of a frame.
fn param_len(c: Colored) -> usize {
    struct Count(usize);
    impl std::fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut n = Count(0);
    let _ = write!(n, "{c}");
    n.0
}

fn sgr_len(pen: &Pen, fg: Color, bg: Color) -> usize {
    let fg_len = || param_len(Colored::ForegroundColor(fg.into_crossterm()));
    let bg_len = || param_len(Colored::BackgroundColor(bg.into_crossterm()));
    match (fg != pen.fg, bg != pen.bg) {
        (false, false) => 0,
        (true, false) => 3 + fg_len(),
        (false, true) => 3 + bg_len(),
        (true, true) => 4 + fg_len() + bg_len(),
    }
}

/// The cheapest look of `cell` given the pen: only half blocks have alternatives.
fn choose<'a>(cell: &'a Cell, pen: &Pen) -> Look<'a> {
    let (sym, fg, bg) = (cell.symbol(), cell.fg, cell.bg);
    if sym != "▀" || !cell.modifier.is_empty() {
        return (sym, fg, bg);
    }
    let halves = [("▀", fg, bg), ("▄", bg, fg)];
    // With both pixels alike, either colour register may hold them; the other keeps its colour.
    let solids = [(" ", pen.fg, bg), ("█", fg, pen.bg)];
    let solids = if fg == bg { &solids[..] } else { &[] };
    halves
        .iter()
        .chain(solids)
        .copied()
        .min_by_key(|&(s, f, b)| sgr_len(pen, f, b) + s.len())
        .unwrap_or((sym, fg, bg))
}

/// SGR parameters that switch on `modifier` (after a reset).
fn modifier_codes(modifier: Modifier) -> String {
    const CODES: [(Modifier, &str); 9] = [
        (Modifier::BOLD, "1"),
        (Modifier::DIM, "2"),
        (Modifier::ITALIC, "3"),
        (Modifier::UNDERLINED, "4"),
        (Modifier::SLOW_BLINK, "5"),
        (Modifier::RAPID_BLINK, "6"),
        (Modifier::REVERSED, "7"),
        (Modifier::HIDDEN, "8"),
        (Modifier::CROSSED_OUT, "9"),
    ];
    let mut out = String::from("0");
    for (m, code) in CODES {
        if modifier.contains(m) {
            out.push(';');
            out.push_str(code);
        }
    }
    out
}

/// The bytes that draw `content`, starting from reset colours and attributes.
pub fn encode<'a>(content: impl Iterator<Item = (u16, u16, &'a Cell)>) -> String {
    let mut out = String::new();
    let mut pen = Pen {
        fg: Color::Reset,
        bg: Color::Reset,
        modifier: Modifier::empty(),
    };
    let mut last: Option<Position> = None;
    for (x, y, cell) in content {
        match last {
            Some(p) if p.y == y && x == p.x + 1 => {}
            Some(p) if p.y == y && x > p.x + 1 => {
                let _ = write!(out, "\x1b[{}C", x - p.x - 1);
            }
            _ => {
                let _ = write!(out, "\x1b[{};{}H", y + 1, x + 1);
            }
        }
        last = Some(Position { x, y });
        if cell.modifier != pen.modifier {
            // A reset also resets the colours: they are written again below.
            let _ = write!(out, "\x1b[{}m", modifier_codes(cell.modifier));
            pen = Pen {
                fg: Color::Reset,
                bg: Color::Reset,
                modifier: cell.modifier,
            };
        }
        let (symbol, fg, bg) = choose(cell, &pen);
        let fg_code = Colored::ForegroundColor(fg.into_crossterm());
        let bg_code = Colored::BackgroundColor(bg.into_crossterm());
        match (fg != pen.fg, bg != pen.bg) {
            (true, true) => {
                let _ = write!(out, "\x1b[{fg_code};{bg_code}m");
            }
            (true, false) => {
                let _ = write!(out, "\x1b[{fg_code}m");
            }
            (false, true) => {
                let _ = write!(out, "\x1b[{bg_code}m");
            }
            (false, false) => {}
        }
        pen.fg = fg;
        pen.bg = bg;
        out.push_str(symbol);
    }
    out.push_str("\x1b[0m");
    out
}

impl<W: Write> Backend for Compact<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let bytes = encode(content);
        self.written += bytes.len() as u64;
        self.inner.write_all(bytes.as_bytes())
    }

    fn append_lines(&mut self, n: u16) -> io::Result<()> {
        self.inner.append_lines(n)
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        self.inner.hide_cursor()
    }

    /// Never fails: ratatui's `Terminal` shows the cursor again when dropped and reports a
    /// failure with `eprintln!`, which panics when the terminal is gone (SSH dropped: EIO). That
    /// panic ended the process before the training could write its stop checkpoint. A terminal
    /// that is gone has no cursor to show.
    fn show_cursor(&mut self) -> io::Result<()> {
        if let Err(e) = self.inner.show_cursor() {
            tracing::debug!("cannot show the cursor: {e}");
        }
        Ok(())
    }

    fn get_cursor_position(&mut self) -> io::Result<Position> {
        self.inner.get_cursor_position()
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        self.inner.set_cursor_position(position)
    }

    fn clear(&mut self) -> io::Result<()> {
        self.inner.clear()
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.inner.clear_region(clear_type)
    }

    fn size(&self) -> io::Result<Size> {
        self.inner.size()
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.inner.window_size()
    }

    fn flush(&mut self) -> io::Result<()> {
        Backend::flush(&mut self.inner)
    }
}

#[cfg(test)]
mod tests {
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;

    use super::*;

    /// What a terminal shows in a cell: symbol, upper and lower colour (canonical SGR colour
    /// parameters without the 38/48 prefix), attributes.
    type Seen = (String, String, String, Modifier);

    fn canon(c: Color, fg: bool) -> String {
        let s = if fg {
            format!("{}", Colored::ForegroundColor(c.into_crossterm()))
        } else {
            format!("{}", Colored::BackgroundColor(c.into_crossterm()))
        };
        match s.as_str() {
            "39" | "49" => "reset".into(),
            _ => s[3..].to_string(),
        }
    }

    fn seen(symbol: &str, fg: &str, bg: &str, m: Modifier) -> Seen {
        let (top, bottom) = match symbol {
            "▄" => (bg, fg),
            " " => (bg, bg),
            "█" => (fg, fg),
            _ => (fg, bg),
        };
        let symbol = if ["▄", " ", "█"].contains(&symbol) && m.is_empty() {
            "▀"
        } else {
            symbol
        };
        (symbol.into(), top.into(), bottom.into(), m)
    }

    /// A tiny terminal: the escape sequences `encode` writes, applied to a grid.
    fn replay(bytes: &str, w: usize, h: usize) -> Vec<Option<Seen>> {
        let mut grid = vec![None; w * h];
        let (mut x, mut y) = (0usize, 0usize);
        let (mut fg, mut bg, mut m) = ("reset".to_string(), "reset".to_string(), Modifier::empty());
        let mut chars = bytes.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\x1b' {
                grid[y * w + x] = Some(seen(&c.to_string(), &fg, &bg, m));
                x += 1;
                continue;
            }
            assert_eq!(chars.next(), Some('['));
            let mut params = String::new();
            let end = loop {
                let d = chars.next().expect("terminated sequence");
                if d.is_ascii_alphabetic() {
                    break d;
                }
                params.push(d);
            };
            let nums: Vec<u16> = params
                .split(';')
                .map(|p| p.parse().expect("number"))
                .collect();
            match end {
                'H' => (y, x) = (usize::from(nums[0]) - 1, usize::from(nums[1]) - 1),
                'C' => x += usize::from(nums[0]),
                'm' => {
                    let mut i = 0;
                    while i < nums.len() {
                        match nums[i] {
                            0 => {
                                (fg, bg, m) = ("reset".into(), "reset".into(), Modifier::empty());
                            }
                            1 => m |= Modifier::BOLD,
                            3 => m |= Modifier::ITALIC,
                            7 => m |= Modifier::REVERSED,
                            39 => fg = "reset".into(),
                            49 => bg = "reset".into(),
                            38 | 48 => {
                                let n = if nums[i + 1] == 5 { 2 } else { 4 };
                                let v: Vec<String> = nums[i + 1..=i + n]
                                    .iter()
                                    .map(ToString::to_string)
                                    .collect();
                                if nums[i] == 38 {
                                    fg = v.join(";");
                                } else {
                                    bg = v.join(";");
                                }
                                i += n;
                            }
                            other => panic!("unexpected SGR {other}"),
                        }
                        i += 1;
                    }
                }
                other => panic!("unexpected sequence {other}"),
            }
        }
        grid
    }

    fn picture(w: u16, h: u16) -> Buffer {
        let palette = [
            Color::Rgb(68, 1, 84),
            Color::Rgb(33, 145, 140),
            Color::Rgb(253, 231, 37),
            Color::Reset,
        ];
        let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
        let mut state = 7u32;
        let mut next = || {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (state >> 16) as usize
        };
        for y in 0..h {
            for x in 0..w {
                let cell = &mut buf[(x, y)];
                if y == 0 {
                    // A text row: named and indexed colours, attributes.
                    cell.set_char(char::from(b'a' + (x % 26) as u8))
                        .set_fg(if x % 2 == 0 {
                            Color::Cyan
                        } else {
                            Color::Indexed(200)
                        })
                        .set_bg(Color::DarkGray);
                    if x % 5 == 0 {
                        cell.modifier = Modifier::BOLD;
                    }
                } else {
                    // Runs, so that colours repeat from cell to cell.
                    let top = palette[(next() % 7).min(3)];
                    let bottom = if next() % 3 == 0 {
                        top
                    } else {
                        palette[next() % 4]
                    };
                    cell.set_char('▀').set_fg(top).set_bg(bottom);
                }
            }
        }
        buf
    }

    fn cells(buf: &Buffer) -> impl Iterator<Item = (u16, u16, &Cell)> {
        let w = buf.area.width;
        buf.content()
            .iter()
            .enumerate()
            .map(move |(i, c)| ((i % usize::from(w)) as u16, (i / usize::from(w)) as u16, c))
    }

    #[test]
    fn the_terminal_shows_the_same_cells() {
        let buf = picture(40, 12);
        // Every third cell of some rows unchanged: relative and absolute cursor moves.
        let drawn: Vec<_> = cells(&buf)
            .filter(|&(x, y, _)| !(y % 4 == 2 && x % 3 == 1))
            .collect();
        let out = encode(drawn.iter().copied());
        let grid = replay(&out, 40, 12);
        for &(x, y, cell) in &drawn {
            let want = seen(
                cell.symbol(),
                &canon(cell.fg, true),
                &canon(cell.bg, false),
                cell.modifier,
            );
            assert_eq!(
                grid[usize::from(y) * 40 + usize::from(x)].as_ref(),
                Some(&want),
                "cell ({x}, {y})"
            );
        }
        assert!(out.ends_with("\x1b[0m"), "leaves the attributes reset");
    }

    #[test]
    fn a_picture_takes_fewer_bytes_than_ratatuis_backend() {
        let buf = picture(120, 40);
        let ours = encode(cells(&buf)).len();
        let mut bytes = Vec::new();
        Backend::draw(&mut CrosstermBackend::new(&mut bytes), cells(&buf)).expect("draws");
        let theirs = bytes.len();
        assert!(ours * 10 < theirs * 9, "{ours} vs {theirs} bytes");
    }
}
