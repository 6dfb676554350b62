//! Deterministic synthetic two-class dataset: oriented gratings vs soft blobs.
//!
//! Both classes draw their colours from the same distribution, so the mean colour says
//! nothing; what separates them is texture (edges at one orientation vs round blobs), exactly
//! what first-layer filters learn to see.

use std::f32::consts::PI;
use std::path::Path;

use image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::DataError;
use super::rng::{Stream, rng};

/// The class folders written by [`write_synthetic`], in index order.
pub const SYNTHETIC_CLASSES: [&str; 2] = ["blobs", "stripes"];

fn colour(rng: &mut ChaCha8Rng) -> [f32; 3] {
    [0, 1, 2].map(|_| rng.random_range(0.0..255.0))
}

// A colour clearly different from `other` (Euclidean distance above 120 of 441), so that no
// image of either class comes out as flat noise and the texture is always visible.
fn contrasting(rng: &mut ChaCha8Rng, other: [f32; 3]) -> [f32; 3] {
    loop {
        let c = colour(rng);
        let d2: f32 = (0..3).map(|k| (c[k] - other[k]).powi(2)).sum();
        if d2 > 120.0 * 120.0 {
            return c;
        }
    }
}

fn noise(rng: &mut ChaCha8Rng) -> f32 {
    // Sum of two uniforms: a cheap bell-shaped noise of about +-16 levels.
    rng.random_range(-8.0f32..8.0) + rng.random_range(-8.0f32..8.0)
}

// x, y, w, h, s, c: the usual names in raster math.
#[allow(clippy::many_single_char_names)]
/// Render a sinusoidal grating: random orientation, frequency, phase and two colours, plus noise.
pub(crate) fn stripes(w: u32, h: u32, rng: &mut ChaCha8Rng) -> RgbImage {
    let angle = rng.random_range(0.0..PI);
    let size = w.min(h) as f32;
    // 2.5 to 6 periods across the image: at 48-64 px that is an 8-25 px period.
    let freq = rng.random_range(2.5f32..6.0) / size;
    let phase = rng.random_range(0.0..2.0 * PI);
    let a = colour(rng);
    let b = contrasting(rng, a);
    let (s, c) = angle.sin_cos();
    RgbImage::from_fn(w, h, |x, y| {
        let t = 0.5 + 0.5 * (2.0 * PI * freq * (x as f32 * c + y as f32 * s) + phase).sin();
        image::Rgb(
            [0, 1, 2].map(|k| (a[k] + (b[k] - a[k]) * t + noise(rng)).clamp(0.0, 255.0) as u8),
        )
    })
}

/// Render a few soft Gaussian blobs of random colours on a random background, plus noise.
pub(crate) fn blobs(w: u32, h: u32, rng: &mut ChaCha8Rng) -> RgbImage {
    let size = w.min(h) as f32;
    let bg = colour(rng);
    let count = rng.random_range(2..=5);
    let spots: Vec<([f32; 2], f32, [f32; 3])> = (0..count)
        .map(|_| {
            let centre = [
                rng.random_range(0.0..w as f32),
                rng.random_range(0.0..h as f32),
            ];
            let sigma = rng.random_range(0.07f32..0.18) * size;
            (centre, sigma, contrasting(rng, bg))
        })
        .collect();
    RgbImage::from_fn(w, h, |x, y| {
        let mut px = bg;
        for &([cx, cy], sigma, col) in &spots {
            let d2 = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2);
            let alpha = (-d2 / (2.0 * sigma * sigma)).exp();
            for k in 0..3 {
                px[k] += (col[k] - px[k]) * alpha;
            }
        }
        image::Rgb(px.map(|v| (v + noise(rng)).clamp(0.0, 255.0) as u8))
    })
}

/// Render one synthetic image of class `class` (index into [`SYNTHETIC_CLASSES`]).
pub(crate) fn render(class: usize, index: usize, w: u32, h: u32, seed: u64) -> RgbImage {
    let mut r = rng(Stream::Synthetic, &[seed, class as u64, index as u64]);
    if SYNTHETIC_CLASSES[class] == "stripes" {
        stripes(w, h, &mut r)
    } else {
        blobs(w, h, &mut r)
    }
}

/// Write a deterministic synthetic two-class RGB dataset as PNGs: `DIR/stripes/*.png` and `DIR/blobs/*.png` (`per_class` each, `size` x `size`).
pub fn write_synthetic(
    dir: &Path,
    per_class: usize,
    size: u32,
    seed: u64,
) -> Result<(), DataError> {
    let size = size.max(1);
    for name in SYNTHETIC_CLASSES {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).map_err(|e| DataError::Write {
            path: sub.clone(),
            reason: e.to_string(),
        })?;
    }
    (0..SYNTHETIC_CLASSES.len() * per_class)
        .into_par_iter()
        .try_for_each(|k| {
            let (class, index) = (k / per_class, k % per_class);
            let name = SYNTHETIC_CLASSES[class];
            let path = dir.join(name).join(format!("{name}_{index:04}.png"));
            render(class, index, size, size, seed)
                .save(&path)
                .map_err(|e| DataError::Write {
                    path,
                    reason: e.to_string(),
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_not_separable_by_mean_colour() {
        assert_eq!(render(0, 3, 32, 32, 9), render(0, 3, 32, 32, 9));
        assert_ne!(render(0, 3, 32, 32, 9), render(0, 3, 32, 32, 10));
        let mean = |class| {
            let n = 200;
            let total: f64 = (0..n)
                .map(|i| {
                    let img = render(class, i, 24, 24, 1);
                    img.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>()
                        / img.as_raw().len() as f64
                })
                .sum();
            total / n as f64
        };
        let (a, b) = (mean(0), mean(1));
        assert!((a - b).abs() < 12.0, "class means {a} vs {b}");
    }

    #[test]
    fn writes_both_class_folders() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_synthetic(dir.path(), 3, 16, 1).expect("write");
        for name in SYNTHETIC_CLASSES {
            let n = std::fs::read_dir(dir.path().join(name))
                .expect("dir")
                .count();
            assert_eq!(n, 3);
        }
        let img = image::open(dir.path().join("stripes/stripes_0002.png")).expect("png");
        assert_eq!((img.width(), img.height()), (16, 16));
    }
}
