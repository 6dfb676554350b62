//! Dropout for the flex backend: the mask comes from a counter-based hash of (seed, index), so it
//! is made in parallel, is the same whatever the thread count, and is never stored: the
//! backward pass makes it again from the seed. burn's own dropout draws a Bernoulli tensor on one
//! thread, then multiplies and divides in two more passes; for the tutorial net's 9.5 M
//! activations per batch of 64 that was 190 ms of a 420 ms step on 16 cores.

use rayon::prelude::*;

/// Elements per rayon task.
const CHUNK: usize = 1 << 15;

/// SplitMix64's finaliser: a well-mixed 64-bit hash of `x`.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `dst[i] = src[i] / keep` where element `i` is kept (probability `keep`), else 0.
///
/// The same `seed` gives the same mask, so the backward pass calls this on the output
/// gradient to get the input gradient.
pub fn apply(src: &[f32], dst: &mut [f32], keep: f32, seed: u64) {
    assert_eq!(src.len(), dst.len(), "dropout: lengths");
    assert!(
        keep > 0.0 && keep <= 1.0,
        "dropout: keep probability {keep}"
    );
    let scale = 1.0 / keep;
    // Kept when a uniform 32-bit draw is below keep * 2^32.
    let threshold = (f64::from(keep) * 4_294_967_296.0) as u64;
    let key = mix(seed ^ 0x9e37_79b9_7f4a_7c15);
    dst.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .enumerate()
        .for_each(|(c, (d, s))| {
            let base = (c * CHUNK) as u64;
            // One hash gives two 32-bit draws.
            for (j, (d2, s2)) in d.chunks_mut(2).zip(s.chunks(2)).enumerate() {
                let h = mix(key.wrapping_add(base / 2 + j as u64));
                let draws = [h & 0xffff_ffff, h >> 32];
                for ((d, &s), r) in d2.iter_mut().zip(s2).zip(draws) {
                    *d = if r < threshold { s * scale } else { 0.0 };
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_about_keep_and_scales_what_it_keeps() {
        let n = 200_001;
        let x: Vec<f32> = (0..n).map(|i| 1.0 + (i % 7) as f32).collect();
        let mut y = vec![0.0; n];
        apply(&x, &mut y, 0.75, 42);
        let kept = y.iter().filter(|&&v| v != 0.0).count();
        let frac = kept as f64 / n as f64;
        assert!((frac - 0.75).abs() < 0.01, "kept {frac}");
        for (a, b) in x.iter().zip(&y) {
            assert!(*b == 0.0 || (b - a / 0.75).abs() < 1e-5);
        }
        // Same seed, same mask; another seed, another mask.
        let mut again = vec![0.0; n];
        apply(&x, &mut again, 0.75, 42);
        assert_eq!(y, again);
        apply(&x, &mut again, 0.75, 43);
        assert_ne!(y, again);
    }

    #[test]
    fn the_mask_does_not_depend_on_the_thread_count() {
        let x = vec![1.0f32; 3 * CHUNK + 5];
        let mut many = vec![0.0; x.len()];
        apply(&x, &mut many, 0.5, 7);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        let mut single = vec![0.0; x.len()];
        one.install(|| apply(&x, &mut single, 0.5, 7));
        assert_eq!(many, single);
    }

    #[test]
    fn neighbouring_elements_are_independent() {
        // Pairs share one hash: their two halves must not agree more than chance.
        let x = vec![1.0f32; 100_000];
        let mut y = vec![0.0; x.len()];
        apply(&x, &mut y, 0.5, 3);
        let same = y
            .chunks(2)
            .filter(|p| (p[0] == 0.0) == (p[1] == 0.0))
            .count();
        let frac = same as f64 / 50_000.0;
        assert!((frac - 0.5).abs() < 0.02, "pairs agree {frac}");
    }
}
