//! Max pooling kernels (kernel = stride = `size`, no padding, floor) on NCHW `f32` slices.
//!
//! Planes (`[h, w]` of one sample and channel) are independent, so rayon splits on planes. The
//! backward pass recomputes each window's arg-max from the input instead of keeping an index
//! tensor; the first maximum in row-major order wins, as in `PyTorch`.

// Kernel code names tensors as the formulas do: x, w, y, g (geometry), s (stride).
#![allow(clippy::many_single_char_names)]

use rayon::prelude::*;

/// Planes per rayon task, so small planes are not one task each.
const MIN_PLANES_PER_TASK: usize = 8;

/// Shapes of one max pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolGeom {
    /// `batch * channels`.
    pub planes: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Window side and stride.
    pub size: usize,
}

impl PoolGeom {
    /// Build the geometry from the input shape `[batch, channels, h, w]`.
    ///
    /// # Panics
    /// Panics when `size` is zero.
    #[must_use]
    pub fn new(x: [usize; 4], size: usize) -> Self {
        assert!(size > 0, "max_pool2d: size must be non-zero");
        Self {
            planes: x[0] * x[1],
            in_h: x[2],
            in_w: x[3],
            size,
        }
    }

    /// Output height.
    #[must_use]
    pub fn out_h(&self) -> usize {
        self.in_h / self.size
    }

    /// Output width.
    #[must_use]
    pub fn out_w(&self) -> usize {
        self.in_w / self.size
    }
}

/// Max of each window; returns `[planes, out_h, out_w]`.
#[must_use]
pub fn forward(g: &PoolGeom, x: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0; g.planes * g.out_h() * g.out_w()];
    forward_into(g, x, &mut y);
    y
}

/// [`forward`] into `y`, whose old values are overwritten.
pub fn forward_into(g: &PoolGeom, x: &[f32], y: &mut [f32]) {
    let (in_plane, out_plane) = (g.in_h * g.in_w, g.out_h() * g.out_w());
    assert_eq!(x.len(), g.planes * in_plane, "max_pool2d: input length");
    assert_eq!(y.len(), g.planes * out_plane, "max_pool2d: output length");
    if out_plane == 0 {
        return;
    }
    y.par_chunks_mut(out_plane)
        .zip(x.par_chunks(in_plane))
        .with_min_len(MIN_PLANES_PER_TASK)
        .for_each(|(y, x)| forward_plane(g, x, y));
}

fn forward_plane(g: &PoolGeom, x: &[f32], y: &mut [f32]) {
    let (s, w) = (g.size, g.in_w);
    for (oh, yrow) in y.chunks_exact_mut(g.out_w()).enumerate() {
        let rows = &x[oh * s * w..(oh * s + s) * w];
        if s == 2 {
            let (r0, r1) = rows.split_at(w);
            for ((out, a), b) in yrow
                .iter_mut()
                .zip(r0.chunks_exact(2))
                .zip(r1.chunks_exact(2))
            {
                *out = a[0].max(a[1]).max(b[0].max(b[1]));
            }
        } else {
            for (ow, out) in yrow.iter_mut().enumerate() {
                *out = rows
                    .chunks_exact(w)
                    .flat_map(|r| &r[ow * s..ow * s + s])
                    .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            }
        }
    }
}

/// Route each output gradient to its window's first maximum; returns `[planes, in_h, in_w]`.
#[must_use]
pub fn backward(g: &PoolGeom, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let mut dx = vec![0.0; x.len()];
    backward_into(g, x, dy, &mut dx);
    dx
}

/// [`backward`] into `dx`, whose old values are overwritten.
pub fn backward_into(g: &PoolGeom, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (in_plane, out_plane) = (g.in_h * g.in_w, g.out_h() * g.out_w());
    assert_eq!(
        x.len(),
        g.planes * in_plane,
        "max_pool2d backward: input length"
    );
    assert_eq!(
        dy.len(),
        g.planes * out_plane,
        "max_pool2d backward: gradient length"
    );
    assert_eq!(
        dx.len(),
        x.len(),
        "max_pool2d backward: input gradient length"
    );
    if out_plane == 0 {
        dx.fill(0.0);
        return;
    }
    dx.par_chunks_mut(in_plane)
        .zip(x.par_chunks(in_plane).zip(dy.par_chunks(out_plane)))
        .with_min_len(MIN_PLANES_PER_TASK)
        .for_each(|(dx, (x, dy))| backward_plane(g, x, dy, dx));
}

fn backward_plane(g: &PoolGeom, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (s, w) = (g.size, g.in_w);
    if s == 2 {
        // Every window slot is written; only the odd last row and column need zeros.
        zero_odd_edges(g, dx);
        backward_plane_2(w, x, dy, dx);
        return;
    }
    // Non-maxima and cells outside every window get zero.
    dx.fill(0.0);
    for (oh, dyrow) in dy.chunks_exact(g.out_w()).enumerate() {
        for (ow, &d) in dyrow.iter().enumerate() {
            let mut best = (oh * s) * w + ow * s;
            for i in oh * s..oh * s + s {
                for j in ow * s..ow * s + s {
                    // Strictly greater keeps the first maximum (NaN never wins, like `max`).
                    if x[i * w + j] > x[best] {
                        best = i * w + j;
                    }
                }
            }
            dx[best] = d;
        }
    }
}

/// Zero the last row and column of a plane that 2×2 windows leave out when its sides are odd.
fn zero_odd_edges(g: &PoolGeom, dx: &mut [f32]) {
    let w = g.in_w;
    if g.in_h % 2 == 1 {
        dx[(g.in_h - 1) * w..].fill(0.0);
    }
    if w % 2 == 1 {
        dx.chunks_exact_mut(w).for_each(|row| row[w - 1] = 0.0);
    }
}

/// Which later slots of a 2×2 window (`a`: top row, `b`: bottom row) beat everything before
/// them — the winner is the last `true`, slot 0 when none — and the winning value.
#[inline]
fn first_max_2(a: &[f32], b: &[f32]) -> (bool, bool, bool, f32) {
    let w1 = a[1] > a[0];
    let m1 = if w1 { a[1] } else { a[0] };
    let w2 = b[0] > m1;
    let m2 = if w2 { b[0] } else { m1 };
    let w3 = b[1] > m2;
    (w1, w2, w3, if w3 { b[1] } else { m2 })
}

/// Size-2 windows: walk two input rows at once and write all four gradient slots per window.
fn backward_plane_2(w: usize, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    for (oh, dyrow) in dy.chunks_exact(w / 2).enumerate() {
        let (r0, r1) = x[2 * oh * w..(2 * oh + 2) * w].split_at(w);
        let (d0, d1) = dx[2 * oh * w..(2 * oh + 2) * w].split_at_mut(w);
        let windows = r0.chunks_exact(2).zip(r1.chunks_exact(2));
        let slots = d0.chunks_exact_mut(2).zip(d1.chunks_exact_mut(2));
        for ((&d, (a, b)), (da, db)) in dyrow.iter().zip(windows).zip(slots) {
            // First maximum in row-major order, as in the general path.
            let mut best = (a[0], 0);
            for (v, i) in [(a[1], 1), (b[0], 2), (b[1], 3)] {
                if v > best.0 {
                    best = (v, i);
                }
            }
            da[0] = if best.1 == 0 { d } else { 0.0 };
            da[1] = if best.1 == 1 { d } else { 0.0 };
            db[0] = if best.1 == 2 { d } else { 0.0 };
            db[1] = if best.1 == 3 { d } else { 0.0 };
        }
    }
}

/// A window's code for [`backward_plane_codes`] when no gradient passes it (fused `ReLU` with a
/// maximum that is not positive).
pub(crate) const BLOCKED: u16 = u16::MAX;

/// Largest window side whose slots fit a `u16` code beside [`BLOCKED`].
pub(crate) const MAX_CODED_SIZE: usize = 255;

/// One plane's forward pass that also records, per window, which slot the gradient goes back to
/// (the first maximum in row-major order, as [`backward_into`] picks it), or [`BLOCKED`] when
/// `relu` and that maximum is not positive: the backward pass then needs no forward output.
pub(crate) fn forward_plane_codes(
    g: &PoolGeom,
    x: &[f32],
    y: &mut [f32],
    codes: &mut [u16],
    relu: bool,
) {
    let (s, w) = (g.size, g.in_w);
    debug_assert!(s <= MAX_CODED_SIZE);
    let ow_n = g.out_w();
    if s == 2 {
        for (oh, (yrow, crow)) in y
            .chunks_exact_mut(ow_n)
            .zip(codes.chunks_exact_mut(ow_n))
            .enumerate()
        {
            let (r0, r1) = x[2 * oh * w..(2 * oh + 2) * w].split_at(w);
            let windows = r0.chunks_exact(2).zip(r1.chunks_exact(2));
            for ((out, code), (a, b)) in yrow.iter_mut().zip(crow.iter_mut()).zip(windows) {
                let (w1, w2, w3, m) = first_max_2(a, b);
                *out = a[0].max(a[1]).max(b[0].max(b[1]));
                *code = if relu && m <= 0.0 {
                    BLOCKED
                } else if w3 {
                    3
                } else if w2 {
                    2
                } else {
                    u16::from(w1)
                };
            }
        }
        return;
    }
    for (oh, (yrow, crow)) in y
        .chunks_exact_mut(ow_n)
        .zip(codes.chunks_exact_mut(ow_n))
        .enumerate()
    {
        for (ow, (out, code)) in yrow.iter_mut().zip(crow.iter_mut()).enumerate() {
            let mut best = (x[oh * s * w + ow * s], 0u16);
            let mut m = best.0;
            for i in 0..s {
                let row = &x[(oh * s + i) * w + ow * s..(oh * s + i) * w + ow * s + s];
                for (j, &v) in row.iter().enumerate() {
                    // Strictly greater keeps the first maximum (NaN never wins), like the
                    // backward pass; the output is `max`, like the plain forward.
                    if v > best.0 {
                        best = (v, (i * s + j) as u16);
                    }
                    m = m.max(v);
                }
            }
            *out = m;
            *code = if relu && best.0 <= 0.0 {
                BLOCKED
            } else {
                best.1
            };
        }
    }
}

/// The input gradient of one plane from its window codes: each window's gradient goes to its
/// coded slot, everything else is zero. Returns the sum of what was written (the bias gradient
/// of a convolution feeding this pool).
pub(crate) fn backward_plane_codes(g: &PoolGeom, dy: &[f32], codes: &[u16], dx: &mut [f32]) -> f32 {
    let (s, w) = (g.size, g.in_w);
    let ow_n = g.out_w();
    if s == 2 {
        // Every window slot is written once; only the odd last row and column need zeros.
        zero_odd_edges(g, dx);
        for (oh, (dyrow, crow)) in dy
            .chunks_exact(ow_n)
            .zip(codes.chunks_exact(ow_n))
            .enumerate()
        {
            let (d0, d1) = dx[2 * oh * w..(2 * oh + 2) * w].split_at_mut(w);
            let slots = d0.chunks_exact_mut(2).zip(d1.chunks_exact_mut(2));
            for ((&d, &code), (da, db)) in dyrow.iter().zip(crow).zip(slots) {
                da[0] = if code == 0 { d } else { 0.0 };
                da[1] = if code == 1 { d } else { 0.0 };
                db[0] = if code == 2 { d } else { 0.0 };
                db[1] = if code == 3 { d } else { 0.0 };
            }
        }
        return code_sum(dy, codes, s, ow_n);
    }
    dx.fill(0.0);
    for (oh, (dyrow, crow)) in dy
        .chunks_exact(ow_n)
        .zip(codes.chunks_exact(ow_n))
        .enumerate()
    {
        for (ow, (&d, &code)) in dyrow.iter().zip(crow).enumerate() {
            if code != BLOCKED {
                let (i, j) = (usize::from(code) / s, usize::from(code) % s);
                dx[(oh * s + i) * w + ow * s + j] = d;
            }
        }
    }
    code_sum(dy, codes, s, ow_n)
}

/// The sum of the gradient that one plane's windows pass (every value whose code is not
/// [`BLOCKED`]): the bias gradient of a convolution feeding the pool. For 2×2 windows it is
/// four interleaved partial sums along each row (they vectorise), else one sum in order; either
/// way the same at any thread count.
pub(crate) fn code_sum(dy: &[f32], codes: &[u16], s: usize, ow_n: usize) -> f32 {
    if s == 2 {
        let mut sums = [0.0f32; 4];
        for (dyrow, crow) in dy.chunks_exact(ow_n).zip(codes.chunks_exact(ow_n)) {
            for (i, (&d, &code)) in dyrow.iter().zip(crow).enumerate() {
                sums[i % 4] += if code == BLOCKED { 0.0 } else { d };
            }
        }
        return sums.iter().sum();
    }
    dy.iter()
        .zip(codes)
        .filter(|&(_, &code)| code != BLOCKED)
        .fold(0.0, |sum, (&d, _)| sum + d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_takes_window_max_and_drops_odd_edge() {
        // One 3x5 plane, size 2: output 1x2, last row and column dropped.
        let x = [
            1.0, 5.0, 2.0, 0.0, 9.0, 3.0, 4.0, 7.0, 8.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0,
        ];
        let g = PoolGeom::new([1, 1, 3, 5], 2);
        assert_eq!(forward(&g, &x), vec![5.0, 8.0]);
        let dx = backward(&g, &x, &[1.0, 2.0]);
        let mut want = vec![0.0; 15];
        want[1] = 1.0;
        want[8] = 2.0;
        assert_eq!(dx, want);
    }

    #[test]
    fn size_three_picks_first_of_ties() {
        let x = [1.0; 9];
        let g = PoolGeom::new([1, 1, 3, 3], 3);
        assert_eq!(forward(&g, &x), vec![1.0]);
        assert_eq!(
            backward(&g, &x, &[4.0]),
            [4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    #[allow(clippy::float_cmp)] // whole numbers: every order of summing them is exact
    fn codes_route_like_the_plain_backward_through_the_relu() {
        // Few distinct values: many ties, many zero windows (what a ReLU output is like).
        for (h, w, size) in [(6, 8, 2), (7, 9, 2), (9, 7, 3), (5, 5, 1)] {
            let x: Vec<f32> = (0..h * w).map(|i| ((i * 7 + i / 3) % 4) as f32).collect();
            let g = PoolGeom::new([1, 1, h, w], size);
            let n = g.out_h() * g.out_w();
            let dy: Vec<f32> = (0..n).map(|i| i as f32 + 1.0).collect();
            for relu in [false, true] {
                let (mut y, mut codes) = (vec![0.0; n], vec![0; n]);
                forward_plane_codes(&g, &x, &mut y, &mut codes, relu);
                assert_eq!(y, forward(&g, &x), "{h}x{w}/{size}: pooled values");
                let mut dx = vec![f32::NAN; h * w];
                let sum = backward_plane_codes(&g, &dy, &codes, &mut dx);
                let mut want = backward(&g, &x, &dy);
                if relu {
                    for (d, &v) in want.iter_mut().zip(&x) {
                        if v <= 0.0 {
                            *d = 0.0;
                        }
                    }
                }
                assert_eq!(dx, want, "{h}x{w}/{size}, relu {relu}: input gradient");
                assert_eq!(
                    sum,
                    want.iter().sum::<f32>(),
                    "{h}x{w}/{size}: gradient sum"
                );
            }
        }
    }
}
