//! `convscope view RUN`: the TUI on a run, live or finished; on a folder of runs, a listing.

use std::io::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::cli::ViewArgs;
use crate::config::Settings;
use crate::run::RunDir;
use crate::session::{self, ExitCode};

/// Run the command.
pub fn run(args: &ViewArgs) -> Result<ExitCode> {
    if !RunDir::is_run(&args.run)
        && let Some(listing) = list_runs(&args.run)
    {
        let _ = write!(std::io::stdout(), "{listing}");
        return Ok(0);
    }
    let run = RunDir::open(&args.run)?;
    // [ui]: flag > environment > --config / CONVSCOPE_CONFIG > the run's > the user's file.
    let cfg =
        Settings::of_run(run.read_config()?, args.config.clone(), args.overrides()).resolve()?;
    session::watch(&cfg, &run)
}

/// One line about a run for a listing: epochs done of the total, its state, best accuracy.
fn run_line(run: &RunDir) -> String {
    use crate::events::{Event, FinishReason, RunState};
    let events = crate::run::event_log::read_all(&run.events_path())
        .map(|(e, _)| e)
        .unwrap_or_default();
    let total = run.read_config().map(|c| c.train.epochs).ok();
    let done = events
        .iter()
        .filter_map(|e| match e {
            Event::Epoch(m) => Some(m.epoch),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let best = events
        .iter()
        .filter_map(|e| match e {
            Event::Epoch(m) => m.val_accuracy,
            _ => None,
        })
        .fold(None, |b: Option<f32>, a| Some(b.map_or(a, |b| b.max(a))));
    // What the newest session said last, or what a viewer would see of it.
    let session = events
        .iter()
        .rposition(|e| matches!(e, Event::Started(_)))
        .map_or(&events[..], |i| &events[i..]);
    let ended = session.iter().rev().find_map(|e| match e {
        Event::Finished(f) => Some(match f.reason {
            FinishReason::Completed => "finished".to_string(),
            FinishReason::Stopped => f.cause.map_or_else(
                || "stopped".to_string(),
                |c| format!("stopped by {}", c.describe()),
            ),
        }),
        Event::Failed(_) => Some("failed".to_string()),
        _ => None,
    });
    let state = ended.unwrap_or_else(|| {
        if crate::run::control::is_live(&run.socket_path()) {
            let said = session.iter().rev().find_map(|e| match e {
                Event::Status(s) => Some(s.state),
                _ => None,
            });
            match said {
                Some(RunState::Paused) => "paused",
                Some(RunState::Preparing) | None => "preparing",
                _ => "running",
            }
            .to_string()
        } else if events.is_empty() {
            "not started".to_string()
        } else {
            "interrupted".to_string()
        }
    });
    let epochs = total.map_or_else(|| done.to_string(), |t| format!("{done}/{t}"));
    let best = best.map_or_else(String::new, |a| format!("  best val_acc {a:.3}"));
    format!("{epochs:>9} epochs  {state}{best}")
}

/// The runs inside `dir` (a folder of run directories), newest first, or `None` when it holds none.
fn list_runs(dir: &Path) -> Option<String> {
    use std::fmt::Write as _;
    let mut runs: Vec<(std::time::SystemTime, RunDir)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| RunDir::open(&e.path()).ok())
        .map(|r| {
            let modified = std::fs::metadata(r.events_path())
                .or_else(|_| std::fs::metadata(&r.path))
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (modified, r)
        })
        .collect();
    if runs.is_empty() {
        return None;
    }
    runs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.path.cmp(&b.1.path)));
    let width = runs
        .iter()
        .map(|(_, r)| r.path.display().to_string().chars().count())
        .max()
        .unwrap_or(0);
    let mut text = format!(
        "{} is not a run but holds {} run{} (newest first):\n",
        dir.display(),
        runs.len(),
        if runs.len() == 1 { "" } else { "s" }
    );
    for (_, r) in &runs {
        let name = r.path.display().to_string();
        let _ = writeln!(text, "  {name:<width$}  {}", run_line(r));
    }
    let _ = writeln!(
        text,
        "Open one with: convscope view {}",
        runs[0].1.path.display()
    );
    Some(text)
}
