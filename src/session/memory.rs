//! Before training under `ulimit -v`: one trial step in a child process, under the same limit.
//!
//! See [`crate::train::memory`]: an allocation beyond the limit aborts the process, so whether
//! a step fits is found out in a child that may abort, before the run directory is touched.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context as _, Result};

use crate::config::Config;
use crate::train::memory::{self, MemoryError, Trial, Watch};

/// The hidden subcommand's name (`convscope memory-trial --classes N`, config TOML on stdin).
pub const SUBCOMMAND: &str = "memory-trial";

/// The child's side: read the config from stdin, run the trial step, print it as JSON.
pub fn run_trial(classes: usize) -> Result<i32> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
        .context("reading the config from stdin")?;
    let cfg: Config = toml::from_str(&text).context("the config on stdin")?;
    let trial = memory::trial_step(&cfg, classes)?;
    let mut out = std::io::stdout();
    writeln!(out, "{}", serde_json::to_string(&trial)?).context("writing the trial")?;
    Ok(0)
}

/// The parent's side: with no limit set, nothing to do (`None`). Under a limit, run one step
/// of `cfg` for `classes` classes in a child; a child that ran out of memory is
/// [`MemoryError::StepTooBig`]; a trial that could not run at all is logged and skipped (the
/// limit is then watched with no step size known).
pub fn check(cfg: &Config, classes: usize) -> Result<Option<Watch>, MemoryError> {
    let Some(limit) = memory::limit() else {
        return Ok(None);
    };
    match trial_in_child(cfg, classes) {
        Ok(Some(trial)) => {
            tracing::info!(
                "memory limit {} MiB: a trial step mapped {} MiB at its peak ({} MiB for the step)",
                limit >> 20,
                trial.peak >> 20,
                trial.step_growth() >> 20
            );
            Ok(Some(Watch::new(limit, trial.step_growth())))
        }
        Ok(None) => {
            let [_, h, w] = cfg.input_shape();
            Err(MemoryError::StepTooBig {
                batch: cfg.train.batch_size,
                size: if h == w {
                    h.to_string()
                } else {
                    format!("{h}x{w}")
                },
                limit_mib: limit >> 20,
            })
        }
        Err(e) => {
            tracing::warn!("the memory trial could not run ({e:#}); training goes on without it");
            Ok(Some(Watch::new(limit, 0)))
        }
    }
}

/// `Ok(None)` when the child ran out of memory.
fn trial_in_child(cfg: &Config, classes: usize) -> Result<Option<Trial>> {
    let exe = std::env::current_exe().context("finding this program")?;
    let toml = toml::to_string(cfg).context("writing the config for the trial")?;
    let mut child = std::process::Command::new(exe)
        .args([SUBCOMMAND, "--classes", &classes.to_string()])
        .env_remove("CONVSCOPE_HEADLESS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the trial")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(toml.as_bytes())
            .context("sending the config to the trial")?;
    }
    let out = child.wait_with_output().context("waiting for the trial")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        let trial = serde_json::from_str(text.trim())
            .with_context(|| format!("the trial's answer {text:?}"))?;
        return Ok(Some(trial));
    }
    if ran_out(out.status, &stderr) {
        return Ok(None);
    }
    anyhow::bail!("the trial failed: {}", stderr.trim())
}

/// An abort (Rust's `memory allocation of N bytes failed`) or a kill: what running out looks like.
fn ran_out(status: std::process::ExitStatus, stderr: &str) -> bool {
    use std::os::unix::process::ExitStatusExt as _;
    stderr.contains("memory allocation of")
        || matches!(status.signal(), Some(s) if s == rustix::process::Signal::ABORT.as_raw() || s == rustix::process::Signal::KILL.as_raw())
}

/// How many classes a data folder has (its sub-folders), at least 2: enough for the trial.
#[must_use]
pub fn classes_in(data: &Path) -> usize {
    std::fs::read_dir(data)
        .map_or(0, |d| d.flatten().filter(|e| e.path().is_dir()).count())
        .max(2)
}
