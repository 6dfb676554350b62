//! A session: one process training a run (new or resumed) with a screen, headless or in the
//! background, or watching one. It owns what lives as long as the process: logging, the
//! signal handlers, the control socket, the trainer and the screen, and the report at the end.
//!
//! The subcommands only map their arguments onto a [`SessionSpec`] and call [`run`]; a
//! detached session returns [`Ended::Detached`] and its caller decides whether to attach a
//! viewer ([`watch`]).

mod background;
mod hangup;
pub mod headless;
pub mod memory;
pub mod signals;
mod tui_bridge;

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, bail};

use crate::config::{Config, Overrides, Settings};
use crate::events::{Command, Event, EventReceiver, StopCause};
use crate::run::checkpoint::{self, Checkpoint};
use crate::run::{Found, RunDir, RunError, RunLock, RunSource, shell_quote};
use crate::signals::Signals;
use crate::train::{self, Job};
use crate::ui::UiExit;
use headless::Ending;

/// Exit status of a command (0 success).
pub type ExitCode = i32;

/// Where a new run's images come from.
#[derive(Debug, Clone)]
pub enum Data {
    /// An image folder (one sub-folder per class), and maybe a validation folder like it.
    Folder { data: PathBuf, val: Option<PathBuf> },
    /// A synthetic dataset of this many images per class, written into the run (the demo).
    Synthetic { per_class: usize },
}

/// What a session trains.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "made once per process, from the command line"
)]
pub enum Start {
    /// A new run on `data` in `run` (default: a new folder under `runs/`).
    New {
        settings: Settings,
        data: Data,
        run: Option<PathBuf>,
    },
    /// Continue the run at `run`, its own settings changed by `overrides`.
    Resume { run: PathBuf, overrides: Overrides },
}

/// How the training is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// The TUI on a terminal, else plain progress on stdout.
    Auto,
    /// Plain progress on stdout.
    Headless,
    /// A background process of its own session trains; this one returns at once.
    Detach,
}

/// Everything a training session needs to know from the command line.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub start: Start,
    pub screen: Screen,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// With this exit status.
    Exit(ExitCode),
    /// Handed to a background process training the run at this path.
    Detached(PathBuf),
}

/// A training session ready to start: the run locked, its settings and device resolved.
struct Prepared {
    cfg: Config,
    device: burn::tensor::Device,
    data_dir: PathBuf,
    val_dir: Option<PathBuf>,
    run: RunDir,
    lock: RunLock,
    resume: Option<Checkpoint>,
    headless: bool,
    /// Under `ulimit -v`: the limit, watched batch by batch.
    memory: Option<train::memory::Watch>,
}

/// What comes after preparing: training here, or nothing more (a detached session, a run
/// that has already finished).
enum Next {
    Train(Box<Prepared>),
    Done(Ended),
}

/// Run a training session.
pub fn run(spec: SessionSpec) -> Result<Ended> {
    let prepared = match spec.start {
        Start::New {
            settings,
            data,
            run,
        } => prepare_new(settings, &data, run.as_deref(), spec.screen)?,
        Start::Resume { run, overrides } => prepare_resume(&run, overrides, spec.screen)?,
    };
    match prepared {
        Next::Train(p) => start(*p).map(Ended::Exit),
        Next::Done(ended) => Ok(ended),
    }
}

/// What the demo's default run names start with.
const DEMO_PREFIX: &str = "demo-";

/// Resolve, check and lock a new run.
fn prepare_new(
    settings: Settings,
    data: &Data,
    explicit: Option<&Path>,
    screen: Screen,
) -> Result<Next> {
    let cfg = settings.resolve()?;
    let prefix = match data {
        Data::Folder { data, val } => {
            check_data(data, val.as_deref(), explicit)?;
            ""
        }
        Data::Synthetic { .. } => DEMO_PREFIX,
    };
    // Made before the run directory: a device that cannot be had leaves nothing behind.
    let device = crate::device::create(cfg.device()?)?;
    // Under `ulimit -v`, a step that cannot fit is refused before anything is written.
    let classes = match data {
        Data::Folder { data, .. } => memory::classes_in(data),
        Data::Synthetic { .. } => 2,
    };
    let memory = memory::check(&cfg, classes)?;
    if screen == Screen::Detach {
        // The folder is made (a default name reserved) and checked here, then handed over:
        // the background process takes the run's lock itself.
        let (run, lock) = new_run(explicit, prefix)?;
        drop(lock);
        background::spawn_detached(&run, explicit.is_none(), false)?;
        return Ok(Next::Done(Ended::Detached(run.path)));
    }
    let (run, lock) = new_run(explicit, prefix)?;
    let (data_dir, val_dir) = match data {
        Data::Folder { data, val } => (data.clone(), val.clone()),
        Data::Synthetic { per_class } => {
            let dir = run.demo_data_path();
            let size = cfg.data.image_size[0].max(cfg.data.image_size[1]);
            crate::data::write_synthetic(&dir, *per_class, size, cfg.train.seed)
                .with_context(|| format!("writing the synthetic dataset to {}", dir.display()))?;
            (dir, None)
        }
    };
    Ok(Next::Train(Box::new(Prepared {
        cfg,
        device,
        data_dir,
        val_dir,
        run,
        lock,
        resume: None,
        headless: screen == Screen::Headless,
        memory,
    })))
}

/// Refuse a data folder that cannot be trained on, before a run exists.
fn check_data(data: &Path, val: Option<&Path>, explicit: Option<&Path>) -> Result<()> {
    if !data.is_dir() {
        bail!(
            "data folder {} does not exist or is not a folder; give a folder with one sub-folder of images per class",
            data.display()
        );
    }
    // The run's own files (sample photos, exports, ...) must not become training images.
    let target = explicit.map_or_else(|| default_run_path(""), Path::to_path_buf);
    crate::run::refuse_inside_data(&target, data, "data")?;
    if let Some(val) = val {
        crate::run::refuse_inside_data(&target, val, "validation")?;
    }
    // Folder problems (one class, an empty class, ...) refuse to start before a run exists.
    crate::data::scan(data)?;
    if let Some(val) = val {
        crate::data::scan(val)?;
    }
    Ok(())
}

/// Where a run goes when `--run` does not say: `runs/<prefix><UTC time>`.
fn default_run_path(prefix: &str) -> PathBuf {
    let (parent, stem) = RunDir::default_place();
    parent.join(format!("{prefix}{stem}"))
}

/// Make and lock the run directory: `explicit`, or a new unique one under `runs/`.
fn new_run(explicit: Option<&Path>, prefix: &str) -> Result<(RunDir, RunLock)> {
    let (run, lock, found) = if let Some(path) = explicit {
        RunDir::create(path)?
    } else {
        let (parent, stem) = RunDir::default_place();
        RunDir::create_unique(&parent, &format!("{prefix}{stem}"))?
    };
    if found == Found::NoCheckpoint {
        let _ = writeln!(
            std::io::stderr(),
            "convscope: {} holds a run that never wrote a complete checkpoint; starting it afresh (its earlier events stay in {})",
            run.path.display(),
            run.events_path()
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        );
    }
    Ok((run, lock))
}

/// Lock the run, resolve its changed settings and find its newest checkpoint.
fn prepare_resume(path: &Path, overrides: Overrides, screen: Screen) -> Result<Next> {
    let run = RunDir::open(path)?;
    // Refused while anyone else writes to the run, before anything is written: a refused
    // resume changes nothing (not even config.toml).
    let lock = run.lock()?;
    let own = run.read_config()?;
    let run_batch_size = own.train.batch_size;
    let cfg = Settings::of_run(own, None, overrides).resolve()?;
    // Made before anything is written: a device that cannot be had changes nothing.
    let device = crate::device::create(cfg.device()?)?;
    let source = RunSource::read(&run)?;
    let classes = run.read_classes().map_or_else(
        |_| memory::classes_in(&source.data_dir),
        |c| c.classes.len(),
    );
    let memory = memory::check(&cfg, classes)?;
    let (cp, note) = checkpoint::latest(&run.checkpoints_path())?;
    if let Some(note) = note {
        let _ = writeln!(std::io::stderr(), "convscope: {note}");
    }
    if cp.state.weights_only {
        let _ = writeln!(
            std::io::stderr(),
            "convscope: checkpoint {} keeps only the weights (train.keep_optimizer keeps the optimizer state in the newest checkpoints only): the optimizer starts afresh from it",
            cp.name
        );
    }
    let (epoch, _) = cp.state.resume_point();
    if cfg.train.batch_size != run_batch_size && !cp.state.epoch_complete() {
        bail!(
            "checkpoint {} was taken in the middle of epoch {} (batch {} of {}, {} images a batch): the batch size can change only where an epoch ends. Finish that epoch first with `convscope resume {} --epochs {}`, then `convscope resume {} --epochs {} --batch-size {}`",
            cp.name,
            cp.state.epoch,
            cp.state.batch,
            cp.state.batches_per_epoch,
            run_batch_size,
            run.path.display(),
            cp.state.epoch,
            run.path.display(),
            cfg.train.epochs,
            cfg.train.batch_size
        );
    }
    if epoch > cfg.train.epochs {
        let _ = writeln!(
            std::io::stderr(),
            "convscope: {} already finished all {} epochs (checkpoint {}); pass --epochs N to train further",
            run.path.display(),
            cfg.train.epochs,
            cp.name
        );
        return Ok(Next::Done(Ended::Exit(0)));
    }
    if screen == Screen::Detach {
        // The background process takes the lock itself.
        drop(lock);
        background::spawn_detached(&run, false, true)?;
        return Ok(Next::Done(Ended::Detached(run.path)));
    }
    // A resumed run with more epochs (or another learning rate) records it, now that
    // nothing can refuse it any more.
    run.write_config(&cfg)?;
    Ok(Next::Train(Box::new(Prepared {
        cfg,
        device,
        data_dir: source.data_dir,
        val_dir: source.val_dir,
        run,
        lock,
        resume: Some(cp),
        headless: screen == Screen::Headless,
        memory,
    })))
}

/// The trainer at work and what talks to it.
struct Training {
    result: std::sync::mpsc::Receiver<TrainResult>,
    control: crate::run::control::ControlServer,
    events: EventReceiver,
    commands: std::sync::mpsc::Sender<Command>,
    stop_by: train::StopBy,
}

type TrainResult = std::thread::Result<Result<train::Outcome, train::TrainError>>;

/// Train: logging, the run's files, the trainer, the screen (or plain progress), the report.
fn start(p: Prepared) -> Result<ExitCode> {
    // Held until this process ends: nobody else writes to the run meanwhile.
    let Prepared {
        cfg,
        device,
        data_dir,
        val_dir,
        run,
        lock: run_lock,
        resume,
        headless,
        memory,
    } = p;
    // Absolute, so that a viewer started in another folder finds the probe images.
    let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
    let val_dir = val_dir.map(|v| std::path::absolute(&v).unwrap_or(v));
    let tui = !headless && screen_available();
    crate::logging::init(&run.log_path(), !tui)
        .with_context(|| format!("opening {}", run.log_path().display()))?;
    warn_memory_limit(&run);
    if resume.is_none() {
        run.write_config(&cfg)?;
        RunSource {
            data_dir: data_dir.clone(),
            val_dir: val_dir.clone(),
        }
        .write(&run)?;
    }
    let signals = signals::install().context("installing signal handlers")?;
    // A resumed run's screen shows its earlier sessions too: read them before the trainer
    // appends to the log.
    let history = if tui && resume.is_some() {
        earlier_events(&run)
    } else {
        Vec::new()
    };
    let resumed_from = resume.as_ref().map(|cp| cp.name.clone());
    // The demo's images are synthetic: the photos make the better first probe. A real
    // dataset's own images come first (a cat photo means nothing to a clothing classifier).
    let samples_first = std::path::absolute(run.demo_data_path()).is_ok_and(|d| d == data_dir);
    let job = Job {
        cfg: cfg.clone(),
        device,
        data_dir,
        val_dir,
        run: run.clone(),
        resume,
        samples: run.write_samples(),
        samples_first,
        stop_by: train::StopBy::default(),
        memory,
        breakdown: None,
    };
    let Training {
        result,
        control,
        events,
        commands,
        stop_by,
    } = spawn_training(job, &signals, tui)?;
    let (ending, hand_off) = if tui {
        show(&cfg, &run, history, events, commands, &stop_by, &signals)
    } else {
        drop(commands);
        (headless::print_events(events), false)
    };
    // The control socket stays while the training goes on, also after the screen has gone
    // (viewers pause, stop and probe through it); the worker stops answering probes once its
    // observer is gone.
    let result = result
        .recv()
        .unwrap_or_else(|_| Err(Box::new("the training thread vanished")));
    drop(control);
    if hand_off && signals.received() == 0 && matches!(result, Ok(Ok(train::Outcome::Stopped))) {
        // The background process takes the lock itself.
        drop(run_lock);
        return background::hand_over(&run);
    }
    report(&run, &signals, &ending, resumed_from.as_deref(), result)
}

/// Whether the TUI can be shown: stdout is a terminal that is not `dumb`.
fn screen_available() -> bool {
    std::io::stdout().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// The run's events so far (none, with a warning in the log, when they cannot be read).
fn earlier_events(run: &RunDir) -> Vec<Event> {
    crate::run::event_log::read_all(&run.events_path()).map_or_else(
        |e| {
            tracing::warn!("the run's earlier events are not shown: {e}");
            Vec::new()
        },
        |(events, _)| events,
    )
}

/// Start the control socket and the trainer, and a thread that joins the trainer (so that the
/// hangup watcher, started when there is a screen, knows when the checkpoint is written).
fn spawn_training(job: Job, signals: &Signals, screen: bool) -> Result<Training> {
    let (events_tx, events) = crate::events::channel(256);
    let (commands, cmd_rx) = std::sync::mpsc::channel::<Command>();
    let stop_by = job.stop_by.clone();
    let control = serve_control(&job.run, commands.clone(), stop_by.clone())?;
    let handle = train::spawn(job, events_tx, cmd_rx, signals.clone())
        .context("starting the training thread")?;
    let handle_done = Arc::new(AtomicBool::new(false));
    let (result_tx, result) = std::sync::mpsc::channel();
    {
        let done = Arc::clone(&handle_done);
        std::thread::Builder::new()
            .name("trainer-join".into())
            .spawn(move || {
                let result = handle.join();
                done.store(true, Ordering::SeqCst);
                let _ = result_tx.send(result);
            })
            .context("starting the training thread")?;
    }
    if screen {
        hangup::watch(signals.clone(), handle_done);
    }
    Ok(Training {
        result,
        control,
        events,
        commands,
        stop_by,
    })
}

/// Show the training on the screen until the user quits; returns how it ended and whether
/// the training is being handed to a background process.
fn show(
    cfg: &Config,
    run: &RunDir,
    history: Vec<Event>,
    events: EventReceiver,
    commands: std::sync::mpsc::Sender<Command>,
    stop_by: &train::StopBy,
    signals: &Signals,
) -> (Ending, bool) {
    let stop_tx = commands.clone();
    match tui_bridge::run(cfg, run, history, events, commands, signals.stop.clone()) {
        Ok(UiExit::Finished | UiExit::QuitStopped) => (Ending::Completed, false),
        Ok(UiExit::QuitWhileRunning) => {
            // "Leave it running" must outlive this terminal (an SSH session ends it, and the
            // shell waits for a process in the foreground): the training stops at a
            // checkpoint and a background process of its own session resumes it exactly.
            stop_by.set(StopCause::HandOff);
            let hand_off = stop_tx.send(Command::Stop).is_ok();
            let _ = writeln!(
                std::io::stderr(),
                "convscope: handing the training over to a background process (writing a checkpoint first)…"
            );
            (Ending::Vanished, hand_off)
        }
        Err(e) => {
            // Most often the terminal went away without a hangup signal: the process was
            // told to outlive it (nohup), so the training goes on without a screen. (With
            // the signal, the UI has already quit and the training stops with a checkpoint.)
            tracing::warn!("the screen failed: {e:#}; the training goes on without it");
            let _ = writeln!(
                std::io::stderr(),
                "convscope: the screen failed ({e:#}); training goes on in this process (Ctrl-C checkpoints and stops it). Watch it with: convscope view {}",
                shell_quote(&run.path)
            );
            (Ending::Vanished, false)
        }
    }
}

/// Serve the run's control socket, passing its commands on to `commands`; a stop that came
/// through it is marked as a viewer's first, so that the run records who stopped it.
fn serve_control(
    run: &RunDir,
    commands: std::sync::mpsc::Sender<Command>,
    stop_by: train::StopBy,
) -> Result<crate::run::control::ControlServer> {
    let (socket_tx, socket_rx) = std::sync::mpsc::channel::<Command>();
    let server = crate::run::control::serve(&run.socket_path(), socket_tx)?;
    std::thread::Builder::new()
        .name("control-forward".into())
        .spawn(move || {
            for cmd in socket_rx {
                if cmd == Command::Stop {
                    stop_by.set(StopCause::Viewer);
                }
                if commands.send(cmd).is_err() {
                    return;
                }
            }
        })
        .context("starting the control socket's thread")?;
    Ok(server)
}

/// Say up front that a virtual-memory limit (`ulimit -v`) is set, and what happens near it
/// (see [`memory`]).
fn warn_memory_limit(run: &RunDir) {
    let limit = rustix::process::getrlimit(rustix::process::Resource::As);
    if let Some(bytes) = limit.current {
        tracing::warn!(
            "a virtual memory limit is set ({} MiB, `ulimit -v`): training is measured against it (a trial step before it starts, the room left after every batch) and stops with a checkpoint before it would run out. If it does, raise it (`ulimit -v unlimited`) or lower --batch-size or --image-size, and go on with: convscope resume {}",
            bytes >> 20,
            shell_quote(&run.path)
        );
    }
}

/// A learning rate as a person types it: `0.0001`, `1e-8`, `100000000`.
fn readable_rate(lr: f64) -> String {
    if (1e-4..1e9).contains(&lr) {
        format!("{lr}")
    } else {
        format!("{lr:e}")
    }
}

/// Say how the training ended and what to do next; returns the exit status.
fn report(
    run: &RunDir,
    signals: &Signals,
    ending: &Ending,
    resumed_from: Option<&str>,
    result: TrainResult,
) -> Result<ExitCode> {
    let mut err = std::io::stderr();
    match result {
        Err(_) => bail!(
            "the training thread panicked; see {}",
            run.log_path().display()
        ),
        Ok(Err(e)) => {
            let _ = writeln!(err, "convscope: training failed: {e}");
            if let Some(advice) = failure_advice(run, &e, resumed_from) {
                let _ = writeln!(err, "convscope: {advice}");
            }
            Ok(1)
        }
        Ok(Ok(train::Outcome::Stopped)) => {
            let _ = writeln!(
                err,
                "convscope: stopped; checkpoint written. Resume with: convscope resume {}",
                shell_quote(&run.path)
            );
            if signals.received() != 0 {
                let _ = writeln!(err, "convscope: interrupted by {}", signals.name());
                return Ok(signals.exit_code());
            }
            Ok(0)
        }
        Ok(Ok(train::Outcome::Completed)) => {
            if matches!(ending, Ending::Failed(_)) {
                return Ok(1);
            }
            // The last line of the progress, on stdout with it.
            let _ = writeln!(
                std::io::stdout(),
                "convscope: finished; run directory {}",
                run.path.display()
            );
            Ok(0)
        }
    }
}

/// Advice to resume only where resuming gets further than this very command did: a run whose
/// folder vanished has nothing to resume; a diverged run needs a lower learning rate; and a
/// resume that failed before writing a checkpoint of its own would fail the same way again.
fn failure_advice(
    run: &RunDir,
    e: &train::TrainError,
    resumed_from: Option<&str>,
) -> Option<String> {
    let newest = checkpoint::latest(&run.checkpoints_path()).ok();
    match (e, newest) {
        (train::TrainError::Run(RunError::Vanished { .. }) | train::TrainError::Memory(_), _)
        | (_, None) => None,
        (train::TrainError::NonFinite { lr, .. }, Some((cp, _))) => Some(format!(
            "resume from the last good checkpoint, {}, with a lower learning rate: convscope resume {} --lr {}",
            cp.name,
            shell_quote(&run.path),
            readable_rate(lr / 10.0)
        )),
        (_, Some((cp, _))) if Some(cp.name.as_str()) != resumed_from => Some(format!(
            "resume from the last good checkpoint, {}, with: convscope resume {}",
            cp.name,
            shell_quote(&run.path)
        )),
        _ => None,
    }
}

/// Watch a run (live or finished) on the screen: `convscope view`, and the viewer attached
/// after `--detach`.
pub fn watch(cfg: &Config, run: &RunDir) -> Result<ExitCode> {
    if !std::io::stdout().is_terminal() {
        bail!(
            "convscope view needs a terminal; for plain progress read {}",
            run.events_path().display()
        );
    }
    // The trainer owns convscope.log; a viewer logs beside it where it may write, else in the
    // user's state folder: viewing needs no write access to the run (another user's, a
    // read-only disk).
    let log = viewer_log_places(run)
        .into_iter()
        .find(|p| crate::logging::init(p, false).is_ok());
    if log.is_none() {
        tracing::debug!("no viewer log: neither the run nor the state folder is writable");
    }
    let (events_tx, events_rx) = crate::events::channel(1024);
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel::<Command>();
    let viewer = crate::infer::viewer::spawn(run.clone(), events_tx, cmd_rx)
        .context("starting the viewer thread")?;
    let signals = signals::install().context("installing signal handlers")?;
    hangup::watch(signals.clone(), Arc::new(AtomicBool::new(true)));
    // The viewer's worker reads the whole log itself.
    let exit = tui_bridge::run(
        cfg,
        run,
        Vec::new(),
        events_rx,
        cmd_tx,
        signals.stop.clone(),
    )?;
    let _ = viewer.join();
    if exit == UiExit::QuitWhileRunning {
        let _ = writeln!(
            std::io::stderr(),
            "convscope: detached; the training goes on. Re-attach with: convscope view {}",
            shell_quote(&run.path)
        );
    }
    Ok(0)
}

/// Where a viewer may log, in order: `RUN/viewer.log`, then
/// `$XDG_STATE_HOME/convscope/viewer-<run>.log` (default `~/.local/state`).
fn viewer_log_places(run: &RunDir) -> Vec<PathBuf> {
    let mut places = vec![run.viewer_log_path()];
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")));
    if let Some(dir) = state.map(|d| d.join("convscope"))
        && std::fs::create_dir_all(&dir).is_ok()
    {
        let name = crate::run::resolve(&run.path)
            .file_name()
            .map_or_else(|| "run".to_string(), |n| n.to_string_lossy().into_owned());
        places.push(dir.join(format!("viewer-{name}.log")));
    }
    places
}
