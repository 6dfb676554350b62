//! The dataset: splits, validation of every file, the decoded-image cache, and batches
//! prepared ahead on a background thread.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rand::seq::SliceRandom;
use rayon::prelude::*;

use super::augment::{Transform, warp_into};
use super::decode::decode_resized_reason;
use super::rng::{Stream, rng};
use super::scan::scan;
use super::{DataError, Sample, Skipped};
use crate::config::Config;

/// Which part of the data a batch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Val,
}

/// A batch ready for the network.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `[len, channels, height, width]`, values already multiplied by `rescale`.
    pub images: Vec<f32>,
    pub labels: Vec<usize>,
    /// Each image's index in its split's sample list.
    pub indices: Vec<usize>,
    /// Number of images; below the batch size for the last batch or when a file went bad.
    pub len: usize,
}

struct Part {
    samples: Vec<Sample>,
    cache: Vec<Option<Box<[u8]>>>,
}

struct Inner {
    cfg: Config,
    train: Part,
    val: Part,
    /// Files that decoded at open but failed later (deleted, truncated meanwhile).
    late: Mutex<Vec<Skipped>>,
    late_paths: Mutex<HashSet<PathBuf>>,
}

/// Everything the trainer needs: classes, splits, bad files, and the decoded-image cache.
pub struct Dataset {
    pub classes: Vec<String>,
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
    pub skipped: Vec<Skipped>,
    /// Entries the scan left out quietly (hidden, other extensions, ...).
    pub ignored: usize,
    inner: Arc<Inner>,
    cached: usize,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("classes", &self.classes)
            .field("train", &self.train.len())
            .field("val", &self.val.len())
            .field("skipped", &self.skipped.len())
            .field("cached", &self.cached)
            .finish_non_exhaustive()
    }
}

// Per class: shuffle with the seed and take round(n * split) (at least one when the split is
// positive and the class has two or more images; never the whole class).
fn stratified_split(samples: Vec<Sample>, split: f32, seed: u64) -> (Vec<Sample>, Vec<Sample>) {
    let classes = samples.iter().map(|s| s.label + 1).max().unwrap_or(0);
    let mut is_val = vec![false; samples.len()];
    for class in 0..classes {
        let mut idx: Vec<usize> = (0..samples.len())
            .filter(|&i| samples[i].label == class)
            .collect();
        let n = idx.len();
        let mut k = (n as f64 * f64::from(split)).round() as usize;
        if split > 0.0 && n >= 2 {
            k = k.max(1);
        }
        k = k.min(n.saturating_sub(1));
        idx.shuffle(&mut rng(Stream::ValSplit, &[seed, class as u64]));
        for &i in &idx[..k] {
            is_val[i] = true;
        }
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (s, v) in samples.into_iter().zip(is_val) {
        if v { val.push(s) } else { train.push(s) }
    }
    (train, val)
}

impl Dataset {
    /// Scan `train_dir` (and `val_dir`, else split each class), decode every image once in
    /// parallel to validate it, and cache resized images up to `data.cache_mib`.
    pub fn open(train_dir: &Path, val_dir: Option<&Path>, cfg: &Config) -> Result<Self, DataError> {
        let scanned = scan(train_dir)?;
        let mut ignored = scanned.ignored;
        let (train, val) = match val_dir {
            Some(vdir) => {
                let v = scan(vdir)?;
                if v.classes != scanned.classes {
                    return Err(DataError::ClassMismatch {
                        train: train_dir.to_path_buf(),
                        val: vdir.to_path_buf(),
                        train_classes: scanned.classes,
                        val_classes: v.classes,
                    });
                }
                ignored += v.ignored;
                (scanned.samples, v.samples)
            }
            None => stratified_split(scanned.samples, cfg.data.val_split, cfg.train.seed),
        };
        let (train, val, skipped, cached) = load(train, val, cfg);
        check_classes(
            &scanned.classes,
            train_dir,
            val_dir.is_none(),
            [&train, &val],
            &skipped,
        )?;
        tracing::info!(
            train = train.samples.len(),
            val = val.samples.len(),
            skipped = skipped.len(),
            cached,
            "dataset opened from {}",
            train_dir.display()
        );
        Ok(Self {
            classes: scanned.classes,
            train: train.samples.clone(),
            val: val.samples.clone(),
            skipped,
            ignored,
            cached,
            inner: Arc::new(Inner {
                cfg: cfg.clone(),
                train,
                val,
                late: Mutex::new(Vec::new()),
                late_paths: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// Number of training batches in an epoch, the last partial batch included.
    #[must_use]
    pub fn batches_per_epoch(&self, batch_size: usize) -> usize {
        self.train.len().div_ceil(batch_size.max(1))
    }

    /// Number of batches of `split` in an epoch, the last partial batch included.
    #[must_use]
    pub fn batch_count(&self, split: Split, batch_size: usize) -> usize {
        self.inner
            .part(split)
            .samples
            .len()
            .div_ceil(batch_size.max(1))
    }

    /// Number of images held decoded in memory.
    #[must_use]
    pub fn cached_count(&self) -> usize {
        self.cached
    }

    /// Bad files: those found at open plus those that went bad later.
    #[must_use]
    pub fn skipped_count(&self) -> usize {
        self.skipped.len() + lock(&self.inner.late).len()
    }

    /// Files that decoded at open but failed in a later batch.
    #[must_use]
    pub fn late_skipped(&self) -> Vec<Skipped> {
        lock(&self.inner.late).clone()
    }

    /// Batches of one epoch from `start_batch` on, prepared ahead on a background thread.
    ///
    /// Train is shuffled by `(seed, epoch)` and augmented per image by
    /// `(seed, epoch, position)`; val keeps its order and is never augmented. At most
    /// `data.prefetch_batches` batches are ready at once; dropping the iterator stops the thread.
    /// Every batch index yields a batch (a file that went bad is left out of it and counted).
    #[must_use]
    pub fn batches(
        &self,
        split: Split,
        epoch: usize,
        start_batch: usize,
        batch_size: usize,
    ) -> Batches {
        let inner = Arc::clone(&self.inner);
        let bs = batch_size.max(1);
        let total = inner.part(split).samples.len().div_ceil(bs);
        let remaining = total.saturating_sub(start_batch);
        let (tx, rx) = sync_channel(inner.cfg.data.prefetch_batches.max(1) - 1);
        let stop = Arc::new(AtomicBool::new(false));
        let prepared = Arc::new(AtomicUsize::new(0));
        let job = Job {
            inner,
            split,
            epoch,
            batch_size: bs,
            stop: Arc::clone(&stop),
            prepared: Arc::clone(&prepared),
        };
        let handle = std::thread::Builder::new()
            .name("data-prefetch".into())
            .spawn(move || job.run(start_batch, total, &tx))
            .map_err(|e| tracing::error!("cannot start the data thread: {e}"))
            .ok();
        Batches {
            rx: handle.as_ref().map(|_| rx),
            stop,
            prepared,
            handle,
            remaining: if remaining > 0 && total > 0 {
                remaining
            } else {
                0
            },
        }
    }
}

/// Decode every image of `train` and `val` once, in parallel, to validate it, and cache the
/// resized images while `data.cache_mib` lasts; an image that fails is skipped (and logged).
/// Gives the two parts, the skipped files and how many images were cached.
fn load(train: Vec<Sample>, val: Vec<Sample>, cfg: &Config) -> (Part, Part, Vec<Skipped>, usize) {
    let [c, h, w] = cfg.input_shape();
    let image_bytes = (c * h * w) as u64;
    let mut budget = cfg.data.cache_mib.saturating_mul(1 << 20);
    let mut skipped = Vec::new();
    let mut cached = 0;
    let [train, val] = [train, val].map(|samples| {
        let mut keep = Vec::with_capacity(samples.len());
        let mut cache = Vec::with_capacity(samples.len());
        // Chunks bound the decoded images held at once when they do not all fit the cache.
        for chunk in samples.chunks(256) {
            let decoded: Vec<_> = chunk
                .par_iter()
                .map(|s| decode_resized_reason(&s.path, cfg))
                .collect();
            for (s, d) in chunk.iter().zip(decoded) {
                match d {
                    Ok(d) => {
                        keep.push(s.clone());
                        if budget >= image_bytes {
                            budget -= image_bytes;
                            cached += 1;
                            cache.push(Some(d.pixels.into_boxed_slice()));
                        } else {
                            cache.push(None);
                        }
                    }
                    Err(reason) => {
                        tracing::warn!(
                            "skipping image {}: {reason} (fix or remove the file; skipped files are listed in the run's classes.json)",
                            s.path.display()
                        );
                        skipped.push(Skipped {
                            path: s.path.clone(),
                            reason: reason.to_string(),
                        });
                    }
                }
            }
        }
        Part {
            samples: keep,
            cache,
        }
    });
    (train, val, skipped, cached)
}

/// Every class needs an image to train on (with no validation folder, one in either part):
/// a class without is an error saying why its images failed.
fn check_classes(
    classes: &[String],
    train_dir: &Path,
    split: bool,
    [train, val]: [&Part; 2],
    skipped: &[Skipped],
) -> Result<(), DataError> {
    for (label, name) in classes.iter().enumerate() {
        let good = train.samples.iter().any(|s| s.label == label)
            || (split && val.samples.iter().any(|s| s.label == label));
        if !good {
            let dir = train_dir.join(name);
            let bad: Vec<_> = skipped
                .iter()
                .filter(|s| s.path.starts_with(&dir))
                .collect();
            let detail = match bad.first() {
                Some(first) => format!(
                    "all {} image files failed to load, e.g. {}: {}",
                    bad.len(),
                    first.path.display(),
                    first.reason
                ),
                None => "no image left for training".into(),
            };
            return Err(DataError::EmptyClass { path: dir, detail });
        }
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    fn part(&self, split: Split) -> &Part {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        }
    }
}

struct Job {
    inner: Arc<Inner>,
    split: Split,
    epoch: usize,
    batch_size: usize,
    stop: Arc<AtomicBool>,
    prepared: Arc<AtomicUsize>,
}

impl Job {
    fn run(&self, start: usize, total: usize, tx: &SyncSender<Batch>) {
        let part = self.inner.part(self.split);
        let cfg = &self.inner.cfg;
        let n = part.samples.len();
        let mut order: Vec<usize> = (0..n).collect();
        if self.split == Split::Train {
            order.shuffle(&mut rng(
                Stream::Shuffle,
                &[cfg.train.seed, self.epoch as u64],
            ));
        }
        for b in start..total {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let positions = b * self.batch_size..((b + 1) * self.batch_size).min(n);
            let batch = self.build(positions, &order);
            self.prepared.fetch_add(1, Ordering::Relaxed);
            if tx.send(batch).is_err() {
                return; // the consumer is gone
            }
        }
    }

    fn build(&self, positions: std::ops::Range<usize>, order: &[usize]) -> Batch {
        let part = self.inner.part(self.split);
        let cfg = &self.inner.cfg;
        let [c, h, w] = cfg.input_shape();
        let size = c * h * w;
        let augment = self.split == Split::Train && !cfg.augment.is_identity();
        // Zeroed in parallel: one thread clearing a 17 MB batch would be most of the batch's time
        // on many cores (every element is overwritten below).
        let mut images = Vec::with_capacity(positions.len() * size);
        images.par_extend(rayon::iter::repeat_n(0.0f32, positions.len() * size));
        let ok: Vec<bool> = images
            .par_chunks_mut(size)
            .zip(positions.clone().into_par_iter())
            .map(|(out, pos)| {
                let idx = order[pos];
                let decoded;
                let pixels: &[u8] = if let Some(p) = &part.cache[idx] {
                    p
                } else {
                    match decode_resized_reason(&part.samples[idx].path, cfg) {
                        Ok(d) => {
                            decoded = d.pixels;
                            &decoded
                        }
                        Err(reason) => {
                            self.late_skip(&part.samples[idx].path, &reason);
                            return false;
                        }
                    }
                };
                let t = if augment {
                    let key = [cfg.train.seed, self.epoch as u64, pos as u64];
                    Transform::random(&cfg.augment, h, w, &mut rng(Stream::Augment, &key))
                } else {
                    Transform::IDENTITY
                };
                warp_into(pixels, (h, w), c, &t, cfg.data.rescale, out);
                true
            })
            .collect();
        let mut labels = Vec::with_capacity(ok.len());
        let mut indices = Vec::with_capacity(ok.len());
        let mut kept = 0;
        for (i, (&good, pos)) in ok.iter().zip(positions).enumerate() {
            if good {
                if kept != i {
                    images.copy_within(i * size..(i + 1) * size, kept * size);
                }
                labels.push(part.samples[order[pos]].label);
                indices.push(order[pos]);
                kept += 1;
            }
        }
        images.truncate(kept * size);
        Batch {
            images,
            labels,
            indices,
            len: kept,
        }
    }

    fn late_skip(&self, path: &Path, reason: &super::ImageError) {
        if lock(&self.inner.late_paths).insert(path.to_path_buf()) {
            tracing::warn!(
                "skipping image {} that went bad after opening: {reason}; fix or remove the file",
                path.display()
            );
            lock(&self.inner.late).push(Skipped {
                path: path.to_path_buf(),
                reason: reason.to_string(),
            });
        }
    }
}

/// The batches of one epoch; dropping it stops the background thread.
pub struct Batches {
    rx: Option<Receiver<Batch>>,
    stop: Arc<AtomicBool>,
    prepared: Arc<AtomicUsize>,
    handle: Option<JoinHandle<()>>,
    remaining: usize,
}

impl Batches {
    /// Batches built so far by the background thread (handed out or waiting).
    #[must_use]
    pub fn prepared(&self) -> usize {
        self.prepared.load(Ordering::Relaxed)
    }
}

impl Iterator for Batches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let batch = self.rx.as_ref()?.recv().ok()?;
        self.remaining = self.remaining.saturating_sub(1);
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Batches {}

impl Drop for Batches {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Closing the channel wakes a producer blocked in send; then it exits.
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(counts: &[usize]) -> Vec<Sample> {
        counts
            .iter()
            .enumerate()
            .flat_map(|(label, &n)| {
                (0..n).map(move |i| Sample {
                    path: PathBuf::from(format!("c{label}/{i}.png")),
                    label,
                })
            })
            .collect()
    }

    fn val_counts(counts: &[usize], split: f32) -> Vec<usize> {
        let (_, val) = stratified_split(samples(counts), split, 1);
        (0..counts.len())
            .map(|l| val.iter().filter(|s| s.label == l).count())
            .collect()
    }

    #[test]
    fn split_rounds_per_class_and_keeps_one_for_training() {
        assert_eq!(val_counts(&[100, 10, 3, 2, 1], 0.2), vec![20, 2, 1, 1, 0]);
        assert_eq!(val_counts(&[4, 4], 0.9), vec![3, 3]);
        assert_eq!(val_counts(&[5, 5], 0.0), vec![0, 0]);
        let (train, val) = stratified_split(samples(&[7, 9]), 0.3, 1);
        assert_eq!(train.len() + val.len(), 16);
    }

    #[test]
    fn dataset_can_move_to_the_trainer_thread() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Dataset>();
        send::<Batches>();
    }
}
