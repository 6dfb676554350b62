//! Messages between the training worker and its observers (TUI, headless printer, viewers),
//! and the `events.jsonl` schema: every `Event` but the big snapshots is one JSON line.

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
    #[serde(skip)]
    Filters(Box<FilterSnapshot>),
    #[serde(skip)]
    FeatureMaps(Box<FeatureSnapshot>),
}

/// Run facts known before the first batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartInfo {
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
    /// Unix time in seconds.
    pub time: f64,
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

/// The run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishInfo {
    pub reason: FinishReason,
    pub epoch: usize,
    pub batch: usize,
}

/// The run failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailInfo {
    pub error: String,
}

/// The weights of every conv layer, as plain numbers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FilterSnapshot {
    pub epoch: usize,
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
}
