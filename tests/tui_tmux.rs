//! The real binary's TUI in a real terminal (tmux): tabs, colours, quitting, the checkpoint.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{events, wait_for};
use convscope::events::Event;

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(session: &str, command: &str) -> Self {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", session])
            .status();
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "200",
                "-y",
                "60",
                command,
            ])
            .env("COLORTERM", "truecolor")
            .status()
            .expect("tmux is installed (apt-get install -y tmux)");
        assert!(ok.success());
        Self {
            session: session.to_string(),
        }
    }

    fn keys(&self, keys: &str) {
        let ok = Command::new("tmux")
            .args(["send-keys", "-t", &self.session, keys])
            .status()
            .expect("send-keys");
        assert!(ok.success());
    }

    fn capture(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-e", "-t", &self.session])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_text(&self, what: &str) -> String {
        let mut screen = String::new();
        wait_for(
            &format!("{what:?} on screen"),
            Duration::from_mins(2),
            || {
                screen = self.capture();
                strip(&screen).contains(what)
            },
        );
        screen
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

/// The screen text without escape sequences.
fn strip(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Distinct 24-bit colours (foreground or background) on the screen.
fn truecolors(s: &str) -> HashSet<String> {
    let mut set = HashSet::new();
    for part in s.split('\u{1b}').skip(1) {
        let Some(body) = part.strip_prefix('[') else {
            continue;
        };
        let Some(end) = body.find('m') else { continue };
        let params: Vec<&str> = body[..end].split(';').collect();
        let mut i = 0;
        while i < params.len() {
            if (params[i] == "38" || params[i] == "48")
                && params.get(i + 1) == Some(&"2")
                && i + 4 < params.len()
            {
                set.insert(params[i + 2..=i + 4].join(","));
                i += 5;
            } else {
                i += 1;
            }
        }
    }
    set
}

fn exit_status(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[test]
fn demo_in_tmux_tabs_colours_and_quit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = tmp.path().join("run");
    let status = tmp.path().join("status");
    let command = format!(
        "CONVSCOPE_SLOW_BATCH_MS=20 {} demo --run {} --per-class 60 --image-size 32 --epochs 100 2>{}; echo $? > {}; sleep 60",
        env!("CARGO_BIN_EXE_convscope"),
        run_dir.display(),
        tmp.path().join("stderr").display(),
        status.display()
    );
    let tmux = Tmux::start("convscope-e2e", &command);

    // Training tab: the epoch table fills once the first epoch ends.
    wait_for("the first epoch", Duration::from_mins(2), || {
        run_dir.join("events.jsonl").exists()
            && events(&run_dir)
                .iter()
                .any(|e| matches!(e, Event::Epoch(_)))
    });
    let screen = tmux.wait_text("best val accuracy");
    let text = strip(&screen);
    assert!(
        text.contains("1 Training") && text.contains("img/s"),
        "{text}"
    );

    tmux.keys("2");
    let text = strip(&tmux.wait_text("Param"));
    assert!(
        text.contains("conv2d_2") && text.contains("dense_1"),
        "{text}"
    );

    tmux.keys("3");
    let screen = tmux.wait_text("input channels");
    let colours = truecolors(&screen);
    assert!(
        colours.len() > 40,
        "the filter heatmaps have many colours: {}",
        colours.len()
    );

    tmux.keys("4");
    let screen = tmux.wait_text("(x-mean)/std");
    let text = strip(&screen);
    assert!(
        text.contains("cat.jpg") || text.contains("dog.jpg"),
        "a sample photo is the probe: {text}"
    );
    assert!(truecolors(&screen).len() > 40, "feature maps in colour");

    tmux.keys("5");
    tmux.wait_text("Keys");

    // q while training asks first; y stops with a checkpoint.
    tmux.keys("q");
    tmux.wait_text("Training is running. y: stop it and quit");
    tmux.keys("y");
    wait_for("convscope to exit", Duration::from_mins(2), || {
        exit_status(&status).is_some()
    });
    assert_eq!(exit_status(&status), Some(0));
    let evs = events(&run_dir);
    assert!(
        evs.iter().any(|e| matches!(e, Event::Finished(_))),
        "a clean stop"
    );
    let latest = std::fs::read_to_string(run_dir.join("checkpoints/latest")).expect("checkpoint");
    let _ = common::checkpoint_weights(&run_dir, latest.trim());
}
