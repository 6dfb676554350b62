//! Headless progress on stdout, as Keras and PyTorch scripts print it (so `| tee log` and
//! `> log` capture it): an indicatif bar on a terminal, plain lines otherwise. Warnings and
//! errors go to stderr.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::{Event, EventReceiver, FinishReason, RunState, StartInfo};

/// How the run ended, as the printer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Completed,
    Stopped,
    Failed(String),
    /// The worker went away without a final event.
    Vanished,
}

/// Print events until the worker finishes.
pub fn print_events(mut events: EventReceiver) -> Ending {
    let tty =
        std::io::stdout().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let mut printer = Printer::new(tty);
    while let Some(event) = events.blocking_recv() {
        if let Some(end) = printer.handle(&event) {
            printer.finish();
            return end;
        }
    }
    printer.finish();
    Ending::Vanished
}

struct Printer {
    bar: Option<ProgressBar>,
    tty: bool,
    epochs: usize,
    last_line: Instant,
}

/// One progress line on stdout, flushed at once (a pipe's buffer would hold it back).
fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

impl Printer {
    fn new(tty: bool) -> Self {
        Self {
            bar: None,
            tty,
            epochs: 0,
            last_line: Instant::now(),
        }
    }

    fn say(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => line(text),
        }
    }

    /// A warning on stderr, above the bar if there is one.
    fn warn(&self, text: &str) {
        let print = || {
            let _ = writeln!(std::io::stderr(), "{text}");
        };
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }

    /// The banner, and the bar on a terminal.
    fn started(&mut self, s: &StartInfo) {
        self.epochs = s.epochs;
        self.say(&format!(
            "convscope: training {} classes ({}) on {} | {} train / {} val images, {} skipped | {} batches of {} per epoch | run {}",
            s.classes.len(),
            s.classes.join(", "),
            s.device,
            s.train_images,
            s.val_images,
            s.skipped_images,
            s.batches_per_epoch,
            s.batch_size,
            s.run_dir.display()
        ));
        if s.start_epoch > 1 || s.start_batch > 0 {
            self.say(&format!(
                "resuming at epoch {}, batch {}",
                s.start_epoch,
                s.start_batch + 1
            ));
        }
        if self.tty {
            let total = (s.epochs + 1 - s.start_epoch.min(s.epochs)) * s.batches_per_epoch;
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} batches, {elapsed_precise} elapsed, ETA {eta_precise} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_position(s.start_batch as u64);
            bar.enable_steady_tick(Duration::from_millis(250));
            self.bar = Some(bar);
        }
    }

    fn handle(&mut self, event: &Event) -> Option<Ending> {
        match event {
            Event::Started(s) => self.started(s),
            Event::Batch(b) => {
                if let Some(bar) = &self.bar {
                    bar.set_prefix(format!("epoch {}/{}", b.epoch, self.epochs));
                    bar.set_message(format!(
                        "loss {:.4} acc {:.3} {:.1} img/s",
                        b.loss, b.accuracy, b.images_per_sec
                    ));
                    let done = (b.epoch.saturating_sub(1)) * b.batches + b.batch;
                    bar.set_position(done.min(bar.length().unwrap_or(u64::MAX) as usize) as u64);
                } else if self.last_line.elapsed() >= Duration::from_secs(5) || b.batch == b.batches
                {
                    self.last_line = Instant::now();
                    line(&format!(
                        "epoch {}/{} batch {}/{} loss {:.4} acc {:.3} {:.1} img/s",
                        b.epoch,
                        self.epochs,
                        b.batch,
                        b.batches,
                        b.loss,
                        b.accuracy,
                        b.images_per_sec
                    ));
                }
            }
            Event::Epoch(e) => {
                let val = match (e.val_loss, e.val_accuracy) {
                    (Some(l), Some(a)) => format!(" val_loss {l:.4} val_acc {a:.4}"),
                    _ => String::new(),
                };
                self.say(&format!(
                    "epoch {}/{} loss {:.4} acc {:.4}{} ({:.1}s, {:.1} img/s)",
                    e.epoch,
                    self.epochs,
                    e.train_loss,
                    e.train_accuracy,
                    val,
                    e.seconds,
                    e.images_per_sec
                ));
            }
            Event::Checkpoint(c) => {
                if !self.tty {
                    line(&format!("checkpoint {}", c.name));
                }
            }
            Event::Status(s) => match s.state {
                RunState::Tuning => {
                    self.say(&format!(
                        "tuning GPU kernels (about a minute the first time on a machine; results are kept in {})",
                        crate::device::tuning_cache_dir().display()
                    ));
                }
                RunState::Paused => self.say("paused"),
                RunState::Stopping => {
                    self.say("stopping: finishing the batch and writing a checkpoint");
                }
                RunState::Preparing
                | RunState::Running
                | RunState::Stalled
                | RunState::Interrupted => {}
            },
            Event::Warning(w) => self.warn(&format!("warning: {}", w.message)),
            Event::Finished(f) => {
                if let Some(c) = f.cause {
                    self.warn(&format!("convscope: stopped by {}", c.describe()));
                }
                return Some(match f.reason {
                    FinishReason::Completed => Ending::Completed,
                    FinishReason::Stopped => Ending::Stopped,
                });
            }
            Event::Failed(f) => return Some(Ending::Failed(f.error.clone())),
            Event::Filters(_) | Event::FeatureMaps(_) | Event::Imported(_) | Event::Health(_) => {}
        }
        None
    }
}
