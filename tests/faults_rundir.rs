//! The run directory's integrity: one writer at a time, a refused command changes nothing, no
//! run directory inside the data, a folder that is not a run is left alone, a trainer whose
//! folder was deleted stops, deep paths work, a run without a checkpoint is no dead end, and
//! the control socket cannot be made to act late or grow without bound.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use common::{bin, events, live_trainer, synthetic, wait_for};
use convscope::events::{Command, Event, RunState};
use convscope::run::control;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A short headless training (16 px, `epochs` epochs) of `data` into `run`.
fn train(data: &Path, run: &Path, epochs: u64) -> std::process::Command {
    common::train(data, run).no_seed().epochs(epochs).command()
}

/// Wait until the live run at `run` has trained a batch.
fn wait_live(run: &Path) {
    wait_for("a batch event", Duration::from_mins(2), || {
        run.join("events.jsonl").exists()
            && events(run).iter().any(|e| matches!(e, Event::Batch(_)))
            && control::is_live(&run.join("control.sock"))
    });
}

/// Stop a live trainer through its socket and wait for it to end.
fn stop(mut child: Child, run: &Path) -> Output {
    let _ = control::send(&run.join("control.sock"), &Command::Stop);
    let _ = child.kill_on_timeout();
    child.wait_with_output().expect("wait")
}

trait KillOnTimeout {
    fn kill_on_timeout(&mut self) -> std::io::Result<()>;
}

impl KillOnTimeout for Child {
    /// Wait up to a minute for the process to end by itself, then kill it (a failing test
    /// must not leave a trainer running).
    fn kill_on_timeout(&mut self) -> std::io::Result<()> {
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_mins(1) {
            if self.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill()
    }
}

/// Every file under `dir` with its bytes, for "nothing changed" checks.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let ft = e.file_type().expect("type");
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                out.push((p.clone(), fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_second_train_into_a_live_run_is_refused_before_writing_anything() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 12, 16);
    let data2 = tmp.path().join("data2");
    convscope::data::write_synthetic(&data2, 6, 24, 9).expect("data2");
    let run = tmp.path().join("run");
    let child = live_trainer(&data, &run, Stdio::piped());
    wait_live(&run);
    let config = fs::read(run.join("config.toml")).expect("config");
    let source = fs::read(run.join("run.json")).expect("run.json");

    // Another data folder and image size: before the lock, its config.toml replaced the
    // live run's.
    let out = bin()
        .arg("train")
        .arg(&data2)
        .arg("--run")
        .arg(&run)
        .args(["--headless", "--image-size", "24", "--epochs", "1"])
        .output()
        .expect("runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("another convscope process is writing to"),
        "{err}"
    );
    assert!(
        err.contains("convscope view"),
        "names the way to watch it: {err}"
    );
    assert_eq!(fs::read(run.join("config.toml")).expect("config"), config);
    assert_eq!(fs::read(run.join("run.json")).expect("run.json"), source);

    // A refused resume with a new learning rate changes nothing either.
    let out = bin()
        .arg("resume")
        .arg(&run)
        .args(["--lr", "0.5", "--headless"])
        .output()
        .expect("runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("another convscope process is writing to"),
        "{err}"
    );
    assert_eq!(fs::read(run.join("config.toml")).expect("config"), config);

    let out = stop(child, &run);
    assert!(out.status.success(), "{}", stderr(&out));
    let cfg = fs::read_to_string(run.join("config.toml")).expect("config");
    assert!(!cfg.contains("lr = 0.5"), "{cfg}");
}

#[test]
fn two_default_runs_started_together_get_folders_of_their_own() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 4, 16);
    let spawn = || {
        bin()
            .current_dir(tmp.path())
            .arg("train")
            .arg(&data)
            .args(["--headless", "--image-size", "16", "--batch-size", "4"])
            .args(["--epochs", "1"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts")
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let runs: Vec<PathBuf> = fs::read_dir(tmp.path().join("runs"))
        .expect("runs/")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for r in &runs {
        let evs = events(r);
        let started = evs
            .iter()
            .filter(|e| matches!(e, Event::Started(_)))
            .count();
        assert_eq!(started, 1, "one training per folder: {}", r.display());
    }
}

#[test]
fn a_run_directory_inside_the_data_folder_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 4, 16);
    let before = snapshot(&data);
    let listing = |d: &Path| {
        let mut v: Vec<_> = fs::read_dir(d)
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        v.sort();
        v
    };
    let classes = listing(&data);

    // `cd DATA && convscope train .`: the default runs/ would land in the data.
    let out = bin()
        .current_dir(&data)
        .args([
            "train",
            ".",
            "--headless",
            "--image-size",
            "16",
            "--epochs",
            "1",
        ])
        .output()
        .expect("runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("would be inside the data folder"), "{err}");
    assert!(err.contains("--run"), "names the way out: {err}");

    let class = data.join(&classes[0]);
    for run in [data.clone(), class.join("x"), data.join("runs/a")] {
        let out = train(&data, &run, 1).output().expect("runs");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", run.display());
        assert!(err.contains("would be inside the data folder"), "{err}");
    }
    // And inside the validation folder.
    let val = tmp.path().join("val");
    convscope::data::write_synthetic(&val, 2, 16, 3).expect("val");
    let out = train(&data, &val.join("run"), 1)
        .arg("--val")
        .arg(&val)
        .output()
        .expect("runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("inside the validation folder"), "{err}");
    assert!(!val.join("run").exists());

    assert_eq!(listing(&data), classes, "no new class folder");
    assert_eq!(snapshot(&data), before, "nothing written into the data");
}

#[test]
fn a_folder_that_is_not_a_run_is_refused_and_left_as_it_was() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 4, 16);
    let folder = tmp.path().join("important");
    fs::create_dir_all(folder.join("checkpoints/epoch-0001")).expect("mkdir");
    fs::write(folder.join("control.sock"), b"not a socket").expect("write");
    fs::write(folder.join("checkpoints/epoch-0001/notes.txt"), b"mine").expect("write");
    let before = snapshot(&folder);
    let out = train(&data, &folder, 1).output().expect("runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is not a convscope run"), "{err}");
    assert_eq!(snapshot(&folder), before);
}

#[test]
fn a_trainer_whose_run_directory_was_deleted_stops_and_leaves_the_new_run_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 12, 16);
    let run = tmp.path().join("run");
    let old = live_trainer(&data, &run, Stdio::piped());
    wait_live(&run);
    let old_pid = old.id();
    // The old trainer is held (SIGSTOP) while its folder is deleted and a new run made in its
    // place, so that it goes on only once the new one is live: the worst case.
    let pid = rustix::process::Pid::from_raw(old_pid as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).expect("stop");
    fs::remove_dir_all(&run).expect("rm -rf");
    let new = live_trainer(&data, &run, Stdio::piped());
    wait_live(&run);
    rustix::process::kill_process(pid, rustix::process::Signal::CONT).expect("cont");
    let out = {
        let mut old = old;
        old.kill_on_timeout().expect("ends");
        old.wait_with_output().expect("wait")
    };
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("was deleted or replaced while training"),
        "{err}"
    );
    assert!(
        !err.contains("convscope resume"),
        "no advice to resume: {err}"
    );
    // The new run is untouched: its socket is still there and live, its log has one start.
    assert!(control::is_live(&run.join("control.sock")));
    let starts = events(&run)
        .iter()
        .filter(|e| matches!(e, Event::Started(_)))
        .count();
    assert_eq!(starts, 1);
    let out = stop(new, &run);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_deep_run_directory_trains_and_its_socket_answers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 12, 16);
    let mut run = tmp.path().to_path_buf();
    for i in 0..6 {
        run.push(format!(
            "experiment-{i}-with-a-rather-long-descriptive-name"
        ));
    }
    assert!(run.join("control.sock").as_os_str().len() > 200);
    let child = live_trainer(&data, &run, Stdio::piped());
    wait_live(&run);
    control::send(&run.join("control.sock"), &Command::Pause).expect("pause");
    wait_for("the paused status", Duration::from_secs(30), || {
        events(&run)
            .iter()
            .any(|e| matches!(e, Event::Status(s) if s.state == RunState::Paused))
    });
    let out = stop(child, &run);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!run.join("control.sock").exists(), "socket removed at exit");
}

#[test]
fn a_run_without_a_checkpoint_can_be_trained_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 4, 16);
    // A class whose every file is broken: the trainer fails after making the run.
    let broken = data.join("zebras");
    fs::create_dir_all(&broken).expect("mkdir");
    fs::write(broken.join("a.png"), b"not a png").expect("write");
    let run = tmp.path().join("my run");
    let out = train(&data, &run, 1).output().expect("runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        !err.contains("convscope resume"),
        "no dead-end advice: {err}"
    );

    let out = bin()
        .arg("resume")
        .arg(&run)
        .arg("--headless")
        .output()
        .expect("runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("convscope train DATA --run '{}'", run.display())),
        "names the way out, quoted: {err}"
    );

    fs::remove_dir_all(&broken).expect("rm");
    let out = train(&data, &run, 1).output().expect("runs");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("starting it afresh"), "{err}");
    assert_eq!(
        fs::read_to_string(run.join("checkpoints/latest")).expect("latest"),
        "epoch-0001\n"
    );
}

#[test]
fn a_command_that_arrives_after_its_client_gave_up_is_not_carried_out() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 12, 16);
    let run = tmp.path().join("run");
    let child = live_trainer(&data, &run, Stdio::piped());
    wait_live(&run);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).expect("stop");
    let err = control::send(&run.join("control.sock"), &Command::Stop)
        .expect_err("no answer from a stopped process");
    let text = err.to_string();
    assert!(text.contains("did not answer within"), "{text}");
    assert!(text.contains("not carried out"), "{text}");
    assert!(!text.contains("disk space"), "no unrelated advice: {text}");
    rustix::process::kill_process(pid, rustix::process::Signal::CONT).expect("cont");
    // The late stop was dropped: the training goes on to its next epoch.
    let epochs_before = events(&run)
        .iter()
        .filter(|e| matches!(e, Event::Epoch(_)))
        .count();
    wait_for("another epoch", Duration::from_mins(2), || {
        events(&run)
            .iter()
            .filter(|e| matches!(e, Event::Epoch(_)))
            .count()
            > epochs_before
    });
    assert!(
        !events(&run)
            .iter()
            .any(|e| matches!(e, Event::Status(s) if s.state == RunState::Stopping)),
        "the late stop was carried out"
    );
    let out = stop(child, &run);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = fs::read_to_string(run.join("convscope.log")).expect("log");
    assert!(log.contains("arrived after its deadline"), "{log}");
}

#[test]
fn probe_images_are_recorded_with_absolute_paths() {
    let tmp = tempfile::tempdir().expect("tempdir");
    synthetic(tmp.path(), 4, 16);
    let out = bin()
        .current_dir(tmp.path())
        .args(["train", "data", "--run", "run", "--headless"])
        .args(["--image-size", "16", "--epochs", "1"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let evs = events(&tmp.path().join("run"));
    let Some(Event::Started(s)) = evs.iter().find(|e| matches!(e, Event::Started(_))) else {
        panic!("no start event");
    };
    assert!(!s.probe_images.is_empty());
    for p in &s.probe_images {
        assert!(p.is_absolute(), "{}", p.display());
        assert!(p.is_file(), "{}", p.display());
    }
    let progress = String::from_utf8_lossy(&out.stdout);
    assert!(progress.contains("finished"), "{progress}");
}

#[test]
fn a_stopped_run_in_a_folder_with_a_space_prints_a_command_that_pastes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 12, 16);
    let run = tmp.path().join("my runs").join("first try");
    let child = live_trainer(&data, &run, Stdio::piped());
    wait_live(&run);
    let out = stop(child, &run);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("convscope resume '{}'", run.display())),
        "{err}"
    );
}

/// Unmounts a tmpfs when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_read_only_run_is_viewed_and_its_exports_go_elsewhere() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let disk = tmp.path().join("disk");
    fs::create_dir_all(&disk).expect("mkdir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64M", "tmpfs"])
        .arg(&disk)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN); case not tested");
        return;
    }
    let _mounted = Mounted(disk.clone());
    let run = common::demo_run(&disk, 1, 16, 8);
    let remounted = std::process::Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&disk)
        .status()
        .expect("mount runs");
    assert!(remounted.success());
    assert!(
        fs::write(run.join("probe"), b"x").is_err(),
        "the run is read-only, even for root"
    );
    let (state, cwd) = (tmp.path().join("state"), tmp.path().join("cwd"));
    fs::create_dir_all(&cwd).expect("mkdir");
    let view = common::Tmux::start(
        "convscope-readonly",
        &format!(
            "cd {} && XDG_STATE_HOME={} {} view {}; sleep 30",
            cwd.display(),
            state.display(),
            env!("CARGO_BIN_EXE_convscope"),
            run.display()
        ),
    );
    view.wait_text("● finished");
    view.keys("e");
    let screen = view.wait_text("exported");
    let exports = cwd.join("convscope-export").join("run");
    assert!(
        common::strip(&screen).contains("convscope-export/run"),
        "says where: {screen}"
    );
    assert!(
        fs::read_dir(&exports).expect("exports").count() > 0,
        "files written outside the run"
    );
    assert!(state.join("convscope/viewer-run.log").is_file());
    view.keys("q");
}
