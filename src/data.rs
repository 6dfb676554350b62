//! Image folder scan, decode, resize, augment and batches.
