//! The network: a burn `Module` built from the configured layer list.

pub mod explain;
pub mod health;
pub mod maximize;
pub mod ops;
pub mod summary;

use burn::module::{Module, Param};
use burn::tensor::activation::{relu, sigmoid, softmax};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use crate::config::{
    Activation, Config, ConfigError, ConvImpl, LayerSpec, Padding, Units, output_units,
};

/// A convolution's parameters (Keras: glorot-uniform kernel, zero bias).
#[derive(Module, Debug)]
pub struct ConvParams {
    /// `[out, in, kh, kw]`
    pub weight: Param<Tensor<4>>,
    /// `[out]`
    pub bias: Param<Tensor<1>>,
}

/// A dense layer's parameters (Keras: glorot-uniform kernel, zero bias).
#[derive(Module, Debug)]
pub struct DenseParams {
    /// `[in, out]`
    pub weight: Param<Tensor<2>>,
    /// `[out]`
    pub bias: Param<Tensor<1>>,
}

/// One step of the forward pass; indices point into the parameter lists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    Conv {
        index: usize,
        stride: usize,
        /// `[(top, bottom), (left, right)]`
        padding: [(usize, usize); 2],
        relu: bool,
    },
    Pool {
        size: usize,
    },
    Dropout {
        rate: f32,
    },
    Flatten,
    Dense {
        index: usize,
        relu: bool,
    },
}

/// The configured CNN.
#[derive(Module, Debug)]
pub struct Net {
    pub convs: Vec<ConvParams>,
    pub denses: Vec<DenseParams>,
    #[module(skip)]
    pub steps: Vec<Step>,
    #[module(skip)]
    pub fast_conv: bool,
}

/// What a forward pass returns: the logits, and every conv/pool layer's output when asked.
pub struct Forward {
    /// `[batch, outputs]`
    pub logits: Tensor<2>,
    /// `(layer index in the config, [batch, c, h, w])` for every conv and pool layer.
    pub activations: Vec<(usize, Tensor<4>)>,
}

/// Glorot-uniform weights drawn from `rng`: on the host, so that a seed gives the same network
/// on every device and whatever else draws from the device's own generator meanwhile (another
/// thread, another test). The values are the ones flex's seeded `Tensor::random` gave (the
/// same generator, `StdRng::seed_from_u64`, drawn from in the same order).
fn glorot(
    shape: &[usize],
    fan_in: usize,
    fan_out: usize,
    rng: &mut rand_burn::rngs::StdRng,
    device: &Device,
) -> Tensor<1> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
    let data = TensorData::random::<f32, _, _>(
        [shape.iter().product::<usize>()],
        Distribution::Uniform(-limit, limit),
        rng,
    );
    Tensor::<1>::from_data(data, device)
}

/// Keras "same" padding for one axis: the total split with the extra pixel at the end.
fn same_padding(n: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = n.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(n);
    (total / 2, total - total / 2)
}

impl Net {
    /// A network with no layers: a placeholder while the optimizer holds the real one.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            convs: Vec::new(),
            denses: Vec::new(),
            steps: Vec::new(),
            fast_conv: false,
        }
    }

    /// Build the network for `classes` classes on `device`, initialised from `seed`.
    pub fn new(
        cfg: &Config,
        classes: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        let shapes = cfg.layer_shapes(classes)?;
        let mut rng = <rand_burn::rngs::StdRng as rand_burn::SeedableRng>::seed_from_u64(seed);
        let mut prev = cfg.input_shape().to_vec();
        let (mut convs, mut denses, mut steps) = (Vec::new(), Vec::new(), Vec::new());
        for (layer, shape) in cfg.model.layers.iter().zip(shapes) {
            let step = match *layer {
                LayerSpec::Conv {
                    filters,
                    kernel,
                    padding,
                    activation,
                    stride,
                } => {
                    let c_in = prev[0];
                    let w = glorot(
                        &[filters, c_in, kernel, kernel],
                        c_in * kernel * kernel,
                        filters * kernel * kernel,
                        &mut rng,
                        device,
                    )
                    .reshape([filters, c_in, kernel, kernel]);
                    convs.push(ConvParams {
                        weight: Param::from_tensor(w),
                        bias: Param::from_tensor(Tensor::zeros([filters], device)),
                    });
                    let padding = match padding {
                        Padding::Valid => [(0, 0); 2],
                        Padding::Same => [
                            same_padding(prev[1], kernel, stride),
                            same_padding(prev[2], kernel, stride),
                        ],
                    };
                    Step::Conv {
                        index: convs.len() - 1,
                        stride,
                        padding,
                        relu: activation == Activation::Relu,
                    }
                }
                LayerSpec::Maxpool { size } => Step::Pool { size },
                LayerSpec::Dropout { rate } => Step::Dropout { rate },
                LayerSpec::Flatten => Step::Flatten,
                LayerSpec::Dense { units, activation } => {
                    let n_in = prev[0];
                    let n_out = match units {
                        Units::Fixed(n) => n,
                        Units::Classes(_) => output_units(classes),
                    };
                    let w = glorot(&[n_in, n_out], n_in, n_out, &mut rng, device)
                        .reshape([n_in, n_out]);
                    denses.push(DenseParams {
                        weight: Param::from_tensor(w),
                        bias: Param::from_tensor(Tensor::zeros([n_out], device)),
                    });
                    Step::Dense {
                        index: denses.len() - 1,
                        relu: activation == Activation::Relu,
                    }
                }
            };
            steps.push(step);
            prev = shape;
        }
        Ok(Self {
            convs,
            denses,
            steps,
            fast_conv: cfg.model.conv_impl == ConvImpl::Fast,
        })
    }

    /// Run the network on `[batch, c, h, w]`; dropout is active only when `train` is set.
    /// With `keep_activations`, every conv and pool output is returned too.
    pub fn forward(&self, input: Tensor<4>, train: bool, keep_activations: bool) -> Forward {
        let mut x = Flow::Map(input);
        let mut activations = Vec::new();
        let mut i = 0;
        while i < self.steps.len() {
            // Nobody looks at a convolution's own output: pool it as it is made.
            if !keep_activations && let Some(y) = self.conv_pool(i, &x) {
                x = Flow::Map(y);
                i += 2;
                continue;
            }
            x = self.step(i, x, train);
            if keep_activations
                && matches!(self.steps[i], Step::Conv { .. } | Step::Pool { .. })
                && let Flow::Map(y) = &x
            {
                activations.push((i, y.clone()));
            }
            i += 1;
        }
        Forward {
            logits: x.into_flat(),
            activations,
        }
    }

    /// Steps `i` (a convolution with `ReLU` and even padding) and `i + 1` (max pooling) as one
    /// fast op on the CPU, where that pair is what comes next.
    fn conv_pool(&self, i: usize, x: &Flow) -> Option<Tensor<4>> {
        let (
            Some(&Step::Conv {
                index,
                stride,
                padding,
                relu: true,
            }),
            Some(&Step::Pool { size }),
            Flow::Map(x),
        ) = (self.steps.get(i), self.steps.get(i + 1), x)
        else {
            return None;
        };
        let pad = symmetric(padding).filter(|_| self.fast_conv)?;
        let p = &self.convs[index];
        Some(ops::conv2d_relu_pool(
            x.clone(),
            p.weight.val(),
            Some(p.bias.val()),
            [stride, stride],
            pad,
            size,
            true,
        ))
    }

    /// Run step `i` of the forward pass on `x` (the previous step's output).
    ///
    /// # Panics
    /// If `x` has the wrong rank for the step, which the config's checks rule out.
    #[must_use]
    pub fn step(&self, i: usize, x: Flow, train: bool) -> Flow {
        match self.steps[i] {
            Step::Conv {
                index,
                stride,
                padding,
                relu: with_relu,
            } => {
                let p = &self.convs[index];
                Flow::Map(conv2d(
                    x.into_map(),
                    p.weight.val(),
                    p.bias.val(),
                    stride,
                    padding,
                    with_relu,
                    self.fast_conv,
                ))
            }
            Step::Pool { size } => Flow::Map(max_pool2d(x.into_map(), size, self.fast_conv)),
            Step::Dropout { rate } if train && rate > 0.0 => match x {
                Flow::Map(m) => Flow::Map(ops::dropout(m, rate, self.fast_conv)),
                Flow::Flat(f) => Flow::Flat(ops::dropout(f, rate, self.fast_conv)),
            },
            Step::Dropout { .. } => x,
            // [batch, c*h*w]
            Step::Flatten => Flow::Flat(x.into_map().flatten(1, 3)),
            Step::Dense {
                index,
                relu: with_relu,
            } => {
                let p = &self.denses[index];
                let y = ops::linear(x.into_flat(), p.weight.val(), p.bias.val(), self.fast_conv);
                Flow::Flat(if with_relu { relu(y) } else { y })
            }
        }
    }
}

/// What flows between forward steps: feature maps before `Flatten`, vectors after.
#[derive(Debug, Clone)]
pub enum Flow {
    /// `[batch, c, h, w]`
    Map(Tensor<4>),
    /// `[batch, features]`
    Flat(Tensor<2>),
}

impl Flow {
    /// Cut from the autodiff graph.
    #[must_use]
    pub fn detach(self) -> Self {
        match self {
            Self::Map(m) => Self::Map(m.detach()),
            Self::Flat(f) => Self::Flat(f.detach()),
        }
    }

    /// Track gradients with respect to this tensor.
    #[must_use]
    pub fn require_grad(self) -> Self {
        match self {
            Self::Map(m) => Self::Map(m.require_grad()),
            Self::Flat(f) => Self::Flat(f.require_grad()),
        }
    }

    /// The sum of all elements.
    #[must_use]
    pub fn sum(self) -> Tensor<1> {
        match self {
            Self::Map(m) => m.sum(),
            Self::Flat(f) => f.sum(),
        }
    }

    /// The feature maps.
    ///
    /// # Panics
    /// If this is a flat vector (a layer order the config's checks refuse).
    #[must_use]
    pub fn into_map(self) -> Tensor<4> {
        match self {
            Self::Map(m) => m,
            Self::Flat(_) => panic!("a 4-D layer after Flatten (checked by the config)"),
        }
    }

    /// The flat vectors.
    ///
    /// # Panics
    /// If these are still feature maps (a layer order the config's checks refuse).
    #[must_use]
    pub fn into_flat(self) -> Tensor<2> {
        match self {
            Self::Flat(f) => f,
            Self::Map(_) => panic!("a dense layer before Flatten (checked by the config)"),
        }
    }
}

/// `[height, width]` padding when both sides of each are equal.
fn symmetric(padding: [(usize, usize); 2]) -> Option<[usize; 2]> {
    (padding[0].0 == padding[0].1 && padding[1].0 == padding[1].1)
        .then_some([padding[0].0, padding[1].0])
}

/// Convolution (+ ReLU): convscope's fast CPU kernels where available, else burn's.
fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    stride: usize,
    padding: [(usize, usize); 2],
    with_relu: bool,
    fast: bool,
) -> Tensor<4> {
    if let Some(pad) = symmetric(padding) {
        return if with_relu {
            ops::conv2d_relu(x, weight, Some(bias), [stride, stride], pad, fast)
        } else {
            ops::conv2d(x, weight, Some(bias), [stride, stride], pad, fast)
        };
    }
    // Keras "same" with an even kernel pads one side more: burn's reference op handles it.
    let options = ConvOptions::new_with_padding([stride, stride], padding, [1, 1], 1);
    let y = burn::tensor::module::conv2d(x, weight, Some(bias), options);
    if with_relu { relu(y) } else { y }
}

/// Max pooling with window = stride = `size`, no padding.
fn max_pool2d(x: Tensor<4>, size: usize, fast: bool) -> Tensor<4> {
    ops::max_pool2d(x, size, fast)
}

/// Mean loss over a batch: binary cross-entropy on one logit, else softmax cross-entropy.
pub fn loss(logits: Tensor<2>, labels: &[usize], device: &Device) -> Tensor<1> {
    let [n, outputs] = logits.dims();
    if outputs == 1 {
        let y = Tensor::<1>::from_data(
            TensorData::new(labels.iter().map(|&l| l as f32).collect::<Vec<_>>(), [n]),
            device,
        )
        .reshape([n, 1]);
        // max(z, 0) - z*y + log(1 + exp(-|z|)), numerically stable.
        let z = logits;
        let l = relu(z.clone()) - z.clone() * y + (z.abs().neg().exp() + 1.0).log();
        l.mean()
    } else {
        let idx = Tensor::<1, Int>::from_data(
            TensorData::new(labels.iter().map(|&l| l as i64).collect::<Vec<_>>(), [n]),
            device,
        )
        .reshape([n, 1]);
        let logp = burn::tensor::activation::log_softmax(logits, 1);
        logp.gather(1, idx).neg().mean()
    }
}

/// A tensor's values could not be read back to the host as `f32`.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the {what} back from the device: {source}")]
pub struct ReadError {
    /// What was read, e.g. `"logits"`.
    pub what: &'static str,
    #[source]
    pub source: burn::tensor::TensorReadError,
}

/// The values of `t` as `f32` (converted when it holds another float type); `what` names them
/// in the error.
pub fn read_f32<const D: usize>(t: Tensor<D>, what: &'static str) -> Result<Vec<f32>, ReadError> {
    t.try_into_vec_as::<f32>()
        .map_err(|source| ReadError { what, source })
}

/// Class probabilities `[batch, classes]` from logits (sigmoid for one logit).
pub fn probabilities(logits: Tensor<2>) -> Tensor<2> {
    let [_, outputs] = logits.dims();
    if outputs == 1 {
        let p = sigmoid(logits);
        Tensor::cat(vec![p.clone().neg() + 1.0, p], 1)
    } else {
        softmax(logits, 1)
    }
}

/// Predicted class per row: logit > 0 for one logit, else argmax.
#[must_use]
pub fn predictions(logits: &[f32], outputs: usize) -> Vec<usize> {
    if outputs == 1 {
        logits.iter().map(|&z| usize::from(z > 0.0)).collect()
    } else {
        logits.chunks(outputs).map(|row| argmax(row).0).collect()
    }
}

/// Index and value of the largest element (the first on ties; `(0, -inf)` when empty).
#[must_use]
pub fn argmax(values: &[f32]) -> (usize, f32) {
    values
        .iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, v)| {
            if v > best.1 { (i, v) } else { best }
        })
}

/// How many rows of `logits` predict their label.
#[must_use]
pub fn count_correct(logits: &[f32], outputs: usize, labels: &[usize]) -> usize {
    predictions(logits, outputs)
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_cfg() -> Config {
        let mut c = Config::default();
        c.data.image_size = [16, 16];
        c
    }

    #[test]
    fn param_count_matches_summary() {
        let device = Device::flex();
        let c = small_cfg();
        let net = Net::new(&c, 3, 1, &device).expect("valid");
        let rows = summary::summarize(&c, 3).expect("valid");
        assert_eq!(net.num_params(), summary::total_params(&rows));
    }

    #[test]
    fn forward_shapes_and_activations() {
        let device = Device::flex();
        let net = Net::new(&small_cfg(), 2, 1, &device).expect("valid");
        let x = Tensor::<4>::random([2, 3, 16, 16], Distribution::Default, &device);
        let out = net.forward(x, false, true);
        assert_eq!(out.logits.dims(), [2, 1]);
        let shapes: Vec<[usize; 4]> = out.activations.iter().map(|(_, t)| t.dims()).collect();
        assert_eq!(
            shapes,
            [
                [2, 16, 16, 16],
                [2, 16, 8, 8],
                [2, 32, 8, 8],
                [2, 32, 4, 4],
                [2, 64, 4, 4],
                [2, 64, 2, 2]
            ]
        );
    }

    #[test]
    fn training_forward_pools_inside_the_convolution_with_the_same_result() {
        let device = Device::flex().autodiff();
        let net = Net::new(&small_cfg(), 2, 1, &device).expect("valid");
        assert!(
            net.conv_pool(0, &Flow::Map(Tensor::zeros([1, 3, 16, 16], &device)))
                .is_some()
        );
        let x = Tensor::<4>::random([3, 3, 16, 16], Distribution::Default, &device);
        // Without activations the conv+pool pairs run fused; with them, step by step.
        let fused = net.forward(x.clone(), false, false).logits;
        let stepwise = net.forward(x, false, true).logits;
        let diff: f32 = (fused.clone() - stepwise.clone()).abs().max().into_scalar();
        assert!(diff < 1e-5, "logits differ by {diff}");
        let (gf, gs) = (fused.sum().backward(), stepwise.sum().backward());
        for conv in &net.convs {
            let (a, b) = (conv.weight.grad(&gf), conv.weight.grad(&gs));
            let diff: f32 = (a.expect("grad") - b.expect("grad"))
                .abs()
                .max()
                .into_scalar();
            assert!(diff < 1e-4, "conv gradients differ by {diff}");
        }
    }

    #[test]
    fn same_seed_same_weights() {
        let device = Device::flex();
        let a = Net::new(&small_cfg(), 2, 7, &device).expect("valid");
        let b = Net::new(&small_cfg(), 2, 7, &device).expect("valid");
        let c = Net::new(&small_cfg(), 2, 8, &device).expect("valid");
        let w = |n: &Net| {
            n.convs[0]
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32")
        };
        assert_eq!(w(&a), w(&b));
        assert_ne!(w(&a), w(&c));
        // Glorot limit for 3x3x3 -> 16: sqrt(6 / (27 + 144)).
        let limit = (6.0f32 / 171.0).sqrt();
        assert!(w(&a).iter().all(|v| v.abs() <= limit));
    }

    #[test]
    fn bce_matches_formula() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data(TensorData::new(vec![2.0f32, -1.0], [2, 1]), &device);
        let l: f32 = loss(logits, &[1, 1], &device).into_scalar();
        let expected = f32::midpoint(
            (1.0f32 + (-2.0f32).exp()).ln(),
            (1.0f32 + 1.0f32.exp()).ln(),
        );
        assert!((l - expected).abs() < 1e-6, "{l} vs {expected}");
    }

    #[test]
    fn cross_entropy_matches_formula() {
        let device = Device::flex();
        let logits =
            Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0], [1, 3]), &device);
        let l: f32 = loss(logits, &[2], &device).into_scalar();
        let expected = -(3.0f32.exp() / (1.0f32.exp() + 2.0f32.exp() + 3.0f32.exp())).ln();
        assert!((l - expected).abs() < 1e-6);
    }

    #[test]
    fn predictions_threshold_and_argmax() {
        assert_eq!(predictions(&[0.5, -0.1, 0.0], 1), [1, 0, 0]);
        assert_eq!(predictions(&[0.1, 0.9, 0.0, 3.0, 1.0, 2.0], 3), [1, 0]);
    }

    #[test]
    fn keras_same_padding() {
        assert_eq!(same_padding(150, 3, 1), (1, 1));
        assert_eq!(same_padding(150, 4, 1), (1, 2));
        assert_eq!(same_padding(7, 3, 2), (1, 1));
        assert_eq!(same_padding(8, 3, 2), (0, 1));
    }
}
