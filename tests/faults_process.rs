//! Process and numerical faults through the real binary: signals, kill -9, a full disk, a
//! diverging loss, and output without a terminal.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use common::{bin, checkpoint_weights, events, max_diff, synthetic, wait_for};
use convscope::events::Event;

/// A tiny headless training of `data` into `run` for `epochs` epochs.
fn train_cmd(data: &Path, run: &Path, epochs: u64) -> std::process::Command {
    common::train(data, run).epochs(epochs).command()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Headless progress (stdout).
fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn latest(run: &Path) -> String {
    fs::read_to_string(run.join("checkpoints/latest"))
        .expect("checkpoints/latest")
        .trim()
        .to_string()
}

fn resume(run: &Path, extra: &[&str]) -> Output {
    bin()
        .arg("resume")
        .arg(run)
        .arg("--headless")
        .args(extra)
        .output()
        .expect("runs")
}

/// ~20 training batches per epoch at 16x16.
fn data(tmp: &Path) -> PathBuf {
    synthetic(tmp, 48, 16)
}

fn straight_run(tmp: &Path, data: &Path) -> PathBuf {
    let run = tmp.join("straight");
    let out = train_cmd(data, &run, 2).output().expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    run
}

/// Start a slowed-down two-epoch run in the background.
fn spawn_slow(data: &Path, run: &Path) -> Child {
    train_cmd(data, run, 2)
        .env("CONVSCOPE_SLOW_BATCH_MS", "40")
        .stderr(Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn")
}

fn has_event(run: &Path, pred: impl Fn(&Event) -> bool) -> bool {
    run.join("events.jsonl").exists() && events(run).iter().any(pred)
}

fn send(signal: &str, child: &Child) {
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

fn signal_checkpoints_and_resume_continues(signal: &str, name: &str, code: i32) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = data(tmp.path());
    let straight = straight_run(tmp.path(), &data);
    let run = tmp.path().join("signalled");
    let child = spawn_slow(&data, &run);
    wait_for("a batch of epoch 1", Duration::from_mins(2), || {
        has_event(&run, |e| matches!(e, Event::Batch(b) if b.epoch == 1))
    });
    send(signal, &child);
    let out = child.wait_with_output().expect("wait");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(err.contains(&format!("interrupted by {name}")), "{err}");
    assert!(
        err.contains(&format!(
            "stopped; checkpoint written. Resume with: convscope resume {}",
            run.display()
        )),
        "{err}"
    );
    let name = latest(&run);
    assert!(name.starts_with("epoch-0001-batch-"), "mid-epoch: {name}");
    let out = resume(&run, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("resuming at epoch 1, batch"),
        "{}",
        stdout(&out)
    );
    let d = max_diff(
        &checkpoint_weights(&straight, "epoch-0002"),
        &checkpoint_weights(&run, "epoch-0002"),
    );
    assert!(d <= 1e-6, "stopped at {name}; weights differ by {d}");
}

#[test]
fn sigterm_checkpoints_exits_143_and_resume_continues_exactly() {
    signal_checkpoints_and_resume_continues("-TERM", "SIGTERM", 143);
}

#[test]
fn sighup_checkpoints_exits_129_and_resume_continues_exactly() {
    signal_checkpoints_and_resume_continues("-HUP", "SIGHUP", 129);
}

#[test]
fn kill_9_keeps_the_previous_checkpoint_usable_and_resume_works() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = data(tmp.path());
    let straight = straight_run(tmp.path(), &data);
    let run = tmp.path().join("killed");
    let mut child = spawn_slow(&data, &run);
    // Checkpoints are written in the background: epoch 1's is complete once it is reported.
    wait_for("a batch of epoch 2", Duration::from_mins(2), || {
        has_event(&run, |e| matches!(e, Event::Batch(b) if b.epoch == 2))
            && has_event(&run, |e| matches!(e, Event::Checkpoint(c) if c.epoch == 1))
    });
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), None, "killed by a signal");
    assert_eq!(latest(&run), "epoch-0001");
    let _ = checkpoint_weights(&run, "epoch-0001");
    // The log stays readable (a torn last line at most).
    assert!(has_event(&run, |e| matches!(e, Event::Checkpoint(_))));
    let out = resume(&run, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        stdout(&out).contains("resuming at epoch 2, batch 1"),
        "{}",
        stdout(&out)
    );
    let d = max_diff(
        &checkpoint_weights(&straight, "epoch-0002"),
        &checkpoint_weights(&run, "epoch-0002"),
    );
    assert!(d <= 1e-6, "weights differ by {d}");
}

#[test]
fn leftovers_of_a_kill_during_a_checkpoint_write_are_ignored() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = data(tmp.path());
    let run = tmp.path().join("run");
    let out = train_cmd(&data, &run, 1).output().expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let cps = run.join("checkpoints");
    // What kill -9 can leave: a temporary folder with half a model, a renamed folder whose
    // state.json never came (impossible with the write order, but cheap to survive), and a
    // temporary `latest`.
    fs::create_dir_all(cps.join(".tmp-epoch-0002-99999")).expect("mkdir");
    fs::write(cps.join(".tmp-epoch-0002-99999/model.bpk"), b"half").expect("write");
    fs::create_dir_all(cps.join("epoch-0002")).expect("mkdir");
    fs::write(cps.join("epoch-0002/model.bpk"), b"half").expect("write");
    fs::write(cps.join("latest.tmp-99999"), b"").expect("write");
    let out = resume(&run, &["--epochs", "2"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        stdout(&out).contains("resuming at epoch 2, batch 1"),
        "{}",
        stdout(&out)
    );
    assert_eq!(latest(&run), "epoch-0002");
    let _ = checkpoint_weights(&run, "epoch-0002");
}

#[test]
fn without_a_terminal_output_is_plain_lines() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 6, 16);
    for (i, term) in [Some("dumb"), None, Some("xterm-256color")]
        .into_iter()
        .enumerate()
    {
        let run = tmp.path().join(format!("run{i}"));
        let mut c = bin();
        c.arg("train")
            .arg(&data)
            .arg("--run")
            .arg(&run)
            // No --headless: stdout is a pipe, so the TUI must not start.
            .args(["--image-size", "16", "--batch-size", "4", "--epochs", "1"])
            .stdin(Stdio::null());
        match term {
            Some(t) => c.env("TERM", t),
            None => c.env_remove("TERM"),
        };
        let out = c.output().expect("runs");
        let (err, progress) = (stderr(&out), stdout(&out));
        assert!(out.status.success(), "{term:?}: {err}");
        // Progress on stdout (to capture with `| tee` or `>`), nothing but warnings on stderr.
        assert!(err.is_empty(), "nothing on stderr: {err}");
        assert!(
            !progress.contains('\u{1b}'),
            "no escape codes with TERM={term:?}: {progress:?}"
        );
        assert!(progress.contains("epoch 1/1 loss"), "{progress}");
        assert!(progress.contains("convscope: finished"), "{progress}");
    }
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        fs::create_dir_all(dir).expect("mkdir");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("mount runs");
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk_while_checkpointing_stops_cleanly_and_keeps_the_last_checkpoint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 6, 16);
    // One checkpoint of the 16x16 network is ~1.9 MB (model + Adam state): 3 MB holds one.
    let Some(disk) = Tmpfs::mount(&tmp.path().join("disk"), "3M") else {
        eprintln!("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN); case not tested");
        return;
    };
    let run = disk.0.join("run");
    let out = train_cmd(&data, &run, 3).output().expect("runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "training failed: {}: writing the checkpoint failed",
            run.join("checkpoints/epoch-0002").display()
        )),
        "names the path: {err}"
    );
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("the previous checkpoint is kept"), "{err}");
    assert!(err.contains("Check that the disk has space"), "{err}");
    assert!(
        err.contains(&format!("convscope resume {}", run.display())),
        "{err}"
    );
    assert_eq!(latest(&run), "epoch-0001");
    let _ = checkpoint_weights(&run, "epoch-0001");
    let leftovers: Vec<_> = fs::read_dir(run.join("checkpoints"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "half-written files removed: {leftovers:?}"
    );
    assert!(has_event(&run, |e| matches!(e, Event::Failed(_))));
    // Free space, then resume finishes the run.
    disk.resize("20M");
    let out = resume(&run, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(latest(&run), "epoch-0003");
}

#[test]
fn full_disk_before_training_is_named_once_with_what_to_do() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 6, 16);
    let Some(disk) = Tmpfs::mount(&tmp.path().join("disk"), "8k") else {
        eprintln!("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN); case not tested");
        return;
    };
    fs::write(disk.0.join("fill"), vec![0u8; 8192]).ok();
    let run = disk.0.join("run");
    let out = train_cmd(&data, &run, 1).output().expect("runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&run.display().to_string()), "{err}");
    assert_eq!(
        err.matches("No space left on device").count(),
        1,
        "once: {err}"
    );
    assert!(
        err.contains("check the path, its permissions and the free disk space"),
        "{err}"
    );
    // Nothing half-written stays behind to block a retry with the same --run.
    assert!(!run.join("config.toml").exists());
    disk.resize("20M");
    let out = train_cmd(&data, &run, 1).output().expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Train three slowed epochs with no image cache (every epoch re-reads the files) and delete
/// one training image once epoch 1 is checkpointed (epoch 2 may have read it ahead; epoch 3
/// cannot have).
fn file_deleted_mid_run(tmp: &Path) -> (PathBuf, PathBuf, Output) {
    let data = data(tmp);
    let cfg = tmp.join("nocache.toml");
    fs::write(&cfg, "[data]\ncache_mib = 0\nval_split = 0.0\n").expect("write");
    let run = tmp.join("run");
    let child = train_cmd(&data, &run, 3)
        .arg("--config")
        .arg(&cfg)
        .env("CONVSCOPE_SLOW_BATCH_MS", "40")
        .stderr(Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    wait_for("the epoch 1 checkpoint", Duration::from_mins(2), || {
        has_event(&run, |e| matches!(e, Event::Checkpoint(c) if c.epoch == 1))
    });
    let victim = fs::read_dir(data.join("blobs"))
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .min()
        .expect("a file");
    fs::remove_file(&victim).expect("rm");
    let out = child.wait_with_output().expect("wait");
    (run, victim, out)
}

#[test]
fn image_deleted_during_training_is_skipped_with_a_warning() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (run, victim, out) = file_deleted_mid_run(tmp.path());
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "skipping image {} that went bad after opening",
            victim.display()
        )),
        "{err}"
    );
    assert_eq!(latest(&run), "epoch-0003");
}

#[test]

fn image_deleted_during_training_is_listed_in_classes_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (run, victim, out) = file_deleted_mid_run(tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let info = fs::read_to_string(run.join("classes.json")).expect("classes.json");
    assert!(info.contains(&victim.display().to_string()), "{info}");
}

// ---- numerical faults ----------------------------------------------------------------------

#[test]
fn huge_learning_rate_stops_with_a_clear_message() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 6, 16);
    let run = tmp.path().join("run");
    let out = train_cmd(&data, &run, 3)
        .args(["--lr", "1e9"])
        .output()
        .expect("runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("convscope: training failed: the loss became"),
        "{err}"
    );
    assert!(err.contains("training diverged and was stopped"), "{err}");
    assert!(
        err.contains("No checkpoint was written before it."),
        "{err}"
    );
    assert!(
        err.contains("Try a lower learning rate (optimizer.lr / --lr, now 1000000000.0)"),
        "{err}"
    );
    assert!(!run.join("checkpoints/latest").exists());
    assert!(has_event(&run, |e| matches!(e, Event::Failed(_))));
}

#[test]
fn divergence_after_a_checkpoint_keeps_it_and_says_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 6, 16);
    let run = tmp.path().join("run");
    let out = train_cmd(&data, &run, 1).output().expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    // A huge learning rate through the run's own config file.
    let cfg = run.join("config.toml");
    let text = fs::read_to_string(&cfg).expect("config");
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("lr = ") {
                "lr = 1e9".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(&cfg, text).expect("write");
    let before = checkpoint_weights(&run, "epoch-0001");
    let out = resume(&run, &["--epochs", "3"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the loss became"), "{err}");
    assert!(
        err.contains("The last good checkpoint, epoch-0001, is kept."),
        "{err}"
    );
    assert!(err.contains("Try a lower learning rate"), "{err}");
    assert!(
        err.contains(&format!(
            "resume from the last good checkpoint, epoch-0001, with a lower learning rate: convscope resume {} --lr 100000000",
            run.display()
        )),
        "{err}"
    );
    assert_eq!(latest(&run), "epoch-0001");
    let after = checkpoint_weights(&run, "epoch-0001");
    assert!(max_diff(&before, &after) == 0.0, "checkpoint untouched");
    assert!(after.iter().flatten().all(|v| v.is_finite()));
}

#[test]

fn learning_rate_in_the_divergence_message_is_readable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 6, 16);
    let out = train_cmd(&data, &tmp.path().join("run"), 1)
        .args(["--lr", "1e300"])
        .output()
        .expect("runs");
    let err = stderr(&out);
    assert!(err.contains("now 1e300)"), "{err}");
}

#[test]

fn resume_accepts_a_lower_learning_rate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 6, 16);
    let run = tmp.path().join("run");
    let out = train_cmd(&data, &run, 1).output().expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = resume(&run, &["--epochs", "2", "--lr", "0.0001"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
