//! Opt-in wall-clock totals of the fast ops, so a benchmark can see them inside a training step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

static ENABLED: AtomicBool = AtomicBool::new(false);
static TOTALS: Mutex<Vec<(String, Duration)>> = Mutex::new(Vec::new());

/// Start or stop recording; starting clears earlier totals.
pub fn enable(on: bool) {
    if on {
        TOTALS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
    ENABLED.store(on, Ordering::Relaxed);
}

/// Totals recorded since [`enable`], in first-seen order.
#[must_use]
pub fn totals() -> Vec<(String, Duration)> {
    TOTALS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Run `f`, adding its time to the total called `name()` when recording is on.
pub(crate) fn timed<T>(name: impl FnOnce() -> String, f: impl FnOnce() -> T) -> T {
    if !ENABLED.load(Ordering::Relaxed) {
        return f();
    }
    let start = Instant::now();
    let out = f();
    let elapsed = start.elapsed();
    let name = name();
    let mut totals = TOTALS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(entry) = totals.iter_mut().find(|(n, _)| *n == name) {
        entry.1 += elapsed;
    } else {
        totals.push((name, elapsed));
    }
    out
}
