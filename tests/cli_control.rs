//! A live headless run controlled through its control socket; predictions from a finished run.

mod common;

use std::time::Duration;

use common::{events, run, synthetic, wait_for};
use convscope::events::{Command, Event, RunState, StopCause};
use convscope::run::control;

#[test]
fn socket_pause_checkpoint_and_stop() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 40, 16);
    let run_dir = tmp.path().join("run");
    let child = common::live_trainer(&data, &run_dir, std::process::Stdio::piped());
    let sock = run_dir.join("control.sock");
    wait_for("a batch event", Duration::from_mins(2), || {
        run_dir.join("events.jsonl").exists()
            && events(&run_dir)
                .iter()
                .any(|e| matches!(e, Event::Batch(_)))
    });
    let mode = {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(&sock)
            .expect("socket exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600, "owner-only socket");

    control::send(&sock, &Command::Pause).expect("pause");
    let paused_at = |evs: &[Event]| {
        evs.iter()
            .position(|e| matches!(e, Event::Status(s) if s.state == RunState::Paused))
    };
    wait_for("the paused status", Duration::from_secs(30), || {
        paused_at(&events(&run_dir)).is_some()
    });
    control::send(&sock, &Command::CheckpointNow).expect("checkpoint now");
    wait_for("the checkpoint", Duration::from_secs(30), || {
        let evs = events(&run_dir);
        let p = paused_at(&evs).expect("paused");
        evs[p..].iter().any(|e| matches!(e, Event::Checkpoint(_)))
    });
    // While paused no batch was trained: nothing but the checkpoint after the pause.
    let evs = events(&run_dir);
    let p = paused_at(&evs).expect("paused");
    assert!(
        !evs[p..].iter().any(|e| matches!(e, Event::Batch(_))),
        "batches while paused: {:?}",
        &evs[p..]
    );
    control::send(&sock, &Command::Resume).expect("resume");
    control::send(&sock, &Command::Stop).expect("stop");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "a requested stop is a clean exit: {stderr}"
    );
    assert!(stderr.contains("convscope resume"), "{stderr}");
    assert!(!sock.exists(), "socket removed when the run ends");
    let latest = std::fs::read_to_string(run_dir.join("checkpoints/latest")).expect("latest");
    assert!(latest.starts_with("epoch-"), "{latest}");
    assert!(
        control::send(&sock, &Command::Pause).is_err(),
        "nobody listens any more"
    );
}

#[test]
fn predict_prints_classes_and_probabilities() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 12, 16);
    let run_dir = tmp.path().join("run");
    let out = run(&[
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = data.join("stripes").join("stripes_0000.png");
    let out = run(&[
        "predict",
        run_dir.to_str().expect("utf8"),
        img.to_str().expect("utf8"),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let p = &v[0];
    let class = p["class"].as_str().expect("class");
    assert!(class == "stripes" || class == "blobs", "{v}");
    let probs: Vec<f64> = p["probabilities"]
        .as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect();
    assert_eq!(probs.len(), 2);
    assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-5);
    let prob = p["probability"].as_f64().expect("probability");
    assert!((0.5..=1.0).contains(&prob));
    // Table form, and an unreadable image is reported with its name and a non-zero exit.
    let out = run(&[
        "predict",
        run_dir.to_str().expect("utf8"),
        img.to_str().expect("utf8"),
        "/nonexistent.png",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("stripes_0000.png") && text.contains("probability"),
        "{text}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "convscope: image /nonexistent.png: cannot read the file: No such file or directory"
        ),
        "the path named once: {err}"
    );
    // The columns line up under their headers.
    let lines: Vec<&str> = text.lines().collect();
    let (header, row) = (lines[0], lines[1]);
    let column = |s: &str, word: &str| s.find(word).expect(word);
    assert_eq!(column(header, "class"), column(row, class), "{text}");
    // Nothing readable: no table with no rows, only the error.
    let out = run(&[
        "predict",
        run_dir.to_str().expect("utf8"),
        "/nonexistent.png",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn epoch_metrics(run_dir: &std::path::Path) -> Vec<convscope::events::EpochMetrics> {
    events(run_dir)
        .into_iter()
        .filter_map(|e| match e {
            Event::Epoch(m) => Some(m),
            _ => None,
        })
        .collect()
}

#[test]
fn paused_time_is_not_training_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 40, 16);
    let run_dir = tmp.path().join("run");
    let mut child = common::live_trainer(&data, &run_dir, std::process::Stdio::null());
    let sock = run_dir.join("control.sock");
    // Two epochs first: their length sets how long a pause must be to stand out.
    wait_for("two epochs", Duration::from_mins(2), || {
        run_dir.join("events.jsonl").exists() && epoch_metrics(&run_dir).len() >= 2
    });
    let epoch_secs = epoch_metrics(&run_dir)
        .iter()
        .map(|e| e.seconds)
        .fold(0.0, f64::max);
    let is_paused = |e: &Event| matches!(e, Event::Status(s) if s.state == RunState::Paused);
    // A pause between two epochs is not inside any epoch's time: pause again until one lands
    // inside an epoch.
    for attempt in 1.. {
        assert!(attempt <= 5, "no pause landed inside an epoch");
        // Sent once the last thing logged is a batch in the middle of an epoch.
        wait_for(
            "the middle of an epoch",
            Duration::from_secs(30),
            || matches!(events(&run_dir).last(), Some(Event::Batch(b)) if b.batch < b.batches),
        );
        let before = events(&run_dir).len();
        control::send(&sock, &Command::Pause).expect("pause");
        wait_for("the paused status", Duration::from_secs(30), || {
            events(&run_dir)[before..].iter().any(is_paused)
        });
        let paused_seen = std::time::Instant::now();
        // The pause itself (not a synchronisation): ten epochs' time, at least 2 s.
        std::thread::sleep(Duration::from_secs_f64((10.0 * epoch_secs).max(2.0)));
        // The trainer was paused at least this long: from before its event was read to now.
        let paused_for = paused_seen.elapsed().as_secs_f64();
        control::send(&sock, &Command::Resume).expect("resume");
        let after_pause =
            |evs: &[Event]| before + evs[before..].iter().position(is_paused).expect("paused");
        wait_for(
            "the epoch the pause fell in to end",
            Duration::from_mins(1),
            || {
                let evs = events(&run_dir);
                evs[after_pause(&evs)..]
                    .iter()
                    .any(|e| matches!(e, Event::Epoch(_)))
            },
        );
        let evs = events(&run_dir);
        let p = after_pause(&evs);
        let batch_before = evs[..p].iter().rev().find_map(|e| match e {
            Event::Batch(b) => Some(*b),
            _ => None,
        });
        let batch_after = evs[p..].iter().find_map(|e| match e {
            Event::Batch(b) => Some(*b),
            _ => None,
        });
        let (Some(b0), Some(b1)) = (batch_before, batch_after) else {
            panic!(
                "batches around the pause: {:?}",
                &evs[p.saturating_sub(5)..]
            );
        };
        // Training seconds (what the ETA is worked out from) leave the pause out.
        assert!(
            b1.elapsed - b0.elapsed < paused_for,
            "training seconds went on while paused: {} -> {} across a pause of {paused_for:.2} s",
            b0.elapsed,
            b1.elapsed
        );
        let epoch = evs[p..]
            .iter()
            .find_map(|e| match e {
                Event::Epoch(m) => Some(*m),
                _ => None,
            })
            .expect("the epoch");
        let inside = evs[..p]
            .iter()
            .any(|e| matches!(e, Event::Batch(b) if b.epoch == epoch.epoch));
        if inside {
            // The epoch's time and rate (events.jsonl, the epoch table, metrics.csv) too.
            assert!(
                epoch.seconds < paused_for,
                "epoch {} recorded {:.2} s across a pause of {paused_for:.2} s",
                epoch.epoch,
                epoch.seconds
            );
            break;
        }
    }
    control::send(&sock, &Command::Stop).expect("stop");
    assert!(child.wait().expect("exits").success());
}

/// The last `finished` event's stop cause.
fn last_cause(run_dir: &std::path::Path) -> Option<StopCause> {
    events(run_dir).into_iter().rev().find_map(|e| match e {
        Event::Finished(f) => Some(f.cause),
        _ => None,
    })?
}

#[test]
fn a_stopped_run_records_why_and_view_shows_it_with_the_resume_command() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 40, 16);
    let run_dir = tmp.path().join("run");
    let log = run_dir.join("convscope.log");
    // A stop from a viewer (through the control socket).
    let mut child = common::live_trainer(&data, &run_dir, std::process::Stdio::null());
    let sock = run_dir.join("control.sock");
    wait_for("a batch", Duration::from_mins(2), || {
        run_dir.join("events.jsonl").exists()
            && events(&run_dir)
                .iter()
                .any(|e| matches!(e, Event::Batch(_)))
    });
    control::send(&sock, &Command::Stop).expect("stop");
    assert!(child.wait().expect("exits").success());
    assert_eq!(last_cause(&run_dir), Some(StopCause::Viewer));
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("stopped by a viewer"), "{text}");
    // Resumed, then SIGTERM.
    let child = common::bin()
        .args(["resume", run_dir.to_str().expect("utf8"), "--headless"])
        .env("CONVSCOPE_SLOW_BATCH_MS", "20")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("resume starts");
    wait_for(
        "a batch of the resumed session",
        Duration::from_mins(2),
        || {
            let evs = events(&run_dir);
            let second = evs
                .iter()
                .enumerate()
                .filter(|(_, e)| matches!(e, Event::Started(_)))
                .nth(1)
                .map(|(i, _)| i);
            second.is_some_and(|i| evs[i..].iter().any(|e| matches!(e, Event::Batch(_))))
        },
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("exits");
    assert_eq!(out.status.code(), Some(143));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
    assert_eq!(last_cause(&run_dir), Some(StopCause::Terminate));
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("stopped by SIGTERM"), "{text}");
    // `view` says it beside the state, with the command that goes on.
    let view = common::Tmux::view("convscope-stop-cause", &run_dir);
    view.wait_text(&format!(
        "● stopped by SIGTERM: resume with `convscope resume {}`",
        run_dir.display()
    ));
}
