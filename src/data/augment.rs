//! Keras `ImageDataGenerator.random_transform` + `apply_affine_transform`, in one pass.
//!
//! Keras builds `M = R(theta) · T(tx, ty) · Z(zx, zy)` in (row, col) coordinates, centres it
//! with the offset `(h/2 - 0.5, w/2 - 0.5)`, and samples the input at `M' · (r, c, 1)` like
//! `scipy.ndimage.affine_transform(order=1, mode='nearest')`; flips come after the warp.
//!
//! keras-preprocessing >= 1.1 also swaps the two axes of the centred matrix (`M' = P M P`)
//! before calling scipy. That swap turns the rotation sign, exchanges which axis `tx`/`ty` move
//! (so `width_shift_range` would shift rows) and exchanges the centre offsets. For the square
//! images and symmetric, equal ranges of the tutorial it gives exactly the same distribution of
//! transforms, so we keep the documented meaning of each key instead of the swap.

// Exact float comparisons are the point here (identity detection, bit-exact copies), and
// h, w, r, c, m, t are the names the Keras and scipy sources use.
#![allow(clippy::float_cmp, clippy::many_single_char_names)]

use rand::Rng;

use crate::config::AugmentConfig;

/// One random draw of the augmentation parameters (Keras `get_random_transform`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform {
    /// Rotation in radians.
    pub theta: f64,
    /// Keras `tx`: `height_shift_range` fraction times the image height, in pixels (rows).
    pub tx: f64,
    /// Keras `ty`: `width_shift_range` fraction times the image width, in pixels (columns).
    pub ty: f64,
    pub zx: f64,
    pub zy: f64,
    pub flip_horizontal: bool,
    pub flip_vertical: bool,
}

impl Transform {
    /// The transform that changes nothing.
    pub const IDENTITY: Self = Self {
        theta: 0.0,
        tx: 0.0,
        ty: 0.0,
        zx: 1.0,
        zy: 1.0,
        flip_horizontal: false,
        flip_vertical: false,
    };

    /// Draw a transform for an `h` x `w` image, in Keras's order; zero ranges draw nothing.
    pub fn random(aug: &AugmentConfig, h: usize, w: usize, rng: &mut impl Rng) -> Self {
        let mut uniform = |r: f32| -> f64 {
            if r > 0.0 {
                let r = f64::from(r);
                rng.random_range(-r..r)
            } else {
                0.0
            }
        };
        let theta = uniform(aug.rotation_range).to_radians();
        let tx = uniform(aug.height_shift_range) * h as f64;
        let ty = uniform(aug.width_shift_range) * w as f64;
        let (zx, zy) = if aug.zoom_range > 0.0 {
            (1.0 + uniform(aug.zoom_range), 1.0 + uniform(aug.zoom_range))
        } else {
            (1.0, 1.0)
        };
        let flip_horizontal = aug.horizontal_flip && rng.random::<f64>() < 0.5;
        let flip_vertical = aug.vertical_flip && rng.random::<f64>() < 0.5;
        Self {
            theta,
            tx,
            ty,
            zx,
            zy,
            flip_horizontal,
            flip_vertical,
        }
    }

    /// Whether the affine part is the identity (then the warp is skipped).
    #[must_use]
    pub fn affine_is_identity(&self) -> bool {
        self.theta == 0.0 && self.tx == 0.0 && self.ty == 0.0 && self.zx == 1.0 && self.zy == 1.0
    }

    /// The final `[2][3]` matrix in (row, col) pixel coordinates: output `(r, c)` samples the
    /// input at `m · (r, c, 1)`.
    #[must_use]
    pub fn matrix(&self, h: usize, w: usize) -> [[f64; 3]; 2] {
        let (s, c) = self.theta.sin_cos();
        let rot = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]];
        let shift = [[1.0, 0.0, self.tx], [0.0, 1.0, self.ty], [0.0, 0.0, 1.0]];
        let zoom = [[self.zx, 0.0, 0.0], [0.0, self.zy, 0.0], [0.0, 0.0, 1.0]];
        let m = mul(&mul(&rot, &shift), &zoom);
        // transform_matrix_offset_center(m, h, w)
        let (ox, oy) = (h as f64 / 2.0 - 0.5, w as f64 / 2.0 - 0.5);
        let offset = [[1.0, 0.0, ox], [0.0, 1.0, oy], [0.0, 0.0, 1.0]];
        let reset = [[1.0, 0.0, -ox], [0.0, 1.0, -oy], [0.0, 0.0, 1.0]];
        let m = mul(&mul(&offset, &m), &reset);
        [m[0], m[1]]
    }
}

fn mul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    out
}

/// Transform an interleaved u8 `[h, w, c]` image into planar `[c, h, w]` f32 times `rescale`.
///
/// Bilinear sampling with coordinates clamped to the edge (scipy `order=1, mode='nearest'`);
/// flips are applied after the warp; an identity affine part copies pixels bit-exactly.
pub fn warp_into(
    src: &[u8],
    (h, w): (usize, usize),
    channels: usize,
    t: &Transform,
    rescale: f32,
    out: &mut [f32],
) {
    let plane = h * w;
    debug_assert_eq!(src.len(), plane * channels);
    debug_assert_eq!(out.len(), plane * channels);
    let dst_index = |r: usize, c: usize| {
        let r = if t.flip_vertical { h - 1 - r } else { r };
        let c = if t.flip_horizontal { w - 1 - c } else { c };
        r * w + c
    };
    if t.affine_is_identity() {
        for r in 0..h {
            for c in 0..w {
                let d = dst_index(r, c);
                let s = (r * w + c) * channels;
                for ch in 0..channels {
                    out[ch * plane + d] = f32::from(src[s + ch]) * rescale;
                }
            }
        }
        return;
    }
    match channels {
        3 => warp_affine::<3>(src, (h, w), t, rescale, out),
        1 => warp_affine::<1>(src, (h, w), t, rescale, out),
        _ => unreachable!("images have 1 or 3 channels"),
    }
}

// The affine part, one pass per image; C is a constant so the channel loop unrolls. The loop
// is compiled for the widest instruction set there is (pulp: wider registers, and no call for
// the conversions); Rust never fuses a multiply and an add, so the numbers are the same on all.
fn warp_affine<const C: usize>(
    src: &[u8],
    (h, w): (usize, usize),
    t: &Transform,
    rescale: f32,
    out: &mut [f32],
) {
    pulp::Arch::new().dispatch(Warp::<C> {
        src,
        h,
        w,
        t,
        rescale,
        out,
    });
}

/// [`warp_affine`]'s arguments, for pulp.
struct Warp<'a, const C: usize> {
    src: &'a [u8],
    h: usize,
    w: usize,
    t: &'a Transform,
    rescale: f32,
    out: &'a mut [f32],
}

impl<const C: usize> pulp::WithSimd for Warp<'_, C> {
    type Output = ();

    // pulp compiles the loop once per instruction set: it must be inlined into each.
    #[expect(clippy::inline_always, reason = "pulp's per-instruction-set copies")]
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Self {
            src,
            h,
            w,
            t,
            rescale,
            out,
        } = self;
        let m = t.matrix(h, w);
        let mut chunks = out.chunks_exact_mut(h * w);
        let mut planes: [&mut [f32]; C] =
            std::array::from_fn(|_| chunks.next().expect("one output plane per channel"));
        let (hmax, wmax) = ((h - 1) as f64, (w - 1) as f64);
        // Same evaluation order as scipy: (m0 * r + m1 * c) + offset, per output pixel.
        let col_y: Vec<f64> = (0..w).map(|c| m[0][1] * c as f64).collect();
        let col_x: Vec<f64> = (0..w).map(|c| m[1][1] * c as f64).collect();
        // A row in three loops: the source corners and fractions (vectorised), the gathers of
        // the four corners' pixels, one word each (scalar, in output order, so that a
        // horizontal flip costs nothing later), and the interpolation (vectorised, contiguous).
        // One thread, `convscope bench`'s warp line: 3,470 images/s as one loop, 4,380-4,440
        // with the corners split out, 6,660-6,720 with all three. (Reading four bytes at once
        // for a pixel's word, or the four corners through separate slices: 6,200-6,300.)
        let (mut y0s, mut x0s) = (vec![0u32; w], vec![0u32; w]);
        let (mut fys, mut fxs) = (vec![0.0f32; w], vec![0.0f32; w]);
        let (mut fy_out, mut fx_out) = (vec![0.0f32; w], vec![0.0f32; w]);
        // Corner k (00, 01, 10, 11) of output pixel j at [k * w + j], its C bytes in one word
        // (channel ch at bits 8 ch..8 ch + 8).
        let mut corners = vec![0u32; 4 * w];
        for r in 0..h {
            let (row_y, row_x) = (m[0][0] * r as f64, m[1][0] * r as f64);
            let dst_row = if t.flip_vertical { h - 1 - r } else { r } * w;
            for ((((y0o, x0o), fyo), fxo), (cy, cx)) in y0s
                .iter_mut()
                .zip(&mut x0s)
                .zip(&mut fys)
                .zip(&mut fxs)
                .zip(col_y.iter().zip(&col_x))
            {
                let y = (row_y + cy + m[0][2]).clamp(0.0, hmax);
                let x = (row_x + cx + m[1][2]).clamp(0.0, wmax);
                // Both are clamped to >= 0, where truncation is floor: one instruction instead
                // of a libm call, and the same numbers.
                let (y0, x0) = (y as u32, x as u32);
                (*y0o, *x0o) = (y0, x0);
                *fyo = (y - f64::from(y0)) as f32;
                *fxo = (x - f64::from(x0)) as f32;
            }
            for j in 0..w {
                let c = if t.flip_horizontal { w - 1 - j } else { j };
                let (y0, x0) = (y0s[c] as usize, x0s[c] as usize);
                (fy_out[j], fx_out[j]) = (fys[c], fxs[c]);
                let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
                let at = [y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1];
                for (k, i) in at.into_iter().enumerate() {
                    let px: &[u8; C] = src[i * C..(i + 1) * C]
                        .try_into()
                        .expect("a pixel is C bytes");
                    corners[k * w + j] = px
                        .iter()
                        .enumerate()
                        .fold(0, |word, (ch, &v)| word | u32::from(v) << (8 * ch));
                }
            }
            for (ch, plane) in planes.iter_mut().enumerate() {
                let corner = |k: usize| &corners[k * w..][..w];
                let shift = 8 * ch as u32;
                let v = |word: u32| f32::from((word >> shift) as u8);
                let (p00, p01, p10, p11) = (corner(0), corner(1), corner(2), corner(3));
                let dst = &mut plane[dst_row..dst_row + w];
                let weights = fy_out.iter().zip(&fx_out);
                let tops = p00.iter().zip(p01);
                let bottoms = p10.iter().zip(p11);
                for (((d, (&fy, &fx)), (&a, &b)), (&e, &g)) in
                    dst.iter_mut().zip(weights).zip(tops).zip(bottoms)
                {
                    let top = (1.0 - fx) * v(a) + fx * v(b);
                    let bottom = (1.0 - fx) * v(e) + fx * v(g);
                    *d = ((1.0 - fy) * top + fy * bottom) * rescale;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::decode::to_planar;

    // A 3x4 single-channel image with all-distinct values.
    fn img() -> Vec<u8> {
        (0u8..12).map(|v| v * 10).collect()
    }

    fn run(src: &[u8], hw: (usize, usize), c: usize, t: &Transform) -> Vec<f32> {
        let mut out = vec![f32::NAN; src.len()];
        warp_into(src, hw, c, t, 1.0, &mut out);
        out
    }

    #[test]
    fn identity_is_bit_exact() {
        let src: Vec<u8> = (0..5 * 7 * 3).map(|v| (v * 37 % 256) as u8).collect();
        let mut want = vec![0.0; src.len()];
        to_planar(&src, 3, 1.0 / 255.0, &mut want);
        let mut got = vec![f32::NAN; src.len()];
        warp_into(&src, (5, 7), 3, &Transform::IDENTITY, 1.0 / 255.0, &mut got);
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        // Zero ranges draw the identity.
        let zero = AugmentConfig {
            enabled: true,
            rotation_range: 0.0,
            width_shift_range: 0.0,
            height_shift_range: 0.0,
            zoom_range: 0.0,
            horizontal_flip: false,
            vertical_flip: false,
        };
        let mut rng = crate::data::rng::rng(crate::data::rng::Stream::Augment, &[1]);
        assert_eq!(
            Transform::random(&zero, 5, 7, &mut rng),
            Transform::IDENTITY
        );
    }

    #[test]
    fn horizontal_flip_mirrors_exactly() {
        let t = Transform {
            flip_horizontal: true,
            ..Transform::IDENTITY
        };
        let out = run(&img(), (3, 4), 1, &t);
        assert_eq!(
            out,
            vec![30., 20., 10., 0., 70., 60., 50., 40., 110., 100., 90., 80.]
        );
        let t = Transform {
            flip_vertical: true,
            ..Transform::IDENTITY
        };
        let out = run(&img(), (3, 4), 1, &t);
        assert_eq!(&out[..4], &[80., 90., 100., 110.]);
    }

    #[test]
    fn rotation_90_maps_like_keras() {
        // 3x3, theta = +90 deg: output (r, c) samples o + R(theta) ((r, c) - o) with o = (1, 1),
        // i.e. input (2 - c, r): the left column, read bottom-up, becomes the top row.
        let src: Vec<u8> = (0u8..9).collect();
        let t = Transform {
            theta: 90f64.to_radians(),
            ..Transform::IDENTITY
        };
        let out = run(&src, (3, 3), 1, &t);
        let want = [6., 3., 0., 7., 4., 1., 8., 5., 2.];
        for (g, w) in out.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{out:?}");
        }
        // Size is kept for any angle, also non-square.
        let out = run(
            &img(),
            (3, 4),
            1,
            &Transform {
                theta: 0.3,
                ..Transform::IDENTITY
            },
        );
        assert_eq!(out.len(), 12);
        assert!(out.iter().all(|v| (0.0..=110.0).contains(v)));
    }

    #[test]
    fn rotation_centre_is_the_image_centre_for_non_square_images() {
        // 180 deg about (1, 2) on a 3x5 image: output (r, c) = input (2 - r, 4 - c).
        let src: Vec<u8> = (0u8..15).collect();
        let t = Transform {
            theta: std::f64::consts::PI,
            ..Transform::IDENTITY
        };
        let out = run(&src, (3, 5), 1, &t);
        for (i, v) in out.iter().enumerate() {
            assert!((v - (14 - i) as f32).abs() < 1e-4, "{out:?}");
        }
    }

    #[test]
    fn keras_axis_swap_is_the_same_distribution_on_square_images() {
        // Keras >= 1.1 uses P M P; on a square image that equals our matrix for the draw
        // (-theta, ty, tx, zy, zx), which is as likely as (theta, tx, ty, zx, zy).
        let t = Transform {
            theta: 0.4,
            tx: 3.0,
            ty: -7.0,
            zx: 1.2,
            zy: 0.8,
            ..Transform::IDENTITY
        };
        let m = t.matrix(9, 9);
        let swapped = [[m[1][1], m[1][0], m[1][2]], [m[0][1], m[0][0], m[0][2]]];
        let mirror = Transform {
            theta: -0.4,
            tx: -7.0,
            ty: 3.0,
            zx: 0.8,
            zy: 1.2,
            ..Transform::IDENTITY
        }
        .matrix(9, 9);
        for (a, b) in swapped.iter().flatten().zip(mirror.iter().flatten()) {
            assert!((a - b).abs() < 1e-12, "{swapped:?} vs {mirror:?}");
        }
    }

    #[test]
    fn shift_moves_content_and_fills_nearest() {
        // A 1-pixel bright dot at (2, 2) in a 5x5 image.
        let mut src = vec![0u8; 25];
        src[2 * 5 + 2] = 200;
        // Output (r, c) samples input (r + tx, c + ty): tx moves content up by tx rows.
        let t = Transform {
            tx: 1.0,
            ..Transform::IDENTITY
        };
        let out = run(&src, (5, 5), 1, &t);
        assert_eq!(out[5 + 2], 200.0, "{out:?}");
        assert_eq!(out.iter().filter(|&&v| v != 0.0).count(), 1);
        let t = Transform {
            ty: -2.0,
            ..Transform::IDENTITY
        };
        let out = run(&src, (5, 5), 1, &t);
        assert_eq!(out[2 * 5 + 4], 200.0, "{out:?}");
        // Nearest fill: shifting a gradient repeats the edge value.
        let grad: Vec<u8> = (0..5).flat_map(|_| [10u8, 20, 30, 40, 50]).collect();
        let t = Transform {
            ty: 2.0,
            ..Transform::IDENTITY
        };
        let out = run(&grad, (5, 5), 1, &t);
        assert_eq!(&out[..5], &[30., 40., 50., 50., 50.]);
        // Half-pixel shift interpolates bilinearly.
        let t = Transform {
            ty: 0.5,
            ..Transform::IDENTITY
        };
        let out = run(&grad, (5, 5), 1, &t);
        assert_eq!(&out[..5], &[15., 25., 35., 45., 50.]);
    }

    #[test]
    fn zoom_in_keeps_centre() {
        // zx = zy = 0.5 samples the middle half: the centre pixel of an odd image stays put.
        let src: Vec<u8> = (0u8..25).collect();
        let t = Transform {
            zx: 0.5,
            zy: 0.5,
            ..Transform::IDENTITY
        };
        let out = run(&src, (5, 5), 1, &t);
        assert_eq!(out[12], 12.0);
        // Corner (0,0) samples (1, 1) (= centre 2 + 0.5 * -2).
        assert_eq!(out[0], 6.0);
    }

    #[test]
    fn random_draws_stay_in_range() {
        let aug = AugmentConfig::default();
        let mut rng = crate::data::rng::rng(crate::data::rng::Stream::Augment, &[7]);
        for _ in 0..200 {
            let t = Transform::random(&aug, 150, 100, &mut rng);
            assert!(t.theta.abs() <= 45f64.to_radians());
            assert!(t.tx.abs() <= 0.15 * 150.0 && t.ty.abs() <= 0.15 * 100.0);
            assert!((0.7..=1.3).contains(&t.zx) && (0.7..=1.3).contains(&t.zy));
            assert!(!t.flip_vertical);
        }
    }

    /// The warp as first written (floor, per-channel indexing): the fast one must match it
    /// to the bit.
    fn reference(src: &[u8], (h, w): (usize, usize), t: &Transform) -> Vec<f32> {
        let m = t.matrix(h, w);
        let mut out = vec![0.0f32; h * w * 3];
        let (hmax, wmax) = ((h - 1) as f64, (w - 1) as f64);
        for r in 0..h {
            for c in 0..w {
                let y = (m[0][0] * r as f64 + m[0][1] * c as f64 + m[0][2]).clamp(0.0, hmax);
                let x = (m[1][0] * r as f64 + m[1][1] * c as f64 + m[1][2]).clamp(0.0, wmax);
                let (y0, x0) = (y.floor(), x.floor());
                let (fy, fx) = ((y - y0) as f32, (x - x0) as f32);
                let (y0, x0) = (y0 as usize, x0 as usize);
                let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
                let dr = if t.flip_vertical { h - 1 - r } else { r };
                let dc = if t.flip_horizontal { w - 1 - c } else { c };
                for ch in 0..3 {
                    let p = |yy: usize, xx: usize| f32::from(src[(yy * w + xx) * 3 + ch]);
                    let top = (1.0 - fx) * p(y0, x0) + fx * p(y0, x1);
                    let bottom = (1.0 - fx) * p(y1, x0) + fx * p(y1, x1);
                    out[ch * h * w + dr * w + dc] =
                        ((1.0 - fy) * top + fy * bottom) * (1.0 / 255.0);
                }
            }
        }
        out
    }

    #[test]
    fn fast_warp_matches_the_plain_one_to_the_bit() {
        use rand::SeedableRng;
        let aug = crate::config::Config::default().augment;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (h, w) = (23, 31);
        let src: Vec<u8> = (0..h * w * 3).map(|i| (i * 97 % 256) as u8).collect();
        for _ in 0..50 {
            let t = Transform::random(&aug, h, w, &mut rng);
            if t.affine_is_identity() {
                continue;
            }
            let mut out = vec![f32::NAN; src.len()];
            warp_into(&src, (h, w), 3, &t, 1.0 / 255.0, &mut out);
            let want = reference(&src, (h, w), &t);
            assert!(
                out.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{t:?}"
            );
            // One channel: the same numbers as any channel of a colour image whose three
            // channels are that one.
            let grey: Vec<u8> = src.iter().step_by(3).copied().collect();
            let triple: Vec<u8> = grey.iter().flat_map(|&v| [v; 3]).collect();
            let mut one = vec![f32::NAN; grey.len()];
            warp_into(&grey, (h, w), 1, &t, 1.0 / 255.0, &mut one);
            let want = reference(&triple, (h, w), &t);
            for plane in want.chunks_exact(h * w) {
                assert!(
                    one.iter()
                        .zip(plane)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{t:?}"
                );
            }
        }
    }
}
