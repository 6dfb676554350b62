//! The terminal UI. Never imports burn: it sees only the plain data of [`crate::events`].
//!
//! The modules import only from those listed before them:
//!
//! - `vocab` (tabs, phases, slots), `status` (the status line's note), `complete` (path
//!   completion), `compact`, `pacing`, `sixel`, `truecolor`, `bench_data`: leaves;
//! - `keys`: the key table, the Help rows and status hints generated from it;
//! - `record`: the validation record read and analysed for the Validation tab, thumbnails
//!   (jobs that `app` runs off the event loop); `looks`: the Filters tab's "what it looks
//!   for" maximisation job, its cancel flag and progress, and its pictures;
//! - `state`: what the user sees and chose, changed only by `apply` and `update`;
//! - `header`: text about the run shown in more than one place;
//! - `layout`: every area of the screen, from the size and the state;
//! - `pictures`: rasters derived from the state for the layout's boxes;
//! - `graphics`, `picture`: encoding and drawing rasters;
//! - `clicks`: mouse hits through the layout and pictures;
//! - `tabs`, `render`: drawing a frame;
//! - `export`: writing what a tab shows;
//! - `app`: the pieces together and the event loop; `bench`: timing them.

pub mod app;
pub mod bench;
pub mod bench_data;
pub mod clicks;
pub mod compact;
pub mod complete;
pub mod export;
pub mod graphics;
pub mod header;
pub mod keys;
pub mod layout;
pub mod looks;
pub mod pacing;
pub mod picture;
pub mod pictures;
pub mod record;
pub mod render;
pub mod sixel;
pub mod state;
pub mod status;
pub mod tabs;
pub mod truecolor;
pub mod vocab;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::mpsc::Sender;

use crate::config::UiConfig;
use crate::events::{Command, EventReceiver};

pub use app::App;
pub use bench::{TabTiming, bench_render};
pub use vocab::UiExit;

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

/// Run the TUI until the user quits; restores the terminal on every path (panic hook installed
/// before entering the alternate screen, Drop guard).
pub async fn run(
    options: UiOptions,
    events: EventReceiver,
    commands: Sender<Command>,
) -> anyhow::Result<UiExit> {
    app::run(options, events, commands).await
}
