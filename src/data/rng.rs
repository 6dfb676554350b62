//! Seeds derived from (seed, epoch, position): stable across platforms, threads and Rust versions.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Streams that must never share a seed.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub(crate) enum Stream {
    Shuffle = 1,
    Augment = 2,
    ValSplit = 3,
    Synthetic = 4,
}

// splitmix64 finaliser: a full-avalanche mix, unlike std's hasher it is specified forever.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash a stream tag and a list of integers into one seed.
pub(crate) fn mix(stream: Stream, parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(splitmix(stream as u64), |h, &p| splitmix(h ^ splitmix(p)))
}

/// A generator for one stream and key.
pub(crate) fn rng(stream: Stream, parts: &[u64]) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(stream, parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_streams_give_distinct_seeds() {
        let a = mix(Stream::Augment, &[42, 0, 1]);
        assert_ne!(a, mix(Stream::Augment, &[42, 1, 0]));
        assert_ne!(a, mix(Stream::Shuffle, &[42, 0, 1]));
        assert_eq!(a, mix(Stream::Augment, &[42, 0, 1]));
    }
}
