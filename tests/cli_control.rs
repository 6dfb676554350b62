//! A live headless run controlled through its control socket; predictions from a finished run.

mod common;

use std::time::Duration;

use common::{events, run, synthetic, wait_for};
use convscope::events::{Command, Event, RunState};
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
