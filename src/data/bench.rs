//! Pipeline throughput: decode + resize + augment on real JPEGs, without and with the cache.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use image::codecs::jpeg::JpegEncoder;
use rayon::prelude::*;

use super::DataError;
use super::dataset::{Dataset, Split};
use super::synthetic::{SYNTHETIC_CLASSES, render};
use crate::config::Config;

/// Images per second of each pipeline stage.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    pub images: usize,
    /// Source JPEG size `[height, width]`.
    pub source: [u32; 2],
    /// Network input size `[height, width]`.
    pub target: [u32; 2],
    pub threads: usize,
    /// `Dataset::open`: decode + resize + validate every file (fills the cache when enabled).
    pub open_per_s: f64,
    /// One augmented training epoch decoding every file again (cache off).
    pub uncached_per_s: f64,
    /// One augmented training epoch from the cache (resize done, augment only).
    pub cached_per_s: f64,
    /// The tutorial's augmentation alone (one affine warp per image) on one thread.
    pub augment_per_s_one_thread: f64,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [sh, sw] = self.source;
        let [th, tw] = self.target;
        writeln!(
            f,
            "data pipeline: {} JPEGs {sw}x{sh} -> {tw}x{th}, {} threads",
            self.images, self.threads
        )?;
        writeln!(
            f,
            "  open (decode + resize + validate): {:8.0} images/s",
            self.open_per_s
        )?;
        writeln!(
            f,
            "  epoch without cache (decode + resize + augment): {:8.0} images/s",
            self.uncached_per_s
        )?;
        writeln!(
            f,
            "  epoch with cache (augment only): {:8.0} images/s",
            self.cached_per_s
        )?;
        write!(
            f,
            "  augmentation warp alone, one thread: {:8.0} images/s",
            self.augment_per_s_one_thread
        )
    }
}

/// Write `images` photo-like JPEGs of `[height, width]` into `dir` (two class folders).
pub fn write_bench_jpegs(dir: &Path, images: usize, [h, w]: [u32; 2]) -> Result<(), DataError> {
    let per_class = images.div_ceil(2).max(1);
    for name in SYNTHETIC_CLASSES {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).map_err(|e| DataError::Write {
            path: sub.clone(),
            reason: e.to_string(),
        })?;
    }
    (0..2 * per_class).into_par_iter().try_for_each(|k| {
        let (class, index) = (k / per_class, k % per_class);
        let path = dir
            .join(SYNTHETIC_CLASSES[class])
            .join(format!("{index:05}.jpg"));
        let img = render(class, index, w, h, 7);
        let write_err = |e: &dyn fmt::Display| DataError::Write {
            path: path.clone(),
            reason: e.to_string(),
        };
        let file = std::fs::File::create(&path).map_err(|e| write_err(&e))?;
        let mut out = std::io::BufWriter::new(file);
        JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .map_err(|e| write_err(&e))
    })
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn epoch_rate(ds: &Dataset, batch_size: usize) -> f64 {
    let start = Instant::now();
    let n: usize = ds
        .batches(Split::Train, 0, 0, batch_size)
        .map(|b| b.len)
        .sum();
    n as f64 / start.elapsed().as_secs_f64().max(1e-9)
}

/// Measure images/s of decode + resize + augment on `images` generated JPEGs of `source`
/// size (`[height, width]`, e.g. 375x500 -> the config's 150x150), without and with the cache.
pub fn bench_pipeline(
    images: usize,
    source: [u32; 2],
    cfg: &Config,
) -> Result<BenchReport, DataError> {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let name = format!("convscope-bench-{}-{run}", std::process::id());
    let dir = TempDir(std::env::temp_dir().join(name));
    let _ = std::fs::remove_dir_all(&dir.0); // a leftover from a killed run
    write_bench_jpegs(&dir.0, images, source)?;
    let mut cfg = cfg.clone();
    cfg.data.val_split = 0.0;
    cfg.augment.enabled = true;
    let batch = cfg.train.batch_size;

    let mut no_cache = cfg.clone();
    no_cache.data.cache_mib = 0;
    let start = Instant::now();
    let ds = Dataset::open(&dir.0, None, &no_cache)?;
    let open_per_s = ds.train.len() as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let uncached_per_s = epoch_rate(&ds, batch);
    drop(ds);

    let mut cached = cfg.clone();
    cached.data.cache_mib = cached.data.cache_mib.max(1024);
    let ds = Dataset::open(&dir.0, None, &cached)?;
    let cached_per_s = epoch_rate(&ds, batch);
    let augment_per_s_one_thread = warp_rate(&cfg);
    Ok(BenchReport {
        images: ds.train.len(),
        source,
        target: cfg.data.image_size,
        threads: rayon::current_num_threads(),
        open_per_s,
        uncached_per_s,
        cached_per_s,
        augment_per_s_one_thread,
    })
}

/// Images per second through the augmentation warp alone, on this thread, at the input size.
fn warp_rate(cfg: &Config) -> f64 {
    use rand::SeedableRng;
    let [c, h, w] = cfg.input_shape();
    let src: Vec<u8> = (0..h * w * c).map(|i| (i * 31 % 251) as u8).collect();
    let mut out = vec![0.0f32; src.len()];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let transforms: Vec<_> = (0..64)
        .map(|_| super::augment::Transform::random(&cfg.augment, h, w, &mut rng))
        .collect();
    let n = 400;
    let start = Instant::now();
    for i in 0..n {
        super::augment::warp_into(&src, (h, w), c, &transforms[i % 64], 1.0 / 255.0, &mut out);
    }
    n as f64 / start.elapsed().as_secs_f64().max(1e-9)
}
