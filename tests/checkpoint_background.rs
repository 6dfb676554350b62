//! Checkpoints are written on a thread of their own while training goes on: held back by the
//! `CONVSCOPE_CHECKPOINT_GATE` test hook, the next epoch trains, `latest` does not move, and
//! the run ends only once the files are complete; a failed write is the run's error.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{checkpoint_weights, events, synthetic, wait_for};
use convscope::events::Event;
use convscope::run::checkpoint;

/// A gated run, killed if the test fails before it ends (its checkpoint would wait forever).
struct Gated(Child);

impl Drop for Gated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A two-epoch headless run whose checkpoints wait for `gate` to exist before going into place.
fn spawn_gated(data: &Path, run: &Path, gate: &Path) -> Gated {
    let child = common::train(data, run)
        .epochs(2)
        .command()
        .env("CONVSCOPE_CHECKPOINT_GATE", gate)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("convscope starts");
    Gated(child)
}

/// Wait for the run to end; its exit status and stderr.
fn wait_with_output(child: &mut Gated) -> std::process::Output {
    use std::io::Read as _;
    let mut stderr = Vec::new();
    if let Some(mut e) = child.0.stderr.take() {
        e.read_to_end(&mut stderr).expect("read stderr");
    }
    let status = child.0.wait().expect("wait");
    std::process::Output {
        status,
        stdout: Vec::new(),
        stderr,
    }
}

fn has_event(run: &Path, pred: impl Fn(&Event) -> bool) -> bool {
    run.join("events.jsonl").exists() && events(run).iter().any(pred)
}

/// The temporary folders of checkpoints being written.
fn temporary(run: &Path) -> Vec<PathBuf> {
    fs::read_dir(run.join("checkpoints"))
        .map(|entries| {
            entries
                .map(|e| e.expect("entry").path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Wait until epoch 1's checkpoint files are written and held, and epoch 2 has trained its
/// last batch meanwhile.
fn epoch_two_trained_while_held(run: &Path, gate: &Path) {
    wait_for("the held checkpoint", Duration::from_mins(2), || {
        gate.with_extension("held").exists()
    });
    wait_for("epoch 2's last batch", Duration::from_mins(2), || {
        has_event(
            run,
            |e| matches!(e, Event::Batch(b) if b.epoch == 2 && b.batch == b.batches),
        )
    });
}

#[test]
fn training_goes_on_while_a_checkpoint_is_written_and_latest_moves_only_when_complete() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 12, 16);
    let run = tmp.path().join("run");
    let gate = tmp.path().join("gate");
    let mut child = spawn_gated(&data, &run, &gate);
    epoch_two_trained_while_held(&run, &gate);
    // Epoch 1's files are written but held in their temporary folder: nothing claims them yet.
    let dir = run.join("checkpoints");
    let held = temporary(&run);
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(
        held[0]
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-epoch-0001-")),
        "{held:?}"
    );
    assert!(held[0].join(checkpoint::MODEL_FILE).is_file());
    assert!(held[0].join(checkpoint::OPTIM_FILE).is_file());
    assert!(!held[0].join(checkpoint::STATE_FILE).exists());
    assert!(
        !dir.join("latest").exists(),
        "latest moved before the files were complete"
    );
    assert!(!dir.join("epoch-0001").exists());
    assert!(matches!(
        checkpoint::latest(&dir),
        Err(convscope::run::RunError::NoCheckpoint { .. })
    ));
    assert!(!has_event(&run, |e| matches!(e, Event::Checkpoint(_))));
    assert!(!has_event(&run, |e| matches!(e, Event::Finished(_))));

    fs::write(&gate, b"").expect("open the gate");
    let out = wait_with_output(&mut child);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (cp, note) = checkpoint::latest(&dir).expect("latest");
    assert_eq!(cp.name, "epoch-0002");
    assert!(note.is_none(), "{note:?}");
    assert!(cp.state.files_hash.is_some());
    assert!(temporary(&run).is_empty(), "{:?}", temporary(&run));
    // Both checkpoints were reported, each once its files were in place, before the end.
    let all = events(&run);
    let at = |pred: &dyn Fn(&Event) -> bool| all.iter().position(pred);
    let cp1 = at(&|e| matches!(e, Event::Checkpoint(c) if c.epoch == 1)).expect("checkpoint 1");
    let cp2 = at(&|e| matches!(e, Event::Checkpoint(c) if c.epoch == 2)).expect("checkpoint 2");
    let epoch2 = at(&|e| matches!(e, Event::Epoch(m) if m.epoch == 2)).expect("epoch 2");
    let finished = at(&|e| matches!(e, Event::Finished(_))).expect("finished");
    assert!(
        epoch2 < cp1 && cp1 < cp2 && cp2 < finished,
        "{cp1} {cp2} {epoch2} {finished}"
    );
    // The weights load.
    let weights = checkpoint_weights(&run, "epoch-0002");
    assert!(weights.iter().flatten().all(|w| w.is_finite()));
    assert!(!weights.is_empty());
}

#[test]
fn a_checkpoint_that_fails_in_the_background_fails_the_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 12, 16);
    let run = tmp.path().join("run");
    let gate = tmp.path().join("gate");
    let mut child = spawn_gated(&data, &run, &gate);
    epoch_two_trained_while_held(&run, &gate);
    let held = temporary(&run);
    assert_eq!(held.len(), 1, "{held:?}");
    // The folder goes while its files are held: finishing it must fail, and say so.
    fs::remove_dir_all(&held[0]).expect("rm");
    fs::write(&gate, b"").expect("open the gate");
    let out = wait_with_output(&mut child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("writing the checkpoint failed"), "{err}");
    assert!(err.contains("epoch-0001"), "{err}");
    assert!(has_event(
        &run,
        |e| matches!(e, Event::Failed(f) if f.error.contains("writing the checkpoint failed"))
    ));
    assert!(!run.join("checkpoints/latest").exists());
}
