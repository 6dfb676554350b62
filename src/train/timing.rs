//! Where an epoch's wall time goes (the steps, waiting for the data pipeline, validation, the
//! epoch end), and the process's memory after it: collected by the trainer when a
//! [`Breakdown`] is handed to it (`convscope bench --end-to-end` does), so that the time
//! beyond the steps is explained, not guessed.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// One epoch's wall time, split.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EpochTimes {
    pub epoch: usize,
    /// From the epoch's first batch asked for to the end of its epoch-end work.
    pub wall: Duration,
    /// Training steps: forward, loss, backward, optimizer (and the batch event).
    pub steps: Duration,
    /// Waiting for the data pipeline's next training batch.
    pub data_wait: Duration,
    /// The validation pass (its batches, the forward pass, unit health sums, the record).
    pub validation: Duration,
    /// Of `validation`: waiting for the pipeline's validation batches.
    pub validation_data_wait: Duration,
    /// Starting the epoch's checkpoint (the weights copied; a write still under way waited for).
    pub checkpoint: Duration,
    /// The rest of the epoch end: unit health finished and written, the record, the epoch
    /// event, the filter and feature-map snapshots.
    pub epoch_end: Duration,
    /// CPU time of the checkpoint writer thread for the checkpoints that finished during the
    /// epoch (in the background, beside the steps), and how many finished.
    pub writer_cpu: Duration,
    pub written: usize,
    /// Peak and current resident memory after the epoch, MiB (`VmHWM`, `VmRSS`).
    pub memory_mib: Option<(f64, f64)>,
}

impl EpochTimes {
    /// The wall time none of the parts accounts for (commands, checks, events).
    #[must_use]
    pub fn other(&self) -> Duration {
        self.wall.saturating_sub(
            self.steps + self.data_wait + self.validation + self.checkpoint + self.epoch_end,
        )
    }
}

/// The epochs' breakdowns, shared between the trainer (which adds one per finished epoch) and
/// whoever reads them.
#[derive(Debug, Clone, Default)]
pub struct Breakdown(Arc<Mutex<Vec<EpochTimes>>>);

impl Breakdown {
    /// Add a finished epoch's times.
    pub fn push(&self, times: EpochTimes) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(times);
    }

    /// Every epoch's times so far, in order.
    #[must_use]
    pub fn epochs(&self) -> Vec<EpochTimes> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Peak and current resident memory of this process in MiB (`VmHWM`, `VmRSS`).
#[must_use]
pub fn memory_mib() -> Option<(f64, f64)> {
    let [peak, now] = super::memory::status_kib(["VmHWM:", "VmRSS:"])?;
    Some((peak as f64 / 1024.0, now as f64 / 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_is_the_wall_time_no_part_accounts_for() {
        let ms = Duration::from_millis;
        let t = EpochTimes {
            wall: ms(1000),
            steps: ms(600),
            data_wait: ms(50),
            validation: ms(200),
            validation_data_wait: ms(20),
            checkpoint: ms(10),
            epoch_end: ms(40),
            ..EpochTimes::default()
        };
        // validation_data_wait is part of validation, not counted twice.
        assert_eq!(t.other(), ms(100));
        let over = EpochTimes {
            wall: ms(10),
            steps: ms(20),
            ..EpochTimes::default()
        };
        assert_eq!(over.other(), Duration::ZERO);
    }

    #[test]
    fn memory_is_read_from_proc_and_peak_is_at_least_current() {
        let (peak, now) = memory_mib().expect("/proc/self/status has VmHWM and VmRSS");
        assert!(now > 0.0 && peak >= now, "peak {peak} now {now}");
    }

    #[test]
    fn breakdown_is_shared_between_clones() {
        let b = Breakdown::default();
        let c = b.clone();
        c.push(EpochTimes {
            epoch: 3,
            ..EpochTimes::default()
        });
        assert_eq!(b.epochs().len(), 1);
        assert_eq!(b.epochs()[0].epoch, 3);
    }
}
