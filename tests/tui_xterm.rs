//! Sixel in a real xterm (`-ti vt340`, 150×45, on Xvfb), looked at in screenshots: what a person
//! sees. Skipped, saying what to install, where Xvfb, xterm, xdotool or ImageMagick is missing.

mod common;
mod realterm;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::wait_for;
use realterm::{Shot, Xterm};

/// Where a sixel picture was put: top-left cell (row, column) and its size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placement {
    row: usize,
    col: usize,
    width: usize,
    height: usize,
}

/// The sixel pictures in the program's output, where the program meant them to be: its cursor
/// positioning followed (absolute moves, moves right, one column per character; a picture is one
/// cell), as the terminal should follow it.
fn placements(stream: &[u8]) -> Vec<Placement> {
    let s = String::from_utf8_lossy(stream);
    let b = s.as_bytes();
    let (mut row, mut col) = (0_usize, 0_usize);
    let mut out = Vec::new();
    let mut i = 0;
    let number = |p: &str| p.parse::<usize>().unwrap_or(1).max(1);
    while i < b.len() {
        if b[i] != 0x1b {
            if b[i] != b'\r' && b[i] != b'\n' && (b[i] & 0xC0) != 0x80 {
                col += 1;
            }
            i += 1;
            continue;
        }
        let rest = &s[i..];
        if let Some(head) = rest.strip_prefix("\u{1b}P9;1;0q\"1;1;") {
            let mut dims = head.split(|c: char| !c.is_ascii_digit());
            let width = dims.next().and_then(|d| d.parse().ok()).unwrap_or(0);
            let height = dims.next().and_then(|d| d.parse().ok()).unwrap_or(0);
            out.push(Placement {
                row,
                col,
                width,
                height,
            });
            i += rest.find("\u{1b}\\").map_or(rest.len(), |e| e + 2);
            // The cursor put back and moved on (the fixed encoding), or not (the old one): the
            // program means one cell on either way.
            if s[i..].starts_with("\u{1b}8\u{1b}[C") {
                i += 6;
            }
            col += 1;
        } else if let Some(csi) = rest.strip_prefix("\u{1b}[") {
            if !csi.contains(|c: char| ('@'..='~').contains(&c)) {
                // The capture ends inside this sequence: nothing after it to place.
                break;
            }
            let end = csi
                .find(|c: char| ('@'..='~').contains(&c))
                .unwrap_or(csi.len() - 1);
            let params = &csi[..end];
            match &csi[end..=end] {
                "H" => {
                    let mut p = params.split(';');
                    row = number(p.next().unwrap_or("1")) - 1;
                    col = number(p.next().unwrap_or("1")) - 1;
                }
                "C" => col += number(params),
                _ => {}
            }
            i += 2 + end + 1;
        } else if rest.starts_with("\u{1b}P") || rest.starts_with("\u{1b}_") {
            i += rest.find("\u{1b}\\").map_or(rest.len(), |e| e + 2);
        } else {
            // ESC 7, ESC 8 and other two-byte sequences leave the cursor where it is meant.
            i += 2;
        }
    }
    out
}

fn read(log: &Path) -> Vec<u8> {
    std::fs::read(log).unwrap_or_default()
}

/// xterm's cell: its default font's 6×13 pixels, inside a 2-pixel border.
const CELL: (usize, usize) = (6, 13);
const BORDER: usize = 2;

/// xterm's 16 ANSI colours (the UI's named colours).
const XTERM_ANSI: [[u8; 3]; 16] = [
    [0, 0, 0],
    [205, 0, 0],
    [0, 205, 0],
    [205, 205, 0],
    [0, 0, 238],
    [205, 0, 205],
    [0, 205, 205],
    [229, 229, 229],
    [127, 127, 127],
    [255, 0, 0],
    [0, 255, 0],
    [255, 255, 0],
    [92, 92, 255],
    [255, 0, 255],
    [0, 255, 255],
    [255, 255, 255],
];

/// The cells (row, column) outside every picture of `pictures` that show a colour the text
/// screen `text` and xterm's named colours never show: what is left of a picture where none is meant to be.
fn leftovers(
    shot: &Shot,
    pictures: &[Placement],
    text: &Shot,
    rows: usize,
    cols: usize,
) -> Vec<(usize, usize)> {
    let mut allowed: HashSet<[u8; 3]> = (0..text.height)
        .flat_map(|y| (0..text.width).map(move |x| (x, y)))
        .map(|(x, y)| text.pixel(x, y))
        .collect();
    allowed.extend(XTERM_ANSI);
    let covered = |r: usize, c: usize| {
        pictures.iter().any(|p| {
            r >= p.row
                && r < p.row + p.height.div_ceil(CELL.1)
                && c >= p.col
                && c < p.col + p.width.div_ceil(CELL.0)
        })
    };
    let mut out = Vec::new();
    for r in 0..rows {
        for c in 0..cols {
            if covered(r, c) {
                continue;
            }
            let (x0, y0) = (BORDER + c * CELL.0, BORDER + r * CELL.1);
            let foreign = (y0..(y0 + CELL.1).min(shot.height))
                .flat_map(|y| (x0..(x0 + CELL.0).min(shot.width)).map(move |x| (x, y)))
                .any(|(x, y)| !allowed.contains(&shot.pixel(x, y)));
            if foreign {
                out.push((r, c));
            }
        }
    }
    out
}

/// Switching Feature maps → Filters → Feature maps in xterm left strips of an earlier picture
/// around the grid (a bar across its top, pieces at its sides): after drawing a sixel, xterm's
/// cursor is below the picture, and the screen's next cells, written relative to the picture's
/// cell, landed there instead of where the half-block stand-in had been.
#[test]
fn switching_tabs_in_xterm_leaves_nothing_of_an_earlier_picture() {
    if let Some(missing) = Xterm::missing() {
        eprintln!("SKIPPED: no real xterm to test in; missing: {missing}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = common::demo_run(tmp.path(), 2, 32, 20);
    let log = tmp.path().join("stream.log");
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xterm-tab-switch");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    // `script` keeps a copy of everything the viewer writes, to find where it put its pictures.
    // CONVSCOPE_XTERM_TEST_BIN: another build to look at (e.g. one from before the fix).
    let bin = std::env::var("CONVSCOPE_XTERM_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_convscope").to_string());
    let command = format!(
        "script -q -f -c '{bin} view {} --graphics sixel' {}; sleep 120",
        run.display(),
        log.display()
    );
    let mut xterm = Xterm::start(&command, 150, 45, &shots);
    let count = || placements(&read(&log)).len();
    wait_for("the viewer", Duration::from_mins(1), || {
        String::from_utf8_lossy(&read(&log)).contains("finished")
    });
    xterm.keys("6");
    let help = xterm.settled("the help", Duration::from_mins(1), |s| s.colours() > 1);
    xterm.keys("4");
    wait_for("three sixel pictures", Duration::from_mins(1), || {
        count() >= 3
    });
    let first = count();
    let maps = xterm.settled("feature maps", Duration::from_mins(1), |s| s.colours() > 40);
    xterm.keys("3");
    wait_for("the filters", Duration::from_mins(1), || {
        count() >= first + 3
    });
    let filters = count();
    xterm.settled("filters", Duration::from_mins(1), |s| *s != maps);
    xterm.keys("4");
    wait_for("the maps again", Duration::from_mins(1), || {
        count() >= filters + 3
    });
    let again = xterm.settled("feature maps again", Duration::from_mins(1), |s| {
        s.colours() > 40
    });
    let all = placements(&read(&log));
    let shown = &all[all.len() - 3..];
    let left = leftovers(&again, shown, &help, 45, 150);
    assert!(
        left.is_empty(),
        "{} cells outside the pictures {shown:?} show picture colours, e.g. {:?} (screenshots in {})",
        left.len(),
        &left[..left.len().min(10)],
        shots.display()
    );
    // The same screen as before the switch.
    let (n, bbox) = again.differences(&maps);
    assert_eq!(n, 0, "{n} pixels differ from the first visit, in {bbox:?}");
    // Quit: `script` runs the viewer in a session of its own, which closing xterm would leave.
    xterm.keys("q");
    wait_for("the viewer to quit", Duration::from_mins(1), || {
        String::from_utf8_lossy(&read(&log)).contains("\u{1b}[?1049l")
    });
}

#[test]
fn the_tracker_follows_absolute_and_relative_moves() {
    let stream = b"\x1b[5;10Hab\x1b[3C\x1b7\x1b[4X\x1bP9;1;0q\"1;1;12;26#0~\x1b\\\x1b8\x1b[Cx\x1b[2;1H\x1bP9;1;0q\"1;1;6;6~\x1b\\";
    assert_eq!(
        placements(stream),
        vec![
            Placement {
                row: 4,
                col: 14,
                width: 12,
                height: 26
            },
            Placement {
                row: 1,
                col: 0,
                width: 6,
                height: 6
            }
        ]
    );
}
