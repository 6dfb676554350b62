//! Unit health over the validation set: cheap per-channel sums fed batch by batch while the
//! validation pass runs ([`Gather`]), and per-layer summaries (dead, dormant, always-on units;
//! saturated outputs). The stored and sent forms are in [`crate::events::health`].

use burn::tensor::Tensor;

pub use crate::events::health::{
    ChannelHealth, EpochHealth, HISTOGRAM_BINS, HealthSnapshot, LayerHealth, TOP_ACTIVATIONS,
    TopActivation,
};
use crate::model::{Flow, Net, ReadError, Step, read_f32};

mod accum;

use accum::Sums;
pub use accum::{ChannelAccum, ClassAccum, LayerAccum, OutputAccum, TopAccum};

/// A unit whose mean |activation| is at most this fraction of its layer's mean is dormant.
pub const DORMANT_FRACTION: f64 = 0.025;
/// A unit that is on (> 0) for more than this fraction of its values is always on.
pub const ALWAYS_ON_RATE: f64 = 0.99;
/// |logit| beyond this is a saturated output (probability beyond 0.01 / 0.99).
pub const SATURATED_LOGIT: f32 = 4.6;

/// What a layer's input can be, for telling a filter dead from its weights alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InputRange {
    /// Between 0 and this (the rescaled image).
    UpTo(f32),
    /// Any non-negative value (after a `ReLU`).
    NonNegative,
    /// Negative values too: the weights alone prove nothing.
    Any,
}

impl InputRange {
    /// The rule [`dead_by_weights`] checks, in words; empty for [`InputRange::Any`].
    #[must_use]
    pub fn rule(self) -> String {
        match self {
            Self::UpTo(m) => format!("sum(w+) x {m} + b <= 0"),
            Self::NonNegative => "all w <= 0, b <= 0".into(),
            Self::Any => String::new(),
        }
    }
}

/// Per filter of a conv layer (`weight` `[out, per_filter]` flattened, `bias` `[out]`):
/// whether its largest possible pre-activation on `input` is `<= 0`, so that it can never
/// be on: `sum(max(w, 0)) * input_max + b <= 0`.
#[must_use]
pub fn dead_by_weights(weight: &[f32], bias: &[f32], input: InputRange) -> Vec<bool> {
    let out = bias.len();
    if out == 0 || !weight.len().is_multiple_of(out) {
        return vec![false; out];
    }
    let per = weight.len() / out;
    weight
        .chunks_exact(per.max(1))
        .zip(bias)
        .map(|(w, &b)| {
            let positive: f32 = w.iter().map(|&v| v.max(0.0)).sum();
            match input {
                InputRange::UpTo(m) => positive * m + b <= 0.0,
                InputRange::NonNegative => positive == 0.0 && b <= 0.0,
                InputRange::Any => false,
            }
        })
        .collect()
}

/// The input range of every step of `net` (by step index), its input being in `[0, input_max]`.
#[must_use]
pub fn input_ranges(net: &Net, input_max: f32) -> Vec<InputRange> {
    let mut range = if input_max >= 0.0 {
        InputRange::UpTo(input_max)
    } else {
        InputRange::Any
    };
    let mut out = Vec::with_capacity(net.steps.len());
    for step in &net.steps {
        out.push(range);
        match *step {
            Step::Conv { relu, .. } | Step::Dense { relu, .. } => {
                range = if relu {
                    InputRange::NonNegative
                } else {
                    InputRange::Any
                };
            }
            Step::Pool { .. } | Step::Dropout { .. } | Step::Flatten => {}
        }
    }
    out
}

/// Gathers unit health while the validation pass runs: [`Gather::forward`] runs the network
/// step by step (a convolution's own output is only made then, not in the fused
/// convolution + pooling of training) and adds each conv and hidden dense layer's output
/// to its sums; [`Gather::add_logits`] counts saturated outputs.
#[derive(Debug, Clone)]
pub struct Gather {
    /// `(step index, sums)` of the conv and hidden dense layers.
    layers: Vec<(usize, LayerAccum)>,
    output: OutputAccum,
    images: usize,
    /// Sum on the device and read back only the sums (a GPU); else read the values and sum
    /// them here (the CPU, where that is one pass instead of five).
    on_device: Option<bool>,
    /// Per entry of `layers`: a conv layer's strongest activations.
    tops: Vec<Option<TopAccum>>,
    /// The validation indices of the next batch's images ([`Gather::set_images`]).
    batch_images: Vec<u32>,
    /// `(step index, sums)` of the conv layers' class-conditional means (see
    /// [`Gather::set_labels`]).
    class_layers: Vec<(usize, ClassAccum)>,
    /// The classes of the batch [`Gather::forward`] is given next.
    labels: Vec<usize>,
}

impl Gather {
    /// Sums for `net`'s conv and hidden dense layers; `names[i]` names step `i` (the model
    /// summary's names).
    #[must_use]
    pub fn new(net: &Net, names: &[String]) -> Self {
        let last = net.steps.len().saturating_sub(1);
        let name = |i: usize| {
            names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("layer {i}"))
        };
        let layers = net
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, step)| match *step {
                Step::Conv { index, .. } => {
                    let units = net.convs.get(index)?.bias.val().dims()[0];
                    Some((i, LayerAccum::new(&name(i), units)))
                }
                Step::Dense { index, .. } if i != last => {
                    let units = net.denses.get(index)?.bias.val().dims()[0];
                    Some((i, LayerAccum::new(&name(i), units)))
                }
                _ => None,
            })
            .collect::<Vec<_>>();
        let tops = layers
            .iter()
            .map(|(i, accum)| {
                matches!(net.steps.get(*i), Some(Step::Conv { .. }))
                    .then(|| TopAccum::new(accum.channels.len()))
            })
            .collect();
        let class_layers = net
            .steps
            .iter()
            .enumerate()
            .filter(|(_, step)| matches!(step, Step::Conv { .. }))
            .map(|(i, _)| (i, ClassAccum::default()))
            .collect();
        Self {
            layers,
            output: OutputAccum::default(),
            images: 0,
            on_device: None,
            tops,
            batch_images: Vec::new(),
            class_layers,
            labels: Vec::new(),
        }
    }

    /// The validation indices of the next batch's images (the record's image list), for the
    /// strongest activations; without them the images count from 0 in the order seen.
    pub fn set_images(&mut self, indices: &[usize]) {
        self.batch_images = indices
            .iter()
            .map(|&i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
    }

    /// The classes of the images of the batch given next to [`Gather::forward`], so that it
    /// also adds to the class-conditional means of every conv channel (for class selectivity).
    pub fn set_labels(&mut self, labels: &[usize]) {
        self.labels = labels.to_vec();
    }

    /// Add `flow` (step `i`'s output) to the class-conditional means when `i` is a conv layer
    /// and the batch's labels were given: per image and channel the spatial mean, read back
    /// as `[batch, channels]`.
    fn add_class_means(
        &mut self,
        i: usize,
        flow: &Flow,
        labels: &[usize],
    ) -> Result<(), ReadError> {
        let Some((_, accum)) = self.class_layers.iter_mut().find(|(step, _)| *step == i) else {
            return Ok(());
        };
        let Flow::Map(m) = flow else {
            return Ok(());
        };
        let [b, c, _, _] = m.dims();
        if labels.len() != b {
            return Ok(());
        }
        // [batch, channels, h, w] -> [batch, channels]
        let means = read_f32(
            m.clone().mean_dim(3).mean_dim(2).reshape([b, c]),
            "a layer's validation class means",
        )?;
        let means: Vec<f64> = means.into_iter().map(f64::from).collect();
        accum.add_batch(&means, labels);
        Ok(())
    }

    /// [`Gather::add_class_means`] from the per-image channel means the host already summed
    /// (`[batch, channels]`, [`LayerAccum::add_batch`]).
    fn add_class_plane_means(&mut self, i: usize, means: &[f64], labels: &[usize]) {
        if let Some((_, accum)) = self.class_layers.iter_mut().find(|(step, _)| *step == i)
            && !labels.is_empty()
            && means.len().is_multiple_of(labels.len())
            && !means.is_empty()
        {
            accum.add_batch(means, labels);
        }
    }

    /// `[class][channel]` class-conditional means of step `i`'s conv layer (empty when none).
    fn class_means_of(&self, i: usize) -> Vec<Vec<f64>> {
        self.class_layers
            .iter()
            .find(|(step, _)| *step == i)
            .map(|(_, a)| a.means())
            .unwrap_or_default()
    }

    /// Sum on the device (`true`) or on the host (`false`) whatever the device is (tests).
    #[must_use]
    pub fn summing_on_device(mut self, on_device: bool) -> Self {
        self.on_device = Some(on_device);
        self
    }

    /// Run `net` (evaluation: no dropout) on `[batch, c, h, w]`, adding every gathered layer's
    /// output; returns the logits `[batch, outputs]`, the same as [`Net::forward`]'s.
    pub fn forward(&mut self, net: &Net, x: Tensor<4>) -> Result<Tensor<2>, ReadError> {
        let batch = x.dims()[0];
        let images = self.take_images(batch);
        let labels = self.take_labels(batch);
        let flow = self.steps(net, Flow::Map(x), 0..net.steps.len(), &images, &labels)?;
        self.images += batch;
        Ok(flow.into_flat())
    }

    /// The validation indices of a batch of `batch` images: those [`Gather::set_images`] gave,
    /// else counted from the images seen so far.
    fn take_images(&mut self, batch: usize) -> Vec<u32> {
        let images = if self.batch_images.len() == batch {
            std::mem::take(&mut self.batch_images)
        } else {
            (self.images..self.images + batch)
                .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
                .collect()
        };
        self.batch_images.clear();
        images
    }

    /// The classes [`Gather::set_labels`] gave for a batch of `batch` images (none when they do
    /// not fit it: no class means are then added).
    fn take_labels(&mut self, batch: usize) -> Vec<usize> {
        let labels = std::mem::take(&mut self.labels);
        if labels.len() == batch {
            labels
        } else {
            Vec::new()
        }
    }

    /// [`Gather::forward`] with the steps before `Flatten` run on `chunk` images at a time (the
    /// rest on the whole batch): a convolution's full-size output is then made for a few
    /// images, not the batch. Each image's values, the logits and the sums are the same as
    /// [`Gather::forward`]'s (the convolutions work image by image; the sums go image by image).
    pub fn forward_chunked(
        &mut self,
        net: &Net,
        x: Tensor<4>,
        chunk: usize,
    ) -> Result<Tensor<2>, ReadError> {
        let batch = x.dims()[0];
        let chunk = chunk.max(1);
        if batch <= chunk {
            return self.forward(net, x);
        }
        let images = self.take_images(batch);
        let labels = self.take_labels(batch);
        let flatten = net
            .steps
            .iter()
            .position(|s| matches!(s, Step::Flatten))
            .unwrap_or(net.steps.len());
        let mut maps = Vec::with_capacity(batch.div_ceil(chunk));
        for start in (0..batch).step_by(chunk) {
            let len = chunk.min(batch - start);
            let part = Flow::Map(x.clone().narrow(0, start, len));
            let part_images = images.get(start..start + len).unwrap_or(&[]);
            let part_labels = labels.get(start..start + len).unwrap_or(&[]);
            maps.push(
                self.steps(net, part, 0..flatten, part_images, part_labels)?
                    .into_map(),
            );
        }
        let flow = self.steps(
            net,
            Flow::Map(Tensor::cat(maps, 0)),
            flatten..net.steps.len(),
            &images,
            &labels,
        )?;
        self.images += batch;
        Ok(flow.into_flat())
    }

    /// Run `steps` of `net` on `flow` (the images `images`, by validation index), adding the
    /// gathered layers' outputs, their strongest activations and, when `labels` (the images'
    /// classes) fit, the class-conditional means.
    fn steps(
        &mut self,
        net: &Net,
        mut flow: Flow,
        steps: std::ops::Range<usize>,
        images: &[u32],
        labels: &[usize],
    ) -> Result<Flow, ReadError> {
        let batch = images.len();
        for i in steps {
            flow = net.step(i, flow, false);
            // On the host, the planes' means come with their sums.
            let mut plane_means = None;
            if let Some(k) = self.layers.iter().position(|(step, _)| *step == i) {
                let layer = &mut self.layers[k].1;
                let top = self.tops.get_mut(k).and_then(Option::as_mut);
                let on_device = self.on_device.unwrap_or_else(|| !flow_on_flex(&flow));
                if on_device {
                    add_device_sums(layer, &flow)?;
                    if let (Some(top), Flow::Map(m)) = (top, &flow) {
                        add_device_maxima(top, m, images)?;
                    }
                } else {
                    // On flex the output is read in place (no copy), and one pass gives the
                    // sums and the maxima.
                    let w = match &flow {
                        Flow::Map(m) => Some(m.dims()[3]),
                        Flow::Flat(_) => None,
                    };
                    let (next, scanned) = match flow {
                        Flow::Map(m) => {
                            let (m, r) = crate::model::ops::with_flex_values(m, |v| {
                                layer.add_batch(v, batch)
                            });
                            (Flow::Map(m), r)
                        }
                        Flow::Flat(f) => {
                            let (f, r) = crate::model::ops::with_flex_values(f, |v| {
                                layer.add_batch(v, batch)
                            });
                            (Flow::Flat(f), r)
                        }
                    };
                    flow = next;
                    // Elsewhere (a strided view, say) a copy is read.
                    let (means, maxima) = if let Some(r) = scanned {
                        r
                    } else {
                        let values = match &flow {
                            Flow::Map(m) => read_f32(m.clone(), OUTPUT)?,
                            Flow::Flat(f) => read_f32(f.clone(), OUTPUT)?,
                        };
                        layer.add_batch(&values, batch)
                    };
                    if let (Some(top), Some(w)) = (top, w) {
                        top.add_maxima(&maxima, w, images);
                    }
                    plane_means = Some(means);
                }
            }
            match plane_means {
                Some(means) => self.add_class_plane_means(i, &means, labels),
                None => self.add_class_means(i, &flow, labels)?,
            }
        }
        Ok(flow)
    }

    /// Count the saturated logits of a batch (the values [`Gather::forward`] returned).
    pub fn add_logits(&mut self, logits: &[f32]) {
        self.output.add_batch(logits);
    }

    /// The epoch's health; conv filters that `net`'s weights alone keep off (its input in
    /// `[0, input_max]`) are marked.
    pub fn finish(
        &self,
        net: &Net,
        epoch: usize,
        input_max: f32,
    ) -> Result<EpochHealth, ReadError> {
        let ranges = input_ranges(net, input_max);
        let mut layers = Vec::with_capacity(self.layers.len());
        for (i, accum) in &self.layers {
            let mut layer = accum.summary();
            layer.class_means = self.class_means_of(*i);
            if let (Some(Step::Conv { index, .. }), Some(&range)) =
                (net.steps.get(*i), ranges.get(*i))
                && range != InputRange::Any
                && let Some(p) = net.convs.get(*index)
            {
                let w = read_f32(p.weight.val(), "the conv weights")?;
                let b = read_f32(p.bias.val(), "the conv biases")?;
                for (c, dead) in layer
                    .channels
                    .iter_mut()
                    .zip(dead_by_weights(&w, &b, range))
                {
                    c.dead_by_weights = dead;
                }
                layer.weight_rule = range.rule();
            }
            if let Some(Some(top)) = self.tops.get(layers.len()) {
                layer.top = top.channels().to_vec();
            }
            layers.push(layer);
        }
        Ok(EpochHealth {
            epoch,
            images: self.images,
            layers,
            output_saturated_pct: self.output.saturated_pct(),
        })
    }
}

/// A layer's output, for a read error.
const OUTPUT: &str = "a layer's validation output";

fn flow_on_flex(flow: &Flow) -> bool {
    match flow {
        Flow::Map(m) => crate::model::ops::flex_f32(m),
        Flow::Flat(f) => crate::model::ops::flex_f32(f),
    }
}

/// Each image's largest value per channel of a conv output `[b, c, h, w]` and its place, found
/// on the device (two `[b, c]` reads), for the strongest activations.
fn add_device_maxima(top: &mut TopAccum, y: &Tensor<4>, images: &[u32]) -> Result<(), ReadError> {
    let [b, c, h, w] = y.dims();
    let (values, at) = y.clone().reshape([b, c, h * w]).max_dim_with_indices(2);
    let values = read_f32(values, "a layer's validation maxima")?;
    // Places below 2^24 are exact as f32.
    let at = read_f32(at.float(), "where a layer's validation maxima are")?;
    let maxima: Vec<(f32, usize)> = values
        .into_iter()
        .zip(at)
        .map(|(v, a)| (v, a as usize))
        .collect();
    top.add_maxima(&maxima, w, images);
    Ok(())
}

/// Per-channel sums of a layer's output made on its device: five reductions, one read back.
fn add_device_sums(layer: &mut LayerAccum, flow: &Flow) -> Result<(), ReadError> {
    // Each reduction gives `[channels]`; `count` values per channel.
    let (parts, count): ([Tensor<1>; 5], usize) = match flow {
        Flow::Map(y) => {
            let [b, c, h, w] = y.dims();
            let red = |t: Tensor<4>| t.sum_dim(3).sum_dim(2).sum_dim(0).reshape([c]);
            (
                [
                    red(y.clone().greater_elem(0.0).float()),
                    red(y.clone()),
                    red(y.clone() * y.clone()),
                    red(y.clone().abs()),
                    y.clone().max_dim(3).max_dim(2).max_dim(0).reshape([c]),
                ],
                b * h * w,
            )
        }
        Flow::Flat(y) => {
            let [b, u] = y.dims();
            let red = |t: Tensor<2>| t.sum_dim(0).reshape([u]);
            (
                [
                    red(y.clone().greater_elem(0.0).float()),
                    red(y.clone()),
                    red(y.clone() * y.clone()),
                    red(y.clone().abs()),
                    y.clone().max_dim(0).reshape([u]),
                ],
                b,
            )
        }
    };
    let values = read_f32(Tensor::cat(parts.to_vec(), 0), "a layer's validation sums")?;
    let units = layer.channels.len();
    if values.len() != 5 * units {
        return Ok(());
    }
    for (i, c) in layer.channels.iter_mut().enumerate() {
        c.add_sums(Sums {
            count: count as u64,
            on: values[i].round() as u64,
            sum: f64::from(values[units + i]),
            sum_sq: f64::from(values[2 * units + i]),
            abs_sum: f64::from(values[3 * units + i]),
            max: values[4 * units + i],
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::Config;
    use burn::module::Param;
    use burn::tensor::{Device, Distribution, TensorData};

    fn small_net(device: &Device) -> (Net, Vec<String>) {
        let mut cfg = Config::default();
        cfg.data.image_size = [16, 16];
        let net = Net::new(&cfg, 3, 5, device).expect("valid");
        let names = crate::model::summary::summarize(&cfg, 3)
            .expect("summary")
            .into_iter()
            .map(|r| r.name)
            .collect();
        (net, names)
    }

    /// Per channel of `[batch, channels, spatial]` values, computed the plain way in f64.
    fn direct(values: &[f32], batch: usize, channels: usize) -> Vec<(f64, f64, f64, f32, f64)> {
        let spatial = values.len() / (batch * channels);
        (0..channels)
            .map(|c| {
                let v: Vec<f64> = (0..batch)
                    .flat_map(|b| {
                        let at = (b * channels + c) * spatial;
                        values[at..at + spatial].iter().map(|&x| f64::from(x))
                    })
                    .collect();
                let n = v.len() as f64;
                let mean = v.iter().sum::<f64>() / n;
                let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                let on = v.iter().filter(|&&x| x > 0.0).count() as f64 / n;
                let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max) as f32;
                let abs = v.iter().map(|x| x.abs()).sum::<f64>() / n;
                (on, mean, var.sqrt(), max, abs)
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-4 * (1.0 + b.abs())
    }

    #[test]
    fn gathered_health_equals_a_direct_computation_on_both_paths() {
        let device = Device::flex();
        let (net, names) = small_net(&device);
        let batches: Vec<Tensor<4>> = (0..2)
            .map(|_| Tensor::<4>::random([3, 3, 16, 16], Distribution::Default, &device))
            .collect();
        // The plain way: every conv output from the step-by-step forward of `Net::forward`,
        // the hidden dense layer by hand from the last pooled maps.
        let conv_steps: Vec<usize> = net
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Step::Conv { .. }))
            .map(|(i, _)| i)
            .collect();
        let mut per_layer: Vec<Vec<f32>> = vec![Vec::new(); conv_steps.len() + 1];
        let mut channels = vec![0; conv_steps.len() + 1];
        let w = read_f32(net.denses[0].weight.val(), "w").expect("w");
        let bias = read_f32(net.denses[0].bias.val(), "b").expect("b");
        let units = bias.len();
        let mut logits_fused = Vec::new();
        for x in &batches {
            let out = net.forward(x.clone(), false, true);
            for (k, &i) in conv_steps.iter().enumerate() {
                let (_, t) = out.activations.iter().find(|(j, _)| *j == i).expect("conv");
                channels[k] = t.dims()[1];
                // Batch by batch: channels of one batch are contiguous per image.
                per_layer[k].extend(read_f32(t.clone(), "a").expect("a"));
            }
            let (_, last) = out.activations.last().expect("pool");
            let flat = read_f32(last.clone(), "p").expect("p");
            let n_in = flat.len() / 3;
            for row in flat.chunks_exact(n_in) {
                for u in 0..units {
                    let z: f32 =
                        (0..n_in).map(|i| row[i] * w[i * units + u]).sum::<f32>() + bias[u];
                    per_layer[conv_steps.len()].push(z.max(0.0));
                }
            }
            channels[conv_steps.len()] = units;
            logits_fused
                .extend(read_f32(net.forward(x.clone(), false, false).logits, "l").expect("l"));
        }
        for on_device in [false, true] {
            let mut g = Gather::new(&net, &names).summing_on_device(on_device);
            let mut logits = Vec::new();
            for x in &batches {
                let l = read_f32(g.forward(&net, x.clone()).expect("forward"), "l").expect("l");
                g.add_logits(&l);
                logits.extend(l);
            }
            // The same logits as the fused forward, bit for bit.
            assert_eq!(logits, logits_fused);
            let h = g.finish(&net, 1, 1.0).expect("finish");
            assert_eq!(h.images, 6);
            let got: Vec<&str> = h.layers.iter().map(|l| l.name.as_str()).collect();
            assert_eq!(got, ["conv2d", "conv2d_1", "conv2d_2", "dense"]);
            for (k, layer) in h.layers.iter().enumerate() {
                // Two batches of 3: each batch's block is [3, channels, spatial].
                let half = per_layer[k].len() / 2;
                let mut joined = Vec::new();
                joined.extend_from_slice(&per_layer[k][..half]);
                joined.extend_from_slice(&per_layer[k][half..]);
                let want = direct(&joined, 6, channels[k]);
                assert_eq!(layer.units, channels[k]);
                for (c, (got, want)) in layer.channels.iter().zip(&want).enumerate() {
                    let ctx = format!("{} unit {c} (device sums: {on_device})", layer.name);
                    assert!(
                        close(got.on_rate, want.0),
                        "{ctx}: on {} vs {}",
                        got.on_rate,
                        want.0
                    );
                    assert!(
                        close(got.mean, want.1),
                        "{ctx}: mean {} vs {}",
                        got.mean,
                        want.1
                    );
                    assert!(
                        close(got.std, want.2),
                        "{ctx}: std {} vs {}",
                        got.std,
                        want.2
                    );
                    assert!((got.max - want.3).abs() <= 1e-6, "{ctx}: max");
                    assert!(close(got.mean_abs, want.4), "{ctx}: |a|");
                }
                let dead = want.iter().filter(|w| w.0 == 0.0).count();
                assert!(close(
                    layer.dead_pct,
                    100.0 * dead as f64 / channels[k] as f64
                ));
            }
            let saturated = logits.iter().filter(|z| z.abs() > SATURATED_LOGIT).count();
            assert!(close(
                h.output_saturated_pct,
                100.0 * saturated as f64 / logits.len() as f64
            ));
        }
    }

    /// One image's maximum of a channel: `(value, image, y, x)`.
    type Plain = (f32, u32, u32, u32);

    /// Per channel of one batch of conv outputs `[batch, c, h, w]`: each image's largest value
    /// and its first place, as `(value, image, y, x)`, the plain way.
    fn plain_maxima(values: &[f32], [b, c, h, w]: [usize; 4], images: &[u32]) -> Vec<Vec<Plain>> {
        (0..c)
            .map(|ch| {
                (0..b)
                    .map(|i| {
                        let mut best = (f32::NEG_INFINITY, 0, 0);
                        for y in 0..h {
                            for x in 0..w {
                                let v = values[((i * c + ch) * h + y) * w + x];
                                if v > best.0 {
                                    best = (v, y, x);
                                }
                            }
                        }
                        (best.0, images[i], best.1 as u32, best.2 as u32)
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn top_activations_equal_a_direct_computation_on_both_paths() {
        let device = Device::flex();
        let (net, names) = small_net(&device);
        // Three batches of 4: 12 images, more than the 9 kept; validation indices with gaps.
        let batches: Vec<(Tensor<4>, Vec<usize>)> = (0..3)
            .map(|b| {
                let x = Tensor::<4>::random([4, 3, 16, 16], Distribution::Default, &device);
                (x, (0..4).map(|i| 100 + 7 * (4 * b + i)).collect())
            })
            .collect();
        let conv_steps: Vec<usize> = net
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Step::Conv { .. }))
            .map(|(i, _)| i)
            .collect();
        // Per conv layer: the outputs of each batch and their shapes.
        let mut outputs: Vec<Vec<(Vec<f32>, [usize; 4])>> = vec![Vec::new(); conv_steps.len()];
        let mut want: Vec<Vec<Vec<Plain>>> = vec![Vec::new(); conv_steps.len()];
        for (x, indices) in &batches {
            let out = net.forward(x.clone(), false, true);
            let images: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
            for (k, &i) in conv_steps.iter().enumerate() {
                let (_, t) = out.activations.iter().find(|(j, _)| *j == i).expect("conv");
                let values = read_f32(t.clone(), "a").expect("a");
                let per = plain_maxima(&values, t.dims(), &images);
                if want[k].is_empty() {
                    want[k] = vec![Vec::new(); per.len()];
                }
                for (c, list) in per.into_iter().enumerate() {
                    want[k][c].extend(list);
                }
                outputs[k].push((values, t.dims()));
            }
        }
        for channels in &mut want {
            for list in channels.iter_mut() {
                // Strongest first, the image seen first ahead among equals.
                list.sort_by(|a, b| b.0.total_cmp(&a.0));
                list.truncate(TOP_ACTIVATIONS);
            }
        }
        for on_device in [false, true] {
            let mut g = Gather::new(&net, &names).summing_on_device(on_device);
            for (x, indices) in &batches {
                g.set_images(indices);
                g.forward(&net, x.clone()).expect("forward");
            }
            let h = g.finish(&net, 1, 1.0).expect("finish");
            assert!(
                h.layers[conv_steps.len()].top.is_empty(),
                "no top for dense"
            );
            for (k, layer) in h.layers.iter().take(conv_steps.len()).enumerate() {
                assert_eq!(layer.top.len(), layer.units, "{}", layer.name);
                for (c, (got, want)) in layer.top.iter().zip(&want[k]).enumerate() {
                    let ctx = format!("{} channel {c} (device: {on_device})", layer.name);
                    assert_eq!(got.len(), TOP_ACTIVATIONS, "{ctx}");
                    let values: Vec<(f32, u32)> = got.iter().map(|t| (t.value, t.image)).collect();
                    let wanted: Vec<(f32, u32)> = want.iter().map(|t| (t.0, t.1)).collect();
                    assert_eq!(values, wanted, "{ctx}");
                    if on_device {
                        // The device may pick another of equal maxima: the place holds the value.
                        for t in got {
                            let b = batches
                                .iter()
                                .position(|(_, ix)| ix.contains(&(t.image as usize)))
                                .expect("the batch");
                            let i = batches[b].1.iter().position(|&ix| ix == t.image as usize);
                            let (values, [_, ch, hh, ww]) = &outputs[k][b];
                            let i = i.expect("the image");
                            let at = ((i * ch + c) * hh + t.y as usize) * ww + t.x as usize;
                            assert_eq!(values[at].to_bits(), t.value.to_bits(), "{ctx}");
                        }
                    } else {
                        let places: Vec<(u32, u32)> = got.iter().map(|t| (t.y, t.x)).collect();
                        let wanted: Vec<(u32, u32)> = want.iter().map(|t| (t.2, t.3)).collect();
                        assert_eq!(places, wanted, "{ctx}");
                    }
                }
            }
        }
    }

    #[test]
    fn old_health_files_without_top_activations_still_load() {
        let old = r#"{"name":"conv2d","units":1,"dead_pct":0.0,"dormant_pct":0.0,
            "always_on_pct":0.0,"on_rate_histogram":[0,0,0,0,0,0,0,0,0,1],
            "channels":[{"on_rate":1.0,"mean":1.0,"std":0.0,"max":1.0,"mean_abs":1.0}]}"#;
        let layer: LayerHealth = serde_json::from_str(old).expect("an old layer loads");
        assert!(layer.top.is_empty());
        let mut with = layer.clone();
        with.top = vec![vec![TopActivation {
            value: 2.0,
            image: 5,
            y: 1,
            x: 2,
        }]];
        let text = serde_json::to_string(&with).expect("json");
        assert!(text.contains("\"top\""), "{text}");
        assert_eq!(
            serde_json::from_str::<LayerHealth>(&text).expect("loads"),
            with
        );
    }

    /// Replace filter `f` of conv `index` with `weights` (one value each) and its bias.
    fn set_filter(net: &mut Net, index: usize, f: usize, weight: impl Fn(f32) -> f32, bias: f32) {
        let p = &net.convs[index];
        let dims = p.weight.val().dims();
        let device = p.weight.val().device();
        let mut w = read_f32(p.weight.val(), "w").expect("w");
        let per = w.len() / dims[0];
        for v in &mut w[f * per..(f + 1) * per] {
            *v = weight(*v);
        }
        let mut b = read_f32(p.bias.val(), "b").expect("b");
        b[f] = bias;
        net.convs[index].weight =
            Param::from_tensor(Tensor::from_data(TensorData::new(w, dims), &device));
        net.convs[index].bias =
            Param::from_tensor(Tensor::from_data(TensorData::new(b, [dims[0]]), &device));
    }

    #[test]
    fn a_filter_forced_negative_is_dead_with_the_weight_reason() {
        let device = Device::flex();
        let (mut net, names) = small_net(&device);
        // First layer (input in [0, 1]): positive weights summing to 0.27 and bias -0.5.
        set_filter(&mut net, 0, 2, |_| 0.01, -0.5);
        // Second layer (after a ReLU): every weight <= 0 and bias 0.
        set_filter(&mut net, 1, 5, |w| -w.abs(), 0.0);
        let mut g = Gather::new(&net, &names);
        for _ in 0..2 {
            let x = Tensor::<4>::random([4, 3, 16, 16], Distribution::Default, &device);
            g.forward(&net, x).expect("forward");
        }
        let h = g.finish(&net, 1, 1.0).expect("finish");
        let first = &h.layers[0];
        assert_eq!(first.weight_rule, "sum(w+) x 1 + b <= 0");
        assert!(first.channels[2].on_rate <= 0.0 && first.channels[2].dead_by_weights);
        assert!(first.dead_units().contains(&2));
        let second = &h.layers[1];
        assert_eq!(second.weight_rule, "all w <= 0, b <= 0");
        assert!(second.channels[5].on_rate <= 0.0 && second.channels[5].dead_by_weights);
        // Ordinary filters are neither.
        let alive = first.channels.iter().filter(|c| !c.dead_by_weights).count();
        assert_eq!(alive, first.units - 1);
        assert!(first.channels.iter().any(|c| c.on_rate > 0.0));
        // The dense layer has no weight rule.
        assert!(h.layers[3].weight_rule.is_empty());
    }

    #[test]
    fn weights_explain_a_dead_filter_only_within_the_input_range() {
        // Two filters of 3 weights: positive sum 0.5 with bias -0.4, and all <= 0 with bias 0.
        let w = [0.2, 0.3, -1.0, -0.1, 0.0, -0.2];
        let b = [-0.4, 0.0];
        assert_eq!(
            dead_by_weights(&w, &b, InputRange::UpTo(1.0)),
            [false, true]
        );
        assert_eq!(dead_by_weights(&w, &b, InputRange::UpTo(0.5)), [true, true]);
        assert_eq!(
            dead_by_weights(&w, &b, InputRange::NonNegative),
            [false, true]
        );
        assert_eq!(dead_by_weights(&w, &b, InputRange::Any), [false, false]);
        // A positive bias is never dead by its weights.
        assert_eq!(
            dead_by_weights(&w, &[-0.4, 0.1], InputRange::NonNegative),
            [false, false]
        );
    }

    /// The cost of gathering against a demo epoch (`convscope demo`: the tutorial network on
    /// 64×64 images, 320 training and 80 validation images, batches of 32), timed in one
    /// process with the three parts alternated: a training epoch, the validation pass as before
    /// (fused, no health) and with [`Gather`]. Run with
    /// `cargo test --lib cost_of_gathering -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check: prints the cost"]
    fn cost_of_gathering_against_a_demo_epoch() {
        use burn::module::Module as _;
        use burn::optim::GradientsParams;
        use std::time::Instant;
        let mut cfg = Config::default();
        cfg.data.image_size = [64, 64];
        let names: Vec<String> = crate::model::summary::summarize(&cfg, 2)
            .expect("summary")
            .into_iter()
            .map(|r| r.name)
            .collect();
        let device = Device::flex();
        let ad = device.clone().autodiff();
        let mut net = Net::new(&cfg, 2, 3, &ad).expect("net");
        let mut optim = crate::model::ops::adam::adam(&cfg.optimizer);
        let batch = |n| Tensor::<4>::random([n, 3, 64, 64], Distribution::Default, &device);
        let train: Vec<Tensor<4>> = (0..10).map(|_| batch(32)).collect();
        let val: Vec<Tensor<4>> = (0..3).map(|_| batch(32)).chain([batch(16)]).collect();
        let labels: Vec<usize> = (0..32).map(|i| i % 2).collect();
        let (mut t_train, mut t_fused, mut t_gather) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..6 {
            let t = Instant::now();
            for x in &train {
                let x = Tensor::<4>::from_data(x.to_data(), &ad);
                let loss = crate::model::loss(net.forward(x, true, false).logits, &labels, &ad);
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                net = optim.step(cfg.optimizer.lr, net, grads);
            }
            t_train.push(t.elapsed().as_secs_f64());
            let eval = net.valid();
            let t = Instant::now();
            for x in &val {
                let l = read_f32(eval.forward(x.clone(), false, false).logits, "l").expect("l");
                assert!(!l.is_empty());
            }
            t_fused.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            // HEALTH_SUMS=device: the five reductions on the device instead of one host pass.
            let on_device = std::env::var("HEALTH_SUMS").is_ok_and(|v| v == "device");
            let mut g = Gather::new(&eval, &names).summing_on_device(on_device);
            for x in &val {
                let l = read_f32(g.forward(&eval, x.clone()).expect("f"), "l").expect("l");
                g.add_logits(&l);
            }
            let h = g.finish(&eval, 1, 1.0).expect("finish");
            t_gather.push(t.elapsed().as_secs_f64());
            assert_eq!(h.images, 112);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (tr, fu, ga) = (
            median(&mut t_train),
            median(&mut t_fused),
            median(&mut t_gather),
        );
        // The demo validates 80 images; 112 were timed.
        let (fu, ga) = (fu * 80.0 / 112.0, ga * 80.0 / 112.0);
        eprintln!(
            "train epoch {tr:.3} s, validation {fu:.3} s fused, {ga:.3} s gathering: +{:.3} s = {:.2} % of an epoch",
            ga - fu,
            100.0 * (ga - fu) / (tr + fu)
        );
    }

    /// Each conv layer's class means in `h` against the per-image means of `out`'s maps.
    fn check_class_means(
        h: &EpochHealth,
        net: &Net,
        names: &[String],
        out: &crate::model::Forward,
        labels: &[usize],
    ) {
        let mut convs = 0;
        for (i, t) in &out.activations {
            if !matches!(net.steps[*i], Step::Conv { .. }) {
                continue;
            }
            convs += 1;
            let [b, c, hh, ww] = t.dims();
            let values = read_f32(t.clone(), "a").expect("a");
            let layer = h.layer(&names[*i]).expect("layer");
            assert_eq!(layer.class_means.len(), 3, "{}", layer.name);
            assert!(layer.class_means[1].is_empty(), "class 1 has no image");
            for class in [0, 2] {
                for ch in 0..c {
                    let images: Vec<usize> = (0..b).filter(|&n| labels[n] == class).collect();
                    let want = images
                        .iter()
                        .map(|&n| {
                            let plane = &values[(n * c + ch) * hh * ww..(n * c + ch + 1) * hh * ww];
                            plane.iter().map(|&v| f64::from(v)).sum::<f64>() / plane.len() as f64
                        })
                        .sum::<f64>()
                        / images.len() as f64;
                    let got = layer.class_means[class][ch];
                    assert!(
                        (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                        "{got} {want}"
                    );
                }
            }
        }
        assert_eq!(convs, 3);
    }

    #[test]
    fn class_means_are_each_class_s_mean_of_per_image_channel_means() {
        let device = Device::flex();
        let (net, names) = small_net(&device);
        let x = Tensor::<4>::random([4, 3, 16, 16], Distribution::Default, &device);
        let labels = [2, 0, 2, 0];
        // Both paths: the means summed on the host with the planes' sums, or on the device.
        let gathered = [false, true].map(|on_device| {
            let mut g = Gather::new(&net, &names).summing_on_device(on_device);
            g.set_labels(&labels);
            g.forward(&net, x.clone()).expect("forward");
            // A batch without labels adds nothing to the class means.
            g.forward(&net, x.clone()).expect("forward");
            g.finish(&net, 1, 1.0).expect("finish")
        });
        let out = net.forward(x, false, true);
        for h in &gathered {
            check_class_means(h, &net, &names, &out, &labels);
        }
        let h = &gathered[0];
        let dense = h.layers.last().expect("dense");
        assert!(dense.class_means.is_empty());
        // Stored and read back; a file without them still loads.
        let text = serde_json::to_string(&h).expect("json");
        let back: EpochHealth = serde_json::from_str(&text).expect("read");
        for (got, want) in back.layers.iter().zip(&h.layers) {
            assert_eq!(got.class_means.len(), want.class_means.len());
            for (g, w) in got
                .class_means
                .iter()
                .flatten()
                .zip(want.class_means.iter().flatten())
            {
                assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0));
            }
        }
        let mut old: serde_json::Value = serde_json::from_str(&text).expect("value");
        for layer in old["layers"].as_array_mut().expect("layers") {
            layer.as_object_mut().expect("layer").remove("class_means");
        }
        let old: EpochHealth = serde_json::from_value(old).expect("an older file loads");
        assert!(old.layers.iter().all(|l| l.class_means.is_empty()));
    }
}
