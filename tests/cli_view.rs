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
    let view = Tmux::view("convscope-view-live", &run_dir);
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
    let view = Tmux::view("convscope-dies", &run_dir);
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

/// Every event the viewer worker has sent so far; fails the test on a `failed` event (the
/// viewer must never call a run failed that the trainer did not).
fn drain_viewer(rx: &mut convscope::events::EventReceiver, seen: &mut Vec<Event>) {
    while let Some(e) = rx.try_recv() {
        assert!(
            !matches!(e, Event::Failed(_)),
            "the viewer called the run failed: {e:?}"
        );
        seen.push(e);
    }
}

#[test]
fn viewer_worker_waits_for_files_the_trainer_writes_late() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = common::demo_run(tmp.path(), 1, 16, 8);
    // The run as it looks a moment after `train --detach` started: config.toml, the samples
    // and a live control socket, but no classes.json, events.jsonl or checkpoint yet (the
    // trainer writes them after scanning the data).
    let later = tmp.path().join("later");
    std::fs::create_dir(&later).expect("mkdir");
    let files = ["checkpoints", "classes.json", "events.jsonl"];
    for name in files {
        std::fs::rename(run_dir.join(name), later.join(name)).expect("move away");
    }
    let (control_tx, _control_rx) = std::sync::mpsc::channel();
    let _control = control::serve(&run_dir.join("control.sock"), control_tx).expect("socket");
    let (events_tx, mut rx) = convscope::events::channel(1024);
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
    let run = convscope::run::RunDir::open(&run_dir).expect("run");
    let worker = convscope::infer::viewer::spawn(run, events_tx, cmd_rx).expect("viewer");
    // Asked for feature maps, it says the run is still reading its data: it is waiting.
    let sample = run_dir.join("samples").join("cat.jpg");
    cmd_tx
        .send(Command::Probe { image: sample })
        .expect("viewer alive");
    let mut seen = Vec::new();
    wait_for("the viewer's answer", Duration::from_mins(1), || {
        drain_viewer(&mut rx, &mut seen);
        seen.iter()
            .any(|e| matches!(e, Event::Warning(w) if w.message.contains("still reading its data")))
    });
    // The trainer writes them (the checkpoint before the event that names it).
    for name in files {
        std::fs::rename(later.join(name), run_dir.join(name)).expect("move back");
    }
    // The run's events follow, and the pictures of its checkpoint.
    wait_for(
        "the run's events and pictures",
        Duration::from_mins(1),
        || {
            drain_viewer(&mut rx, &mut seen);
            seen.iter().any(|e| matches!(e, Event::Epoch(_)))
                && seen.iter().any(|e| matches!(e, Event::Filters(_)))
                && seen.iter().any(|e| matches!(e, Event::FeatureMaps(_)))
        },
    );
    drop(cmd_tx);
    worker.join().expect("the viewer thread ends");
}

#[test]
fn detached_run_that_takes_a_while_to_read_its_data_is_never_shown_failed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Decoding 2,400 images takes the trainer a moment before it writes classes.json.
    let data = synthetic(tmp.path(), 1200, 48);
    let run_dir = tmp.path().join("run");
    let term = Tmux::start(
        "convscope-detach-slow",
        &format!(
            "CONVSCOPE_SLOW_BATCH_MS=20 {} train {} --run {} --detach --image-size 16 --batch-size 4 --epochs 200; sleep 30",
            env!("CARGO_BIN_EXE_convscope"),
            data.display(),
            run_dir.display()
        ),
    );
    wait_for(
        "the viewer to show the run running",
        Duration::from_mins(2),
        || {
            let screen = common::strip(&term.capture());
            assert!(
                !screen.contains("failed") && !screen.contains("classes.json"),
                "a healthy run shown as failed:\n{screen}"
            );
            screen.contains("● running")
        },
    );
    control::send(&run_dir.join("control.sock"), &Command::Stop).expect("stop");
    wait_for("the stop", Duration::from_mins(1), || {
        events(&run_dir)
            .iter()
            .any(|e| matches!(e, Event::Finished(_)))
    });
}

/// `train DATA` on a folder of splits (train/, val/) warns and says how to use them; `view` on
/// a folder of runs lists them and says how to open one.
#[test]
fn split_folders_are_warned_about_and_a_folder_of_runs_is_listed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let synth = synthetic(tmp.path(), 6, 16);
    let data = tmp.path().join("dataset");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::rename(synth.join("blobs"), data.join("train")).expect("mv");
    std::fs::rename(synth.join("stripes"), data.join("val")).expect("mv");
    let runs = tmp.path().join("runs");
    let trained = runs.join("a");
    let out = common::run(&[
        "train",
        data.to_str().expect("utf8"),
        "--run",
        trained.to_str().expect("utf8"),
        "--headless",
        "--image-size",
        "16",
        "--epochs",
        "1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "warning: the class folders of {} include train, val",
            data.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "convscope train {} --val {}",
            data.join("train").display(),
            data.join("val").display()
        )),
        "{err}"
    );
    // A second run that never started: a config and nothing else.
    let fresh = runs.join("b");
    std::fs::create_dir(&fresh).expect("mkdir");
    std::fs::copy(trained.join("config.toml"), fresh.join("config.toml")).expect("cp");
    let out = common::run(&["view", runs.to_str().expect("utf8")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("holds 2 runs"), "{text}");
    let line = |run: &std::path::Path| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&run.display().to_string()))
            .unwrap_or_else(|| panic!("{} listed:\n{text}", run.display()))
            .to_string()
    };
    assert!(line(&trained).contains("1/1 epochs  finished"), "{text}");
    assert!(line(&fresh).contains("0/1 epochs  not started"), "{text}");
    assert!(text.contains("Open one with: convscope view"), "{text}");
    // A folder with no run inside is refused as before.
    let out = common::run(&["view", data.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a convscope run directory"));
}

/// The user's `~/.config/convscope/config.toml` (under `$XDG_CONFIG_HOME`) sets ui preferences;
/// `view` takes `CONVSCOPE_CONFIG` over it and `--colormap` over both.
#[test]
fn user_config_file_sets_ui_preferences_under_config_files_and_flags() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let xdg = tmp.path().join("xdg");
    std::fs::create_dir_all(xdg.join("convscope")).expect("mkdir");
    let user_file = xdg.join("convscope/config.toml");
    std::fs::write(&user_file, "[ui]\ncolormap = \"magma\"\n").expect("write");
    let explicit = tmp.path().join("diverging.toml");
    std::fs::write(&explicit, "[ui]\ncolormap = \"diverging\"\n").expect("write");
    // A training records the user's preference in its run.
    let data = synthetic(tmp.path(), 6, 16);
    let run_dir = tmp.path().join("run");
    let out = common::bin()
        .arg("train")
        .arg(&data)
        .arg("--run")
        .arg(&run_dir)
        .args(["--headless", "--image-size", "16", "--epochs", "1"])
        .env("XDG_CONFIG_HOME", &xdg)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = convscope::run::RunDir::open(&run_dir)
        .expect("run")
        .read_config()
        .expect("config");
    assert_eq!(cfg.ui.colormap, convscope::config::ColormapName::Magma);
    // The run's own file says nothing but defaults: the user's file decides in `view`.
    std::fs::write(
        run_dir.join("config.toml"),
        convscope::config::Config {
            ui: convscope::config::UiConfig::default(),
            ..cfg
        }
        .to_toml(),
    )
    .expect("write");
    let exe = env!("CARGO_BIN_EXE_convscope");
    for (session, env, flag, shown) in [
        ("convscope-user-cfg", String::new(), "", "magma"),
        (
            "convscope-user-cfg-env",
            format!("CONVSCOPE_CONFIG={}", explicit.display()),
            "",
            "diverging",
        ),
        (
            "convscope-user-cfg-flag",
            format!("CONVSCOPE_CONFIG={}", explicit.display()),
            "--colormap gray",
            "gray",
        ),
    ] {
        let view = Tmux::start(
            session,
            &format!(
                "XDG_CONFIG_HOME={} {env} {exe} view {} {flag}; sleep 30",
                xdg.display(),
                run_dir.display()
            ),
        );
        view.wait_text("● finished");
        view.keys("3");
        view.wait_text(&format!("│ {shown} │"));
    }
    // Only [ui] belongs in the user's file: anything else is refused, naming the file.
    std::fs::write(&user_file, "[train]\nepochs = 3\n").expect("write");
    let out = common::bin()
        .arg("view")
        .arg(&run_dir)
        .env("XDG_CONFIG_HOME", &xdg)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&user_file.display().to_string()), "{err}");
    assert!(err.contains("only [ui] preferences"), "{err}");
}
