//! `convscope summary`: the Keras-style model summary of a config or a run.

use std::io::Write as _;

use anyhow::{Context as _, Result, bail};

use crate::cli::SummaryArgs;
use crate::config::{Config, Overrides, Settings};
use crate::run::{CONFIG_FILE, RunDir};
use crate::session::ExitCode;

/// Run the command.
pub fn run(args: &SummaryArgs) -> Result<ExitCode> {
    // A run directory, or a run's own config.toml, brings the run's classes.
    let run = match (&args.run, &args.config) {
        (Some(path), _) => Some(RunDir::open(path)?),
        (None, Some(file)) if file.file_name().is_some_and(|n| n == CONFIG_FILE) => file
            .parent()
            .and_then(|dir| RunDir::open(dir).ok())
            .filter(|r| r.classes_path().is_file()),
        (None, _) => None,
    };
    let overrides = Overrides {
        image_size: args.image_size,
        grayscale: args.grayscale,
        ..Overrides::default()
    };
    let settings = match (&args.run, &run) {
        (Some(_), Some(r)) => Settings::of_run(r.read_config()?, None, overrides),
        _ => Settings::new_run(Config::load(None)?, args.config.clone(), overrides),
    };
    let cfg = settings.without_user_preferences().resolve()?;
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
    let _ = write!(std::io::stdout(), "{}", crate::viz::table::summary(&rows));
    Ok(0)
}
