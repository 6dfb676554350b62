//! kitty graphics with Unicode placeholders through tmux: the viewer's real output, captured as
//! tmux passes it on (`pipe-pane`: the image transmitted through passthrough) and as tmux keeps
//! the screen (`capture-pane -e`: placeholder characters in the image id's colour, which tmux
//! redraws like any text). The kitty in Debian 12 (0.26.5) predates placeholders (0.28), so no
//! real kitty draws them here; what kitty would be sent is checked byte for byte instead.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Tmux, strip, wait_for};

const PLACEHOLDER: char = '\u{10EEEE}';

/// The first kitty transmission in a terminal stream: its image id, pixel size, and the RGBA
/// bytes of all its chunks (base64, inside tmux's passthrough).
fn transmission(stream: &[u8]) -> Option<(u32, usize, usize, Vec<u8>)> {
    let text = String::from_utf8_lossy(stream);
    let first = text.find("\u{1b}Ptmux;\u{1b}\u{1b}_Gq=2,i=")?;
    let mut id = 0;
    let (mut w, mut h) = (0, 0);
    let mut payload = String::new();
    for chunk in text[first..].split("\u{1b}Ptmux;\u{1b}\u{1b}_G").skip(1) {
        let end = chunk.find("\u{1b}\u{1b}\\")?;
        let (keys, data) = chunk[..end].split_once(';')?;
        for kv in keys.split(',') {
            match kv.split_once('=') {
                Some(("i", v)) => id = v.parse().ok()?,
                Some(("s", v)) => w = v.parse().ok()?,
                Some(("v", v)) => h = v.parse().ok()?,
                _ => {}
            }
        }
        payload.push_str(data);
        if keys.contains("m=0") {
            break;
        }
    }
    Some((id, w, h, base64(&payload)))
}

fn base64(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(value).collect();
    bytes
        .chunks(4)
        .flat_map(|q| {
            let n = q
                .iter()
                .enumerate()
                .fold(0_u32, |n, (i, &v)| n | u32::from(v) << (18 - 6 * i));
            let out = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.into_iter().take(q.len().saturating_sub(1))
        })
        .collect()
}

/// Placeholder cells on a captured screen drawn in colour `rgb`.
fn placeholders(screen: &str, rgb: [u8; 3]) -> usize {
    let colour = format!("38;2;{};{};{}m", rgb[0], rgb[1], rgb[2]);
    screen
        .split("\u{1b}[")
        .filter(|seq| seq.starts_with(&colour))
        .map(|seq| seq.matches(PLACEHOLDER).count())
        .sum()
}

fn read(log: &Path) -> Vec<u8> {
    std::fs::read(log).unwrap_or_default()
}

#[test]
fn kitty_placeholders_go_through_tmux_and_survive_its_redraws() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = common::demo_run(tmp.path(), 1, 16, 8);
    let view = Tmux::start(
        "convscope-kitty-tmux",
        &format!(
            "{} view {} --graphics kitty; sleep 60",
            env!("CARGO_BIN_EXE_convscope"),
            run.display()
        ),
    );
    view.wait_text_noting("finished", Some(&run.join("viewer.log")));
    let log = tmp.path().join("terminal.log");
    view.pipe_to(&log);
    view.keys("4");
    wait_for("a kitty transmission", Duration::from_mins(1), || {
        transmission(&read(&log)).is_some()
    });
    // Three pictures on Feature maps: the photo, the grid and the selected channel.
    let transmitted = || {
        String::from_utf8_lossy(&read(&log))
            .matches("a=T,U=1")
            .count()
    };
    wait_for("three transmissions", Duration::from_mins(1), || {
        transmitted() >= 3
    });
    let (id, w, h, rgba) = transmission(&read(&log)).expect("a transmission");
    assert!(w >= 16 && h >= 16, "{w}x{h}");
    assert_eq!(rgba.len(), w * h * 4, "the whole RGBA image, {w}x{h}");
    let stream = String::from_utf8_lossy(&read(&log)).into_owned();
    assert!(
        stream.contains(&format!("i={id},a=T,U=1,f=32")),
        "a virtual placement, for placeholders"
    );
    // The id's low three bytes are the placeholders' colour (its top byte is a diacritic).
    let [_, r, g, b] = id.to_be_bytes();
    wait_for("the placeholder cells", Duration::from_mins(1), || {
        placeholders(&view.capture(), [r, g, b]) > 4
    });
    let before = placeholders(&view.capture(), [r, g, b]);

    // tmux redraws the pane from its own grid (another window and back): the placeholders are
    // text to it, kept in its grid like any other.
    let tmux = |args: &[&str]| {
        let ok = std::process::Command::new("tmux")
            .args(["-L", "convscope-kitty-tmux"])
            .args(args)
            .status()
            .expect("tmux");
        assert!(ok.success());
    };
    tmux(&["new-window", "-d", "-t", "convscope-kitty-tmux", "sleep 30"]);
    tmux(&["select-window", "-t", "convscope-kitty-tmux:1"]);
    tmux(&["select-window", "-t", "convscope-kitty-tmux:0"]);
    let after = placeholders(&view.capture(), [r, g, b]);
    assert_eq!(after, before, "every placeholder is still there");
}

/// A tmux client whose terminal is kitty (`TERM=xterm-kitty`): kitty placeholders are chosen
/// automatically, and the Help tab says so and why.
#[test]
fn inside_tmux_in_kitty_auto_chooses_placeholders_and_help_says_why() {
    let has_terminfo = std::process::Command::new("infocmp")
        .arg("xterm-kitty")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_terminfo {
        eprintln!("SKIPPED: no terminfo for xterm-kitty (apt-get install kitty-terminfo)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = common::demo_run(tmp.path(), 1, 16, 8);
    let go = tmp.path().join("go");
    let session = "convscope-kitty-auto";
    let view = Tmux::start_over_ssh(
        session,
        &format!(
            "while [ ! -e {} ]; do sleep 0.05; done; {} view {}; sleep 30",
            go.display(),
            env!("CARGO_BIN_EXE_convscope"),
            run.display()
        ),
        &[],
    );
    let mut client = view.attach("xterm-kitty");
    std::fs::write(&go, b"").expect("go");
    view.wait_text("● finished");
    view.keys("6");
    let help = strip(&view.wait_text("Pictures:"));
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("Pictures: kitty graphics with Unicode placeholders through tmux")
            && flat.contains("survive"),
        "{help}"
    );
    view.kill();
    let _ = client.kill();
    let _ = client.wait();
}

/// Inside tmux 3.3 in a plain xterm-256color terminal nothing better is known: half blocks,
/// and the Help tab says why and how to force a protocol.
#[test]
fn inside_tmux_without_graphics_help_says_half_blocks_and_why() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = common::demo_run(tmp.path(), 1, 16, 8);
    let go = tmp.path().join("go");
    let view = Tmux::start_over_ssh(
        "convscope-graphics-why",
        &format!(
            "while [ ! -e {} ]; do sleep 0.05; done; {} view {}; sleep 30",
            go.display(),
            env!("CARGO_BIN_EXE_convscope"),
            run.display()
        ),
        &[],
    );
    let mut client = view.attach("xterm-256color");
    std::fs::write(&go, b"").expect("go");
    view.wait_text("● finished");
    view.keys("6");
    let help = strip(&view.wait_text("Pictures:"));
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("Pictures: half blocks (tmux") && flat.contains("--graphics"),
        "{help}"
    );
    view.kill();
    let _ = client.kill();
    let _ = client.wait();
}
