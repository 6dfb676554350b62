//! Hands the event stream to the TUI (until the TUI lands: to the headless printer).

use crate::config::Config;
use crate::events::{Command, EventReceiver};
use crate::headless::{self, Ending};
use crate::run::RunDir;

/// Show the run in the terminal until it ends or the user quits.
#[allow(clippy::unnecessary_wraps)] // the TUI's own loop returns errors
pub fn run(
    _cfg: &Config,
    _run: &RunDir,
    events: EventReceiver,
    commands: std::sync::mpsc::Sender<Command>,
) -> anyhow::Result<Ending> {
    drop(commands);
    Ok(headless::print_events(events))
}
