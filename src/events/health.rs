//! Unit health as it is stored and sent: per unit and per layer statistics of one epoch's
//! validation pass (`RUN/health/epoch-NNNN.json`, gathered by [`crate::model::health`]), and
//! the snapshot observers get after each epoch (that epoch in full, earlier ones as a trend).

use serde::{Deserialize, Serialize};

/// Bins of the per-layer histogram of unit on-rates (0..0.1, ..., 0.9..1.0).
pub const HISTOGRAM_BINS: usize = 10;

/// How many of a conv channel's strongest validation activations are kept (the Deep
/// Visualization Toolbox's top 9).
pub const TOP_ACTIVATIONS: usize = 9;

/// One of a conv channel's strongest activations over the validation set: one image's largest
/// value of the channel (its first, in row-major order, when several are equal) and where it
/// is in the layer's output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TopActivation {
    pub value: f32,
    /// The image's index in the validation record's image list.
    pub image: u32,
    /// Row and column in the layer's output map.
    pub y: u32,
    pub x: u32,
}

/// One unit's statistics over the validation set (a conv channel over every image and
/// position, a dense unit over every image).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChannelHealth {
    /// Fraction of its values > 0.
    pub on_rate: f64,
    pub mean: f64,
    pub std: f64,
    pub max: f32,
    pub mean_abs: f64,
    /// Its weights alone keep it at or below zero on any input the layer can get (see
    /// [`LayerHealth::weight_rule`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dead_by_weights: bool,
}

/// One layer's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerHealth {
    /// The layer's name in the model summary (`conv2d_1`, `dense`).
    pub name: String,
    pub units: usize,
    /// % of units never > 0.
    pub dead_pct: f64,
    /// % of units with mean |a| <= 0.025 x the layer's mean.
    pub dormant_pct: f64,
    /// % of units on for more than 99 % of their values.
    pub always_on_pct: f64,
    /// Units per on-rate bin (tenths; an on-rate of 1 falls in the last bin).
    pub on_rate_histogram: [usize; HISTOGRAM_BINS],
    /// What `dead_by_weights` checked, in words; empty when the weights alone prove nothing
    /// (the layer's input can be negative, or it is not a convolution).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub weight_rule: String,
    /// Per unit; empty in a trend (only the newest epoch carries them).
    #[serde(default)]
    pub channels: Vec<ChannelHealth>,
    /// Per conv channel, its [`TOP_ACTIVATIONS`] strongest activations over the validation set,
    /// strongest first, one per image; empty for a dense layer, in a trend, and in files
    /// written before they were gathered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<Vec<TopActivation>>,
    /// Conv layers: `[class][channel]` the mean activation over the validation images of that
    /// class (each image's spatial mean, averaged); a class with no image an empty row. Empty
    /// for dense layers, in a trend, and in files written before it was gathered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_means: Vec<Vec<f64>>,
}

impl LayerHealth {
    /// Indices of the units never > 0 (from `channels`).
    #[must_use]
    pub fn dead_units(&self) -> Vec<usize> {
        self.channels
            .iter()
            .enumerate()
            .filter(|(_, c)| c.on_rate <= 0.0)
            .map(|(i, _)| i)
            .collect()
    }
}

/// One epoch's unit health over the validation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochHealth {
    pub epoch: usize,
    /// Validation images it was gathered over.
    pub images: usize,
    /// Conv and hidden dense layers, in network order.
    pub layers: Vec<LayerHealth>,
    /// % of output logits with |z| > 4.6 (probability beyond 0.01 / 0.99).
    pub output_saturated_pct: f64,
}

impl EpochHealth {
    /// The same without per-unit statistics (a point of a trend).
    #[must_use]
    pub fn summary_only(&self) -> Self {
        Self {
            layers: self
                .layers
                .iter()
                .map(|l| LayerHealth {
                    channels: Vec::new(),
                    top: Vec::new(),
                    class_means: Vec::new(),
                    ..l.clone()
                })
                .collect(),
            ..self.clone()
        }
    }

    /// The layer named `name`.
    #[must_use]
    pub fn layer(&self, name: &str) -> Option<&LayerHealth> {
        self.layers.iter().find(|l| l.name == name)
    }
}

/// What observers get after each epoch: every recorded epoch in order, the newest (last) with
/// its per-unit statistics, the earlier ones as [`EpochHealth::summary_only`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthSnapshot {
    pub epochs: Vec<EpochHealth>,
}

impl HealthSnapshot {
    /// The newest epoch.
    #[must_use]
    pub fn latest(&self) -> Option<&EpochHealth> {
        self.epochs.last()
    }

    /// `name`'s % dead per epoch, oldest first.
    #[must_use]
    pub fn dead_trend(&self, name: &str) -> Vec<f64> {
        self.epochs
            .iter()
            .filter_map(|e| e.layer(name).map(|l| l.dead_pct))
            .collect()
    }

    /// Add (or replace) `epoch` as the newest, keeping earlier epochs as a trend; later ones
    /// (a resumed run that re-runs an epoch) are dropped.
    pub fn push(&mut self, epoch: EpochHealth) {
        self.epochs.retain(|e| e.epoch < epoch.epoch);
        if let Some(last) = self.epochs.last_mut() {
            *last = last.summary_only();
        }
        self.epochs.push(epoch);
    }
}
