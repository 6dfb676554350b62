//! Runs the TUI on a small tokio runtime in front of the training worker.

use crate::config::Config;
use crate::events::{Command, Event, EventReceiver};
use crate::run::RunDir;
use crate::ui::{self, UiExit, UiOptions};

/// Show the run in the terminal until it ends or the user quits; `history` (earlier sessions'
/// events, for a resumed run) is on screen before the first live event.
pub(super) fn run(
    cfg: &Config,
    run: &RunDir,
    history: Vec<Event>,
    events: EventReceiver,
    commands: std::sync::mpsc::Sender<Command>,
    shutdown: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<UiExit> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let options = UiOptions {
        config: cfg.ui.clone(),
        title: format!("convscope · {}", run.path.display()),
        run_dir: run.path.clone(),
        shutdown: Some(shutdown),
        history,
    };
    runtime.block_on(ui::run(options, events, commands))
}
