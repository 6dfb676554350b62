//! The real binary, headless, on generated image folders: learning, resume and signals.

mod common;

use std::time::Duration;

use common::{checkpoint_weights, events, max_diff, run, synthetic, wait_for};
use convscope::events::Event;

const SMALL: &[&str] = &[
    "--headless",
    "--image-size",
    "32",
    "--batch-size",
    "16",
    "--seed",
    "1",
];

fn train_args<'a>(data: &'a str, run_dir: &'a str, epochs: &'a str) -> Vec<&'a str> {
    let mut v = vec!["train", data, "--run", run_dir, "--epochs", epochs];
    v.extend_from_slice(SMALL);
    v
}

#[test]
fn headless_run_learns_and_writes_the_run_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 150, 32);
    let run_dir = tmp.path().join("run");
    let out = run(&train_args(
        data.to_str().expect("utf8"),
        run_dir.to_str().expect("utf8"),
        "10",
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no escape codes without a terminal: {stderr}"
    );
    let epochs: Vec<_> = events(&run_dir)
        .into_iter()
        .filter_map(|e| {
            if let Event::Epoch(m) = e {
                Some(m)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(epochs.len(), 10);
    assert!(
        epochs[9].train_loss < epochs[0].train_loss - 0.03,
        "loss falls: {:?}",
        epochs.iter().map(|e| e.train_loss).collect::<Vec<_>>()
    );
    let val = epochs[9].val_accuracy.expect("validation split");
    assert!(val > 0.7, "beats chance (0.5) clearly: {val}");
    for file in [
        "config.toml",
        "classes.json",
        "events.jsonl",
        "run.json",
        "convscope.log",
    ] {
        assert!(run_dir.join(file).is_file(), "{file}");
    }
    let latest = std::fs::read_to_string(run_dir.join("checkpoints/latest")).expect("latest");
    assert_eq!(latest.trim(), "epoch-0010");
    // Every epoch is kept; the optimizer state only in the newest two (train.keep_optimizer).
    for e in 1..=10 {
        let cp = run_dir.join(format!("checkpoints/epoch-{e:04}"));
        assert!(cp.join("model.bpk").is_file(), "{}", cp.display());
        assert_eq!(
            cp.join("optimizer.bpk").exists(),
            e >= 9,
            "{}",
            cp.display()
        );
    }
    // An older epoch's weights still load, as the viewer and export load them.
    let _ = checkpoint_weights(&run_dir, "epoch-0003");
    // The dataset's own validation images are the first probes; the bundled photos come last.
    let probes = events(&run_dir)
        .into_iter()
        .find_map(|e| match e {
            Event::Started(s) => Some(s.probe_images),
            _ => None,
        })
        .expect("a started event");
    assert!(probes[0].starts_with(&data), "{probes:?}");
    let names: Vec<_> = probes[probes.len() - 2..]
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["cat.jpg", "dog.jpg"]);
    let classes = std::fs::read_to_string(run_dir.join("classes.json")).expect("classes.json");
    assert!(
        classes.contains("blobs") && classes.contains("stripes"),
        "{classes}"
    );
}

#[test]
fn resume_after_epoch_equals_continuous_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 24, 32);
    let data = data.to_str().expect("utf8");
    let straight = tmp.path().join("straight");
    let split = tmp.path().join("split");
    let out = run(&train_args(data, straight.to_str().expect("utf8"), "2"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&train_args(data, split.to_str().expect("utf8"), "1"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "resume",
        split.to_str().expect("utf8"),
        "--headless",
        "--epochs",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = max_diff(
        &checkpoint_weights(&straight, "epoch-0002"),
        &checkpoint_weights(&split, "epoch-0002"),
    );
    assert!(d <= 1e-6, "weights differ by {d}");
}

#[test]
fn resume_from_a_checkpoint_without_optimizer_state_says_so_and_goes_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 16, 32);
    let run_dir = tmp.path().join("run");
    let run_str = run_dir.to_str().expect("utf8");
    let out = run(&train_args(data.to_str().expect("utf8"), run_str, "3"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cps = run_dir.join("checkpoints");
    assert!(!cps.join("epoch-0001/optimizer.bpk").exists());
    // The two newest checkpoints are lost: only the weights-only one is left.
    std::fs::remove_dir_all(cps.join("epoch-0003")).expect("rm");
    std::fs::remove_dir_all(cps.join("epoch-0002")).expect("rm");
    let out = run(&["resume", run_str, "--headless", "--epochs", "2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("checkpoint epoch-0001 keeps only the weights")
            && err.contains("the optimizer starts afresh"),
        "{err}"
    );
    let starts: Vec<usize> = events(&run_dir)
        .into_iter()
        .filter_map(|e| match e {
            Event::Started(s) => Some(s.start_epoch),
            _ => None,
        })
        .collect();
    assert_eq!(starts, [1, 2]);
    let _ = checkpoint_weights(&run_dir, "epoch-0002");
}

#[test]
fn sigint_mid_epoch_checkpoints_and_resume_continues_exactly() {
    use nix_free_kill as kill;
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 48, 32);
    let data = data.to_str().expect("utf8");
    let straight = tmp.path().join("straight");
    let out = run(&train_args(data, straight.to_str().expect("utf8"), "2"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let interrupted = tmp.path().join("interrupted");
    let child = common::bin()
        .args(train_args(data, interrupted.to_str().expect("utf8"), "2"))
        .env("CONVSCOPE_SLOW_BATCH_MS", "40")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_for("the first batch event", Duration::from_mins(2), || {
        interrupted.join("events.jsonl").exists()
            && events(&interrupted)
                .iter()
                .any(|e| matches!(e, Event::Batch(b) if b.epoch == 1))
    });
    kill::sigint(child.id());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("convscope resume"),
        "says how to resume: {stderr}"
    );
    let latest = std::fs::read_to_string(interrupted.join("checkpoints/latest")).expect("latest");
    let latest = latest.trim().to_string();
    // The checkpoint loads.
    let _ = checkpoint_weights(&interrupted, &latest);
    assert!(
        events(&interrupted)
            .iter()
            .any(|e| matches!(e, Event::Finished(_))),
        "a clean end event"
    );
    let out = run(&["resume", interrupted.to_str().expect("utf8"), "--headless"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = max_diff(
        &checkpoint_weights(&straight, "epoch-0002"),
        &checkpoint_weights(&interrupted, "epoch-0002"),
    );
    assert!(d <= 1e-6, "stopped at {latest}; weights differ by {d}");
}

/// SIGINT without a libc dependency: the `kill` command.
mod nix_free_kill {
    pub fn sigint(pid: u32) {
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}

#[test]
fn summary_prints_keras_total() {
    let out = run(&["summary"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("Total params: 10,641,441"), "{text}");
    assert!(text.contains("(None, 150, 150, 16)"), "{text}");
}

#[test]
fn bad_config_refuses_to_start_and_names_the_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(&cfg, "[train]\nepochs = 0\n").expect("write");
    let data = synthetic(tmp.path(), 2, 16);
    let out = run(&[
        "train",
        data.to_str().expect("utf8"),
        "--config",
        cfg.to_str().expect("utf8"),
        "--headless",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("train.epochs"), "{stderr}");
    std::fs::write(&cfg, "[train]\nepoch = 3\n").expect("write");
    let out = run(&["summary", "--config", cfg.to_str().expect("utf8")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("epoch") && stderr.contains("bad.toml"),
        "{stderr}"
    );
}

/// A device this build or machine cannot use is refused before the run directory is made, so
/// that the same command with `--device cpu` can follow at once (the leftover folder made it
/// refuse: "already a training run").
#[cfg(not(feature = "wgpu"))]
#[test]
fn an_unavailable_device_refuses_to_start_and_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 8, 16);
    let run_dir = tmp.path().join("run");
    let (data, run_str) = (
        data.to_str().expect("utf8"),
        run_dir.to_str().expect("utf8"),
    );
    for extra in [&[][..], &["--detach"][..]] {
        let mut args = vec!["train", data, "--run", run_str, "--device", "wgpu"];
        args.extend_from_slice(extra);
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("built without GPU support for --device wgpu"),
            "{err}"
        );
        assert!(!run_dir.exists(), "nothing made: {extra:?}");
    }
    let out = run(&[
        "train",
        data,
        "--run",
        run_str,
        "--epochs",
        "1",
        "--headless",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn missing_data_folder_is_named() {
    let out = run(&["train", "/nonexistent/images", "--headless"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/images"));
}

#[test]
fn kill_9_at_any_moment_leaves_a_resumable_run() {
    // Checkpoints every few tens of milliseconds; kills land at varied moments, some of them
    // while a checkpoint is being written. Whatever the moment, `latest` must load and resume.
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 8, 16);
    let data = data.to_str().expect("utf8");
    let run_dir = tmp.path().join("killed");
    let run_str = run_dir.to_str().expect("utf8");
    let small = ["--headless", "--image-size", "16", "--batch-size", "4"];
    for round in 0..4u64 {
        let mut cmd = common::bin();
        if round == 0 {
            cmd.args(["train", data, "--run", run_str, "--epochs", "100000"])
                .args(small);
        } else {
            cmd.args(["resume", run_str, "--headless"]);
        }
        let mut child = cmd
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let seen = if run_dir.join("events.jsonl").exists() {
            events(&run_dir).len()
        } else {
            0
        };
        wait_for("a few checkpoints", Duration::from_mins(2), || {
            run_dir.join("events.jsonl").exists()
                && events(&run_dir)[seen..]
                    .iter()
                    .filter(|e| matches!(e, Event::Checkpoint(_)))
                    .count()
                    >= 3
        });
        // Vary the moment of the kill (not a synchronisation: any moment must be safe).
        std::thread::sleep(Duration::from_millis(3 + 11 * round));
        child.kill().expect("kill -9");
        let _ = child.wait();
        let (cp, _) = convscope::run::checkpoint::latest(&run_dir.join("checkpoints"))
            .expect("a complete checkpoint");
        let _ = checkpoint_weights(&run_dir, &cp.name);
    }
}
