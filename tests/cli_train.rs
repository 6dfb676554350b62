//! The real binary, headless, on generated image folders: learning, resume and signals.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{checkpoint_weights, events, max_diff, run, synthetic, wait_for};
use convscope::events::Event;

/// A small headless training (32 px, batch 16) of `data` into `run` for `epochs` epochs.
fn small(data: impl AsRef<Path>, run: impl AsRef<Path>, epochs: u64) -> common::Train {
    common::train(data.as_ref(), run.as_ref())
        .size(32)
        .batch(16)
        .epochs(epochs)
}

#[test]
fn headless_run_learns_and_writes_the_run_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 150, 32);
    let run_dir = tmp.path().join("run");
    let out = small(&data, &run_dir, 10).output();
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
    let out = small(data, straight.to_str().expect("utf8"), 2).output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = small(data, split.to_str().expect("utf8"), 1).output();
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
    let out = small(data.to_str().expect("utf8"), run_str, 3).output();
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
    let out = small(data, straight.to_str().expect("utf8"), 2).output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let interrupted = tmp.path().join("interrupted");
    let child = small(data, &interrupted, 2)
        .command()
        .env("CONVSCOPE_SLOW_BATCH_MS", "40")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
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
            .stdout(std::process::Stdio::null())
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

/// `resume` continues a run as a moved run needs it: on another device, detached, with another
/// batch size from the next epoch on.
#[test]
fn resume_takes_detach_device_and_batch_size() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 16, 32);
    let run_dir = tmp.path().join("run");
    let run_str = run_dir.to_str().expect("utf8");
    let out = small(data.to_str().expect("utf8"), run_str, 1).output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A device this build lacks is refused before anything runs.
    #[cfg(not(feature = "wgpu"))]
    {
        let out = run(&[
            "resume",
            run_str,
            "--headless",
            "--device",
            "wgpu",
            "--epochs",
            "2",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("built without GPU support for --device wgpu"),
            "{err}"
        );
    }
    let out = run(&[
        "resume",
        run_str,
        "--detach",
        "--device",
        "cpu",
        "--epochs",
        "2",
        "--batch-size",
        "8",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("training in the background"), "{err}");
    // The background process finishes the run on its own, its output in convscope.out.
    let out_file = run_dir.join("convscope.out");
    wait_for(
        "the background resume to finish",
        Duration::from_mins(2),
        || std::fs::read_to_string(&out_file).is_ok_and(|o| o.contains("convscope: finished")),
    );
    let output = std::fs::read_to_string(&out_file).expect("convscope.out");
    assert!(output.contains("resuming at epoch 2, batch 1"), "{output}");
    let starts: Vec<(usize, usize, String)> = events(&run_dir)
        .into_iter()
        .filter_map(|e| match e {
            Event::Started(s) => Some((s.start_epoch, s.batch_size, s.device)),
            _ => None,
        })
        .collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert_eq!((starts[0].0, starts[0].1), (1, 16));
    assert_eq!((starts[1].0, starts[1].1), (2, 8));
    let _ = checkpoint_weights(&run_dir, "epoch-0002");
}

/// `--headless | tee log` captures the progress, as a Keras or PyTorch script's would; warnings
/// and errors stay on stderr.
#[test]
fn headless_progress_goes_through_a_pipe_and_problems_to_stderr() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 8, 16);
    // One broken image: a warning, which is not progress.
    std::fs::write(data.join("blobs").join("broken.png"), b"").expect("write");
    let run_dir = tmp.path().join("run");
    let log = tmp.path().join("log");
    let err = tmp.path().join("err");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' train '{}' --run '{}' --headless --image-size 16 --epochs 2 2>'{}' | tee '{}' >/dev/null",
            env!("CARGO_BIN_EXE_convscope"),
            data.display(),
            run_dir.display(),
            err.display(),
            log.display()
        ))
        .env("TERM", "xterm-256color")
        .status()
        .expect("sh runs");
    assert!(status.success());
    let progress = std::fs::read_to_string(&log).expect("log");
    let problems = std::fs::read_to_string(&err).expect("err");
    for want in [
        "convscope: training 2 classes",
        "epoch 1/2 loss",
        "epoch 2/2 loss",
        "checkpoint epoch-0002",
        "convscope: finished; run directory",
    ] {
        assert!(progress.contains(want), "{want:?} in the pipe:\n{progress}");
    }
    assert!(
        !progress.contains('\u{1b}'),
        "no escape codes: {progress:?}"
    );
    assert!(!progress.contains("broken.png"), "{progress}");
    assert!(problems.contains("broken.png"), "{problems}");
    assert!(!problems.contains("epoch 1/2"), "{problems}");
    // A refusal prints nothing on stdout.
    let out = run(&["train", "/nonexistent/images", "--headless"]);
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/images"));
}

/// Yes/no environment variables read as people write them; a bad value names its variable.
#[test]
fn boolean_environment_variables_take_yes_no_and_errors_name_the_variable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 6, 16);
    for (i, (value, augment)) in [("yes", false), ("0", true)].into_iter().enumerate() {
        let run_dir = tmp.path().join(format!("run{i}"));
        let out = common::bin()
            .arg("train")
            .arg(&data)
            .arg("--run")
            .arg(&run_dir)
            .args(["--image-size", "16", "--epochs", "1"])
            .env("CONVSCOPE_HEADLESS", "1")
            .env("CONVSCOPE_NO_AUGMENT", value)
            .env("CONVSCOPE_GRAYSCALE", "TRUE")
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{value}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cfg = convscope::run::RunDir::open(&run_dir)
            .expect("run")
            .read_config()
            .expect("config");
        assert_eq!(cfg.augment.enabled, augment, "CONVSCOPE_NO_AUGMENT={value}");
        assert_eq!(cfg.data.color_mode, convscope::config::ColorMode::Grayscale);
    }
    for (var, value) in [("CONVSCOPE_HEADLESS", "maybe"), ("CONVSCOPE_EPOCHS", "abc")] {
        let out = common::bin()
            .args(["train", "/nonexistent/images"])
            .env(var, value)
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!(
                "{value:?} comes from the environment variable {var}"
            )),
            "{err}"
        );
    }
    // The same bad value on the command line is the flag's, not a variable's.
    let out = run(&["train", "/nonexistent/images", "--epochs", "abc"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--epochs") && !err.contains("environment"),
        "{err}"
    );
}

/// `summary RUN` (or the run's config.toml) counts the run's own network: its config and its
/// number of classes.
#[test]
fn summary_of_a_run_counts_its_own_classes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 6, 16);
    // A third class: three outputs instead of the binary one logit.
    let third = data.join("zigzags");
    std::fs::create_dir(&third).expect("mkdir");
    for entry in std::fs::read_dir(data.join("blobs")).expect("ls") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, third.join(path.file_name().expect("name"))).expect("copy");
    }
    let run_dir = tmp.path().join("run");
    let out = small(&data, &run_dir, 1).output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = convscope::run::RunDir::open(&run_dir)
        .expect("run")
        .read_config()
        .expect("config");
    let total = |classes| {
        convscope::model::summary::summarize(&cfg, classes)
            .expect("summary")
            .iter()
            .map(|r| r.params)
            .sum::<usize>()
    };
    let want = format!(
        "Total params: {}",
        convscope::events::group_digits(total(3))
    );
    assert_ne!(total(3), total(2));
    let config = run_dir.join("config.toml");
    for args in [
        vec!["summary", run_dir.to_str().expect("utf8")],
        vec!["summary", "--config", config.to_str().expect("utf8")],
    ] {
        let out = run(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(&want), "{args:?}: {want} in\n{text}");
    }
}

/// The epoch metrics and the weights of a demo run (64 px, 400 images, 4 epochs; smaller runs
/// happened to come out the same before the fix too).
fn seeded_run(run_dir: &std::path::Path, threads: &str) -> (Vec<[u32; 4]>, Vec<Vec<f32>>) {
    let out = common::bin()
        .args(["demo", "--headless", "--epochs", "4", "--image-size", "64"])
        .args(["--per-class", "200", "--seed", "42", "--run"])
        .arg(run_dir)
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metrics = events(run_dir)
        .into_iter()
        .filter_map(|e| match e {
            Event::Epoch(m) => Some([
                m.train_loss.to_bits(),
                m.train_accuracy.to_bits(),
                m.val_loss.unwrap_or(f32::NAN).to_bits(),
                m.val_accuracy.unwrap_or(f32::NAN).to_bits(),
            ]),
            _ => None,
        })
        .collect();
    (metrics, checkpoint_weights(run_dir, "epoch-0004"))
}

/// Fresh CPU runs with one seed give the same numbers bit for bit, at any thread count (the
/// weight gradients of a batch were summed in the order rayon's work-stealing fell into: the
/// fourth epoch's training loss came out 0.68041867, 0.6804198 and 0.68041945).
#[test]
fn fresh_runs_with_one_seed_give_the_same_numbers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (m1, w1) = seeded_run(&tmp.path().join("a"), "2");
    let bits = |w: &[Vec<f32>]| -> Vec<u32> { w.iter().flatten().map(|v| v.to_bits()).collect() };
    for (name, threads) in [("b", "2"), ("c", "1")] {
        let (m, w) = seeded_run(&tmp.path().join(name), threads);
        assert_eq!(m, m1, "epoch metrics of run {name} ({threads} threads)");
        assert!(
            bits(&w) == bits(&w1),
            "weights of run {name} ({threads} threads) differ by up to {}",
            max_diff(&w, &w1)
        );
    }
}

/// `--version` names the commit and the device features of the build.
#[test]
fn version_names_the_commit_and_the_features() {
    let out = run(&["--version"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.starts_with(&format!("convscope {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let features = if cfg!(feature = "cuda") {
        "features: cpu, wgpu, cuda"
    } else if cfg!(feature = "wgpu") {
        "features: cpu, wgpu"
    } else {
        "features: cpu)"
    };
    assert!(text.contains(features), "{text}");
    // Built from this checkout: its commit (tests are built from the tree they run in).
    let head = std::process::Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short=12",
            "HEAD",
        ])
        .output();
    if let Ok(head) = head
        && head.status.success()
    {
        let commit = String::from_utf8_lossy(&head.stdout).trim().to_string();
        assert!(
            text.contains(&format!("(commit {commit};")),
            "{commit}: {text}"
        );
    }
}

/// Completion scripts for bash, zsh and fish, and a manual page; bash's really completes.
#[test]
fn completions_and_manual_page() {
    for (shell, marker) in [
        ("bash", "_convscope()"),
        ("zsh", "#compdef convscope"),
        ("fish", "complete -c convscope"),
    ] {
        let out = run(&["completions", shell]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shell}");
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(text.contains("resume"), "{shell}");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let script = tmp.path().join("convscope.bash");
    std::fs::write(&script, run(&["completions", "bash"]).stdout).expect("write");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}'; COMP_WORDS=(convscope res); COMP_CWORD=1; _convscope convscope res convscope; echo \"${{COMPREPLY[@]}}\"; COMP_WORDS=(convscope resume x --det); COMP_CWORD=3; _convscope convscope --det x; echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .expect("bash runs");
    let replies = String::from_utf8_lossy(&out.stdout);
    let mut lines = replies.lines();
    assert_eq!(lines.next(), Some("resume"), "{replies}");
    assert_eq!(lines.next(), Some("--detach"), "{replies}");
    let out = run(&["manpage"]);
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(man.contains(".TH convscope 1"), "{man}");
    for sub in ["resume", "view", "completions", "manpage"] {
        assert!(man.contains(sub), "{sub} in the manual page");
    }
}
