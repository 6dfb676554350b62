//! Load a run's network from one of its checkpoints: for predict, export and the viewer, and
//! with the optimizer and training state for resuming.

use std::path::{Path, PathBuf};

use burn::module::Module as _;
use burn::tensor::{Bytes, Device};

use crate::config::{Config, ConfigError};
use crate::model::Net;
use crate::run::checkpoint::{self, Checkpoint, TrainState};
use crate::run::{RunDir, RunError};

/// Why a run's network (or, for resuming, its optimizer and training state) did not load.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
}

/// A network restored from disk, with what is needed to use it.
pub struct Restored {
    pub cfg: Config,
    pub classes: Vec<String>,
    pub checkpoint: Checkpoint,
    /// Why the newest checkpoint was not used, when it was not.
    pub note: Option<String>,
    pub net: Net,
}

/// Pick the checkpoint of `epoch` (its epoch-end one), or the newest complete one.
pub fn pick(
    run: &RunDir,
    epoch: Option<usize>,
) -> Result<(Checkpoint, Option<String>), RestoreError> {
    let dir = run.checkpoints_path();
    match epoch {
        None => Ok(checkpoint::latest(&dir)?),
        Some(e) => {
            let all = checkpoint::list(&dir)?;
            let found = all
                .iter()
                .find(|c| c.state.epoch == e && c.state.epoch_complete())
                .cloned();
            found
                .map(|c| (c, None))
                .ok_or_else(|| RestoreError::Checkpoint {
                    path: dir.clone(),
                    message: format!(
                        "no complete checkpoint for epoch {e}; epochs with one: {}",
                        epoch_ranges(
                            all.iter()
                                .filter(|c| c.state.epoch_complete())
                                .map(|c| c.state.epoch)
                                .collect()
                        )
                    ),
                })
        }
    }
}

/// Epoch numbers as ranges, `1-3, 5, 7-15` (`none` when there are none): fifty checkpoint
/// names do not fit in an error message.
fn epoch_ranges(mut epochs: Vec<usize>) -> String {
    epochs.sort_unstable();
    epochs.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < epochs.len() {
        let mut j = i;
        while j + 1 < epochs.len() && epochs[j + 1] == epochs[j] + 1 {
            j += 1;
        }
        out.push(if j == i {
            epochs[i].to_string()
        } else {
            format!("{}-{}", epochs[i], epochs[j])
        });
        i = j + 1;
    }
    if out.is_empty() {
        "none".into()
    } else {
        out.join(", ")
    }
}

/// Load the network of `run` at `epoch` (default: newest) onto the CPU device.
pub fn load(run: &RunDir, epoch: Option<usize>) -> Result<Restored, RestoreError> {
    let cfg = run.read_config()?;
    let classes = run.read_classes()?.classes;
    let (checkpoint, note, net) = pick_and_load(run, epoch, &cfg, classes.len(), &Device::flex())?;
    Ok(Restored {
        cfg,
        classes,
        checkpoint,
        note,
        net,
    })
}

/// How many times a checkpoint that vanished while it was read is picked again: a live
/// training removes older checkpoints after each new one (`train.keep_checkpoints`) and
/// replaces a folder it writes again, so the one picked may be gone a moment later.
const LOAD_TRIES: usize = 5;

/// Why a checkpoint did not load.
enum LoadFail {
    /// Its files were removed or replaced while they were read: pick again.
    Vanished(String),
    Failed(RestoreError),
}

/// Pick the checkpoint of `epoch` (or the newest) and load its weights, picking again when
/// the one picked is removed or rewritten meanwhile.
pub fn pick_and_load(
    run: &RunDir,
    epoch: Option<usize>,
    cfg: &Config,
    classes: usize,
    device: &Device,
) -> Result<(Checkpoint, Option<String>, Net), RestoreError> {
    retrying(|| pick(run, epoch), |cp| weights(cfg, classes, cp, device))
}

/// [`pick_and_load`] with the picking and loading given: load what `pick` gives, and when it
/// vanished on the way, pick again ([`LOAD_TRIES`] times).
fn retrying<T>(
    mut pick: impl FnMut() -> Result<(Checkpoint, Option<String>), RestoreError>,
    mut load: impl FnMut(&Checkpoint) -> Result<T, LoadFail>,
) -> Result<(Checkpoint, Option<String>, T), RestoreError> {
    let mut vanished: Option<(PathBuf, String)> = None;
    for _ in 0..LOAD_TRIES {
        let (cp, note) = pick()?;
        match load(&cp) {
            Ok(v) => return Ok((cp, note, v)),
            Err(LoadFail::Vanished(why)) => {
                tracing::info!(
                    "checkpoint {} vanished while it was read ({why}); picking again",
                    cp.name
                );
                vanished = Some((cp.path.clone(), why));
            }
            Err(LoadFail::Failed(e)) => return Err(e),
        }
    }
    let (path, why) = vanished.unwrap_or_default();
    Err(RestoreError::Checkpoint {
        path,
        message: format!(
            "removed or replaced while it was read ({why}), and so were the {} picked before it; a live training prunes and rewrites its checkpoints: try again",
            LOAD_TRIES - 1
        ),
    })
}

/// Read a checkpoint file whole, as `Bytes` for burn's record readers. burn's own `load(path)`
/// reads each tensor from the path only when it is used, and panics when the file is gone by
/// then (the trainer pruned or rewrote the checkpoint); read whole, an open file stays
/// readable whatever happens to its name. `written` is its size as recorded in state.json (0:
/// not recorded): another size means it was replaced since the checkpoint was listed.
fn read_whole(path: &Path, written: u64) -> Result<Bytes, LoadFail> {
    use crate::run::small_file::{self, SmallFileError};
    use std::io::Read as _;
    let cap = if written > 0 { written } else { u64::MAX / 2 };
    let failed = |message: String| {
        LoadFail::Failed(RestoreError::Checkpoint {
            path: path.to_path_buf(),
            message,
        })
    };
    // Only a regular file (a FIFO or a link to /dev/zero in its place would hang or fill
    // the memory), and no more than was written.
    let (file, len) = match small_file::open_regular(path, cap) {
        Ok(f) => f,
        Err(SmallFileError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LoadFail::Vanished(e.to_string()));
        }
        Err(SmallFileError::TooLarge { len, .. }) => {
            return Err(LoadFail::Vanished(format!(
                "{len} bytes where {written} were written"
            )));
        }
        Err(e) => return Err(failed(format!("cannot read it: {e}"))),
    };
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| failed(format!("cannot read it: {e}")))?;
    if written > 0 && bytes.len() as u64 != written {
        return Err(LoadFail::Vanished(format!(
            "{} bytes where {written} were written",
            bytes.len()
        )));
    }
    Ok(Bytes::from_bytes_vec(bytes))
}

/// Build the configured network and apply a checkpoint's weights.
fn weights(
    cfg: &Config,
    classes: usize,
    cp: &Checkpoint,
    device: &Device,
) -> Result<Net, LoadFail> {
    let net = Net::new(cfg, classes, 0, device).map_err(|e| LoadFail::Failed(e.into()))?;
    let path = cp.model_path();
    let bytes = read_whole(&path, cp.state.model_bytes)?;
    let record = burn::store::ModuleRecord::from_bytes(bytes).map_err(|e| {
        LoadFail::Failed(RestoreError::Checkpoint {
            path: path.clone(),
            message: format!("cannot read the weights ({e}); the file is damaged"),
        })
    })?;
    net.try_load_record(record).map_err(|e| {
        LoadFail::Failed(RestoreError::Checkpoint {
            path,
            message: format!("the weights do not fit the run's network ({e})"),
        })
    })
}

/// Load the network, the optimizer state and the training state of `cp` for resuming, and
/// check that the data still gives the same number of batches when it resumes mid-epoch.
pub fn resume_from(
    cp: &Checkpoint,
    net: Net,
    optim: burn::optim::ModuleOptimizer,
    batches: usize,
) -> Result<(Net, burn::optim::ModuleOptimizer, TrainState), RestoreError> {
    let whole = |path: PathBuf, written: u64| {
        read_whole(&path, written).map_err(|e| match e {
            LoadFail::Failed(e) => e,
            LoadFail::Vanished(why) => RestoreError::Checkpoint {
                path,
                message: format!("it was removed or replaced while it was read ({why})"),
            },
        })
    };
    let record =
        burn::store::ModuleRecord::from_bytes(whole(cp.model_path(), cp.state.model_bytes)?)
            .map_err(|e| RestoreError::Checkpoint {
                path: cp.model_path(),
                message: e.to_string(),
            })?;
    let net = net
        .try_load_record(record)
        .map_err(|e| RestoreError::Checkpoint {
            path: cp.model_path(),
            message: e.to_string(),
        })?;
    let optim = if cp.state.weights_only {
        tracing::warn!(
            "checkpoint {} keeps only the weights: the optimizer starts afresh",
            cp.name
        );
        optim
    } else {
        optim
            .from_bytes(whole(cp.optim_path(), cp.state.optim_bytes)?)
            .map_err(|e| RestoreError::Checkpoint {
                path: cp.optim_path(),
                message: e.to_string(),
            })?
    };
    let mut state = cp.state.clone();
    if state.epoch_complete() {
        // The next epoch starts afresh: it may have another batch size (`resume --batch-size`).
        state.batch = batches;
        state.batches_per_epoch = batches;
    } else if cp.state.batches_per_epoch != batches {
        return Err(RestoreError::Checkpoint {
            path: cp.path.clone(),
            message: format!(
                "the data now gives {batches} batches per epoch, the run had {}; resume needs the same data and batch size",
                cp.state.batches_per_epoch
            ),
        });
    }
    Ok((net, optim, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::checkpoint::{MODEL_FILE, OPTIM_FILE};

    /// A run with a small network and a way to write checkpoints of it.
    fn run_with_net() -> (tempfile::TempDir, RunDir, Config, Net) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (run, _lock, _) = RunDir::create(&dir.path().join("r")).expect("create");
        let mut cfg = Config::default();
        cfg.data.image_size = [16, 16];
        run.write_config(&cfg).expect("config");
        run.write_classes(&crate::run::ClassesInfo {
            classes: vec!["a".into(), "b".into()],
            ..crate::run::ClassesInfo::default()
        })
        .expect("classes");
        let net = Net::new(&cfg, 2, 1, &Device::flex()).expect("net");
        (dir, run, cfg, net)
    }

    fn save(run: &RunDir, net: &Net, epoch: usize) {
        let state = TrainState {
            epoch,
            batch: 1,
            batches_per_epoch: 1,
            ..TrainState::default()
        };
        checkpoint::save(&run.checkpoints_path(), &state, |tmp| {
            net.clone()
                .save_file(tmp.join(MODEL_FILE))
                .map_err(|e| e.to_string())?;
            std::fs::write(tmp.join(OPTIM_FILE), b"o").map_err(|e| e.to_string())
        })
        .expect("save");
    }

    #[test]
    fn a_checkpoint_pruned_between_picking_and_reading_is_picked_again() {
        let (_dir, run, cfg, net) = run_with_net();
        save(&run, &net, 1);
        save(&run, &net, 2);
        let mut picked = Vec::new();
        let (cp, note, _) = retrying(
            || pick(&run, None),
            |cp| {
                picked.push(cp.name.clone());
                if picked.len() == 1 {
                    // What a live training with keep_checkpoints = 1 does right then.
                    save(&run, &net, 3);
                    checkpoint::prune(&run.checkpoints_path(), 1).expect("prune");
                }
                weights(&cfg, 2, cp, &Device::flex())
            },
        )
        .expect("the next checkpoint loads");
        assert_eq!(picked, ["epoch-0002", "epoch-0003"]);
        assert_eq!(cp.name, "epoch-0003");
        assert!(
            note.is_none(),
            "a pruned checkpoint is not damaged: {note:?}"
        );
        // The public path does the same.
        let restored = load(&run, None).expect("load");
        assert_eq!(restored.checkpoint.name, "epoch-0003");
    }

    #[test]
    fn checkpoints_that_keep_vanishing_give_up_with_a_message() {
        let (_dir, run, cfg, net) = run_with_net();
        save(&run, &net, 1);
        let mut epoch = 1;
        let Err(err) = retrying(
            || pick(&run, None),
            |cp| {
                epoch += 1;
                save(&run, &net, epoch);
                checkpoint::prune(&run.checkpoints_path(), 1).expect("prune");
                weights(&cfg, 2, cp, &Device::flex())
            },
        ) else {
            panic!("gives up")
        };
        let err = err.to_string();
        assert_eq!(epoch, 1 + LOAD_TRIES);
        assert!(
            err.contains("removed or replaced while it was read")
                && err.contains("try again")
                && err.contains("epoch-0005"),
            "{err}"
        );
    }

    #[test]
    fn epochs_read_as_ranges() {
        assert_eq!(epoch_ranges((1..=15).rev().collect()), "1-15");
        assert_eq!(epoch_ranges(vec![7, 1, 2, 3, 5, 8, 9]), "1-3, 5, 7-9");
        assert_eq!(epoch_ranges(vec![4]), "4");
        assert_eq!(epoch_ranges(Vec::new()), "none");
    }
}
