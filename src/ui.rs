//! The terminal UI: state, keys, tabs and the event loop. Never imports burn: it sees only the
//! plain data of [`crate::events`].

pub mod app;
pub mod bench;
pub mod compact;
pub mod export;
pub mod fixtures;
pub mod graphics;
pub mod keys;
pub mod pacing;
pub mod picture;
pub mod pictures;
pub mod render;
pub mod sixel;
pub mod state;
pub mod tabs;
pub mod truecolor;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::mpsc::Sender;

use crate::config::UiConfig;
use crate::events::{Command, EventReceiver};

pub use bench::{TabTiming, bench_render};

/// What the TUI needs besides the event stream.
#[derive(Debug, Clone)]
pub struct UiOptions {
    pub config: UiConfig,
    pub title: String,
    pub run_dir: PathBuf,
    /// Set by a signal (SIGTERM, SIGHUP): leave at the next frame; the worker checkpoints.
    pub shutdown: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Events of the run's earlier sessions (a resumed run's events.jsonl), applied before the
    /// live ones so that its curves and epoch table start at epoch 1.
    pub history: Vec<crate::events::Event>,
}

/// How the TUI ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiExit {
    /// The run had finished (or failed) and the user quit.
    Finished,
    /// The user chose to stop the run; it stopped and wrote its checkpoint.
    QuitStopped,
    /// The user left while the run kept going (detach, or a second Ctrl-C while stopping).
    QuitWhileRunning,
}

/// Run the TUI until the user quits; restores the terminal on every path (panic hook installed
/// before entering the alternate screen, Drop guard).
pub async fn run(
    options: UiOptions,
    events: EventReceiver,
    commands: Sender<Command>,
) -> anyhow::Result<UiExit> {
    app::run(options, events, commands).await
}
