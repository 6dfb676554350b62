//! tracing to the run's log file (never to the screen under the TUI).

use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Log to `file` (info and up, `RUST_LOG` overrides); with `stderr_warnings`, warnings and
/// errors also go to stderr (headless runs).
pub fn init(file: &Path, stderr_warnings: bool) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(Mutex::new(f))
        .with_ansi(false)
        .with_thread_names(true)
        .with_filter(filter());
    let stderr_layer = stderr_warnings.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .without_time()
            .with_target(false)
            .with_ansi(false)
            // The trainer's own failure is printed once by the command, not twice.
            .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                *m.level() == tracing::Level::WARN
                    || (*m.level() == tracing::Level::ERROR && m.target() != "convscope::train")
            }))
    });
    // A second init in the same process (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
    Ok(())
}
