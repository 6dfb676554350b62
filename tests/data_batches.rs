//! Splits, batches, determinism, resume, prefetch bound and late failures on real files.

#![allow(clippy::float_cmp)] // decoded pixel values are exact integers in f32

use std::fs;
use std::time::{Duration, Instant};

use convscope::config::{ColorMode, Config};
use convscope::data::{Batch, Dataset, Split, load_image, write_synthetic};

fn cfg() -> Config {
    let mut c = Config::default();
    c.data.image_size = [12, 16];
    c.data.val_split = 0.25;
    c.data.prefetch_batches = 2;
    c.train.seed = 5;
    c
}

fn data(per_class: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_synthetic(dir.path(), per_class, 20, 3).expect("synthetic");
    dir
}

fn all(ds: &Dataset, split: Split, epoch: usize, start: usize, bs: usize) -> Vec<Batch> {
    ds.batches(split, epoch, start, bs).collect()
}

#[test]
fn split_is_stratified_and_deterministic() {
    let dir = data(10);
    let ds = Dataset::open(dir.path(), None, &cfg()).expect("open");
    assert_eq!(ds.classes, vec!["blobs", "stripes"]);
    assert_eq!(ds.train.len() + ds.val.len(), 20);
    for label in 0..2 {
        // round(10 * 0.25) = 3 (2.5 rounds away from zero)
        assert_eq!(ds.val.iter().filter(|s| s.label == label).count(), 3);
    }
    let again = Dataset::open(dir.path(), None, &cfg()).expect("open");
    assert_eq!(ds.val, again.val);
    let mut other = cfg();
    other.train.seed = 6;
    let other = Dataset::open(dir.path(), None, &other).expect("open");
    assert_ne!(ds.val, other.val);
    assert_eq!(ds.batches_per_epoch(4), 14usize.div_ceil(4));
}

#[test]
fn batches_are_deterministic_and_resume_exactly() {
    let dir = data(10);
    let ds = Dataset::open(dir.path(), None, &cfg()).expect("open");
    let full = all(&ds, Split::Train, 3, 0, 4);
    assert_eq!(full.len(), ds.batches_per_epoch(4));
    assert_eq!(full.iter().map(|b| b.len).sum::<usize>(), ds.train.len());
    assert_eq!(full.last().expect("last").len, 14 % 4);
    for b in &full {
        assert_eq!(b.images.len(), b.len * 3 * 12 * 16);
        assert_eq!(b.labels.len(), b.len);
        assert!(b.images.iter().all(|v| (0.0..=1.0).contains(v)));
    }
    assert_eq!(all(&ds, Split::Train, 3, 0, 4), full);
    for k in [1, 3] {
        assert_eq!(
            all(&ds, Split::Train, 3, k, 4),
            full[k..].to_vec(),
            "start {k}"
        );
    }
    assert!(all(&ds, Split::Train, 3, 99, 4).is_empty());
    // Another epoch shuffles and augments differently.
    assert_ne!(all(&ds, Split::Train, 4, 0, 4), full);
    // Without the cache the same batches come out (decoded on the fly).
    let mut nc = cfg();
    nc.data.cache_mib = 0;
    let uncached = Dataset::open(dir.path(), None, &nc).expect("open");
    assert_eq!(uncached.cached_count(), 0);
    assert_eq!(ds.cached_count(), 20);
    assert_eq!(all(&uncached, Split::Train, 3, 0, 4), full);
}

#[test]
fn val_is_ordered_and_never_augmented() {
    let dir = data(6);
    let c = cfg();
    let ds = Dataset::open(dir.path(), None, &c).expect("open");
    let batches = all(&ds, Split::Val, 7, 0, 3);
    let images: Vec<f32> = batches.iter().flat_map(|b| b.images.clone()).collect();
    let labels: Vec<usize> = batches.iter().flat_map(|b| b.labels.clone()).collect();
    let want: Vec<f32> = ds
        .val
        .iter()
        .flat_map(|s| load_image(&s.path, &c).expect("load"))
        .collect();
    assert_eq!(images, want);
    assert_eq!(labels, ds.val.iter().map(|s| s.label).collect::<Vec<_>>());
    assert_eq!(all(&ds, Split::Val, 8, 0, 3), batches);
}

#[test]
fn no_augmentation_gives_the_validation_pixels() {
    let dir = data(4);
    let mut c = cfg();
    c.augment.enabled = false;
    c.data.val_split = 0.0;
    let ds = Dataset::open(dir.path(), None, &c).expect("open");
    let b = all(&ds, Split::Train, 0, 0, 64).remove(0);
    // Shuffled, so compare as a multiset of whole images.
    let size = 3 * 12 * 16;
    let mut got: Vec<Vec<u32>> = b
        .images
        .chunks(size)
        .map(|v| v.iter().map(|x| x.to_bits()).collect())
        .collect();
    let mut want: Vec<Vec<u32>> = ds
        .train
        .iter()
        .map(|s| {
            load_image(&s.path, &c)
                .expect("load")
                .iter()
                .map(|x| x.to_bits())
                .collect()
        })
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn grayscale_has_one_channel() {
    let dir = data(4);
    let mut c = cfg();
    c.data.color_mode = ColorMode::Grayscale;
    let ds = Dataset::open(dir.path(), None, &c).expect("open");
    let b = all(&ds, Split::Train, 0, 0, 2).remove(0);
    assert_eq!(b.images.len(), 2 * 12 * 16);
    assert_eq!(
        load_image(&ds.val[0].path, &c).expect("load").len(),
        12 * 16
    );
}

fn wait_until(mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_mins(1);
    while !f() {
        assert!(Instant::now() < deadline, "condition not reached");
        std::thread::yield_now();
    }
}

#[test]
fn prefetch_is_bounded_and_drop_stops_the_thread() {
    let dir = data(12);
    let mut c = cfg();
    c.data.val_split = 0.0;
    c.data.prefetch_batches = 3;
    let ds = Dataset::open(dir.path(), None, &c).expect("open");
    let mut it = ds.batches(Split::Train, 0, 0, 1);
    assert_eq!(it.len(), 24);
    // The producer fills up to the bound and then waits for the consumer.
    wait_until(|| it.prepared() >= 3);
    assert_eq!(it.prepared(), 3);
    for consumed in 1..=4 {
        it.next().expect("batch");
        wait_until(|| it.prepared() >= consumed + 3);
        assert_eq!(it.prepared(), consumed + 3);
    }
    assert_eq!(it.len(), 20);
    drop(it); // joins the thread; a hang here fails the test by timeout
}

#[test]
fn file_that_goes_bad_later_is_skipped_and_counted() {
    let dir = data(5);
    let mut c = cfg();
    c.data.cache_mib = 0;
    c.data.val_split = 0.0;
    let ds = Dataset::open(dir.path(), None, &c).expect("open");
    assert_eq!(ds.skipped_count(), 0);
    let victim = ds.train[2].path.clone();
    fs::write(&victim, b"gone bad").expect("overwrite");
    let batches = all(&ds, Split::Train, 0, 0, 3);
    assert_eq!(batches.len(), 4, "batch indices stay stable");
    assert_eq!(batches.iter().map(|b| b.len).sum::<usize>(), 9);
    assert_eq!(ds.skipped_count(), 1);
    // Seen again next epoch: still counted once.
    let _ = all(&ds, Split::Train, 1, 0, 3);
    assert_eq!(ds.skipped_count(), 1);
    assert_eq!(ds.late_skipped()[0].path, victim);
}

#[test]
fn validation_folder_must_have_the_same_classes() {
    let train = data(3);
    let val = tempfile::tempdir().expect("tempdir");
    write_synthetic(val.path(), 2, 20, 9).expect("synthetic");
    let ds = Dataset::open(train.path(), Some(val.path()), &cfg()).expect("open");
    assert_eq!((ds.train.len(), ds.val.len()), (6, 4));
    fs::rename(val.path().join("blobs"), val.path().join("spots")).expect("rename");
    let err = Dataset::open(train.path(), Some(val.path()), &cfg())
        .expect_err("mismatch")
        .to_string();
    assert!(err.contains(&train.path().display().to_string()), "{err}");
    assert!(err.contains(&val.path().display().to_string()), "{err}");
    assert!(err.contains("spots"), "{err}");
}

#[test]
fn folder_errors_name_the_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere");
    let err = Dataset::open(&missing, None, &cfg())
        .expect_err("missing")
        .to_string();
    assert!(err.contains(&missing.display().to_string()), "{err}");
    fs::create_dir(dir.path().join("only")).expect("mkdir");
    let err = Dataset::open(dir.path(), None, &cfg())
        .expect_err("one class")
        .to_string();
    assert!(err.contains("found 1 class folder in"), "{err}");
    assert!(
        err.contains("put each class's images in its own sub-folder"),
        "{err}"
    );
    let file = dir.path().join("file.png");
    fs::write(&file, b"x").expect("write");
    let err = Dataset::open(&file, None, &cfg())
        .expect_err("file")
        .to_string();
    assert!(err.contains("file.png"), "{err}");
}
