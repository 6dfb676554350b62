//! What each subcommand does.

pub mod bench;
pub mod export;
pub mod predict;

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::cli::{Commands, DemoArgs, ResumeArgs, SummaryArgs, TrainArgs, TrainFlags};
use crate::config::{Config, Overrides};
use crate::events::Command;
use crate::headless::{self, Ending};
use crate::run::{RunDir, checkpoint};
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
    cfg.train.epochs = 10;
    cfg.train.batch_size = 32;
    cfg
}

fn demo(args: &DemoArgs) -> Result<ExitCode> {
    let cfg = resolve_config(
        &args.flags,
        &args.flags.overrides(None),
        Some(demo_config()),
    )?;
    let run_path = args.flags.run.clone().unwrap_or_else(|| {
        let p = RunDir::default_path();
        p.with_file_name(format!(
            "demo-{}",
            p.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ))
    });
    let run = RunDir::create(&run_path)?;
    let data_dir = run.path.join("demo-data");
    let size = cfg.data.image_size[0].max(cfg.data.image_size[1]);
    crate::data::write_synthetic(&data_dir, args.per_class, size, cfg.train.seed)
        .with_context(|| format!("writing the synthetic dataset to {}", data_dir.display()))?;
    start(&cfg, data_dir, None, &run, None, args.flags.headless)
}

fn train_cmd(args: &TrainArgs) -> Result<ExitCode> {
    let cfg = resolve_config(&args.flags, &args.flags.overrides(args.val_split), None)?;
    if !args.data.is_dir() {
        bail!(
            "data folder {} does not exist or is not a folder; give a folder with one sub-folder of images per class",
            args.data.display()
        );
    }
    let run = RunDir::create(&args.flags.run.clone().unwrap_or_else(RunDir::default_path))?;
    start(
        &cfg,
        args.data.clone(),
        args.val.clone(),
        &run,
        None,
        args.flags.headless,
    )
}

fn resume(args: &ResumeArgs) -> Result<ExitCode> {
    let run = RunDir::open(&args.run)?;
    let mut cfg = run.read_config()?;
    if let Some(e) = args.epochs {
        cfg.train.epochs = e;
        cfg.validate()?;
    }
    let source = RunSource::read(&run)?;
    let (cp, note) = checkpoint::latest(&run.checkpoints_path())?;
    if let Some(note) = note {
        let _ = writeln!(std::io::stderr(), "convscope: {note}");
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
    // A resumed run with more epochs records the new total.
    run.write_config(&cfg)?;
    start(
        &cfg,
        source.data_dir,
        source.val_dir,
        &run,
        Some(cp),
        args.headless,
    )
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
            out.push(p);
        }
    }
    out
}

fn start(
    cfg: &Config,
    data_dir: PathBuf,
    val_dir: Option<PathBuf>,
    run: &RunDir,
    resume: Option<checkpoint::Checkpoint>,
    headless_flag: bool,
) -> Result<ExitCode> {
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
    let job = Job {
        cfg: cfg.clone(),
        data_dir,
        val_dir,
        run: run.clone(),
        resume,
        extra_probes: write_samples(run),
    };
    let control = crate::run::control::serve(&run.socket_path(), cmd_tx.clone())?;
    let handle = train::spawn(job, events_tx, cmd_rx, signals.stop.clone())
        .context("starting the training thread")?;
    let ending = if tui {
        crate::tui_bridge::run(cfg, run, events_rx, cmd_tx, signals.stop.clone())?
    } else {
        drop(cmd_tx);
        headless::print_events(events_rx)
    };
    let result = handle.join();
    drop(control);
    report(&run.path, &signals, &ending, result)
}

fn report(
    run: &Path,
    signals: &Signals,
    ending: &Ending,
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
            if checkpoint::latest(&run.join("checkpoints")).is_ok() {
                let _ = writeln!(
                    err,
                    "convscope: resume from the last good checkpoint with: convscope resume {}",
                    run.display()
                );
            }
            Ok(1)
        }
        Ok(Ok(train::Outcome::Stopped)) => {
            let _ = writeln!(
                err,
                "convscope: stopped; checkpoint written. Resume with: convscope resume {}",
                run.display()
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
