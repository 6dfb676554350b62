//! Where the network looked: Grad-CAM at any convolution (or all of them averaged), vanilla
//! input-gradient saliency and SmoothGrad, for one image (pure network math on [`Net`]).
//!
//! burn gives no gradient for a tensor inside the graph, so Grad-CAM splits the forward pass at
//! its layer: steps `0..=L` run as usual, the activation is detached and made a leaf that
//! requires a gradient, and the rest of the network runs from it. The target is the logit of the
//! explained class; with one logit (a binary head), `+z` explains class 1 and `-z` class 0.
//! Maps come back at the layer's resolution (the input's for saliency); upsampling them to the
//! image and drawing them is [`crate::viz::overlay`]'s.

use burn::module::Module as _;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng as _;

use super::{Flow, Net, ReadError, Step, read_f32};

/// Noisy copies SmoothGrad averages.
pub const SMOOTH_SAMPLES: usize = 20;
/// SmoothGrad's noise: its standard deviation as a fraction of the input's range.
pub const SMOOTH_NOISE: f32 = 0.2;
/// SmoothGrad's noise seed (the same image gives the same map).
pub const SMOOTH_SEED: u64 = 20;
/// Added to the range when a map is min-max normalised.
pub const NORM_EPS: f32 = 1e-7;

/// How a map is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Gradient-weighted class activation map at a convolution.
    GradCam,
    /// `max over channels of |d target / d input|`.
    Saliency,
    /// Saliency of the mean gradient over [`SMOOTH_SAMPLES`] noisy copies.
    SmoothGrad,
}

impl Method {
    /// Every method, in the order a key cycles them.
    pub const ALL: [Method; 3] = [Method::GradCam, Method::Saliency, Method::SmoothGrad];

    /// The method's name on the command line and in JSON.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Method::GradCam => "gradcam",
            Method::Saliency => "saliency",
            Method::SmoothGrad => "smoothgrad",
        }
    }
}

/// Which convolution Grad-CAM looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CamLayer {
    /// The convolution at this index of the config's layer list (= [`Net::steps`]).
    Step(usize),
    /// Every convolution's map, each normalised, resized to the largest and averaged.
    AllConv,
}

/// A map of non-negative values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Heat {
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
}

impl Heat {
    /// The map resized to `width` x `height` by bilinear interpolation (pixel centres aligned,
    /// edges clamped, as OpenCV's and PIL's resize).
    #[must_use]
    pub fn resized(&self, width: usize, height: usize) -> Heat {
        if (width, height) == (self.width, self.height) || self.values.is_empty() {
            return Heat {
                width,
                height,
                values: if self.values.is_empty() {
                    vec![0.0; width * height]
                } else {
                    self.values.clone()
                },
            };
        }
        let axis = |n_out: usize, n_in: usize| -> Vec<(usize, usize, f32)> {
            let scale = n_in as f32 / n_out as f32;
            (0..n_out)
                .map(|o| {
                    let s = ((o as f32 + 0.5) * scale - 0.5).clamp(0.0, (n_in - 1) as f32);
                    let i0 = s.floor() as usize;
                    let i1 = (i0 + 1).min(n_in - 1);
                    (i0, i1, s - i0 as f32)
                })
                .collect()
        };
        let (xs, ys) = (axis(width, self.width), axis(height, self.height));
        let at = |x: usize, y: usize| self.values[y * self.width + x];
        let mut values = Vec::with_capacity(width * height);
        for &(y0, y1, fy) in &ys {
            for &(x0, x1, fx) in &xs {
                let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
                let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
                values.push(top * (1.0 - fy) + bottom * fy);
            }
        }
        Heat {
            width,
            height,
            values,
        }
    }

    /// Min-max normalised to `0..=1` (`(v - min) / (max - min + eps)`), or `None` when the
    /// largest value is not positive: there is no evidence to draw, only noise.
    #[must_use]
    pub fn normalised(&self) -> Option<Heat> {
        let max = self
            .values
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        if max.is_nan() || max <= 0.0 {
            return None;
        }
        let min = self.values.iter().copied().fold(f32::INFINITY, f32::min);
        let range = max - min + NORM_EPS;
        Some(Heat {
            width: self.width,
            height: self.height,
            values: self.values.iter().map(|v| (v - min) / range).collect(),
        })
    }
}

/// A map, or the reason there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    /// Normalised to `0..=1`.
    Map(Heat),
    /// The map's maximum was ≤ 0: nothing in the image speaks for the class here.
    NoPositiveEvidence { width: usize, height: usize },
}

impl Evidence {
    fn of(raw: &Heat) -> Self {
        raw.normalised().map_or(
            Evidence::NoPositiveEvidence {
                width: raw.width,
                height: raw.height,
            },
            Evidence::Map,
        )
    }

    /// The map, when there is one.
    #[must_use]
    pub fn map(&self) -> Option<&Heat> {
        match self {
            Evidence::Map(h) => Some(h),
            Evidence::NoPositiveEvidence { .. } => None,
        }
    }

    /// `(width, height)` of the map (or of the map there would have been).
    #[must_use]
    pub fn size(&self) -> (usize, usize) {
        match self {
            Evidence::Map(h) => (h.width, h.height),
            Evidence::NoPositiveEvidence { width, height } => (*width, *height),
        }
    }
}

/// One image explained.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The class explained.
    pub class: usize,
    /// Every class's probability, in class-index order.
    pub probabilities: Vec<f32>,
    pub evidence: Evidence,
}

/// Why an explanation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("layer {index} is not a convolution; convolutions are at layer indices {convs:?}")]
    NotConv { index: usize, convs: Vec<usize> },
    #[error("class {class} does not exist: the network has {classes} classes")]
    NoClass { class: usize, classes: usize },
    #[error("the network has no convolution layer to explain")]
    NoConv,
    #[error("the input is {got:?}; the network takes [1, c, h, w] with one image")]
    Input { got: [usize; 4] },
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// The config layer indices of every convolution.
#[must_use]
pub fn conv_layers(net: &Net) -> Vec<usize> {
    net.steps
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Step::Conv { .. }))
        .map(|(i, _)| i)
        .collect()
}

/// Grad-CAM's default layer: the last convolution followed by its pooling (the tutorial's
/// `conv2d_2`, 37x37), else the last convolution.
#[must_use]
pub fn default_layer(net: &Net) -> Option<usize> {
    let convs = conv_layers(net);
    convs
        .iter()
        .rev()
        .find(|&&i| matches!(net.steps.get(i + 1), Some(Step::Pool { .. })))
        .or(convs.last())
        .copied()
}

/// How many classes the network tells apart (one logit: two).
#[must_use]
pub fn class_count(net: &Net) -> usize {
    let outputs = net
        .steps
        .iter()
        .rev()
        .find_map(|s| match *s {
            Step::Dense { index, .. } => Some(net.denses[index].bias.val().dims()[0]),
            _ => None,
        })
        .unwrap_or(1);
    outputs.max(2)
}

/// The network as plain (no autodiff, no parameter asking for a gradient) with the device its
/// inputs go to: only the leaf made from an activation or the input with `autodiff()` gets a
/// gradient, the weights are constants to it, and no weight gradient is computed.
fn plain(net: &Net) -> (Net, Device) {
    let net = net.valid();
    let device = net
        .convs
        .first()
        .map(|c| c.weight.val().device())
        .or_else(|| net.denses.first().map(|d| d.weight.val().device()))
        .unwrap_or_else(Device::flex);
    (net, device)
}

/// The sum over the batch of the explained class's target: its logit, or `±z` for one logit.
fn target(logits: Tensor<2>, class: usize) -> Tensor<1> {
    let [n, outputs] = logits.dims();
    if outputs == 1 {
        let z = logits.sum();
        if class == 1 { z } else { z.neg() }
    } else {
        logits.slice([0..n, class..class + 1]).sum()
    }
}

fn check_class(net: &Net, class: usize) -> Result<(), ExplainError> {
    let classes = class_count(net);
    if class < classes {
        Ok(())
    } else {
        Err(ExplainError::NoClass { class, classes })
    }
}

fn check_input(input: &Tensor<4>) -> Result<(), ExplainError> {
    let dims = input.dims();
    if dims[0] == 1 {
        Ok(())
    } else {
        Err(ExplainError::Input { got: dims })
    }
}

/// The network's class probabilities for one image (`[1, c, h, w]`), and the predicted class.
pub fn classify(net: &Net, input: Tensor<4>) -> Result<(usize, Vec<f32>), ExplainError> {
    check_input(&input)?;
    read_class(&net.valid().forward(input, false, false).logits)
}

/// The predicted class and the probabilities of the first row of `logits` (read off the
/// graph, which stays usable for the backward pass).
fn read_class(logits: &Tensor<2>) -> Result<(usize, Vec<f32>), ExplainError> {
    let [_, outputs] = logits.dims();
    let row = logits.clone().inner().slice([0..1, 0..outputs]);
    let z = read_f32(row.clone(), "logits")?;
    let p = read_f32(super::probabilities(row), "class probabilities")?;
    let class = super::predictions(&z, outputs)
        .first()
        .copied()
        .unwrap_or(0);
    Ok((class, p))
}

/// What a gradient method found, with the class it explained and the image's probabilities
/// (from the same forward pass).
type Found<T> = (T, usize, Vec<f32>);

/// Grad-CAM's pieces at one convolution, kept for tests and for anyone checking the math.
#[derive(Debug, Clone, PartialEq)]
pub struct CamParts {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// The layer's activation, `[channels, height, width]`.
    pub activation: Vec<f32>,
    /// The target's gradient with respect to it, same layout.
    pub gradient: Vec<f32>,
    /// Channel weights: the gradient's spatial mean, `[channels]`.
    pub weights: Vec<f32>,
    /// `ReLU(Σ weight · activation)` before normalisation.
    pub raw: Heat,
}

/// `ReLU(Σ_c weights[c] · activation[c])` over a `[channels, height, width]` activation.
#[must_use]
pub fn weighted_map(weights: &[f32], activation: &[f32], width: usize, height: usize) -> Heat {
    let plane = width * height;
    let mut values = vec![0.0f32; plane];
    for (w, a) in weights.iter().zip(activation.chunks_exact(plane)) {
        for (v, x) in values.iter_mut().zip(a) {
            *v += w * x;
        }
    }
    for v in &mut values {
        *v = v.max(0.0);
    }
    Heat {
        width,
        height,
        values,
    }
}

/// Run steps `from..` of the network on `x` (the output of step `from - 1`).
fn forward_from(net: &Net, from: usize, mut x: Flow) -> Tensor<2> {
    for i in from..net.steps.len() {
        x = net.step(i, x, false);
    }
    x.into_flat()
}

/// Grad-CAM's pieces for `class` at the convolution at config layer `layer`, for one image
/// `[1, c, h, w]`.
pub fn grad_cam_parts(
    net: &Net,
    input: Tensor<4>,
    layer: usize,
    class: usize,
) -> Result<CamParts, ExplainError> {
    Ok(cam(net, input, layer, Some(class))?.0)
}

/// [`grad_cam_parts`] for `class`, or the predicted class when it is `None`.
fn cam(
    net: &Net,
    input: Tensor<4>,
    layer: usize,
    class: Option<usize>,
) -> Result<Found<CamParts>, ExplainError> {
    check_input(&input)?;
    if let Some(c) = class {
        check_class(net, c)?;
    }
    if !matches!(net.steps.get(layer), Some(Step::Conv { .. })) {
        return Err(ExplainError::NotConv {
            index: layer,
            convs: conv_layers(net),
        });
    }
    let (net, device) = plain(net);
    let mut x = Flow::Map(input.inner().to_device(&device));
    for i in 0..=layer {
        x = net.step(i, x, false);
    }
    // [1, channels, height, width], the leaf of a graph of its own
    let a = x.into_map().autodiff().require_grad();
    let [_, channels, height, width] = a.dims();
    let logits = forward_from(&net, layer + 1, Flow::Map(a.clone()));
    let (predicted, probabilities) = read_class(&logits)?;
    let class = class.unwrap_or(predicted);
    let grads = target(logits, class).backward();
    let gradient = match a.grad(&grads) {
        Some(g) => read_f32(g, "Grad-CAM gradient")?,
        // Nothing downstream depends on the layer (a constant head): a zero gradient.
        None => vec![0.0; channels * height * width],
    };
    let activation = read_f32(a.inner(), "Grad-CAM activation")?;
    let plane = (height * width).max(1);
    let weights: Vec<f32> = gradient
        .chunks_exact(plane)
        .map(|g| g.iter().sum::<f32>() / plane as f32)
        .collect();
    let raw = weighted_map(&weights, &activation, width, height);
    let parts = CamParts {
        channels,
        height,
        width,
        activation,
        gradient,
        weights,
        raw,
    };
    Ok((parts, class, probabilities))
}

/// Grad-CAM for `class` at `layer`, for one image `[1, c, h, w]`.
pub fn grad_cam(
    net: &Net,
    input: Tensor<4>,
    layer: CamLayer,
    class: usize,
) -> Result<Evidence, ExplainError> {
    Ok(grad_cam_for(net, input, layer, Some(class))?.0)
}

/// [`grad_cam`] for `class`, or the predicted class when it is `None`.
fn grad_cam_for(
    net: &Net,
    input: Tensor<4>,
    layer: CamLayer,
    class: Option<usize>,
) -> Result<Found<Evidence>, ExplainError> {
    match layer {
        CamLayer::Step(i) => {
            let (parts, class, p) = cam(net, input, i, class)?;
            Ok((Evidence::of(&parts.raw), class, p))
        }
        CamLayer::AllConv => {
            let convs = conv_layers(net);
            let Some((&first, rest)) = convs.split_first() else {
                return Err(ExplainError::NoConv);
            };
            let (parts, class, p) = cam(net, input.clone(), first, class)?;
            let mut maps = vec![parts.raw];
            for &i in rest {
                maps.push(cam(net, input.clone(), i, Some(class))?.0.raw);
            }
            Ok((Evidence::of(&average(&maps)), class, p))
        }
    }
}

/// The mean of each map normalised (a map with no positive evidence counts as zeros), at the
/// largest map's resolution.
fn average(maps: &[Heat]) -> Heat {
    let (width, height) = maps
        .iter()
        .map(|m| (m.width, m.height))
        .max_by_key(|&(w, h)| w * h)
        .unwrap_or((0, 0));
    let mut sum = vec![0.0f32; width * height];
    for m in maps {
        if let Some(n) = m.normalised() {
            for (s, v) in sum.iter_mut().zip(n.resized(width, height).values) {
                *s += v;
            }
        }
    }
    let k = maps.len().max(1) as f32;
    Heat {
        width,
        height,
        values: sum.into_iter().map(|s| s / k).collect(),
    }
}

/// The gradient of `class`'s target with respect to each image of `input` (`[n, c, h, w]`),
/// summed over the batch; same layout as the input, `[n, c, h, w]`.
pub fn input_gradient(net: &Net, input: Tensor<4>, class: usize) -> Result<Vec<f32>, ExplainError> {
    Ok(gradient_for(net, input, Some(class))?.0)
}

/// [`input_gradient`] for `class`, or the first image's predicted class when it is `None`.
fn gradient_for(
    net: &Net,
    input: Tensor<4>,
    class: Option<usize>,
) -> Result<Found<Vec<f32>>, ExplainError> {
    if let Some(c) = class {
        check_class(net, c)?;
    }
    let (net, device) = plain(net);
    let x = input.inner().to_device(&device).autodiff().require_grad();
    let logits = forward_from(&net, 0, Flow::Map(x.clone()));
    let (predicted, probabilities) = read_class(&logits)?;
    let class = class.unwrap_or(predicted);
    let grads = target(logits, class).backward();
    let [n, c, h, w] = x.dims();
    let gradient = match x.grad(&grads) {
        Some(g) => read_f32(g, "input gradient")?,
        None => vec![0.0; n * c * h * w],
    };
    Ok((gradient, class, probabilities))
}

/// `max over channels of |g|` for a `[c, h, w]` gradient.
fn channel_max_abs(gradient: &[f32], width: usize, height: usize) -> Heat {
    let plane = width * height;
    let mut values = vec![0.0f32; plane];
    for g in gradient.chunks_exact(plane.max(1)) {
        for (v, x) in values.iter_mut().zip(g) {
            *v = v.max(x.abs());
        }
    }
    Heat {
        width,
        height,
        values,
    }
}

/// Vanilla saliency for `class`: `max over channels of |d target / d input|`, one image.
pub fn saliency(net: &Net, input: Tensor<4>, class: usize) -> Result<Evidence, ExplainError> {
    Ok(saliency_for(net, input, Some(class))?.0)
}

/// [`saliency`] for `class`, or the predicted class when it is `None`.
fn saliency_for(
    net: &Net,
    input: Tensor<4>,
    class: Option<usize>,
) -> Result<Found<Evidence>, ExplainError> {
    check_input(&input)?;
    let [_, _, h, w] = input.dims();
    let (g, class, p) = gradient_for(net, input, class)?;
    Ok((Evidence::of(&channel_max_abs(&g, w, h)), class, p))
}

/// SmoothGrad for `class`: the saliency of the gradient averaged over [`SMOOTH_SAMPLES`] copies
/// of the image with Gaussian noise (σ = [`SMOOTH_NOISE`] × the image's value range), seeded by
/// `seed`, one image.
pub fn smooth_grad(
    net: &Net,
    input: Tensor<4>,
    class: usize,
    seed: u64,
) -> Result<Evidence, ExplainError> {
    check_input(&input)?;
    let [_, c, h, w] = input.dims();
    let device = input.device();
    let pixels = read_f32(input, "input image")?;
    let (lo, hi) = pixels
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let sigma = SMOOTH_NOISE * (hi - lo).max(0.0);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut noisy = Vec::with_capacity(SMOOTH_SAMPLES * pixels.len());
    for _ in 0..SMOOTH_SAMPLES {
        noisy.extend(pixels.iter().map(|&p| p + sigma * gaussian(&mut rng)));
    }
    let batch = Tensor::<4>::from_data(TensorData::new(noisy, [SMOOTH_SAMPLES, c, h, w]), &device);
    // Each copy's gradient is its own (no layer mixes images at inference): their sum / n.
    let g = input_gradient(net, batch, class)?;
    let per = pixels.len();
    let mut mean = vec![0.0f32; per];
    for copy in g.chunks_exact(per.max(1)) {
        for (m, v) in mean.iter_mut().zip(copy) {
            *m += v / SMOOTH_SAMPLES as f32;
        }
    }
    Ok(Evidence::of(&channel_max_abs(&mean, w, h)))
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut impl rand::Rng) -> f32 {
    let u1: f32 = rng.random::<f32>().max(f32::MIN_POSITIVE);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Explain `class` (default: the predicted class) for one image `[1, c, h, w]` with `method`
/// (`layer` is Grad-CAM's; ignored by the gradient methods).
pub fn explain(
    net: &Net,
    input: Tensor<4>,
    method: Method,
    layer: CamLayer,
    class: Option<usize>,
) -> Result<Explanation, ExplainError> {
    // The gradient methods classify in the forward pass they differentiate.
    let (evidence, class, probabilities) = match method {
        Method::GradCam => grad_cam_for(net, input, layer, class)?,
        Method::Saliency => saliency_for(net, input, class)?,
        Method::SmoothGrad => {
            let (predicted, p) = classify(net, input.clone())?;
            let class = class.unwrap_or(predicted);
            (smooth_grad(net, input, class, SMOOTH_SEED)?, class, p)
        }
    };
    Ok(Explanation {
        class,
        probabilities,
        evidence,
    })
}

#[cfg(test)]
mod tests;
