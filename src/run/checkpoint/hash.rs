//! The hashes of a checkpoint's files, written into its state and checked before its files are
//! used (against damage, not against an attacker).
//!
//! The files are hashed one after the other as one stream, each file's length mixed in after
//! its bytes; the value after the first file (the weights) is kept as well, so that dropping an
//! old checkpoint's optimizer state need not read the weights again.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// How a checkpoint's hashes were made: its state's `hash` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashKind {
    /// 64-bit little-endian words mixed one after another (multiply, shift, xor), the last one
    /// padded with zeros: the checkpoints written before XXH3 (their state has no `hash`
    /// field). One long dependency chain: about 40 ms for the tutorial net's 126 MB on the
    /// development machine, nine tenths of the checkpoint thread's CPU.
    #[default]
    Chain,
    /// XXH3-64 (the `xxhash-rust` crate) over each file's bytes and then its length as 8
    /// little-endian bytes: what checkpoints are written with now, several times faster.
    Xxh3,
}

impl HashKind {
    /// What new checkpoints are hashed with.
    pub const CURRENT: Self = Self::Xxh3;

    /// Whether this is the kind of checkpoints without a `hash` field (for serde, which then
    /// leaves the field out, as before).
    #[must_use]
    pub fn is_chain(&self) -> bool {
        *self == Self::Chain
    }
}

/// Start of the chain.
const FNV_BASIS: u64 = 0xCBF2_9CE4_8422_2325;

/// One step of the chain.
fn mix(h: u64, w: u64) -> u64 {
    let h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 29)
}

/// The chain `h` over `bytes` in little-endian 64-bit words, the last one padded with zeros.
fn mix_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let words = bytes.chunks_exact(8);
    let rest = words.remainder();
    for word in words {
        h = mix(h, u64::from_le_bytes(word.try_into().unwrap_or_default()));
    }
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(b));
    }
    h
}

/// A hash of a checkpoint's files under way.
#[derive(Clone)]
pub enum Hasher {
    Chain(u64),
    Xxh3(Box<xxhash_rust::xxh3::Xxh3Default>),
}

impl Hasher {
    #[must_use]
    pub fn new(kind: HashKind) -> Self {
        match kind {
            HashKind::Chain => Self::Chain(FNV_BASIS),
            HashKind::Xxh3 => Self::Xxh3(Box::default()),
        }
    }

    /// The next bytes of the file being hashed. Every call but a file's last must give a
    /// multiple of 8 bytes (the chain pads each call's last word).
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Chain(h) => *h = mix_bytes(*h, bytes),
            Self::Xxh3(x) => x.update(bytes),
        }
    }

    /// End the file being hashed, `len` bytes long; the hash of the files so far.
    pub fn end_file(&mut self, len: u64) -> u64 {
        match self {
            Self::Chain(h) => {
                *h = mix(*h, len);
                *h
            }
            Self::Xxh3(x) => {
                x.update(&len.to_le_bytes());
                x.digest()
            }
        }
    }
}

/// The hash of `files` in `dir`, read.
pub fn files_hash(dir: &Path, files: &[&str], kind: HashKind) -> std::io::Result<u64> {
    Ok(files_hashes(dir, files, kind)?
        .last()
        .copied()
        .unwrap_or_else(|| Hasher::new(kind).end_file(0)))
}

/// [`files_hash`] of each prefix of `files`, read once: the hash after the first file, after
/// the first two, and so on.
pub fn files_hashes(dir: &Path, files: &[&str], kind: HashKind) -> std::io::Result<Vec<u64>> {
    use std::io::Read as _;
    const CHUNK: u64 = 1 << 20; // a multiple of 8: only the last chunk has a partial word
    let mut h = Hasher::new(kind);
    let mut hashes = Vec::with_capacity(files.len());
    let mut chunk = Vec::with_capacity(CHUNK as usize);
    for file in files {
        let mut f = std::fs::File::open(dir.join(file))?;
        let mut len = 0u64;
        loop {
            chunk.clear();
            let n = (&mut f).take(CHUNK).read_to_end(&mut chunk)?;
            h.update(&chunk);
            len += n as u64;
            if (n as u64) < CHUNK {
                break;
            }
        }
        hashes.push(h.end_file(len));
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_in_memory_hashes_agree_for_both_kinds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a: Vec<u8> = (0..(3 << 20) + 13)
            .map(|i: u32| ((i * 7) >> 3) as u8)
            .collect();
        let b: Vec<u8> = (0..1001).map(|i: u32| (i * 13) as u8).collect();
        std::fs::write(dir.path().join("a"), &a).expect("write");
        std::fs::write(dir.path().join("b"), &b).expect("write");
        for kind in [HashKind::Chain, HashKind::Xxh3] {
            let mut h = Hasher::new(kind);
            h.update(&a);
            let first = h.end_file(a.len() as u64);
            h.update(&b);
            let both = h.end_file(b.len() as u64);
            let read = files_hashes(dir.path(), &["a", "b"], kind).expect("read");
            assert_eq!(read, vec![first, both], "{kind:?}");
            assert_ne!(first, both);
            // A byte changed anywhere shows.
            let mut c = b.clone();
            c[500] ^= 1;
            std::fs::write(dir.path().join("c"), &c).expect("write");
            assert_ne!(
                files_hash(dir.path(), &["a", "c"], kind).expect("read"),
                both,
                "{kind:?}"
            );
        }
        // The two kinds are different hashes.
        assert_ne!(
            files_hash(dir.path(), &["a"], HashKind::Chain).expect("read"),
            files_hash(dir.path(), &["a"], HashKind::Xxh3).expect("read")
        );
    }

    #[test]
    fn the_chain_is_the_one_older_checkpoints_were_written_with() {
        // Its value for a known input, computed by the code that wrote those checkpoints:
        // a change to the chain would make every older checkpoint look damaged.
        let mut h = Hasher::new(HashKind::Chain);
        h.update(b"convscope checkpoint");
        assert_eq!(h.end_file(20), CHAIN_OF_KNOWN_INPUT);
    }

    /// The chain of `b"convscope checkpoint"` (20 bytes) as one file.
    const CHAIN_OF_KNOWN_INPUT: u64 = 0x2825_CE45_A3EE_A1B7;
}
