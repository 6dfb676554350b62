//! Which signal asked the run to stop: the flags that the session's signal handlers set
//! and that the trainer polls between batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Which signal asked the run to stop, if any.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// Set by SIGINT, SIGTERM or SIGHUP; the trainer polls it between batches.
    pub stop: Arc<AtomicBool>,
    which: Arc<AtomicUsize>,
}

impl Signals {
    /// The flags the handlers set: the stop flag, and the number of the signal received.
    pub(crate) fn flags(&self) -> (&Arc<AtomicBool>, &Arc<AtomicUsize>) {
        (&self.stop, &self.which)
    }

    /// The signal received, as its number (0 when none).
    #[must_use]
    pub fn received(&self) -> i32 {
        self.which.load(Ordering::SeqCst) as i32
    }

    /// Conventional exit status for the received signal (128 + number).
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self.received() {
            0 => 0,
            n => 128 + n,
        }
    }

    /// The signal's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self.received() {
            SIGINT => "SIGINT",
            SIGTERM => "SIGTERM",
            SIGHUP => "SIGHUP",
            _ => "signal",
        }
    }
}
