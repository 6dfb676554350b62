//! `convscope show` and `predict --show`: the real binary printing pictures into a real terminal
//! (tmux, as over SSH: no `COLORTERM`, `TERM=xterm-256color`; a real xterm for sixel), and
//! refusing to print them anywhere else.

mod common;
mod realterm;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Tmux, strip, wait_for};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_convscope")
}

/// Half-block cells (`▄`/`▀`) drawn in the 256-colour palette on a captured screen.
fn palette_half_blocks(screen: &str) -> usize {
    screen
        .split("\u{1b}[")
        .filter(|seq| seq.starts_with("38;5;") || seq.starts_with("48;5;"))
        .filter(|seq| seq.contains('▄') || seq.contains('▀'))
        .count()
}

/// `show RUN WHAT` in tmux as over SSH; returns the screen once the command has finished, and
/// its exit status.
fn show_in_tmux(session: &str, args: &str, dir: &Path) -> (String, String) {
    let status = dir.join(format!("{session}.status"));
    let _tmux = Tmux::start_over_ssh(
        session,
        &format!(
            "TERM=xterm-256color {} {args} 2>{}; echo $? > {}; sleep 60",
            bin(),
            dir.join(format!("{session}.err")).display(),
            status.display()
        ),
        &[],
    );
    wait_for("the command to finish", Duration::from_mins(2), || {
        std::fs::read_to_string(&status).is_ok_and(|s| !s.trim().is_empty())
    });
    // The whole output, the part scrolled off the top too.
    let out = std::process::Command::new("tmux")
        .args([
            "-L",
            session,
            "capture-pane",
            "-p",
            "-e",
            "-S",
            "-",
            "-t",
            session,
        ])
        .output()
        .expect("capture-pane");
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = std::fs::read_to_string(dir.join(format!("{session}.err"))).unwrap_or_default();
    assert_eq!(
        std::fs::read_to_string(&status).unwrap_or_default().trim(),
        "0",
        "{err}\n{}",
        strip(&screen)
    );
    (screen, err)
}

#[test]
fn show_prints_curves_and_filters_as_half_blocks_over_ssh() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = common::demo_run(tmp.path(), 2, 32, 20);
    let (screen, err) = show_in_tmux(
        "convscope-show-curves",
        &format!("show {} curves", run.display()),
        tmp.path(),
    );
    assert!(strip(&screen).contains("curves"), "{}", strip(&screen));
    assert!(
        palette_half_blocks(&screen) > 200,
        "the curves in half blocks of the 256-colour palette"
    );
    assert!(err.contains("half blocks"), "{err}");
    assert!(err.contains("1 picture(s)"), "{err}");

    let (screen, err) = show_in_tmux(
        "convscope-show-filters",
        &format!("show {} filters --layer conv2d_1", run.display()),
        tmp.path(),
    );
    let text = strip(&screen);
    assert!(text.contains("filters_conv2d_1"), "{text}");
    assert!(
        !text.contains("filters_conv2d_rgb"),
        "only the layer asked for"
    );
    assert!(err.contains("1 picture(s)"), "{err}");
}

#[test]
fn show_confusion_classifies_the_validation_images() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = common::demo_run(tmp.path(), 2, 32, 20);
    let (screen, err) = show_in_tmux(
        "convscope-show-confusion",
        &format!("show {} confusion", run.display()),
        tmp.path(),
    );
    assert!(strip(&screen).contains("confusion"), "{}", strip(&screen));
    assert!(palette_half_blocks(&screen) > 100);
    assert!(err.contains("1 picture(s)"), "{err}");
}

#[test]
fn show_refuses_a_stdout_that_is_not_a_terminal_and_names_unknown_layers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = common::demo_run(tmp.path(), 1, 16, 8);
    let out = common::bin()
        .args(["show", run.to_str().expect("utf8"), "curves"])
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stdout is not a terminal") && err.contains("convscope export"),
        "{err}"
    );

    // predict --show without a terminal: the table, and a note.
    let photo = tmp.path().join("cat.jpg");
    std::fs::write(&photo, convscope::viz::SAMPLE_PHOTOS[0].1).expect("photo");
    let out = common::bin()
        .args([
            "predict",
            run.to_str().expect("utf8"),
            photo.to_str().expect("utf8"),
            "--show",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("probability") && table.contains("cat.jpg"),
        "{table}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("the table follows"));

    let t = Tmux::start_over_ssh(
        "convscope-show-layer",
        &format!(
            "{} show {} maps --layer nope; sleep 60",
            bin(),
            run.display()
        ),
        &[],
    );
    let text = strip(&t.wait_text("no layer named"));
    assert!(text.contains("conv2d_1"), "the layers are listed: {text}");
}

#[test]
fn predict_show_prints_each_image_with_its_class() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = common::demo_run(tmp.path(), 1, 16, 8);
    let photo = tmp.path().join("cat.jpg");
    std::fs::write(&photo, convscope::viz::SAMPLE_PHOTOS[0].1).expect("photo");
    let (screen, _) = show_in_tmux(
        "convscope-predict-show",
        &format!("predict {} {} --show", run.display(), photo.display()),
        tmp.path(),
    );
    let text = strip(&screen);
    let line = text
        .lines()
        .find(|l| l.contains("cat.jpg"))
        .unwrap_or_else(|| panic!("a line for the image: {text}"));
    let probability: f32 = line
        .split_whitespace()
        .last()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a probability: {line}"));
    assert!((0.0..=1.0).contains(&probability), "{line}");
    assert!(
        palette_half_blocks(&screen) > 100,
        "the photo in half blocks"
    );
}

/// In a real xterm with sixel (`-ti vt340`), `show` asks the terminal and prints sixel.
#[test]
fn show_prints_sixel_in_a_real_xterm() {
    if let Some(missing) = realterm::Xterm::missing() {
        eprintln!("SKIPPED: no real xterm to test in; missing: {missing}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = common::demo_run(tmp.path(), 1, 16, 8);
    let log = tmp.path().join("stream.log");
    let err = tmp.path().join("stderr");
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xterm-show");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let command = format!(
        "script -q -f -c '{} show {} filters --layer conv2d 2>{}' {}; sleep 60",
        bin(),
        run.display(),
        err.display(),
        log.display()
    );
    let mut xterm = realterm::Xterm::start(&command, 120, 40, &shots);
    wait_for("show to finish", Duration::from_mins(1), || {
        std::fs::read_to_string(&err).is_ok_and(|e| e.contains("picture(s)"))
    });
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(stderr.contains("pictures as sixel"), "{stderr}");
    let stream = std::fs::read(&log).unwrap_or_default();
    let text = String::from_utf8_lossy(&stream);
    let start = text.find("\u{1b}P9;1;0q").expect("a sixel picture");
    let end = text[start..].find("\u{1b}\\").expect("its end") + start + 2;
    let img = icy_sixel::SixelImage::decode(&stream[start..end]).expect("a valid sixel");
    assert!(
        img.width <= 120 * 6,
        "no wider than the terminal: {}",
        img.width
    );
    let shot = xterm.settled("the filters", Duration::from_mins(1), |s| s.colours() > 20);
    assert!(shot.colours() > 20, "the picture on screen");
}
