//! Im2col + GEMM convolution kernels on contiguous NCHW `f32` slices.
//!
//! Each sample is processed by one rayon task. Within a sample the output is cut into bands of
//! whole output rows so the im2col band (`[k, band]`) stays in L2 while faer multiplies it; the
//! bands live in per-thread buffers reused across calls. The weight gradient multiplies the
//! output gradient by the same im2col band, so no im2col of the output gradient is ever built.

// Kernel code names tensors as the formulas do: x, w, y, g (geometry), s (stride).
#![allow(clippy::many_single_char_names)]

use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, Ordering};

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::pool::{self, PoolGeom};

mod backward;
pub mod direct;
pub mod pooled;
pub mod winograd;

pub use backward::{Grads, Needs, Upstream, backward, backward_into};

/// A kernel that can be turned on or off: [`Switch::set`], else its environment variable
/// (`1`/`true`/`yes` or `0`/`false`/`no`), else its default.
pub struct Switch {
    /// 0: not read yet, 1: on, 2: off.
    state: AtomicU8,
    var: &'static str,
    default: bool,
}

impl Switch {
    const fn new(var: &'static str, default: bool) -> Self {
        Self {
            state: AtomicU8::new(0),
            var,
            default,
        }
    }

    /// Turn the kernel on or off, over the environment.
    pub fn set(&self, on: bool) {
        self.state.store(if on { 1 } else { 2 }, Ordering::Relaxed);
    }

    /// Whether the kernel is on.
    #[must_use]
    pub fn enabled(&self) -> bool {
        match self.state.load(Ordering::Relaxed) {
            1 => true,
            2 => false,
            _ => {
                let on = std::env::var(self.var)
                    .ok()
                    .and_then(|v| crate::yesno::parse_bool(&v).ok())
                    .unwrap_or(self.default);
                // A racing `set` wins over the environment.
                let _ = self.state.compare_exchange(
                    0,
                    if on { 1 } else { 2 },
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                self.state.load(Ordering::Relaxed) == 1
            }
        }
    }
}

struct Lanes;

impl pulp::WithSimd for Lanes {
    type Output = usize;

    fn with_simd<S: pulp::Simd>(self, _: S) -> usize {
        size_of::<S::f32s>() / size_of::<f32>()
    }
}

/// `f32` lanes of the widest instruction set this machine has (what the `pulp` kernels run on).
fn lanes() -> usize {
    pulp::Arch::new().dispatch(Lanes)
}

/// Floats in one im2col band: 64 Ki floats (256 KiB) keeps the band and its GEMM panel in L2.
const BAND_FLOATS: usize = 64 * 1024;

/// Shapes, stride and padding of one 2-D convolution (NCHW input, OIHW weight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeom {
    /// Samples in the batch.
    pub batch: usize,
    /// Input channels.
    pub in_ch: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Output channels.
    pub out_ch: usize,
    /// Kernel height.
    pub k_h: usize,
    /// Kernel width.
    pub k_w: usize,
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Zero padding on both sides, `[height, width]`.
    pub pad: [usize; 2],
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

impl ConvGeom {
    /// Build the geometry from the input and weight shapes.
    ///
    /// # Panics
    /// Panics when channels disagree, a stride is zero or the kernel does not fit the padded input.
    #[must_use]
    pub fn new(x: [usize; 4], w: [usize; 4], stride: [usize; 2], pad: [usize; 2]) -> Self {
        let [batch, in_ch, in_h, in_w] = x;
        let [out_ch, w_in, k_h, k_w] = w;
        assert_eq!(
            in_ch, w_in,
            "conv2d: input has {in_ch} channels, weight expects {w_in}"
        );
        assert!(
            stride[0] > 0 && stride[1] > 0,
            "conv2d: stride must be non-zero"
        );
        assert!(
            in_h + 2 * pad[0] >= k_h && in_w + 2 * pad[1] >= k_w,
            "conv2d: kernel {k_h}x{k_w} larger than padded input {in_h}x{in_w} (+{pad:?})"
        );
        Self {
            batch,
            in_ch,
            in_h,
            in_w,
            out_ch,
            k_h,
            k_w,
            stride,
            pad,
            out_h: (in_h + 2 * pad[0] - k_h) / stride[0] + 1,
            out_w: (in_w + 2 * pad[1] - k_w) / stride[1] + 1,
        }
    }

    /// Rows of the im2col matrix: `in_ch * k_h * k_w`.
    #[must_use]
    pub fn k(&self) -> usize {
        self.in_ch * self.k_h * self.k_w
    }

    /// Output pixels per channel: `out_h * out_w`.
    #[must_use]
    pub fn p(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Input floats per sample.
    #[must_use]
    pub fn x_len(&self) -> usize {
        self.in_ch * self.in_h * self.in_w
    }

    /// Output floats per sample.
    #[must_use]
    pub fn y_len(&self) -> usize {
        self.out_ch * self.p()
    }

    /// Output shape `[batch, out_ch, out_h, out_w]`.
    #[must_use]
    pub fn out_shape(&self) -> [usize; 4] {
        [self.batch, self.out_ch, self.out_h, self.out_w]
    }

    /// Output rows per band.
    fn band_rows(&self) -> usize {
        (BAND_FLOATS / (self.k() * self.out_w).max(1)).clamp(1, self.out_h.max(1))
    }
}

/// Per-thread scratch reused across calls so bands are allocated once per thread.
#[derive(Default)]
struct Scratch {
    col: Vec<f32>,
    dcol: Vec<f32>,
    dy: Vec<f32>,
    /// One sample's unpooled output in the fused conv+pool forward pass.
    y: Vec<f32>,
    /// The Winograd kernel's transformed tiles and products.
    wino: winograd::Buffers,
    /// The pooled backward kernel's channels-last copies.
    pooled: pooled::Buffers,
    /// The direct kernel's padded input.
    direct: direct::Buffers,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Output positions `lo..hi` along one axis whose input index `o * stride + k - pad` is in bounds.
fn valid_range(
    k: usize,
    pad: usize,
    stride: usize,
    in_len: usize,
    out_len: usize,
) -> (usize, usize) {
    let lo = if k >= pad {
        0
    } else {
        (pad - k).div_ceil(stride)
    };
    let hi = if in_len + pad > k {
        (in_len + pad - k).div_ceil(stride).min(out_len)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// Input row of output row `oh` at kernel row `kh`, if it is not padding.
fn input_row(g: &ConvGeom, oh: usize, kh: usize) -> Option<usize> {
    (oh * g.stride[0] + kh)
        .checked_sub(g.pad[0])
        .filter(|&ih| ih < g.in_h)
}

/// Fill `col` (`[k, rows * out_w]`) with the patches of output rows `oh0..oh0 + rows`.
fn im2col(g: &ConvGeom, x: &[f32], oh0: usize, rows: usize, col: &mut [f32]) {
    let band = rows * g.out_w;
    let plane = g.in_h * g.in_w;
    let sw = g.stride[1];
    for (r, dst) in col.chunks_exact_mut(band).enumerate() {
        let c = r / (g.k_h * g.k_w);
        let kh = (r / g.k_w) % g.k_h;
        let kw = r % g.k_w;
        let src_plane = &x[c * plane..(c + 1) * plane];
        let (lo, hi) = valid_range(kw, g.pad[1], sw, g.in_w, g.out_w);
        for (i, drow) in dst.chunks_exact_mut(g.out_w).enumerate() {
            let Some(ih) = input_row(g, oh0 + i, kh) else {
                drow.fill(0.0);
                continue;
            };
            let src = &src_plane[ih * g.in_w..(ih + 1) * g.in_w];
            drow[..lo].fill(0.0);
            drow[hi..].fill(0.0);
            if lo < hi {
                let start = lo * sw + kw - g.pad[1];
                if sw == 1 {
                    drow[lo..hi].copy_from_slice(&src[start..start + hi - lo]);
                } else {
                    for (d, s) in drow[lo..hi].iter_mut().zip(src[start..].iter().step_by(sw)) {
                        *d = *s;
                    }
                }
            }
        }
    }
}

/// Bands of output rows: `(first row, rows)`.
fn bands(g: &ConvGeom) -> impl Iterator<Item = (usize, usize)> {
    let step = g.band_rows();
    let out_h = g.out_h;
    (0..out_h)
        .step_by(step)
        .map(move |oh0| (oh0, step.min(out_h - oh0)))
}

/// Which kernel a forward call runs, with what it prepared from the weights once per call.
enum Kernel {
    /// [`direct`], for few input channels.
    Direct(direct::Plan),
    /// [`winograd`], with the transformed weights.
    Winograd(Vec<f32>),
    /// Im2col + GEMM.
    Im2col,
}

impl Kernel {
    fn for_call(g: &ConvGeom, w: &[f32]) -> Self {
        if let Some(plan) = direct::plan(g, w) {
            Self::Direct(plan)
        } else if winograd::applies(g) {
            Self::Winograd(winograd::filter_transform(w, g.out_ch, g.in_ch))
        } else {
            Self::Im2col
        }
    }
}

/// One sample's forward pass into `y` (`[out_ch, p]`) by `kernel`.
#[allow(clippy::too_many_arguments)]
fn forward_sample(
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    kernel: &Kernel,
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
    s: &mut Scratch,
) {
    match kernel {
        Kernel::Direct(plan) => {
            direct::forward_sample(g, plan, x, (bias, relu), y, &mut s.direct);
            return;
        }
        Kernel::Winograd(u) => {
            winograd::forward_sample(g, x, u, (bias, relu), y, &mut s.wino);
            return;
        }
        Kernel::Im2col => {}
    }
    let col = &mut s.col;
    let (k, p) = (g.k(), g.p());
    let wm = MatRef::from_row_major_slice(w, g.out_ch, k);
    for (oh0, rows) in bands(g) {
        let band = rows * g.out_w;
        col.resize(k * band, 0.0);
        im2col(g, x, oh0, rows, col);
        let colm = MatRef::from_row_major_slice(&col[..k * band], k, band);
        let ym = MatMut::from_row_major_slice_mut(y, g.out_ch, p);
        matmul(
            ym.subcols_mut(oh0 * g.out_w, band),
            Accum::Replace,
            wm,
            colm,
            1.0,
            Par::Seq,
        );
        // Bias and ReLU while the band is still in cache.
        for (o, yrow) in y.chunks_exact_mut(p).enumerate() {
            let b = bias.map_or(0.0, |b| b[o]);
            let seg = &mut yrow[oh0 * g.out_w..oh0 * g.out_w + band];
            if relu {
                for v in seg.iter_mut() {
                    *v = (*v + b).max(0.0);
                }
            } else if b != 0.0 {
                for v in seg.iter_mut() {
                    *v += b;
                }
            }
        }
    }
}

/// Convolve `x` (`[batch, in_ch, in_h, in_w]`) with `w` (`[out_ch, in_ch, k_h, k_w]`), add `bias`
/// and optionally apply `ReLU`; return `[batch, out_ch, out_h, out_w]`.
#[must_use]
pub fn forward(g: &ConvGeom, x: &[f32], w: &[f32], bias: Option<&[f32]>, relu: bool) -> Vec<f32> {
    let mut y = vec![0.0; g.batch * g.y_len()];
    forward_into(g, x, w, bias, relu, &mut y);
    y
}

/// [`forward`] into `y`, whose old values are overwritten.
pub fn forward_into(
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) {
    assert_eq!(x.len(), g.batch * g.x_len(), "conv2d: input length");
    assert_eq!(w.len(), g.out_ch * g.k(), "conv2d: weight length");
    assert_eq!(y.len(), g.batch * g.y_len(), "conv2d: output length");
    if g.y_len() == 0 || g.x_len() == 0 {
        y.fill(0.0);
        return;
    }
    let kernel = Kernel::for_call(g, w);
    y.par_chunks_mut(g.y_len())
        .zip(x.par_chunks(g.x_len()))
        .for_each(|(y_n, x_n)| {
            SCRATCH.with_borrow_mut(|s| forward_sample(g, x_n, w, &kernel, bias, relu, y_n, s));
        });
}

/// [`forward_into`] followed by max-pooling each sample's output with window `size` into `pooled`
/// (`[batch, out_ch, out_h / size, out_w / size]`) while it is in cache. The unpooled output
/// only ever lives in a per-thread buffer: `codes` (one per pooled value) records which window
/// slot the backward pass routes the gradient to, or that the fused `ReLU` stops it (see
/// [`pool::forward_plane_codes`]).
#[allow(clippy::too_many_arguments)]
pub fn forward_pooled_into(
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    size: usize,
    pooled: &mut [f32],
    codes: &mut [u16],
) {
    assert!(
        (1..=pool::MAX_CODED_SIZE).contains(&size),
        "conv2d: pool window {size} out of range"
    );
    let pg = PoolGeom {
        planes: 1,
        in_h: g.out_h,
        in_w: g.out_w,
        size,
    };
    let plane = pg.out_h() * pg.out_w();
    let pl = g.out_ch * plane;
    assert_eq!(x.len(), g.batch * g.x_len(), "conv2d: input length");
    assert_eq!(w.len(), g.out_ch * g.k(), "conv2d: weight length");
    assert_eq!(pooled.len(), g.batch * pl, "conv2d: pooled output length");
    assert_eq!(codes.len(), pooled.len(), "conv2d: pool codes length");
    if g.y_len() == 0 || g.x_len() == 0 || pl == 0 {
        pooled.fill(0.0);
        codes.fill(pool::BLOCKED);
        return;
    }
    let kernel = Kernel::for_call(g, w);
    pooled
        .par_chunks_mut(pl)
        .zip(codes.par_chunks_mut(pl))
        .zip(x.par_chunks(g.x_len()))
        .for_each(|((p_n, c_n), x_n)| {
            SCRATCH.with_borrow_mut(|s| {
                let mut y = std::mem::take(&mut s.y);
                y.resize(g.y_len(), 0.0);
                forward_sample(g, x_n, w, &kernel, bias, relu, &mut y, s);
                let planes = y
                    .chunks_exact(g.p())
                    .zip(p_n.chunks_exact_mut(plane).zip(c_n.chunks_exact_mut(plane)));
                for (y_o, (p_o, c_o)) in planes {
                    pool::forward_plane_codes(&pg, y_o, p_o, c_o, relu);
                }
                s.y = y;
            });
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct 6-loop convolution used as the reference.
    fn naive(g: &ConvGeom, x: &[f32], w: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0; g.batch * g.y_len()];
        for n in 0..g.batch {
            for o in 0..g.out_ch {
                for oh in 0..g.out_h {
                    for ow in 0..g.out_w {
                        let mut s = 0.0;
                        for c in 0..g.in_ch {
                            for kh in 0..g.k_h {
                                for kw in 0..g.k_w {
                                    let ih = (oh * g.stride[0] + kh) as isize - g.pad[0] as isize;
                                    let iw = (ow * g.stride[1] + kw) as isize - g.pad[1] as isize;
                                    if ih < 0
                                        || iw < 0
                                        || ih >= g.in_h as isize
                                        || iw >= g.in_w as isize
                                    {
                                        continue;
                                    }
                                    s += x[((n * g.in_ch + c) * g.in_h + ih as usize) * g.in_w
                                        + iw as usize]
                                        * w[((o * g.in_ch + c) * g.k_h + kh) * g.k_w + kw];
                                }
                            }
                        }
                        y[((n * g.out_ch + o) * g.out_h + oh) * g.out_w + ow] = s;
                    }
                }
            }
        }
        y
    }

    #[test]
    fn forward_matches_direct_loops_with_stride_and_padding() {
        for (stride, pad, k) in [
            ([1, 1], [1, 1], 3),
            ([2, 2], [0, 0], 3),
            ([2, 1], [1, 0], 2),
            ([1, 2], [2, 1], 5),
        ] {
            let g = ConvGeom::new([2, 3, 9, 7], [4, 3, k, k], stride, pad);
            let x: Vec<f32> = (0..g.batch * g.x_len())
                .map(|i| ((i * 37 % 11) as f32) - 5.0)
                .collect();
            let w: Vec<f32> = (0..g.out_ch * g.k())
                .map(|i| ((i * 13 % 7) as f32) - 3.0)
                .collect();
            assert_eq!(forward(&g, &x, &w, None, false), naive(&g, &x, &w), "{g:?}");
        }
    }

    #[test]
    fn valid_range_keeps_input_index_in_bounds() {
        for (k, pad, stride, in_len) in [(0, 1, 1, 5), (2, 1, 1, 5), (0, 2, 2, 6), (4, 0, 2, 6)] {
            let out_len = (in_len + 2 * pad - 5) / stride + 1;
            let (lo, hi) = valid_range(k, pad, stride, in_len, out_len);
            for o in 0..out_len {
                let i = (o * stride + k) as isize - pad as isize;
                assert_eq!(
                    (lo..hi).contains(&o),
                    i >= 0 && i < in_len as isize,
                    "{k} {pad} {stride} {o}"
                );
            }
        }
    }

    #[test]
    fn a_pool_larger_than_the_output_passes_no_gradient() {
        // Conv output 1x5 pooled by 2 keeps nothing: the forward and backward must not panic,
        // and every gradient is zero.
        let g = ConvGeom::new([2, 1, 1, 5], [3, 1, 1, 1], [1, 1], [0, 0]);
        let x = vec![1.0; g.batch * g.x_len()];
        let w = vec![0.5; 3];
        let (mut pooled, mut codes) = (Vec::new(), Vec::new());
        forward_pooled_into(&g, &x, &w, None, true, 2, &mut pooled, &mut codes);
        let up = Upstream {
            dy: &[],
            out: None,
            codes: Some(&codes),
            relu: true,
            pool: 2,
        };
        let mut dx = vec![f32::NAN; x.len()];
        let needs = Needs {
            x: true,
            w: true,
            bias: true,
        };
        let (dw, db) = backward_into(&g, &x, &w, up, Some(&mut dx), needs);
        assert!(dx.iter().all(|&v| v == 0.0), "input gradient {dx:?}");
        assert!(dw.is_some_and(|d| d.iter().all(|&v| v == 0.0)));
        assert!(db.is_some_and(|d| d.iter().all(|&v| v == 0.0)));
    }
}
