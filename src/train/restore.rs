//! Load a run's network from one of its checkpoints: for predict, export and the viewer, and
//! with the optimizer and training state for resuming.

use burn::module::Module as _;
use burn::tensor::Device;

use super::TrainError;
use crate::config::Config;
use crate::model::Net;
use crate::run::RunDir;
use crate::run::checkpoint::{self, Checkpoint, TrainState};

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
) -> Result<(Checkpoint, Option<String>), TrainError> {
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
                .ok_or_else(|| TrainError::Checkpoint {
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
pub fn load(run: &RunDir, epoch: Option<usize>) -> Result<Restored, TrainError> {
    let cfg = run.read_config()?;
    let classes = run.read_classes()?.classes;
    let (checkpoint, note) = pick(run, epoch)?;
    let net = load_weights(&cfg, classes.len(), &checkpoint, &Device::flex())?;
    Ok(Restored {
        cfg,
        classes,
        checkpoint,
        note,
        net,
    })
}

/// Build the configured network and apply a checkpoint's weights.
pub fn load_weights(
    cfg: &Config,
    classes: usize,
    cp: &Checkpoint,
    device: &Device,
) -> Result<Net, TrainError> {
    let net = Net::new(cfg, classes, 0, device)?;
    let path = cp.model_path();
    let record = burn::store::ModuleRecord::load(&path).map_err(|e| TrainError::Checkpoint {
        path: path.clone(),
        message: format!("cannot read the weights ({e}); the file is damaged"),
    })?;
    net.try_load_record(record)
        .map_err(|e| TrainError::Checkpoint {
            path,
            message: format!("the weights do not fit the run's network ({e})"),
        })
}

/// Load the network, the optimizer state and the training state of `cp` for resuming, and
/// check that the data still gives the same number of batches when it resumes mid-epoch.
pub(super) fn resume_from(
    cp: &Checkpoint,
    net: Net,
    optim: burn::optim::ModuleOptimizer,
    batches: usize,
) -> Result<(Net, burn::optim::ModuleOptimizer, TrainState), TrainError> {
    let record =
        burn::store::ModuleRecord::load(cp.model_path()).map_err(|e| TrainError::Checkpoint {
            path: cp.model_path(),
            message: e.to_string(),
        })?;
    let net = net
        .try_load_record(record)
        .map_err(|e| TrainError::Checkpoint {
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
            .load(cp.optim_path())
            .map_err(|e| TrainError::Checkpoint {
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
        return Err(TrainError::Checkpoint {
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
    use super::epoch_ranges;

    #[test]
    fn epochs_read_as_ranges() {
        assert_eq!(epoch_ranges((1..=15).rev().collect()), "1-15");
        assert_eq!(epoch_ranges(vec![7, 1, 2, 3, 5, 8, 9]), "1-3, 5, 7-9");
        assert_eq!(epoch_ranges(vec![4]), "4");
        assert_eq!(epoch_ranges(Vec::new()), "none");
    }
}
