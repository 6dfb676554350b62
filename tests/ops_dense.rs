//! The fast dense layer (`ops::linear(.., true)`, faer's products and its own backward)
//! matches burn's `matmul + bias`, forward and gradients, and its untracked forward too.

mod common;

use burn::tensor::{Device, Tensor};
use common::ops::{data, rel_err, to_vec};
use convscope::model::ops;

/// `y`, then the gradients of x, W and b under `loss = sum(y * r)`.
fn run([m, k, n]: [usize; 3], fast: bool) -> [Vec<f32>; 4] {
    let device = Device::flex().autodiff();
    let x = Tensor::<2>::from_data(data([m, k], 1), &device).require_grad();
    let w = Tensor::<2>::from_data(data([k, n], 2), &device).require_grad();
    let b = Tensor::<1>::from_data(data([n], 3), &device).require_grad();
    let y = ops::linear(x.clone(), w.clone(), b.clone(), fast);
    let r = Tensor::<2>::from_data(data([m, n], 4), &device);
    let grads = (y.clone() * r).sum().backward();
    let grad = |g: Option<Vec<f32>>| g.expect("a gradient");
    [
        to_vec(y),
        grad(x.grad(&grads).map(to_vec)),
        grad(w.grad(&grads).map(to_vec)),
        grad(b.grad(&grads).map(to_vec)),
    ]
}

#[test]
fn the_fast_dense_layer_matches_burn_s_forward_and_gradients() {
    // Odd sizes, a tall input and the tutorial's shape scaled down (batch × long input × 512).
    for shape in [[3, 5, 7], [1, 17, 2], [64, 300, 33], [8, 2_592, 64]] {
        let fast = run(shape, true);
        let reference = run(shape, false);
        for (name, (f, r)) in ["y", "dx", "dw", "db"]
            .iter()
            .zip(fast.iter().zip(&reference))
        {
            let err = rel_err(f, r);
            assert!(err <= 1e-5, "{name}: relative error {err:e} for {shape:?}");
        }
    }
}

#[test]
fn without_autodiff_the_fast_dense_layer_gives_the_same_output() {
    let device = Device::flex();
    let [m, k, n] = [5, 40, 9];
    let x = Tensor::<2>::from_data(data([m, k], 5), &device);
    let w = Tensor::<2>::from_data(data([k, n], 6), &device);
    let b = Tensor::<1>::from_data(data([n], 7), &device);
    let fast = to_vec(ops::linear(x.clone(), w.clone(), b.clone(), true));
    let reference = to_vec(ops::linear(x, w, b, false));
    let err = rel_err(&fast, &reference);
    assert!(err <= 1e-5, "relative error {err:e}");
}
