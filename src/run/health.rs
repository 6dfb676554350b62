//! Unit health per epoch in the run directory: `RUN/health/epoch-NNNN.json`, one small JSON
//! file per validated epoch ([`EpochHealth`]), written atomically (a re-run epoch overwrites
//! its own file) and kept across resume.

use std::path::{Path, PathBuf};

use crate::events::health::{EpochHealth, HealthSnapshot};
use crate::run::{RunError, io_err, read_small, write_atomic};

/// The folder of the health files inside a run directory.
pub const DIR: &str = "health";

/// The folder of the health files of the run at `run`.
#[must_use]
pub fn dir(run: &Path) -> PathBuf {
    run.join(DIR)
}

/// The file of one epoch.
#[must_use]
pub fn epoch_path(run: &Path, epoch: usize) -> PathBuf {
    dir(run).join(format!("epoch-{epoch:04}.json"))
}

/// Write one epoch's health.
pub fn write(run: &Path, health: &EpochHealth) -> Result<(), RunError> {
    let folder = dir(run);
    std::fs::create_dir_all(&folder).map_err(io_err(&folder))?;
    let path = epoch_path(run, health.epoch);
    let text = serde_json::to_vec(health).map_err(|e| RunError::Corrupt {
        path: path.clone(),
        message: format!("cannot encode the unit health: {e}"),
    })?;
    write_atomic(&path, &text)
}

/// Read one epoch's health.
pub fn read(run: &Path, epoch: usize) -> Result<EpochHealth, RunError> {
    let path = epoch_path(run, epoch);
    let text = read_small(&path)?;
    serde_json::from_str(&text).map_err(|e| RunError::Corrupt {
        path,
        message: format!(
            "not a unit health file ({e}); remove it, the epoch's health is then not shown"
        ),
    })
}

/// The epochs with a health file, in order.
#[must_use]
pub fn epochs(run: &Path) -> Vec<usize> {
    super::numbered_epochs(&dir(run), ".json")
}

/// The snapshot of every recorded epoch up to `up_to` (all when `None`): the newest in full,
/// the earlier ones as a trend. Unreadable files are left out; `None` when nothing is there.
#[must_use]
pub fn snapshot(run: &Path, up_to: Option<usize>) -> Option<HealthSnapshot> {
    let mut snap = HealthSnapshot::default();
    for e in epochs(run)
        .into_iter()
        .filter(|&e| up_to.is_none_or(|u| e <= u))
    {
        match read(run, e) {
            Ok(h) => snap.push(h),
            Err(err) => tracing::warn!("{err}"),
        }
    }
    (!snap.epochs.is_empty()).then_some(snap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::health::{HISTOGRAM_BINS, LayerHealth};

    fn epoch(e: usize, dead: f64) -> EpochHealth {
        EpochHealth {
            epoch: e,
            images: 10,
            layers: vec![LayerHealth {
                name: "conv2d".into(),
                units: 2,
                dead_pct: dead,
                dormant_pct: 0.0,
                always_on_pct: 0.0,
                on_rate_histogram: [0; HISTOGRAM_BINS],
                weight_rule: String::new(),
                channels: Vec::new(),
                top: Vec::new(),
                class_means: Vec::new(),
            }],
            output_saturated_pct: 1.5,
        }
    }

    #[test]
    fn epochs_round_trip_and_the_snapshot_keeps_the_trend() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (e, dead) in [(2, 50.0), (1, 0.0), (3, 100.0)] {
            write(dir.path(), &epoch(e, dead)).expect("write");
        }
        assert_eq!(epochs(dir.path()), [1, 2, 3]);
        assert_eq!(read(dir.path(), 2).expect("read"), epoch(2, 50.0));
        let snap = snapshot(dir.path(), Some(2)).expect("some");
        assert_eq!(snap.dead_trend("conv2d"), [0.0, 50.0]);
        assert_eq!(snap.latest().map(|h| h.epoch), Some(2));
        std::fs::write(epoch_path(dir.path(), 4), "{").expect("write");
        assert!(read(dir.path(), 4).is_err());
        assert_eq!(snapshot(dir.path(), None).expect("some").epochs.len(), 3);
        assert!(snapshot(&dir.path().join("none"), None).is_none());
    }
}
