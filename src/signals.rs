//! SIGINT, SIGTERM and SIGHUP: the first asks the trainer to checkpoint and stop; a second
//! SIGINT exits at once (the last complete checkpoint stays intact: checkpoints are renamed
//! into place only when whole).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Which signal asked the run to stop, if any.
#[derive(Debug, Clone)]
pub struct Signals {
    /// Set by any of the three signals; the trainer polls it between batches.
    pub stop: Arc<AtomicBool>,
    which: Arc<AtomicUsize>,
}

impl Signals {
    /// Install the handlers.
    pub fn install() -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let which = Arc::new(AtomicUsize::new(0));
        // Order matters: the conditional shutdown sees the flag set by an earlier SIGINT.
        signal_hook::flag::register_conditional_shutdown(SIGINT, 130, Arc::clone(&stop))?;
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal_hook::flag::register_usize(sig, Arc::clone(&which), sig as usize)?;
            signal_hook::flag::register(sig, Arc::clone(&stop))?;
        }
        Ok(Self { stop, which })
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

impl crate::train::Interrupt for Signals {
    fn requested(&self) -> Option<i32> {
        self.stop.load(Ordering::SeqCst).then(|| self.received())
    }
}
