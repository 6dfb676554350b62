//! Unit health over the validation set: cheap per-channel sums fed batch by batch while the
//! validation pass runs, and per-layer summaries (dead, dormant, always-on units; saturated
//! outputs).

use serde::{Deserialize, Serialize};

/// A unit whose mean |activation| is at most this fraction of its layer's mean is dormant.
pub const DORMANT_FRACTION: f64 = 0.025;
/// A unit that is on (> 0) for more than this fraction of its values is always on.
pub const ALWAYS_ON_RATE: f64 = 0.99;
/// |logit| beyond this is a saturated output (probability beyond 0.01 / 0.99).
pub const SATURATED_LOGIT: f32 = 4.6;
/// Bins of the per-layer histogram of unit on-rates (0..0.1, ..., 0.9..1.0).
pub const HISTOGRAM_BINS: usize = 10;

/// Running sums of one channel (a conv channel over every image and position, or a dense unit
/// over every image).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ChannelAccum {
    count: u64,
    on: u64,
    sum: f64,
    sum_sq: f64,
    abs_sum: f64,
    max: f32,
}

impl ChannelAccum {
    fn add(&mut self, values: &[f32]) {
        if self.count == 0 {
            self.max = f32::NEG_INFINITY;
        }
        let (mut on, mut sum, mut sum_sq, mut abs_sum, mut max) =
            (0u64, 0f64, 0f64, 0f64, self.max);
        for &v in values {
            on += u64::from(v > 0.0);
            let d = f64::from(v);
            sum += d;
            sum_sq += d * d;
            abs_sum += d.abs();
            max = max.max(v);
        }
        self.count += values.len() as u64;
        self.on += on;
        self.sum += sum;
        self.sum_sq += sum_sq;
        self.abs_sum += abs_sum;
        self.max = max;
    }

    fn summary(&self) -> ChannelHealth {
        let n = self.count.max(1) as f64;
        let mean = self.sum / n;
        ChannelHealth {
            on_rate: self.on as f64 / n,
            mean,
            std: (self.sum_sq / n - mean * mean).max(0.0).sqrt(),
            max: if self.count == 0 { 0.0 } else { self.max },
            mean_abs: self.abs_sum / n,
        }
    }
}

/// One unit's statistics over the validation set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChannelHealth {
    /// Fraction of its values > 0.
    pub on_rate: f64,
    pub mean: f64,
    pub std: f64,
    pub max: f32,
    pub mean_abs: f64,
}

/// Accumulates one layer's activations.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerAccum {
    pub name: String,
    channels: Vec<ChannelAccum>,
}

/// One layer's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerHealth {
    pub name: String,
    pub units: usize,
    /// % of units never > 0.
    pub dead_pct: f64,
    /// % of units with mean |a| <= 0.025 x the layer's mean (a dead ReLU unit is dormant too).
    pub dormant_pct: f64,
    /// % of units on for more than 99 % of their values.
    pub always_on_pct: f64,
    /// Units per on-rate bin (tenths; an on-rate of 1 falls in the last bin).
    pub on_rate_histogram: [usize; HISTOGRAM_BINS],
    pub channels: Vec<ChannelHealth>,
}

impl LayerAccum {
    #[must_use]
    pub fn new(name: &str, channels: usize) -> Self {
        Self {
            name: name.to_string(),
            channels: vec![ChannelAccum::default(); channels],
        }
    }

    /// Add a batch laid out `[batch, channels, spatial]` (NCHW with `spatial = h * w`; 1 for a
    /// dense layer's `[batch, units]`). A batch whose length does not fit is ignored.
    pub fn add_batch(&mut self, values: &[f32], batch: usize) {
        let channels = self.channels.len();
        if batch == 0 || channels == 0 || !values.len().is_multiple_of(batch * channels) {
            return;
        }
        let spatial = values.len() / (batch * channels);
        for (i, chunk) in values.chunks_exact(spatial).enumerate() {
            self.channels[i % channels].add(chunk);
        }
    }

    /// The layer's summary.
    #[must_use]
    pub fn summary(&self) -> LayerHealth {
        let channels: Vec<ChannelHealth> =
            self.channels.iter().map(ChannelAccum::summary).collect();
        let units = channels.len();
        let pct = |n: usize| 100.0 * n as f64 / units.max(1) as f64;
        let layer_mean = channels.iter().map(|c| c.mean_abs).sum::<f64>() / units.max(1) as f64;
        let mut on_rate_histogram = [0; HISTOGRAM_BINS];
        for c in &channels {
            let bin = ((c.on_rate * HISTOGRAM_BINS as f64) as usize).min(HISTOGRAM_BINS - 1);
            on_rate_histogram[bin] += 1;
        }
        let dead = self.channels.iter().filter(|c| c.on == 0).count();
        LayerHealth {
            name: self.name.clone(),
            units,
            dead_pct: pct(dead),
            dormant_pct: pct(channels
                .iter()
                .filter(|c| c.mean_abs <= DORMANT_FRACTION * layer_mean)
                .count()),
            always_on_pct: pct(channels
                .iter()
                .filter(|c| c.on_rate > ALWAYS_ON_RATE)
                .count()),
            on_rate_histogram,
            channels,
        }
    }
}

/// Counts saturated output logits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputAccum {
    count: u64,
    saturated: u64,
}

impl OutputAccum {
    /// Add a batch of logits (any layout).
    pub fn add_batch(&mut self, logits: &[f32]) {
        self.count += logits.len() as u64;
        self.saturated += logits.iter().filter(|z| z.abs() > SATURATED_LOGIT).count() as u64;
    }

    /// % of logits with |z| > 4.6.
    #[must_use]
    pub fn saturated_pct(&self) -> f64 {
        100.0 * self.saturated as f64 / self.count.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_statistics_on_hand_made_activations() {
        // Two images, two channels, two positions: NCHW.
        let mut layer = LayerAccum::new("conv1", 2);
        layer.add_batch(&[0.0, 2.0, 1.0, 1.0, 0.0, 4.0, 3.0, 3.0], 2);
        let s = layer.summary();
        let c0 = s.channels[0];
        assert!((c0.on_rate - 0.5).abs() < 1e-12);
        assert!((c0.mean - 1.5).abs() < 1e-12);
        // Values 0, 2, 0, 4: mean 1.5, variance (2.25 + 0.25 + 2.25 + 6.25) / 4 = 2.75.
        assert!((c0.std - 2.75f64.sqrt()).abs() < 1e-12);
        assert!((c0.max - 4.0).abs() < f32::EPSILON);
        let c1 = s.channels[1];
        assert!((c1.on_rate - 1.0).abs() < 1e-12);
        assert!((c1.mean - 2.0).abs() < 1e-12);
        // Values 1, 1, 3, 3.
        assert!((c1.std - 1.0).abs() < 1e-12);
        assert!((s.always_on_pct - 50.0).abs() < 1e-12);
        assert!(s.dead_pct.abs() < 1e-12);
        assert_eq!(s.on_rate_histogram[5], 1);
        assert_eq!(s.on_rate_histogram[9], 1);
    }

    #[test]
    fn dead_dormant_and_always_on_units() {
        // Dense layer, 4 units over 3 images: dead, dormant, normal, always on.
        let mut layer = LayerAccum::new("dense", 4);
        for row in [
            [0.0, 0.01, 1.0, 2.0],
            [-1.0, 0.0, 0.0, 2.0],
            [0.0, 0.0, 2.0, 2.0],
        ] {
            layer.add_batch(&row, 1);
        }
        let s = layer.summary();
        assert_eq!(s.units, 4);
        assert!((s.dead_pct - 25.0).abs() < 1e-12, "{s:?}");
        // Layer mean |a| = (1/3 + 0.01/3 + 1 + 2) / 4 ≈ 0.836; 0.025 x that ≈ 0.0209: the
        // second unit (0.0033) is dormant; the first (|a| mean 1/3, never on) is dead, not dormant.
        assert!((s.dormant_pct - 25.0).abs() < 1e-12, "{s:?}");
        assert!((s.always_on_pct - 25.0).abs() < 1e-12);
        assert_eq!(s.on_rate_histogram.iter().sum::<usize>(), 4);
        assert_eq!(s.on_rate_histogram[0], 1);
        assert_eq!(s.on_rate_histogram[3], 1);
        assert_eq!(s.on_rate_histogram[6], 1);
        assert_eq!(s.on_rate_histogram[9], 1);
        assert!((s.channels[0].max - 0.0).abs() < f32::EPSILON);
    }

    #[test]
    fn an_unfed_layer_and_a_misfit_batch_are_harmless() {
        let mut layer = LayerAccum::new("x", 3);
        layer.add_batch(&[1.0, 2.0], 1);
        let s = layer.summary();
        assert!((s.dead_pct - 100.0).abs() < 1e-12);
        assert!(
            s.channels
                .iter()
                .all(|c| c.max.abs() < f32::EPSILON && c.mean.abs() < 1e-12)
        );
    }

    #[test]
    fn saturated_outputs() {
        let mut out = OutputAccum::default();
        out.add_batch(&[4.7, -5.0, 4.5, 0.0]);
        assert!((out.saturated_pct() - 50.0).abs() < 1e-12);
        assert!(OutputAccum::default().saturated_pct().abs() < 1e-12);
    }
}
