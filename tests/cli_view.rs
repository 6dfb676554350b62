//! Viewers: following a live headless run, and a detached run outliving its terminal.

mod common;

use std::time::Duration;

use common::{Tmux, events, synthetic, wait_for};
use convscope::events::{Command, Event};
use convscope::run::control;

fn batch_count(run: &std::path::Path) -> usize {
    events(run)
        .iter()
        .filter(|e| matches!(e, Event::Batch(_)))
        .count()
}

#[test]
fn viewer_follows_a_live_headless_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 40, 16);
    let run_dir = tmp.path().join("run");
    let mut trainer = common::live_trainer(&data, &run_dir, std::process::Stdio::null());
    let sock = run_dir.join("control.sock");
    wait_for("the live run", Duration::from_mins(2), || {
        control::is_live(&sock) && run_dir.join("events.jsonl").exists()
    });
    let view = Tmux::start(
        "convscope-view-live",
        &format!(
            "{} view {}; sleep 30",
            env!("CARGO_BIN_EXE_convscope"),
            run_dir.display()
        ),
    );
    view.wait_text("● running");
    // The viewer probes what the trainer probes first: one of the dataset's own images.
    let first_probe = events(&run_dir)
        .into_iter()
        .find_map(|e| match e {
            Event::Started(s) => s.probe_images.first().cloned(),
            _ => None,
        })
        .expect("a probe");
    assert!(first_probe.starts_with(&data), "{}", first_probe.display());
    // Titled with its class folder, as the dataset's images are.
    let name = first_probe
        .strip_prefix(&data)
        .expect("in the dataset")
        .display()
        .to_string();
    view.keys("4");
    view.wait_text(&format!("┌ {name} "));
    view.keys("1");
    // Epochs finishing in the trainer show up in the viewer's epoch table.
    let before = events(&run_dir)
        .iter()
        .filter(|e| matches!(e, Event::Epoch(_)))
        .count();
    wait_for("two more epochs", Duration::from_mins(2), || {
        events(&run_dir)
            .iter()
            .filter(|e| matches!(e, Event::Epoch(_)))
            .count()
            >= before + 2
    });
    let shown = (before + 2).to_string();
    wait_for(
        "the epoch row in the viewer",
        Duration::from_secs(30),
        || {
            common::strip(&view.capture())
                .lines()
                .any(|l| l.trim_start_matches(['│', ' ']).starts_with(&shown))
        },
    );
    // Space in the viewer pauses the trainer through its socket.
    view.keys("Space");
    view.wait_text("● paused");
    let paused = batch_count(&run_dir);
    // A checkpoint asked for while paused proves the trainer is reading commands, not training.
    control::send(&sock, &Command::CheckpointNow).expect("checkpoint");
    wait_for("the checkpoint", Duration::from_secs(30), || {
        events(&run_dir)
            .iter()
            .rev()
            .take(3)
            .any(|e| matches!(e, Event::Checkpoint(_)))
    });
    assert_eq!(batch_count(&run_dir), paused, "no batch while paused");
    // Quitting the viewer while the run goes on: d leaves it running.
    view.keys("q");
    view.wait_text("d: quit, leave it running");
    view.keys("d");
    wait_for("the viewer to leave", Duration::from_secs(30), || {
        !common::strip(&view.capture()).contains("● paused")
    });
    assert!(control::is_live(&sock), "the run outlives its viewer");
    control::send(&sock, &Command::Stop).expect("stop");
    let status = trainer.wait().expect("trainer exits");
    assert!(status.success());
}

#[test]
fn detached_run_survives_its_terminal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 40, 16);
    let run_dir = tmp.path().join("run");
    let term = Tmux::start(
        "convscope-detach",
        &format!(
            "CONVSCOPE_SLOW_BATCH_MS=20 {} train {} --run {} --detach --image-size 16 --batch-size 4 --epochs 200; sleep 30",
            env!("CARGO_BIN_EXE_convscope"),
            data.display(),
            run_dir.display()
        ),
    );
    term.wait_text("● running");
    let sock = run_dir.join("control.sock");
    assert!(control::is_live(&sock));
    // The SSH connection drops: the terminal and the viewer in it are gone.
    term.kill();
    let after_kill = batch_count(&run_dir);
    wait_for("training to go on", Duration::from_mins(1), || {
        batch_count(&run_dir) > after_kill + 5
    });
    assert!(control::is_live(&sock));
    control::send(&sock, &Command::Stop).expect("stop");
    wait_for("the stop", Duration::from_mins(1), || {
        events(&run_dir)
            .iter()
            .any(|e| matches!(e, Event::Finished(_)))
    });
    let latest = std::fs::read_to_string(run_dir.join("checkpoints/latest")).expect("latest");
    let _ = common::checkpoint_weights(&run_dir, latest.trim());
    // The background process ends with the resume hint in its output file.
    wait_for(
        "the background process's last words",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(run_dir.join("convscope.out"))
                .is_ok_and(|o| o.contains("convscope resume"))
        },
    );
}

#[test]
fn viewer_leaves_when_its_terminal_hangs_up() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 12, 16);
    let run_dir = tmp.path().join("hup-run");
    let out = common::run(&[
        "train",
        data.to_str().expect("utf8"),
        "--run",
        run_dir.to_str().expect("utf8"),
        "--headless",
        "--image-size",
        "16",
        "--epochs",
        "1",
    ]);
    assert!(out.status.success());
    let pattern = format!("view {}", run_dir.display());
    let view = Tmux::start(
        "convscope-hup",
        &format!(
            "{} view {}",
            env!("CARGO_BIN_EXE_convscope"),
            run_dir.display()
        ),
    );
    view.wait_text("● finished");
    let alive = || {
        std::process::Command::new("pgrep")
            .args(["-f", &pattern])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty())
    };
    assert!(alive());
    view.kill();
    wait_for(
        "the viewer to exit after the hangup",
        Duration::from_secs(20),
        || !alive(),
    );
}

#[test]
fn viewer_of_a_run_that_dies_says_interrupted_and_survives_resizing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 40, 16);
    let run_dir = tmp.path().join("dies");
    let mut trainer = common::live_trainer(&data, &run_dir, std::process::Stdio::null());
    let sock = run_dir.join("control.sock");
    wait_for("the live run", Duration::from_mins(2), || {
        control::is_live(&sock) && run_dir.join("checkpoints/latest").exists()
    });
    let view = Tmux::start(
        "convscope-dies",
        &format!(
            "{} view {}; sleep 30",
            env!("CARGO_BIN_EXE_convscope"),
            run_dir.display()
        ),
    );
    view.wait_text("● running");
    // The trainer dies without a word (kill -9): the viewer says so and how to go on.
    trainer.kill().expect("kill -9");
    let _ = trainer.wait();
    view.wait_text("interrupted");
    view.wait_text(&format!("convscope resume {}`", run_dir.display()));
    // Rapid resizes down to 20x5 and back: a notice instead of garbage, then the screen again.
    for (w, h) in [(120, 40), (60, 20), (20, 5), (200, 60), (20, 5)] {
        view.resize(w, h);
    }
    view.wait_text("small");
    view.resize(200, 60);
    view.wait_text("● interrupted");
    view.keys("q");
}
