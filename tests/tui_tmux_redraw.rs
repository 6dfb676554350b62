//! Sixel through tmux's passthrough is not kept by tmux: when tmux redraws the pane (here:
//! another window and back) the viewer is told (tmux hooks, `SIGUSR1`) and sends its pictures
//! again; its hooks are gone when it quits.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Tmux, wait_for};

/// Sixel pictures in a stream written inside tmux's passthrough (escapes doubled).
fn sixels(log: &Path) -> usize {
    String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default())
        .matches("\u{1b}\u{1b}P9;1;0q")
        .count()
}

fn hooks(session: &str) -> String {
    let out = std::process::Command::new("tmux")
        .args(["-L", session, "show-hooks", "-g"])
        .output()
        .expect("tmux show-hooks");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn passthrough_sixel_is_sent_again_when_tmux_redraws() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = common::demo_run(tmp.path(), 1, 16, 8);
    let status = tmp.path().join("status");
    let session = "convscope-sixel-redraw";
    let view = Tmux::start(
        session,
        &format!(
            "{} view {} --graphics sixel; echo $? > {}; sleep 60",
            env!("CARGO_BIN_EXE_convscope"),
            run.display(),
            status.display()
        ),
    );
    view.wait_text_noting("finished", Some(&run.join("viewer.log")));
    assert!(
        hooks(session).contains("kill -USR1"),
        "the viewer follows tmux's redraws: {}",
        hooks(session)
    );
    let log = tmp.path().join("terminal.log");
    view.pipe_to(&log);
    view.keys("4");
    wait_for("three sixel pictures", Duration::from_mins(1), || {
        sixels(&log) >= 3
    });
    let before = sixels(&log);
    let tmux = |args: &[&str]| {
        let ok = std::process::Command::new("tmux")
            .args(["-L", session])
            .args(args)
            .status()
            .expect("tmux");
        assert!(ok.success());
    };
    tmux(&["new-window", "-d", "-t", session, "sleep 30"]);
    tmux(&["select-window", "-t", &format!("{session}:1")]);
    tmux(&["select-window", "-t", &format!("{session}:0")]);
    wait_for("the pictures sent again", Duration::from_mins(1), || {
        sixels(&log) >= before + 3
    });
    view.keys("q");
    wait_for("the viewer to quit", Duration::from_mins(1), || {
        std::fs::read_to_string(&status).is_ok_and(|s| !s.trim().is_empty())
    });
    assert!(
        !hooks(session).contains("kill -USR1"),
        "its hooks are removed: {}",
        hooks(session)
    );
}
