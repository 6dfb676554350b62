//! Bundled sample photos used as default feature-map probes.

/// `(file name, bytes)` of each bundled photo.
pub const SAMPLE_PHOTOS: &[(&str, &[u8])] = &[];
