//! Activation maximisation: for each filter of a conv layer, an input image that makes the
//! filter's mean activation large, all filters of the layer optimised together as one batch
//! (one image per filter) with the network frozen (only the input gets a gradient).
//!
//! Two recipes:
//! - [`Tier::Quick`], the Keras guide "Visualizing what convnets learn": a seeded random image
//!   near grey, 30 steps of gradient ascent with step 10 on the L2-normalised gradient, then
//!   deprocessed to mean 0.5 and standard deviation 0.15 (clipped to `[0, 1]`).
//! - [`Tier::Regularised`], Lucid's recipe scaled from 224 to 150 pixels: the image is a
//!   decorrelated Fourier parameterisation (each frequency scaled by `1 / frequency`, the
//!   colours mixed by Lucid's decorrelation matrix, a sigmoid), a random transform every step
//!   (pad 6 with grey, jitter 4, scale 0.95–1.05, rotate ±5°, jitter 2, as one bilinear
//!   resampling in tensor ops), Adam at 0.05, and an optional total-variation penalty.
//!
//! The objective is the channel's mean activation with a 2-pixel border left out (the guide's
//! choice; maps of 5 pixels or less keep their border), taken before the layer's `ReLU` so that
//! a filter silent on its start image still gets a gradient; what is reported is the mean after
//! the `ReLU`, as the layer outputs it. Every image's random start and every
//! transform comes from `seed` alone, and images do not interact, so a filter's result is the
//! same bit for bit whichever other filters share its batch.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::Module as _;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

use super::{Flow, Net, ReadError, Step, read_f32};

/// Which recipe optimises the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// The Keras guide's plain gradient ascent from a random image.
    Quick,
    /// Lucid's Fourier parameterisation, random transforms and Adam.
    Regularised,
}

impl Tier {
    /// The name used on the command line and in cache paths.
    pub fn name(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Regularised => "regularised",
        }
    }

    /// Optimisation steps of the recipe.
    pub fn default_steps(self) -> usize {
        match self {
            Self::Quick => 30,
            Self::Regularised => 256,
        }
    }
}

/// How to optimise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub tier: Tier,
    /// Seeds every random start and transform.
    pub seed: u64,
    /// Optimisation steps.
    pub steps: usize,
    /// Weight of the total-variation penalty (regularised tier only; 0: none).
    pub tv_weight: f32,
}

impl Settings {
    /// The recipe of `tier` with its own step count and no total-variation penalty.
    pub fn new(tier: Tier, seed: u64) -> Self {
        Self {
            tier,
            seed,
            steps: tier.default_steps(),
            tv_weight: 0.0,
        }
    }
}

/// One filter's optimised image.
#[derive(Debug, Clone, PartialEq)]
pub struct Maximized {
    /// The filter (output channel) of the layer.
    pub filter: usize,
    /// `[c, h, w]`, values in `[0, 1]` (the network's input scale).
    pub image: Vec<f32>,
    /// The filter's mean activation (after `ReLU`, border left out) on the random start image.
    pub seed_activation: f32,
    /// The same on the optimised image before the quick tier's deprocessing (what the gradient
    /// ascent reached).
    pub activation: f32,
    /// The same on `image`, the picture shown (the quick tier's deprocessing sets its contrast,
    /// which can take some of the activation back; the regularised tier shows what it reached).
    pub shown_activation: f32,
}

/// Why no images were made.
#[derive(Debug, thiserror::Error)]
pub enum MaximizeError {
    #[error("step {step} of the network is not a convolution; pick a conv layer")]
    NotConv { step: usize },
    #[error("filter {filter} does not exist: the layer has filters 0-{}", .filters.saturating_sub(1))]
    NoSuchFilter { filter: usize, filters: usize },
    #[error("cancelled after {done} of {steps} steps")]
    Cancelled { done: usize, steps: usize },
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Optimise one image per entry of `filters` for the conv at `step` of `net`, for inputs of
/// `shape` (`[c, h, w]`). `progress(done, steps)` is called after every step; `cancel` is
/// checked before every step.
pub fn maximize(
    net: &Net,
    step: usize,
    shape: [usize; 3],
    filters: &[usize],
    settings: &Settings,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Maximized>, MaximizeError> {
    let Some(&Step::Conv { index, .. }) = net.steps.get(step) else {
        return Err(MaximizeError::NotConv { step });
    };
    let channels = net.convs[index].weight.dims()[0];
    if let Some(&filter) = filters.iter().find(|&&f| f >= channels) {
        return Err(MaximizeError::NoSuchFilter {
            filter,
            filters: channels,
        });
    }
    if filters.is_empty() {
        return Ok(Vec::new());
    }
    let device = net.convs[index].weight.val().device().inner();
    // Parameters frozen: the convolutions' backward computes no weight gradient.
    let frozen = net.clone().train().no_grad();
    let target = Target {
        net: &frozen,
        step,
        filters,
    };
    let run = Run {
        target: &target,
        device: &device,
        shape,
        settings,
        cancel,
    };
    let [start, reached, images] = match settings.tier {
        Tier::Quick => run.quick(progress)?,
        Tier::Regularised => run.regularised(progress)?,
    };
    let score = |v: Vec<f32>| target.score(&tensor(v, &run.batch_shape(), &device));
    let seed_activation = score(start)?;
    let activation = score(reached)?;
    let shown_activation = score(images.clone())?;
    let len = shape.iter().product::<usize>();
    Ok(filters
        .iter()
        .enumerate()
        .map(|(i, &filter)| Maximized {
            filter,
            image: images[i * len..(i + 1) * len].to_vec(),
            seed_activation: seed_activation[i],
            activation: activation[i],
            shown_activation: shown_activation[i],
        })
        .collect())
}

/// A tensor of `shape` from `values` on `device`.
fn tensor<const D: usize>(values: Vec<f32>, shape: &[usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, *shape), device)
}

/// The objective: each image's filter, at one conv layer of a frozen network.
struct Target<'a> {
    net: &'a Net,
    step: usize,
    filters: &'a [usize],
}

impl Target<'_> {
    /// Each image's own filter before its `ReLU`, border left out: `[n, h', w']` for images
    /// `[n, c, h, w]` (autodiff or not).
    fn own_map(&self, x: Tensor<4>) -> Tensor<3> {
        let device = x.device();
        let x = match self.step {
            0 => x,
            s => forward_to(self.net, x, s - 1),
        };
        let Step::Conv {
            index,
            stride,
            padding,
            ..
        } = self.net.steps[self.step]
        else {
            unreachable!("maximize checks that the step is a convolution");
        };
        let p = &self.net.convs[index];
        let y = super::conv2d(
            x,
            p.weight.val(),
            p.bias.val(),
            stride,
            padding,
            false,
            self.net.fast_conv,
        );
        // [n, channels, h, w]
        let [n, c, h, w] = y.dims();
        let rows: Vec<i64> = self
            .filters
            .iter()
            .enumerate()
            .map(|(i, &f)| (i * c + f) as i64)
            .collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), &device);
        // [n, h, w]: image i's own filter
        let own = y.reshape([n * c, h * w]).select(0, rows).reshape([n, h, w]);
        let border = |side: usize| if side > 5 { 2 } else { 0 };
        let (bh, bw) = (border(h), border(w));
        own.slice([0..n, bh..h - bh, bw..w - bw])
    }

    /// What is maximised, `[n]`: the mean before the `ReLU`, so that a filter silent on its
    /// start image still gets a gradient (Lucid optimises pre-`ReLU` channels for this reason).
    fn objective(&self, x: Tensor<4>) -> Tensor<1> {
        let own = self.own_map(x);
        let n = own.dims()[0];
        own.reshape([n as i32, -1]).mean_dim(1).reshape([n])
    }

    /// Each image's mean activation (after the `ReLU`, as the layer outputs it), read back.
    fn score(&self, x: &Tensor<4>) -> Result<Vec<f32>, ReadError> {
        let own = relu(self.own_map(x.clone()));
        let n = own.dims()[0];
        read_f32(
            own.reshape([n as i32, -1]).mean_dim(1).reshape([n]),
            "filter activations",
        )
    }

    fn len(&self) -> usize {
        self.filters.len()
    }
}

/// Steps `0..=last` of `net` for inference, conv+pool pairs fused as [`Net::forward`] does.
fn forward_to(net: &Net, x: Tensor<4>, last: usize) -> Tensor<4> {
    let mut x = Flow::Map(x);
    let mut i = 0;
    while i <= last {
        if i < last
            && let Some(y) = net.conv_pool(i, &x)
        {
            x = Flow::Map(y);
            i += 2;
            continue;
        }
        x = net.step(i, x, false);
        i += 1;
    }
    x.into_map()
}

/// One optimisation: the batch, its settings and where to report.
struct Run<'a> {
    target: &'a Target<'a>,
    /// The plain (non-autodiff) device the state lives on.
    device: &'a Device,
    shape: [usize; 3],
    settings: &'a Settings,
    cancel: &'a AtomicBool,
}

/// Keras's `l2_normalize` floor on the squared norm: a zero gradient stays zero.
const L2_EPSILON: f32 = 1e-12;
/// The quick tier's step on the normalised gradient.
const QUICK_STEP: f32 = 10.0;
/// The quick tier's deprocessed standard deviation.
const QUICK_STD: f32 = 0.15;
/// Adam's learning rate and constants (Lucid: TensorFlow's defaults).
const ADAM: (f32, f32, f32, f32) = (0.05, 0.9, 0.999, 1e-8);

impl Run<'_> {
    fn batch_shape(&self) -> [usize; 4] {
        let [c, h, w] = self.shape;
        [self.target.len(), c, h, w]
    }

    /// Check the cancel flag before step `done`.
    fn go_on(&self, done: usize) -> Result<(), MaximizeError> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(MaximizeError::Cancelled {
                done,
                steps: self.settings.steps,
            });
        }
        Ok(())
    }

    /// The random generator of image `i` (its filter and the seed).
    fn image_rng(&self, i: usize) -> ChaCha8Rng {
        let filter = self.target.filters[i] as u64;
        ChaCha8Rng::seed_from_u64(mix(self.settings.seed, filter.wrapping_add(1)))
    }

    /// The Keras guide: gradient ascent on the L2-normalised gradient; returns the start
    /// images, the optimised ones and those deprocessed, each `[n, c, h, w]` flattened.
    fn quick(
        &self,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<[Vec<f32>; 3], MaximizeError> {
        let shape = self.batch_shape();
        let len: usize = self.shape.iter().product();
        let mut start = Vec::with_capacity(shape.iter().product());
        for i in 0..self.target.len() {
            let mut rng = self.image_rng(i);
            // The guide's (uniform - 0.5) * 0.25 around the middle of this network's [0, 1].
            start.extend((0..len).map(|_| 0.5 + (rng.random::<f32>() - 0.5) * 0.25));
        }
        let n = shape[0];
        let mut x = tensor(start.clone(), &shape, self.device);
        for done in 0..self.settings.steps {
            self.go_on(done)?;
            let leaf = x.clone().autodiff().require_grad();
            let grads = self.target.objective(leaf.clone()).sum().backward();
            let Some(g) = leaf.grad(&grads) else {
                break;
            };
            // [n, 1, 1, 1]: each image's own gradient norm
            let norm = g
                .clone()
                .powi_scalar(2)
                .reshape([n as i32, -1])
                .sum_dim(1)
                .clamp_min(L2_EPSILON)
                .sqrt()
                .reshape([n, 1, 1, 1]);
            x = x + g / norm * QUICK_STEP;
            progress(done + 1, self.settings.steps);
        }
        let reached = read_f32(x, "optimised images")?;
        let mut images = reached.clone();
        for image in images.chunks_mut(len) {
            deprocess(image);
        }
        Ok([start, reached, images])
    }

    /// Lucid: Fourier parameterisation, random transforms, Adam; returns the start images and
    /// the results (twice: nothing is deprocessed), each `[n, c, h, w]` flattened.
    fn regularised(
        &self,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<[Vec<f32>; 3], MaximizeError> {
        let [n, c, h, w] = self.batch_shape();
        let fourier = Fourier::new(c, h, w, self.device);
        let half = w / 2 + 1;
        let spectrum = [n, c, h, half];
        let per_image = c * h * half;
        let (mut re, mut im) = (Vec::new(), Vec::new());
        for i in 0..n {
            let mut rng = self.image_rng(i);
            re.extend((0..per_image).map(|_| normal(&mut rng) * 0.01));
            im.extend((0..per_image).map(|_| normal(&mut rng) * 0.01));
        }
        let mut params = [
            tensor(re, &spectrum, self.device),
            tensor(im, &spectrum, self.device),
        ];
        let start = read_f32(fourier.image(&params[0], &params[1]), "start images")?;
        let zeros = || Tensor::<4>::zeros(spectrum, self.device);
        let mut moments = [[zeros(), zeros()], [zeros(), zeros()]];
        let mut transforms = ChaCha8Rng::seed_from_u64(mix(self.settings.seed, 0));
        let (lr, b1, b2, eps) = ADAM;
        for done in 0..self.settings.steps {
            self.go_on(done)?;
            let leaves = params.clone().map(|p| p.autodiff().require_grad());
            let image = fourier.image(&leaves[0], &leaves[1]);
            let warp = Warp::draw(&mut transforms, h, w);
            let seen = warp.apply(image.clone(), n * c, self.device);
            let mut objective = self.target.objective(seen).sum();
            if self.settings.tv_weight > 0.0 {
                objective = objective - total_variation(image) * self.settings.tv_weight;
            }
            let grads = objective.backward();
            let t = (done + 1) as i32;
            let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
            for (k, leaf) in leaves.iter().enumerate() {
                let Some(g) = leaf.grad(&grads) else {
                    continue;
                };
                let [m, v] = &mut moments[k];
                *m = m.clone() * b1 + g.clone() * (1.0 - b1);
                *v = v.clone() * b2 + g.powi_scalar(2) * (1.0 - b2);
                // Ascent: the objective is maximised.
                let step = (m.clone() / c1) / ((v.clone() / c2).sqrt() + eps) * lr;
                params[k] = params[k].clone() + step;
            }
            progress(done + 1, self.settings.steps);
        }
        let images = read_f32(fourier.image(&params[0], &params[1]), "optimised images")?;
        Ok([start, images.clone(), images])
    }
}

/// The Keras guide's deprocessing: mean 0.5, standard deviation 0.15, clipped to `[0, 1]`.
fn deprocess(image: &mut [f32]) {
    let n = image.len().max(1) as f32;
    let mean = image.iter().sum::<f32>() / n;
    let var = image.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n;
    let scale = QUICK_STD / (var.sqrt() + 1e-5);
    for v in image.iter_mut() {
        *v = ((*v - mean) * scale + 0.5).clamp(0.0, 1.0);
    }
}

/// splitmix64 of `seed` and `part`: independent streams per image.
fn mix(seed: u64, part: u64) -> u64 {
    let mut z = seed ^ part.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f32 = rng.random::<f32>().max(f32::MIN_POSITIVE);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Lucid's `color_correlation_svd_sqrt`, its columns scaled by the largest column norm.
const COLOR_CORRELATION: [[f32; 3]; 3] =
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]];

/// Lucid's `fft_image` + `to_valid_rgb`: a real inverse DFT of a `1 / frequency`-scaled
/// spectrum, colours decorrelated, then a sigmoid.
struct Fourier {
    shape: [usize; 3],
    /// `[h, w/2 + 1]`, broadcast over images and channels.
    scale: Tensor<4>,
    /// `[2 (w/2 + 1), 2 w]`: `[re | im]` rows to `[a | b]` columns along the width.
    along_w: Tensor<2>,
    /// `[2 h, h]`: `[a | b]` rows to image rows along the height.
    along_h: Tensor<2>,
    /// `[c, c]`: the colour mixing, transposed (identity for one channel).
    colors: Tensor<2>,
}

impl Fourier {
    fn new(c: usize, h: usize, w: usize, device: &Device) -> Self {
        let half = w / 2 + 1;
        let freq = |k: usize, n: usize| {
            // numpy's fftfreq: 0, 1, ..., then the negative frequencies.
            let k = if k <= (n - 1) / 2 {
                k as f32
            } else {
                k as f32 - n as f32
            };
            k / n as f32
        };
        let floor = 1.0 / h.max(w) as f32;
        let norm = ((h * w) as f32).sqrt();
        let mut scale = Vec::with_capacity(h * half);
        for ky in 0..h {
            for kx in 0..half {
                let f = freq(ky, h).hypot(kx as f32 / w as f32);
                scale.push(norm / f.max(floor));
            }
        }
        // Columns kx > 0 stand for their mirror image too, except the Nyquist column.
        let weight = |kx: usize| {
            if kx == 0 || (w.is_multiple_of(2) && kx == w / 2) {
                1.0
            } else {
                2.0
            }
        };
        let (tau, area) = (std::f32::consts::TAU, (h * w) as f32);
        // [re | im] [2 half] -> [a | b] [2 w]: a = re cos - im sin, b = re sin + im cos.
        let mut along_w = vec![0.0; 2 * half * 2 * w];
        for kx in 0..half {
            for x in 0..w {
                let angle = tau * ((kx * x) % w) as f32 / w as f32;
                let (s, co) = angle.sin_cos();
                let k = weight(kx) / area;
                along_w[kx * 2 * w + x] = co * k;
                along_w[kx * 2 * w + w + x] = s * k;
                along_w[(half + kx) * 2 * w + x] = -s * k;
                along_w[(half + kx) * 2 * w + w + x] = co * k;
            }
        }
        // [a | b] [2 h] -> rows y: cos a - sin b; Lucid divides the image by 4.
        let mut along_h = vec![0.0; 2 * h * h];
        for ky in 0..h {
            for y in 0..h {
                let angle = tau * ((ky * y) % h) as f32 / h as f32;
                let (s, co) = angle.sin_cos();
                along_h[ky * h + y] = co / 4.0;
                along_h[(h + ky) * h + y] = -s / 4.0;
            }
        }
        let colors = if c == 3 {
            let max_norm = (0..3)
                .map(|j| {
                    (0..3)
                        .map(|i| COLOR_CORRELATION[i][j].powi(2))
                        .sum::<f32>()
                        .sqrt()
                })
                .fold(0.0f32, f32::max);
            // out[c'] = sum_c x[c] M[c'][c]: rows of the transposed matrix.
            let m: Vec<f32> = (0..9)
                .map(|k| COLOR_CORRELATION[k % 3][k / 3] / max_norm)
                .collect();
            tensor(m, &[3, 3], device)
        } else {
            Tensor::eye(c, device)
        };
        Self {
            shape: [c, h, w],
            scale: tensor(scale, &[1, 1, h, half], device),
            along_w: tensor(along_w, &[2 * half, 2 * w], device),
            along_h: tensor(along_h, &[2 * h, h], device),
            colors,
        }
    }

    /// Images `[n, c, h, w]` in `(0, 1)` from spectra `re`, `im` (`[n, c, h, w/2 + 1]`).
    fn image(&self, re: &Tensor<4>, im: &Tensor<4>) -> Tensor<4> {
        let [c, h, w] = self.shape;
        let [n, _, _, half] = re.dims();
        let spec = Tensor::cat(
            vec![
                re.clone() * self.scale.clone(),
                im.clone() * self.scale.clone(),
            ],
            3,
        );
        // [n c h, 2 w] -> [n c, h, 2, w] -> [n c, w, 2, h] -> [n c w, 2 h]
        let ab = spec
            .reshape([n * c * h, 2 * half])
            .matmul(self.along_w.clone())
            .reshape([n * c, h, 2, w])
            .permute([0, 3, 2, 1])
            .reshape([n * c * w, 2 * h]);
        // [n c w, h] -> [n, c, w, h] -> [n, c, h, w]
        let spatial = ab
            .matmul(self.along_h.clone())
            .reshape([n, c, w, h])
            .swap_dims(2, 3);
        // Colours: [n, h, w, c] x [c, c]
        let mixed = spatial
            .permute([0, 2, 3, 1])
            .reshape([n * h * w, c])
            .matmul(self.colors.clone())
            .reshape([n, h, w, c])
            .permute([0, 3, 1, 2]);
        sigmoid(mixed)
    }
}

/// Lucid's total variation, as a mean: the absolute differences of neighbouring pixels.
fn total_variation(image: Tensor<4>) -> Tensor<1> {
    let [n, c, h, w] = image.dims();
    let dy = image.clone().slice([0..n, 0..c, 1..h, 0..w])
        - image.clone().slice([0..n, 0..c, 0..h - 1, 0..w]);
    let dx =
        image.clone().slice([0..n, 0..c, 0..h, 1..w]) - image.slice([0..n, 0..c, 0..h, 0..w - 1]);
    dy.abs().mean() + dx.abs().mean()
}

/// One step's random transform (Lucid's `standard_transforms` at 150 pixels) as a bilinear
/// resampling: for each output pixel, four source pixels and their weights, and the weight of
/// the grey border.
struct Warp {
    out: [usize; 2],
    /// Four flat source indices per output pixel (0 where the weight is 0).
    corners: [Vec<i64>; 4],
    weights: [Vec<f32>; 4],
    /// The weight of the grey padding.
    grey: Vec<f32>,
}

/// Grey padding, jitter before and after scaling and rotating, as in Lucid halved.
const PAD: usize = 6;
const JITTER: usize = 4;
const JITTER_AFTER: usize = 2;

impl Warp {
    /// Draw a transform for `h` × `w` images.
    fn draw(rng: &mut ChaCha8Rng, h: usize, w: usize) -> Self {
        let (oy, ox) = (rng.random_range(0..=JITTER), rng.random_range(0..=JITTER));
        // Lucid: scales 1 + (i - 5) / 50 for i in 0..=10, halved.
        let scale = 1.0 + (rng.random_range(0..=10i32) - 5) as f32 / 100.0;
        // Lucid: angles -10..=10 and five more zeros, halved.
        let angles = rng.random_range(0..16i32);
        let degrees = if angles < 11 { angles - 5 } else { 0 };
        let (jy, jx) = (
            rng.random_range(0..=JITTER_AFTER),
            rng.random_range(0..=JITTER_AFTER),
        );
        let (ch, cw) = (h + 2 * PAD - JITTER, w + 2 * PAD - JITTER);
        let (sh, sw) = (
            ((ch as f32 * scale).round() as usize).max(1),
            ((cw as f32 * scale).round() as usize).max(1),
        );
        let out = [
            sh.saturating_sub(JITTER_AFTER).max(1),
            sw.saturating_sub(JITTER_AFTER).max(1),
        ];
        let (sin, cos) = (degrees as f32).to_radians().sin_cos();
        let (my, mx) = ((sh as f32 - 1.0) / 2.0, (sw as f32 - 1.0) / 2.0);
        let (ry, rx) = (sh as f32 / ch as f32, sw as f32 / cw as f32);
        let pixels = out[0] * out[1];
        let mut warp = Self {
            out,
            corners: std::array::from_fn(|_| Vec::with_capacity(pixels)),
            weights: std::array::from_fn(|_| Vec::with_capacity(pixels)),
            grey: Vec::with_capacity(pixels),
        };
        for u in 0..out[0] {
            for v in 0..out[1] {
                // Undo the last jitter, then the rotation about the centre.
                let (dy, dx) = ((u + jy) as f32 - my, (v + jx) as f32 - mx);
                let (r, c) = (cos * dy - sin * dx + my, sin * dy + cos * dx + mx);
                // Undo the scaling, the first jitter and the padding.
                let y = (r + 0.5) / ry - 0.5 + oy as f32 - PAD as f32;
                let x = (c + 0.5) / rx - 0.5 + ox as f32 - PAD as f32;
                warp.push(y, x, h, w);
            }
        }
        warp
    }

    /// Add one output pixel sampling the image bilinearly at `(y, x)`.
    fn push(&mut self, y: f32, x: f32, h: usize, w: usize) {
        let (y0, x0) = (y.floor(), x.floor());
        let (fy, fx) = (y - y0, x - x0);
        let mut grey = 0.0;
        let taps = [
            (y0, x0, (1.0 - fy) * (1.0 - fx)),
            (y0, x0 + 1.0, (1.0 - fy) * fx),
            (y0 + 1.0, x0, fy * (1.0 - fx)),
            (y0 + 1.0, x0 + 1.0, fy * fx),
        ];
        for (k, (ty, tx, wt)) in taps.into_iter().enumerate() {
            let inside = ty >= 0.0 && tx >= 0.0 && ty < h as f32 && tx < w as f32;
            if inside {
                self.corners[k].push(ty as i64 * w as i64 + tx as i64);
                self.weights[k].push(wt);
            } else {
                self.corners[k].push(0);
                self.weights[k].push(0.0);
                grey += wt;
            }
        }
        self.grey.push(grey);
    }

    /// Resample `image` (`[n, c, h, w]`, `rows` = `n c`) into `[n, c, out_h, out_w]`.
    fn apply(&self, image: Tensor<4>, rows: usize, device: &Device) -> Tensor<4> {
        let [n, c, h, w] = image.dims();
        let pixels = self.out[0] * self.out[1];
        let flat = image.reshape([rows, h * w]);
        let mut out = tensor(self.grey.clone(), &[1, pixels], device) * 0.5;
        for k in 0..4 {
            let idx = Tensor::<1, Int>::from_data(
                TensorData::new(self.corners[k].clone(), [pixels]),
                device,
            );
            let wt = tensor(self.weights[k].clone(), &[1, pixels], device);
            out = out + flat.clone().select(1, idx) * wt;
        }
        out.reshape([n, c, self.out[0], self.out[1]])
    }
}

#[cfg(test)]
mod tests;
