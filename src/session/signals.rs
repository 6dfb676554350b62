//! SIGINT, SIGTERM and SIGHUP: the first asks the trainer to checkpoint and stop; a second
//! SIGINT exits at once (the last complete checkpoint stays intact: checkpoints are renamed
//! into place only when whole).

use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::signals::Signals;

/// Install the handlers; the returned flags say which signal arrived.
pub fn install() -> std::io::Result<Signals> {
    let signals = Signals::default();
    let (stop, which) = signals.flags();
    // Order matters: the conditional shutdown sees the flag set by an earlier SIGINT.
    signal_hook::flag::register_conditional_shutdown(SIGINT, 130, Arc::clone(stop))?;
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register_usize(sig, Arc::clone(which), sig as usize)?;
        signal_hook::flag::register(sig, Arc::clone(stop))?;
    }
    Ok(signals)
}
