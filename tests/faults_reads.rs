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
    let child = common::train(data, run)
        .no_seed()
        .epochs(100_000)
        .slow(slow_ms)
        .args([std::ffi::OsStr::new("--config"), cfg.as_os_str()])
        .spawn(Stdio::null());
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
    let first = convscope::infer::restore::load(&run_dir, None)
        .expect("loads")
        .checkpoint
        .state
        .epoch;
    // Load in a tight loop while the trainer writes a checkpoint and deletes the one before it
    // every epoch: some loads land on a checkpoint being deleted. Each must load, or say why.
    let mut loads = 0;
    let mut newest = first;
    wait_for("30 more epochs", Duration::from_mins(3), || {
        let restored = convscope::infer::restore::load(&run_dir, None)
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

/// The `Warning` events of a run so far.
fn warnings(run: &Path) -> Vec<String> {
    common::events(run)
        .into_iter()
        .filter_map(|e| match e {
            convscope::events::Event::Warning(w) => Some(w.message),
            _ => None,
        })
        .collect()
}

/// Peak resident memory of a process, in KiB (`VmHWM` in /proc/PID/status).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn probes_of_a_fifo_or_a_huge_file_never_hold_up_training() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 12, 16);
    let run = tmp.path().join("run");
    let mut child = trainer(tmp.path(), &data, &run, "", 20);
    let sock = run.join("control.sock");
    wait_for("a batch event", Duration::from_mins(2), || {
        run.join("events.jsonl").exists()
            && common::events(&run)
                .iter()
                .any(|e| matches!(e, convscope::events::Event::Batch(_)))
    });
    // A FIFO nobody writes to: reading it waits forever (before: on the training thread).
    let fifo = tmp.path().join("pipe.png");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .expect("mkfifo");
    control::send(
        &sock,
        &Command::Probe {
            image: fifo.clone(),
        },
    )
    .expect("probe");
    wait_for("the FIFO's warning", Duration::from_mins(1), || {
        warnings(&run).iter().any(|w| w.contains("pipe.png"))
    });
    let w = warnings(&run);
    let fifo_warning = w.iter().find(|w| w.contains("pipe.png")).expect("warning");
    assert!(
        fifo_warning.contains("a FIFO (named pipe), not an image file"),
        "{fifo_warning}"
    );
    // A 2 GB file named .png (sparse: no disk taken), read whole before this change.
    let huge = tmp.path().join("x.png");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(2 << 30))
        .expect("sparse file");
    control::send(
        &sock,
        &Command::Probe {
            image: huge.clone(),
        },
    )
    .expect("probe");
    wait_for("the huge file's warning", Duration::from_mins(1), || {
        warnings(&run).iter().any(|w| w.contains("x.png"))
    });
    let w = warnings(&run);
    let huge_warning = w.iter().find(|w| w.contains("x.png")).expect("warning");
    assert!(
        huge_warning.contains("the file is 2147483648 bytes, more than any image"),
        "{huge_warning}"
    );
    let peak = peak_rss_kib(child.0.id());
    assert!(peak < 1 << 20, "peak RSS {peak} KiB");
    // The training goes on and stops when asked: wait on its exit (bounded, in case it hangs).
    control::send(&sock, &Command::Stop).expect("stop");
    let pid = child.0.id();
    let mut waited = std::mem::replace(
        &mut child.0,
        std::process::Command::new("true").spawn().expect("true"),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(waited.wait());
    });
    let status = rx
        .recv_timeout(Duration::from_mins(1))
        .unwrap_or_else(|_| {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            panic!("the trainer did not stop within a minute of `stop`")
        })
        .expect("wait");
    assert!(status.success(), "{status}");
    eprintln!("peak RSS of the trainer: {peak} KiB");
}

#[test]
fn latest_pointing_at_an_endless_device_is_named_and_not_read() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = common::demo_run(tmp.path(), 1, 16, 8);
    let latest = run.join("checkpoints/latest");
    std::fs::remove_file(&latest).expect("rm");
    std::os::unix::fs::symlink("/dev/zero", &latest).expect("symlink");
    let image = run.join("samples");
    let image = std::fs::read_dir(&image)
        .expect("samples")
        .flatten()
        .map(|e| e.path())
        .min()
        .expect("a sample");
    let out = bin()
        .arg("predict")
        .arg(&run)
        .arg(&image)
        .output()
        .expect("predict runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} is a character device, not a regular file",
            latest.display()
        )) && stderr.contains("using the newest complete one, epoch-0001, instead"),
        "{stderr}"
    );
}

#[test]
fn a_hand_edited_state_json_epoch_is_refused_naming_file_and_field() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = common::demo_run(tmp.path(), 2, 16, 8);
    let state = run.join("checkpoints/epoch-0002/state.json");
    let text = std::fs::read_to_string(&state).expect("state.json");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["epoch"] = serde_json::json!(u64::MAX);
    std::fs::write(&state, v.to_string()).expect("write");
    let out = bin()
        .args(["resume", "--headless", "--epochs", "3"])
        .arg(&run)
        .output()
        .expect("resume runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "checkpoint epoch-0002 is incomplete or damaged (state.json field `epoch` = 18446744073709551615: must be between 1 and 100000000); using the newest complete one, epoch-0001, instead"
        ),
        "{stderr}"
    );
    // Progress goes to stdout when it is not a terminal.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("resuming at epoch 2"), "{stdout}");
}

#[test]
fn control_characters_in_file_names_cannot_forge_log_lines() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 8, 16);
    // A bad image whose name carries a line break and a fake error line.
    let forged = data.join("blobs/x\n ERROR training failed: forged\u{1b}[31m.png");
    std::fs::write(&forged, b"not an image").expect("write");
    let run = tmp.path().join("run");
    let out = bin()
        .arg("train")
        .arg(&data)
        .arg("--run")
        .arg(&run)
        .args(["--headless", "--image-size", "16", "--epochs", "1"])
        .output()
        .expect("train runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let log = std::fs::read_to_string(run.join("convscope.log")).expect("log");
    for (what, text) in [("stderr", stderr.as_ref()), ("convscope.log", log.as_str())] {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("forged")).collect();
        assert_eq!(lines.len(), 1, "{what}:\n{text}");
        assert!(
            lines[0].contains("WARN")
                && lines[0].contains("skipping image")
                && lines[0].contains("x\\n ERROR training failed: forged"),
            "{what}: {}",
            lines[0]
        );
        assert!(!text.contains('\u{1b}'), "{what} holds a raw escape");
    }
}

/// Run `cmd` to its end; a command still running after a minute is killed and fails the test.
fn output_within_a_minute(cmd: &mut std::process::Command) -> std::process::Output {
    use std::io::Read as _;
    let mut child = Killed(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts"),
    );
    wait_for("the command to end", Duration::from_mins(1), || {
        child.0.try_wait().expect("try_wait").is_some()
    });
    let mut out = std::process::Output {
        status: child.0.wait().expect("wait"),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    if let Some(mut s) = child.0.stdout.take() {
        s.read_to_end(&mut out.stdout).expect("stdout");
    }
    if let Some(mut s) = child.0.stderr.take() {
        s.read_to_end(&mut out.stderr).expect("stderr");
    }
    out
}

#[test]
fn a_fifo_in_place_of_the_event_log_is_named_not_waited_on() {
    use std::os::unix::fs::FileTypeExt as _;
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = common::demo_run(tmp.path(), 1, 16, 8);
    let log = run.join("events.jsonl");
    std::fs::remove_file(&log).expect("rm");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &log,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .expect("mkfifo");
    let named = |stderr: &str| {
        stderr.contains(&log.display().to_string())
            && stderr.contains("a FIFO (named pipe), not a regular file")
    };
    // export reads the log for its curves; resume appends to it.
    let out = output_within_a_minute(
        bin()
            .arg("export")
            .arg(&run)
            .arg("--out")
            .arg(tmp.path().join("x")),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && named(&stderr), "{stderr}");
    let out =
        output_within_a_minute(
            bin()
                .arg("resume")
                .arg(&run)
                .args(["--headless", "--epochs", "2"]),
        );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && named(&stderr), "{stderr}");
    assert!(
        std::fs::symlink_metadata(&log)
            .expect("still there")
            .file_type()
            .is_fifo(),
        "the FIFO is left as it was"
    );
    // The viewer says so on its screen and goes on answering keys.
    let view = common::Tmux::view("convscope-fifo-log", &run);
    view.wait_text("FIFO");
    view.keys("q");
    wait_for("the viewer to quit", Duration::from_mins(1), || {
        !common::strip(&view.capture()).contains("FIFO")
    });
}

/// A run written before probe paths were stored absolute: its probes are relative to the
/// directory its trainer started in. A viewer started anywhere else still shows them.
#[test]
fn an_older_run_s_relative_probe_paths_are_found_from_anywhere() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = common::demo_run(tmp.path(), 1, 16, 8);
    let log = run.join("events.jsonl");
    let text = std::fs::read_to_string(&log).expect("log");
    let prefix = format!("{}/", tmp.path().display());
    let relative = text.replace(&prefix, "");
    assert_ne!(
        text, relative,
        "the demo's probes are absolute paths under {prefix}"
    );
    assert!(relative.contains("\"run/samples/"), "{relative}");
    std::fs::write(&log, relative).expect("write");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let view = common::Tmux::start(
        "convscope-old-probes",
        &format!(
            "cd {} && {} view {}; sleep 30",
            elsewhere.path().display(),
            env!("CARGO_BIN_EXE_convscope"),
            run.display()
        ),
    );
    view.wait_text("finished");
    view.keys("4");
    let screen = view.wait_text("(x-mean)/std");
    assert!(
        !common::strip(&screen).contains("cannot"),
        "{}",
        common::strip(&screen)
    );
}
