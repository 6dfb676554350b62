//! What each subcommand does.

pub mod bench;
pub mod export;
pub mod predict;

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
        Commands::Export(args) => export::run(&args),
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
    let run_path = run.path;
    let add_run_flag = explicit.is_none();
    let out_path = run_path.join("convscope.out");
    let out = std::fs::File::create(&out_path)
        .with_context(|| format!("creating {}", out_path.display()))?;
    let exe = std::env::current_exe().context("finding the convscope binary")?;
    let mut args: Vec<std::ffi::OsString> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "--detach")
        .collect();
    if add_run_flag {
        args.push("--run".into());
        args.push(run_path.clone().into_os_string());
    }
    args.push("--headless".into());
    let mut child = std::process::Command::new("setsid")
        .arg(&exe)
        .args(&args)
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
    let _ = writeln!(
        std::io::stderr(),
        "convscope: training in the background (pid {}), output in {}",
        child.id(),
        shell_quote(&out_path)
    );
    if !std::io::stdout().is_terminal() {
        return Ok(0);
    }
    view(&ViewArgs {
        run: run_path,
        graphics: None,
        color: None,
        sixel_max_kb: None,
        refresh_kb_per_sec: None,
    })
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
    if let Some(e) = args.epochs {
        cfg.train.epochs = e;
    }
    if let Some(lr) = args.lr {
        cfg.optimizer.lr = lr;
    }
    if let Some(c) = args.color {
        cfg.ui.color = c.into();
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

fn view(args: &ViewArgs) -> Result<ExitCode> {
    let run = RunDir::open(&args.run)?;
    let mut cfg = run.read_config()?;
    if let Some(g) = args.graphics {
        cfg.ui.graphics = g.into();
    }
    if let Some(c) = args.color {
        cfg.ui.color = c.into();
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
    // The trainer owns convscope.log; each viewer logs beside it.
    crate::logging::init(&run.path.join("viewer.log"), false).context("opening the viewer log")?;
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

fn summary(args: &SummaryArgs) -> Result<ExitCode> {
    let mut cfg = Config::load(args.config.as_deref())?;
    cfg.apply(&Overrides {
        image_size: args.image_size,
        grayscale: args.grayscale,
        ..Overrides::default()
    });
    cfg.validate()?;
    if args.classes < 2 {
        bail!(
            "--classes {}: a classifier needs at least two classes",
            args.classes
        );
    }
    let rows = crate::model::summary::summarize(&cfg, args.classes)?;
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
    let _lock = lock;
    // Absolute, so that a viewer started in another folder finds the probe images.
    let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
    let val_dir = val_dir.map(|v| std::path::absolute(&v).unwrap_or(v));
    let tui = !headless_flag
        && std::io::stdout().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    crate::logging::init(&run.log_path(), !tui)
        .with_context(|| format!("opening {}", run.log_path().display()))?;
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
    let job = Job {
        cfg: cfg.clone(),
        device,
        data_dir,
        val_dir,
        run: run.clone(),
        resume,
        samples: write_samples(run),
        samples_first,
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
    let control = crate::run::control::serve(&run.socket_path(), cmd_tx.clone())?;
    let handle = train::spawn(job, events_tx, cmd_rx, signals.stop.clone())
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
    let ending = if tui {
        match crate::tui_bridge::run(cfg, run, history, events_rx, cmd_tx, signals.stop.clone()) {
            Ok(crate::ui::UiExit::Finished | crate::ui::UiExit::QuitStopped) => Ending::Completed,
            Ok(crate::ui::UiExit::QuitWhileRunning) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "convscope: left the screen; training goes on in this process (Ctrl-C checkpoints and stops it). Watch it from another terminal with: convscope view {}",
                    shell_quote(&run.path)
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
            let _ = writeln!(err, "convscope: finished; run directory {}", run.display());
            Ok(0)
        }
    }
}
