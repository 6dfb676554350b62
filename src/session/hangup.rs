//! Leave for sure after SIGHUP / SIGTERM while the TUI is up.
//!
//! When the terminal hangs up, crossterm's input reader can spin inside a single poll and never
//! return to the UI loop, so the UI cannot notice the signal itself. This watcher waits until a
//! signal arrived and the training worker (if any) has written its checkpoint and ended, gives
//! the UI a moment to leave normally, then ends the process with the signal's exit status.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::signals::Signals;

/// Start the watcher; `worker_done` is set when there is no (more) work to wait for.
pub(super) fn watch(signals: Signals, worker_done: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("hangup".into())
        .spawn(move || {
            while !signals.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
            while !worker_done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
            std::thread::sleep(Duration::from_secs(2));
            tracing::warn!(
                "{} received and the screen did not close in time: leaving",
                signals.name()
            );
            std::process::exit(signals.exit_code());
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the hangup watcher: {e}");
    }
}
