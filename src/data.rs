//! Image folder scan, decode, resize, augment and batches.
//! TEMPORARY interface placeholder until the data pipeline branch lands (not for release).

use std::path::{Path, PathBuf};

use crate::config::Config;

pub struct Sample {
    pub path: PathBuf,
    pub label: usize,
}
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{0}")]
    Other(String),
}
pub struct Dataset {
    pub classes: Vec<String>,
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
    pub skipped: Vec<Skipped>,
}
pub enum Split {
    Train,
    Val,
}
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<usize>,
    pub len: usize,
}
impl Dataset {
    pub fn open(_t: &Path, _v: Option<&Path>, _cfg: &Config) -> Result<Dataset, DataError> {
        Err(DataError::Other("pending".into()))
    }
    pub fn batches_per_epoch(&self, _b: usize) -> usize {
        0
    }
    pub fn batches(
        &self,
        _s: Split,
        _e: usize,
        _sb: usize,
        _b: usize,
    ) -> std::vec::IntoIter<Batch> {
        Vec::new().into_iter()
    }
    pub fn skipped_count(&self) -> usize {
        0
    }
}
pub fn load_image(_p: &Path, _cfg: &Config) -> Result<Vec<f32>, DataError> {
    Err(DataError::Other("pending".into()))
}
pub fn write_synthetic(_d: &Path, _n: usize, _s: u32, _seed: u64) -> Result<(), DataError> {
    Err(DataError::Other("pending".into()))
}
