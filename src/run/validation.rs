//! The per-example validation record: for every validation image and every epoch, its label,
//! predicted class, loss and class probabilities, kept in the run directory.
//!
//! Layout, under `RUN/validation/`:
//! - `images-<id>.json`: the validation image list (class names, then path and label per image),
//!   written once per distinct list; `<id>` is a 64-bit FNV-1a hash of its content, so a resume
//!   whose re-scanned folder differs writes a new list and older epochs keep theirs.
//! - `epoch-NNNN.bin`: one epoch, written atomically (a re-run epoch overwrites its own file).
//!   A 32-byte header (little-endian): magic `CSVR`, version `u16`, classes `u16`, rows `u32`,
//!   epoch `u32`, list id `u64`, reserved `u64`; then per row ([`row_bytes`]): image index `u32`,
//!   label `u16`, predicted class `u16`, loss `f32`, and the probabilities of classes
//!   `0..classes-1` as `u16` (`round(p * 65535)`; the last class is one minus the others);
//!   then an FNV-1a 64 checksum of everything before it.
//!
//! A 2-class set of 25,000 images takes 14 bytes a row: 350 kB an epoch, 17.5 MB over 50
//! epochs; 10 classes take 30 bytes a row (37.5 MB).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::Sample;
use crate::run::{RunError, io_err, write_atomic};

/// The folder of the record inside a run directory.
pub const DIR: &str = "validation";
const MAGIC: &[u8; 4] = b"CSVR";
const VERSION: u16 = 1;
const HEADER_BYTES: usize = 32;
const CHECKSUM_BYTES: usize = 8;
/// More than any record takes (10 million rows of 10 classes); a bigger file is not ours.
const MAX_FILE_BYTES: u64 = 1 << 30;
const QUANT: f32 = 65_535.0;

/// What is wrong with a record file; the reader names it instead of panicking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("is not a convscope validation record (bad magic)")]
    BadMagic,
    #[error("is a validation record of version {0}, this convscope reads version {VERSION}")]
    Version(u16),
    #[error("is cut short: {found} bytes where its header promises {expected} (a torn write?)")]
    Truncated { expected: usize, found: usize },
    #[error("has {extra} bytes more than its header promises")]
    TooLong { extra: usize },
    #[error("fails its checksum (the file was damaged)")]
    Checksum,
    #[error("row {row}: {what}")]
    BadRow { row: usize, what: String },
}

/// One validation image in one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Index into the epoch's image list.
    pub index: u32,
    pub label: u16,
    pub predicted: u16,
    pub loss: f32,
    /// One probability per class.
    pub probs: Vec<f32>,
}

impl Row {
    #[must_use]
    pub fn correct(&self) -> bool {
        self.label == self.predicted
    }
    /// The probability given to the predicted class.
    #[must_use]
    pub fn confidence(&self) -> f32 {
        self.probs
            .get(usize::from(self.predicted))
            .copied()
            .unwrap_or(0.0)
    }
}

/// One epoch's record.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    pub epoch: u32,
    pub classes: u16,
    /// Which image list the rows index (see [`read_list`]).
    pub list_id: u64,
    pub rows: Vec<Row>,
}

/// One image of the validation list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedImage {
    pub path: String,
    pub label: usize,
}

/// The validation image list the epoch files index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageList {
    pub classes: Vec<String>,
    pub images: Vec<ListedImage>,
}

impl ImageList {
    /// The list of a dataset's validation samples.
    #[must_use]
    pub fn of(classes: &[String], samples: &[Sample]) -> Self {
        Self {
            classes: classes.to_vec(),
            images: samples
                .iter()
                .map(|s| ListedImage {
                    // Absolute, so that a viewer started elsewhere finds the images.
                    path: std::path::absolute(&s.path)
                        .unwrap_or_else(|_| s.path.clone())
                        .to_string_lossy()
                        .into_owned(),
                    label: s.label,
                })
                .collect(),
        }
    }

    /// The content hash that names the list's file.
    #[must_use]
    pub fn id(&self) -> u64 {
        let mut h = Fnv::new();
        for c in &self.classes {
            h.write(c.as_bytes());
            h.write(&[0]);
        }
        h.write(&[1]);
        for i in &self.images {
            h.write(i.path.as_bytes());
            h.write(&[0]);
            h.write(&(i.label as u64).to_le_bytes());
        }
        h.finish()
    }
}

/// Bytes one row takes with `classes` classes.
#[must_use]
pub const fn row_bytes(classes: usize) -> usize {
    4 + 2 + 2 + 4 + 2 * classes.saturating_sub(1)
}

/// Bytes an epoch file takes.
#[must_use]
pub const fn file_bytes(classes: usize, rows: usize) -> usize {
    HEADER_BYTES + rows * row_bytes(classes) + CHECKSUM_BYTES
}

/// FNV-1a, 64 bits: names image lists and checks epoch files.
struct Fnv(u64);

impl Fnv {
    const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    const fn finish(&self) -> u64 {
        self.0
    }
}

fn quantise(p: f32) -> u16 {
    // The cast saturates; NaN becomes 0.
    (p.clamp(0.0, 1.0) * QUANT).round() as u16
}

/// Rows from one validation batch: `logits` is `[rows, outputs]` row-major; one output is a
/// sigmoid head (p1 = sigmoid(z), predicted 1 when z > 0), more are a softmax. `labels` and
/// `indices` (into the image list) give one entry per row.
#[must_use]
pub fn rows_from_logits(
    logits: &[f32],
    outputs: usize,
    labels: &[usize],
    indices: &[usize],
) -> Vec<Row> {
    let outputs = outputs.max(1);
    logits
        .chunks_exact(outputs)
        .zip(labels.iter().zip(indices))
        .map(|(z, (&label, &index))| {
            let (probs, loss) = if outputs == 1 {
                let z = z[0];
                let p1 = 1.0 / (1.0 + (-z).exp());
                // Binary cross-entropy, numerically stable: max(z,0) - z*y + ln(1 + e^-|z|).
                let y = if label == 1 { 1.0 } else { 0.0 };
                let loss = z.max(0.0) - z * y + (-z.abs()).exp().ln_1p();
                (vec![1.0 - p1, p1], loss)
            } else {
                let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = z.iter().map(|&v| (v - max).exp()).sum();
                let probs = z.iter().map(|&v| (v - max).exp() / sum).collect();
                let loss = z
                    .get(label)
                    .map_or(f32::INFINITY, |&zl| max + sum.ln() - zl);
                (probs, loss)
            };
            let predicted = crate::model::predictions(z, outputs)
                .first()
                .copied()
                .unwrap_or(0);
            Row {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                label: u16::try_from(label).unwrap_or(u16::MAX),
                predicted: u16::try_from(predicted).unwrap_or(u16::MAX),
                loss,
                probs,
            }
        })
        .collect()
}

/// Encode an epoch file.
#[must_use]
pub fn encode(record: &EpochRecord) -> Vec<u8> {
    let classes = usize::from(record.classes);
    let mut out = Vec::with_capacity(file_bytes(classes, record.rows.len()));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&record.classes.to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(record.rows.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(&record.epoch.to_le_bytes());
    out.extend_from_slice(&record.list_id.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    for row in &record.rows {
        out.extend_from_slice(&row.index.to_le_bytes());
        out.extend_from_slice(&row.label.to_le_bytes());
        out.extend_from_slice(&row.predicted.to_le_bytes());
        out.extend_from_slice(&row.loss.to_le_bytes());
        for c in 0..classes.saturating_sub(1) {
            let p = row.probs.get(c).copied().unwrap_or(0.0);
            out.extend_from_slice(&quantise(p).to_le_bytes());
        }
    }
    let mut h = Fnv::new();
    h.write(&out);
    out.extend_from_slice(&h.finish().to_le_bytes());
    out
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Decode an epoch file; every length is checked before it is read.
pub fn decode(bytes: &[u8]) -> Result<EpochRecord, RecordError> {
    if bytes.len() < 4 || &bytes[..4] != MAGIC {
        return Err(RecordError::BadMagic);
    }
    if bytes.len() < HEADER_BYTES {
        return Err(RecordError::Truncated {
            expected: HEADER_BYTES + CHECKSUM_BYTES,
            found: bytes.len(),
        });
    }
    let version = le_u16(bytes, 4);
    if version != VERSION {
        return Err(RecordError::Version(version));
    }
    let classes = le_u16(bytes, 6);
    let rows = le_u32(bytes, 8) as usize;
    let epoch = le_u32(bytes, 12);
    let list_id = le_u64(bytes, 16);
    let expected = file_bytes(usize::from(classes), rows);
    if bytes.len() < expected {
        return Err(RecordError::Truncated {
            expected,
            found: bytes.len(),
        });
    }
    if bytes.len() > expected {
        return Err(RecordError::TooLong {
            extra: bytes.len() - expected,
        });
    }
    let body = expected - CHECKSUM_BYTES;
    let mut h = Fnv::new();
    h.write(&bytes[..body]);
    if h.finish() != le_u64(bytes, body) {
        return Err(RecordError::Checksum);
    }
    let stride = row_bytes(usize::from(classes));
    let out = bytes[HEADER_BYTES..body]
        .chunks_exact(stride)
        .enumerate()
        .map(|(i, r)| {
            let label = le_u16(r, 4);
            let predicted = le_u16(r, 6);
            if label >= classes || predicted >= classes {
                return Err(RecordError::BadRow {
                    row: i,
                    what: format!("class {label} or {predicted} of {classes}"),
                });
            }
            let mut probs: Vec<f32> = (0..usize::from(classes).saturating_sub(1))
                .map(|c| f32::from(le_u16(r, 12 + 2 * c)) / QUANT)
                .collect();
            let rest = 1.0 - probs.iter().sum::<f32>();
            probs.push(rest.max(0.0));
            Ok(Row {
                index: le_u32(r, 0),
                label,
                predicted,
                loss: f32::from_le_bytes([r[8], r[9], r[10], r[11]]),
                probs,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EpochRecord {
        epoch,
        classes,
        list_id,
        rows: out,
    })
}

/// `RUN/validation`.
#[must_use]
pub fn dir(run: &Path) -> PathBuf {
    run.join(DIR)
}

/// The file of one epoch.
#[must_use]
pub fn epoch_path(run: &Path, epoch: usize) -> PathBuf {
    dir(run).join(format!("epoch-{epoch:04}.bin"))
}

/// The file of one image list.
#[must_use]
pub fn list_path(run: &Path, id: u64) -> PathBuf {
    dir(run).join(format!("images-{id:016x}.json"))
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> RunError {
    RunError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Write the image list unless a file of its id is there already; returns its id.
pub fn write_list(run: &Path, list: &ImageList) -> Result<u64, RunError> {
    let id = list.id();
    let path = list_path(run, id);
    if path.is_file() {
        return Ok(id);
    }
    std::fs::create_dir_all(dir(run)).map_err(io_err(run))?;
    let text = serde_json::to_string(list).map_err(|e| corrupt(&path, e))?;
    write_atomic(&path, text.as_bytes())?;
    Ok(id)
}

/// Read an image list by id.
pub fn read_list(run: &Path, id: u64) -> Result<ImageList, RunError> {
    let path = list_path(run, id);
    let bytes = super::small_file::read_capped(&path, MAX_FILE_BYTES)
        .map_err(super::small_file_err(&path))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| corrupt(&path, format!("not a valid image list: {e}")))
}

/// Write one epoch's record, replacing an earlier file of the same epoch.
pub fn write_epoch(run: &Path, record: &EpochRecord) -> Result<(), RunError> {
    std::fs::create_dir_all(dir(run)).map_err(io_err(run))?;
    write_atomic(&epoch_path(run, record.epoch as usize), &encode(record))
}

/// Read one epoch's record; a missing, torn or damaged file is an error naming it.
pub fn read_epoch(run: &Path, epoch: usize) -> Result<EpochRecord, RunError> {
    let path = epoch_path(run, epoch);
    let bytes = super::small_file::read_capped(&path, MAX_FILE_BYTES)
        .map_err(super::small_file_err(&path))?;
    decode(&bytes).map_err(|e| corrupt(&path, e))
}

/// The epochs that have a record file, in order.
#[must_use]
pub fn epochs(run: &Path) -> Vec<usize> {
    super::numbered_epochs(&dir(run), ".bin")
}

/// Gathers an epoch's rows during the validation pass and writes them at its end, on a thread
/// of its own: the file's fsync never holds up training (the next epoch's write, and
/// [`Recorder::flush`], wait for it and report its error).
#[derive(Debug)]
pub struct Recorder {
    run: PathBuf,
    classes: u16,
    list_id: u64,
    rows: Vec<Row>,
    writing: Option<std::thread::JoinHandle<Result<(), RunError>>>,
}

impl Recorder {
    /// Write the validation list (once per distinct list) and get ready for an epoch.
    pub fn new(run: &Path, classes: &[String], samples: &[Sample]) -> Result<Self, RunError> {
        let list = ImageList::of(classes, samples);
        let list_id = write_list(run, &list)?;
        Ok(Self {
            run: run.to_path_buf(),
            classes: u16::try_from(classes.len()).unwrap_or(u16::MAX),
            list_id,
            rows: Vec::with_capacity(samples.len()),
            writing: None,
        })
    }

    /// Add one batch (see [`rows_from_logits`]).
    pub fn add(&mut self, logits: &[f32], outputs: usize, labels: &[usize], indices: &[usize]) {
        self.rows
            .extend(rows_from_logits(logits, outputs, labels, indices));
    }

    /// Start writing the epoch's file and start over for the next epoch; an error of the
    /// previous epoch's write comes back here.
    pub fn finish(&mut self, epoch: usize) -> Result<(), RunError> {
        self.flush()?;
        let record = EpochRecord {
            epoch: u32::try_from(epoch).unwrap_or(u32::MAX),
            classes: self.classes,
            list_id: self.list_id,
            rows: std::mem::take(&mut self.rows),
        };
        let run = self.run.clone();
        let spawned = std::thread::Builder::new()
            .name("validation-record".into())
            .spawn(move || write_epoch(&run, &record));
        match spawned {
            Ok(handle) => self.writing = Some(handle),
            Err(error) => {
                return Err(RunError::Io {
                    path: dir(&self.run),
                    error,
                });
            }
        }
        Ok(())
    }

    /// Wait until the last epoch's file is written.
    pub fn flush(&mut self) -> Result<(), RunError> {
        match self.writing.take().map(std::thread::JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(RunError::Corrupt {
                path: dir(&self.run),
                message: "writing the validation record failed".into(),
            }),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!("the last epoch's validation record: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_rows() -> Vec<Row> {
        rows_from_logits(
            &[2.0, 0.5, -1.0, -3.0, 0.0, 4.0, 1.0, 1.0, 1.0],
            3,
            &[0, 2, 1],
            &[5, 0, 7],
        )
    }

    #[test]
    fn bytes_per_row_fit_the_budget() {
        assert_eq!(row_bytes(2), 14);
        assert_eq!(row_bytes(10), 30);
        // 25,000 images over 50 epochs: 17.5 MB for two classes, 37.5 MB for ten.
        let total = |classes| 50 * file_bytes(classes, 25_000);
        assert!(total(2) < 18_000_000, "{}", total(2));
        assert!(total(10) < 38_000_000, "{}", total(10));
        let rec = EpochRecord {
            epoch: 1,
            classes: 3,
            list_id: 9,
            rows: sample_rows(),
        };
        assert_eq!(encode(&rec).len(), file_bytes(3, 3));
    }

    #[test]
    fn softmax_rows_have_probabilities_loss_and_prediction() {
        let rows = sample_rows();
        assert_eq!(rows[0].index, 5);
        assert_eq!(rows[0].predicted, 0);
        assert_eq!(rows[1].predicted, 2);
        assert_eq!(rows[2].predicted, 0, "ties go to the first class");
        for r in &rows {
            assert!((r.probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            let expect = -r.probs[usize::from(r.label)].ln();
            assert!((r.loss - expect).abs() < 1e-4, "{} vs {expect}", r.loss);
        }
        assert!((rows[2].probs[1] - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn a_single_logit_is_a_sigmoid_head() {
        let rows = rows_from_logits(&[0.0, 3.0, -2.0], 1, &[1, 0, 0], &[0, 1, 2]);
        assert!((rows[0].probs[1] - 0.5).abs() < 1e-6);
        assert_eq!(rows[0].predicted, 0, "z = 0 is not > 0");
        assert_eq!(rows[1].predicted, 1);
        let p1 = 1.0 / (1.0 + (-3.0f32).exp());
        assert!((rows[1].probs[1] - p1).abs() < 1e-6);
        assert!((rows[1].loss - -(1.0 - p1).ln()).abs() < 1e-5);
        assert!((rows[2].loss - -(1.0 - 1.0 / (1.0 + 2.0f32.exp())).ln()).abs() < 1e-5);
        // A huge logit stays finite.
        let big = rows_from_logits(&[100.0], 1, &[0], &[0]);
        assert!((big[0].loss - 100.0).abs() < 1e-3);
    }

    #[test]
    fn round_trip_through_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rec = EpochRecord {
            epoch: 3,
            classes: 3,
            list_id: 0xdead_beef,
            rows: sample_rows(),
        };
        write_epoch(dir.path(), &rec).expect("write");
        let back = read_epoch(dir.path(), 3).expect("read");
        assert_eq!(
            (back.epoch, back.classes, back.list_id),
            (3, 3, 0xdead_beef)
        );
        assert_eq!(back.rows.len(), 3);
        for (a, b) in rec.rows.iter().zip(&back.rows) {
            assert_eq!(
                (a.index, a.label, a.predicted),
                (b.index, b.label, b.predicted)
            );
            assert_eq!(a.loss.to_bits(), b.loss.to_bits());
            for (p, q) in a.probs.iter().zip(&b.probs) {
                assert!((p - q).abs() <= 2.0 / QUANT, "{p} vs {q}");
            }
        }
        // Re-running the epoch replaces its file, and only it.
        write_epoch(
            dir.path(),
            &EpochRecord {
                epoch: 4,
                ..rec.clone()
            },
        )
        .expect("write 4");
        let one = EpochRecord {
            rows: rec.rows[..1].to_vec(),
            ..rec
        };
        write_epoch(dir.path(), &one).expect("rewrite");
        assert_eq!(read_epoch(dir.path(), 3).expect("read").rows.len(), 1);
        assert_eq!(read_epoch(dir.path(), 4).expect("read").rows.len(), 3);
        assert_eq!(epochs(dir.path()), vec![3, 4]);
        let leftovers = std::fs::read_dir(super::dir(dir.path()))
            .expect("dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().contains("tmp"))
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn torn_and_damaged_files_are_named_errors() {
        let rec = EpochRecord {
            epoch: 1,
            classes: 3,
            list_id: 1,
            rows: sample_rows(),
        };
        let bytes = encode(&rec);
        // Every prefix is refused without a panic.
        for n in 0..bytes.len() {
            let err = decode(&bytes[..n]).expect_err("a prefix");
            assert!(
                matches!(err, RecordError::BadMagic | RecordError::Truncated { .. }),
                "{n}: {err}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(decode(&long), Err(RecordError::TooLong { extra: 1 }));
        for at in [HEADER_BYTES, HEADER_BYTES + 9, bytes.len() - 1] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x10;
            assert_eq!(decode(&flipped), Err(RecordError::Checksum), "byte {at}");
        }
        let mut v2 = bytes.clone();
        v2[4] = 2;
        assert_eq!(decode(&v2), Err(RecordError::Version(2)));
        // A row count that promises more than the file holds.
        let mut huge = bytes;
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&huge), Err(RecordError::Truncated { .. })));
        // On disk, the error names the file.
        let dir = tempfile::tempdir().expect("tempdir");
        write_epoch(dir.path(), &rec).expect("write");
        let path = epoch_path(dir.path(), 1);
        let full = std::fs::read(&path).expect("read");
        std::fs::write(&path, &full[..full.len() / 2]).expect("tear");
        let err = read_epoch(dir.path(), 1).expect_err("torn").to_string();
        assert!(
            err.contains("epoch-0001.bin") && err.contains("cut short"),
            "{err}"
        );
        assert!(read_epoch(dir.path(), 2).is_err());
    }

    #[test]
    fn image_lists_are_stored_once_per_distinct_list() {
        let dir = tempfile::tempdir().expect("tempdir");
        let classes = vec!["cat".to_string(), "dog".to_string()];
        let samples = |names: &[&str]| -> Vec<Sample> {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| Sample {
                    path: PathBuf::from(n),
                    label: i % 2,
                })
                .collect()
        };
        let a = Recorder::new(dir.path(), &classes, &samples(&["a.jpg", "b.jpg"])).expect("a");
        let again = Recorder::new(dir.path(), &classes, &samples(&["a.jpg", "b.jpg"])).expect("a");
        assert_eq!(a.list_id, again.list_id);
        let mut b = Recorder::new(dir.path(), &classes, &samples(&["a.jpg", "c.jpg"])).expect("b");
        assert_ne!(a.list_id, b.list_id);
        b.add(&[1.0, -1.0], 1, &[0, 1], &[0, 1]);
        b.finish(2).expect("finish");
        assert!(b.rows.is_empty(), "finish starts over");
        b.flush().expect("written");
        let rec = read_epoch(dir.path(), 2).expect("read");
        let list = read_list(dir.path(), rec.list_id).expect("list");
        // Relative paths are stored absolute: a viewer started elsewhere still finds them.
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(Path::new(&list.images[1].path), cwd.join("c.jpg"));
        assert_eq!(list.classes, classes);
        assert_eq!(
            Path::new(&read_list(dir.path(), a.list_id).expect("old").images[1].path),
            cwd.join("b.jpg")
        );
    }
}
