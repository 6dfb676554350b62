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
use crate::run::{RunDir, RunError, control, event_log::Tail};

/// Why the viewer stopped following a run, or could not load its newest checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Log(#[from] std::io::Error),
    #[error("the viewer cannot load the newest checkpoint: {0}")]
    Checkpoint(restore::RestoreError),
}

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
) -> Result<Option<Loaded>, ViewerError> {
    // Picked again when the live trainer prunes or rewrites the one picked meanwhile.
    match restore::pick_and_load(run, None, cfg, classes, &Device::flex()) {
        Ok((cp, _, net)) => Ok(Some(Loaded {
            net,
            epoch: cp.state.epoch,
            name: cp.name,
        })),
        Err(restore::RestoreError::Run(RunError::NoCheckpoint { .. })) => Ok(None),
        Err(e) => Err(ViewerError::Checkpoint(e)),
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
            events.send(Event::Warning(WarningInfo {
                message: e.to_string(),
            }));
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
fn open_tail(run: &RunDir) -> Result<Option<Tail>, RunError> {
    match Tail::open(&run.events_path()) {
        Ok(t) => Ok(Some(t)),
        Err(RunError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Follow `run` until the observer goes: replay and tail its log, draw its network from the
/// newest checkpoint, say what only a viewer can see of its state, and serve `commands`.
fn follow(
    run: &RunDir,
    events: &EventSender,
    commands: &Receiver<Command>,
) -> Result<(), ViewerError> {
    let mut follower = Follower::new(run, events)?;
    loop {
        let Some(new_checkpoint) = follower.read_log()? else {
            return Ok(());
        };
        let live = control::is_live(&follower.socket);
        let first = follower.open_network(live);
        follower.show_network(new_checkpoint, first);
        follower.show_state(live);
        match commands.recv_timeout(Duration::from_millis(200)) {
            Ok(cmd) => {
                let mut queued = vec![cmd];
                queued.extend(commands.try_iter());
                for cmd in crate::events::coalesce(queued) {
                    for e in handle(cmd, &follower.socket, follower.network.as_mut()) {
                        events.send(e);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

/// What the viewer knows of the run it follows.
struct Follower<'a> {
    run: &'a RunDir,
    events: &'a EventSender,
    cfg: crate::config::Config,
    socket: PathBuf,
    /// `events.jsonl`, once it exists.
    tail: Option<Tail>,
    network: Option<Network>,
    /// Classes and first probe of the run's first `started` event.
    started: Option<(Vec<String>, Option<PathBuf>)>,
    classes_problem_shown: bool,
    ended: bool,
    last_event: Instant,
    shown_state: Option<RunState>,
    trainer_state: Option<RunState>,
    /// Whether the run's unit health (`RUN/health/`) was read once.
    health_read: bool,
}

impl<'a> Follower<'a> {
    fn new(run: &'a RunDir, events: &'a EventSender) -> Result<Self, ViewerError> {
        let cfg = run.read_config()?;
        // A live run may not have written events.jsonl and classes.json yet (the trainer
        // writes them after scanning the data, which takes a while for a large folder): both
        // are waited for, never taken as a failure.
        let tail = open_tail(run)?;
        Ok(Self {
            run,
            events,
            cfg,
            socket: run.socket_path(),
            tail,
            network: None,
            started: None,
            classes_problem_shown: false,
            ended: false,
            last_event: Instant::now(),
            shown_state: None,
            trainer_state: None,
            health_read: false,
        })
    }

    /// Forward the log's new events; whether one was a checkpoint, `None` when the observer
    /// is gone.
    fn read_log(&mut self) -> Result<Option<bool>, ViewerError> {
        if self.tail.is_none() {
            self.tail = open_tail(self.run)?;
        }
        let batch = match &mut self.tail {
            Some(t) => t.poll()?,
            None => Vec::new(),
        };
        if !batch.is_empty() {
            self.last_event = Instant::now();
        }
        let mut new_checkpoint = false;
        // The trainer writes an epoch's unit health before its `epoch` event.
        let mut new_health = !self.health_read && !batch.is_empty();
        for mut e in batch {
            if let Event::Started(s) = &mut e {
                s.locate_probe_images(&self.run.path);
            }
            match &e {
                Event::Checkpoint(_) => new_checkpoint = true,
                Event::Epoch(_) => new_health = true,
                Event::Finished(_) | Event::Failed(_) => self.ended = true,
                Event::Status(s) => self.trainer_state = Some(s.state),
                Event::Started(s) if self.started.is_none() => {
                    self.started = Some((s.classes.clone(), s.probe_images.first().cloned()));
                }
                _ => {}
            }
            if !self.events.send(e) {
                return Ok(None);
            }
        }
        if new_health {
            self.health_read = true;
            if let Some(h) = crate::run::health::snapshot(&self.run.path, None)
                && !self.events.send(Event::Health(Box::new(h)))
            {
                return Ok(None);
            }
        }
        Ok(Some(new_checkpoint))
    }

    /// Make the network once the run's classes are known; whether it was made now.
    fn open_network(&mut self, live: bool) -> bool {
        if self.network.is_some() {
            return false;
        }
        // The trainer's `started` event names the classes and the image it probes first; a
        // run that ended without one (an older log) has at least its classes.json.
        let ready = match &self.started {
            Some((classes, probe)) => Some((classes.clone(), probe.clone())),
            None if !live || self.ended => match self.run.read_classes() {
                Ok(c) => Some((c.classes, sample_probe(self.run))),
                Err(e) => {
                    if !self.classes_problem_shown {
                        self.classes_problem_shown = true;
                        self.events.send(Event::Warning(WarningInfo {
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
        let Some((classes, probe)) = ready else {
            return false;
        };
        self.network = Some(Network::new(
            self.run,
            &self.cfg,
            &classes,
            probe,
            self.events,
        ));
        true
    }

    /// Load a new checkpoint, and send the pictures of a new or first network and of a probe
    /// image read meanwhile.
    fn show_network(&mut self, new_checkpoint: bool, first: bool) {
        let Some(n) = &mut self.network else {
            return;
        };
        let events = self.events;
        if new_checkpoint && !first {
            match load_newest(self.run, &self.cfg, n.classes) {
                Ok(l) => n.loaded = l,
                Err(e) => {
                    events.send(Event::Warning(WarningInfo {
                        message: e.to_string(),
                    }));
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

    /// Say the run's state as only a viewer can see it, when it changes.
    fn show_state(&mut self, live: bool) {
        let state = seen_state(
            self.ended,
            live,
            self.last_event.elapsed(),
            self.trainer_state,
        );
        if state == self.shown_state {
            return;
        }
        if let Some(s) = state {
            self.events.send(Event::Status(StatusChange { state: s }));
            if s == RunState::Interrupted {
                self.events.send(Event::Warning(WarningInfo {
                    message: format!(
                        "the run is not running; continue it with: convscope resume {}",
                        crate::run::shell_quote(&self.run.path)
                    ),
                }));
            }
        } else if self.shown_state == Some(RunState::Stalled) {
            self.events.send(Event::Status(StatusChange {
                state: RunState::Running,
            }));
        }
        self.shown_state = state;
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
            Command::Probe { .. }
            | Command::RefreshFilters
            | Command::SelectEpoch { .. }
            | Command::Explain { .. }
            | Command::Compare { .. } => warn(
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
        Command::Explain { cam } => match loaded {
            Some(l) => inspector.explain(&l.net, l.epoch, cam),
            // Kept for the maps that come with the first checkpoint.
            None => inspector.explain_later(cam),
        },
        Command::Compare { image } => match loaded {
            Some(l) => inspector.compare(&l.net, l.epoch, image),
            // Kept for the maps that come with the first checkpoint.
            None => inspector.compare_later(image),
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
