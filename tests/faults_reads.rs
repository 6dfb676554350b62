//! Readers of a run directory (predict, export, the viewer, resume) against what a live trainer
//! and a careless or hostile user do to the files they read.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{bin, synthetic, wait_for};
use convscope::events::Command;
use convscope::run::control;

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless training that goes on for a long time with `config` (a TOML text), every batch
/// slowed down by `slow_ms`.
fn trainer(tmp: &Path, data: &Path, run: &Path, config: &str, slow_ms: u32) -> Killed {
    let cfg = tmp.join("extra.toml");
    std::fs::write(&cfg, config).expect("config");
    let child = bin()
        .arg("train")
        .arg(data)
        .arg("--run")
        .arg(run)
        .arg("--config")
        .arg(&cfg)
        .args([
            "--headless",
            "--image-size",
            "16",
            "--batch-size",
            "4",
            "--epochs",
            "100000",
        ])
        .env("CONVSCOPE_SLOW_BATCH_MS", slow_ms.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("convscope starts");
    Killed(child)
}

/// Stop a live trainer through its socket and wait for it to end.
fn stop(run: &Path, mut child: Killed) -> std::process::ExitStatus {
    control::send(&run.join("control.sock"), &Command::Stop).expect("stop");
    child.0.wait().expect("wait")
}

#[test]
fn loads_and_predict_never_fail_while_the_trainer_prunes_every_epoch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 4, 16);
    let run = tmp.path().join("run");
    let child = trainer(
        tmp.path(),
        &data,
        &run,
        "[train]\nkeep_checkpoints = 1\n",
        5,
    );
    wait_for("the first checkpoint", Duration::from_mins(2), || {
        run.join("checkpoints/latest").exists()
    });
    let run_dir = convscope::run::RunDir::open(&run).expect("run dir");
    let first = convscope::train::restore::load(&run_dir, None)
        .expect("loads")
        .checkpoint
        .state
        .epoch;
    // Load in a tight loop while the trainer writes a checkpoint and deletes the one before it
    // every epoch: some loads land on a checkpoint being deleted. Each must load, or say why.
    let mut loads = 0;
    let mut newest = first;
    wait_for("30 more epochs", Duration::from_mins(3), || {
        let restored = convscope::train::restore::load(&run_dir, None)
            .unwrap_or_else(|e| panic!("load {loads} failed: {e}"));
        assert!(restored.note.is_none(), "{:?}", restored.note);
        loads += 1;
        newest = restored.checkpoint.state.epoch;
        newest >= first + 30
    });
    // The command users run, as a process of its own, a few times over.
    let image = std::fs::read_dir(data.join("blobs"))
        .expect("class folder")
        .flatten()
        .map(|e| e.path())
        .min()
        .expect("an image");
    for i in 0..12 {
        let out = bin()
            .arg("predict")
            .arg(&run)
            .arg(&image)
            .output()
            .expect("predict runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "predict {i} failed ({}): {stderr}",
            out.status
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("blobs"),
            "{stderr}"
        );
    }
    let status = stop(&run, child);
    assert!(status.success(), "{status}");
    eprintln!("{loads} loads over epochs {first}..{newest}");
}
