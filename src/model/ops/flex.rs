//! The backend extension that plugs the kernels into burn's `Flex` backend and its autodiff.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::{DType, TensorData};

use super::adam_kernels;
use super::conv::{self, ConvGeom, Needs, Upstream};
use super::dense;
use super::dropout;
use super::pool::{self, PoolGeom};
use super::profile::timed;
use super::recycle;

/// Stride, padding and fused activation of a convolution call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvSpec {
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Zero padding on both sides, `[height, width]`.
    pub padding: [usize; 2],
    /// Apply `ReLU` to the biased output.
    pub relu: bool,
    /// Then max-pool with this window and stride (1: no pooling).
    pub pool: usize,
}

/// Convolution and pooling kernels for the flex CPU backend.
#[backend_extension(Flex, Autodiff)]
pub trait FastOps: Backend {
    /// Convolve NCHW `x` with OIHW `weight`, add `bias` (`[out_ch]`), optionally `ReLU` and
    /// max-pool.
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self>;

    /// A dense layer: `x [m, k] · weight [k, n] + bias [n]`.
    fn fast_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// Max-pool NCHW `x` with kernel = stride = `size`, floor mode.
    fn fast_max_pool2d(x: FloatTensor<Self>, size: usize) -> FloatTensor<Self>;

    /// Dropout of any rank: keep each element with probability `keep` (scaled by `1 / keep`),
    /// the mask drawn from `seed`.
    fn fast_dropout(x: FloatTensor<Self>, keep: f32, seed: u64) -> FloatTensor<Self>;

    /// Adam's whole step in one pass: both moments' updates (`[beta_1, beta_2]`) and the
    /// parameter's from them (`[combined factor, epsilon term, lr]`), giving the new
    /// `(parameter, first moment, second moment)`. Optimizer only, no gradient.
    fn fast_adam_step(
        p: FloatTensor<Self>,
        g: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        betas: [f32; 2],
        factors: [f32; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// The contiguous `f32` values of a flex tensor, with its 4-D shape.
fn dims4(t: &FlexTensor) -> [usize; 4] {
    let shape = t.layout().shape();
    assert_eq!(shape.num_dims(), 4, "expected a 4-D tensor, got {shape:?}");
    [shape[0], shape[1], shape[2], shape[3]]
}

/// Make `t` contiguous (a no-op for the usual fresh tensor).
fn contiguous(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

/// Borrow the `f32` values of a contiguous tensor.
fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("fast ops need contiguous f32 tensors; the caller checks the dtype")
}

fn tensor(data: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

fn tensor1(data: Vec<f32>) -> FlexTensor {
    let len = data.len();
    FlexTensor::from_data(TensorData::new(data, [len]))
}

fn conv_geom(x: &FlexTensor, w: &FlexTensor, spec: ConvSpec) -> ConvGeom {
    ConvGeom::new(dims4(x), dims4(w), spec.stride, spec.padding)
}

/// What the backward pass of a convolution needs from its forward pass besides the inputs.
#[derive(Clone, Debug)]
enum Saved {
    /// Nothing: no fused activation or pooling.
    None,
    /// The (post-`ReLU`) output, for the `ReLU`'s backward.
    Out(FlexTensor),
    /// Per pooled value, the window slot its gradient goes back to ([`conv::forward_pooled_into`]).
    Codes(std::sync::Arc<Vec<u16>>),
}

/// Run the forward pass; returns the op's output and what its backward pass needs.
fn conv_forward(
    x: &FlexTensor,
    w: &FlexTensor,
    bias: &FlexTensor,
    spec: ConvSpec,
) -> (FlexTensor, Saved) {
    let (x, w, bias) = (contiguous(x), contiguous(w), contiguous(bias));
    let g = conv_geom(&x, &w, spec);
    let bias = values(&bias);
    assert_eq!(bias.len(), g.out_ch, "conv2d: bias length");
    assert!(spec.pool > 0, "conv2d: pool window must be non-zero");
    let (x, w) = (values(&x), values(&w));
    let name = || {
        let pool = if spec.pool > 1 { "+pool" } else { "" };
        format!("conv{pool} {}->{} forward", g.in_ch, g.out_ch)
    };
    if spec.pool == 1 {
        let y = recycle::output(g.out_shape(), |y| {
            timed(name, || {
                conv::forward_into(&g, x, w, Some(bias), spec.relu, y);
            });
        });
        let saved = if spec.relu {
            Saved::Out(y.clone())
        } else {
            Saved::None
        };
        return (y, saved);
    }
    let pooled_shape = [g.batch, g.out_ch, g.out_h / spec.pool, g.out_w / spec.pool];
    let mut codes = vec![0u16; pooled_shape.iter().product()];
    let pooled = recycle::output(pooled_shape, |pooled| {
        timed(name, || {
            conv::forward_pooled_into(
                &g,
                x,
                w,
                Some(bias),
                spec.relu,
                spec.pool,
                pooled,
                &mut codes,
            );
        });
    });
    (pooled, Saved::Codes(std::sync::Arc::new(codes)))
}

impl FastOps for Flex {
    fn fast_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        linear_forward(&x, &weight, &bias)
    }

    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self> {
        conv_forward(&x, &weight, &bias, spec).0
    }

    fn fast_max_pool2d(x: FloatTensor<Self>, size: usize) -> FloatTensor<Self> {
        pool_forward(&x, size)
    }

    fn fast_dropout(x: FloatTensor<Self>, keep: f32, seed: u64) -> FloatTensor<Self> {
        dropout_apply(&x, keep, seed, "forward")
    }

    fn fast_adam_step(
        mut p: FloatTensor<Self>,
        g: FloatTensor<Self>,
        mut m: FloatTensor<Self>,
        mut v: FloatTensor<Self>,
        betas: [f32; 2],
        factors: [f32; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // In place when the optimizer holds the only handles on the parameter and its moments
        // (the pool's aside): no new buffers, so the peak memory is that of the weights and
        // moments alone, and four streams over memory instead of seven.
        let g = contiguous(&g);
        let plain = |t: &FlexTensor| {
            t.dtype() == DType::F32
                && t.layout().is_contiguous()
                && t.layout().start_offset() == 0
                && t.layout().shape() == g.layout().shape()
        };
        if plain(&p) && plain(&m) && plain(&v) && recycle::take_if_sole(&[&p, &m, &v]) {
            let g = values(&g);
            let pmv = [&mut p, &mut m, &mut v].map(|t| {
                t.try_storage_mut::<f32>()
                    .expect("a unique contiguous f32 tensor")
            });
            timed(
                || "adam step".to_string(),
                || adam_kernels::step_in_place(g, betas, factors, pmv),
            );
            return (p, m, v);
        }
        let [p, m, v] = elementwise_n([&p, &g, &m, &v], "adam step", |[p, g, m, v], outs| {
            adam_kernels::step(p, g, m, v, betas, factors, outs);
        });
        (p, m, v)
    }
}

/// A new tensor shaped like `inputs[0]`, filled by `f` from the inputs' values (all the same
/// length, any rank), timed under `name`.
fn elementwise<const N: usize>(
    inputs: [&FlexTensor; N],
    name: &str,
    f: impl FnOnce([&[f32]; N], &mut [f32]),
) -> FlexTensor {
    let [out] = elementwise_n(inputs, name, |inputs, [out]| f(inputs, out));
    out
}

/// [`elementwise`] with `M` outputs, filled by `f` together.
fn elementwise_n<const N: usize, const M: usize>(
    inputs: [&FlexTensor; N],
    name: &str,
    f: impl FnOnce([&[f32]; N], [&mut [f32]; M]),
) -> [FlexTensor; M] {
    let inputs = inputs.map(contiguous);
    let shape = inputs[0].layout().shape().clone();
    let run = |outs: [&mut [f32]; M]| {
        timed(
            || name.to_string(),
            || f(std::array::from_fn(|i| values(&inputs[i])), outs),
        );
    };
    // A big output (dropout's maps, Adam's when it cannot write in place) goes into a buffer
    // kept between steps instead of pages faulted in afresh; `f` writes every element.
    if shape.num_elements() >= RECYCLED_ELEMENTS {
        return recycle::outputs_shaped(&shape, run);
    }
    let n = values(&inputs[0]).len();
    let mut outs: [Vec<f32>; M] = std::array::from_fn(|_| vec![0.0; n]);
    run(outs.each_mut().map(Vec::as_mut_slice));
    outs.map(|out| FlexTensor::from_data(TensorData::new(out, shape.clone())))
}

/// Outputs of [`elementwise`] from this many elements (4 MiB) on come from [`recycle`].
const RECYCLED_ELEMENTS: usize = 1 << 20;

/// [`dropout::apply`] on a flex tensor of any rank.
fn dropout_apply(x: &FlexTensor, keep: f32, seed: u64, pass: &str) -> FlexTensor {
    elementwise([x], &format!("dropout {pass}"), |[x], y| {
        dropout::apply(x, y, keep, seed);
    })
}

fn pool_forward(x: &FlexTensor, size: usize) -> FlexTensor {
    let x = contiguous(x);
    let shape = dims4(&x);
    let g = PoolGeom::new(shape, size);
    let y = timed(
        || format!("pool {}x{} forward", g.in_h, g.in_w),
        || pool::forward(&g, values(&x)),
    );
    tensor(y, [shape[0], shape[1], g.out_h(), g.out_w()])
}

/// Backward step of [`FastOps::fast_conv2d`] on flex.
#[derive(Debug)]
struct ConvBackward;

/// Forward inputs, and what a fused `ReLU` or pooling needs, kept for the backward pass.
#[derive(Clone, Debug)]
struct ConvState {
    x: FlexTensor,
    weight: FlexTensor,
    saved: Saved,
    spec: ConvSpec,
}

impl Backward<Flex, 3> for ConvBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let ConvState {
            x,
            weight,
            saved,
            spec,
        } = ops.state;
        let g = conv_geom(&x, &weight, spec);
        let needs = Needs {
            x: node_x.is_some(),
            w: node_w.is_some(),
            bias: node_b.is_some(),
        };
        let (out, codes) = match &saved {
            Saved::None => (None, None),
            Saved::Out(out) => (Some(contiguous(out)), None),
            Saved::Codes(codes) => (None, Some(codes.as_slice())),
        };
        let (xs, ws) = (values(&x), values(&weight));
        let up = Upstream {
            dy: values(&dy),
            out: out.as_ref().map(values),
            codes,
            relu: spec.relu,
            pool: spec.pool,
        };
        let run = |dx: Option<&mut [f32]>| {
            timed(
                || {
                    let pool = if spec.pool > 1 { "+pool" } else { "" };
                    format!("conv{pool} {}->{} backward", g.in_ch, g.out_ch)
                },
                || conv::backward_into(&g, xs, ws, up, dx, needs),
            )
        };
        let (mut dw, mut db) = (None, None);
        let dx = if needs.x {
            Some(recycle::output(dims4(&x), |dx| (dw, db) = run(Some(dx))))
        } else {
            (dw, db) = run(None);
            None
        };
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, dx);
        }
        if let (Some(node), Some(dw)) = (node_w, dw) {
            grads.register::<Flex>(node.id, tensor(dw, dims4(&weight)));
        }
        if let (Some(node), Some(db)) = (node_b, db) {
            grads.register::<Flex>(node.id, tensor1(db));
        }
    }
}

/// The shape of a dense product: `x [m, k]`, `weight [k, n]`.
fn dense_shape(x: &FlexTensor, w: &FlexTensor) -> dense::Shape {
    let (xs, ws) = (x.layout().shape(), w.layout().shape());
    assert!(
        xs.num_dims() == 2 && ws.num_dims() == 2 && xs[1] == ws[0],
        "dense: {xs:?} · {ws:?}"
    );
    dense::Shape {
        m: xs[0],
        k: xs[1],
        n: ws[1],
    }
}

/// [`FastOps::fast_linear`]'s forward on flex.
fn linear_forward(x: &FlexTensor, w: &FlexTensor, bias: &FlexTensor) -> FlexTensor {
    let (x, w, bias) = (contiguous(x), contiguous(w), contiguous(bias));
    let s = dense_shape(&x, &w);
    recycle::output([s.m, s.n], |y| {
        timed(
            || format!("dense {}->{} forward", s.k, s.n),
            || dense::forward(s, values(&x), values(&w), values(&bias), y),
        );
    })
}

/// Backward step of [`FastOps::fast_linear`] on flex; its state is the input and the weight.
#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let (x, w) = ops.state;
        let s = dense_shape(&x, &w);
        let name = |what: &str| format!("dense {}->{} backward {what}", s.k, s.n);
        if let Some(node) = node_x {
            let dx = recycle::output([s.m, s.k], |dx| {
                timed(
                    || name("dx"),
                    || dense::backward_x(s, values(&dy), values(&w), dx),
                );
            });
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_w {
            let dw = recycle::output([s.k, s.n], |dw| {
                timed(
                    || name("dw"),
                    || dense::backward_w(s, values(&x), values(&dy), dw),
                );
            });
            grads.register::<Flex>(node.id, dw);
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, tensor1(dense::backward_b(s, values(&dy))));
        }
    }
}

/// Backward step of [`FastOps::fast_max_pool2d`] on flex.
#[derive(Debug)]
struct PoolBackward;

impl Backward<Flex, 1> for PoolBackward {
    /// The pooled input and the window size.
    type State = (FlexTensor, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let (x, size) = ops.state;
        if let Some(node) = node_x {
            let shape = dims4(&x);
            let g = PoolGeom::new(shape, size);
            let dx = recycle::output(shape, |dx| {
                timed(
                    || format!("pool {}x{} backward", g.in_h, g.in_w),
                    || pool::backward_into(&g, values(&x), values(&dy), dx),
                );
            });
            grads.register::<Flex>(node.id, dx);
        }
    }
}

/// Backward step of [`FastOps::fast_dropout`]: the same mask, made again from the seed.
#[derive(Debug)]
struct DropoutBackward;

impl Backward<Flex, 1> for DropoutBackward {
    /// The keep probability and the seed.
    type State = (f32, u64);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (keep, seed) = ops.state;
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, dropout_apply(&dy, keep, seed, "backward"));
        }
    }
}

/// The optimizer's ops take no part in autodiff: they run on a step's plain tensors.
#[derive(Debug)]
struct NoGradient;

impl<const N: usize> Backward<Flex, N> for NoGradient {
    type State = ();

    fn backward(self, _: Ops<Self::State, N>, _: &mut Gradients, _: &mut Checkpointer) {}
}

impl<C: CheckpointStrategy> FastOps for Autodiff<Flex, C> {
    fn fast_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match LinearBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (contiguous(x.primitive()), contiguous(weight.primitive()));
                let out = linear_forward(&x, &weight, bias.primitive());
                prep.finish((x, weight), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(linear_forward(
                x.primitive(),
                weight.primitive(),
                bias.primitive(),
            )),
        }
    }

    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self> {
        match ConvBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (contiguous(x.primitive()), contiguous(weight.primitive()));
                let (out, saved) = conv_forward(&x, &weight, bias.primitive(), spec);
                let state = ConvState {
                    x,
                    weight,
                    saved,
                    spec,
                };
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep
                .finish(conv_forward(x.primitive(), weight.primitive(), bias.primitive(), spec).0),
        }
    }

    fn fast_max_pool2d(x: FloatTensor<Self>, size: usize) -> FloatTensor<Self> {
        match PoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = contiguous(x.primitive());
                let out = pool_forward(&x, size);
                prep.finish((x, size), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(pool_forward(x.primitive(), size)),
        }
    }

    fn fast_dropout(x: FloatTensor<Self>, keep: f32, seed: u64) -> FloatTensor<Self> {
        match DropoutBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = dropout_apply(x.primitive(), keep, seed, "forward");
                prep.finish((keep, seed), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(dropout_apply(x.primitive(), keep, seed, "forward"))
            }
        }
    }

    fn fast_adam_step(
        p: FloatTensor<Self>,
        g: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        betas: [f32; 2],
        factors: [f32; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [prep_p, prep_m, prep_v] = std::array::from_fn(|_| {
            NoGradient
                .prepare::<C>([p.node(), g.node(), m.node(), v.node()])
                .compute_bound()
                .stateful()
        });
        // The primitives moved, not cloned: the flex op writes in place only into buffers
        // nothing else holds.
        let (p_new, m_new, v_new) = Flex::fast_adam_step(
            p.into_primitive(),
            g.into_primitive(),
            m.into_primitive(),
            v.into_primitive(),
            betas,
            factors,
        );
        let wrap = |prep, out| match prep {
            OpsKind::Tracked(prep) => prep.finish((), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        (
            wrap(prep_p, p_new),
            wrap(prep_m, m_new),
            wrap(prep_v, v_new),
        )
    }
}

#[cfg(test)]
mod tests;
