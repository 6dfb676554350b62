//! The fast conv2d matches burn's reference conv2d, forward and gradients.

mod common;

use burn::tensor::{Device, Tensor};
use common::ops::{data, rel_err, to_vec};
use convscope::model::ops;

const TOL: f32 = 1e-5;

#[derive(Clone, Copy, Debug)]
struct Case {
    x: [usize; 4],
    out_ch: usize,
    k: usize,
    stride: [usize; 2],
    pad: [usize; 2],
    bias: bool,
    relu: bool,
    pool: usize,
    x_grad: bool,
}

/// Forward output and gradients of x, weight, bias under `loss = sum(y * r)`.
fn run(c: Case, fast: bool) -> [Vec<f32>; 4] {
    let device = Device::flex().autodiff();
    let x = Tensor::<4>::from_data(data(c.x, 1), &device);
    let x = if c.x_grad { x.require_grad() } else { x };
    let w = Tensor::<4>::from_data(data([c.out_ch, c.x[1], c.k, c.k], 2), &device).require_grad();
    let b = Tensor::<1>::from_data(data([c.out_ch], 3), &device).require_grad();
    let bias = c.bias.then(|| b.clone());
    let y = if c.pool > 1 {
        ops::conv2d_relu_pool(x.clone(), w.clone(), bias, c.stride, c.pad, c.pool, fast)
    } else if c.relu {
        ops::conv2d_relu(x.clone(), w.clone(), bias, c.stride, c.pad, fast)
    } else {
        ops::conv2d(x.clone(), w.clone(), bias, c.stride, c.pad, fast)
    };
    let r = Tensor::<4>::from_data(data(y.dims(), 4), &device);
    let grads = (y.clone() * r).sum().backward();
    let grad = |g: Option<Vec<f32>>| g.unwrap_or_default();
    [
        to_vec(y),
        grad(x.grad(&grads).map(to_vec)),
        grad(w.grad(&grads).map(to_vec)),
        grad(b.grad(&grads).map(to_vec)),
    ]
}

fn check(c: Case) {
    let fast = run(c, true);
    let reference = run(c, false);
    for (name, (f, r)) in ["y", "dx", "dw", "db"]
        .iter()
        .zip(fast.iter().zip(&reference))
    {
        assert_eq!(f.len(), r.len(), "{name} length differs for {c:?}");
        let err = rel_err(f, r);
        assert!(err <= TOL, "{name}: relative error {err:e} for {c:?}");
    }
    assert_eq!(fast[1].is_empty(), !c.x_grad, "dx presence for {c:?}");
    assert_eq!(fast[3].is_empty(), !c.bias, "db presence for {c:?}");
}

fn base() -> Case {
    Case {
        x: [2, 3, 9, 11],
        out_ch: 4,
        k: 3,
        stride: [1, 1],
        pad: [1, 1],
        bias: true,
        relu: false,
        pool: 1,
        x_grad: true,
    }
}

#[test]
fn same_padding_three_channels() {
    check(base());
}

#[test]
fn valid_padding_stride_two_odd_sizes() {
    check(Case {
        x: [1, 3, 13, 7],
        stride: [2, 2],
        pad: [0, 0],
        ..base()
    });
}

#[test]
fn stride_two_with_padding_batch_five() {
    check(Case {
        x: [5, 2, 8, 9],
        out_ch: 3,
        stride: [2, 2],
        pad: [1, 1],
        ..base()
    });
}

#[test]
fn one_input_channel_no_bias() {
    check(Case {
        x: [5, 1, 7, 6],
        bias: false,
        ..base()
    });
}

#[test]
fn mixed_stride_and_padding() {
    check(Case {
        x: [2, 4, 10, 9],
        out_ch: 5,
        stride: [1, 2],
        pad: [0, 1],
        ..base()
    });
}

#[test]
fn five_by_five_kernel_pad_two() {
    check(Case {
        x: [1, 2, 6, 8],
        k: 5,
        pad: [2, 2],
        ..base()
    });
}

#[test]
fn fused_relu_matches_conv_then_relu() {
    check(Case {
        relu: true,
        ..base()
    });
    check(Case {
        x: [5, 16, 9, 7],
        out_ch: 8,
        relu: true,
        ..base()
    });
}

#[test]
fn input_without_gradient_like_the_first_layer() {
    check(Case {
        x_grad: false,
        relu: true,
        ..base()
    });
}

#[test]
fn forward_without_autodiff_matches() {
    let device = Device::flex();
    let x = Tensor::<4>::from_data(data([3, 3, 10, 10], 5), &device);
    let w = Tensor::<4>::from_data(data([6, 3, 3, 3], 6), &device);
    let b = Tensor::<1>::from_data(data([6], 7), &device);
    let fast = ops::conv2d_relu(x.clone(), w.clone(), Some(b.clone()), [1, 1], [1, 1], true);
    let reference = ops::conv2d_relu(x, w, Some(b), [1, 1], [1, 1], false);
    assert_eq!(fast.dims(), [3, 6, 10, 10]);
    let err = rel_err(&to_vec(fast), &to_vec(reference));
    assert!(err <= TOL, "relative error {err:e}");
}

#[test]
fn repeated_calls_reuse_output_buffers_correctly() {
    // The second round writes into the first round's recycled outputs and input gradients.
    let c = Case {
        x: [3, 5, 12, 10],
        out_ch: 6,
        relu: true,
        ..base()
    };
    check(c);
    check(c);
}

#[test]
fn fused_relu_pool_odd_sizes() {
    // Conv output 9x11 pools to 4x5, dropping the last row and column.
    check(Case {
        relu: true,
        pool: 2,
        ..base()
    });
}

#[test]
fn fused_relu_pool_three_stride_two_batch_five() {
    check(Case {
        x: [5, 4, 13, 14],
        out_ch: 6,
        stride: [2, 2],
        relu: true,
        pool: 3,
        ..base()
    });
}

#[test]
fn fused_relu_pool_first_layer_twice() {
    // No input gradient, and the second round reuses the first round's buffers.
    let c = Case {
        x: [3, 3, 10, 12],
        out_ch: 8,
        relu: true,
        pool: 2,
        x_grad: false,
        ..base()
    };
    check(c);
    check(c);
}

/// A case the Winograd kernel takes (3×3, stride 1, ≥ 8 channels in and out), checked against
/// burn's reference; it fails if the case would fall back to im2col.
fn check_winograd(c: Case) {
    use ops::conv::{ConvGeom, winograd};
    // Off by default; on for this test binary (the other cases check either kernel against the
    // same reference).
    winograd::set_enabled(true);
    let g = ConvGeom::new(c.x, [c.out_ch, c.x[1], c.k, c.k], c.stride, c.pad);
    assert!(winograd::applies(&g), "Winograd does not take {c:?}");
    let gt = winograd::dx_geom(&g).expect("the input gradient's convolution");
    assert!(
        winograd::applies(&gt),
        "Winograd does not take the dx of {c:?}"
    );
    check(c);
}

#[test]
fn winograd_same_padding_odd_sizes_with_relu() {
    check_winograd(Case {
        x: [2, 8, 9, 11],
        out_ch: 12,
        relu: true,
        ..base()
    });
}

#[test]
fn winograd_valid_padding_no_bias() {
    check_winograd(Case {
        x: [3, 9, 7, 10],
        out_ch: 8,
        pad: [0, 0],
        bias: false,
        ..base()
    });
}

#[test]
fn winograd_padding_two_and_mixed_padding() {
    check_winograd(Case {
        x: [2, 10, 6, 5],
        out_ch: 9,
        pad: [2, 2],
        ..base()
    });
    check_winograd(Case {
        x: [2, 8, 7, 6],
        out_ch: 8,
        pad: [0, 2],
        relu: true,
        ..base()
    });
}

#[test]
fn winograd_fused_relu_pool_odd_sizes_like_the_tutorial_layers() {
    // 37x37 is the tutorial's third layer (pooled to 18x18, dropping an edge).
    for x in [[2, 16, 11, 9], [2, 32, 37, 37]] {
        check_winograd(Case {
            x,
            out_ch: 16,
            relu: true,
            pool: 2,
            ..base()
        });
    }
}

#[test]
fn winograd_tiny_planes_and_no_input_gradient() {
    check_winograd(Case {
        x: [3, 8, 1, 2],
        out_ch: 8,
        ..base()
    });
    check_winograd(Case {
        x: [2, 12, 5, 5],
        out_ch: 8,
        relu: true,
        pool: 2,
        x_grad: false,
        ..base()
    });
}
