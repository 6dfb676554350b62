//! Fast CPU convolution and pooling for the flex backend, with burn's ops as the fallback.
//!
//! On a flex device (with or without autodiff) and `f32` tensors, the calls below run the
//! im2col + GEMM kernels in [`conv`] and the pooling kernels in [`pool`] through a burn backend
//! extension ([`flex::FastOps`]) that carries its own backward pass. Anywhere else, or when
//! `fast` is false, they call burn's own `conv2d` / `relu` / `max_pool2d`, so results agree
//! either way. Large outputs are recycled between steps ([`recycle`]); [`bench`] times a training
//! step of the tutorial net with each path.

pub mod adam;
pub mod adam_kernels;
pub mod bench;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod dw;
pub mod flex;
pub mod pool;
pub mod profile;
pub mod recycle;

use burn::backend::{Dispatch, DispatchDevice};
use burn::tensor::activation::relu;
use burn::tensor::module;
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{DType, Distribution, Tensor, TensorData};

use flex::{ConvSpec, FastOps};

/// Whether `t` lives on a flex (CPU) device, with or without autodiff.
fn on_flex_device<const D: usize>(t: &Tensor<D>) -> bool {
    matches!(t.device().inner().as_dispatch(), DispatchDevice::Flex(_))
}

/// The values of `t` as [`TensorData`] that shares the tensor's memory (no copy) when it is a
/// contiguous `f32` flex tensor, with or without autodiff; a copy elsewhere. The memory stays
/// alive, and unchanged, as long as the data does: flex never writes into a shared buffer.
pub(crate) fn shared_data<const D: usize>(t: &Tensor<D>) -> TensorData {
    use burn::backend::flex::FlexTensor;
    use burn_dispatch::{BackendTensor, DispatchTensorKind};

    /// A flex tensor's values as bytes, for [`bytes::Bytes::from_owner`].
    struct Values(FlexTensor);
    impl AsRef<[u8]> for Values {
        fn as_ref(&self) -> &[u8] {
            bytemuck::cast_slice(self.0.as_slice::<f32>().unwrap_or_default())
        }
    }

    let plain = t.clone().without_autodiff();
    let shape = plain.shape();
    match plain.into_dispatch().kind {
        DispatchTensorKind::Flex(BackendTensor::Float(x)) if x.as_slice::<f32>().is_some() => {
            let bytes = bytes::Bytes::from_owner(Values(x));
            TensorData::from_bytes(
                burn::tensor::Bytes::from_shared(bytes, burn::tensor::AllocationProperty::Native),
                shape,
                DType::F32,
            )
        }
        _ => t.clone().into_data(),
    }
}

/// `f` on the values of `t` in place when it is a contiguous `f32` flex tensor without autodiff
/// (no copy: the recycled conv outputs are shared with their pool, so moving the data out
/// would copy it); `None` elsewhere. `t` comes back unchanged.
pub(crate) fn with_flex_values<const D: usize, R>(
    t: Tensor<D>,
    f: impl FnOnce(&[f32]) -> R,
) -> (Tensor<D>, Option<R>) {
    use burn_dispatch::{BackendTensor, DispatchTensorKind};
    let d = t.into_dispatch();
    let r = match &d.kind {
        DispatchTensorKind::Flex(BackendTensor::Float(x)) if x.is_contiguous() => {
            x.as_slice::<f32>().map(f)
        }
        _ => None,
    };
    (Tensor::from_dispatch(d), r)
}

/// Whether the flex kernels can take `t`: `f32` on a flex device.
pub(crate) fn flex_f32<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == DType::F32 && on_flex_device(t)
}

/// Whether `x` (and the weight, if any) can take the fast path: `f32` tensors on a flex device.
fn fast_path(x: &Tensor<4>, weight: Option<&Tensor<4>>, fast: bool) -> bool {
    fast && flex_f32(x) && weight.is_none_or(|w| w.dtype() == DType::F32)
}

/// 2-D convolution, NCHW, fast path on the flex device (with or without autodiff), burn's
/// `burn::tensor::module::conv2d` elsewhere or when `fast` is false.
#[must_use]
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: [usize; 2],
    padding: [usize; 2],
    fast: bool,
) -> Tensor<4> {
    if fast_path(&x, Some(&weight), fast) {
        return fast_conv(x, weight, bias, [stride, padding], false, 1);
    }
    module::conv2d(
        x,
        weight,
        bias,
        ConvOptions::new(stride, padding, [1, 1], 1),
    )
}

/// 2-D convolution followed by `ReLU`, fused into the convolution's output step on the fast path.
#[must_use]
pub fn conv2d_relu(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: [usize; 2],
    padding: [usize; 2],
    fast: bool,
) -> Tensor<4> {
    if fast_path(&x, Some(&weight), fast) {
        return fast_conv(x, weight, bias, [stride, padding], true, 1);
    }
    relu(module::conv2d(
        x,
        weight,
        bias,
        ConvOptions::new(stride, padding, [1, 1], 1),
    ))
}

fn fast_conv(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    [stride, padding]: [[usize; 2]; 2],
    relu: bool,
    pool: usize,
) -> Tensor<4> {
    // A constant zero bias keeps one extension signature; it has no autodiff node to update.
    let bias = bias.unwrap_or_else(|| Tensor::zeros([weight.dims()[0]], &x.device()));
    let spec = ConvSpec {
        stride,
        padding,
        relu,
        pool,
    };
    Tensor::from_dispatch(<Dispatch as FastOps>::fast_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        spec,
    ))
}

/// 2-D convolution, `ReLU`, then max pooling (kernel = stride = `pool`, floor); on the fast path
/// the pooling runs on each sample's output while it is in cache and its backward is fused into
/// the convolution's: neither the full-size pre-pool output nor its gradient is ever
/// materialised, only a 2-byte code per window saying where the gradient goes back to.
#[must_use]
pub fn conv2d_relu_pool(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: [usize; 2],
    padding: [usize; 2],
    pool: usize,
    fast: bool,
) -> Tensor<4> {
    if fast_path(&x, Some(&weight), fast) {
        return fast_conv(x, weight, bias, [stride, padding], true, pool);
    }
    max_pool2d(
        conv2d_relu(x, weight, bias, stride, padding, false),
        pool,
        false,
    )
}

/// Dropout at `rate` (the kept values scaled by `1 / (1 - rate)`); on flex the mask is made in
/// parallel from a seed drawn from burn's seeded generator (so runs stay reproducible) and made
/// again in the backward pass instead of being stored. Should the seed not read back, burn's
/// own dropout runs: never a mask from a made-up seed.
#[must_use]
pub fn dropout<const D: usize>(x: Tensor<D>, rate: f32, fast: bool) -> Tensor<D> {
    let keep = 1.0 - rate;
    if fast && flex_f32(&x) {
        let draws = Tensor::<1>::random([2], Distribution::Default, &x.device());
        match crate::model::read_f32(draws, "dropout seed") {
            Ok(draws) => {
                let seed = draws
                    .iter()
                    .fold(0u64, |s, d| (s << 32) | u64::from(d.to_bits()));
                return Tensor::from_dispatch(<Dispatch as FastOps>::fast_dropout(
                    x.into_dispatch(),
                    keep,
                    seed,
                ));
            }
            Err(e) => tracing::warn!("{e}; burn's dropout runs instead"),
        }
    }
    let keep = f64::from(keep);
    let mask = x.random_like(Distribution::Bernoulli(keep));
    x * mask / keep
}

/// A dense layer, `x · w + b` (`x`: `[batch, in]`, `w`: `[in, out]`).
///
/// On a GPU a small batch against a long input (the tutorial's first dense layer is
/// 64 × 36,992 · 36,992 × 512) gives the matrix kernel only a handful of output tiles, so most
/// of the GPU idles while each tile walks all of K: there the product is split along K into
/// slices multiplied as one batch and summed ("split-K"). On flex with `fast`, the project's
/// own dense op runs instead (faer's products, with its own backward); else burn's matmul.
#[must_use]
pub fn linear(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>, fast: bool) -> Tensor<2> {
    if fast && flex_f32(&x) && w.dtype() == DType::F32 && b.dtype() == DType::F32 {
        return Tensor::from_dispatch(<Dispatch as FastOps>::fast_linear(
            x.into_dispatch(),
            w.into_dispatch(),
            b.into_dispatch(),
        ));
    }
    let on_gpu = !on_flex_device(&x);
    let b = b.unsqueeze_dim(0);
    match split_k(x.dims(), on_gpu) {
        Some(s) => linear_split(x, w, s) + b,
        None => x.matmul(w) + b,
    }
}

/// The number of K slices for a `[m, k]` input, if splitting pays.
fn split_k([m, k]: [usize; 2], on_gpu: bool) -> Option<usize> {
    if !on_gpu || m > 256 || k < 8192 {
        return None;
    }
    [32, 16, 8, 4].into_iter().find(|s| k % s == 0)
}

/// `x · w` as the sum of `s` products over slices of K.
fn linear_split(x: Tensor<2>, w: Tensor<2>, s: usize) -> Tensor<2> {
    let [m, k] = x.dims();
    let n = w.dims()[1];
    // [s, m, k/s] · [s, k/s, n] -> [s, m, n] -> [m, n]
    let xs = x.reshape([m, s, k / s]).swap_dims(0, 1);
    let ws = w.reshape([s, k / s, n]);
    xs.matmul(ws).sum_dim(0).reshape([m, n])
}

/// Max pooling, kernel = stride = size, no padding (floor), fast path on flex like [`conv2d`].
#[must_use]
pub fn max_pool2d(x: Tensor<4>, size: usize, fast: bool) -> Tensor<4> {
    if fast_path(&x, None, fast) {
        return Tensor::from_dispatch(<Dispatch as FastOps>::fast_max_pool2d(
            x.into_dispatch(),
            size,
        ));
    }
    module::max_pool2d(x, MaxPoolOptions::new([size, size]))
}

#[cfg(test)]
mod linear_tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    #[test]
    fn split_k_is_the_same_product_and_gradient() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::random([5, 64], Distribution::Default, &device).require_grad();
        let w = Tensor::<2>::random([64, 7], Distribution::Default, &device).require_grad();
        let plain = x.clone().matmul(w.clone());
        let split = linear_split(x.clone(), w.clone(), 8);
        let diff: f32 = (plain.clone() - split.clone()).abs().max().into_scalar();
        assert!(diff < 1e-5, "forward differs by {diff}");
        let gp = plain.sum().backward();
        let gs = split.sum().backward();
        for (a, b) in [(x.grad(&gp), x.grad(&gs)), (w.grad(&gp), w.grad(&gs))] {
            let (a, b) = (a.expect("grad"), b.expect("grad"));
            let diff: f32 = (a - b).abs().max().into_scalar();
            assert!(diff < 1e-5, "gradient differs by {diff}");
        }
    }

    #[test]
    fn only_long_inputs_on_a_gpu_are_split() {
        assert_eq!(split_k([64, 36_992], true), Some(32));
        assert_eq!(split_k([64, 36_992], false), None);
        assert_eq!(split_k([64, 512], true), None);
        assert_eq!(split_k([1024, 36_992], true), None);
        assert_eq!(split_k([64, 8193], true), None);
    }
}

#[cfg(test)]
mod read_tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    #[test]
    fn flex_values_are_read_in_place_and_strided_or_tracked_ones_are_not() {
        let device = Device::flex();
        let t = Tensor::<3>::random([2, 3, 5], Distribution::Default, &device);
        let want = crate::model::read_f32(t.clone(), "t").expect("read");
        let (back, got) = with_flex_values(t.clone(), <[f32]>::to_vec);
        assert_eq!(got, Some(want.clone()));
        // The tensor comes back unchanged.
        assert_eq!(crate::model::read_f32(back, "t").expect("read"), want);
        // A strided view has no contiguous slice: the caller copies.
        let (_, strided) = with_flex_values(t.clone().swap_dims(0, 2), <[f32]>::to_vec);
        assert_eq!(strided, None);
        // An autodiff tensor is not a plain flex one.
        let tracked = Tensor::<3>::random([2, 3, 5], Distribution::Default, &device.autodiff());
        let (_, got) = with_flex_values(tracked, <[f32]>::to_vec);
        assert_eq!(got, None);
    }

    #[test]
    fn shared_data_shares_flex_memory_and_copies_otherwise() {
        let device = Device::flex();
        let values = |d: &TensorData| d.clone().try_to_vec::<f32>().expect("f32");
        for tracked in [false, true] {
            let dev = if tracked {
                device.clone().autodiff()
            } else {
                device.clone()
            };
            let t = Tensor::<3>::random([2, 3, 5], Distribution::Default, &dev);
            let want = crate::model::read_f32(t.clone(), "t").expect("read");
            let shared = shared_data(&t);
            assert_eq!(shared.shape().to_vec(), vec![2, 3, 5]);
            assert_eq!(values(&shared), want, "tracked: {tracked}");
            // The same memory as the tensor's, not a copy of it.
            let (_, ptr) = with_flex_values(t.clone().without_autodiff(), |v| v.as_ptr() as usize);
            assert_eq!(
                Some(shared.as_bytes().as_ptr() as usize),
                ptr,
                "tracked: {tracked}"
            );
        }
        // A strided view: a copy, in the view's order.
        let t = Tensor::<3>::random([2, 3, 5], Distribution::Default, &device).swap_dims(0, 2);
        let want = crate::model::read_f32(t.clone(), "t").expect("read");
        let copied = shared_data(&t);
        assert_eq!(copied.shape().to_vec(), vec![5, 3, 2]);
        assert_eq!(values(&copied), want);
    }
}
