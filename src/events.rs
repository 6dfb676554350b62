//! Messages between the training worker and its observers (TUI, headless printer, viewers),
//! and the `events.jsonl` schema: every `Event` but the big snapshots is one JSON line.

pub mod health;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What the worker reports. Big snapshots are boxed and sent latest-wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started(Box<StartInfo>),
    Batch(BatchMetrics),
    Epoch(EpochMetrics),
    Checkpoint(CheckpointInfo),
    Status(StatusChange),
    Finished(FinishInfo),
    Failed(FailInfo),
    /// Something went wrong that does not stop training (a bad probe image, a skipped file).
    Warning(WarningInfo),
    /// The run's weights were imported from a model file (`convscope import`).
    Imported(Box<ImportInfo>),
    #[serde(skip)]
    Filters(Box<FilterSnapshot>),
    #[serde(skip)]
    FeatureMaps(Box<FeatureSnapshot>),
    /// Unit health after an epoch's validation (also in `RUN/health/`, so not logged).
    #[serde(skip)]
    Health(Box<health::HealthSnapshot>),
}

/// Run facts known before the first batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartInfo {
    #[serde(serialize_with = "lossy_path")]
    pub run_dir: PathBuf,
    pub device: String,
    pub classes: Vec<String>,
    pub train_images: usize,
    pub val_images: usize,
    pub skipped_images: usize,
    pub epochs: usize,
    pub batches_per_epoch: usize,
    pub batch_size: usize,
    /// Epoch (1-based) and batch (0-based) the run starts or resumes at.
    pub start_epoch: usize,
    pub start_batch: usize,
    pub params: usize,
    /// The Keras-style summary of the network.
    pub summary: Vec<SummaryRow>,
    /// Images offered as feature-map probes: the bundled sample photos, then validation images.
    #[serde(serialize_with = "lossy_paths")]
    pub probe_images: Vec<PathBuf>,
    /// Unix time in seconds.
    pub time: f64,
}

impl StartInfo {
    /// Make the probe images of an older run absolute. Runs before 0.1 stored them relative to
    /// the trainer's working directory, which a reader started elsewhere does not share: each is
    /// looked for from the reader's directory, then from the run directory's ancestors (a run
    /// under `runs/NAME` was started two levels up), and left as it was when found nowhere.
    pub fn locate_probe_images(&mut self, run_dir: &std::path::Path) {
        let run_dir = std::path::absolute(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
        for probe in &mut self.probe_images {
            if probe.is_absolute() {
                continue;
            }
            let found = std::env::current_dir()
                .ok()
                .into_iter()
                .chain(run_dir.ancestors().map(std::path::Path::to_path_buf))
                .map(|base| base.join(&*probe))
                .find(|p| p.is_file());
            if let Some(found) = found {
                *probe = found;
            }
        }
    }
}

// serde's own `Path` impl fails on non-UTF-8 names; the run log must never lose an event over one.
fn lossy_path<S: serde::Serializer>(path: &std::path::Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

fn lossy_paths<S: serde::Serializer>(paths: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(paths.iter().map(|p| p.to_string_lossy()))
}

/// Metrics of one training batch (decimated at the source).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchMetrics {
    pub epoch: usize,
    /// 1-based index of the batch within the epoch.
    pub batch: usize,
    pub batches: usize,
    pub loss: f32,
    pub accuracy: f32,
    pub images_per_sec: f32,
    /// Seconds since this process started training.
    pub elapsed: f64,
}

/// Metrics at the end of an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f32,
    pub train_accuracy: f32,
    pub val_loss: Option<f32>,
    pub val_accuracy: Option<f32>,
    pub seconds: f64,
    pub images_per_sec: f32,
}

/// A checkpoint was completely written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    pub epoch: usize,
    /// Batches of `epoch` done when it was taken (equal to the epoch's batch count at epoch end).
    pub batch: usize,
    pub name: String,
}

/// Run state as the worker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Preparing,
    Tuning,
    Running,
    Paused,
    Stopping,
    /// Seen by a viewer: no event for a long while, although the run's process is alive.
    Stalled,
    /// Seen by a viewer: the run's process is gone without a final event.
    Interrupted,
}

/// A change of run state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub state: RunState,
}

/// Why a run ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Completed,
    Stopped,
}

/// What stopped a run before its last epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    /// SIGHUP: the terminal hung up (an SSH connection dropped, the terminal closed).
    Hangup,
    /// SIGTERM.
    Terminate,
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// `x` (or quit and stop) on the training's own screen.
    Screen,
    /// A stop through the run's control socket (a viewer's `x`, or a script).
    Viewer,
    /// `q` then `d` on its screen: the training goes on in a background process of its own.
    HandOff,
}

impl StopCause {
    /// The cause for a signal number, if it is one of the three that stop a run.
    #[must_use]
    pub fn from_signal(signal: i32) -> Option<Self> {
        match signal {
            signal_hook::consts::SIGHUP => Some(Self::Hangup),
            signal_hook::consts::SIGTERM => Some(Self::Terminate),
            signal_hook::consts::SIGINT => Some(Self::Interrupt),
            _ => None,
        }
    }

    /// Who or what stopped it, to follow "stopped by" on the screen and in the log.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Hangup => {
                "SIGHUP (its terminal hung up: SSH connection dropped or terminal closed)"
            }
            Self::Terminate => "SIGTERM",
            Self::Interrupt => "Ctrl-C (SIGINT)",
            Self::Screen => "x on its own screen",
            Self::Viewer => "a viewer (stop through control.sock)",
            Self::HandOff => "q then d on its screen, to go on in a background process",
        }
    }
}

/// The run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishInfo {
    pub reason: FinishReason,
    pub epoch: usize,
    pub batch: usize,
    /// Why a stopped run stopped (absent in logs written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<StopCause>,
}

/// The run failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailInfo {
    pub error: String,
}

/// Where an imported run's weights came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportInfo {
    /// The model file, as given (absolute).
    #[serde(serialize_with = "lossy_path")]
    pub source: PathBuf,
    /// `keras`, `keras-weights-h5`, `keras-legacy-h5`, `pytorch` or `safetensors`.
    pub format: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    pub bytes: u64,
    /// Tensors placed in the network.
    pub tensors: usize,
    /// The checkpoint written.
    pub checkpoint: String,
    /// Unix time in seconds.
    pub time: f64,
}

/// A problem worth showing that training survives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarningInfo {
    pub message: String,
}

/// The weights of every conv layer, as plain numbers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FilterSnapshot {
    pub epoch: usize,
    /// Sent on its own at an epoch end (not asked for): the UI may hold it back (`ui::pacing`).
    pub at_epoch_end: bool,
    pub layers: Vec<LayerFilters>,
}

/// One conv layer's kernel, `weights` in `[out, in, kh, kw]` order.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerFilters {
    pub name: String,
    pub out_channels: usize,
    pub in_channels: usize,
    pub kernel: [usize; 2],
    pub weights: Vec<f32>,
}

/// Every conv/pool layer's output for one probe image.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeatureSnapshot {
    pub epoch: usize,
    /// Sent on its own at an epoch end (not asked for): the UI may hold it back (`ui::pacing`).
    pub at_epoch_end: bool,
    pub image: PathBuf,
    /// The probe as the network sees it: `[channels, h, w]`, values 0..1.
    pub input: Vec<f32>,
    pub input_shape: [usize; 3],
    /// Predicted class index and its probability.
    pub predicted: usize,
    pub probability: f32,
    /// Probability of every class.
    pub probabilities: Vec<f32>,
    pub layers: Vec<LayerMaps>,
    /// Grad-CAM of the probe, while an observer asks for it ([`Command::Explain`]).
    pub cam: Option<CamMap>,
    /// A second image's maps with the same weights, while an observer compares the probe with
    /// it ([`Command::Compare`]).
    pub compare: Option<Box<CompareMaps>>,
}

/// The maps of the image the probe is compared with (B), made with the probe's weights.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompareMaps {
    pub image: PathBuf,
    /// Predicted class index and its probability.
    pub predicted: usize,
    pub probability: f32,
    pub layers: Vec<LayerMaps>,
}

/// The Grad-CAM an observer asks for with each feature-map snapshot. Both are steps from the
/// default, so that the observer needs to know neither the network nor the prediction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CamRequest {
    /// Steps from the default layer (the last conv before its pool) through the conv layers in
    /// order, then "all conv layers averaged", wrapping around.
    pub layer: usize,
    /// Steps from the predicted class through the classes (0: the predicted class; others
    /// explain a class the network did not pick, a counterfactual).
    pub class: usize,
}

/// Grad-CAM of a probe image at one layer (or all conv layers averaged) for one class.
#[derive(Debug, Clone, PartialEq)]
pub struct CamMap {
    /// The layer's summary name, or `all conv layers`.
    pub layer: String,
    /// The class explained, and its probability.
    pub class: usize,
    pub probability: f32,
    /// The map at the layer's resolution, row-major, min-max normalised to `0..=1`; empty when
    /// its maximum was ≤ 0 (no positive evidence for the class at the layer).
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
}

impl CamMap {
    /// Whether anything in the image speaks for the class at the layer.
    #[must_use]
    pub fn has_evidence(&self) -> bool {
        !self.values.is_empty()
    }
}

/// One layer's activations, `data` in `[channels, h, w]` order.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerMaps {
    pub name: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

/// What an observer asks of the worker, read between batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Pause,
    Resume,
    /// Finish the batch, write a checkpoint and end.
    Stop,
    CheckpointNow,
    /// Compute feature maps for this image with the current weights.
    Probe {
        image: PathBuf,
    },
    /// Send a fresh filter snapshot.
    RefreshFilters,
    /// Show filters and feature maps of this epoch's checkpoint (`None`: follow the newest).
    SelectEpoch {
        epoch: Option<usize>,
    },
    /// Add Grad-CAM of the probe to its feature-map snapshots (`None`: stop), and send them again.
    Explain {
        cam: Option<CamRequest>,
    },
    /// Add this image's maps (B) to the probe's feature-map snapshots (`None`: stop), and send
    /// them again.
    Compare {
        image: Option<PathBuf>,
    },
}

impl Command {
    /// Which picture request this is, if it is one: a later request of the same kind replaces
    /// it (see [`coalesce`]).
    fn picture_kind(&self) -> Option<u8> {
        match self {
            Self::Probe { .. } => Some(0),
            Self::SelectEpoch { .. } => Some(1),
            Self::RefreshFilters => Some(2),
            Self::Explain { .. } => Some(3),
            Self::Compare { .. } => Some(4),
            Self::Pause | Self::Resume | Self::Stop | Self::CheckpointNow => None,
        }
    }
}

/// `cmds` in order, without the picture requests (probe, epoch, filter refresh) that a later one
/// of the same kind replaces. Holding `n` queues a probe per key repeat; computing every one of
/// them kept the screen behind the keys. Run commands (pause, stop, ...) are all kept, but for
/// repeated checkpoint requests: queued together they would all write the same weights (300 of
/// them stalled training for 16 s), so only the first stays.
#[must_use]
pub fn coalesce(cmds: Vec<Command>) -> Vec<Command> {
    let kinds: Vec<Option<u8>> = cmds.iter().map(Command::picture_kind).collect();
    let mut checkpoint_seen = false;
    cmds.into_iter()
        .enumerate()
        .filter(|&(i, _)| kinds[i].is_none_or(|k| !kinds[i + 1..].contains(&Some(k))))
        .map(|(_, c)| c)
        .filter(|c| {
            if *c != Command::CheckpointNow {
                return true;
            }
            !std::mem::replace(&mut checkpoint_seen, true)
        })
        .collect()
}

/// One row of the Keras-style model summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Layer name, e.g. `conv2d_1`, `max_pooling2d`, `dense_1`.
    pub name: String,
    /// Keras class name, e.g. `Conv2D`, `MaxPooling2D`, `Dropout`, `Flatten`, `Dense`.
    pub kind: String,
    /// Output shape without the batch dimension, channels first: `[16, 150, 150]`.
    pub output_shape: Vec<usize>,
    pub params: usize,
}

/// Format a channels-first shape the way Keras prints it: `(None, 150, 150, 16)`.
#[must_use]
pub fn keras_shape(shape: &[usize]) -> String {
    let dims: Vec<String> = match shape {
        [c, h, w] => vec![h.to_string(), w.to_string(), c.to_string()],
        other => other.iter().map(ToString::to_string).collect(),
    };
    format!("(None, {})", dims.join(", "))
}

/// Group digits with commas: 10641441 -> "10,641,441".
#[must_use]
pub fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Create the worker -> observer channel: small events queue (bounded), snapshots are latest-wins.
#[must_use]
pub fn channel(capacity: usize) -> (EventSender, EventReceiver) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    let (snap_tx, snap_rx) = tokio::sync::watch::channel(Snapshots::default());
    (
        EventSender {
            tx,
            snapshots: snap_tx,
        },
        EventReceiver {
            rx,
            snapshots: snap_rx,
            pending: Vec::new(),
            seen: (0, 0),
        },
    )
}

/// The newest filter and feature-map snapshots.
#[derive(Debug, Clone, Default)]
struct Snapshots {
    filters: Option<Box<FilterSnapshot>>,
    features: Option<Box<FeatureSnapshot>>,
    generation_filters: u64,
    generation_features: u64,
}

/// Worker side of [`channel`]; used from a plain OS thread.
#[derive(Debug, Clone)]
pub struct EventSender {
    tx: tokio::sync::mpsc::Sender<Event>,
    snapshots: tokio::sync::watch::Sender<Snapshots>,
}

impl EventSender {
    /// Whether the observer has gone away.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Send an event; returns false when the observer is gone.
    ///
    /// Batch metrics are dropped when the queue is full (the observer is behind and a newer one
    /// follows); snapshots replace the previous unread one; everything else waits for room.
    pub fn send(&self, event: Event) -> bool {
        match event {
            Event::Filters(f) => {
                self.snapshots.send_modify(|s| {
                    s.filters = Some(f);
                    s.generation_filters += 1;
                });
                !self.snapshots.is_closed()
            }
            Event::FeatureMaps(f) => {
                self.snapshots.send_modify(|s| {
                    s.features = Some(f);
                    s.generation_features += 1;
                });
                !self.snapshots.is_closed()
            }
            Event::Batch(_) => match self.tx.try_send(event) {
                Ok(()) | Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => true,
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => false,
            },
            other => self.tx.blocking_send(other).is_ok(),
        }
    }
}

/// Observer side of [`channel`].
#[derive(Debug)]
pub struct EventReceiver {
    rx: tokio::sync::mpsc::Receiver<Event>,
    snapshots: tokio::sync::watch::Receiver<Snapshots>,
    pending: Vec<Event>,
    /// Generations of filters and features already handed out.
    seen: (u64, u64),
}

impl EventReceiver {
    /// Whether a snapshot arrived that was not handed out yet (also after the sender is gone).
    fn snapshots_pending(&self) -> bool {
        let s = self.snapshots.borrow();
        (s.generation_filters, s.generation_features) != self.seen
    }

    fn take_snapshots(&mut self) {
        let s = self.snapshots.borrow_and_update();
        // Feature maps last, so an observer that handles events in order sees the filters first.
        if let Some(f) = s
            .features
            .as_ref()
            .filter(|_| s.generation_features != self.seen.1)
        {
            self.pending.push(Event::FeatureMaps(f.clone()));
        }
        if let Some(f) = s
            .filters
            .as_ref()
            .filter(|_| s.generation_filters != self.seen.0)
        {
            self.pending.push(Event::Filters(f.clone()));
        }
        self.seen = (s.generation_filters, s.generation_features);
    }

    /// Wait for the next event; `None` when the worker is gone and everything was read.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.pending.pop() {
                return Some(e);
            }
            tokio::select! {
                biased;
                e = self.rx.recv() => {
                    if let Some(e) = e {
                        return Some(e);
                    }
                    if self.snapshots_pending() {
                        self.take_snapshots();
                        continue;
                    }
                    return None;
                }
                changed = self.snapshots.changed() => {
                    if changed.is_ok() || self.snapshots_pending() {
                        self.take_snapshots();
                    }
                }
            }
        }
    }

    /// The next event if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        if let Some(e) = self.pending.pop() {
            return Some(e);
        }
        if let Ok(e) = self.rx.try_recv() {
            return Some(e);
        }
        if self.snapshots_pending() {
            self.take_snapshots();
        }
        self.pending.pop()
    }

    /// Block the current (non-async) thread until the next event.
    pub fn blocking_recv(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.pending.pop() {
                return Some(e);
            }
            if let Some(e) = self.rx.blocking_recv() {
                return Some(e);
            }
            if !self.snapshots_pending() {
                return None;
            }
            self.take_snapshots();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_shapes_read_as_keras_prints_them() {
        assert_eq!(group_digits(10_641_441), "10,641,441");
        assert_eq!(group_digits(448), "448");
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(keras_shape(&[16, 150, 150]), "(None, 150, 150, 16)");
        assert_eq!(keras_shape(&[20736]), "(None, 20736)");
    }

    fn batch(n: usize) -> Event {
        Event::Batch(BatchMetrics {
            epoch: 1,
            batch: n,
            batches: 10,
            loss: 0.5,
            accuracy: 0.5,
            images_per_sec: 1.0,
            elapsed: 0.0,
        })
    }

    #[test]
    fn batches_drop_when_full_snapshots_are_latest_wins() {
        let (tx, mut rx) = channel(2);
        for n in 0..5 {
            assert!(tx.send(batch(n)));
        }
        for epoch in 0..3 {
            tx.send(Event::Filters(Box::new(FilterSnapshot {
                epoch,
                at_epoch_end: true,
                layers: vec![],
            })));
        }
        drop(tx);
        let mut got = Vec::new();
        while let Some(e) = rx.blocking_recv() {
            got.push(e);
        }
        // Two queued batches survive, the other three were dropped; one filter snapshot, the newest.
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], batch(0));
        assert_eq!(got[1], batch(1));
        assert!(matches!(&got[2], Event::Filters(f) if f.epoch == 2));
    }

    #[test]
    fn events_serialise_as_tagged_json() {
        let line = serde_json::to_string(&batch(3)).expect("serialises");
        assert!(line.starts_with("{\"event\":\"batch\""), "{line}");
        let back: Event = serde_json::from_str(&line).expect("parses");
        assert_eq!(back, batch(3));
    }

    #[test]
    fn coalesce_keeps_the_last_picture_request_of_each_kind_and_every_run_command() {
        let probe = |p: &str| Command::Probe {
            image: PathBuf::from(p),
        };
        let cmds = vec![
            probe("a"),
            Command::Pause,
            probe("b"),
            Command::SelectEpoch { epoch: Some(2) },
            Command::RefreshFilters,
            probe("c"),
            Command::SelectEpoch { epoch: None },
            Command::Resume,
            Command::RefreshFilters,
        ];
        assert_eq!(
            coalesce(cmds),
            vec![
                Command::Pause,
                probe("c"),
                Command::SelectEpoch { epoch: None },
                Command::Resume,
                Command::RefreshFilters,
            ]
        );
        assert_eq!(coalesce(vec![probe("x")]), vec![probe("x")]);
        // Checkpoint requests queued together write one checkpoint.
        let mut many = vec![Command::CheckpointNow; 300];
        many.insert(150, Command::Pause);
        assert_eq!(coalesce(many), vec![Command::CheckpointNow, Command::Pause]);
        assert!(coalesce(Vec::new()).is_empty());
    }
}
