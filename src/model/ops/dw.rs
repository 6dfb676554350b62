//! The weight gradient of a convolution whose im2col has few rows, `dW[o, r] += Σ_i dy[o, i] ·
//! col[r, i]`, as register-blocked dot products along the band.
//!
//! For the first layer (3 input channels, 3×3: 27 rows, 16 outputs) the product is a 16×27
//! matrix summed over tens of thousands of positions. A general GEMM packs both operands for
//! that and reaches about 20 GFLOP/s here; reading both straight from the band, 4 outputs × 3
//! rows at a time with SIMD accumulators, needs no packing at all.

// pulp compiles the kernel once per instruction set; everything it calls must be inlined into
// that copy, or it runs without the wider instructions.
#![allow(clippy::inline_always)]

use pulp::{Simd, WithSimd};

/// Im2col rows up to which [`accumulate`] is used instead of the GEMM (the first layer of the
/// tutorial network has 27, the second 144).
pub const MAX_K: usize = 64;

/// Add `Σ_i dy[o * dy_stride + i] · col[r * n + i]` over `i < n` to `acc[o * k + r]` for every
/// output channel `o < out_ch` and im2col row `r < k`.
pub fn accumulate(dy: &[f32], dy_stride: usize, col: &[f32], n: usize, k: usize, acc: &mut [f32]) {
    let out_ch = acc.len() / k.max(1);
    assert_eq!(acc.len(), out_ch * k, "weight gradient: accumulator length");
    assert!(col.len() >= k * n, "weight gradient: im2col band length");
    if out_ch > 0 {
        assert!(
            dy.len() >= (out_ch - 1) * dy_stride + n,
            "weight gradient: output gradient length"
        );
    }
    pulp::Arch::new().dispatch(Kernel {
        dy,
        dy_stride,
        col,
        n,
        k,
        acc,
    });
}

struct Kernel<'a> {
    dy: &'a [f32],
    dy_stride: usize,
    col: &'a [f32],
    n: usize,
    k: usize,
    acc: &'a mut [f32],
}

impl WithSimd for Kernel<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            dy,
            dy_stride,
            col,
            n,
            k,
            acc,
        } = self;
        let out_ch = acc.len() / k.max(1);
        let dy_row = |o: usize| &dy[o * dy_stride..o * dy_stride + n];
        let col_row = |r: usize| &col[r * n..(r + 1) * n];
        let mut o = 0;
        while o < out_ch {
            if out_ch - o >= 4 {
                rows::<S, 4>(
                    simd,
                    std::array::from_fn(|a| dy_row(o + a)),
                    k,
                    &col_row,
                    &mut acc[o * k..(o + 4) * k],
                );
                o += 4;
            } else {
                rows::<S, 1>(simd, [dy_row(o)], k, &col_row, &mut acc[o * k..(o + 1) * k]);
                o += 1;
            }
        }
    }
}

/// All im2col rows against `BO` output channels; `acc` holds those channels' `k` sums each.
#[inline(always)]
fn rows<'a, S: Simd, const BO: usize>(
    simd: S,
    dys: [&[f32]; BO],
    k: usize,
    col_row: &impl Fn(usize) -> &'a [f32],
    acc: &mut [f32],
) {
    let mut r = 0;
    while r < k {
        if k - r >= 3 {
            let sums = block::<S, BO, 3>(simd, dys, std::array::from_fn(|j| col_row(r + j)));
            for (a, s) in sums.iter().enumerate() {
                for (j, v) in s.iter().enumerate() {
                    acc[a * k + r + j] += v;
                }
            }
            r += 3;
        } else {
            let sums = block::<S, BO, 1>(simd, dys, [col_row(r)]);
            for (a, s) in sums.iter().enumerate() {
                acc[a * k + r] += s[0];
            }
            r += 1;
        }
    }
}

/// The `BO × BR` dot products of `dys` with `cols` (all of one length).
#[inline(always)]
fn block<S: Simd, const BO: usize, const BR: usize>(
    simd: S,
    dys: [&[f32]; BO],
    cols: [&[f32]; BR],
) -> [[f32; BR]; BO] {
    let dv = dys.map(S::as_simd_f32s);
    let cv = cols.map(S::as_simd_f32s);
    let lanes = cv[0].0.len();
    let dh: [&[S::f32s]; BO] = std::array::from_fn(|a| &dv[a].0[..lanes]);
    let ch: [&[S::f32s]; BR] = std::array::from_fn(|j| &cv[j].0[..lanes]);
    let zero = simd.splat_f32s(0.0);
    let mut acc = [[zero; BR]; BO];
    for i in 0..lanes {
        let c: [S::f32s; BR] = std::array::from_fn(|j| ch[j][i]);
        for a in 0..BO {
            let d = dh[a][i];
            for j in 0..BR {
                acc[a][j] = simd.mul_add_f32s(d, c[j], acc[a][j]);
            }
        }
    }
    std::array::from_fn(|a| {
        std::array::from_fn(|j| {
            let tail: f32 = dv[a].1.iter().zip(cv[j].1).map(|(d, c)| d * c).sum();
            simd.reduce_sum_f32s(acc[a][j]) + tail
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        dy: &[f32],
        dy_stride: usize,
        col: &[f32],
        n: usize,
        k: usize,
        out_ch: usize,
    ) -> Vec<f32> {
        let mut acc = vec![0.0f64; out_ch * k];
        for o in 0..out_ch {
            for r in 0..k {
                for i in 0..n {
                    acc[o * k + r] += f64::from(dy[o * dy_stride + i]) * f64::from(col[r * n + i]);
                }
            }
        }
        acc.into_iter().map(|v| v as f32).collect()
    }

    #[test]
    fn matches_the_plain_sums_for_every_block_remainder() {
        // Output channels and rows that leave every remainder (4-blocks, 3-blocks, single ones),
        // and band lengths with and without a SIMD tail.
        for (out_ch, k, n, stride_extra) in [
            (16, 27, 2400, 0),
            (7, 5, 37, 3),
            (1, 1, 1, 0),
            (5, 4, 16, 9),
            (3, 64, 1001, 1),
        ] {
            let dy_stride = n + stride_extra;
            let dy: Vec<f32> = (0..out_ch * dy_stride)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
                .collect();
            let col: Vec<f32> = (0..k * n)
                .map(|i| ((i * 53 % 89) as f32 - 44.0) / 30.0)
                .collect();
            let mut acc = vec![0.5f32; out_ch * k];
            accumulate(&dy, dy_stride, &col, n, k, &mut acc);
            let want = naive(&dy, dy_stride, &col, n, k, out_ch);
            for (i, (got, want)) in acc.iter().zip(&want).enumerate() {
                let want = want + 0.5;
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                    "{out_ch}x{k} over {n}: entry {i} is {got}, want {want}"
                );
            }
        }
    }
}
