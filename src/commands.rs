//! What each subcommand does: each maps its arguments onto the layer that does the work
//! ([`crate::session`] for training and watching, [`crate::viz`] for pictures), one line of
//! [`dispatch`] each.

pub mod bench;
pub mod explain;
pub mod export;
pub mod export_weights;
pub mod import;
pub mod maximize;
pub mod predict;
pub mod report;
pub mod show;
pub mod summary;
pub mod view;

use std::io::{IsTerminal as _, Write as _};

use anyhow::{Context as _, Result};

use crate::cli::{Commands, CompletionsArgs, DemoArgs, ResumeArgs, TrainArgs};
use crate::config::{Config, Overrides, Settings};
use crate::run::RunDir;
use crate::session::{self, Data, Ended, SessionSpec, Start};

pub use crate::session::ExitCode;

/// Run one subcommand.
pub fn dispatch(command: Commands) -> Result<ExitCode> {
    match command {
        Commands::Demo(args) => demo(&args),
        Commands::Train(args) => train(&args),
        Commands::Resume(args) => resume(&args),
        Commands::View(args) => view::run(&args),
        Commands::Summary(args) => summary::run(&args),
        Commands::Bench(args) => bench::run(&args),
        Commands::Predict(args) => predict::run(&args),
        Commands::Explain(args) if args.maximize.is_some() => maximize::explain(&args),
        Commands::Explain(args) => explain::run(&args),
        Commands::Report(args) => report::run(&args),
        Commands::Export(args) => export::run(&args),
        Commands::Show(args) => show::run(&args),
        Commands::Import(args) => import::run(&args),
        Commands::ExportWeights(args) => export_weights::run(&args),
        Commands::Completions(args) => completions(&args),
        Commands::Manpage => manpage(),
        Commands::MemoryTrial(args) => crate::session::memory::run_trial(args.classes),
    }
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
    let flags = &args.flags;
    train_session(SessionSpec {
        start: Start::New {
            settings: Settings::new_run(demo_config(), flags.config.clone(), flags.overrides(None)),
            data: Data::Synthetic {
                per_class: args.per_class,
            },
            run: flags.run.clone(),
        },
        screen: flags.screen(),
    })
}

fn train(args: &TrainArgs) -> Result<ExitCode> {
    let flags = &args.flags;
    train_session(SessionSpec {
        start: Start::New {
            settings: Settings::new_run(
                Config::load(None)?,
                flags.config.clone(),
                flags.overrides(args.val_split),
            ),
            data: Data::Folder {
                data: args.data.clone(),
                val: args.val.clone(),
            },
            run: flags.run.clone(),
        },
        screen: flags.screen(),
    })
}

fn resume(args: &ResumeArgs) -> Result<ExitCode> {
    train_session(SessionSpec {
        start: Start::Resume {
            run: args.run.clone(),
            overrides: args.overrides(),
        },
        screen: args.screen(),
    })
}

/// Run a training session; one that went to the background gets a viewer on a terminal.
fn train_session(spec: SessionSpec) -> Result<ExitCode> {
    match session::run(spec)? {
        Ended::Exit(code) => Ok(code),
        Ended::Detached(_) if !std::io::stdout().is_terminal() => Ok(0),
        Ended::Detached(path) => {
            let run = RunDir::open(&path)?;
            let cfg = Settings::of_run(run.read_config()?, None, Overrides::default()).resolve()?;
            session::watch(&cfg, &run)
        }
    }
}

fn completions(args: &CompletionsArgs) -> Result<ExitCode> {
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

fn manpage() -> Result<ExitCode> {
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
