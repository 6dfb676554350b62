//! What each subcommand does.

pub mod bench;
pub mod export;
pub mod memory;
pub mod predict;
pub mod report;

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, bail};

use crate::cli::{Commands, DemoArgs, ResumeArgs, SummaryArgs, TrainArgs, TrainFlags, ViewArgs};
use crate::config::{Config, Overrides};
use crate::events::Command;
use crate::headless::{self, Ending};
use crate::run::{Found, RunDir, RunError, RunLock, checkpoint, shell_quote};
use crate::signals::Signals;
use crate::train::{self, Job, RunSource};

/// Exit status of a command (0 success).
pub type ExitCode = i32;

/// Run one subcommand.
pub fn dispatch(command: Commands) -> Result<ExitCode> {
    match command {
        Commands::Demo(args) => demo(&args),
        Commands::Train(args) => train_cmd(&args),
        Commands::Resume(args) => resume(&args),
        Commands::View(args) => view(&args),
        Commands::Summary(args) => summary(&args),
        Commands::Bench(args) => bench::run(&args),
        Commands::Predict(args) => predict::run(&args),
        Commands::Report(args) => report::run(&args),
        Commands::Export(args) => export::run(&args),
        Commands::Completions(args) => {
            use clap::CommandFactory as _;
            let mut out = Vec::new();
            clap_complete::generate(
                args.shell,
                &mut crate::cli::Cli::command(),
                "convscope",
                &mut out,
            );
            std::io::stdout()
                .write_all(&out)
                .context("writing the completion script")?;
            Ok(0)
        }
        Commands::Manpage => {
            use clap::CommandFactory as _;
            let mut out = Vec::new();
            clap_mangen::Man::new(crate::cli::Cli::command())
                .render(&mut out)
                .context("rendering the manual page")?;
            std::io::stdout()
                .write_all(&out)
                .context("writing the manual page")?;
            Ok(0)
        }
    }
}

fn resolve_config(
    flags: &TrainFlags,
    overrides: &Overrides,
    base: Option<Config>,
) -> Result<Config> {
    let mut cfg = match (&flags.config, base) {
        (Some(path), _) => Config::load(Some(path))?,
        (None, Some(c)) => c,
        (None, None) => Config::load(None)?,
    };
    // The user's [ui] preferences, under what the config file sets.
    cfg.ui = crate::config::user_ui()?.overlaid(&cfg.ui);
    cfg.apply(overrides);
    cfg.validate()?;
    Ok(cfg)
}

/// The settings `convscope demo` uses unless flags say otherwise: small enough to visibly
/// learn on two CPU cores within a minute.
#[must_use]
pub fn demo_config() -> Config {
    let mut cfg = Config::default();
    cfg.data.image_size = [64, 64];
    cfg.train.epochs = 40;
    cfg.train.batch_size = 32;
    cfg
}

fn demo(args: &DemoArgs) -> Result<ExitCode> {
    let cfg = resolve_config(
        &args.flags,
        &args.flags.overrides(None),
        Some(demo_config()),
    )?;
    // Made before the run directory: a device that cannot be had leaves nothing behind.
    let device = train::device::create(&cfg.train.device).map_err(anyhow::Error::msg)?;
    if args.flags.detach {
        return detach(args.flags.run.as_deref(), DEMO_PREFIX);
    }
    let (run, lock) = new_run(args.flags.run.as_deref(), DEMO_PREFIX)?;
    let data_dir = run.path.join(DEMO_DATA);
    let size = cfg.data.image_size[0].max(cfg.data.image_size[1]);
    crate::data::write_synthetic(&data_dir, args.per_class, size, cfg.train.seed)
        .with_context(|| format!("writing the synthetic dataset to {}", data_dir.display()))?;
    start(
        &cfg,
        device,
        data_dir,
        None,
        &run,
        lock,
        None,
        args.flags.headless,
    )
}

/// The demo's synthetic dataset, inside its run directory.
const DEMO_DATA: &str = "demo-data";

/// What the demo's default run names start with.
const DEMO_PREFIX: &str = "demo-";

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
            "convscope: {} holds a run that never wrote a complete checkpoint; starting it afresh (its earlier events stay in events.jsonl)",
            run.path.display()
        );
    }
    Ok((run, lock))
}

/// Start this same command again as a background process in its own session (no controlling
/// terminal: closing the SSH connection does not reach it), its output in the run directory;
/// then attach a viewer.
fn detach(explicit: Option<&Path>, prefix: &str) -> Result<ExitCode> {
    // The folder is made (a default name reserved) and checked here, then handed over: the
    // background process takes the run's lock itself.
    let (run, lock) = new_run(explicit, prefix)?;
    drop(lock);
    spawn_detached(run.path, explicit.is_none(), false)
}

/// Start the background process (see [`detach`]) for a run directory that exists; `append`
/// keeps the output of the run's earlier sessions in `convscope.out` (a resumed run).
fn spawn_detached(run_path: PathBuf, add_run_flag: bool, append: bool) -> Result<ExitCode> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "--detach")
        .collect();
    if add_run_flag {
        args.push("--run".into());
        args.push(run_path.clone().into_os_string());
    }
    args.push("--headless".into());
    let pid = start_background(&run_path, &args, append)?;
    let _ = writeln!(
        std::io::stderr(),
        "convscope: training in the background (pid {pid}), output in {}",
        shell_quote(&run_path.join("convscope.out"))
    );
    if !std::io::stdout().is_terminal() {
        return Ok(0);
    }
    view(&ViewArgs {
        run: run_path,
        config: None,
        graphics: None,
        color: None,
        colormap: None,
        sixel_max_kb: None,
        refresh_kb_per_sec: None,
    })
}

/// Run `convscope ARGS` in a session of its own (no controlling terminal), its output in
/// `RUN/convscope.out`, and wait until it serves the run's control socket; returns its pid.
fn start_background(run_path: &Path, args: &[std::ffi::OsString], append: bool) -> Result<u32> {
    let out_path = run_path.join("convscope.out");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(&out_path)
        .with_context(|| format!("creating {}", out_path.display()))?;
    let exe = std::env::current_exe().context("finding the convscope binary")?;
    let mut child = std::process::Command::new("setsid")
        .arg(&exe)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("starting the background training (needs `setsid`, from util-linux)")?;
    let socket = run_path.join("control.sock");
    let start = std::time::Instant::now();
    loop {
        if crate::run::control::is_live(&socket) && run_path.join("events.jsonl").exists() {
            break;
        }
        if let Some(status) = child.try_wait()? {
            let output = std::fs::read_to_string(&out_path).unwrap_or_default();
            bail!("the background training ended at once ({status}):\n{output}");
        }
        if start.elapsed() > std::time::Duration::from_mins(5) {
            bail!(
                "the background training did not start within 5 minutes; see {}",
                out_path.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(child.id())
}

fn train_cmd(args: &TrainArgs) -> Result<ExitCode> {
    let cfg = resolve_config(&args.flags, &args.flags.overrides(args.val_split), None)?;
    if !args.data.is_dir() {
        bail!(
            "data folder {} does not exist or is not a folder; give a folder with one sub-folder of images per class",
            args.data.display()
        );
    }
    // The run's own files (sample photos, exports, ...) must not become training images.
    let target = args
        .flags
        .run
        .clone()
        .unwrap_or_else(|| default_run_path(""));
    crate::run::refuse_inside_data(&target, &args.data, "data")?;
    if let Some(val) = &args.val {
        crate::run::refuse_inside_data(&target, val, "validation")?;
    }
    // Folder problems (one class, an empty class, ...) refuse to start before a run exists.
    crate::data::scan(&args.data)?;
    if let Some(val) = &args.val {
        crate::data::scan(val)?;
    }
    // Made before the run directory: a device that cannot be had leaves nothing behind.
    let device = train::device::create(&cfg.train.device).map_err(anyhow::Error::msg)?;
    if args.flags.detach {
        return detach(args.flags.run.as_deref(), "");
    }
    let (run, lock) = new_run(args.flags.run.as_deref(), "")?;
    start(
        &cfg,
        device,
        args.data.clone(),
        args.val.clone(),
        &run,
        lock,
        None,
        args.flags.headless,
    )
}

fn resume(args: &ResumeArgs) -> Result<ExitCode> {
    let run = RunDir::open(&args.run)?;
    // Refused while anyone else writes to the run, before anything is written: a refused
    // resume changes nothing (not even config.toml).
    let lock = run.lock()?;
    let mut cfg = run.read_config()?;
    cfg.ui = crate::config::user_ui()?.overlaid(&cfg.ui);
    let run_batch_size = cfg.train.batch_size;
    if let Some(e) = args.epochs {
        cfg.train.epochs = e;
    }
    if let Some(lr) = args.lr {
        cfg.optimizer.lr = lr;
    }
    if let Some(c) = args.color {
        cfg.ui.color = c.into();
    }
    if let Some(d) = &args.device {
        cfg.train.device.clone_from(d);
    }
    if let Some(b) = args.batch_size {
        cfg.train.batch_size = b;
    }
    cfg.validate()?;
    // Made before the run directory: a device that cannot be had leaves nothing behind.
    let device = train::device::create(&cfg.train.device).map_err(anyhow::Error::msg)?;
    let source = RunSource::read(&run)?;
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
        return Ok(0);
    }
    if args.detach {
        // The background process takes the lock itself.
        drop(lock);
        return spawn_detached(run.path.clone(), false, true);
    }
    // A resumed run with more epochs (or another learning rate) records it, now that
    // nothing can refuse it any more.
    run.write_config(&cfg)?;
    start(
        &cfg,
        device,
        source.data_dir,
        source.val_dir,
        &run,
        lock,
        Some(cp),
        args.headless,
    )
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

fn view(args: &ViewArgs) -> Result<ExitCode> {
    if !args.run.join("config.toml").exists()
        && let Some(listing) = list_runs(&args.run)
    {
        let _ = write!(std::io::stdout(), "{listing}");
        return Ok(0);
    }
    let run = RunDir::open(&args.run)?;
    let mut cfg = run.read_config()?;
    // [ui]: flag > environment > --config / CONVSCOPE_CONFIG > the run's > the user's file.
    cfg.ui = crate::config::user_ui()?.overlaid(&cfg.ui);
    if let Some(path) = &args.config {
        cfg.ui = cfg.ui.overlaid(&Config::load(Some(path))?.ui);
    }
    if let Some(g) = args.graphics {
        cfg.ui.graphics = g.into();
    }
    if let Some(c) = args.color {
        cfg.ui.color = c.into();
    }
    if let Some(c) = args.colormap {
        cfg.ui.colormap = c.into();
    }
    if let Some(kb) = args.sixel_max_kb {
        cfg.ui.sixel_max_kb = kb;
    }
    if let Some(kb) = args.refresh_kb_per_sec {
        cfg.ui.refresh_kb_per_sec = kb;
    }
    if !std::io::stdout().is_terminal() {
        bail!(
            "convscope view needs a terminal; for plain progress read {}",
            run.events_path().display()
        );
    }
    // The trainer owns convscope.log; a viewer logs beside it where it may write, else in the
    // user's state folder: viewing needs no write access to the run (another user's, a
    // read-only disk).
    let log = viewer_log_places(&run)
        .into_iter()
        .find(|p| crate::logging::init(p, false).is_ok());
    if log.is_none() {
        tracing::debug!("no viewer log: neither the run nor the state folder is writable");
    }
    let (events_tx, events_rx) = crate::events::channel(1024);
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel::<Command>();
    let viewer = train::viewer::spawn(run.clone(), events_tx, cmd_rx)
        .context("starting the viewer thread")?;
    let signals = Signals::install().context("installing signal handlers")?;
    crate::hangup::watch(signals.clone(), Arc::new(AtomicBool::new(true)));
    // The viewer's worker reads the whole log itself.
    let exit = crate::tui_bridge::run(
        &cfg,
        &run,
        Vec::new(),
        events_rx,
        cmd_tx,
        signals.stop.clone(),
    )?;
    let _ = viewer.join();
    if exit == crate::ui::UiExit::QuitWhileRunning {
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
    let mut places = vec![run.path.join("viewer.log")];
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

fn summary(args: &SummaryArgs) -> Result<ExitCode> {
    // A run directory, or a run's own config.toml, brings the run's classes.
    let run = match (&args.run, &args.config) {
        (Some(path), _) => Some(RunDir::open(path)?),
        (None, Some(file)) if file.file_name().is_some_and(|n| n == "config.toml") => file
            .parent()
            .and_then(|dir| RunDir::open(dir).ok())
            .filter(|r| r.classes_path().is_file()),
        (None, _) => None,
    };
    let mut cfg = match (&args.run, &run) {
        (Some(_), Some(r)) => r.read_config()?,
        _ => Config::load(args.config.as_deref())?,
    };
    cfg.apply(&Overrides {
        image_size: args.image_size,
        grayscale: args.grayscale,
        ..Overrides::default()
    });
    cfg.validate()?;
    let classes = match (args.classes, &run) {
        (Some(n), _) => n,
        (None, Some(r)) => r
            .read_classes()
            .map(|c| c.classes.len())
            .with_context(|| {
                format!(
                    "{} has no class list yet (the training writes it once it has read the data); pass --classes N",
                    r.path.display()
                )
            })?,
        (None, None) => 2,
    };
    if classes < 2 {
        bail!("--classes {classes}: a classifier needs at least two classes");
    }
    let rows = crate::model::summary::summarize(&cfg, classes)?;
    let _ = write!(
        std::io::stdout(),
        "{}",
        crate::model::summary::render_table(&rows)
    );
    Ok(0)
}

/// Write the bundled sample photos into the run directory as default probes.
fn write_samples(run: &RunDir) -> Vec<PathBuf> {
    let dir = run.samples_path();
    let mut out = Vec::new();
    if std::fs::create_dir_all(&dir).is_err() {
        return out;
    }
    for (name, bytes) in crate::viz::SAMPLE_PHOTOS {
        let p = dir.join(name);
        if p.exists() || std::fs::write(&p, bytes).is_ok() {
            // Absolute: a viewer started in another folder finds them too.
            out.push(std::path::absolute(&p).unwrap_or(p));
        }
    }
    out
}

#[allow(clippy::too_many_arguments)] // one call per subcommand, each argument a different thing
fn start(
    cfg: &Config,
    device: burn::tensor::Device,
    data_dir: PathBuf,
    val_dir: Option<PathBuf>,
    run: &RunDir,
    lock: RunLock,
    resume: Option<checkpoint::Checkpoint>,
    headless_flag: bool,
) -> Result<ExitCode> {
    // Held until this process ends: nobody else writes to the run meanwhile.
    let run_lock = lock;
    // Absolute, so that a viewer started in another folder finds the probe images.
    let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
    let val_dir = val_dir.map(|v| std::path::absolute(&v).unwrap_or(v));
    let tui = !headless_flag
        && std::io::stdout().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    crate::logging::init(&run.log_path(), !tui)
        .with_context(|| format!("opening {}", run.log_path().display()))?;
    warn_memory_limit(run);
    if resume.is_none() {
        run.write_config(cfg)?;
        RunSource {
            data_dir: data_dir.clone(),
            val_dir: val_dir.clone(),
        }
        .write(run)?;
    }
    let signals = Signals::install().context("installing signal handlers")?;
    let (events_tx, events_rx) = crate::events::channel(256);
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel::<Command>();
    // The demo's images are synthetic: the photos make the better first probe. A real
    // dataset's own images come first (a cat photo means nothing to a clothing classifier).
    let samples_first = std::path::absolute(run.path.join(DEMO_DATA)).is_ok_and(|d| d == data_dir);
    let resuming = resume.is_some();
    let resumed_from = resume.as_ref().map(|cp| cp.name.clone());
    let stop_by = train::StopBy::default();
    let job = Job {
        cfg: cfg.clone(),
        device,
        data_dir,
        val_dir,
        run: run.clone(),
        resume,
        samples: write_samples(run),
        samples_first,
        stop_by: stop_by.clone(),
    };
    // A resumed run's screen shows its earlier sessions too: read them before the trainer
    // appends to the log.
    let history = if tui && resuming {
        crate::run::event_log::read_all(&run.events_path()).map_or_else(
            |e| {
                tracing::warn!("the run's earlier events are not shown: {e}");
                Vec::new()
            },
            |(events, _)| events,
        )
    } else {
        Vec::new()
    };
    let control = serve_control(run, cmd_tx.clone(), stop_by.clone())?;
    let handle = train::spawn(job, events_tx, cmd_rx, signals.clone())
        .context("starting the training thread")?;
    // Joined on a thread of its own, so the hangup watcher knows when the checkpoint is written.
    let worker_done = Arc::new(AtomicBool::new(false));
    let (result_tx, result_rx) = std::sync::mpsc::channel();
    {
        let done = Arc::clone(&worker_done);
        std::thread::Builder::new()
            .name("trainer-join".into())
            .spawn(move || {
                let result = handle.join();
                done.store(true, Ordering::SeqCst);
                let _ = result_tx.send(result);
            })
            .context("starting the training thread")?;
    }
    if tui {
        crate::hangup::watch(signals.clone(), worker_done);
    }
    let mut hand_off = false;
    let ending = if tui {
        let stop_tx = cmd_tx.clone();
        match crate::tui_bridge::run(cfg, run, history, events_rx, cmd_tx, signals.stop.clone()) {
            Ok(crate::ui::UiExit::Finished | crate::ui::UiExit::QuitStopped) => Ending::Completed,
            Ok(crate::ui::UiExit::QuitWhileRunning) => {
                // "Leave it running" must outlive this terminal (an SSH session ends it, and the
                // shell waits for a process in the foreground): the training stops at a
                // checkpoint and a background process of its own session resumes it exactly.
                stop_by.set(crate::events::StopCause::HandOff);
                hand_off = stop_tx.send(Command::Stop).is_ok();
                let _ = writeln!(
                    std::io::stderr(),
                    "convscope: handing the training over to a background process (writing a checkpoint first)…"
                );
                Ending::Vanished
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
                Ending::Vanished
            }
        }
    } else {
        drop(cmd_tx);
        headless::print_events(events_rx)
    };
    // The control socket stays while the training goes on, also after the screen has gone
    // (viewers pause, stop and probe through it); the worker stops answering probes once its
    // observer is gone.
    let result = result_rx
        .recv()
        .unwrap_or_else(|_| Err(Box::new("the training thread vanished")));
    drop(control);
    if hand_off && signals.received() == 0 && matches!(result, Ok(Ok(train::Outcome::Stopped))) {
        // The background process takes the lock itself.
        drop(run_lock);
        return hand_over(&run.path);
    }
    report(
        &run.path,
        &signals,
        &ending,
        resumed_from.as_deref(),
        result,
    )
}

/// A learning rate as a person types it: `0.0001`, `1e-8`, `100000000`.
fn readable_rate(lr: f64) -> String {
    if (1e-4..1e9).contains(&lr) {
        format!("{lr}")
    } else {
        format!("{lr:e}")
    }
}

/// Resume a run that was just stopped for the purpose in a background process of its own
/// session (as `--detach` starts one), and say how to watch it.
fn hand_over(run: &Path) -> Result<ExitCode> {
    let args: Vec<std::ffi::OsString> = vec![
        "resume".into(),
        run.as_os_str().to_owned(),
        "--headless".into(),
    ];
    let pid = start_background(run, &args, true).with_context(|| {
        format!(
            "the training stopped with a checkpoint but did not restart in the background; continue it with: convscope resume {}",
            shell_quote(run)
        )
    })?;
    let _ = writeln!(
        std::io::stderr(),
        "convscope: the training goes on in the background (pid {pid}), output in {}; it survives this terminal closing. Watch it with: convscope view {}",
        run.join("convscope.out").display(),
        run.display()
    );
    Ok(0)
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
                    stop_by.set(crate::events::StopCause::Viewer);
                }
                if commands.send(cmd).is_err() {
                    return;
                }
            }
        })
        .context("starting the control socket's thread")?;
    Ok(server)
}

/// Say up front that a virtual-memory limit (`ulimit -v`) is set: when training needs more, an
/// allocation fails and the process aborts at once, with no word of its own and no checkpoint of
/// the epoch in progress.
fn warn_memory_limit(run: &RunDir) {
    let limit = rustix::process::getrlimit(rustix::process::Resource::As);
    if let Some(bytes) = limit.current {
        tracing::warn!(
            "a virtual memory limit is set ({} MiB, `ulimit -v`): if training needs more, the process aborts with `memory allocation of N bytes failed`, without a checkpoint of the epoch in progress. Raise it (`ulimit -v unlimited`) or lower --batch-size or --image-size; after such an abort, go on from the last checkpoint with: convscope resume {}",
            bytes >> 20,
            shell_quote(&run.path)
        );
    }
}

fn report(
    run: &Path,
    signals: &Signals,
    ending: &Ending,
    resumed_from: Option<&str>,
    result: std::thread::Result<Result<train::Outcome, train::TrainError>>,
) -> Result<ExitCode> {
    let mut err = std::io::stderr();
    match result {
        Err(_) => bail!(
            "the training thread panicked; see {}",
            run.join("convscope.log").display()
        ),
        Ok(Err(e)) => {
            let _ = writeln!(err, "convscope: training failed: {e}");
            // Advice to resume only where resuming gets further than this very command did: a
            // run whose folder vanished has nothing to resume; a diverged run needs a lower
            // learning rate; and a resume that failed before writing a checkpoint of its own
            // would fail the same way again.
            let newest = checkpoint::latest(&run.join("checkpoints")).ok();
            let advice = match (&e, newest) {
                (train::TrainError::Run(RunError::Vanished { .. }), _) | (_, None) => None,
                (train::TrainError::NonFinite { lr, .. }, Some((cp, _))) => Some(format!(
                    "resume from the last good checkpoint, {}, with a lower learning rate: convscope resume {} --lr {}",
                    cp.name,
                    shell_quote(run),
                    readable_rate(lr / 10.0)
                )),
                (_, Some((cp, _))) if Some(cp.name.as_str()) != resumed_from => Some(format!(
                    "resume from the last good checkpoint, {}, with: convscope resume {}",
                    cp.name,
                    shell_quote(run)
                )),
                _ => None,
            };
            if let Some(advice) = advice {
                let _ = writeln!(err, "convscope: {advice}");
            }
            Ok(1)
        }
        Ok(Ok(train::Outcome::Stopped)) => {
            let _ = writeln!(
                err,
                "convscope: stopped; checkpoint written. Resume with: convscope resume {}",
                shell_quote(run)
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
                run.display()
            );
            Ok(0)
        }
    }
}
