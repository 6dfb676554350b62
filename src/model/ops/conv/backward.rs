//! The backward pass of [`super::forward`] and [`super::forward_pooled_into`]: per sample, the
//! output gradient (routed back through a fused pool and `ReLU`), then per band of output rows
//! the weight gradient from the im2col band and the input gradient by col2im.

// Kernel code names tensors as the formulas do: x, w, y, g (geometry), s (stride).
#![allow(clippy::many_single_char_names)]

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::{ConvGeom, SCRATCH, Scratch, bands, im2col, input_row, pooled, valid_range, winograd};
use crate::model::ops::dw;
use crate::model::ops::pool::{self, PoolGeom};

/// Add the columns of `dcol` (`[k, rows * out_w]`) back onto the input gradient `dx` (`[c, h, w]`).
fn col2im(g: &ConvGeom, dcol: &[f32], oh0: usize, rows: usize, dx: &mut [f32]) {
    let band = rows * g.out_w;
    let plane = g.in_h * g.in_w;
    let sw = g.stride[1];
    for (r, src) in dcol.chunks_exact(band).enumerate() {
        let c = r / (g.k_h * g.k_w);
        let kh = (r / g.k_w) % g.k_h;
        let kw = r % g.k_w;
        let dst_plane = &mut dx[c * plane..(c + 1) * plane];
        let (lo, hi) = valid_range(kw, g.pad[1], sw, g.in_w, g.out_w);
        if lo >= hi {
            continue;
        }
        for (i, srow) in src.chunks_exact(g.out_w).enumerate() {
            let Some(ih) = input_row(g, oh0 + i, kh) else {
                continue;
            };
            let start = lo * sw + kw - g.pad[1];
            let drow = &mut dst_plane[ih * g.in_w + start..(ih + 1) * g.in_w];
            if sw == 1 {
                for (d, s) in drow.iter_mut().zip(&srow[lo..hi]) {
                    *d += *s;
                }
            } else {
                for (d, s) in drow.iter_mut().step_by(sw).zip(&srow[lo..hi]) {
                    *d += *s;
                }
            }
        }
    }
}

/// Which gradients a backward call must produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// Input gradient.
    pub x: bool,
    /// Weight gradient.
    pub w: bool,
    /// Bias gradient.
    pub bias: bool,
}

/// Gradients of one convolution; `None` where not requested.
#[derive(Debug, Default)]
pub struct Grads {
    /// `[batch, in_ch, in_h, in_w]`.
    pub x: Option<Vec<f32>>,
    /// `[out_ch, in_ch, k_h, k_w]`.
    pub w: Option<Vec<f32>>,
    /// `[out_ch]`.
    pub bias: Option<Vec<f32>>,
}

/// Samples whose weight and bias gradients are summed together before the groups are added up
/// in order (a fixed grouping makes training reproducible; small enough to keep 16 threads busy
/// on a batch of 32).
const SUM_GROUP: usize = 2;

/// Weight and bias gradient partial sums of one group of samples.
struct Partial {
    w: Vec<f32>,
    bias: Vec<f32>,
}

impl Partial {
    fn zeros(g: &ConvGeom, needs: Needs) -> Self {
        Self {
            w: vec![0.0; if needs.w { g.out_ch * g.k() } else { 0 }],
            bias: vec![0.0; if needs.bias { g.out_ch } else { 0 }],
        }
    }

    #[allow(clippy::needless_pass_by_value)] // the signature rayon's reduce wants
    fn add(mut self, other: Self) -> Self {
        self.w.iter_mut().zip(&other.w).for_each(|(a, b)| *a += b);
        self.bias
            .iter_mut()
            .zip(&other.bias)
            .for_each(|(a, b)| *a += b);
        self
    }
}

/// The gradient reaching a convolution, fused `ReLU` and fused max-pooling, and the forward output
/// needed to carry it back to the convolution's output.
#[derive(Clone, Copy, Debug)]
pub struct Upstream<'a> {
    /// Gradient of the op's output: the convolution output, or its pooling when `pool > 1`.
    pub dy: &'a [f32],
    /// The forward's convolution output (after `ReLU`); needed for `relu` without pooling.
    pub out: Option<&'a [f32]>,
    /// The forward's pool codes ([`forward_pooled_into`]); needed for `pool > 1`.
    pub codes: Option<&'a [u16]>,
    /// The forward applied `ReLU`.
    pub relu: bool,
    /// The forward max-pooled with this window (1: no pooling).
    pub pool: usize,
}

impl<'a> Upstream<'a> {
    /// Floats of `dy` per sample.
    fn dy_len(&self, g: &ConvGeom) -> usize {
        g.out_ch * (g.out_h / self.pool) * (g.out_w / self.pool)
    }

    /// This sample's slice.
    fn sample(&self, g: &ConvGeom, i: usize) -> Upstream<'a> {
        let (dl, yl) = (self.dy_len(g), g.y_len());
        Upstream {
            dy: &self.dy[i * dl..(i + 1) * dl],
            out: self.out.map(|o| &o[i * yl..(i + 1) * yl]),
            codes: self.codes.map(|c| &c[i * dl..(i + 1) * dl]),
            ..*self
        }
    }
}

/// The input gradient as a Winograd convolution of the output gradient: its geometry and
/// transformed weights.
type DxWinograd = (ConvGeom, Vec<f32>);

/// [`DxWinograd`] for `g` when the Winograd kernel applies to its input gradient.
fn dx_winograd(g: &ConvGeom, w: &[f32]) -> Option<DxWinograd> {
    let gt = winograd::dx_geom(g).filter(winograd::applies)?;
    let wt = winograd::dx_weights(w, g.out_ch, g.in_ch);
    Some((gt, winograd::filter_transform(&wt, g.in_ch, g.out_ch)))
}

/// One sample's backward pass: accumulate into `acc`, write the input gradient into `dx`
/// (by Winograd when `wino` is given, else by GEMM and col2im band by band).
#[allow(clippy::too_many_arguments)]
fn backward_sample(
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    wino: Option<&DxWinograd>,
    up: Upstream<'_>,
    dx: Option<&mut [f32]>,
    acc: &mut Partial,
    s: &mut Scratch,
) {
    let (k, p) = (g.k(), g.p());
    // The bias gradient is each channel's gradient summed; the fused pool sums as it writes.
    let dy: &[f32] = if up.pool > 1 {
        // Route the pooled gradient to each window's coded slot, sample by sample in cache.
        let codes = up
            .codes
            .expect("conv2d backward: fused pooling needs the forward's pool codes");
        s.dy.resize(g.y_len(), 0.0);
        let pg = PoolGeom {
            planes: 1,
            in_h: g.out_h,
            in_w: g.out_w,
            size: up.pool,
        };
        let plane = up.dy_len(g) / g.out_ch.max(1);
        if plane == 0 {
            // The pool kept nothing (an output smaller than its window): no gradient flows.
            s.dy.fill(0.0);
        }
        let planes =
            s.dy.chunks_exact_mut(p)
                .zip(up.dy.chunks(plane.max(1)).zip(codes.chunks(plane.max(1))));
        for (o, (dx_o, (dy_o, c_o))) in planes.enumerate() {
            let sum = pool::backward_plane_codes(&pg, dy_o, c_o, dx_o);
            if let Some(b) = acc.bias.get_mut(o) {
                *b += sum;
            }
        }
        &s.dy
    } else if up.relu {
        let out = up
            .out
            .expect("conv2d backward: fused ReLU needs the forward output");
        s.dy.resize(g.y_len(), 0.0);
        // The gradient passes where the (post-ReLU) output is positive.
        for ((d, &u), &o) in s.dy.iter_mut().zip(up.dy).zip(out) {
            *d = if o <= 0.0 { 0.0 } else { u };
        }
        &s.dy
    } else {
        up.dy
    };
    if up.pool == 1 {
        for (o, row) in dy.chunks_exact(p).enumerate() {
            if let Some(b) = acc.bias.get_mut(o) {
                *b += sum(row);
            }
        }
    }
    let dym = MatRef::from_row_major_slice(dy, g.out_ch, p);
    let wm = MatRef::from_row_major_slice(w, g.out_ch, k);
    let mut dx = dx;
    match (dx.as_deref_mut(), wino) {
        (Some(dx), Some((gt, u))) => {
            winograd::forward_sample(gt, dy, u, (None, false), dx, &mut s.wino);
        }
        (Some(dx), None) => dx.fill(0.0),
        (None, _) => {}
    }
    let mut dx = if wino.is_some() { None } else { dx };
    if acc.w.is_empty() && dx.is_none() {
        return;
    }
    for (oh0, rows) in bands(g) {
        let band = rows * g.out_w;
        let dy_band = dym.subcols(oh0 * g.out_w, band);
        if !acc.w.is_empty() {
            s.col.resize(k * band, 0.0);
            im2col(g, x, oh0, rows, &mut s.col);
            // dW [out_ch, k] += dy [out_ch, band] * col^T [band, k]
            if k <= dw::MAX_K {
                dw::accumulate(&dy[oh0 * g.out_w..], p, &s.col, band, k, &mut acc.w);
            } else {
                let colm = MatRef::from_row_major_slice(&s.col[..k * band], k, band);
                matmul(
                    MatMut::from_row_major_slice_mut(&mut acc.w, g.out_ch, k),
                    Accum::Add,
                    dy_band,
                    colm.transpose(),
                    1.0,
                    Par::Seq,
                );
            }
        }
        if let Some(dx) = dx.as_deref_mut() {
            s.dcol.resize(k * band, 0.0);
            // dcol [k, band] = W^T [k, out_ch] * dy [out_ch, band]
            matmul(
                MatMut::from_row_major_slice_mut(&mut s.dcol[..k * band], k, band),
                Accum::Replace,
                wm.transpose(),
                dy_band,
                1.0,
                Par::Seq,
            );
            col2im(g, &s.dcol[..k * band], oh0, rows, dx);
        }
    }
}

/// The sum of `v` in eight interleaved partial sums, which vectorise.
fn sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Gradients of [`forward`] given the output gradient `dy`; `relu_out` is the forward output when
/// the forward applied `ReLU`.
#[must_use]
pub fn backward(
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    relu_out: Option<&[f32]>,
    needs: Needs,
) -> Grads {
    let mut dx = vec![0.0; if needs.x { g.batch * g.x_len() } else { 0 }];
    let dx_out = needs.x.then_some(dx.as_mut_slice());
    let up = Upstream {
        dy,
        out: relu_out,
        codes: None,
        relu: relu_out.is_some(),
        pool: 1,
    };
    let (dw, db) = backward_into(g, x, w, up, dx_out, needs);
    Grads {
        x: needs.x.then_some(dx),
        w: dw,
        bias: db,
    }
}

/// [`backward`] writing the input gradient into `dx` (old values overwritten) when it is given;
/// returns the weight and bias gradients that `needs` asks for (`needs.x` is ignored).
#[must_use]
pub fn backward_into(
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    up: Upstream<'_>,
    dx: Option<&mut [f32]>,
    needs: Needs,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    backward_with(g, x, w, up, dx, needs, pooled::enabled())
}

/// [`backward_into`], with the [`pooled`] kernel allowed where it applies (`sparse_ok`) or not.
pub(super) fn backward_with(
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    up: Upstream<'_>,
    dx: Option<&mut [f32]>,
    needs: Needs,
    sparse_ok: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    assert!(up.pool > 0, "conv2d backward: pool window must be non-zero");
    assert_eq!(
        x.len(),
        g.batch * g.x_len(),
        "conv2d backward: input length"
    );
    assert_eq!(
        up.dy.len(),
        g.batch * up.dy_len(g),
        "conv2d backward: output gradient length"
    );
    if let Some(out) = up.out {
        assert_eq!(
            out.len(),
            g.batch * g.y_len(),
            "conv2d backward: output length"
        );
    }
    if let Some(codes) = up.codes {
        assert_eq!(
            codes.len(),
            up.dy.len(),
            "conv2d backward: pool codes length"
        );
    }
    let xl = g.x_len().max(1);
    // Through a fused pool, the pooled kernel reads only the gradient's non-zeros.
    let sparse = up
        .codes
        .filter(|_| sparse_ok && up.pool > 1)
        .and_then(|_| pooled::plan(g, up.pool, w, dx.is_some()));
    let wino = dx
        .as_ref()
        .filter(|_| sparse.is_none())
        .and_then(|_| dx_winograd(g, w));
    let body = |mut acc: Partial, (i, dx_n): (usize, Option<&mut [f32]>)| {
        let x_n = &x[i * xl..(i + 1) * xl];
        let up_n = up.sample(g, i);
        SCRATCH.with_borrow_mut(|s| match (&sparse, up_n.codes) {
            (Some(plan), Some(codes)) => pooled::Sample {
                g,
                plan,
                pool: up_n.pool,
                x: x_n,
                dy: up_n.dy,
                codes,
                dw: (!acc.w.is_empty()).then_some(acc.w.as_mut_slice()),
                bias: (!acc.bias.is_empty()).then_some(acc.bias.as_mut_slice()),
                dx: dx_n,
                bufs: &mut s.pooled,
            }
            .run(),
            _ => backward_sample(g, x_n, w, wino.as_ref(), up_n, dx_n, &mut acc, s),
        });
        acc
    };
    let partial = if g.y_len() == 0 || g.x_len() == 0 {
        if let Some(dx) = dx {
            dx.fill(0.0);
        }
        Partial::zeros(g, needs)
    } else {
        // Fixed groups of samples, each summed in order, then the groups in order: the sums
        // round the same in every run and at any thread count. (A rayon fold/reduce groups
        // the samples as work-stealing happens to split them, so runs with one seed differed.)
        let partials: Vec<Partial> = if let Some(dx) = dx {
            assert_eq!(dx.len(), x.len(), "conv2d backward: input gradient length");
            dx.par_chunks_mut(xl * SUM_GROUP)
                .enumerate()
                .map(|(c, group)| {
                    group
                        .chunks_mut(xl)
                        .enumerate()
                        .map(|(j, d)| (c * SUM_GROUP + j, Some(d)))
                        .fold(Partial::zeros(g, needs), body)
                })
                .collect()
        } else {
            (0..g.batch.div_ceil(SUM_GROUP))
                .into_par_iter()
                .map(|c| {
                    (c * SUM_GROUP..((c + 1) * SUM_GROUP).min(g.batch))
                        .map(|i| (i, None))
                        .fold(Partial::zeros(g, needs), body)
                })
                .collect()
        };
        partials
            .into_iter()
            .reduce(Partial::add)
            .unwrap_or_else(|| Partial::zeros(g, needs))
    };
    (
        needs.w.then_some(partial.w),
        needs.bias.then_some(partial.bias),
    )
}
