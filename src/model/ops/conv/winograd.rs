//! Winograd F(2×2, 3×3) for stride-1 3×3 convolutions: 16 multiplies per 2×2 output tile and
//! channel pair instead of 36 (2.25× fewer).
//!
//! Per sample and band of tile rows: the input tiles (4×4, overlapping by 2) are transformed to
//! `V = Bᵀ d B`, laid out `[16][in_ch][tiles]`; the weights once per call to `U = G g Gᵀ`,
//! `[16][out_ch][in_ch]`; 16 GEMMs `M[ξ] = U[ξ] · V[ξ]` (faer, as the im2col path) give
//! `[16][out_ch][tiles]`, and `Y = Aᵀ M A` the 2×2 outputs, with bias and `ReLU` while they are
//! in cache. The input gradient of such a convolution is the same kind of convolution of the
//! output gradient with the flipped, transposed weights ([`dx_weights`], [`dx_geom`]).

// Kernel code names tensors as the formulas do: x, w, y, g (geometry), u, v, m.
#![allow(clippy::many_single_char_names)]
// pulp compiles the product kernel once per instruction set; what it calls must be inlined.
#![allow(clippy::inline_always)]

use pulp::{Simd, WithSimd};

use super::{ConvGeom, Switch};

/// Floats of one band's transformed input and products together (`16 · (in + out) · tiles`):
/// 128 Ki floats (512 KiB) keeps them in L2 between the transforms and the GEMMs.
const BAND_FLOATS: usize = 128 * 1024;

/// Fewest input and output channels for which the transforms pay: the 16 GEMMs have
/// `in_ch` as their inner dimension (the tutorial's 3-channel first layer stays on im2col).
const MIN_CHANNELS: usize = 8;

/// Winograd on or off (`CONVSCOPE_WINOGRAD`).
static SWITCH: Switch = Switch::new("CONVSCOPE_WINOGRAD", false);

/// Use Winograd where it applies (`true`) or the other kernels (`false`, the default: on the
/// 2-core AVX-512 development machine the step ran faster without it, `winograd / pooled:
/// 0.87x` in `convscope bench --breakdown`, because faer's GEMMs there are already near peak
/// and the transforms cost memory traffic the GEMMs save in multiplies).
pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

/// Whether Winograd is on: [`set_enabled`], else `CONVSCOPE_WINOGRAD` (`1`/`true`/`yes`
/// turns it on), else off.
#[must_use]
pub fn enabled() -> bool {
    SWITCH.enabled()
}

/// Whether the forward pass of `g` runs here: [`fits`] and Winograd on.
#[must_use]
pub fn applies(g: &ConvGeom) -> bool {
    fits(g) && enabled()
}

/// Whether `g` is a convolution this kernel takes: 3×3, stride 1, padding at most 2, enough
/// channels.
#[must_use]
pub fn fits(g: &ConvGeom) -> bool {
    g.k_h == 3
        && g.k_w == 3
        && g.stride == [1, 1]
        && g.pad[0] <= 2
        && g.pad[1] <= 2
        && g.in_ch >= MIN_CHANNELS
        && g.out_ch >= MIN_CHANNELS
        && g.out_h > 0
        && g.out_w > 0
}

/// The convolution whose output is the input gradient of `g` (3×3, stride 1): the output
/// gradient convolved with [`dx_weights`] and padding `2 - pad`.
#[must_use]
pub fn dx_geom(g: &ConvGeom) -> Option<ConvGeom> {
    if g.k_h != 3 || g.k_w != 3 || g.stride != [1, 1] || g.pad[0] > 2 || g.pad[1] > 2 {
        return None;
    }
    Some(ConvGeom::new(
        [g.batch, g.out_ch, g.out_h, g.out_w],
        [g.in_ch, g.out_ch, 3, 3],
        [1, 1],
        [2 - g.pad[0], 2 - g.pad[1]],
    ))
}

/// `w` (`[out, in, 3, 3]`) flipped in both spatial axes with in and out swapped.
#[must_use]
pub fn dx_weights(w: &[f32], out_ch: usize, in_ch: usize) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for o in 0..out_ch {
        for c in 0..in_ch {
            let src = &w[(o * in_ch + c) * 9..(o * in_ch + c + 1) * 9];
            let dst = &mut t[(c * out_ch + o) * 9..(c * out_ch + o + 1) * 9];
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
    }
    t
}

/// `U = G g Gᵀ` of every 3×3 filter of `w` (`[out, in, 3, 3]`), laid out `[16][out][in]`.
#[must_use]
pub fn filter_transform(w: &[f32], out_ch: usize, in_ch: usize) -> Vec<f32> {
    let oc = out_ch * in_ch;
    assert_eq!(w.len(), oc * 9, "winograd: weight length");
    let mut u = vec![0.0; 16 * oc];
    let g4 = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    for (i, f) in w.chunks_exact(9).enumerate() {
        // Columns of G g (4×3), then each of its rows times Gᵀ.
        let cols: [[f32; 4]; 3] = std::array::from_fn(|j| g4(f[j], f[3 + j], f[6 + j]));
        for r in 0..4 {
            for (l, v) in g4(cols[0][r], cols[1][r], cols[2][r])
                .into_iter()
                .enumerate()
            {
                u[(r * 4 + l) * oc + i] = v;
            }
        }
    }
    u
}

/// Tiles per band row are padded to a multiple of this, so every row of `V` and `M` is whole
/// SIMD vectors (two of 16 lanes).
const COL_ALIGN: usize = 32;

/// Per-thread buffers of [`forward_sample`].
#[derive(Default)]
pub struct Buffers {
    v: Vec<f32>,
    m: Vec<f32>,
    rows: Vec<f32>,
    out: Vec<f32>,
}

/// One sample's convolution `x` (`[in_ch, in_h, in_w]`) → `y` (`[out_ch, out_h, out_w]`, every
/// value overwritten) with the transformed weights `u` ([`filter_transform`]) and the epilogue
/// `(bias, relu)`; `g` must satisfy [`applies`] but for the switch.
pub fn forward_sample(
    g: &ConvGeom,
    x: &[f32],
    u: &[f32],
    epilogue: (Option<&[f32]>, bool),
    y: &mut [f32],
    b: &mut Buffers,
) {
    assert_eq!(x.len(), g.x_len(), "winograd: input length");
    assert_eq!(y.len(), g.y_len(), "winograd: output length");
    assert_eq!(u.len(), 16 * g.out_ch * g.in_ch, "winograd: weight length");
    // Everything runs inside one dispatch, so the transforms' plain loops are vectorised for
    // the widest instruction set too, not only the products.
    pulp::Arch::new().dispatch(Sample {
        g,
        x,
        u,
        epilogue,
        y,
        b,
    });
}

struct Sample<'a> {
    g: &'a ConvGeom,
    x: &'a [f32],
    u: &'a [f32],
    epilogue: (Option<&'a [f32]>, bool),
    y: &'a mut [f32],
    b: &'a mut Buffers,
}

impl WithSimd for Sample<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            g,
            x,
            u,
            epilogue,
            y,
            b,
        } = self;
        let (c_n, o_n) = (g.in_ch, g.out_ch);
        let (th, tw) = (g.out_h.div_ceil(2), g.out_w.div_ceil(2));
        let band_rows = (BAND_FLOATS / (16 * (c_n + o_n) * tw)).clamp(1, th);
        let p = g.out_h * g.out_w;
        for ti0 in (0..th).step_by(band_rows) {
            let rows = band_rows.min(th - ti0);
            let nt = rows * tw;
            let ntp = nt.next_multiple_of(COL_ALIGN);
            b.v.resize(16 * c_n * ntp, 0.0);
            b.m.resize(16 * o_n * ntp, 0.0);
            input_transform(g, x, ti0, rows, ntp, &mut b.v, &mut b.rows);
            Products {
                u,
                v: &b.v,
                m: &mut b.m,
                o_n,
                c_n,
                ntp,
            }
            .with_simd(simd);
            for o in 0..o_n {
                let bias = epilogue.0.map_or(0.0, |b| b[o]);
                let m_o: [&[f32]; 16] = std::array::from_fn(|xi| {
                    let at = (xi * o_n + o) * ntp;
                    &b.m[at..at + nt]
                });
                let y_o = &mut y[o * p..(o + 1) * p];
                output_transform(g, ti0, rows, m_o, (bias, epilogue.1), y_o, &mut b.out);
            }
        }
    }
}

/// `m[ξ] = u[ξ] · v[ξ]` for the 16 ξ: `u` `[16][o_n][c_n]`, `v` `[16][c_n][ntp]`, `m`
/// `[16][o_n][ntp]`, `ntp` a multiple of [`COL_ALIGN`].
struct Products<'a> {
    u: &'a [f32],
    v: &'a [f32],
    m: &'a mut [f32],
    o_n: usize,
    c_n: usize,
    ntp: usize,
}

impl WithSimd for Products<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            u,
            v,
            m,
            o_n,
            c_n,
            ntp,
        } = self;
        let lanes = std::mem::size_of::<S::f32s>() / std::mem::size_of::<f32>();
        let nv = ntp / lanes;
        for xi in 0..16 {
            let uu = &u[xi * o_n * c_n..(xi + 1) * o_n * c_n];
            let vv = S::as_simd_f32s(&v[xi * c_n * ntp..(xi + 1) * c_n * ntp]).0;
            let mm = S::as_mut_simd_f32s(&mut m[xi * o_n * ntp..(xi + 1) * o_n * ntp]).0;
            let mut o = 0;
            while o < o_n {
                // Eight output rows × two vectors of accumulators fit 32 registers, four fit 16.
                if o_n - o >= 8 && lanes >= 16 {
                    block::<S, 8>(simd, uu, vv, mm, o, c_n, nv);
                    o += 8;
                } else if o_n - o >= 4 {
                    block::<S, 4>(simd, uu, vv, mm, o, c_n, nv);
                    o += 4;
                } else {
                    block::<S, 1>(simd, uu, vv, mm, o, c_n, nv);
                    o += 1;
                }
            }
        }
    }
}

/// Rows `o0..o0 + BO` of one product, two vectors of columns at a time with the sums in
/// registers over all of `c_n`.
#[inline(always)]
fn block<S: Simd, const BO: usize>(
    simd: S,
    u: &[f32],
    v: &[S::f32s],
    m: &mut [S::f32s],
    o0: usize,
    c_n: usize,
    nv: usize,
) {
    let zero = simd.splat_f32s(0.0);
    let urows: [&[f32]; BO] = std::array::from_fn(|a| &u[(o0 + a) * c_n..(o0 + a + 1) * c_n]);
    for j in (0..nv).step_by(2) {
        let mut acc = [[zero; 2]; BO];
        for c in 0..c_n {
            let (v0, v1) = (v[c * nv + j], v[c * nv + j + 1]);
            for a in 0..BO {
                let w = simd.splat_f32s(urows[a][c]);
                acc[a][0] = simd.mul_add_f32s(w, v0, acc[a][0]);
                acc[a][1] = simd.mul_add_f32s(w, v1, acc[a][1]);
            }
        }
        for (a, pair) in acc.iter().enumerate() {
            m[(o0 + a) * nv + j] = pair[0];
            m[(o0 + a) * nv + j + 1] = pair[1];
        }
    }
}

/// `V = Bᵀ d B` of the tiles in tile rows `ti0..ti0 + rows` of every channel, into `v`
/// (`[16][in_ch][ntp]`, tile `r * tw + j`).
#[inline(always)]
fn input_transform(
    g: &ConvGeom,
    x: &[f32],
    ti0: usize,
    rows: usize,
    ntp: usize,
    v: &mut [f32],
    buf: &mut Vec<f32>,
) {
    let tw = g.out_w.div_ceil(2);
    // A padded input row (columns `-pad .. 2 * tw + 2 - pad`) split into its even and odd
    // columns, so every step below reads and writes contiguous runs.
    let half = tw + 1;
    let plane = g.in_h * g.in_w;
    buf.resize(16 * half, 0.0);
    let (d, comb) = buf.split_at_mut(8 * half);
    // Where input column 0 lands: (even or odd half, index) and column 1 likewise.
    let p1 = g.pad[1];
    let (first, second) = if p1.is_multiple_of(2) {
        ((0, p1 / 2), (1, p1 / 2))
    } else {
        ((1, p1 / 2), (0, p1.div_ceil(2)))
    };
    for c in 0..g.in_ch {
        let x_c = &x[c * plane..(c + 1) * plane];
        for r in 0..rows {
            let ti = ti0 + r;
            for (k, dk) in d.chunks_exact_mut(2 * half).enumerate() {
                dk.fill(0.0);
                let Some(ih) = (2 * ti + k).checked_sub(g.pad[0]).filter(|&ih| ih < g.in_h) else {
                    continue;
                };
                let src = &x_c[ih * g.in_w..(ih + 1) * g.in_w];
                let (even, odd) = dk.split_at_mut(half);
                for ((parity, at), skip) in [(first, 0), (second, 1)] {
                    let dst = if parity == 0 { &mut *even } else { &mut *odd };
                    for (dv, sv) in dst[at..].iter_mut().zip(src.iter().skip(skip).step_by(2)) {
                        *dv = *sv;
                    }
                }
            }
            // Bᵀ d: the four rows combined, evens and odds alike.
            for half_i in 0..2 {
                let row = |k: usize| &d[k * 2 * half + half_i * half..][..half];
                let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
                let mut out = comb.chunks_exact_mut(half).skip(half_i).step_by(2);
                let mut next = || out.next().unwrap_or_default();
                let (c0, c1, c2, c3) = (next(), next(), next(), next());
                for i in 0..half {
                    c0[i] = r0[i] - r2[i];
                    c1[i] = r1[i] + r2[i];
                    c2[i] = r2[i] - r1[i];
                    c3[i] = r1[i] - r3[i];
                }
            }
            // Then · B: the columns of each tile (even 2j, odd 2j+1, even 2j+2, odd 2j+3).
            for (k, ck) in comb.chunks_exact(2 * half).enumerate() {
                let (e, o) = ck.split_at(half);
                let at = |l: usize| ((k * 4 + l) * g.in_ch + c) * ntp + r * tw;
                let (e0, e1, o0, o1) = (&e[..tw], &e[1..], &o[..tw], &o[1..]);
                for (dv, (a, b)) in v[at(0)..at(0) + tw].iter_mut().zip(e0.iter().zip(e1)) {
                    *dv = a - b;
                }
                for (dv, (a, b)) in v[at(1)..at(1) + tw].iter_mut().zip(o0.iter().zip(e1)) {
                    *dv = a + b;
                }
                for (dv, (a, b)) in v[at(2)..at(2) + tw].iter_mut().zip(e1.iter().zip(o0)) {
                    *dv = a - b;
                }
                for (dv, (a, b)) in v[at(3)..at(3) + tw].iter_mut().zip(o0.iter().zip(o1)) {
                    *dv = a - b;
                }
            }
        }
    }
}

/// `Y = Aᵀ M A` for the band's tiles of one output channel (`m[ξ]`: the band's products, tile
/// `r * tw + j`), then `+ bias` and optionally `ReLU`, into rows `2 ti0 ..` of `y_o`.
#[inline(always)]
fn output_transform(
    g: &ConvGeom,
    ti0: usize,
    rows: usize,
    m: [&[f32]; 16],
    (bias, relu): (f32, bool),
    y_o: &mut [f32],
    out: &mut Vec<f32>,
) {
    let nt = m[0].len();
    out.resize(4 * nt, 0.0);
    let m: [&[f32]; 16] = std::array::from_fn(|xi| &m[xi][..nt]);
    let (top, bottom) = out.split_at_mut(2 * nt);
    let (y00, y01) = top.split_at_mut(nt);
    let (y10, y11) = bottom.split_at_mut(nt);
    // NaN stays NaN without the `ReLU` (a divergence must show), as in the im2col path.
    let act = |v: f32| if relu { (v + bias).max(0.0) } else { v + bias };
    for i in 0..nt {
        let e: [f32; 16] = std::array::from_fn(|xi| m[xi][i]);
        // Aᵀ M: per column l, rows 0 + 1 + 2 and 1 - 2 - 3; then the same along the columns.
        let a: [f32; 4] = std::array::from_fn(|l| e[l] + e[4 + l] + e[8 + l]);
        let b: [f32; 4] = std::array::from_fn(|l| e[4 + l] - e[8 + l] - e[12 + l]);
        y00[i] = act(a[0] + a[1] + a[2]);
        y01[i] = act(a[1] - a[2] - a[3]);
        y10[i] = act(b[0] + b[1] + b[2]);
        y11[i] = act(b[1] - b[2] - b[3]);
    }
    // Interleave each tile's 2×2 into the output rows, cut at the edge.
    let tw = nt / rows.max(1);
    let w = g.out_w;
    for r in 0..rows {
        for (k, (left, right)) in [(&*y00, &*y01), (&*y10, &*y11)].into_iter().enumerate() {
            let oh = 2 * (ti0 + r) + k;
            if oh >= g.out_h {
                continue;
            }
            let yrow = &mut y_o[oh * w..(oh + 1) * w];
            let (left, right) = (&left[r * tw..(r + 1) * tw], &right[r * tw..(r + 1) * tw]);
            let mut pairs = yrow.chunks_exact_mut(2);
            for (pair, (lv, rv)) in pairs.by_ref().zip(left.iter().zip(right)) {
                pair[0] = *lv;
                pair[1] = *rv;
            }
            if let ([last], Some(lv)) = (pairs.into_remainder(), left.last()) {
                *last = *lv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i + seed) * 7919 % 2003) as f32 / 1001.5) - 1.0)
            .collect()
    }

    /// The direct sum `y[o, oh, ow] = Σ x[c, oh + kh - pad, ow + kw - pad] · w[o, c, kh, kw]`
    /// for one sample, in f64.
    fn direct(g: &ConvGeom, x: &[f32], w: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0; g.y_len()];
        for o in 0..g.out_ch {
            for oh in 0..g.out_h {
                for ow in 0..g.out_w {
                    let mut s = 0.0f64;
                    for c in 0..g.in_ch {
                        for kh in 0..3 {
                            for kw in 0..3 {
                                let ih = (oh + kh).checked_sub(g.pad[0]).filter(|&i| i < g.in_h);
                                let iw = (ow + kw).checked_sub(g.pad[1]).filter(|&i| i < g.in_w);
                                if let (Some(ih), Some(iw)) = (ih, iw) {
                                    s += f64::from(x[(c * g.in_h + ih) * g.in_w + iw])
                                        * f64::from(w[((o * g.in_ch + c) * 3 + kh) * 3 + kw]);
                                }
                            }
                        }
                    }
                    y[(o * g.out_h + oh) * g.out_w + ow] = s as f32;
                }
            }
        }
        y
    }

    fn max_err(got: &[f32], want: &[f32]) -> f32 {
        assert_eq!(got.len(), want.len());
        got.iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn matches_the_direct_sum_for_odd_sizes_and_every_padding() {
        // Odd and even sides, tiles cut by the edge, bands of one tile row and of several.
        for (c, o, h, w, pad) in [
            (8, 8, 9, 11, 1),
            (9, 12, 7, 6, 0),
            (8, 10, 5, 3, 2),
            (16, 8, 1, 1, 1),
            (32, 64, 37, 37, 1),
            (8, 9, 2, 40, 1),
        ] {
            let g = ConvGeom::new([1, c, h, w], [o, c, 3, 3], [1, 1], [pad, pad]);
            let (x, wt) = (values(g.x_len(), 1), values(o * c * 9, 2));
            let bias = values(o, 3);
            let u = filter_transform(&wt, o, c);
            let mut b = Buffers::default();
            for relu in [false, true] {
                let mut y = vec![f32::NAN; g.y_len()];
                forward_sample(&g, &x, &u, (Some(&bias), relu), &mut y, &mut b);
                let mut want = direct(&g, &x, &wt);
                for (v, bo) in want.chunks_exact_mut(g.p().max(1)).zip(&bias) {
                    for v in v {
                        *v += bo;
                        if relu {
                            *v = v.max(0.0);
                        }
                    }
                }
                let err = max_err(&y, &want);
                assert!(err < 1e-4, "{g:?} relu {relu}: error {err}");
            }
        }
    }

    #[test]
    fn the_input_gradient_is_the_flipped_transposed_convolution() {
        // dx[c, i] = Σ_o Σ_k dy[o, i - k + pad] · w[o, c, k], checked by the adjoint identity
        // <conv(x), dy> = <x, dx> against the direct forward.
        for (c, o, h, w, pad) in [(8, 12, 9, 7, 1), (10, 8, 6, 5, 0), (8, 8, 4, 7, 2)] {
            let g = ConvGeom::new([1, c, h, w], [o, c, 3, 3], [1, 1], [pad, pad]);
            let (wt, dy) = (values(o * c * 9, 5), values(g.y_len(), 6));
            let gt = dx_geom(&g).expect("3x3 stride 1");
            assert_eq!((gt.out_h, gt.out_w, gt.out_ch), (h, w, c));
            let u = filter_transform(&dx_weights(&wt, o, c), c, o);
            let mut dx = vec![f32::NAN; g.x_len()];
            forward_sample(
                &gt,
                &dy,
                &u,
                (None, false),
                &mut dx,
                &mut Buffers::default(),
            );
            // Each input position's gradient, by the direct sum.
            let mut want = vec![0.0f32; g.x_len()];
            for (i, slot) in want.iter_mut().enumerate() {
                let mut unit = vec![0.0; g.x_len()];
                unit[i] = 1.0;
                let y = direct(&g, &unit, &wt);
                *slot = y.iter().zip(&dy).map(|(a, b)| a * b).sum();
            }
            let err = max_err(&dx, &want);
            assert!(err < 1e-4, "{g:?}: error {err}");
        }
    }

    #[test]
    fn fits_only_stride_one_three_by_three_with_enough_channels() {
        let g = |c, o, k, s, p| ConvGeom::new([1, c, 9, 9], [o, c, k, k], [s, s], [p, p]);
        assert!(fits(&g(16, 32, 3, 1, 1)));
        assert!(!fits(&g(3, 16, 3, 1, 1)), "the 3-channel first layer");
        assert!(!fits(&g(16, 32, 3, 2, 1)), "stride 2");
        assert!(!fits(&g(16, 32, 5, 1, 2)), "5x5");
        assert!(dx_geom(&g(16, 32, 3, 1, 1)).is_some());
        assert!(dx_geom(&g(16, 32, 3, 1, 3)).is_none(), "padding 3");
    }
}
