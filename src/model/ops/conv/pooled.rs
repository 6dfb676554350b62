//! The backward pass of a stride-1 convolution with 3 kernel rows, fused with max-pooling (and
//! usually `ReLU`), that reads only the gradient's non-zeros.
//!
//! Routed back through a max pool of window `s`, the convolution's output gradient holds at
//! most one non-zero in each `s × s` window, none where the fused `ReLU` blocked the window. The
//! im2col path multiplies all of it, zeros included. Here each pooled gradient value goes
//! straight to the position its window's code names ([`super::pool::forward_plane_codes`]):
//! - the weight gradient adds the value times the input patch there;
//! - the input gradient adds the value times the weights, spread around there.
//!
//! Both work on rows of `k_w · in_ch` floats of a channels-last, zero-padded copy of the sample
//! (one row per kernel row), so a 2×2 pool needs 4 times fewer multiplies than the dense
//! gradient. Per pooled row, each output channel's weight-gradient rows (or its weights) stay in
//! registers while the row's positions pass, and the few input rows they touch stay in L1.

// Kernel code names tensors as the formulas do: x, w, g (geometry), s (window), o, c.
#![allow(clippy::many_single_char_names)]
// pulp compiles the kernel once per instruction set; what it calls must be inlined.
#![allow(clippy::inline_always)]

use pulp::{Simd, WithSimd};

use super::{ConvGeom, Switch, lanes};
use crate::model::ops::pool::{self, BLOCKED};

/// Kernel rows this kernel takes (the accumulators are laid out for them at compile time).
const KH: usize = 3;

/// Most SIMD vectors in one kernel row (`k_w · in_ch` floats): `KH ×` this many accumulators
/// must fit the registers (24 of AVX-512's 32; the tutorial's third layer needs 18).
const MAX_ROW_VECS: usize = 8;

/// The pooled backward kernel on or off (`CONVSCOPE_POOLED_BACKWARD`).
static SWITCH: Switch = Switch::new("CONVSCOPE_POOLED_BACKWARD", true);

/// Use this kernel where it applies (`true`, the default) or the dense im2col backward pass
/// (`false`; `convscope bench --breakdown` compares the two).
pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

/// Whether the kernel is on: [`set_enabled`], else `CONVSCOPE_POOLED_BACKWARD` (`0`/`false`/
/// `no` turns it off), else on.
#[must_use]
pub fn enabled() -> bool {
    SWITCH.enabled()
}

/// What one backward call over the batch shares: the vector shape and, when the input gradient
/// is wanted, the weights laid out as kernel rows.
#[derive(Debug)]
pub struct Plan {
    /// `f32` lanes of the widest instruction set this machine has.
    lanes: usize,
    /// Vectors per kernel row.
    vecs: usize,
    /// `[out_ch][KH][vecs · lanes]`: `w[o, c, kh, kw]` at `kw · in_ch + c` of row `kh`, zeros
    /// after; empty when no input gradient is wanted.
    wt: Vec<f32>,
}

/// The plan for `g` when this kernel can take its backward pass through a fused pool of window
/// `pool`: stride 1, 3 kernel rows, a kernel row of at most
/// [`MAX_ROW_VECS`] vectors, and, when `want_dx`, a whole number of vectors (so the input
/// gradient's rows are written exactly).
#[must_use]
pub fn plan(g: &ConvGeom, pool: usize, w: &[f32], want_dx: bool) -> Option<Plan> {
    if g.stride != [1, 1] || g.k_h != KH || pool < 2 || g.in_ch == 0 {
        return None;
    }
    if g.out_h / pool == 0 || g.out_w / pool == 0 || g.x_len() == 0 {
        return None;
    }
    let lanes = lanes();
    let row = g.k_w * g.in_ch;
    let vecs = row.div_ceil(lanes);
    if lanes < 4 || vecs > MAX_ROW_VECS || (want_dx && !row.is_multiple_of(lanes)) {
        return None;
    }
    let width = vecs * lanes;
    let mut wt = Vec::new();
    if want_dx {
        wt = vec![0.0; g.out_ch * KH * width];
        for o in 0..g.out_ch {
            for c in 0..g.in_ch {
                for kh in 0..KH {
                    for kw in 0..g.k_w {
                        wt[(o * KH + kh) * width + kw * g.in_ch + c] =
                            w[((o * g.in_ch + c) * KH + kh) * g.k_w + kw];
                    }
                }
            }
        }
    }
    Some(Plan { lanes, vecs, wt })
}

/// Per-thread buffers: the padded channels-last input and input gradient, and one sample's
/// weight gradient in kernel rows.
#[derive(Default)]
pub struct Buffers {
    xt: Vec<f32>,
    dxt: Vec<f32>,
    dwt: Vec<f32>,
    /// One pooled row's passing windows: offset and value.
    list: Vec<(usize, f32)>,
}

/// One sample's gradients.
pub struct Sample<'a> {
    /// The convolution.
    pub g: &'a ConvGeom,
    /// From [`plan`].
    pub plan: &'a Plan,
    /// Pool window.
    pub pool: usize,
    /// The sample's input, `[in_ch, in_h, in_w]`.
    pub x: &'a [f32],
    /// The pooled output's gradient, `[out_ch, out_h / pool, out_w / pool]`.
    pub dy: &'a [f32],
    /// The forward's pool codes, one per value of `dy`.
    pub codes: &'a [u16],
    /// Weight gradient to add to (`[out_ch, in_ch, 3, k_w]`), if wanted.
    pub dw: Option<&'a mut [f32]>,
    /// Bias gradient to add to (`[out_ch]`), if wanted.
    pub bias: Option<&'a mut [f32]>,
    /// Input gradient to overwrite (`[in_ch, in_h, in_w]`), if wanted.
    pub dx: Option<&'a mut [f32]>,
    /// This thread's buffers.
    pub bufs: &'a mut Buffers,
}

impl Sample<'_> {
    /// Compute what was asked for.
    pub fn run(self) {
        pulp::Arch::new().dispatch(self);
    }
}

impl WithSimd for Sample<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        assert_eq!(
            self.plan.lanes,
            size_of::<S::f32s>() / size_of::<f32>(),
            "pooled conv backward: planned for another instruction set"
        );
        match self.plan.vecs {
            1 => self.body::<S, 1>(simd),
            2 => self.body::<S, 2>(simd),
            3 => self.body::<S, 3>(simd),
            4 => self.body::<S, 4>(simd),
            5 => self.body::<S, 5>(simd),
            6 => self.body::<S, 6>(simd),
            7 => self.body::<S, 7>(simd),
            8 => self.body::<S, 8>(simd),
            v => unreachable!("pooled conv backward: {v} vectors per kernel row"),
        }
    }
}

/// Where the padded channels-last copies keep the input of output `(r, col)` under kernel row
/// `kh`: `k_w · in_ch` floats from `((r + kh) · wp + col) · in_ch`.
struct Layout {
    /// Padded width.
    wp: usize,
    /// Channels.
    c: usize,
    /// Floats of the copy: the padded input and one kernel row's vectors more, so the last
    /// row's vectors stay inside.
    len: usize,
    /// Offset of each window slot (a pool code) from the window's first position.
    slot: Vec<usize>,
}

impl Layout {
    fn new(g: &ConvGeom, s: usize, width: usize) -> Self {
        let (hp, wp) = (g.in_h + 2 * g.pad[0], g.in_w + 2 * g.pad[1]);
        let c = g.in_ch;
        Self {
            wp,
            c,
            len: hp * wp * c + width,
            slot: (0..s * s).map(|q| ((q / s) * wp + q % s) * c).collect(),
        }
    }

    /// Floats from one kernel row to the next.
    fn kernel_row(&self) -> usize {
        self.wp * self.c
    }

    /// Where input row `h` starts: `in_w` pixels of `c` floats.
    fn row(&self, g: &ConvGeom, h: usize) -> usize {
        ((h + g.pad[0]) * self.wp + g.pad[1]) * self.c
    }
}

impl Sample<'_> {
    #[inline(always)]
    fn body<S: Simd, const N: usize>(self, simd: S) {
        let Self {
            g,
            plan,
            pool: s,
            x,
            dy,
            codes,
            dw,
            bias,
            dx,
            bufs,
        } = self;
        let plane = (g.out_h / s) * (g.out_w / s);
        assert_eq!(x.len(), g.x_len(), "pooled conv backward: input length");
        assert_eq!(dy.len(), g.out_ch * plane, "pooled conv backward: gradient");
        assert_eq!(codes.len(), dy.len(), "pooled conv backward: codes");
        if let Some(bias) = bias {
            for (o, b) in bias.iter_mut().enumerate() {
                let rows = o * plane..(o + 1) * plane;
                *b += pool::code_sum(&dy[rows.clone()], &codes[rows], s, g.out_w / s);
            }
        }
        bufs.list.clear();
        bufs.list.resize(g.out_w / s, (0, 0.0));
        let list = bufs.list.as_mut_slice();
        let grads = Grads {
            g,
            s,
            dy,
            codes,
            lay: Layout::new(g, s, N * plan.lanes),
        };
        if let Some(dw) = dw {
            let xt = aligned(&mut bufs.xt, grads.lay.len);
            // Row by row, so each channels-last row (a few KiB) stays in L1 while every
            // channel's plane row is spread into it.
            let plane = g.in_h * g.in_w;
            for h in 0..g.in_h {
                let start = grads.lay.row(g, h);
                let dst = &mut xt[start..start + g.in_w * g.in_ch];
                for ci in 0..g.in_ch {
                    let src = &x[ci * plane + h * g.in_w..ci * plane + (h + 1) * g.in_w];
                    for (px, v) in dst.chunks_exact_mut(g.in_ch).zip(src) {
                        px[ci] = *v;
                    }
                }
            }
            grads.weights::<S, N>(simd, xt, &mut bufs.dwt, list);
            // Kernel rows back to `[out_ch, in_ch, KH, k_w]`.
            let width = N * plan.lanes;
            for (o, dwo) in dw.chunks_exact_mut(g.in_ch * KH * g.k_w).enumerate() {
                for (ci, dwc) in dwo.chunks_exact_mut(KH * g.k_w).enumerate() {
                    for (kh, dwr) in dwc.chunks_exact_mut(g.k_w).enumerate() {
                        let src = &bufs.dwt[(o * KH + kh) * width..];
                        for (kw, d) in dwr.iter_mut().enumerate() {
                            *d += src[kw * g.in_ch + ci];
                        }
                    }
                }
            }
        }
        if let Some(dx) = dx {
            assert_eq!(
                N * plan.lanes,
                g.k_w * g.in_ch,
                "pooled conv backward: input gradient rows not whole vectors"
            );
            let dxt = aligned(&mut bufs.dxt, grads.lay.len);
            grads.input::<S, N>(simd, &plan.wt, dxt, list);
            let plane = g.in_h * g.in_w;
            for h in 0..g.in_h {
                let start = grads.lay.row(g, h);
                let src = &dxt[start..start + g.in_w * g.in_ch];
                for ci in 0..g.in_ch {
                    let dst = &mut dx[ci * plane + h * g.in_w..ci * plane + (h + 1) * g.in_w];
                    for (d, px) in dst.iter_mut().zip(src.chunks_exact(g.in_ch)) {
                        *d = px[ci];
                    }
                }
            }
        }
    }
}

/// `len` zeros in `buf`, starting on a 64-byte boundary: the channels-last rows of 16 or 32
/// channels are then whole cache lines, and no vector load or store straddles two.
fn aligned(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    const LINE: usize = 64 / size_of::<f32>();
    buf.clear();
    buf.resize(len + LINE, 0.0);
    let skip = (buf.as_ptr().addr() / size_of::<f32>()).wrapping_neg() % LINE;
    &mut buf[skip..skip + len]
}

/// One sample's pooled gradient and where it goes.
struct Grads<'a> {
    g: &'a ConvGeom,
    /// Pool window.
    s: usize,
    dy: &'a [f32],
    codes: &'a [u16],
    lay: Layout,
}

impl Grads<'_> {
    /// Where the gradient of pooled row `ph` of output channel `o` goes, window by window in
    /// `cols` order: into `list`, for each window the `ReLU` passes, the offset in the padded
    /// copy of the input under its coded position's first kernel row, and the value. Returns
    /// how many. (Written whether or not the window passes, and the count moved by the test:
    /// a branch on it would mispredict on about every other window.)
    #[inline(always)]
    fn gather(
        &self,
        o: usize,
        ph: usize,
        cols: impl Iterator<Item = usize>,
        list: &mut [(usize, f32)],
    ) -> usize {
        let pw_n = self.g.out_w / self.s;
        let start = (o * (self.g.out_h / self.s) + ph) * pw_n;
        let (dy, codes) = (
            &self.dy[start..start + pw_n],
            &self.codes[start..start + pw_n],
        );
        let lay = &self.lay;
        let row = ph * self.s * lay.kernel_row();
        let mut n = 0;
        for pw in cols {
            let code = codes[pw];
            let pass = code != BLOCKED;
            let q = if pass { usize::from(code) } else { 0 };
            list[n] = (row + pw * self.s * lay.c + lay.slot[q], dy[pw]);
            n += usize::from(pass);
        }
        n
    }

    /// The weight gradient in kernel rows, `dwt` (`[out_ch][KH][N vectors]`, overwritten), from
    /// the padded channels-last input `xt`.
    #[inline(always)]
    fn weights<S: Simd, const N: usize>(
        &self,
        simd: S,
        xt: &[f32],
        dwt: &mut Vec<f32>,
        list: &mut [(usize, f32)],
    ) {
        let width = size_of::<[S::f32s; N]>() / size_of::<f32>();
        let step = self.lay.kernel_row();
        dwt.clear();
        dwt.resize(self.g.out_ch * KH * width, 0.0);
        let zero = simd.splat_f32s(0.0);
        for ph in 0..self.g.out_h / self.s {
            for (o, dwo) in dwt.chunks_exact_mut(KH * width).enumerate() {
                let n = self.gather(o, ph, 0..list.len(), list);
                let row = |start: usize| -> &[S::f32s; N] {
                    S::as_simd_f32s(&xt[start..start + width])
                        .0
                        .try_into()
                        .expect("a kernel row is N vectors")
                };
                let mut acc = [[zero; N]; KH];
                for &(at, d) in &list[..n] {
                    let d = simd.splat_f32s(d);
                    for (kh, acc) in acc.iter_mut().enumerate() {
                        for (a, v) in acc.iter_mut().zip(row(at + kh * step)) {
                            *a = simd.mul_add_f32s(d, *v, *a);
                        }
                    }
                }
                let dst: &mut [S::f32s] = S::as_mut_simd_f32s(dwo).0;
                for (d, a) in dst.iter_mut().zip(acc.iter().flatten()) {
                    *d = simd.add_f32s(*d, *a);
                }
            }
        }
    }

    /// The input gradient into the zeroed, padded channels-last `dxt`, from the weights in
    /// kernel rows `wt` (`[out_ch][KH][N vectors]`).
    #[inline(always)]
    fn input<S: Simd, const N: usize>(
        &self,
        simd: S,
        wt: &[f32],
        dxt: &mut [f32],
        list: &mut [(usize, f32)],
    ) {
        let width = size_of::<[S::f32s; N]>() / size_of::<f32>();
        let step = self.lay.kernel_row();
        for ph in 0..self.g.out_h / self.s {
            for (o, wo) in wt.chunks_exact(KH * width).enumerate() {
                let wv: &[S::f32s] = S::as_simd_f32s(wo).0;
                let wv: [[S::f32s; N]; KH] =
                    std::array::from_fn(|kh| std::array::from_fn(|v| wv[kh * N + v]));
                // Even pooled columns, then odd: two windows in a row then never touch the same
                // input, so no store waits on the one before.
                let pw_n = list.len();
                let cols = (0..pw_n).step_by(2).chain((1..pw_n).step_by(2));
                let n = self.gather(o, ph, cols, list);
                for &(at, d) in &list[..n] {
                    let d = simd.splat_f32s(d);
                    for (kh, wr) in wv.iter().enumerate() {
                        let start = at + kh * step;
                        let t: &mut [S::f32s; N] =
                            S::as_mut_simd_f32s(&mut dxt[start..start + width])
                                .0
                                .try_into()
                                .expect("a kernel row is N vectors");
                        for (t, w) in t.iter_mut().zip(wr) {
                            *t = simd.mul_add_f32s(d, *w, *t);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::backward::{Needs, Upstream, backward_with};
    use super::super::forward_pooled_into;
    use super::*;

    /// A small deterministic generator (xorshift) of values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Both gradients of one fused conv + ReLU + pool, by this kernel and by the dense path.
    fn compare(x_shape: [usize; 4], w_shape: [usize; 4], pad: [usize; 2], pool: usize) {
        let g = ConvGeom::new(x_shape, w_shape, [1, 1], pad);
        let x = values(g.batch * g.x_len(), 1);
        let w = values(g.out_ch * g.k(), 2);
        // Biases about one standard deviation of the products' sum below zero: the ReLU blocks
        // a good share of windows, even 3×3 ones.
        let spread = (g.k() as f32).sqrt() / 3.0;
        let bias: Vec<f32> = values(g.out_ch, 3).iter().map(|b| b - spread).collect();
        let pooled_len = g.batch * g.out_ch * (g.out_h / pool) * (g.out_w / pool);
        let (mut p, mut codes) = (vec![0.0; pooled_len], vec![0; pooled_len]);
        forward_pooled_into(&g, &x, &w, Some(&bias), true, pool, &mut p, &mut codes);
        assert!(
            codes.contains(&BLOCKED) && codes.iter().any(|&c| c != BLOCKED),
            "the case should have windows the ReLU blocks and windows it passes: {} of {}",
            codes.iter().filter(|&&c| c == BLOCKED).count(),
            codes.len()
        );
        let dy = values(pooled_len, 4);
        let up = Upstream {
            dy: &dy,
            out: None,
            codes: Some(&codes),
            relu: true,
            pool,
        };
        let needs = Needs {
            x: true,
            w: true,
            bias: true,
        };
        let want_dx = (g.k_w * g.in_ch).is_multiple_of(lanes());
        let taken = plan(&g, pool, &w, want_dx).is_some();
        // The tutorial's layers (3 and 16 input channels) must take this kernel wherever the
        // machine has 8 or more lanes; 32 channels (18 accumulators) only with 16 lanes.
        if lanes() >= 8 && g.in_ch <= 16 || lanes() >= 16 {
            assert!(taken, "{g:?} pool {pool} should take the pooled kernel");
        }
        let run = |sparse: bool| {
            let mut dx = vec![f32::NAN; if want_dx { x.len() } else { 0 }];
            let (dw, db) = backward_with(
                &g,
                &x,
                &w,
                up,
                want_dx.then_some(dx.as_mut_slice()),
                needs,
                sparse,
            );
            (dx, dw.expect("weight gradient"), db.expect("bias gradient"))
        };
        let (dx_s, dw_s, db_s) = run(true);
        let (dx_d, dw_d, db_d) = run(false);
        let close = |a: &[f32], b: &[f32], what: &str| {
            assert_eq!(a.len(), b.len(), "{what}");
            let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for (i, (u, v)) in a.iter().zip(b).enumerate() {
                assert!(
                    (u - v).abs() <= 1e-5 * scale,
                    "{what}[{i}]: pooled {u} dense {v} ({g:?}, pool {pool})"
                );
            }
        };
        close(&dw_s, &dw_d, "weight gradient");
        // The bias gradient is summed in the same order by both paths.
        assert_eq!(db_s, db_d, "bias gradient");
        close(&dx_s, &dx_d, "input gradient");
    }

    #[test]
    fn the_tutorial_layers_match_the_dense_gradient() {
        compare([3, 3, 20, 22], [16, 3, 3, 3], [1, 1], 2);
        compare([2, 16, 15, 15], [32, 16, 3, 3], [1, 1], 2);
        compare([2, 32, 13, 11], [64, 32, 3, 3], [1, 1], 2);
    }

    #[test]
    fn other_windows_padding_and_kernel_widths_match_the_dense_gradient() {
        // Odd sizes leave a last row and column no window covers; no padding; 3×3 windows.
        compare([2, 8, 11, 9], [5, 8, 3, 3], [0, 0], 2);
        compare([2, 16, 10, 14], [6, 16, 3, 3], [1, 1], 3);
        compare([1, 4, 12, 12], [7, 4, 3, 5], [1, 2], 2);
        compare([2, 16, 9, 9], [4, 16, 3, 1], [1, 0], 2);
    }

    #[test]
    fn what_the_kernel_takes() {
        let g = |x: [usize; 4], w: [usize; 4], stride| ConvGeom::new(x, w, stride, [1, 1]);
        let w = vec![0.0; 16 * 16 * 9];
        let l = lanes();
        let tutorial = g([1, 16, 16, 16], [16, 16, 3, 3], [1, 1]);
        assert_eq!(plan(&tutorial, 2, &w, true).is_some(), l >= 8);
        // Not a pool, a stride, a kernel height other than 3, or too long a kernel row.
        assert!(plan(&tutorial, 1, &w, true).is_none());
        assert!(plan(&g([1, 16, 16, 16], [16, 16, 3, 3], [2, 2]), 2, &w, true).is_none());
        assert!(plan(&g([1, 16, 16, 16], [4, 16, 5, 5], [1, 1]), 2, &w, false).is_none());
        assert!(plan(&g([1, 64, 16, 16], [4, 64, 3, 3], [1, 1]), 2, &w, false).is_none());
        // A kernel row of 9 floats serves the weight gradient, not the input gradient.
        let first = g([1, 3, 16, 16], [16, 3, 3, 3], [1, 1]);
        assert_eq!(plan(&first, 2, &w, false).is_some(), l >= 4);
        assert!(plan(&first, 2, &w, true).is_none());
    }
}
