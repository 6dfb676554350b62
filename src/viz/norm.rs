//! Normalisations from raw weights and activations to displayable values.
//!
//! Non-finite inputs never leak out: they are left out of the statistics and shown as the middle
//! value, so a diverged network draws flat instead of drawing garbage.

/// Min-max scale to 0..1 (the tutorial's filter normalisation); a constant input gives 0.5.
#[must_use]
pub fn min_max(values: &[f32]) -> Vec<f32> {
    let (lo, hi) = finite_range(values);
    let span = hi - lo;
    values
        .iter()
        .map(|&v| {
            if !v.is_finite() || !span.is_finite() || span <= 0.0 {
                0.5
            } else {
                ((v - lo) / span).clamp(0.0, 1.0)
            }
        })
        .collect()
}

/// Scale symmetrically about zero to 0..1 (`0.5 + v / (2 max|v|)`), for diverging colormaps.
#[must_use]
pub fn symmetric(values: &[f32]) -> Vec<f32> {
    let m = values
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0_f32, |m, v| m.max(v.abs()));
    values
        .iter()
        .map(|&v| {
            if !v.is_finite() || m <= 0.0 {
                0.5
            } else {
                (0.5 + v / (2.0 * m)).clamp(0.0, 1.0)
            }
        })
        .collect()
}

/// One channel after the tutorial's feature-map normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standardised {
    /// `clip((x - mean) / std * 64 + 128, 0, 255)` truncated to `u8`, like `astype('uint8')`.
    pub levels: Vec<u8>,
    /// The channel is constant (std of zero): drawn flat at 128.
    pub dead: bool,
}

/// Standardise one channel the way the tutorial does: `(x-mean)/std*64+128`, clipped to 0..255.
#[must_use]
pub fn standardise(values: &[f32]) -> Standardised {
    let (mut n, mut sum) = (0_usize, 0.0_f64);
    for &v in values.iter().filter(|v| v.is_finite()) {
        n += 1;
        sum += f64::from(v);
    }
    let mean = if n == 0 { 0.0 } else { sum / n as f64 };
    let var = if n == 0 {
        0.0
    } else {
        values
            .iter()
            .filter(|v| v.is_finite())
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n as f64
    };
    let std = var.sqrt();
    // Relative threshold: float noise on a constant channel must not read as structure.
    let dead = std.is_nan() || std <= 1e-6 * mean.abs().max(1e-6);
    let levels = values
        .iter()
        .map(|&v| {
            if dead || !v.is_finite() {
                128
            } else {
                ((f64::from(v) - mean) / std * 64.0 + 128.0).clamp(0.0, 255.0) as u8
            }
        })
        .collect();
    Standardised { levels, dead }
}

fn finite_range(values: &[f32]) -> (f32, f32) {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the expected values are exact
mod tests {
    use super::*;

    #[test]
    fn min_max_maps_extremes_to_0_and_1() {
        assert_eq!(min_max(&[-2.0, 0.0, 2.0]), vec![0.0, 0.5, 1.0]);
        assert_eq!(min_max(&[3.0, 3.0]), vec![0.5, 0.5]);
        assert_eq!(min_max(&[]), Vec::<f32>::new());
        assert_eq!(min_max(&[0.0, f32::NAN, 1.0]), vec![0.0, 0.5, 1.0]);
    }

    #[test]
    fn symmetric_keeps_zero_in_the_middle() {
        assert_eq!(symmetric(&[-1.0, 0.0, 0.5]), vec![0.0, 0.5, 0.75]);
        assert_eq!(symmetric(&[0.0, 0.0]), vec![0.5, 0.5]);
    }

    #[test]
    fn standardise_matches_the_tutorial_formula_and_clips() {
        // mean 0, std 1 -> x*64+128: -1 -> 64, 0 -> 128, 1 -> 192.
        let s = standardise(&[-1.0, 1.0, -1.0, 1.0, 0.0, 0.0]);
        assert!(!s.dead);
        // std of that input is sqrt(4/6); check against the formula directly.
        let std = (4.0_f64 / 6.0).sqrt();
        let expect = |x: f64| (x / std * 64.0 + 128.0).clamp(0.0, 255.0) as u8;
        assert_eq!(
            s.levels,
            vec![
                expect(-1.0),
                expect(1.0),
                expect(-1.0),
                expect(1.0),
                128,
                128
            ]
        );
        // One outlier among many zeros: far beyond 2 std, so clipped at 255.
        let mut v = vec![0.0; 99];
        v.push(100.0);
        let s = standardise(&v);
        assert_eq!(s.levels[99], 255);
        assert!(s.levels[..99].iter().all(|&l| l < 128));
    }

    #[test]
    fn constant_channel_is_flat_and_dead_never_nan() {
        for c in [0.0_f32, 5.0, -1e-3] {
            let s = standardise(&[c; 16]);
            assert!(s.dead);
            assert!(s.levels.iter().all(|&l| l == 128));
        }
        let s = standardise(&[f32::NAN, f32::INFINITY]);
        assert!(s.dead);
        assert_eq!(s.levels, vec![128, 128]);
    }
}
