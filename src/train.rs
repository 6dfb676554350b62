//! The training loop on its own OS thread: batches, validation, checkpoints, events.

pub mod memory;
pub mod snapshot;
pub mod timing;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};

use crate::config::Config;
use crate::data::{Batch, Dataset, Split};
use crate::events::health::HealthSnapshot;
use crate::events::{
    BatchMetrics, CheckpointInfo, Command, EpochMetrics, Event, EventSender, FailInfo, FinishInfo,
    FinishReason, RunState, StartInfo, StatusChange, StopCause,
};
use crate::infer::{inspect, restore};
use crate::model::{self, Net, ReadError, health};
use crate::run::checkpoint::{self, Checkpoint, TrainState};
use crate::run::event_log::EventLog;
use crate::run::validation::Recorder;
use crate::run::{ClassesInfo, Identity, RunDir, RunError, SkippedFile};

/// Why training could not go on.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Restore(#[from] restore::RestoreError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Memory(#[from] memory::MemoryError),
    #[error(
        "the loss became {value} at epoch {epoch}, batch {batch}: training diverged and was stopped. {kept} Try a lower learning rate (optimizer.lr / --lr, now {lr:?})."
    )]
    NonFinite {
        value: f32,
        epoch: usize,
        batch: usize,
        kept: String,
        lr: f64,
    },
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
}

/// Everything a training run needs.
#[derive(Debug, Clone)]
pub struct Job {
    pub cfg: Config,
    /// The device named in `cfg.train.device`, made by the caller (before the run directory).
    pub device: burn::tensor::Device,
    pub data_dir: PathBuf,
    pub val_dir: Option<PathBuf>,
    pub run: RunDir,
    /// Continue from this checkpoint instead of starting fresh.
    pub resume: Option<Checkpoint>,
    /// The bundled sample photos, offered as feature-map probes besides the validation images.
    pub samples: Vec<PathBuf>,
    /// Offer the samples first (the demo, whose own images are synthetic); a real dataset's
    /// validation images come first otherwise.
    pub samples_first: bool,
    /// Who asks for the next `Command::Stop`, set before it is sent (a viewer through the
    /// control socket, a hand-off to the background); unset, the training's own screen.
    pub stop_by: StopBy,
    /// Under `ulimit -v`: stop with a checkpoint before a step would not fit.
    pub memory: Option<memory::Watch>,
    /// Where each epoch's wall time went, added once the epoch is done (`bench --end-to-end`).
    pub breakdown: Option<timing::Breakdown>,
}

/// Who asks for a stop, shared between the worker and those who send it `Command::Stop`.
#[derive(Debug, Clone, Default)]
pub struct StopBy(Arc<std::sync::Mutex<Option<StopCause>>>);

impl StopBy {
    /// Say who asks, before sending the stop.
    pub fn set(&self, cause: StopCause) {
        if let Ok(mut c) = self.0.lock() {
            *c = Some(cause);
        }
    }

    /// Who asked, if anyone said.
    #[must_use]
    pub fn get(&self) -> Option<StopCause> {
        self.0.lock().ok().and_then(|c| *c)
    }
}

/// What asks the run to stop from outside (a signal), looked at between batches: handled like
/// `Command::Stop`.
pub trait Interrupt: Send + 'static {
    /// The number of the signal that asked (0 when not known), once one has.
    fn requested(&self) -> Option<i32>;
}

impl Interrupt for crate::signals::Signals {
    fn requested(&self) -> Option<i32> {
        self.stop
            .load(std::sync::atomic::Ordering::SeqCst)
            .then(|| self.received())
    }
}

/// How a run ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Stopped,
}

/// Start the worker thread `trainer`; it reads `commands` between batches and treats a signal
/// (`interrupt`) like `Command::Stop`.
pub fn spawn(
    job: Job,
    events: EventSender,
    commands: Receiver<Command>,
    interrupt: impl Interrupt,
) -> std::io::Result<std::thread::JoinHandle<Result<Outcome, TrainError>>> {
    std::thread::Builder::new()
        .name("trainer".into())
        .spawn(move || {
            let mut worker = Worker {
                events,
                commands,
                pending: std::collections::VecDeque::new(),
                stop_by: job.stop_by.clone(),
                interrupt: Box::new(interrupt),
                log: None,
                events_open: true,
                run_identity: None,
                paused: Duration::ZERO,
            };
            let run = job.run.clone();
            let mut result = worker.run(job);
            // Whatever failed (a checkpoint half-written when the folder went, say), a run
            // directory deleted or replaced meanwhile is the cause to report: advice about
            // the folder now at that path would be about another run.
            if result.is_err()
                && let Err(vanished) = worker.check_run_dir(&run)
            {
                result = Err(vanished);
            }
            match &result {
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("training failed: {e}");
                    worker.emit(Event::Failed(FailInfo {
                        error: e.to_string(),
                    }));
                }
            }
            result
        })
}

struct Worker {
    events: EventSender,
    commands: Receiver<Command>,
    /// Commands taken from `commands` and coalesced, not handled yet.
    pending: std::collections::VecDeque<Command>,
    interrupt: Box<dyn Interrupt>,
    stop_by: StopBy,
    log: Option<EventLog>,
    events_open: bool,
    /// The run directory's identity at the start, to notice that it was deleted or replaced.
    run_identity: Option<Identity>,
    /// Time spent paused so far: not training time (epoch seconds, throughput, ETA leave it out).
    paused: Duration,
}

/// Running sums over an epoch.
#[derive(Debug, Clone, Copy, Default)]
struct Accum {
    loss_sum: f64,
    correct: u64,
    seen: u64,
}

impl Accum {
    fn add(&mut self, loss: f32, correct: usize, n: usize) {
        self.loss_sum += f64::from(loss) * n as f64;
        self.correct += correct as u64;
        self.seen += n as u64;
    }
    fn loss(&self) -> f32 {
        (self.loss_sum / self.seen.max(1) as f64) as f32
    }
    fn accuracy(&self) -> f32 {
        self.correct as f32 / self.seen.max(1) as f32
    }
}

/// A stable 64-bit mix of the run seed and a position, for per-batch RNG seeds.
#[must_use]
pub fn mix_seed(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

enum Control {
    Continue,
    Stop(Option<StopCause>),
}

/// What a checkpoint leaves of the older ones (`train.keep_checkpoints`, `train.keep_optimizer`;
/// 0 keeps all).
#[derive(Clone, Copy)]
struct Keep {
    checkpoints: usize,
    optimizer: usize,
}

impl Keep {
    /// A checkpoint asked for mid-epoch removes nothing but older mid-epoch ones.
    const ALL: Self = Self {
        checkpoints: usize::MAX,
        optimizer: 0,
    };
}

impl From<&crate::config::TrainConfig> for Keep {
    fn from(t: &crate::config::TrainConfig) -> Self {
        Self {
            checkpoints: t.keep_checkpoints,
            optimizer: t.keep_optimizer,
        }
    }
}

impl Worker {
    fn emit(&mut self, event: Event) {
        if let Some(log) = &mut self.log
            && let Err(e) = log.write(&event)
        {
            tracing::error!("cannot append to events.jsonl: {e}");
        }
        if self.events_open && !self.events.send(event) {
            // The observer is gone (TUI closed); keep training and logging.
            self.events_open = false;
        }
    }

    fn emit_all(&mut self, events: Vec<Event>) {
        for e in events {
            self.emit(e);
        }
    }

    /// Stop when the run directory was deleted or replaced (a new run made in its place): a
    /// checkpoint written now would land among another run's.
    fn check_run_dir(&self, run: &RunDir) -> Result<(), TrainError> {
        match self.run_identity {
            Some(id) if Identity::of(&run.path).ok() != Some(id) => {
                Err(TrainError::Run(RunError::Vanished {
                    path: run.path.clone(),
                }))
            }
            _ => Ok(()),
        }
    }

    fn run(&mut self, job: Job) -> Result<Outcome, TrainError> {
        Training::prepare(self, job)?.train()
    }

    /// The next command, the picture requests that later ones replace left out
    /// ([`crate::events::coalesce`]); waits up to `wait` for one (`None`: not at all).
    fn next_command(&mut self, wait: Option<Duration>) -> Result<Command, RecvTimeoutError> {
        if let Some(c) = self.pending.pop_front() {
            return Ok(c);
        }
        let first = match wait {
            Some(t) => self.commands.recv_timeout(t)?,
            None => self.commands.try_recv().map_err(|e| match e {
                std::sync::mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                std::sync::mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            })?,
        };
        let mut queued = vec![first];
        queued.extend(self.commands.try_iter());
        self.pending = crate::events::coalesce(queued).into();
        self.pending.pop_front().ok_or(RecvTimeoutError::Timeout)
    }

    /// Whether a command (or a signal's stop) is waiting to be handled; a command that has
    /// arrived is moved to `pending`, where [`Self::next_command`] takes it first.
    fn command_waiting(&mut self) -> bool {
        if self.pending.is_empty()
            && let Ok(c) = self.commands.try_recv()
        {
            self.pending.push_back(c);
        }
        !self.pending.is_empty() || self.interrupt.requested().is_some()
    }

    /// Say that the run stops, and why (in the log too), before its checkpoint is written.
    fn stopping(&mut self, cause: Option<StopCause>) -> Control {
        if let Some(c) = cause {
            tracing::warn!("stopped by {}; writing a checkpoint", c.describe());
        } else {
            tracing::warn!("stopping; writing a checkpoint");
        }
        self.emit(Event::Status(StatusChange {
            state: RunState::Stopping,
        }));
        Control::Stop(cause)
    }

    /// Time since `t0` not spent paused.
    fn training_time(&self, t0: Instant) -> Duration {
        t0.elapsed().saturating_sub(self.paused)
    }
}

/// Test hook, only in builds with the `test-hooks` feature (which `cargo test` turns on for
/// the binary its tests run): `CONVSCOPE_SLOW_BATCH_MS` slows every batch down so that
/// signals and commands can land mid-epoch.
#[cfg(feature = "test-hooks")]
fn batch_delay() -> Option<Duration> {
    std::env::var("CONVSCOPE_SLOW_BATCH_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// Without the `test-hooks` feature no batch is slowed down.
#[cfg(not(feature = "test-hooks"))]
fn batch_delay() -> Option<Duration> {
    None
}

/// One run's training loop, and what its epochs, batches, commands and checkpoints share.
struct Training<'w> {
    worker: &'w mut Worker,
    cfg: Config,
    /// The device validation runs on; `ad_device` is it with autodiff, for training.
    device: Device,
    ad_device: Device,
    run: RunDir,
    dataset: Dataset,
    net: Net,
    optim: ModuleOptimizer,
    state: TrainState,
    inspector: inspect::Inspector,
    /// Batches per epoch.
    batches: usize,
    /// The epoch (1-based) and batch (0-based) this process starts at.
    start: (usize, usize),
    /// When this process began training, and the run's training seconds before it.
    t0: Instant,
    base_seconds: f64,
    /// Whether the first step (which tunes a GPU's kernels) is done.
    tuned: bool,
    /// The least time between two batch events.
    min_interval: Duration,
    /// A pause in every batch ([`batch_delay`]).
    delay: Option<Duration>,
    memory: Option<memory::Watch>,
    /// The per-image validation record of each epoch (`RUN/validation/`).
    record: Recorder,
    /// The model summary's layer names, by step (unit health names its layers so).
    layer_names: Vec<String>,
    /// Unit health of the epochs so far (`RUN/health/`), sent after each validation.
    health: HealthSnapshot,
    /// Writes checkpoints while training goes on.
    writer: checkpoint::Background,
    /// The file images the checkpoints are copied into.
    snapshots: snapshot::Snapshots,
    /// Where the epochs' time goes, when someone asked ([`Job::breakdown`]).
    breakdown: Option<timing::Breakdown>,
    /// The epoch under way's times so far.
    times: timing::EpochTimes,
}

/// An epoch's running figures: its sums, its time, and the throughput window of the next
/// batch event.
struct EpochProgress {
    acc: Accum,
    started: Instant,
    paused_before: Duration,
    images: usize,
    /// The rate in batch events is the training's: the last epoch's validation, checkpoint
    /// and snapshots are not in its first window.
    last_event: Instant,
    paused_at_last_event: Duration,
    images_since_event: usize,
}

impl<'w> Training<'w> {
    /// Read the data, build (or restore) the network and say what is about to run.
    fn prepare(worker: &'w mut Worker, job: Job) -> Result<Self, TrainError> {
        let Job {
            cfg,
            device,
            data_dir,
            val_dir,
            run,
            resume,
            samples,
            samples_first,
            stop_by: _,
            memory,
            breakdown,
        } = job;
        worker.run_identity = Some(Identity::of(&run.path).map_err(|error| RunError::Io {
            path: run.path.clone(),
            error,
        })?);
        worker.log = Some(EventLog::append(&run.events_path())?);
        worker.emit(Event::Status(StatusChange {
            state: RunState::Preparing,
        }));
        let dataset = Dataset::open(&data_dir, val_dir.as_deref(), &cfg)?;
        record_classes(&run, &dataset, resume.as_ref())?;
        let record = Recorder::new(&run.path, &dataset.classes, &dataset.val)?;
        let summary = model::summary::summarize(&cfg, dataset.classes.len())?;
        let layer_names = summary.iter().map(|r| r.name.clone()).collect();
        let batches = dataset.batches_per_epoch(cfg.train.batch_size);
        let ad_device = device.clone().autodiff();
        let mut net = Net::new(&cfg, dataset.classes.len(), cfg.train.seed, &ad_device)?;
        let mut optim = crate::model::ops::adam::adam(&cfg.optimizer);
        let mut state = TrainState {
            epoch: 0,
            batch: batches,
            batches_per_epoch: batches,
            seed: cfg.train.seed,
            ..TrainState::default()
        };
        if let Some(cp) = &resume {
            (net, optim, state) = restore::resume_from(cp, net, optim, batches)?;
        }
        let val = dataset.val.iter().take(64).map(|s| s.path.clone());
        let probes: Vec<PathBuf> = if samples_first {
            samples.into_iter().chain(val).collect()
        } else {
            val.chain(samples).collect()
        };
        // Its first image is asked for once `started` is out (read on a thread of its own).
        let inspector = inspect::Inspector::new(&cfg, &dataset.classes, &run, None);
        let min_interval = Duration::from_secs_f64(1.0 / f64::from(cfg.train.batch_events_per_sec));
        let mut training = Self {
            worker,
            start: state.resume_point(),
            base_seconds: state.train_seconds,
            cfg,
            device,
            ad_device,
            run,
            dataset,
            net,
            optim,
            state,
            inspector,
            batches,
            t0: Instant::now(),
            tuned: false,
            min_interval,
            delay: batch_delay(),
            memory,
            record,
            layer_names,
            health: HealthSnapshot::default(),
            writer: checkpoint::Background::default(),
            snapshots: snapshot::Snapshots::default(),
            breakdown,
            times: timing::EpochTimes::default(),
        };
        // A resumed run's trend starts with the epochs it has already validated.
        if let Some(before) =
            crate::run::health::snapshot(&training.run.path, Some(training.state.epoch))
        {
            training.health = before;
        }
        training.announce(summary, probes, &data_dir)?;
        Ok(training)
    }

    /// Tell observers what runs (`started`, a warning about the data's folders, the first
    /// snapshots, the state), then start the clock.
    fn announce(
        &mut self,
        summary: Vec<crate::events::SummaryRow>,
        probes: Vec<PathBuf>,
        data_dir: &Path,
    ) -> Result<(), TrainError> {
        let (start_epoch, start_batch) = self.start;
        let classes = &self.dataset.classes;
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let info = StartInfo {
            run_dir: self.run.path.clone(),
            device: crate::device::describe(&self.cfg.train.device),
            classes: classes.clone(),
            train_images: self.dataset.train.len(),
            val_images: self.dataset.val.len(),
            skipped_images: self.dataset.skipped_count(),
            epochs: self.cfg.train.epochs,
            batches_per_epoch: self.batches,
            batch_size: self.cfg.train.batch_size,
            start_epoch,
            start_batch,
            params: self.net.num_params(),
            summary,
            probe_images: probes,
            time: started,
        };
        let first_probe = info.probe_images.first().cloned();
        self.worker.emit(Event::Started(Box::new(info)));
        if start_epoch == 1
            && start_batch == 0
            && let Some(message) =
                crate::data::split_folders_warning(data_dir, &self.dataset.classes)
        {
            // On the screen, on stderr when headless, in events.jsonl; and in the log.
            tracing::info!("warning: {message}");
            self.worker
                .emit(Event::Warning(crate::events::WarningInfo { message }));
        }
        tracing::info!(
            "training {} classes, {} train / {} val images, {} batches per epoch on {}",
            self.dataset.classes.len(),
            self.dataset.train.len(),
            self.dataset.val.len(),
            self.batches,
            self.cfg.train.device
        );
        if let Some(image) = first_probe {
            self.inspector.probe(image);
        }
        let snapshots = self.inspector.snapshots(&self.net, self.state.epoch);
        self.worker.emit_all(snapshots);
        let gpu = !matches!(
            crate::config::parse_device(&self.cfg.train.device)?,
            crate::config::DeviceSpec::Cpu
        );
        self.worker.emit(Event::Status(StatusChange {
            state: if gpu {
                RunState::Tuning
            } else {
                RunState::Running
            },
        }));
        self.tuned = !gpu;
        self.t0 = Instant::now();
        Ok(())
    }

    /// Train the remaining epochs, then serve the observer until it goes.
    fn train(mut self) -> Result<Outcome, TrainError> {
        if let Some(watch) = self.memory {
            watch.check_start()?;
        }
        let (start_epoch, start_batch) = self.start;
        for epoch in start_epoch..=self.cfg.train.epochs {
            let first_batch = if epoch == start_epoch { start_batch } else { 0 };
            if let Some(outcome) = self.epoch(epoch, first_batch)? {
                return Ok(outcome);
            }
        }
        self.finish_written(
            FinishReason::Completed,
            self.cfg.train.epochs,
            self.batches,
            None,
        )
    }

    /// Train one epoch from batch `first_batch` (0-based), validate, checkpoint and take the
    /// epoch-end snapshots; `Some` when a stop ended the run.
    fn epoch(&mut self, epoch: usize, first_batch: usize) -> Result<Option<Outcome>, TrainError> {
        let now = Instant::now();
        let mut progress = EpochProgress {
            acc: if first_batch > 0 {
                Accum {
                    loss_sum: self.state.loss_sum,
                    correct: self.state.correct,
                    seen: self.state.seen,
                }
            } else {
                Accum::default()
            },
            started: now,
            paused_before: self.worker.paused,
            images: 0,
            last_event: now,
            paused_at_last_event: self.worker.paused,
            images_since_event: 0,
        };
        self.times = timing::EpochTimes {
            epoch,
            ..timing::EpochTimes::default()
        };
        let batch_size = self.cfg.train.batch_size;
        let mut batches = self
            .dataset
            .batches(Split::Train, epoch, first_batch, batch_size);
        for b in first_batch.. {
            // b: the 0-based index of this batch
            let asked = Instant::now();
            let Some(batch) = batches.next() else {
                break;
            };
            self.times.data_wait += asked.elapsed();
            if batch.len == 0 {
                continue;
            }
            let step = Instant::now();
            self.batch(epoch, b, batch, &mut progress)?;
            self.times.steps += step.elapsed();
            self.checkpoint_done(false)?;
            self.worker.check_run_dir(&self.run)?;
            if let Some(watch) = &mut self.memory
                && let Err(e) = watch.check(&self.run.path)
            {
                // Out of room for another step: keep what was learnt, say why and how to go on.
                self.checkpoint(Keep::from(&self.cfg.train))?;
                self.checkpoint_done(true)?;
                return Err(TrainError::Memory(e));
            }
            if b + 1 < self.batches
                && let Control::Stop(cause) = self.handle_commands()?
            {
                self.checkpoint(Keep::from(&self.cfg.train))?;
                return Ok(Some(self.finish_written(
                    FinishReason::Stopped,
                    epoch,
                    b + 1,
                    cause,
                )?));
            }
        }
        drop(batches);
        self.end_epoch(epoch, &progress)?;
        if let Some(breakdown) = &self.breakdown {
            self.times.wall = now.elapsed();
            self.times.memory_mib = timing::memory_mib();
            breakdown.push(self.times);
        }
        if epoch < self.cfg.train.epochs
            && let Control::Stop(cause) = self.handle_commands()?
        {
            return Ok(Some(self.finish_written(
                FinishReason::Stopped,
                epoch,
                self.batches,
                cause,
            )?));
        }
        Ok(None)
    }

    /// One optimizer step on batch `b` (0-based) of `epoch`, and its event when one is due.
    fn batch(
        &mut self,
        epoch: usize,
        b: usize,
        batch: Batch,
        progress: &mut EpochProgress,
    ) -> Result<(), TrainError> {
        let [c, h, w] = self.cfg.input_shape();
        // Dropout masks depend only on (seed, epoch, batch): resuming replays them exactly.
        self.ad_device
            .seed(mix_seed(self.cfg.train.seed, epoch as u64, b as u64));
        let x = Tensor::<4>::from_data(
            TensorData::new(batch.images, [batch.len, c, h, w]),
            &self.ad_device,
        );
        let logits = self.net.forward(x, true, false).logits;
        let outputs = logits.dims()[1];
        let loss = model::loss(logits.clone(), &batch.labels, &self.ad_device);
        let loss_value: f32 = loss.clone().into_scalar();
        if !loss_value.is_finite() {
            // The checkpoint being written is the last good one.
            self.checkpoint_done(true)?;
            return Err(self.diverged(loss_value, epoch, b + 1));
        }
        let logit_values = model::read_f32(logits, "logits")?;
        let correct = model::count_correct(&logit_values, outputs, &batch.labels);
        if let Some(pause) = self.delay {
            std::thread::sleep(pause);
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.net);
        // The optimizer takes the network and gives back the stepped one.
        let net = std::mem::replace(&mut self.net, Net::empty());
        self.net = self.optim.step(self.cfg.optimizer.lr, net, grads);
        progress.acc.add(loss_value, correct, batch.len);
        progress.images += batch.len;
        progress.images_since_event += batch.len;
        let state = &mut self.state;
        state.step += 1;
        state.epoch = epoch;
        state.batch = b + 1;
        state.loss_sum = progress.acc.loss_sum;
        state.correct = progress.acc.correct;
        state.seen = progress.acc.seen;
        state.train_seconds = self.base_seconds + self.worker.training_time(self.t0).as_secs_f64();
        if !self.tuned {
            self.tuned = true;
            self.worker.emit(Event::Status(StatusChange {
                state: RunState::Running,
            }));
        }
        let now = Instant::now();
        // A command waiting (pause, stop, checkpoint) gets this batch's event whatever the
        // rate: what the screen shows then is where the run is.
        if now.duration_since(progress.last_event) >= self.min_interval
            || b + 1 == self.batches
            || self.worker.command_waiting()
        {
            let secs = now
                .duration_since(progress.last_event)
                .saturating_sub(
                    self.worker
                        .paused
                        .saturating_sub(progress.paused_at_last_event),
                )
                .as_secs_f32()
                .max(1e-6);
            self.worker.emit(Event::Batch(BatchMetrics {
                epoch,
                batch: b + 1,
                batches: self.batches,
                loss: loss_value,
                accuracy: correct as f32 / batch.len as f32,
                images_per_sec: progress.images_since_event as f32 / secs,
                elapsed: self.state.train_seconds,
            }));
            progress.last_event = now;
            progress.paused_at_last_event = self.worker.paused;
            progress.images_since_event = 0;
        }
        Ok(())
    }

    /// The error of a loss that became `value` at `batch` (1-based) of `epoch`.
    fn diverged(&self, value: f32, epoch: usize, batch: usize) -> TrainError {
        let kept = match checkpoint::latest(&self.run.checkpoints_path()) {
            Ok((cp, _)) => format!("The last good checkpoint, {}, is kept.", cp.name),
            Err(_) => "No checkpoint was written before it.".to_string(),
        };
        TrainError::NonFinite {
            value,
            epoch,
            batch,
            kept,
            lr: self.cfg.optimizer.lr,
        }
    }

    /// Validate with the epoch's final weights, report the epoch, checkpoint it and send its
    /// snapshots.
    fn end_epoch(&mut self, epoch: usize, progress: &EpochProgress) -> Result<(), TrainError> {
        let began = Instant::now();
        let mut gather = health::Gather::new(&self.net, &self.layer_names);
        let val = validate(
            &self.net,
            &self.dataset,
            epoch,
            self.cfg.train.batch_size,
            &self.device,
            self.cfg.input_shape(),
            &mut self.record,
            &mut gather,
            &mut self.times.validation_data_wait,
        )?;
        self.times.validation = began.elapsed();
        let began = Instant::now();
        self.record.finish(epoch)?;
        let health_event = self.unit_health(&gather, epoch, val.seen > 0)?;
        let seconds = progress
            .started
            .elapsed()
            .saturating_sub(self.worker.paused.saturating_sub(progress.paused_before))
            .as_secs_f64();
        let acc = &progress.acc;
        self.worker.emit(Event::Epoch(EpochMetrics {
            epoch,
            train_loss: acc.loss(),
            train_accuracy: acc.accuracy(),
            val_loss: (val.seen > 0).then(|| val.loss()),
            val_accuracy: (val.seen > 0).then(|| val.accuracy()),
            seconds,
            images_per_sec: progress.images as f32 / seconds.max(1e-9) as f32,
        }));
        if let Some(event) = health_event {
            self.worker.emit(event);
        }
        self.state.epoch = epoch;
        self.state.batch = self.batches;
        self.state.train_seconds =
            self.base_seconds + self.worker.training_time(self.t0).as_secs_f64();
        record_late_skips(&self.run, &self.dataset)?;
        let checkpoint = Instant::now();
        self.checkpoint(Keep::from(&self.cfg.train))?;
        self.times.checkpoint = checkpoint.elapsed();
        let snapshots = self.inspector.on_epoch_end(&self.net, epoch);
        self.worker.emit_all(snapshots);
        let read = self.inspector.poll(&self.net, epoch, Duration::ZERO);
        self.worker.emit_all(read);
        self.times.epoch_end = began.elapsed().saturating_sub(self.times.checkpoint);
        Ok(())
    }

    /// The epoch's unit health: written to `RUN/health/` (a write that fails is a warning, not
    /// the end of the run) and returned as the event for observers; none without validation.
    fn unit_health(
        &mut self,
        gather: &health::Gather,
        epoch: usize,
        validated: bool,
    ) -> Result<Option<Event>, TrainError> {
        if !validated {
            return Ok(None);
        }
        let input_max = 255.0 * self.cfg.data.rescale;
        let h = gather.finish(&self.net, epoch, input_max)?;
        if let Err(e) = crate::run::health::write(&self.run.path, &h) {
            self.worker.emit(Event::Warning(crate::events::WarningInfo {
                message: format!("the unit health of epoch {epoch} was not written: {e}"),
            }));
        }
        self.health.push(h);
        Ok(Some(Event::Health(Box::new(self.health.clone()))))
    }

    /// Say how the run ended (at `batch` of `epoch`), then keep answering the observer (probe
    /// another image, step through epochs) until it goes away. Training commands have
    /// nothing left to act on.
    fn finish(
        &mut self,
        reason: FinishReason,
        epoch: usize,
        batch: usize,
        cause: Option<StopCause>,
    ) -> Outcome {
        // The last epoch's validation record is on disk before anyone hears the run ended.
        if let Err(e) = self.record.flush() {
            self.worker.emit(Event::Warning(crate::events::WarningInfo {
                message: format!("the last epoch's validation record was not written: {e}"),
            }));
        }
        self.worker.emit(Event::Finished(FinishInfo {
            reason,
            epoch,
            batch,
            cause,
        }));
        let (net, epoch) = (&self.net, self.state.epoch);
        while self.worker.events_open {
            let read = self.inspector.poll(net, epoch, Duration::ZERO);
            self.worker.emit_all(read);
            // The observer may go without a word (the screen closed, or headless output
            // ended): look again every 100 ms.
            let cmd = match self.worker.next_command(Some(Duration::from_millis(100))) {
                Ok(cmd) => cmd,
                Err(RecvTimeoutError::Timeout) if self.worker.events.is_closed() => break,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let events = match cmd {
                Command::Probe { image } => {
                    self.inspector.probe(image);
                    Vec::new()
                }
                Command::RefreshFilters => self.inspector.snapshots(net, epoch),
                Command::SelectEpoch { epoch: e } => self.inspector.select_epoch(net, epoch, e),
                Command::Explain { cam } => self.inspector.explain(net, epoch, cam),
                Command::Compare { image } => self.inspector.compare(net, epoch, image),
                Command::Pause | Command::Resume | Command::Stop | Command::CheckpointNow => {
                    Vec::new()
                }
            };
            self.worker.emit_all(events);
        }
        match reason {
            FinishReason::Completed => Outcome::Completed,
            FinishReason::Stopped => Outcome::Stopped,
        }
    }

    /// Start writing a checkpoint of where the run is, then remove what `keep` does not keep.
    /// The weights and optimizer state are copied into the snapshot images here
    /// ([`snapshot::Snapshots::take`]) and written on the checkpoint thread while training goes
    /// on; its event is sent once the files are complete ([`Self::checkpoint_done`]).
    fn checkpoint(&mut self, keep: Keep) -> Result<(), TrainError> {
        self.worker.check_run_dir(&self.run)?;
        let dir = self.run.checkpoints_path();
        let files = self
            .snapshots
            .take(&self.net, &self.optim)
            .map_err(|message| TrainError::Checkpoint {
                path: dir.join(checkpoint::name_for(&self.state)),
                message,
            })?;
        let previous =
            self.writer
                .start(&dir, &self.state, [keep.checkpoints, keep.optimizer], files)?;
        if let Some(written) = previous {
            self.checkpoint_written(written);
        }
        Ok(())
    }

    /// Report the checkpoint written in the background, if it is done (waiting for it with
    /// `wait`); its error is the run's.
    fn checkpoint_done(&mut self, wait: bool) -> Result<(), TrainError> {
        let outcome = if wait {
            self.writer.wait()
        } else {
            self.writer.poll()
        };
        if let Some(written) = outcome.transpose()? {
            self.checkpoint_written(written);
        }
        Ok(())
    }

    /// Say that a checkpoint is complete on disk.
    fn checkpoint_written(&mut self, written: checkpoint::Written) {
        let checkpoint::Written {
            checkpoint: cp,
            freed,
            cpu,
        } = written;
        self.times.writer_cpu += cpu.unwrap_or_default();
        self.times.written += 1;
        if freed > 0 {
            tracing::info!("optimizer state of older checkpoints dropped: {freed} bytes freed");
        }
        tracing::info!("checkpoint {} written", cp.name);
        self.worker.emit(Event::Checkpoint(CheckpointInfo {
            epoch: cp.state.epoch,
            batch: cp.state.batch,
            name: cp.name,
        }));
    }

    /// Wait for the checkpoint being written, then [`Self::finish`].
    fn finish_written(
        &mut self,
        reason: FinishReason,
        epoch: usize,
        batch: usize,
        cause: Option<StopCause>,
    ) -> Result<Outcome, TrainError> {
        self.checkpoint_done(true)?;
        Ok(self.finish(reason, epoch, batch, cause))
    }

    /// Handle pending commands; blocks while paused, and counts the time paused.
    fn handle_commands(&mut self) -> Result<Control, TrainError> {
        let mut pause_began = None;
        let control = self.handle_commands_pausing(&mut pause_began);
        if let Some(began) = pause_began {
            self.worker.paused += began.elapsed();
        }
        control
    }

    /// [`Self::handle_commands`]; `pause_began` is set when a pause starts.
    fn handle_commands_pausing(
        &mut self,
        pause_began: &mut Option<Instant>,
    ) -> Result<Control, TrainError> {
        let mut paused = false;
        loop {
            // A probe image read meanwhile (reading it never holds up the training).
            let read = self
                .inspector
                .poll(&self.net, self.state.epoch, Duration::ZERO);
            self.worker.emit_all(read);
            self.checkpoint_done(false)?;
            if let Some(signal) = self.worker.interrupt.requested() {
                return Ok(self.worker.stopping(StopCause::from_signal(signal)));
            }
            let cmd = if paused {
                match self.worker.next_command(Some(Duration::from_millis(100))) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => continue,
                    // Nobody can resume us any more: carry on training.
                    Err(RecvTimeoutError::Disconnected) => None,
                }
            } else {
                self.worker.next_command(None).ok()
            };
            let Some(cmd) = cmd else {
                if paused {
                    self.worker.emit(Event::Status(StatusChange {
                        state: RunState::Running,
                    }));
                }
                return Ok(Control::Continue);
            };
            match cmd {
                Command::Pause => {
                    if !paused {
                        paused = true;
                        *pause_began = Some(Instant::now());
                        self.worker.emit(Event::Status(StatusChange {
                            state: RunState::Paused,
                        }));
                    }
                }
                Command::Resume => {
                    if paused {
                        self.worker.emit(Event::Status(StatusChange {
                            state: RunState::Running,
                        }));
                        return Ok(Control::Continue);
                    }
                }
                Command::Stop => {
                    let cause = self.worker.stop_by.get().unwrap_or(StopCause::Screen);
                    return Ok(self.worker.stopping(Some(cause)));
                }
                Command::CheckpointNow => self.checkpoint(Keep::ALL)?,
                Command::Probe { image } => self.inspector.probe(image),
                Command::RefreshFilters => {
                    let snapshots = self.inspector.snapshots(&self.net, self.state.epoch);
                    self.worker.emit_all(snapshots);
                }
                Command::SelectEpoch { epoch } => {
                    let snapshots = self
                        .inspector
                        .select_epoch(&self.net, self.state.epoch, epoch);
                    self.worker.emit_all(snapshots);
                }
                Command::Explain { cam } => {
                    let snapshots = self.inspector.explain(&self.net, self.state.epoch, cam);
                    self.worker.emit_all(snapshots);
                }
                Command::Compare { image } => {
                    let snapshots = self.inspector.compare(&self.net, self.state.epoch, image);
                    self.worker.emit_all(snapshots);
                }
            }
        }
    }
}

/// Write classes.json for this run (a resumed run must have the same classes).
fn record_classes(
    run: &RunDir,
    dataset: &Dataset,
    resume: Option<&Checkpoint>,
) -> Result<(), TrainError> {
    let classes = &dataset.classes;
    if let Some(cp) = resume {
        let before = run.read_classes()?;
        if &before.classes != classes {
            return Err(TrainError::Checkpoint {
                path: cp.path.clone(),
                message: format!(
                    "the data folder now has classes {classes:?} but the run was trained on {:?}; resume needs the same classes",
                    before.classes
                ),
            });
        }
    }
    let skipped: Vec<SkippedFile> = dataset
        .skipped
        .iter()
        .map(|s| SkippedFile {
            path: s.path.clone(),
            reason: s.reason.clone(),
        })
        .collect();
    run.write_classes(&ClassesInfo {
        classes: classes.clone(),
        train_images: dataset.train.len(),
        val_images: dataset.val.len(),
        skipped,
    })?;
    Ok(())
}

/// Add the files that went bad during training to those listed in classes.json at the start.
fn record_late_skips(run: &RunDir, dataset: &Dataset) -> Result<(), TrainError> {
    let late = dataset.late_skipped();
    if late.is_empty() {
        return Ok(());
    }
    let mut info = run.read_classes()?;
    for s in late {
        if !info.skipped.iter().any(|k| k.path == s.path) {
            info.skipped.push(SkippedFile {
                path: s.path,
                reason: s.reason,
            });
        }
    }
    run.write_classes(&info)?;
    Ok(())
}

/// Images per chunk of the validation pass's conv layers ([`health::Gather::forward_chunked`]):
/// the first conv layer's output for 8 images of 150x150 is 22 MB, against 180 MB for a batch
/// of 64.
const VALIDATION_CHUNK: usize = 8;

/// The checkpoint files of `net` and `optim` for the writer thread, copied into file images of
/// their own ([`snapshot::Snapshots::take`], which a run reuses from checkpoint to checkpoint).
///
/// # Errors
/// When the files cannot be laid out.
pub fn files_writer(net: &Net, optim: &ModuleOptimizer) -> Result<checkpoint::FilesWriter, String> {
    snapshot::Snapshots::default().take(net, optim)
}

/// Loss and accuracy on the validation split with the epoch's final weights; each image's
/// label, prediction, probabilities and loss go into `record`, unit health into `health`.
#[expect(
    clippy::too_many_arguments,
    reason = "the pass fills four things at once: the metrics, the per-image record, unit health and its data wait"
)]
fn validate(
    net: &Net,
    dataset: &Dataset,
    epoch: usize,
    batch_size: usize,
    device: &Device,
    [c, h, w]: [usize; 3],
    record: &mut Recorder,
    health: &mut health::Gather,
    data_wait: &mut Duration,
) -> Result<Accum, TrainError> {
    let eval = net.valid();
    let mut val = Accum::default();
    let mut batches = dataset.batches(Split::Val, epoch, 0, batch_size);
    loop {
        let asked = Instant::now();
        let Some(batch) = batches.next() else {
            break;
        };
        *data_wait += asked.elapsed();
        if batch.len == 0 {
            continue;
        }
        let vd = eval
            .convs
            .first()
            .map_or_else(|| device.clone(), |p| p.weight.val().device());
        let x = Tensor::<4>::from_data(TensorData::new(batch.images, [batch.len, c, h, w]), &vd);
        // Step by step, so that each layer's output is there to gather (the same logits); a
        // few images at a time up to Flatten, so that no full-size conv output of the whole
        // batch is ever made (the fused training path never makes one).
        health.set_images(&batch.indices);
        health.set_labels(&batch.labels);
        let logits = health.forward_chunked(&eval, x, VALIDATION_CHUNK)?;
        let loss_value: f32 = model::loss(logits.clone(), &batch.labels, &vd).into_scalar();
        let outputs = logits.dims()[1];
        let values = model::read_f32(logits.clone(), "the validation logits")?;
        record.add(&values, outputs, &batch.labels, &batch.indices);
        health.add_logits(&values);
        let correct = crate::infer::classify(logits)?
            .iter()
            .zip(&batch.labels)
            .filter(|(c, label)| c.class == **label)
            .count();
        val.add(loss_value, correct, batch.len);
    }
    Ok(val)
}
