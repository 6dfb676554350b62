//! Training under an address-space limit (`ulimit -v`).
//!
//! Rust aborts the whole process when an allocation fails (`memory allocation of N bytes
//! failed`), and with `unsafe_code` forbidden there is no allocator hook to turn that into an
//! error. So the limit is met before it is hit: a trial step in a child process (same limit,
//! same network, same batch) finds out whether one training step fits at all, before anything
//! is written; and during training the trainer stops with a checkpoint when what is mapped plus
//! one step's growth would no longer fit.

use std::path::Path;

use burn::module::Module as _;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use crate::config::Config;
use crate::model::{self, Net};

/// The process's address-space limit in bytes, if one is set.
#[must_use]
pub fn limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::As).current
}

/// `VmSize` and `VmPeak` of this process, in bytes (from `/proc/self/status`).
#[must_use]
pub fn mapped() -> Option<(u64, u64)> {
    let [size, peak] = status_kib(["VmSize:", "VmPeak:"])?;
    Some((size << 10, peak << 10))
}

/// The `kB` fields `names` (with their colon) of `/proc/self/status`, in KiB.
#[must_use]
pub fn status_kib<const N: usize>(names: [&str; N]) -> Option<[u64; N]> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let values = names.map(field);
    values
        .iter()
        .all(Option::is_some)
        .then(|| values.map(Option::unwrap_or_default))
}

/// What one training step took from the address space, measured by [`trial_step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Trial {
    /// Mapped before the network was built.
    pub before: u64,
    /// The peak mapped during one training step, one validation batch and a weight copy.
    pub peak: u64,
}

impl Trial {
    /// How much one step adds to what is mapped, at most.
    #[must_use]
    pub fn step_growth(&self) -> u64 {
        self.peak.saturating_sub(self.before)
    }
}

/// Build the network of `cfg` for `classes` classes on the CPU, run one training step, one
/// validation forward pass and one copy of the weights (a checkpoint) on a batch of zeros, and
/// report the address space this took. Run in a child process under the parent's limit: when
/// the step does not fit, the child aborts, not the parent.
pub fn trial_step(cfg: &Config, classes: usize) -> Result<Trial, crate::config::ConfigError> {
    let (before, _) = mapped().unwrap_or_default();
    let device = Device::flex().autodiff();
    let net = Net::new(cfg, classes, cfg.train.seed, &device)?;
    let mut optim = crate::model::ops::adam::adam(&cfg.optimizer);
    let [c, h, w] = cfg.input_shape();
    let n = cfg.train.batch_size;
    let labels = vec![0; n];
    let x = Tensor::<4>::from_data(
        TensorData::new(vec![0.0f32; n * c * h * w], [n, c, h, w]),
        &device,
    );
    let logits = net.forward(x, true, false).logits;
    let loss = model::loss(logits, &labels, &device);
    let grads = GradientsParams::from_grads(loss.backward(), &net);
    let net = optim.step(cfg.optimizer.lr, net, grads);
    let eval = net.valid();
    let vd = Device::flex();
    let x = Tensor::<4>::from_data(
        TensorData::new(vec![0.0f32; n * c * h * w], [n, c, h, w]),
        &vd,
    );
    drop(eval.forward(x, false, false).logits.into_data());
    // A checkpoint: the weights and the optimizer state written out, as the trainer does.
    let dir = std::env::temp_dir().join(format!("convscope-memory-trial-{}", std::process::id()));
    let written = std::fs::create_dir_all(&dir)
        .map_err(|e| e.to_string())
        .and_then(|()| super::files_writer(&net, &optim)?(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = written {
        tracing::debug!("memory trial: checkpoint copy skipped: {e}");
    }
    let (_, peak) = mapped().unwrap_or_default();
    Ok(Trial { before, peak })
}

/// Why training does not start or stops under the limit.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error(
        "one training step (batch {batch}, {size} px) does not fit in the virtual memory limit of {limit_mib} MiB (`ulimit -v`): a trial step ran out of memory. Nothing was written. Raise the limit (`ulimit -v unlimited`) or lower --batch-size or --image-size"
    )]
    StepTooBig {
        batch: usize,
        size: String,
        limit_mib: u64,
    },
    #[error(
        "training needs more than the virtual memory limit of {limit_mib} MiB (`ulimit -v`): the data and the network already take {mapped_mib} MiB, and a step takes up to {step_mib} MiB more. Nothing was trained. Raise the limit (`ulimit -v unlimited`) or lower --batch-size or --image-size, then run the same command again"
    )]
    NoRoomToStart {
        limit_mib: u64,
        mapped_mib: u64,
        step_mib: u64,
    },
    #[error(
        "the virtual memory limit of {limit_mib} MiB (`ulimit -v`) is nearly reached ({mapped_mib} MiB mapped, and a step takes up to {step_mib} MiB more): stopped with a checkpoint before running out. Raise the limit (`ulimit -v unlimited`) or lower --batch-size, then go on with: convscope resume {run}"
    )]
    NearLimit {
        limit_mib: u64,
        mapped_mib: u64,
        step_mib: u64,
        run: String,
    },
}

/// Watches what the trainer maps against the limit, batch by batch.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    limit: u64,
    step_growth: u64,
    /// What was mapped after the previous batch, and the most one batch has added to it.
    last: Option<u64>,
    largest_rise: u64,
}

impl Watch {
    /// A watch for `limit` bytes, where one step adds up to `step_growth`.
    #[must_use]
    pub fn new(limit: u64, step_growth: u64) -> Self {
        Self {
            limit,
            step_growth,
            last: None,
            largest_rise: 0,
        }
    }

    /// Before the first step: an error when what is mapped now (the data, the network) plus
    /// one step, with a tenth to spare, would pass the limit.
    pub fn check_start(&self) -> Result<(), MemoryError> {
        let Some((size, _)) = mapped() else {
            return Ok(());
        };
        if fits(size, self.step_growth, self.limit) {
            return Ok(());
        }
        Err(MemoryError::NoRoomToStart {
            limit_mib: self.limit >> 20,
            mapped_mib: size >> 20,
            step_mib: self.step_growth >> 20,
        })
    }

    /// After a batch: an error when what is mapped now, plus the most a batch has added so far
    /// (at least a quarter step: validation and a checkpoint come at an epoch's end), with a
    /// tenth to spare, would pass the limit. What a step frees stays mapped for the next one,
    /// so a steady run maps no more batch after batch.
    pub fn check(&mut self, run: &Path) -> Result<(), MemoryError> {
        let Some((size, _)) = mapped() else {
            return Ok(());
        };
        if let Some(last) = self.last {
            self.largest_rise = self.largest_rise.max(size.saturating_sub(last));
        }
        self.last = Some(size);
        let next = self.largest_rise.max(self.step_growth / 4);
        if fits(size, next, self.limit) {
            return Ok(());
        }
        Err(MemoryError::NearLimit {
            limit_mib: self.limit >> 20,
            mapped_mib: size >> 20,
            step_mib: next >> 20,
            run: crate::run::shell_quote(run),
        })
    }
}

/// Whether `more` bytes, and a tenth of them to spare, fit beside `size` under `limit`.
fn fits(size: u64, more: u64, limit: u64) -> bool {
    size + more + more / 10 <= limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_reads_this_process() {
        let (size, peak) = mapped().expect("/proc/self/status");
        // At least the test binary itself is mapped; the peak is never below the present.
        let exe = std::fs::metadata(std::env::current_exe().expect("exe")).expect("exe");
        assert!(size > exe.len() / 2 && peak >= size, "{size} {peak}");
    }

    #[test]
    fn the_watch_stops_only_when_one_more_step_would_not_fit() {
        let (size, _) = mapped().expect("status");
        let step = 256 << 20;
        let run = Path::new("/runs/my run");
        // Room for a step and a tenth more: start.
        assert!(Watch::new(size + 2 * step, step).check_start().is_ok());
        // Room for less than one step: no start, naming the numbers.
        let err = Watch::new(size + step / 2, step)
            .check_start()
            .expect_err("no room");
        assert!(
            err.to_string().contains("a step takes up to 256 MiB more"),
            "{err}"
        );
        // After a batch, a quarter step (an epoch's end) must still fit.
        assert!(Watch::new(size + step, step).check(run).is_ok());
        let err = Watch::new(size + step / 8, step)
            .check(run)
            .expect_err("near");
        let text = err.to_string();
        assert!(
            text.contains(&format!("limit of {} MiB", (size + step / 8) >> 20))
                && text.contains("a step takes up to 64 MiB more")
                && text.contains("convscope resume '/runs/my run'"),
            "{text}"
        );
    }

    #[test]
    fn a_trial_step_measures_the_step() {
        let mut cfg = Config::default();
        cfg.data.image_size = [32, 32];
        cfg.train.batch_size = 8;
        let trial = trial_step(&cfg, 2).expect("trial");
        // Other tests in this process map and unmap meanwhile, so only the order is certain
        // here; tests/faults_formats.rs runs the trial as training does, in a child.
        assert!(trial.peak >= trial.before && trial.before > 0, "{trial:?}");
    }
}
