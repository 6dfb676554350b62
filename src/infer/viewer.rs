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
            // The viewer's own trouble says nothing about the run: a warning, never `failed`.
            if let Err(e) = follow(&run, &events, &commands) {
                tracing::error!("viewer: {e}");
                events.send(Event::Warning(WarningInfo {
                    message: format!("the viewer stopped following the run: {e}"),
                }));
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

/// A bundled sample photo, the probe of a run whose log has no `started` event.
fn sample_probe(run: &RunDir) -> Option<PathBuf> {
    std::fs::read_dir(run.samples_path())
        .ok()
        .and_then(|d| d.flatten().map(|e| e.path()).min())
}

/// What the viewer needs to draw the network, made once the trainer has read its data.
struct Network {
    classes: usize,
    inspector: inspect::Inspector,
    loaded: Option<Loaded>,
}

impl Network {
    /// The network of `run` with these classes; a checkpoint that does not load is a warning.
    fn new(
        run: &RunDir,
        cfg: &crate::config::Config,
        classes: &[String],
        probe: Option<PathBuf>,
        events: &EventSender,
    ) -> Self {
        let loaded = load_newest(run, cfg, classes.len()).unwrap_or_else(|e| {
            events.send(Event::Warning(WarningInfo { message: e }));
            None
        });
        Self {
            classes: classes.len(),
            inspector: inspect::Inspector::new(cfg, classes, run, probe),
            loaded,
        }
    }
}

/// Open `events.jsonl` once it exists (a trainer just started creates it a moment later).
fn open_tail(run: &RunDir) -> Result<Option<Tail>, String> {
    match Tail::open(&run.events_path()) {
        Ok(t) => Ok(Some(t)),
        Err(crate::run::RunError::Io { error, .. })
            if error.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(None)
        }
        Err(e) => Err(e.to_string()),
    }
}

fn follow(run: &RunDir, events: &EventSender, commands: &Receiver<Command>) -> Result<(), String> {
    let cfg = run.read_config().map_err(|e| e.to_string())?;
    let socket = run.socket_path();
    // A live run may not have written events.jsonl and classes.json yet (the trainer writes
    // them after scanning the data, which takes a while for a large folder): both are waited
    // for, never taken as a failure.
    let mut tail = open_tail(run)?;
    let mut network: Option<Network> = None;
    // Classes and first probe of the run's first `started` event.
    let mut started: Option<(Vec<String>, Option<PathBuf>)> = None;
    let mut classes_problem_shown = false;
    let mut ended = false;
    let mut last_event = Instant::now();
    let mut shown_state: Option<RunState> = None;
    let mut trainer_state: Option<RunState> = None;
    loop {
        if tail.is_none() {
            tail = open_tail(run)?;
        }
        let batch = match &mut tail {
            Some(t) => t.poll().map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        if !batch.is_empty() {
            last_event = Instant::now();
        }
        let mut new_checkpoint = false;
        for e in batch {
            match &e {
                Event::Checkpoint(_) => new_checkpoint = true,
                Event::Finished(_) | Event::Failed(_) => ended = true,
                Event::Status(s) => trainer_state = Some(s.state),
                Event::Started(s) if started.is_none() => {
                    started = Some((s.classes.clone(), s.probe_images.first().cloned()));
                }
                _ => {}
            }
            if !events.send(e) {
                return Ok(());
            }
        }
        let live = control::is_live(&socket);
        let mut first = false;
        if network.is_none() {
            // The trainer's `started` event names the classes and the image it probes first; a
            // run that ended without one (an older log) has at least its classes.json.
            let ready = match &started {
                Some((classes, probe)) => Some((classes.clone(), probe.clone())),
                None if !live || ended => match run.read_classes() {
                    Ok(c) => Some((c.classes, sample_probe(run))),
                    Err(e) => {
                        if !classes_problem_shown {
                            classes_problem_shown = true;
                            events.send(Event::Warning(WarningInfo {
                                message: format!(
                                    "no filters or feature maps: the run stopped before it had read its data ({e})"
                                ),
                            }));
                        }
                        None
                    }
                },
                None => None,
            };
            if let Some((classes, probe)) = ready {
                network = Some(Network::new(run, &cfg, &classes, probe, events));
                first = true;
            }
        }
        if let Some(n) = &mut network {
            if new_checkpoint && !first {
                match load_newest(run, &cfg, n.classes) {
                    Ok(l) => n.loaded = l,
                    Err(e) => {
                        events.send(Event::Warning(WarningInfo { message: e }));
                    }
                }
            }
            if (new_checkpoint || first)
                && let Some(l) = &n.loaded
            {
                // The first pictures are what the user came for: not held back like a new epoch's.
                let pictures = if first {
                    n.inspector.snapshots(&l.net, l.epoch)
                } else {
                    n.inspector.on_epoch_end(&l.net, l.epoch)
                };
                for e in pictures {
                    events.send(e);
                }
            }
            // A probe image read meanwhile (reading it never holds up the viewer).
            if let Some(l) = &n.loaded {
                for e in n.inspector.poll(&l.net, l.epoch, Duration::ZERO) {
                    events.send(e);
                }
            }
        }
        // The run's state as only a viewer can see it.
        let state = seen_state(ended, live, last_event.elapsed(), trainer_state);
        if state != shown_state {
            if let Some(s) = state {
                events.send(Event::Status(StatusChange { state: s }));
                if s == RunState::Interrupted {
                    events.send(Event::Warning(WarningInfo {
                        message: format!(
                            "the run is not running; continue it with: convscope resume {}",
                            crate::run::shell_quote(&run.path)
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
                    for e in handle(cmd, &socket, network.as_mut()) {
                        events.send(e);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

fn handle(cmd: Command, socket: &std::path::Path, network: Option<&mut Network>) -> Vec<Event> {
    let warn = |message: String| vec![Event::Warning(WarningInfo { message })];
    let Some(network) = network else {
        return match cmd {
            Command::Pause | Command::Resume | Command::Stop | Command::CheckpointNow => {
                match control::send(socket, &cmd) {
                    Ok(()) => Vec::new(),
                    Err(e) => warn(e.to_string()),
                }
            }
            Command::Probe { .. } | Command::RefreshFilters | Command::SelectEpoch { .. } => warn(
                "the run is still reading its data: filters and feature maps come after it".into(),
            ),
        };
    };
    let loaded = network.loaded.as_ref();
    let inspector = &mut network.inspector;
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
