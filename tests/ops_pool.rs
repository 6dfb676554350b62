//! The fast max_pool2d matches burn's reference max_pool2d, forward and gradient.

use burn::tensor::{Device, Tensor, TensorData};
use convscope::model::ops;

/// Distinct values (a permutation of 0..len, scaled) so no window has a tie.
fn data(shape: [usize; 4], seed: usize) -> TensorData {
    let len: usize = shape.iter().product();
    // 7919 is prime and larger than any test tensor, so i -> i * 7919 mod p is a permutation.
    let p = 1_000_003usize;
    let v = (0..len)
        .map(|i| ((i * 7919 + seed) % p) as f32 / p as f32 - 0.5)
        .collect();
    TensorData::new(v, shape)
}

fn to_vec(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 tensor")
}

fn run(shape: [usize; 4], size: usize, fast: bool) -> (Vec<f32>, Vec<f32>) {
    let device = Device::flex().autodiff();
    let x = Tensor::<4>::from_data(data(shape, 1), &device).require_grad();
    let y = ops::max_pool2d(x.clone(), size, fast);
    let r = Tensor::<4>::from_data(data(y.dims(), 2), &device);
    let grads = (y.clone() * r).sum().backward();
    let dx = x.grad(&grads).map(to_vec).unwrap_or_default();
    (to_vec(y), dx)
}

fn check(shape: [usize; 4], size: usize) {
    let fast = run(shape, size, true);
    let reference = run(shape, size, false);
    // Pooling only selects and copies values, so the results are bit-identical.
    assert_eq!(fast.0, reference.0, "forward for {shape:?} size {size}");
    assert_eq!(fast.1, reference.1, "gradient for {shape:?} size {size}");
}

#[test]
fn even_sizes() {
    check([2, 3, 8, 6], 2);
}

#[test]
fn odd_sizes_drop_last_row_and_column() {
    check([5, 2, 9, 7], 2);
    check([1, 1, 75, 75], 2);
}

#[test]
fn window_of_three() {
    check([2, 4, 10, 11], 3);
}

#[test]
fn forward_without_autodiff() {
    let x = Tensor::<4>::from_data(data([3, 2, 7, 9], 3), &Device::flex());
    let fast = ops::max_pool2d(x.clone(), 2, true);
    let reference = ops::max_pool2d(x, 2, false);
    assert_eq!(fast.dims(), [3, 2, 3, 4]);
    assert_eq!(to_vec(fast), to_vec(reference));
}

#[test]
fn repeated_calls_reuse_gradient_buffers_correctly() {
    check([3, 2, 11, 9], 2);
    check([3, 2, 11, 9], 2);
}
