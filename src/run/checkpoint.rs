//! Checkpoint folders: written under a temporary name, renamed when complete, `latest` last.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{RunError, io_err, write_atomic};

mod hash;

pub use hash::HashKind;
use hash::{Hasher, files_hash, files_hashes};

/// The most epochs a checkpoint may claim (config's `train.epochs` has no such bound, but no
/// training gets near it; a larger number is a hand-edited file).
const MAX_EPOCH: usize = 100_000_000;
/// The most batches an epoch may have.
const MAX_BATCHES: usize = 1 << 40;

/// File name of the model weights inside a checkpoint folder.
pub const MODEL_FILE: &str = "model.bpk";
/// File name of the optimizer state inside a checkpoint folder.
pub const OPTIM_FILE: &str = "optimizer.bpk";
/// Written last: a folder without it is incomplete.
pub const STATE_FILE: &str = "state.json";

/// Where training stands at a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainState {
    /// 1-based epoch the checkpoint was taken in.
    pub epoch: usize,
    /// Batches of that epoch already trained (the epoch is complete when equal to `batches_per_epoch`).
    pub batch: usize,
    pub batches_per_epoch: usize,
    /// Optimizer steps taken in total.
    pub step: u64,
    pub seed: u64,
    /// Running sums of the unfinished epoch, so its metrics come out as if never interrupted.
    pub loss_sum: f64,
    pub correct: u64,
    pub seen: u64,
    /// Seconds spent training before this checkpoint.
    pub train_seconds: f64,
    /// Sizes of `model.bpk` and `optimizer.bpk` as written, so that a truncated file is
    /// noticed before loading it (0: not recorded, as in checkpoints from older versions).
    #[serde(default)]
    pub model_bytes: u64,
    #[serde(default)]
    pub optim_bytes: u64,
    /// A hash of both files' bytes as written, checked before resuming from them, so that a
    /// damaged file of the right size is noticed too (`None` in older checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_hash: Option<u64>,
    /// The hash of the weights file alone, as written (`files_hash` once the optimizer state
    /// is dropped, so that [`drop_old_optimizer_state`] need not read the files again; `None`
    /// in older checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_hash: Option<u64>,
    /// How `files_hash` and `model_hash` were made (absent, the chain: older checkpoints).
    #[serde(default, skip_serializing_if = "HashKind::is_chain")]
    pub hash: HashKind,
    /// The optimizer state was dropped to save disk (only the newest checkpoints keep it, see
    /// [`drop_old_optimizer_state`]): the weights are here to view, export and predict with this
    /// epoch; resuming from it starts the optimizer afresh.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub weights_only: bool,
}

impl TrainState {
    /// The files this checkpoint holds (the weights, then the optimizer state if kept).
    #[must_use]
    pub fn files(&self) -> &'static [&'static str] {
        if self.weights_only {
            &[MODEL_FILE]
        } else {
            &[MODEL_FILE, OPTIM_FILE]
        }
    }

    /// Check that the fields are in range (a hand-edited file must not make an epoch counter
    /// wrap around); the error names the field and its value.
    pub fn check(&self) -> Result<(), StateError> {
        let bad = |field: &'static str, value: String, want: &str| {
            Err(StateError {
                field,
                value,
                want: want.to_string(),
            })
        };
        if !(1..=MAX_EPOCH).contains(&self.epoch) {
            return bad(
                "epoch",
                self.epoch.to_string(),
                &format!("must be between 1 and {MAX_EPOCH}"),
            );
        }
        if !(1..=MAX_BATCHES).contains(&self.batches_per_epoch) {
            return bad(
                "batches_per_epoch",
                self.batches_per_epoch.to_string(),
                &format!("must be between 1 and {MAX_BATCHES}"),
            );
        }
        if self.batch > self.batches_per_epoch {
            return bad(
                "batch",
                self.batch.to_string(),
                &format!(
                    "must be at most batches_per_epoch = {}",
                    self.batches_per_epoch
                ),
            );
        }
        if self.correct > self.seen {
            return bad(
                "correct",
                self.correct.to_string(),
                &format!("must be at most seen = {}", self.seen),
            );
        }
        if !self.loss_sum.is_finite() || self.loss_sum < 0.0 {
            return bad(
                "loss_sum",
                self.loss_sum.to_string(),
                "must be a finite number, 0 or more",
            );
        }
        if !self.train_seconds.is_finite() || self.train_seconds < 0.0 {
            return bad(
                "train_seconds",
                self.train_seconds.to_string(),
                "must be a finite number, 0 or more",
            );
        }
        Ok(())
    }

    /// Whether the checkpointed epoch was finished.
    #[must_use]
    pub fn epoch_complete(&self) -> bool {
        self.batch >= self.batches_per_epoch
    }

    /// Epoch (1-based) and batch (0-based) where training continues.
    #[must_use]
    pub fn resume_point(&self) -> (usize, usize) {
        if self.epoch_complete() {
            (self.epoch + 1, 0)
        } else {
            (self.epoch, self.batch)
        }
    }
}

/// The folder name of a checkpoint: `epoch-0007`, or `epoch-0007-batch-000012` mid-epoch.
#[must_use]
pub fn name_for(state: &TrainState) -> String {
    if state.epoch_complete() {
        format!("epoch-{:04}", state.epoch)
    } else {
        format!("epoch-{:04}-batch-{:06}", state.epoch, state.batch)
    }
}

/// A complete checkpoint on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub name: String,
    pub path: PathBuf,
    pub state: TrainState,
}

impl Checkpoint {
    #[must_use]
    pub fn model_path(&self) -> PathBuf {
        self.path.join(MODEL_FILE)
    }
    #[must_use]
    pub fn optim_path(&self) -> PathBuf {
        self.path.join(OPTIM_FILE)
    }
}

/// Write a checkpoint: `write_files` fills a temporary folder with the model and optimizer
/// files; then the state is written, the folder renamed into place and `latest` updated.
pub fn save<E: std::fmt::Display>(
    dir: &Path,
    state: &TrainState,
    write_files: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<Checkpoint, RunError> {
    save_hashed(dir, state, |tmp| write_files(tmp).map(|()| None))
}

/// [`save`] with a writer that may return the files' hash ([`FilesWriter`]).
fn save_hashed<E: std::fmt::Display>(
    dir: &Path,
    state: &TrainState,
    write_files: impl FnOnce(&Path) -> Result<Option<Hashes>, E>,
) -> Result<Checkpoint, RunError> {
    let name = name_for(state);
    let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    let final_path = dir.join(&name);
    let state = match fill(&tmp, state, write_files) {
        Ok(state) => state,
        Err(e) => {
            // A half-written folder only takes space (a full disk is the usual cause).
            let _ = std::fs::remove_dir_all(&tmp);
            let kept = match latest(dir) {
                Ok((c, _)) => format!("the previous checkpoint is kept ({})", c.name),
                Err(_) => "there is no earlier checkpoint".to_string(),
            };
            return Err(RunError::Corrupt {
                path: final_path,
                message: format!(
                    "writing the checkpoint failed: {e}; {kept}. Check that the disk has space and the folder is writable"
                ),
            });
        }
    };
    if final_path.exists() {
        std::fs::remove_dir_all(&final_path).map_err(io_err(&final_path))?;
    }
    std::fs::rename(&tmp, &final_path).map_err(io_err(&final_path))?;
    write_atomic(&dir.join("latest"), format!("{name}\n").as_bytes())?;
    Ok(Checkpoint {
        name,
        path: final_path,
        state,
    })
}

/// The files of one checkpoint, written by [`Background`] on its thread into the temporary
/// folder it is given (the caller's snapshot of the weights and optimizer state goes with it).
/// It returns the files' hashes when it wrote them with [`write_files`] (synced, hashed as
/// written); `None` has them synced and read back for the hashes.
pub type FilesWriter = Box<dyn FnOnce(&Path) -> Result<Option<Hashes>, String> + Send>;

/// The hash chain of a checkpoint's files as written: after the weights, and after both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hashes {
    pub model: u64,
    pub files: u64,
}

/// What a finished background checkpoint left: the checkpoint, and the bytes of older
/// optimizer state dropped after it.
#[derive(Debug)]
pub struct Written {
    pub checkpoint: Checkpoint,
    pub freed: u64,
    /// The CPU time the writer thread spent on it (serialising, hashing, writing, pruning);
    /// `None` where the system does not say (`/proc/thread-self/schedstat`).
    pub cpu: Option<std::time::Duration>,
}

/// Writes checkpoints on a thread of their own, one at a time, so that training goes on while
/// the files are serialised, synced and hashed: [`save`] runs there (the folder is renamed into
/// place and `latest` moved only when its files are complete), then [`prune`] and
/// [`drop_old_optimizer_state`]. A write's outcome comes back from [`Self::poll`],
/// [`Self::wait`] or the next [`Self::start`] (which waits for the one before); dropping it
/// waits too, so a checkpoint started is never left half-written by the process ending.
///
/// The thread is started with the first checkpoint and writes every later one: one thread for
/// the whole run, not one per checkpoint. (The trainer's files are copied into file images
/// before they come here, `train::snapshot`: the thread hashes and writes them.)
#[derive(Debug, Default)]
pub struct Background {
    writer: Option<Writer>,
    /// The checkpoint folder of the write under way (sent, its outcome not yet collected).
    writing: Option<PathBuf>,
}

/// One checkpoint for the writer thread.
struct Work {
    dir: PathBuf,
    state: TrainState,
    keep: [usize; 2],
    files: FilesWriter,
}

/// The writer thread: checkpoints go in on `work`, outcomes come back on `done`.
#[derive(Debug)]
struct Writer {
    work: std::sync::mpsc::Sender<Work>,
    done: std::sync::mpsc::Receiver<Result<Written, RunError>>,
    handle: std::thread::JoinHandle<()>,
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Work")
            .field("dir", &self.dir)
            .field("epoch", &self.state.epoch)
            .field("batch", &self.state.batch)
            .finish_non_exhaustive()
    }
}

impl Writer {
    fn spawn(dir: &Path) -> Result<Self, RunError> {
        let (work_tx, work) = std::sync::mpsc::channel::<Work>();
        let (done_tx, done) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                for w in work {
                    let began = thread_cpu();
                    let outcome = (|| {
                        let checkpoint = save_gated(&w.dir, &w.state, w.files)?;
                        prune(&w.dir, w.keep[0])?;
                        let freed = drop_old_optimizer_state(&w.dir, w.keep[1])?;
                        let cpu = thread_cpu()
                            .zip(began)
                            .map(|(now, began)| now.saturating_sub(began));
                        Ok(Written {
                            checkpoint,
                            freed,
                            cpu,
                        })
                    })();
                    if done_tx.send(outcome).is_err() {
                        return;
                    }
                }
            })
            .map_err(io_err(dir))?;
        Ok(Self {
            work: work_tx,
            done,
            handle,
        })
    }
}

impl Background {
    /// Start writing `state`'s checkpoint into `dir` with `files`, then keep the newest `keep`
    /// epoch-end checkpoints and the optimizer state of the newest `keep_optimizer` (see
    /// [`prune`] and [`drop_old_optimizer_state`]). The previous write is waited for first;
    /// its outcome is returned.
    pub fn start(
        &mut self,
        dir: &Path,
        state: &TrainState,
        [keep, keep_optimizer]: [usize; 2],
        files: FilesWriter,
    ) -> Result<Option<Written>, RunError> {
        let previous = self.wait().transpose()?;
        let writer = match self.writer.take() {
            Some(w) => w,
            None => Writer::spawn(dir)?,
        };
        let path = dir.join(name_for(state));
        let work = Work {
            dir: dir.to_path_buf(),
            state: state.clone(),
            keep: [keep, keep_optimizer],
            files,
        };
        if writer.work.send(work).is_err() {
            // The thread is gone (it failed writing the one before): say so, start afresh next time.
            let _ = writer.handle.join();
            return Err(thread_failed(path));
        }
        self.writer = Some(writer);
        self.writing = Some(path);
        Ok(previous)
    }

    /// Whether a write is under way (or finished and not yet collected).
    #[must_use]
    pub fn busy(&self) -> bool {
        self.writing.is_some()
    }

    /// The outcome of the write under way if it has finished; never waits.
    pub fn poll(&mut self) -> Option<Result<Written, RunError>> {
        let writer = self.writer.as_ref()?;
        self.writing.as_ref()?;
        match writer.done.try_recv() {
            Ok(outcome) => {
                self.writing = None;
                Some(outcome)
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => None,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => self.wait(),
        }
    }

    /// Wait for the write under way, if any, and give its outcome.
    pub fn wait(&mut self) -> Option<Result<Written, RunError>> {
        let path = self.writing.take()?;
        let Some(writer) = self.writer.take() else {
            return Some(Err(thread_failed(path)));
        };
        if let Ok(outcome) = writer.done.recv() {
            self.writer = Some(writer);
            Some(outcome)
        } else {
            // The thread ended without an outcome (it panicked): a fresh one next time.
            let _ = writer.handle.join();
            Some(Err(thread_failed(path)))
        }
    }
}

/// The CPU time the calling thread has used (Linux: `/proc/thread-self/schedstat`, in ns).
fn thread_cpu() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(std::time::Duration::from_nanos(ns))
}

/// The error of a checkpoint whose writer thread failed.
fn thread_failed(path: PathBuf) -> RunError {
    RunError::Corrupt {
        path,
        message: "the thread writing the checkpoint failed; the previous checkpoint is kept".into(),
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(Err(e)) = self.wait() {
            tracing::warn!("{e}");
        }
        if let Some(Writer { work, done, handle }) = self.writer.take() {
            // No more work: the thread's loop ends.
            drop(work);
            drop(done);
            let _ = handle.join();
        }
    }
}

/// [`save`], held back before the rename by the `test-hooks` gate ([`gate_wait`]).
fn save_gated(dir: &Path, state: &TrainState, files: FilesWriter) -> Result<Checkpoint, RunError> {
    save_hashed(dir, state, |tmp| {
        let hash = files(tmp)?;
        gate_wait();
        Ok::<_, String>(hash)
    })
}

/// Test hook, only in builds with the `test-hooks` feature: with `CONVSCOPE_CHECKPOINT_GATE`
/// set to a path, a checkpoint's files are written and then held in their temporary folder
/// until that path exists (so a test sees training go on meanwhile, and `latest` unmoved);
/// `PATH.held` is created once they are.
#[cfg(feature = "test-hooks")]
fn gate_wait() {
    if let Some(gate) = std::env::var_os("CONVSCOPE_CHECKPOINT_GATE") {
        let gate = PathBuf::from(gate);
        let mut held = gate.clone().into_os_string();
        held.push(".held");
        if let Err(e) = std::fs::write(&held, b"") {
            tracing::warn!("test hook: {e}");
        }
        while !gate.exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Without the `test-hooks` feature nothing holds a checkpoint back.
#[cfg(not(feature = "test-hooks"))]
fn gate_wait() {}

// Create `tmp` and write the model, optimizer and state files into it.
fn fill<E: std::fmt::Display>(
    tmp: &Path,
    state: &TrainState,
    write_files: impl FnOnce(&Path) -> Result<Option<Hashes>, E>,
) -> Result<TrainState, FillError<E>> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FillError::Io { path, source }
    };
    std::fs::create_dir_all(tmp).map_err(io(tmp))?;
    let known = write_files(tmp).map_err(FillError::Files)?;
    let mut sizes = [0u64; 2];
    for (file, size) in [MODEL_FILE, OPTIM_FILE].into_iter().zip(&mut sizes) {
        let p = tmp.join(file);
        *size = std::fs::File::open(&p)
            .and_then(|f| {
                // `write_files` synced what it hashed.
                if known.is_none() {
                    f.sync_all()?;
                }
                f.metadata()
            })
            .map_err(io(&p))?
            .len();
    }
    let hashes = match known {
        Some(h) => h,
        None => match files_hashes(tmp, &[MODEL_FILE, OPTIM_FILE], HashKind::CURRENT)
            .map_err(io(tmp))?[..]
        {
            [model, files] => Hashes { model, files },
            _ => unreachable!("one hash a file"),
        },
    };
    let state = TrainState {
        model_bytes: sizes[0],
        optim_bytes: sizes[1],
        files_hash: Some(hashes.files),
        model_hash: Some(hashes.model),
        hash: HashKind::CURRENT,
        ..state.clone()
    };
    let json = serde_json::to_vec_pretty(&state).map_err(FillError::State)?;
    write_atomic(&tmp.join(STATE_FILE), &json).map_err(FillError::Write)?;
    Ok(state)
}

/// Why a checkpoint's temporary folder could not be filled.
#[derive(Debug, thiserror::Error)]
enum FillError<E> {
    /// The model or optimizer file, as the caller's writer says.
    #[error("{0}")]
    Files(E),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    State(serde_json::Error),
    #[error("{0}")]
    Write(RunError),
}

/// A checkpoint's files written from bytes in memory, each synced as it is written, and their
/// hashes ([`files_hash`] after each file) made from those bytes: nothing is read back.
///
/// The files are written with `O_DIRECT` where the file system takes it: the bytes go from
/// memory to the disk without a copy into the page cache. For the tutorial net's 126 MB of
/// weights and Adam moments, a buffered write and sync took about 0.35 s of CPU on the
/// development machine and this about 0.01 s: CPU that the training steps beside the writer
/// thread no longer lose. Bytes aligned to [`BLOCK`] go straight from where they are; others
/// are staged in an aligned buffer 8 MB at a time. Elsewhere (tmpfs, some network file
/// systems) they are written the usual way.
pub struct FilesOut {
    dir: PathBuf,
    staging: direct::Staging,
    hasher: Hasher,
    hashes: Vec<u64>,
    /// Files written unbuffered.
    unbuffered: usize,
}

impl FilesOut {
    #[must_use]
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            staging: direct::Staging::default(),
            hasher: Hasher::new(HashKind::CURRENT),
            hashes: Vec::new(),
            unbuffered: 0,
        }
    }

    /// Write `bytes` as the new file `name`, synced, and extend the hash chain.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), RunError> {
        let path = self.dir.join(name);
        let how = direct::write_synced(&path, bytes, &mut self.staging).map_err(io_err(&path))?;
        self.unbuffered += usize::from(how == direct::Mode::Unbuffered);
        self.hasher.update(bytes);
        self.hashes.push(self.hasher.end_file(bytes.len() as u64));
        Ok(())
    }

    /// The hashes of a checkpoint whose weights, then optimizer state, were written.
    #[must_use]
    pub fn hashes(&self) -> Hashes {
        let model = self
            .hashes
            .first()
            .copied()
            .unwrap_or_else(|| Hasher::new(HashKind::CURRENT).end_file(0));
        Hashes {
            model,
            files: self.hashes.last().copied().unwrap_or(model),
        }
    }
}

/// The alignment that lets [`FilesOut::write`] write bytes unbuffered straight from memory
/// (otherwise they are staged in an aligned buffer first).
pub const BLOCK: usize = direct::ALIGN;

/// Unbuffered (`O_DIRECT`) writes, falling back to buffered ones.
mod direct {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    use std::path::Path;

    /// Memory, file offsets and lengths of unbuffered writes are multiples of this (the
    /// largest logical block size in use).
    pub const ALIGN: usize = 4096;
    /// Bytes staged in aligned memory at a time.
    const STAGE: usize = 8 << 20;

    /// An aligned buffer the bytes are copied into for the kernel where they are not aligned
    /// to the block size (a `Vec`'s memory is not): `STAGE` bytes from the first aligned place
    /// of a vector `ALIGN` bytes longer, made when first needed.
    #[derive(Default)]
    pub struct Staging {
        memory: Vec<u8>,
        start: usize,
    }

    impl Staging {
        fn slice(&mut self, len: usize) -> &mut [u8] {
            if self.memory.is_empty() {
                self.memory = vec![0u8; STAGE + ALIGN];
                self.start = self.memory.as_ptr().align_offset(ALIGN).min(ALIGN);
            }
            &mut self.memory[self.start..self.start + len.min(STAGE)]
        }
    }

    /// Write `bytes` to the new file `path` and sync it: the whole blocks unbuffered, the last
    /// partial block (and everything, where unbuffered writes are refused) through the page
    /// cache.
    pub fn write_synced(path: &Path, bytes: &[u8], staging: &mut Staging) -> std::io::Result<Mode> {
        let direct = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
            .open(path);
        let mut file = match direct {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(e),
            Err(_) => return buffered(path, bytes).map(|()| Mode::Buffered),
        };
        let whole = bytes.len() / ALIGN * ALIGN;
        let aligned = bytes.as_ptr().align_offset(ALIGN) == 0;
        for chunk in bytes[..whole].chunks(STAGE) {
            let out = if aligned {
                chunk
            } else {
                let stage = staging.slice(chunk.len());
                stage.copy_from_slice(chunk);
                &*stage
            };
            if file.write_all(out).is_err() {
                // Refused after all (EINVAL on some file systems): the usual way.
                drop(file);
                std::fs::remove_file(path)?;
                return buffered(path, bytes).map(|()| Mode::Buffered);
            }
        }
        let flags = rustix::fs::fcntl_getfl(&file)?;
        rustix::fs::fcntl_setfl(&file, flags - rustix::fs::OFlags::DIRECT)?;
        file.write_all(&bytes[whole..])?;
        file.sync_all()?;
        Ok(Mode::Unbuffered)
    }

    /// How [`write_synced`] wrote a file.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Mode {
        Unbuffered,
        Buffered,
    }

    fn buffered(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    }
}

/// A state field out of range (a hand-edited file must not make an epoch counter wrap around).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` = {value}: {want}")]
pub struct StateError {
    pub field: &'static str,
    pub value: String,
    /// What the field must be.
    pub want: String,
}

/// What is wrong with a checkpoint folder.
#[derive(Debug, thiserror::Error)]
enum Damage {
    #[error("cannot read its files: {0}")]
    Unreadable(std::io::Error),
    #[error("its files are damaged: their hash differs from the one written with them")]
    Hash,
    #[error("cannot read {STATE_FILE}: {0}")]
    StateUnreadable(super::small_file::SmallFileError),
    #[error("{STATE_FILE} is not valid checkpoint state: {0}")]
    StateInvalid(serde_json::Error),
    #[error("{STATE_FILE} {0}")]
    StateOutOfRange(StateError),
    #[error("cannot read {file}: {error}")]
    FileUnreadable {
        file: &'static str,
        error: std::io::Error,
    },
    #[error("{file} is empty")]
    Empty { file: &'static str },
    #[error("{file} is {len} bytes, but {want} were written")]
    Size {
        file: &'static str,
        len: u64,
        want: u64,
    },
}

/// Check a listed checkpoint's files against the hash written with them.
fn verify(c: &Checkpoint) -> Result<(), Damage> {
    let Some(want) = c.state.files_hash else {
        return Ok(());
    };
    let got = files_hash(&c.path, c.state.files(), c.state.hash).map_err(Damage::Unreadable)?;
    if got == want {
        Ok(())
    } else {
        Err(Damage::Hash)
    }
}

/// Read a checkpoint folder's state and check its files; the error says what is wrong.
fn read_state(path: &Path) -> Result<TrainState, Damage> {
    let text =
        super::small_file::read_string(&path.join(STATE_FILE)).map_err(Damage::StateUnreadable)?;
    let state: TrainState = serde_json::from_str(&text).map_err(Damage::StateInvalid)?;
    state.check().map_err(Damage::StateOutOfRange)?;
    for (file, want) in [
        (MODEL_FILE, state.model_bytes),
        (OPTIM_FILE, state.optim_bytes),
    ]
    .into_iter()
    .take(state.files().len())
    {
        let len = std::fs::metadata(path.join(file))
            .map_err(|error| Damage::FileUnreadable { file, error })?
            .len();
        if len == 0 {
            return Err(Damage::Empty { file });
        }
        // A truncated or overwritten file no longer has the size it was written with.
        if want > 0 && len != want {
            return Err(Damage::Size { file, len, want });
        }
    }
    Ok(state)
}

/// Every complete checkpoint, newest first (by epoch, then batch).
pub fn list(dir: &Path) -> Result<Vec<Checkpoint>, RunError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("epoch-") {
            continue;
        }
        let path = entry.path();
        match read_state(&path) {
            Ok(state) => out.push(Checkpoint { name, path, state }),
            Err(why) => tracing::info!("ignoring checkpoint {}: {why}", path.display()),
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse((c.state.epoch, c.state.batch)));
    Ok(out)
}

/// The checkpoint `latest` names, if it is complete and undamaged; otherwise the newest one
/// that is. The second value says why `latest` was not used, when it was not.
///
/// A live training writes, renames and prunes checkpoints meanwhile: when `latest` changes
/// during the listing, or a listed checkpoint is gone by the time its files are checked, the
/// folder is listed again (a few times) instead of calling it damaged.
pub fn latest(dir: &Path) -> Result<(Checkpoint, Option<String>), RunError> {
    for _ in 0..LIST_TRIES {
        if let Some(found) = latest_once(dir)? {
            return Ok(found);
        }
    }
    Err(RunError::NoCheckpoint {
        path: dir.to_path_buf(),
    })
}

/// How many times [`latest`] lists a folder that keeps changing under it.
const LIST_TRIES: usize = 5;

/// Why the `latest` file cannot be read.
#[derive(Debug, thiserror::Error)]
enum LatestError {
    #[error("{} cannot be read: {error}", path.display())]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} {error}", path.display())]
    Invalid {
        path: PathBuf,
        error: super::small_file::SmallFileError,
    },
}

/// What `latest` names (`None`: there is no `latest`), or why it cannot be read.
fn read_latest(dir: &Path) -> Result<Option<String>, LatestError> {
    use super::small_file::SmallFileError;
    let path = dir.join("latest");
    match super::small_file::read_string(&path) {
        Ok(s) => Ok(Some(s.trim().to_string())),
        Err(SmallFileError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(SmallFileError::Io(error)) => Err(LatestError::Unreadable { path, error }),
        Err(error) => Err(LatestError::Invalid { path, error }),
    }
}

/// One listing for [`latest`]: `None` when the folder changed meanwhile (look again).
fn latest_once(dir: &Path) -> Result<Option<(Checkpoint, Option<String>)>, RunError> {
    let named = read_latest(dir);
    let mut all = list(dir)?;
    if read_latest(dir).map_err(|e| e.to_string())
        != named.as_ref().cloned().map_err(ToString::to_string)
    {
        return Ok(None);
    }
    let mut skipped = Vec::new();
    let named = named.unwrap_or_else(|why| {
        skipped.push(why.to_string());
        None
    });
    if let Some(n) = &named {
        if let Some(i) = all.iter().position(|c| &c.name == n) {
            // Try the named one first.
            let c = all.remove(i);
            all.insert(0, c);
        } else {
            let why = if n.is_empty() || n.contains(['/', '\\']) {
                "not a checkpoint name".to_string()
            } else if dir.join(n).is_dir() {
                read_state(&dir.join(n))
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            } else {
                "missing".to_string()
            };
            skipped.push(format!("checkpoint {n} is incomplete or damaged ({why})"));
        }
    }
    for c in all {
        match verify(&c) {
            Ok(()) => {
                let note = (!skipped.is_empty()).then(|| {
                    format!(
                        "{}; using the newest complete one, {}, instead",
                        skipped.join("; "),
                        c.name
                    )
                });
                return Ok(Some((c, note)));
            }
            // Pruned or rewritten since it was listed (a listed checkpoint had all its files):
            // not damaged; list again.
            Err(_)
                if c.state
                    .files()
                    .iter()
                    .chain([&STATE_FILE])
                    .any(|f| !c.path.join(f).is_file()) =>
            {
                return Ok(None);
            }
            Err(why) => {
                tracing::warn!("checkpoint {} is damaged: {why}", c.path.display());
                skipped.push(format!("checkpoint {} is damaged ({why})", c.name));
            }
        }
    }
    Err(RunError::NoCheckpoint {
        path: dir.to_path_buf(),
    })
}

/// Delete all but the newest `keep` epoch-end checkpoints (0 keeps all); mid-epoch ones older
/// than the newest checkpoint go too.
pub fn prune(dir: &Path, keep: usize) -> Result<(), RunError> {
    let all = list(dir)?;
    let mut epoch_ends = 0;
    for (i, c) in all.iter().enumerate() {
        let remove = if c.state.epoch_complete() {
            epoch_ends += 1;
            keep > 0 && epoch_ends > keep
        } else {
            i > 0
        };
        if remove {
            std::fs::remove_dir_all(&c.path).map_err(io_err(&c.path))?;
        }
    }
    Ok(())
}

/// Drop the optimizer state from all but the newest `keep` checkpoints (0 keeps it in all);
/// returns the bytes freed. With Adam it is twice the size of the weights, and only resuming
/// needs it, from the newest checkpoint (the one before it stands in when the newest is
/// damaged). The state file is rewritten first, then the file removed: a crash in between
/// leaves a stray file, never a checkpoint that claims what it lacks. A checkpoint whose files
/// do not match their hash is left alone (it is not used anyway).
pub fn drop_old_optimizer_state(dir: &Path, keep: usize) -> Result<u64, RunError> {
    if keep == 0 {
        return Ok(0);
    }
    let mut freed = 0;
    for c in list(dir)?.into_iter().skip(keep) {
        if c.state.weights_only {
            continue;
        }
        // The weights' hash as written, when the state has it: the files are not read again.
        // The optimizer state goes whatever its bytes; damage to the weights still shows
        // against that hash. Older checkpoints: one read gives both the hash to check and the
        // hash of the weights alone (the chain after the first file).
        let model_size = std::fs::metadata(c.model_path()).map(|m| m.len()).ok();
        let written = c
            .state
            .model_hash
            .filter(|_| model_size == Some(c.state.model_bytes));
        let hashes = match written {
            Some(h) => vec![h],
            None => match files_hashes(&c.path, c.state.files(), c.state.hash) {
                Ok(h)
                    if c.state
                        .files_hash
                        .is_none_or(|want| h.last() == Some(&want)) =>
                {
                    h
                }
                Ok(_) => {
                    tracing::warn!(
                        "not trimming checkpoint {}: its files are damaged",
                        c.path.display()
                    );
                    continue;
                }
                Err(e) => {
                    tracing::warn!(
                        "not trimming checkpoint {}: cannot read its files: {e}",
                        c.path.display()
                    );
                    continue;
                }
            },
        };
        let state = TrainState {
            weights_only: true,
            optim_bytes: 0,
            files_hash: hashes.first().copied(),
            ..c.state.clone()
        };
        let json = serde_json::to_vec_pretty(&state).map_err(|e| RunError::Corrupt {
            path: c.path.join(STATE_FILE),
            message: e.to_string(),
        })?;
        write_atomic(&c.path.join(STATE_FILE), &json)?;
        let optim = c.optim_path();
        match std::fs::remove_file(&optim) {
            Ok(()) => freed += c.state.optim_bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&optim)(e)),
        }
    }
    Ok(freed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_files(p: &Path) -> Result<(), String> {
        std::fs::write(p.join(MODEL_FILE), b"m").map_err(|e| e.to_string())?;
        std::fs::write(p.join(OPTIM_FILE), b"o").map_err(|e| e.to_string())
    }

    fn state(epoch: usize, batch: usize) -> TrainState {
        TrainState {
            epoch,
            batch,
            batches_per_epoch: 10,
            ..TrainState::default()
        }
    }

    #[test]
    fn save_list_latest_and_fallback() {
        let dir = tempfile::tempdir().expect("tempdir");
        save(dir.path(), &state(1, 10), fake_files).expect("save");
        let c2 = save(dir.path(), &state(2, 10), fake_files).expect("save");
        assert_eq!(c2.name, "epoch-0002");
        let (latest_cp, note) = latest(dir.path()).expect("latest");
        assert_eq!(latest_cp.name, "epoch-0002");
        assert!(note.is_none());
        // Corrupt the newest: the previous complete one is used and the reason given.
        std::fs::remove_file(c2.path.join(STATE_FILE)).expect("rm");
        let (fallback, note) = latest(dir.path()).expect("latest");
        assert_eq!(fallback.name, "epoch-0001");
        assert!(note.expect("note").contains("epoch-0002"));
    }

    /// A `FilesWriter` that writes the fake files and records the thread it ran on.
    fn on_thread(
        threads: &std::sync::Arc<std::sync::Mutex<Vec<std::thread::ThreadId>>>,
    ) -> FilesWriter {
        let threads = std::sync::Arc::clone(threads);
        Box::new(move |p: &Path| {
            threads
                .lock()
                .expect("lock")
                .push(std::thread::current().id());
            fake_files(p).map(|()| None)
        })
    }

    #[test]
    fn background_writes_every_checkpoint_on_one_thread_and_survives_a_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let threads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut writer = Background::default();
        assert!(!writer.busy());
        for epoch in 1..=3 {
            // Each start waits for the one before and hands back its outcome.
            let previous = writer
                .start(dir.path(), &state(epoch, 10), [0, 0], on_thread(&threads))
                .expect("start");
            assert_eq!(previous.is_some(), epoch > 1);
            assert!(writer.busy());
        }
        let last = writer.wait().expect("a write").expect("written");
        assert_eq!(last.checkpoint.name, "epoch-0003");
        assert!(!writer.busy() && writer.poll().is_none() && writer.wait().is_none());
        let seen = threads.lock().expect("lock").clone();
        assert_eq!(seen.len(), 3);
        assert!(seen.iter().all(|t| *t == seen[0]), "{seen:?}");
        assert_ne!(seen[0], std::thread::current().id());
        // A write that fails is reported, the latest stays; the thread writes the next one.
        writer
            .start(
                dir.path(),
                &state(4, 10),
                [0, 0],
                Box::new(|_: &Path| Err("disk full".to_string())),
            )
            .expect("start");
        let failed = writer.wait().expect("a write");
        assert!(failed.is_err());
        assert_eq!(latest(dir.path()).expect("latest").0.name, "epoch-0003");
        // A writer that panics ends the thread: reported as failed, and a new one takes over.
        writer
            .start(
                dir.path(),
                &state(5, 10),
                [0, 0],
                Box::new(|_: &Path| panic!("a test panic in the checkpoint writer")),
            )
            .expect("start");
        let panicked = writer.wait().expect("a write");
        assert!(
            panicked
                .expect_err("a failed write")
                .to_string()
                .contains("the previous checkpoint is kept")
        );
        writer
            .start(dir.path(), &state(6, 10), [0, 0], on_thread(&threads))
            .expect("start");
        drop(writer); // waits for the write
        assert_eq!(latest(dir.path()).expect("latest").0.name, "epoch-0006");
        let seen = threads.lock().expect("lock").clone();
        assert_ne!(seen[3], seen[0], "a fresh thread after the panic");
    }

    #[test]
    fn truncated_file_falls_back_and_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = |p: &Path| -> Result<(), String> {
            std::fs::write(p.join(MODEL_FILE), [7u8; 100]).map_err(|e| e.to_string())?;
            std::fs::write(p.join(OPTIM_FILE), [8u8; 50]).map_err(|e| e.to_string())
        };
        save(dir.path(), &state(1, 10), big).expect("save");
        let c2 = save(dir.path(), &state(2, 10), big).expect("save");
        assert_eq!((c2.state.model_bytes, c2.state.optim_bytes), (100, 50));
        // Cut, not emptied: the size no longer matches what was written.
        std::fs::write(c2.model_path(), [7u8; 60]).expect("truncate");
        let (cp, note) = latest(dir.path()).expect("latest");
        assert_eq!(cp.name, "epoch-0001");
        let note = note.expect("note");
        assert!(note.contains("epoch-0002"), "{note}");
        assert!(
            note.contains("model.bpk is 60 bytes, but 100 were written"),
            "{note}"
        );
        // Checkpoints written before sizes were recorded still load when non-empty.
        let text = std::fs::read_to_string(c2.path.join(STATE_FILE)).expect("read");
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
        v.as_object_mut().expect("object").remove("model_bytes");
        v.as_object_mut().expect("object").remove("optim_bytes");
        v.as_object_mut().expect("object").remove("files_hash");
        std::fs::write(c2.path.join(STATE_FILE), v.to_string()).expect("write");
        assert_eq!(latest(dir.path()).expect("latest").0.name, "epoch-0002");
    }

    /// A checkpoint's files: `model_len` bytes of weights, 13 of optimizer state.
    fn files_of(model_len: usize) -> impl Fn(&Path) -> Result<(), String> + Copy {
        move |p: &Path| {
            let model: Vec<u8> = (0..=255).cycle().take(model_len).collect();
            std::fs::write(p.join(MODEL_FILE), model).map_err(|e| e.to_string())?;
            std::fs::write(p.join(OPTIM_FILE), [8u8; 13]).map_err(|e| e.to_string())
        }
    }

    #[test]
    fn damaged_file_of_the_right_size_falls_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = files_of(3_000_001);
        save(dir.path(), &state(1, 10), files).expect("save");
        let c2 = save(dir.path(), &state(2, 10), files).expect("save");
        assert!(c2.state.files_hash.is_some());
        assert_eq!(latest(dir.path()).expect("latest").0.name, "epoch-0002");
        // One flipped byte deep inside, size unchanged.
        let mut bytes = std::fs::read(c2.model_path()).expect("read");
        bytes[2_500_000] ^= 1;
        std::fs::write(c2.model_path(), bytes).expect("write");
        let (cp, note) = latest(dir.path()).expect("latest");
        assert_eq!(cp.name, "epoch-0001");
        let note = note.expect("note");
        assert!(
            note.contains("checkpoint epoch-0002 is damaged (its files are damaged"),
            "{note}"
        );
        assert!(
            note.ends_with("using the newest complete one, epoch-0001, instead"),
            "{note}"
        );
        // The optimizer's last partial word counts too.
        let mut o = std::fs::read(c2.optim_path()).expect("read");
        o[12] ^= 1;
        std::fs::write(dir.path().join("epoch-0001").join(OPTIM_FILE), o).expect("write");
        assert!(matches!(
            latest(dir.path()),
            Err(RunError::NoCheckpoint { .. })
        ));
    }

    #[test]
    fn checkpoints_hashed_with_the_older_chain_are_still_checked_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c1 = save(dir.path(), &state(1, 10), files_of(100_003)).expect("save");
        assert_eq!(c1.state.hash, HashKind::CURRENT);
        let json = std::fs::read_to_string(c1.path.join(STATE_FILE)).expect("read");
        assert!(json.contains("\"hash\": \"xxh3\""), "{json}");
        // What an older version wrote: no `hash` field, the chain's values.
        let chain =
            files_hashes(&c1.path, &[MODEL_FILE, OPTIM_FILE], HashKind::Chain).expect("hash");
        let mut old: serde_json::Value = serde_json::from_str(&json).expect("json");
        let fields = old.as_object_mut().expect("an object");
        fields.remove("hash");
        fields.insert("model_hash".into(), chain[0].into());
        fields.insert("files_hash".into(), chain[1].into());
        std::fs::write(c1.path.join(STATE_FILE), old.to_string()).expect("write");
        let (cp, note) = latest(dir.path()).expect("an older checkpoint is fine");
        assert_eq!(
            (cp.name.as_str(), cp.state.hash, note),
            ("epoch-0001", HashKind::Chain, None)
        );
        // Its damage still shows, checked with the chain.
        let mut o = std::fs::read(c1.optim_path()).expect("read");
        o[12] ^= 1;
        std::fs::write(c1.optim_path(), o).expect("write");
        assert!(matches!(
            latest(dir.path()),
            Err(RunError::NoCheckpoint { .. })
        ));
    }

    #[test]
    fn failed_write_leaves_previous_intact() {
        let dir = tempfile::tempdir().expect("tempdir");
        save(dir.path(), &state(1, 10), fake_files).expect("save");
        let err = save(dir.path(), &state(2, 3), |_| Err("disk full")).unwrap_err();
        let err = err.to_string();
        assert!(err.contains("disk full"), "{err}");
        assert!(
            err.contains("epoch-0002-batch-000003"),
            "names the checkpoint: {err}"
        );
        assert!(err.contains("the previous checkpoint is kept"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left.len(), 2, "no temporary folder left behind: {left:?}");
        assert_eq!(latest(dir.path()).expect("latest").0.name, "epoch-0001");
    }

    #[test]
    fn failed_first_write_does_not_claim_a_kept_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = save(dir.path(), &state(1, 3), |_| Err("disk full"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("there is no earlier checkpoint"), "{err}");
        assert!(!err.contains("is kept"), "{err}");
    }

    #[test]
    fn hand_edited_state_out_of_range_is_refused_naming_the_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        save(dir.path(), &state(1, 10), fake_files).expect("save");
        let c2 = save(dir.path(), &state(2, 10), fake_files).expect("save");
        let path = c2.path.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).expect("read");
        for (field, value, says) in [
            (
                "epoch",
                "18446744073709551615",
                "field `epoch` = 18446744073709551615: must be between 1 and 100000000",
            ),
            ("epoch", "0", "field `epoch` = 0: must be between 1"),
            (
                "batch",
                "11",
                "field `batch` = 11: must be at most batches_per_epoch = 10",
            ),
            (
                "batches_per_epoch",
                "0",
                "field `batches_per_epoch` = 0: must be between 1",
            ),
            (
                "correct",
                "5",
                "field `correct` = 5: must be at most seen = 0",
            ),
        ] {
            let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
            v[field] = serde_json::from_str(value).expect("number");
            std::fs::write(&path, v.to_string()).expect("write");
            let (cp, note) = latest(dir.path()).expect("latest");
            assert_eq!(cp.name, "epoch-0001", "{field}");
            let note = note.expect("note");
            assert!(note.contains(&format!("{STATE_FILE} {says}")), "{note}");
        }
    }

    #[test]
    fn resume_points() {
        assert_eq!(state(3, 10).resume_point(), (4, 0));
        assert_eq!(state(3, 4).resume_point(), (3, 4));
        assert_eq!(name_for(&state(3, 4)), "epoch-0003-batch-000004");
    }

    #[test]
    fn old_checkpoints_lose_the_optimizer_state_and_stay_usable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = |p: &Path| -> Result<(), String> {
            std::fs::write(p.join(MODEL_FILE), [7u8; 1000]).map_err(|e| e.to_string())?;
            std::fs::write(p.join(OPTIM_FILE), [8u8; 2000]).map_err(|e| e.to_string())
        };
        for e in 1..=4 {
            save(dir.path(), &state(e, 10), files).expect("save");
        }
        assert_eq!(drop_old_optimizer_state(dir.path(), 0).expect("trim"), 0);
        assert_eq!(drop_old_optimizer_state(dir.path(), 2).expect("trim"), 4000);
        assert_eq!(drop_old_optimizer_state(dir.path(), 2).expect("again"), 0);
        let all = list(dir.path()).expect("list");
        let kept: Vec<(&str, bool, bool)> = all
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.state.weights_only,
                    c.optim_path().exists(),
                )
            })
            .collect();
        assert_eq!(
            kept,
            [
                ("epoch-0004", false, true),
                ("epoch-0003", false, true),
                ("epoch-0002", true, false),
                ("epoch-0001", true, false),
            ]
        );
        for c in &all {
            verify(c).expect("hash of what is there");
        }
        // A trimmed checkpoint is still checked: damage to its weights is noticed.
        std::fs::write(all[3].model_path(), [9u8; 1000]).expect("damage");
        assert!(verify(&list(dir.path()).expect("list")[3]).is_err());
        // With the newer ones gone, latest is a weights-only checkpoint (resume starts the
        // optimizer afresh from it).
        std::fs::remove_dir_all(&all[0].path).expect("rm");
        std::fs::remove_dir_all(&all[1].path).expect("rm");
        let (cp, _) = latest(dir.path()).expect("latest");
        assert_eq!(
            (cp.name.as_str(), cp.state.weights_only),
            ("epoch-0002", true)
        );
    }

    /// Three checkpoints of 100 weight and 200 optimizer bytes; the first two.
    fn three_checkpoints() -> (tempfile::TempDir, [Checkpoint; 2]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = |p: &Path| -> Result<(), String> {
            std::fs::write(p.join(MODEL_FILE), [7u8; 100]).map_err(|e| e.to_string())?;
            std::fs::write(p.join(OPTIM_FILE), [8u8; 200]).map_err(|e| e.to_string())
        };
        let c1 = save(dir.path(), &state(1, 10), files).expect("save");
        let c2 = save(dir.path(), &state(2, 10), files).expect("save");
        save(dir.path(), &state(3, 10), files).expect("save");
        (dir, [c1, c2])
    }

    #[test]
    fn a_damaged_checkpoint_is_not_trimmed_and_a_crash_mid_trim_is_harmless() {
        let (dir, [c1, c2]) = three_checkpoints();
        // An older checkpoint, without the weights' own hash: its files are read to check them.
        let path = c1.path.join(STATE_FILE);
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        v.as_object_mut().expect("object").remove("model_hash");
        std::fs::write(&path, serde_json::to_vec(&v).expect("json")).expect("write");
        std::fs::write(c1.optim_path(), [0u8; 200]).expect("damage");
        // Trimmed but the file still there (a crash between the two steps).
        assert_eq!(drop_old_optimizer_state(dir.path(), 1).expect("trim"), 200);
        std::fs::write(c2.optim_path(), [8u8; 200]).expect("a stray file");
        let all = list(dir.path()).expect("list");
        assert_eq!(all.len(), 3, "nothing becomes unlisted");
        assert!(all[1].state.weights_only);
        verify(&all[1]).expect("the stray optimizer file is not part of it");
        assert!(!all[2].state.weights_only, "the damaged one is left alone");
        assert!(all[2].optim_path().exists());
        assert!(verify(&all[2]).is_err());
    }

    #[test]
    fn trimming_trusts_the_weights_hash_written_with_them_and_damage_still_shows() {
        let (dir, [c1, c2]) = three_checkpoints();
        assert!(c1.state.model_hash.is_some() && c2.state.model_hash.is_some());
        // Damaged optimizer state: it is dropped anyway, and the weights check out.
        std::fs::write(c2.optim_path(), [0u8; 200]).expect("damage");
        // Damaged weights of the right size: trimmed, and still found damaged.
        std::fs::write(c1.model_path(), [9u8; 100]).expect("damage");
        assert_eq!(drop_old_optimizer_state(dir.path(), 1).expect("trim"), 400);
        let all = list(dir.path()).expect("list");
        assert!(all[1].state.weights_only && all[2].state.weights_only);
        assert!(!all[1].optim_path().exists() && !all[2].optim_path().exists());
        assert_eq!(all[1].state.files_hash, c2.state.model_hash);
        verify(&all[1]).expect("the weights are intact");
        assert!(
            matches!(verify(&all[2]), Err(Damage::Hash)),
            "the weights were damaged"
        );
    }

    /// Whether `dir`'s file system takes `O_DIRECT`.
    fn takes_direct(dir: &Path) -> bool {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
            .open(dir.join("probe"))
            .is_ok()
    }

    #[test]
    fn files_out_writes_the_bytes_it_hashes_unbuffered_or_not() {
        let mut dirs = vec![tempfile::tempdir().expect("tempdir")];
        // tmpfs refuses O_DIRECT: the buffered way.
        if Path::new("/dev/shm").is_dir() {
            dirs.push(tempfile::tempdir_in("/dev/shm").expect("tempdir in /dev/shm"));
        }
        let sizes = [
            0,
            1,
            4095,
            4096,
            4097,
            3 * 4096 + 17,
            (8 << 20) + 5000,
            2 * (8 << 20),
        ];
        let mut seen_direct = false;
        for dir in &dirs {
            let direct = takes_direct(dir.path());
            seen_direct |= direct;
            for (i, &a) in sizes.iter().enumerate() {
                let b = sizes[sizes.len() - 1 - i];
                let sub = dir.path().join(format!("{a}-{b}"));
                std::fs::create_dir(&sub).expect("mkdir");
                let bytes = |n: usize, k: u64| -> Vec<u8> {
                    (0..n as u64)
                        .map(|j| (j.wrapping_mul(2_654_435_761).wrapping_add(k) >> 7) as u8)
                        .collect()
                };
                let (model, optim) = (bytes(a, 1), bytes(b, 2));
                // The weights from block-aligned memory (written without staging), the
                // optimizer state from memory one byte off (staged).
                let place = |v: &[u8], off: usize| {
                    let mut mem = vec![0u8; v.len() + 2 * BLOCK];
                    let start = mem.as_ptr().align_offset(BLOCK).min(BLOCK) + off;
                    mem[start..start + v.len()].copy_from_slice(v);
                    (mem, start)
                };
                let ((m, ms), (o, os)) = (place(&model, 0), place(&optim, 1));
                let mut out = FilesOut::new(&sub);
                out.write(MODEL_FILE, &m[ms..ms + a]).expect("model");
                out.write(OPTIM_FILE, &o[os..os + b]).expect("optim");
                assert_eq!(std::fs::read(sub.join(MODEL_FILE)).expect("read"), model);
                assert_eq!(std::fs::read(sub.join(OPTIM_FILE)).expect("read"), optim);
                let read =
                    files_hashes(&sub, &[MODEL_FILE, OPTIM_FILE], HashKind::CURRENT).expect("hash");
                let h = out.hashes();
                assert_eq!(vec![h.model, h.files], read, "sizes {a} and {b}");
                assert_eq!(
                    out.unbuffered,
                    if direct { 2 } else { 0 },
                    "{}",
                    sub.display()
                );
                // A file already there is refused, not overwritten.
                assert!(out.write(MODEL_FILE, &model).is_err());
            }
        }
        if !seen_direct {
            eprintln!("no file system here takes O_DIRECT: only the buffered way was tested");
        }
    }

    #[test]
    fn prune_keeps_newest() {
        let dir = tempfile::tempdir().expect("tempdir");
        for e in 1..=4 {
            save(dir.path(), &state(e, 10), fake_files).expect("save");
        }
        prune(dir.path(), 2).expect("prune");
        let names: Vec<String> = list(dir.path())
            .expect("list")
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["epoch-0004", "epoch-0003"]);
    }
}
