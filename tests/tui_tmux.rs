//! The real binary's TUI in a real terminal (tmux): tabs, colours, quitting, the checkpoint.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Tmux, events, strip, truecolors, wait_for};
use convscope::events::Event;

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

/// A terminal's late answer to a query (a status report here) can be waiting on the input when
/// the TUI starts. It makes no key event; reading it must not stop the screen from being drawn
/// (it did: crossterm read it on the UI's thread and then waited for a key, so the screen stayed
/// blank until one was pressed).
#[test]
fn input_that_makes_no_key_does_not_hold_up_the_screen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = common::demo_run(tmp.path(), 1, 16, 8);
    let started = tmp.path().join("started");
    let view = Tmux::start(
        "convscope-stray-input",
        &format!(
            "sleep 2; touch {}; {} view {}; sleep 30",
            started.display(),
            env!("CARGO_BIN_EXE_convscope"),
            run_dir.display()
        ),
    );
    // Sent before the viewer starts: it is waiting on the terminal's input when the TUI begins.
    view.send_bytes(b"\x1b[0n");
    assert!(
        !started.exists(),
        "the bytes must arrive before the viewer starts"
    );
    view.wait_text_noting("finished", Some(&run_dir.join("viewer.log")));
    // Once more while it runs, then a resize: the screen follows without a key press.
    view.send_bytes(b"\x1b[0n");
    view.resize(20, 5);
    view.wait_text("small");
    view.resize(200, 60);
    view.wait_text("● finished");
}
