//! The accumulators unit health is made of, fed batch by batch during the validation pass:
//! per-channel sums ([`ChannelAccum`], [`LayerAccum`], one pass per plane in [`plane_scan`]),
//! each conv channel's strongest activations ([`TopAccum`]), class-conditional means
//! ([`ClassAccum`]) and saturated logits ([`OutputAccum`]).

use rayon::prelude::*;

use super::{
    ALWAYS_ON_RATE, ChannelHealth, DORMANT_FRACTION, HISTOGRAM_BINS, LayerHealth, SATURATED_LOGIT,
    TOP_ACTIVATIONS, TopActivation,
};

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

/// Lanes of the partial sums in [`ChannelAccum::add`]: independent chains the compiler can
/// keep in vector registers.
const LANES: usize = 16;

impl ChannelAccum {
    fn add(&mut self, values: &[f32]) {
        self.add_sums(plane_scan(values).0);
    }

    pub(super) fn add_sums(&mut self, s: Sums) {
        if s.count == 0 {
            return;
        }
        self.max = if self.count == 0 {
            s.max
        } else {
            self.max.max(s.max)
        };
        self.count += s.count;
        self.on += s.on;
        self.sum += s.sum;
        self.sum_sq += s.sum_sq;
        self.abs_sum += s.abs_sum;
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
            dead_by_weights: false,
        }
    }
}

/// One batch's sums of one channel.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sums {
    pub(super) count: u64,
    pub(super) on: u64,
    pub(super) sum: f64,
    pub(super) sum_sq: f64,
    pub(super) abs_sum: f64,
    pub(super) max: f32,
}

/// One pass over a plane: its [`Sums`], and the place of its largest value (the first, if
/// several are equal; 0 for an empty or all-NaN plane).
///
/// Partial sums in [`LANES`] f32 lanes (at most a few tens of thousands of values a plane),
/// then f64 across lanes, planes and batches. The loop is compiled for the widest instruction
/// set there is (pulp); the lanes and their order are the same on every one, so are the sums.
pub(super) fn plane_scan(values: &[f32]) -> (Sums, usize) {
    pulp::Arch::new().dispatch(Scan(values))
}

/// [`plane_scan`]'s loop, for pulp.
struct Scan<'a>(&'a [f32]);

impl pulp::WithSimd for Scan<'_> {
    type Output = (Sums, usize);

    // pulp compiles the loop once per instruction set: it must be inlined into each.
    #[expect(clippy::inline_always, reason = "pulp's per-instruction-set copies")]
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> (Sums, usize) {
        let values = self.0;
        let (mut on, mut sum, mut sum_sq, mut abs_sum, mut max) = (
            [0f32; LANES],
            [0f32; LANES],
            [0f32; LANES],
            [0f32; LANES],
            [f32::NEG_INFINITY; LANES],
        );
        // The chunk where each lane's maximum was first reached.
        let mut at = [0u32; LANES];
        let chunks = values.chunks_exact(LANES);
        let rest = chunks.remainder();
        for (k, chunk) in chunks.enumerate() {
            let k = k as u32;
            for l in 0..LANES {
                let v = chunk[l];
                on[l] += if v > 0.0 { 1.0 } else { 0.0 };
                sum[l] += v;
                sum_sq[l] += v * v;
                abs_sum[l] += v.abs();
                let higher = v > max[l];
                max[l] = if higher { v } else { max[l] };
                at[l] = if higher { k } else { at[l] };
            }
        }
        let full = values.len() - rest.len();
        let mut best = (f32::NEG_INFINITY, 0usize);
        for l in 0..LANES {
            let place = at[l] as usize * LANES + l;
            // The first place of an equal maximum (not an empty lane's -inf); equal as `>`
            // sees it, as in one pass in order.
            #[expect(
                clippy::float_cmp,
                reason = "exact ties, as the in-order pass has them"
            )]
            let tie = max[l] == best.0 && max[l] > f32::NEG_INFINITY;
            if max[l] > best.0 || (tie && place < best.1) {
                best = (max[l], place);
            }
        }
        for (l, &v) in rest.iter().enumerate() {
            on[l] += if v > 0.0 { 1.0 } else { 0.0 };
            sum[l] += v;
            sum_sq[l] += v * v;
            abs_sum[l] += v.abs();
            if v > best.0 {
                best = (v, full + l);
            }
        }
        let total = |a: [f32; LANES]| a.iter().map(|&x| f64::from(x)).sum::<f64>();
        let sums = Sums {
            count: values.len() as u64,
            on: total(on) as u64,
            sum: total(sum),
            sum_sq: total(sum_sq),
            abs_sum: total(abs_sum),
            max: best.0,
        };
        (sums, best.1)
    }
}

/// Accumulates one layer's activations.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerAccum {
    pub name: String,
    pub(super) channels: Vec<ChannelAccum>,
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
    /// dense layer's `[batch, units]`). A batch whose length does not fit is ignored. Returns,
    /// from the same pass, each plane's mean (`[batch, channels]`), which the class-conditional
    /// means are made of, and its largest value and place, for [`TopAccum::add_maxima`] (both
    /// empty for a dense layer).
    pub fn add_batch(&mut self, values: &[f32], batch: usize) -> (Vec<f64>, Vec<(f32, usize)>) {
        let channels = self.channels.len();
        if batch == 0 || channels == 0 || !values.len().is_multiple_of(batch * channels) {
            return (Vec::new(), Vec::new());
        }
        let spatial = values.len() / (batch * channels);
        if spatial == 1 {
            // A dense layer: one value per unit and image.
            for row in values.chunks_exact(channels) {
                for (c, &v) in self.channels.iter_mut().zip(row) {
                    c.add(std::slice::from_ref(&v));
                }
            }
            return (Vec::new(), Vec::new());
        }
        // The planes' sums in parallel, added in order: the same totals as one by one.
        let planes: Vec<(Sums, usize)> = values.par_chunks_exact(spatial).map(plane_scan).collect();
        let means = planes.iter().map(|(s, _)| s.sum / spatial as f64).collect();
        let maxima = planes.iter().map(|(s, at)| (s.max, *at)).collect();
        for (i, (sums, _)) in planes.into_iter().enumerate() {
            self.channels[i % channels].add_sums(sums);
        }
        (means, maxima)
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
            weight_rule: String::new(),
            channels,
            top: Vec::new(),
            class_means: Vec::new(),
        }
    }
}

/// Keeps each conv channel's [`TOP_ACTIVATIONS`] strongest activations over the validation
/// set: per image, the channel's largest value and its place, the strongest images kept.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TopAccum {
    channels: Vec<Vec<TopActivation>>,
}

impl TopAccum {
    #[must_use]
    pub fn new(channels: usize) -> Self {
        Self {
            channels: vec![Vec::new(); channels],
        }
    }

    /// Add the maxima of a batch: `maxima[i * channels + c]` is image `i`'s largest value of
    /// channel `c` and its place `y * w + x`; `images[i]` is image `i`'s validation index.
    pub fn add_maxima(&mut self, maxima: &[(f32, usize)], w: usize, images: &[u32]) {
        let channels = self.channels.len();
        if channels == 0 || w == 0 || maxima.len() != images.len() * channels {
            return;
        }
        for (k, &(value, at)) in maxima.iter().enumerate() {
            let (i, c) = (k / channels, k % channels);
            self.offer(
                c,
                TopActivation {
                    value,
                    image: images[i],
                    y: u32::try_from(at / w).unwrap_or(u32::MAX),
                    x: u32::try_from(at % w).unwrap_or(u32::MAX),
                },
            );
        }
    }

    /// Strongest first; an equal value keeps the image seen first ahead.
    fn offer(&mut self, channel: usize, t: TopActivation) {
        let list = &mut self.channels[channel];
        let pos = list
            .iter()
            .position(|o| t.value > o.value)
            .unwrap_or(list.len());
        if pos < TOP_ACTIVATIONS {
            list.insert(pos, t);
            list.truncate(TOP_ACTIVATIONS);
        }
    }

    /// Per channel, strongest first.
    #[must_use]
    pub fn channels(&self) -> &[Vec<TopActivation>] {
        &self.channels
    }
}

/// Per class and conv channel, the sum of each validation image's spatial mean activation, and
/// the images of each class: the class-conditional means that class selectivity is made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassAccum {
    /// `[class][channel]`.
    sums: Vec<Vec<f64>>,
    images: Vec<u64>,
}

impl ClassAccum {
    /// Add a batch's per-image channel means (`[batch, channels]`) with the images' classes; a
    /// batch whose length does not fit the labels is ignored.
    pub fn add_batch(&mut self, means: &[f64], labels: &[usize]) {
        if labels.is_empty() || !means.len().is_multiple_of(labels.len()) {
            return;
        }
        let channels = means.len() / labels.len();
        for (row, &label) in means.chunks_exact(channels.max(1)).zip(labels) {
            if self.sums.len() <= label {
                self.sums.resize(label + 1, Vec::new());
                self.images.resize(label + 1, 0);
            }
            let sums = &mut self.sums[label];
            sums.resize(channels, 0.0);
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += v;
            }
            self.images[label] += 1;
        }
    }

    /// `[class][channel]` the class-conditional mean activations (an empty row for a class with
    /// no image).
    #[must_use]
    pub fn means(&self) -> Vec<Vec<f64>> {
        self.sums
            .iter()
            .zip(&self.images)
            .map(|(sums, &n)| {
                if n == 0 {
                    Vec::new()
                } else {
                    sums.iter().map(|s| s / n as f64).collect()
                }
            })
            .collect()
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
    fn one_pass_over_a_plane_gives_the_sums_and_the_first_largest_place() {
        // Lengths around the lanes, ties across lanes and in the tail, negative planes.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut draw = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for len in [1, 2, 15, 16, 17, 31, 33, 100, 1000, 5329, 21_904] {
            for case in 0..6 {
                let values: Vec<f32> = (0..len)
                    .map(|_| {
                        let r = draw();
                        match case {
                            // A few levels only: many equal maxima.
                            0 => (r % 4) as f32,
                            1 => -((r % 1000) as f32) / 7.0,
                            2 => 0.0,
                            _ => ((r % 20_001) as f32 - 10_000.0) / 97.0,
                        }
                    })
                    .collect();
                let (sums, at) = plane_scan(&values);
                // The reference: in order, the first of the largest.
                let (max, place) =
                    values
                        .iter()
                        .enumerate()
                        .fold((f32::NEG_INFINITY, 0), |best, (i, &v)| {
                            if v > best.0 { (v, i) } else { best }
                        });
                assert_eq!((sums.max, at), (max, place), "len {len} case {case}");
                let f = |g: fn(f32) -> f64| values.iter().map(|&v| g(v)).sum::<f64>();
                // f32 partial sums: off by a few ulps of the magnitudes added (a sum of mixed
                // signs near 0 is held to the sum of its magnitudes).
                let abs = f(|v| f64::from(v.abs()));
                let close = |a: f64, b: f64, scale: f64| (a - b).abs() <= 1e-5 * scale.max(1.0);
                assert_eq!(sums.count, len as u64);
                assert_eq!(sums.on, values.iter().filter(|&&v| v > 0.0).count() as u64);
                assert!(close(sums.sum, f(f64::from), abs), "len {len} case {case}");
                let sq = f(|v| f64::from(v) * f64::from(v));
                assert!(close(sums.sum_sq, sq, sq), "len {len} case {case}");
                assert!(close(sums.abs_sum, abs, abs), "len {len} case {case}");
            }
        }
        let (empty, at) = plane_scan(&[]);
        assert_eq!((empty.count, empty.max, at), (0, f32::NEG_INFINITY, 0));
    }

    #[test]
    fn a_batch_gives_the_maxima_the_top_activations_take() {
        // Two images, three channels, 5x4 planes.
        let (b, c, h, w) = (2, 3, 5, 4);
        let values: Vec<f32> = (0..b * c * h * w)
            .map(|i| ((i * 37) % 23) as f32 - 3.0)
            .collect();
        let mut layer = LayerAccum::new("conv", c);
        let (means, maxima) = layer.add_batch(&values, b);
        assert_eq!(means.len(), b * c);
        let mut from_maxima = TopAccum::new(c);
        from_maxima.add_maxima(&maxima, w, &[10, 11]);
        // Each plane's first largest value, in order.
        let direct: Vec<(f32, usize)> = values
            .chunks_exact(h * w)
            .map(|plane| {
                plane
                    .iter()
                    .enumerate()
                    .fold((f32::NEG_INFINITY, 0), |best, (i, &v)| {
                        if v > best.0 { (v, i) } else { best }
                    })
            })
            .collect();
        let mut top = TopAccum::new(c);
        top.add_maxima(&direct, w, &[10, 11]);
        assert_eq!(from_maxima, top);
        for (k, plane) in values.chunks_exact(h * w).enumerate() {
            let mean = plane.iter().map(|&v| f64::from(v)).sum::<f64>() / (h * w) as f64;
            assert!((means[k] - mean).abs() < 1e-9);
        }
    }

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
