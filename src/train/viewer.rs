//! The viewer's worker: follows a run directory (live or finished) instead of training.
//!
//! It replays and tails `events.jsonl`, loads the newest checkpoint to compute filters and
//! feature maps, and forwards pause / resume / stop / checkpoint-now to the live run's control
//! socket. The TUI in front of it cannot tell it from a trainer.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use burn::tensor::Device;

use super::{inspect, restore};
use crate::events::{Command, Event, EventSender, RunState, StatusChange, WarningInfo};
use crate::model::Net;
use crate::run::{RunDir, control, event_log::Tail};

/// No event for this long from a live process: the run is shown as stalled.
const STALL_AFTER: Duration = Duration::from_mins(1);

/// The run's state as only a viewer can see it, if it differs from what the trainer said:
/// interrupted when its process is gone without a final event, stalled when it is alive but
/// has been quiet for [`STALL_AFTER`] while it said it was running. Paused, tuning GPU kernels,
/// preparing the data or writing the stop checkpoint are quiet by nature, however long.
fn seen_state(
    ended: bool,
    live: bool,
    quiet: Duration,
    said: Option<RunState>,
) -> Option<RunState> {
    if ended {
        None
    } else if !live {
        Some(RunState::Interrupted)
    } else if quiet > STALL_AFTER && matches!(said, None | Some(RunState::Running)) {
        Some(RunState::Stalled)
    } else {
        None
    }
}

/// Start the viewer thread for `run`.
pub fn spawn(
    run: RunDir,
    events: EventSender,
    commands: Receiver<Command>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("viewer".into())
        .spawn(move || {
            if let Err(e) = follow(&run, &events, &commands) {
                tracing::error!("viewer: {e}");
                events.send(Event::Failed(crate::events::FailInfo { error: e }));
            }
        })
}

struct Loaded {
    net: Net,
    epoch: usize,
    name: String,
}

fn load_newest(
    run: &RunDir,
    cfg: &crate::config::Config,
    classes: usize,
) -> Result<Option<Loaded>, String> {
    // Picked again when the live trainer prunes or rewrites the one picked meanwhile.
    match restore::pick_and_load(run, None, cfg, classes, &Device::flex()) {
        Ok((cp, _, net)) => Ok(Some(Loaded {
            net,
            epoch: cp.state.epoch,
            name: cp.name,
        })),
        Err(super::TrainError::Run(crate::run::RunError::NoCheckpoint { .. })) => Ok(None),
        Err(e) => Err(format!("the viewer cannot load the newest checkpoint: {e}")),
    }
}

/// The image the trainer probes first (its first `started` event says), else a bundled sample.
fn first_probe(run: &RunDir) -> Option<PathBuf> {
    let chosen = std::fs::File::open(run.events_path()).ok().and_then(|f| {
        std::io::BufRead::lines(std::io::BufReader::new(f))
            .take(8)
            .map_while(Result::ok)
            .filter_map(|line| serde_json::from_str::<Event>(&line).ok())
            .find_map(|e| match e {
                Event::Started(s) => s.probe_images.first().cloned(),
                _ => None,
            })
    });
    chosen.or_else(|| {
        std::fs::read_dir(run.samples_path())
            .ok()
            .and_then(|d| d.flatten().map(|e| e.path()).min())
    })
}

fn follow(run: &RunDir, events: &EventSender, commands: &Receiver<Command>) -> Result<(), String> {
    let cfg = run.read_config().map_err(|e| e.to_string())?;
    let classes = run.read_classes().map_err(|e| e.to_string())?.classes;
    let socket = run.socket_path();
    let mut tail = Tail::open(&run.events_path()).map_err(|e| e.to_string())?;
    // The viewer's own trouble with a checkpoint is a warning, not the run's failure.
    let mut loaded = load_newest(run, &cfg, classes.len()).unwrap_or_else(|message| {
        events.send(Event::Warning(WarningInfo { message }));
        None
    });
    let mut inspector = inspect::Inspector::new(&cfg, &classes, run, first_probe(run));
    let mut ended = false;
    let mut last_event = Instant::now();
    let mut shown_state: Option<RunState> = None;
    let mut trainer_state: Option<RunState> = None;
    let mut first = true;
    loop {
        let batch = tail.poll().map_err(|e| e.to_string())?;
        if !batch.is_empty() {
            last_event = Instant::now();
        }
        let mut new_checkpoint = false;
        for e in batch {
            match &e {
                Event::Checkpoint(_) => new_checkpoint = true,
                Event::Finished(_) | Event::Failed(_) => ended = true,
                Event::Status(s) => trainer_state = Some(s.state),
                _ => {}
            }
            if !events.send(e) {
                return Ok(());
            }
        }
        if new_checkpoint {
            match load_newest(run, &cfg, classes.len()) {
                Ok(l) => loaded = l,
                Err(e) => {
                    events.send(Event::Warning(WarningInfo { message: e }));
                }
            }
        }
        if (new_checkpoint || first)
            && let Some(l) = &loaded
        {
            // The first pictures are what the user came for: not held back like a new epoch's.
            let pictures = if first {
                inspector.snapshots(&l.net, l.epoch)
            } else {
                inspector.on_epoch_end(&l.net, l.epoch)
            };
            for e in pictures {
                events.send(e);
            }
        }
        first = false;
        if let Some(l) = &loaded {
            for e in inspector.poll(&l.net, l.epoch, Duration::ZERO) {
                events.send(e);
            }
        }
        // The run's state as only a viewer can see it.
        let state = seen_state(
            ended,
            control::is_live(&socket),
            last_event.elapsed(),
            trainer_state,
        );
        if state != shown_state {
            if let Some(s) = state {
                events.send(Event::Status(StatusChange { state: s }));
                if s == RunState::Interrupted {
                    events.send(Event::Warning(WarningInfo {
                        message: format!(
                            "the run is not running; continue it with: convscope resume {}",
                            run.path.display()
                        ),
                    }));
                }
            } else if shown_state == Some(RunState::Stalled) {
                events.send(Event::Status(StatusChange {
                    state: RunState::Running,
                }));
            }
            shown_state = state;
        }
        match commands.recv_timeout(Duration::from_millis(200)) {
            Ok(cmd) => {
                let mut queued = vec![cmd];
                queued.extend(commands.try_iter());
                for cmd in crate::events::coalesce(queued) {
                    for e in handle(cmd, &socket, loaded.as_ref(), &mut inspector) {
                        events.send(e);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

fn handle(
    cmd: Command,
    socket: &std::path::Path,
    loaded: Option<&Loaded>,
    inspector: &mut inspect::Inspector,
) -> Vec<Event> {
    let warn = |message: String| vec![Event::Warning(WarningInfo { message })];
    match cmd {
        Command::Pause | Command::Resume | Command::Stop | Command::CheckpointNow => {
            match control::send(socket, &cmd) {
                Ok(()) => Vec::new(),
                Err(e) => warn(e.to_string()),
            }
        }
        Command::Probe { image } => match loaded {
            Some(_) => {
                // Read off this thread; the maps come from the next poll.
                inspector.probe(image);
                Vec::new()
            }
            None => warn("no checkpoint yet: feature maps appear after the first epoch".into()),
        },
        Command::RefreshFilters => loaded.map_or_else(Vec::new, |l| {
            tracing::debug!("refresh from {}", l.name);
            inspector.snapshots(&l.net, l.epoch)
        }),
        Command::SelectEpoch { epoch } => match loaded {
            Some(l) => inspector.select_epoch(&l.net, l.epoch, epoch),
            None => warn("no checkpoint yet".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_quiet_running_run_is_stalled() {
        let long = STALL_AFTER + Duration::from_secs(1);
        let short = Duration::from_secs(1);
        assert_eq!(seen_state(false, true, long, None), Some(RunState::Stalled));
        assert_eq!(
            seen_state(false, true, long, Some(RunState::Running)),
            Some(RunState::Stalled)
        );
        assert_eq!(
            seen_state(false, true, short, Some(RunState::Running)),
            None
        );
        for quiet in [
            RunState::Paused,
            RunState::Tuning,
            RunState::Preparing,
            RunState::Stopping,
        ] {
            assert_eq!(
                seen_state(false, true, long, Some(quiet)),
                None,
                "{quiet:?}"
            );
        }
        // A dead process is interrupted whatever it said last; an ended run is neither.
        assert_eq!(
            seen_state(false, false, short, Some(RunState::Paused)),
            Some(RunState::Interrupted)
        );
        assert_eq!(seen_state(true, false, long, None), None);
    }
}
