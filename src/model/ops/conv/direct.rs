//! A direct forward convolution for few input channels (the tutorial's RGB first layer), stride
//! 1: one vector of output columns times a block of output channels at a time, summed over
//! every kernel tap straight from a zero-padded copy of the input planes.
//!
//! With 3 input channels and a 3×3 kernel the im2col matrix has 27 rows: the GEMM's inner
//! dimension is 27, far too short for it to run at the rate it reaches on the later layers,
//! and the im2col band itself is 9 times the input. Here each tap costs one vector load of input and one multiply-add per
//! output channel, and the output channels' sums stay in registers for the whole kernel.

// Kernel code names tensors as the formulas do: x, w, y, g (geometry), o, c.
#![allow(clippy::many_single_char_names)]
// pulp compiles the kernel once per instruction set; what it calls must be inlined.
#![allow(clippy::inline_always)]

use pulp::{Simd, WithSimd};

use super::{ConvGeom, lanes};

/// Most input channels the kernel takes: above this the im2col GEMM's inner dimension is long
/// enough for it to run near peak.
pub const MAX_IN_CHANNELS: usize = 4;

/// The weights of one call laid out for the kernel, and its vector shape.
#[derive(Debug)]
pub struct Plan {
    /// `f32` lanes of the widest instruction set this machine has.
    lanes: usize,
    /// Output channels summed together (the accumulators in registers).
    block: usize,
    /// `[out blocks][taps][block]`: `w[o, c, kh, kw]` at tap `(c · k_h + kh) · k_w + kw`, zeros
    /// past the last output channel.
    w: Vec<f32>,
}

/// The plan for `g` when the kernel takes it: stride 1, at most [`MAX_IN_CHANNELS`] input
/// channels, and vectors of 8 or more lanes.
#[must_use]
pub fn plan(g: &ConvGeom, w: &[f32]) -> Option<Plan> {
    if g.stride != [1, 1] || g.in_ch == 0 || g.in_ch > MAX_IN_CHANNELS || g.y_len() == 0 {
        return None;
    }
    let lanes = lanes();
    // 16 sums in 32 registers; 8 in 16.
    let block = match lanes {
        16.. => 16,
        8..16 => 8,
        _ => return None,
    };
    let taps = g.k();
    let blocks = g.out_ch.div_ceil(block);
    let mut wb = vec![0.0; blocks * taps * block];
    for o in 0..g.out_ch {
        for t in 0..taps {
            wb[((o / block) * taps + t) * block + o % block] = w[o * taps + t];
        }
    }
    Some(Plan {
        lanes,
        block,
        w: wb,
    })
}

/// Per-thread buffer: the zero-padded input planes.
#[derive(Default)]
pub struct Buffers {
    x: Vec<f32>,
}

/// One sample's forward pass: `y` (`[out_ch, out_h, out_w]`, overwritten) from `x`
/// (`[in_ch, in_h, in_w]`), plus `bias`, then `ReLU` if `relu`.
pub fn forward_sample(
    g: &ConvGeom,
    plan: &Plan,
    x: &[f32],
    (bias, relu): (Option<&[f32]>, bool),
    y: &mut [f32],
    bufs: &mut Buffers,
) {
    assert_eq!(x.len(), g.x_len(), "direct conv: input length");
    assert_eq!(y.len(), g.y_len(), "direct conv: output length");
    // Each padded row has a vector's worth of zeros more on the right, so the last column
    // block's loads stay in the row.
    let wp = g.in_w + 2 * g.pad[1] + plan.lanes;
    let hp = g.in_h + 2 * g.pad[0];
    let xp = &mut bufs.x;
    xp.clear();
    xp.resize(g.in_ch * hp * wp, 0.0);
    for (c, plane) in x.chunks_exact(g.in_h * g.in_w).enumerate() {
        for (h, row) in plane.chunks_exact(g.in_w).enumerate() {
            let start = (c * hp + h + g.pad[0]) * wp + g.pad[1];
            xp[start..start + g.in_w].copy_from_slice(row);
        }
    }
    pulp::Arch::new().dispatch(Sample {
        g,
        plan,
        xp,
        wp,
        hp,
        bias,
        relu,
        y,
    });
}

struct Sample<'a> {
    g: &'a ConvGeom,
    plan: &'a Plan,
    xp: &'a [f32],
    wp: usize,
    hp: usize,
    bias: Option<&'a [f32]>,
    relu: bool,
    y: &'a mut [f32],
}

impl WithSimd for Sample<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        assert_eq!(
            self.plan.lanes,
            size_of::<S::f32s>() / size_of::<f32>(),
            "direct conv: planned for another instruction set"
        );
        match self.plan.block {
            16 => self.body::<S, 16>(simd),
            8 => self.body::<S, 8>(simd),
            b => unreachable!("direct conv: blocks of {b} channels"),
        }
    }
}

impl Sample<'_> {
    #[inline(always)]
    fn body<S: Simd, const B: usize>(self, simd: S) {
        let Self {
            g,
            plan,
            xp,
            wp,
            hp,
            bias,
            relu,
            y,
        } = self;
        let lanes = plan.lanes;
        // Where each tap's input starts in the padded planes, for output (0, 0).
        let taps: Vec<usize> = (0..g.k())
            .map(|t| {
                let (c, kh, kw) = (t / (g.k_h * g.k_w), (t / g.k_w) % g.k_h, t % g.k_w);
                (c * hp + kh) * wp + kw
            })
            .collect();
        let p = g.p();
        let zero = simd.splat_f32s(0.0);
        for (ob, wb) in plan.w.chunks_exact(taps.len() * B).enumerate() {
            let o0 = ob * B;
            let outs = B.min(g.out_ch - o0);
            let init: [S::f32s; B] = std::array::from_fn(|j| {
                bias.and_then(|b| b.get(o0 + j))
                    .map_or(zero, |&b| simd.splat_f32s(b))
            });
            for r in 0..g.out_h {
                for c0 in (0..g.out_w).step_by(lanes) {
                    let mut acc = init;
                    for (&off, wt) in taps.iter().zip(wb.chunks_exact(B)) {
                        let start = off + r * wp + c0;
                        let xv = S::as_simd_f32s(&xp[start..start + lanes]).0[0];
                        let wt: &[f32; B] = wt.try_into().expect("a block of weights");
                        for (a, &wv) in acc.iter_mut().zip(wt) {
                            *a = simd.mul_add_f32s(simd.splat_f32s(wv), xv, *a);
                        }
                    }
                    let n = lanes.min(g.out_w - c0);
                    for (j, a) in acc.iter().take(outs).enumerate() {
                        let a = if relu { simd.max_f32s(*a, zero) } else { *a };
                        let start = (o0 + j) * p + r * g.out_w + c0;
                        let dst = &mut y[start..start + n];
                        simd.partial_store_f32s(dst, a);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The output by direct loops, as the formula reads.
    fn reference(g: &ConvGeom, x: &[f32], w: &[f32], bias: &[f32], relu: bool) -> Vec<f32> {
        let mut y = vec![0.0; g.y_len()];
        for o in 0..g.out_ch {
            for r in 0..g.out_h {
                for col in 0..g.out_w {
                    let mut s = bias[o];
                    for c in 0..g.in_ch {
                        for kh in 0..g.k_h {
                            for kw in 0..g.k_w {
                                let (ih, iw) = (r + kh, col + kw);
                                if ih < g.pad[0]
                                    || iw < g.pad[1]
                                    || ih - g.pad[0] >= g.in_h
                                    || iw - g.pad[1] >= g.in_w
                                {
                                    continue;
                                }
                                s += x[(c * g.in_h + ih - g.pad[0]) * g.in_w + iw - g.pad[1]]
                                    * w[((o * g.in_ch + c) * g.k_h + kh) * g.k_w + kw];
                            }
                        }
                    }
                    y[(o * g.out_h + r) * g.out_w + col] = if relu { s.max(0.0) } else { s };
                }
            }
        }
        y
    }

    fn values(n: usize, k: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * k) % 23) as f32 / 11.0 - 1.0).collect()
    }

    #[test]
    fn matches_the_formula_for_first_layers() {
        for (x, w, pad, relu) in [
            ([1, 3, 20, 37], [16, 3, 3, 3], [1, 1], true),
            ([1, 3, 9, 16], [20, 3, 3, 3], [1, 1], false),
            ([1, 1, 11, 5], [5, 1, 3, 3], [0, 0], true),
            ([1, 4, 12, 40], [9, 4, 5, 3], [2, 1], true),
            ([1, 2, 6, 6], [3, 2, 1, 1], [0, 0], false),
        ] {
            let g = ConvGeom::new(x, w, [1, 1], pad);
            let (xv, wv, bias) = (
                values(g.x_len(), 7),
                values(g.out_ch * g.k(), 5),
                values(g.out_ch, 3),
            );
            let Some(plan) = plan(&g, &wv) else {
                // Only machines with vectors under 8 lanes take no first layer.
                assert!(lanes() < 8, "{g:?} not taken");
                continue;
            };
            let mut y = vec![f32::NAN; g.y_len()];
            forward_sample(
                &g,
                &plan,
                &xv,
                (Some(&bias), relu),
                &mut y,
                &mut Buffers::default(),
            );
            let want = reference(&g, &xv, &wv, &bias, relu);
            for (i, (a, b)) in y.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{g:?} [{i}]: {a} {b}"
                );
            }
        }
    }

    #[test]
    fn takes_only_few_input_channels_at_stride_one() {
        let w = vec![0.0; 64 * 16 * 9];
        let g = |x: [usize; 4], w: [usize; 4], stride| ConvGeom::new(x, w, stride, [1, 1]);
        assert!(plan(&g([1, 16, 8, 8], [4, 16, 3, 3], [1, 1]), &w).is_none());
        assert!(plan(&g([1, 3, 8, 8], [4, 3, 3, 3], [2, 2]), &w).is_none());
        let first = plan(&g([1, 3, 8, 8], [4, 3, 3, 3], [1, 1]), &w);
        assert_eq!(first.is_some(), lanes() >= 8);
    }
}
