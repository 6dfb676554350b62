//! Image folder scan, decode, resize, augment and batches.
//!
//! The pipeline follows Keras `flow_from_directory` + `ImageDataGenerator` exactly enough that
//! the tutorial's numbers carry over: PIL-style decode and NEAREST resize, the same affine
//! augmentation with bilinear sampling and nearest fill, and `rescale` applied last.

mod augment;
mod bench;
mod dataset;
mod decode;
mod rng;
mod scan;
mod synthetic;

use std::path::PathBuf;

use serde::{Serialize, Serializer};

pub use augment::{Transform, warp_into};
pub use bench::{BenchReport, bench_pipeline, write_bench_jpegs};
pub use dataset::{Batch, Batches, Dataset, Split};
pub use decode::{Decoded, ImageError, decode_resized, load_image, luma, resize_nearest};
pub use scan::{IMAGE_EXTENSIONS, Scan, has_image_extension, scan, split_folders_warning};
pub use synthetic::{SYNTHETIC_CLASSES, write_synthetic};

/// One image file and its class index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub path: PathBuf,
    pub label: usize,
}

/// A file that was found but could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    pub reason: String,
}

// serde's own `Path` impl fails on non-UTF-8 names; a run log must never fail over a file name.
fn lossy_path<S: Serializer>(path: &std::path::Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// A data problem, naming the folder or file and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read data folder {path}: {source}; check the path and its permissions")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data path {path} is not a folder; give a folder with one sub-folder per class")]
    NotAFolder { path: PathBuf },
    #[error(
        "found {found} class folder{plural} in {path}: a classifier needs at least two; put each class's images in its own sub-folder",
        plural = if *found == 1 { "" } else { "s" }
    )]
    TooFewClasses { path: PathBuf, found: usize },
    #[error(
        "class folder {path} has no readable image ({detail}); add .jpg/.jpeg/.png/.bmp/.gif/.webp/.tif images or remove the folder"
    )]
    EmptyClass { path: PathBuf, detail: String },
    #[error(
        "validation folder {val} has classes {val_classes:?} but training folder {train} has {train_classes:?}; both need the same class sub-folders"
    )]
    ClassMismatch {
        train: PathBuf,
        val: PathBuf,
        train_classes: Vec<String>,
        val_classes: Vec<String>,
    },
    #[error("image {path}: {reason}")]
    Image {
        path: PathBuf,
        reason: decode::ImageError,
    },
    #[error(
        "cannot write {path}: {reason}; check that the folder is writable and the disk has space"
    )]
    Write { path: PathBuf, reason: String },
}
