//! The real binary's TUI in a real terminal (tmux): tabs, colours, quitting, the checkpoint.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Tmux, events, strip, truecolors, wait_for};
use convscope::events::Event;

fn batch_count(run: &Path) -> usize {
    events(run)
        .iter()
        .filter(|e| matches!(e, Event::Batch(_)))
        .count()
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
    // The last row of the table: a capture can catch a frame half drawn on a loaded machine.
    let text = strip(&tmux.wait_text("dense_1"));
    assert!(
        text.contains("conv2d_2") && text.contains("dense_1"),
        "{text}"
    );

    // A capture can fall between the parts of a frame that tmux has read: wait for the colours.
    tmux.keys("3");
    tmux.wait_text("input channels");
    wait_for(
        "the filter heatmaps in many colours",
        Duration::from_secs(30),
        || truecolors(&tmux.capture()).len() > 40,
    );

    tmux.keys("4");
    let screen = tmux.wait_text("(x-mean)/std");
    let text = strip(&screen);
    assert!(
        text.contains("cat.jpg") || text.contains("dog.jpg"),
        "a sample photo is the probe: {text}"
    );
    wait_for(
        "the feature maps in colour",
        Duration::from_secs(30),
        || truecolors(&tmux.capture()).len() > 40,
    );

    tmux.keys("6");
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

/// Train in the TUI inside tmux (`shell` comes first in the pane's command line, `tail` after
/// the training), wait for a few batches, then kill the terminal as a dropped SSH connection
/// does; returns the run directory.
fn tui_training_loses_its_terminal(
    session: &str,
    tmp: &Path,
    shell: &str,
    tail: &str,
) -> std::path::PathBuf {
    let data = common::synthetic(tmp, 40, 16);
    let run_dir = tmp.join("run");
    let term = Tmux::start(
        session,
        &format!(
            "{shell} CONVSCOPE_SLOW_BATCH_MS=20 {} train {} --run {} --image-size 16 --batch-size 4 --epochs 200 {tail}",
            env!("CARGO_BIN_EXE_convscope"),
            data.display(),
            run_dir.display()
        ),
    );
    term.wait_text("● running");
    wait_for("a few batches", Duration::from_mins(1), || {
        batch_count(&run_dir) >= 3
    });
    term.kill();
    run_dir
}

/// Wait for the training to finish as stopped, and check that its last checkpoint is `latest`
/// and loads.
fn stopped_with_a_checkpoint(run_dir: &Path) {
    wait_for("the stop checkpoint", Duration::from_mins(1), || {
        events(run_dir).iter().any(|e| {
            matches!(
                e,
                Event::Finished(f) if f.reason == convscope::events::FinishReason::Stopped
            )
        })
    });
    let evs = events(run_dir);
    let Some(Event::Checkpoint(last)) =
        evs.iter().rev().find(|e| matches!(e, Event::Checkpoint(_)))
    else {
        panic!("a checkpoint event")
    };
    let latest = std::fs::read_to_string(run_dir.join("checkpoints/latest")).expect("latest");
    assert_eq!(latest.trim(), last.name);
    let _ = common::checkpoint_weights(run_dir, latest.trim());
}

/// A training whose screen has gone: its batches go on, its control socket is live and a stop
/// through it ends the run with a checkpoint, and the process exits 0 (`status` holds `$?`).
fn goes_on_then_stops_through_its_socket(run_dir: &Path, status: &Path) {
    let batches = || batch_count(run_dir);
    let before = batches();
    wait_for("training to go on", Duration::from_mins(1), || {
        batches() > before + 5
    });
    let sock = run_dir.join("control.sock");
    assert!(convscope::run::control::is_live(&sock), "the socket stays");
    convscope::run::control::send(&sock, &convscope::events::Command::Stop).expect("stop");
    stopped_with_a_checkpoint(run_dir);
    wait_for("convscope to exit", Duration::from_mins(1), || {
        exit_status(status).is_some()
    });
    assert_eq!(exit_status(status), Some(0));
}

/// The SSH connection drops under a training in the TUI (not detached): SIGHUP, and a terminal
/// that is gone. Leaving the screen fails then; that must not end the process before the
/// training has written its stop checkpoint. It did: ratatui reports a failed cursor restore
/// with `eprintln!`, which panics when stderr is the dead terminal (exit 101, no checkpoint).
/// Here stderr goes to a file, so the report of the failure itself shows.
#[test]
fn training_in_the_tui_checkpoints_when_its_terminal_hangs_up() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let stderr = tmp.path().join("stderr");
    let run_dir = tui_training_loses_its_terminal(
        "convscope-tui-hup",
        tmp.path(),
        "",
        &format!("2> {}", stderr.display()),
    );
    stopped_with_a_checkpoint(&run_dir);
    wait_for("convscope's last words", Duration::from_mins(1), || {
        std::fs::read_to_string(&stderr).is_ok_and(|e| e.contains("interrupted by SIGHUP"))
    });
    let err = std::fs::read_to_string(&stderr).expect("stderr");
    assert!(err.contains("checkpoint written. Resume with"), "{err}");
    assert!(
        !err.contains("Failed to show the cursor") && !err.contains("panicked"),
        "{err}"
    );
}

/// The same without a hangup signal (the shell ignores it, as under nohup): the screen fails
/// on the dead terminal, and the training goes on without it, as nohup asks (it used to end
/// at once with the screen's error, losing the epoch's progress). It is then stopped through
/// its control socket, as a viewer would.
#[test]
fn training_in_the_tui_goes_on_when_its_terminal_vanishes_without_a_signal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let status = tmp.path().join("status");
    let run_dir = tui_training_loses_its_terminal(
        "convscope-tui-nohup",
        tmp.path(),
        "trap '' HUP;",
        &format!("; echo $? > {}", status.display()),
    );
    goes_on_then_stops_through_its_socket(&run_dir, &status);
}

/// `q`, then `d` (leave it running) in a training's own TUI: the training must outlive the
/// terminal (it stopped with the SSH session, at epoch 38 of 40) and the shell gets its prompt
/// back. The training stops at a checkpoint, a background process of its own session resumes
/// it, and it goes on after the terminal is killed, controllable through its socket.
#[test]
fn leaving_a_training_s_screen_hands_it_to_the_background() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = common::synthetic(tmp.path(), 40, 16);
    let run_dir = tmp.path().join("run");
    let status = tmp.path().join("status");
    let term = Tmux::start(
        "convscope-tui-leave",
        &format!(
            "CONVSCOPE_SLOW_BATCH_MS=20 {} train {} --run {} --image-size 16 --batch-size 4 --epochs 200; echo $? > {}; sleep 60",
            env!("CARGO_BIN_EXE_convscope"),
            data.display(),
            run_dir.display(),
            status.display()
        ),
    );
    term.wait_text("● running");
    term.keys("q");
    term.wait_text("d: quit, leave it running");
    term.keys("d");
    // The command ends (the shell's prompt comes back) while the training goes on.
    wait_for(
        "convscope to return to the shell",
        Duration::from_mins(1),
        || exit_status(&status).is_some(),
    );
    assert_eq!(exit_status(&status), Some(0));
    term.wait_text("the training goes on in the background");
    // The background process answers on its socket before it has read the data and the
    // checkpoint: its `started` follows.
    wait_for(
        "the background process to start",
        Duration::from_mins(1),
        || {
            let evs = events(&run_dir);
            evs.iter()
                .position(|e| {
                    matches!(e, Event::Finished(f)
                    if f.cause == Some(convscope::events::StopCause::HandOff))
                })
                .is_some_and(|h| evs[h..].iter().any(|e| matches!(e, Event::Started(_))))
        },
    );
    let evs = events(&run_dir);
    let handed = evs
        .iter()
        .position(|e| {
            matches!(e, Event::Finished(f)
                if f.cause == Some(convscope::events::StopCause::HandOff))
        })
        .expect("stopped for the hand-off");
    assert!(
        evs[handed..].iter().any(|e| matches!(e, Event::Started(_))),
        "resumed in the background: {:?}",
        &evs[handed..]
    );
    // The SSH connection drops: the training is not in this terminal's session any more.
    term.kill();
    let before = batch_count(&run_dir);
    wait_for("training to go on", Duration::from_mins(1), || {
        batch_count(&run_dir) > before + 5
    });
    let sock = run_dir.join("control.sock");
    assert!(convscope::run::control::is_live(&sock));
    convscope::run::control::send(&sock, &convscope::events::Command::Stop).expect("stop");
    wait_for(
        "the background process's last words",
        Duration::from_mins(1),
        || {
            std::fs::read_to_string(run_dir.join("convscope.out"))
                .is_ok_and(|o| o.contains("Resume with: convscope resume"))
        },
    );
    let latest = std::fs::read_to_string(run_dir.join("checkpoints/latest")).expect("latest");
    let _ = common::checkpoint_weights(&run_dir, latest.trim());
}

/// Epochs of a twentieth of a second (a small dataset, or any on a GPU) would redraw the
/// Feature maps tab at every epoch end: megabytes a second over SSH. Epoch-end pictures are
/// held to `ui.refresh_kb_per_sec`, and the last epoch's pictures are shown once the run ends.
#[test]
fn epoch_end_pictures_are_paced_to_the_link_and_the_last_ones_shown() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = tmp.path().join("run");
    let config = tmp.path().join("config.toml");
    let kb_per_sec = 40;
    std::fs::write(
        &config,
        convscope::config::DEFAULT_TOML.replace(
            "refresh_kb_per_sec = 256",
            &format!("refresh_kb_per_sec = {kb_per_sec}"),
        ),
    )
    .expect("config");
    let epochs = 300;
    let tmux = Tmux::start(
        "convscope-paced",
        &format!(
            "{} demo --config {} --run {} --per-class 30 --image-size 32 --epochs {epochs} --graphics halfblocks; sleep 60",
            env!("CARGO_BIN_EXE_convscope"),
            config.display(),
            run_dir.display()
        ),
    );
    tmux.wait_text("best val accuracy");
    tmux.keys("4");
    tmux.wait_text("(x-mean)/std");
    let log = tmp.path().join("pipe.log");
    tmux.pipe_to(&log);
    let size = || std::fs::metadata(&log).map_or(0, |m| m.len());
    std::thread::sleep(Duration::from_secs(1));
    let (epochs_before, bytes_before) = (epoch_count(&run_dir), size());
    let shown_before = shown_epoch(&tmux.capture());
    let window = 6;
    std::thread::sleep(Duration::from_secs(window));
    let (epochs_during, bytes) = (epoch_count(&run_dir) - epochs_before, size() - bytes_before);
    let shown_after = shown_epoch(&tmux.capture());
    eprintln!(
        "{bytes} bytes in {window} s, {epochs_during} epochs, maps of epoch {shown_before:?} then {shown_after:?}"
    );
    assert!(
        epochs_during >= 10,
        "the test needs fast epochs: {epochs_during} in {window} s"
    );
    // The rate, plus one whole refresh (it may start just before the window ends) and text.
    let bound = (kb_per_sec * 1000 * window) + 120_000;
    assert!(
        bytes < bound,
        "{bytes} bytes in {window} s over {epochs_during} epochs (bound {bound})"
    );
    assert!(
        shown_after > shown_before,
        "held back, not stopped: the maps still follow the run"
    );
    wait_for("the run to end", Duration::from_mins(3), || {
        events(&run_dir)
            .iter()
            .any(|e| matches!(e, Event::Finished(_)))
    });
    tmux.wait_text("● finished");
    wait_for("the last epoch's maps", Duration::from_secs(10), || {
        strip(&tmux.capture()).contains(&format!("epoch {epochs}"))
    });
}

/// The epoch of the feature maps on screen (the Feature maps tab's header says it).
fn shown_epoch(screen: &str) -> Option<usize> {
    let text = strip(screen);
    let line = text.lines().find(|l| l.contains("(x-mean)/std"))?;
    let rest = &line[line.rfind("epoch ")? + "epoch ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

fn epoch_count(run: &Path) -> usize {
    events(run)
        .iter()
        .filter(|e| matches!(e, Event::Epoch(_)))
        .count()
}

/// `resume` in the TUI shows the whole run: the earlier session's epochs are in the table and
/// the curves, not only those trained since.
#[test]
fn a_resumed_run_s_screen_starts_at_epoch_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = common::demo_run(tmp.path(), 3, 16, 8);
    let tmux = Tmux::start(
        "convscope-resume-tui",
        &format!(
            "{} resume {} --epochs 5; sleep 60",
            env!("CARGO_BIN_EXE_convscope"),
            run_dir.display()
        ),
    );
    tmux.wait_text("● finished");
    let text = strip(&tmux.capture());
    // Epoch table rows: "│N  loss  acc ...", the best one "│N ★  loss ...".
    let rows: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix('│'))
        .filter_map(|l| {
            let mut words = l.split_whitespace().filter(|w| *w != "★");
            let epoch = words.next()?;
            let loss = words.next()?;
            (epoch.chars().all(|c| c.is_ascii_digit()) && loss.parse::<f64>().is_ok())
                .then_some(epoch)
        })
        .collect();
    assert_eq!(rows, ["1", "2", "3", "4", "5"], "{rows:?} in {text}");
}

/// `[` / `]` typed faster than the pictures come back (key repeat, or typing over SSH: the
/// presses arrive in one read) move one epoch per press; they moved one epoch in all.
#[test]
fn brackets_typed_in_one_burst_move_one_epoch_each() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = common::demo_run(tmp.path(), 8, 16, 8);
    let view = Tmux::view("convscope-brackets", &run_dir);
    view.wait_text("● finished");
    view.keys("4");
    wait_for("the maps of epoch 8", Duration::from_mins(1), || {
        shown_epoch(&view.capture()) == Some(8)
    });
    // One send-keys call: the five presses reach the viewer in one write.
    view.keys("[[[[[");
    wait_for("the maps of epoch 3", Duration::from_mins(1), || {
        shown_epoch(&view.capture()) == Some(3)
    });
    view.keys("]]");
    wait_for("the maps of epoch 5", Duration::from_mins(1), || {
        shown_epoch(&view.capture()) == Some(5)
    });
}

/// The TUI asks for mouse clicks only: press/release reports (1000) in SGR form (1006), never
/// any-motion tracking (1003), which sends every mouse move up the link and makes selecting
/// text need Shift. The bytes it writes from the start are recorded with `pipe-pane`.
#[test]
fn the_tui_asks_for_clicks_only_not_every_mouse_move() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = common::demo_run(tmp.path(), 1, 16, 8);
    let go = tmp.path().join("go");
    let view = Tmux::start(
        "convscope-mouse-mode",
        &format!(
            "while [ ! -e {} ]; do sleep 0.05; done; {} view {}; sleep 30",
            go.display(),
            env!("CARGO_BIN_EXE_convscope"),
            run_dir.display()
        ),
    );
    let log = tmp.path().join("pipe.log");
    view.pipe_to(&log);
    std::fs::write(&go, b"").expect("go");
    view.wait_text("● finished");
    // A click (as the terminal reports it in SGR form) on the Model tab's name opens it.
    view.send_bytes(b"\x1b[<0;15;1M\x1b[<0;15;1m");
    view.wait_text("Param");
    let bytes = std::fs::read(&log).expect("pipe log");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("\x1b[?1000h"), "clicks are asked for");
    assert!(text.contains("\x1b[?1006h"), "in SGR coordinates");
    for mode in ["1003", "1002", "1015"] {
        assert!(
            !text.contains(&format!("\x1b[?{mode}h")),
            "mode {mode} must not be turned on"
        );
    }
}

/// Over SSH `COLORTERM` is missing. Inside tmux the TUI asks tmux what its client terminal can
/// do: with `terminal-features` giving it RGB (or a `Tc` terminal override), the heatmaps are
/// drawn in 24-bit colour; without, in the 256-colour palette. Help says which and why.
/// Returns the Help tab's text and the Feature maps screen (with its colours).
fn colours_in_tmux_without_colorterm(session: &str, options: &[[&str; 2]]) -> (String, String) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = common::demo_run(tmp.path(), 1, 16, 8);
    let go = tmp.path().join("go");
    let view = Tmux::start_over_ssh(
        session,
        &format!(
            "while [ ! -e {} ]; do sleep 0.05; done; {} view {}; sleep 30",
            go.display(),
            env!("CARGO_BIN_EXE_convscope"),
            run_dir.display()
        ),
        options,
    );
    let mut client = view.attach("xterm-256color");
    std::fs::write(&go, b"").expect("go");
    view.wait_text("● finished");
    view.keys("4");
    view.wait_text("(x-mean)/std");
    // The maps are drawn in many colours, of one kind or the other.
    wait_for(
        "the feature maps in colour",
        Duration::from_secs(30),
        || {
            let screen = view.capture();
            truecolors(&screen).len() + common::palette_colors(&screen).len() > 40
        },
    );
    let screen = view.capture();
    view.keys("6");
    let help = strip(&view.wait_text("Colours:"));
    view.kill();
    let _ = client.kill();
    let _ = client.wait();
    (help, screen)
}

#[test]
fn tmux_with_the_rgb_feature_gets_24_bit_maps_without_colorterm() {
    for (session, option) in [
        (
            "convscope-rgb-features",
            ["terminal-features", ",xterm*:RGB"],
        ),
        ("convscope-rgb-tc", ["terminal-overrides", ",xterm*:Tc"]),
    ] {
        let (help, screen) = colours_in_tmux_without_colorterm(session, &[option]);
        assert!(
            truecolors(&screen).len() > 40,
            "{session}: 24-bit colours in the maps"
        );
        assert!(
            help.contains("Colours: truecolor (tmux: the client terminal has the RGB feature)"),
            "{session}: {help}"
        );
    }
}

#[test]
fn tmux_without_the_rgb_feature_gets_the_256_colour_palette() {
    let (help, screen) = colours_in_tmux_without_colorterm("convscope-no-rgb", &[]);
    assert!(truecolors(&screen).is_empty(), "no 24-bit colour at all");
    assert!(common::palette_colors(&screen).len() > 40);
    assert!(
        help.contains("Colours: 256 colours (tmux: the client terminal lacks the RGB feature"),
        "{help}"
    );
}

/// Batch events come a few times a second; paused, or after `s`, the header must say where the
/// run really is (it showed an older batch than the checkpoint just written), and the message
/// must say that a mid-epoch checkpoint is temporary (the next one replaces it).
#[test]
fn the_header_is_current_when_paused_and_a_mid_epoch_checkpoint_says_it_is_temporary() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // 400 batches of 20 ms an epoch: the pause comes mid-epoch.
    let data = common::synthetic(tmp.path(), 1000, 16);
    let run_dir = tmp.path().join("run");
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        convscope::config::DEFAULT_TOML
            .replace("batch_events_per_sec = 10", "batch_events_per_sec = 1"),
    )
    .expect("config");
    let term = Tmux::start(
        "convscope-stale-header",
        &format!(
            "CONVSCOPE_SLOW_BATCH_MS=20 {} train {} --config {} --run {} --image-size 16 --batch-size 4 --epochs 200; sleep 30",
            env!("CARGO_BIN_EXE_convscope"),
            data.display(),
            config.display(),
            run_dir.display()
        ),
    );
    term.wait_text("● running");
    wait_for("a few batch events", Duration::from_mins(1), || {
        batch_count(&run_dir) >= 3
    });
    term.keys(" ");
    term.wait_text("● paused");
    term.keys("s");
    let screen = strip(&term.wait_text("is temporary"));
    let evs = events(&run_dir);
    let Some(Event::Checkpoint(cp)) = evs.iter().rev().find(|e| matches!(e, Event::Checkpoint(_)))
    else {
        panic!("a checkpoint event")
    };
    assert!(
        screen.contains(&format!("epoch {}/200  batch {}/", cp.epoch, cp.batch)),
        "the header shows the checkpoint's batch {}: {screen}",
        cp.batch
    );
    assert!(
        screen.contains(&format!(
            "checkpoint {} written; a mid-epoch checkpoint is temporary",
            cp.name
        )),
        "{screen}"
    );
    // The batch event before the pause is the batch the run paused after.
    let paused_at = evs
        .iter()
        .take_while(
            |e| !matches!(e, Event::Status(s) if s.state == convscope::events::RunState::Paused),
        )
        .filter_map(|e| match e {
            Event::Batch(b) => Some((b.epoch, b.batch)),
            _ => None,
        })
        .last();
    assert_eq!(paused_at, Some((cp.epoch, cp.batch)));
}
