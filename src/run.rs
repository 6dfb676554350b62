//! The run directory, the source of truth: resolved config, classes, events, checkpoints.

pub mod checkpoint;
pub mod control;
pub mod event_log;
pub mod health;
pub mod small_file;
pub mod validation;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;

/// A run-directory problem, naming the path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    // Not a `source` field: the error is already in the text, and an error chain printed it twice.
    #[error("{path}: {error}; check the path, its permissions and the free disk space")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{path} is already a training run; continue it with `convscope resume {}` or choose another --run directory",
        shell_quote(.path)
    )]
    Exists { path: PathBuf },
    #[error(
        "{path} is not a convscope run directory (no config.toml); point at a folder made by `convscope train`"
    )]
    NotARun { path: PathBuf },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "{path} has no complete checkpoint yet; start the training again with `convscope train DATA --run {}` (a run directory with no checkpoint is started afresh)",
        shell_quote(.path.parent().unwrap_or(.path))
    )]
    NoCheckpoint { path: PathBuf },
    #[error(
        "another convscope process is writing to {path} right now; watch it with `convscope view {}`, or wait until it ends",
        shell_quote(.path)
    )]
    Busy { path: PathBuf },
    #[error(
        "{path} is a folder that already holds other files ({example}) and is not a convscope run; choose a new or empty --run directory"
    )]
    NotEmpty { path: PathBuf, example: String },
    #[error(
        "the run directory {run} would be inside the {what} folder {data}: its files would be read as images of a class; choose a --run directory outside it, e.g. --run {suggestion}"
    )]
    InsideData {
        run: PathBuf,
        what: &'static str,
        data: PathBuf,
        suggestion: PathBuf,
    },
    #[error(
        "the run directory {path} was deleted or replaced while training; stopped without writing anything more (this process has nowhere left to write its checkpoints)"
    )]
    Vanished { path: PathBuf },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |error| RunError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Read one of the run's small files (see [`small_file`]): a FIFO, a device or a huge file in
/// its place is refused, naming the file, instead of hanging or filling the memory.
pub(crate) fn read_small(path: &Path) -> Result<String, RunError> {
    small_file::read_string(path).map_err(small_file_err(path))
}

/// A [`small_file`] refusal as the run's error, naming `path`.
pub(crate) fn small_file_err(
    path: &Path,
) -> impl FnOnce(small_file::SmallFileError) -> RunError + '_ {
    move |e| match e {
        small_file::SmallFileError::Io(error) => RunError::Io {
            path: path.to_path_buf(),
            error,
        },
        other => RunError::Corrupt {
            path: path.to_path_buf(),
            message: other.to_string(),
        },
    }
}

/// `classes.json`: class names in index order, dataset sizes and skipped files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClassesInfo {
    pub classes: Vec<String>,
    pub train_images: usize,
    pub val_images: usize,
    pub skipped: Vec<SkippedFile>,
}

/// A file left out of training, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    pub reason: String,
}

// serde's own `Path` impl refuses non-UTF-8 names, which left classes.json empty when such a
// file was skipped; the name is written lossily (U+FFFD for bad bytes) instead.
fn lossy_path<S: serde::Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// Paths inside a run directory: every file name of a run is here, and only here.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

/// The resolved configuration: what makes a folder a run.
pub const CONFIG_FILE: &str = "config.toml";
/// The lock file inside a run directory: whoever holds an exclusive `flock` on it is the run's
/// only writer (a trainer, from before it writes anything until it exits).
const LOCK_FILE: &str = ".lock";
/// The output of a training in the background (`--detach`, a hand-off).
const OUT_FILE: &str = "convscope.out";
/// The trainer's log.
const LOG_FILE: &str = "convscope.log";
/// A viewer's log, when it may write into the run.
const VIEWER_LOG_FILE: &str = "viewer.log";
const CHECKPOINTS_DIR: &str = "checkpoints";
const CLASSES_FILE: &str = "classes.json";
const EVENTS_FILE: &str = "events.jsonl";
const SOCKET_FILE: &str = "control.sock";
const SAMPLES_DIR: &str = "samples";
const SOURCE_FILE: &str = "run.json";
const EXPORT_DIR: &str = "export";
/// The demo's synthetic dataset, inside its run directory.
const DEMO_DATA_DIR: &str = "demo-data";
/// Cached activation-maximisation images (`convscope explain --maximize`).
const MAXIMIZE_DIR: &str = "maximize";

/// Files a new run directory may already hold: the lock, the output of `--detach` (which makes
/// the folder before its background process takes it) and what a start that failed before
/// writing config.toml leaves.
const NEW_RUN_LEFTOVERS: [&str; 4] = [LOCK_FILE, OUT_FILE, LOG_FILE, CHECKPOINTS_DIR];

/// An exclusive hold on a run directory, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// What [`RunDir::create`] found at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Nothing, or an empty folder.
    New,
    /// A run that never wrote a complete checkpoint: it starts afresh (its earlier events stay
    /// in events.jsonl).
    NoCheckpoint,
}

/// Which device and inode a folder is, to notice that it was deleted or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    /// The identity of the folder at `path` now.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let m = std::fs::metadata(path)?;
        Ok(Self {
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

/// Quote `path` for a POSIX shell when it needs it, so a printed command can be pasted as is.
#[must_use]
pub fn shell_quote(path: &Path) -> String {
    let s = path.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./+:,=@%".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `path` made absolute with its symlinks resolved, also when its last components do not exist
/// yet (they are appended to the nearest existing ancestor, `.` and `..` taken lexically).
#[must_use]
pub fn resolve(path: &Path) -> PathBuf {
    use std::path::Component;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut rest = Vec::new();
    let mut base = abs.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(base) {
            let mut out = real;
            for c in rest.iter().rev() {
                match c {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::CurDir => {}
                    other => out.push(other.as_os_str()),
                }
            }
            return out;
        }
        let Some(parent) = base.parent() else {
            return abs;
        };
        if let Some(last) = base.components().next_back() {
            rest.push(last);
        }
        base = parent;
    }
}

/// Refuse a run directory inside the data folder `data` (`what`: "data" or "validation"): the
/// scan would read the run's own files (sample photos, exports) as a class of images.
pub fn refuse_inside_data(run: &Path, data: &Path, what: &'static str) -> Result<(), RunError> {
    let (run_abs, data_abs) = (resolve(run), resolve(data));
    if !run_abs.starts_with(&data_abs) {
        return Ok(());
    }
    let name = run_abs
        .file_name()
        .map_or_else(|| PathBuf::from("run"), PathBuf::from);
    let outside = data_abs
        .parent()
        .unwrap_or(&data_abs)
        .join("runs")
        .join(name);
    Err(RunError::InsideData {
        run: run.to_path_buf(),
        what,
        data: data.to_path_buf(),
        suggestion: outside,
    })
}

/// Write `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    use std::io::Write as _;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(io_err(&tmp))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(io_err(path)));
    if written.is_err() {
        // Leave no partial temporary file behind (a full disk is the usual cause).
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

impl RunDir {
    /// Write the bundled sample photos into `samples/` (the default probes); returns their
    /// absolute paths (a viewer started in another folder finds them too). A photo already
    /// there is kept; one that cannot be written is left out.
    pub fn write_samples(&self) -> Vec<PathBuf> {
        let dir = self.samples_path();
        let mut out = Vec::new();
        if std::fs::create_dir_all(&dir).is_err() {
            return out;
        }
        for (name, bytes) in crate::viz::SAMPLE_PHOTOS {
            let p = dir.join(name);
            if p.exists() || std::fs::write(&p, bytes).is_ok() {
                out.push(std::path::absolute(&p).unwrap_or(p));
            }
        }
        out
    }

    /// Create a run directory at `path` and lock it, before anything is written into it.
    /// Refuses a run that is in use or has a checkpoint, and a folder of other files; a run
    /// with no complete checkpoint is taken over (see [`Found::NoCheckpoint`]).
    pub fn create(path: &Path) -> Result<(Self, RunLock, Found), RunError> {
        if path.exists() && !path.is_dir() {
            return Err(RunError::NotEmpty {
                path: path.to_path_buf(),
                example: "it is a file, not a folder".into(),
            });
        }
        let run = Self {
            path: path.to_path_buf(),
        };
        // A folder of other files is refused before anything (the lock file) is made in it.
        if path.is_dir() && !run.config_path().exists() {
            run.check_new()?;
        }
        std::fs::create_dir_all(path).map_err(io_err(path))?;
        let lock = run.lock()?;
        let found = run.check_new()?;
        std::fs::create_dir_all(run.checkpoints_path()).map_err(io_err(path))?;
        Ok((run, lock, found))
    }

    /// Create a new run directory under `parent` named `stem`, or `stem-2`, `stem-3`, ... when
    /// that exists: two runs started in the same second get folders of their own.
    pub fn create_unique(parent: &Path, stem: &str) -> Result<(Self, RunLock, Found), RunError> {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        for i in 1..10_000 {
            let name = if i == 1 {
                stem.to_string()
            } else {
                format!("{stem}-{i}")
            };
            let path = parent.join(name);
            match std::fs::create_dir(&path) {
                Ok(()) => return Self::create(&path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        Err(RunError::Io {
            path: parent.join(stem),
            error: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "ten thousand runs of that name exist already",
            ),
        })
    }

    /// Take the run's writer lock; refuses while another process holds it.
    pub fn lock(&self) -> Result<RunLock, RunError> {
        let path = self.path.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(RunError::Busy {
                path: self.path.clone(),
            }),
            Err(e) => Err(io_err(&path)(e.into())),
        }
    }

    /// Whether a new run may start in this folder, and what it found there.
    fn check_new(&self) -> Result<Found, RunError> {
        if self.config_path().exists() {
            return match checkpoint::latest(&self.checkpoints_path()) {
                Err(RunError::NoCheckpoint { .. }) => Ok(Found::NoCheckpoint),
                _ => Err(RunError::Exists {
                    path: self.path.clone(),
                }),
            };
        }
        let entries = std::fs::read_dir(&self.path).map_err(io_err(&self.path))?;
        for entry in entries {
            let entry = entry.map_err(io_err(&self.path))?;
            let name = entry.file_name();
            let leftover = NEW_RUN_LEFTOVERS.iter().any(|n| name == *n);
            let empty_dir =
                || std::fs::read_dir(entry.path()).is_ok_and(|mut d| d.next().is_none());
            if !leftover || (name == CHECKPOINTS_DIR && !empty_dir()) {
                return Err(RunError::NotEmpty {
                    path: self.path.clone(),
                    example: name.to_string_lossy().into_owned(),
                });
            }
        }
        Ok(Found::New)
    }

    /// Whether `path` holds a run (its `config.toml`).
    #[must_use]
    pub fn is_run(path: &Path) -> bool {
        path.join(CONFIG_FILE).exists()
    }

    /// Open an existing run directory.
    pub fn open(path: &Path) -> Result<Self, RunError> {
        if !path.join(CONFIG_FILE).is_file() {
            return Err(RunError::NotARun {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// Where default runs go, `runs/`, and the name a run started now gets: its UTC time,
    /// `20261128-014942` (with `-2`, `-3`, ... added by [`RunDir::create_unique`] when taken).
    #[must_use]
    pub fn default_place() -> (PathBuf, String) {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (y, mo, d, h, mi, s) = civil_from_unix(secs);
        (
            PathBuf::from("runs"),
            format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}"),
        )
    }

    #[must_use]
    pub fn config_path(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }
    #[must_use]
    pub fn classes_path(&self) -> PathBuf {
        self.path.join(CLASSES_FILE)
    }
    #[must_use]
    pub fn events_path(&self) -> PathBuf {
        self.path.join(EVENTS_FILE)
    }
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.path.join(LOG_FILE)
    }
    /// A viewer's log inside the run.
    #[must_use]
    pub fn viewer_log_path(&self) -> PathBuf {
        self.path.join(VIEWER_LOG_FILE)
    }
    /// The output of a training in the background.
    #[must_use]
    pub fn out_path(&self) -> PathBuf {
        self.path.join(OUT_FILE)
    }
    #[must_use]
    pub fn checkpoints_path(&self) -> PathBuf {
        self.path.join(CHECKPOINTS_DIR)
    }
    #[must_use]
    pub fn socket_path(&self) -> PathBuf {
        self.path.join(SOCKET_FILE)
    }
    #[must_use]
    pub fn samples_path(&self) -> PathBuf {
        self.path.join(SAMPLES_DIR)
    }
    /// `run.json`: where the run's data came from ([`RunSource`]).
    #[must_use]
    pub fn source_path(&self) -> PathBuf {
        self.path.join(SOURCE_FILE)
    }
    /// Where the viewer's `e` writes its pictures.
    #[must_use]
    pub fn export_path(&self) -> PathBuf {
        self.path.join(EXPORT_DIR)
    }
    /// The demo's synthetic dataset.
    #[must_use]
    pub fn demo_data_path(&self) -> PathBuf {
        self.path.join(DEMO_DATA_DIR)
    }
    /// `health/`: unit health per epoch ([`health`]).
    #[must_use]
    pub fn health_path(&self) -> PathBuf {
        health::dir(&self.path)
    }

    /// The cached activation-maximisation images of one checkpoint, conv layer, tier and seed.
    #[must_use]
    pub fn maximize_path(&self, checkpoint: &str, layer: &str, tier: &str, seed: u64) -> PathBuf {
        self.path
            .join(MAXIMIZE_DIR)
            .join(checkpoint)
            .join(format!("{layer}-{tier}-seed{seed}"))
    }

    /// Write the fully resolved config (nothing, and an error, when it cannot be encoded).
    pub fn write_config(&self, cfg: &Config) -> Result<(), RunError> {
        let text = format!(
            "# Resolved configuration of this run (file + environment + flags).\n{}",
            cfg.try_to_toml()?
        );
        write_atomic(&self.config_path(), text.as_bytes())
    }

    /// Read the resolved config back.
    pub fn read_config(&self) -> Result<Config, RunError> {
        let path = self.config_path();
        let cfg = Config::from_toml(&read_small(&path)?, &path.display().to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Write `classes.json`.
    pub fn write_classes(&self, info: &ClassesInfo) -> Result<(), RunError> {
        let path = self.classes_path();
        let text = serde_json::to_string_pretty(info).map_err(|e| RunError::Corrupt {
            path: path.clone(),
            message: format!("cannot encode the class list: {e}"),
        })?;
        write_atomic(&path, text.as_bytes())
    }

    /// Read `classes.json`.
    pub fn read_classes(&self) -> Result<ClassesInfo, RunError> {
        let path = self.classes_path();
        let text = read_small(&path)?;
        serde_json::from_str(&text).map_err(|e| RunError::Corrupt {
            path,
            message: format!("not valid classes JSON: {e}"),
        })
    }
}

/// Where a run's data came from (`run.json`), so that `resume` can find it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSource {
    pub data_dir: PathBuf,
    pub val_dir: Option<PathBuf>,
}

impl RunSource {
    /// Record the (absolute) data paths in `run.json` (nothing, and an error, when they cannot
    /// be encoded).
    pub fn write(&self, run: &RunDir) -> Result<(), RunError> {
        let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let me = Self {
            data_dir: abs(&self.data_dir),
            val_dir: self.val_dir.as_deref().map(abs),
        };
        let path = run.source_path();
        let text = serde_json::to_string_pretty(&me).map_err(|e| RunError::Corrupt {
            path: path.clone(),
            message: format!("cannot encode the data folders: {e}"),
        })?;
        write_atomic(&path, text.as_bytes())
    }

    /// Read `run.json`.
    pub fn read(run: &RunDir) -> Result<Self, RunError> {
        let path = run.source_path();
        let text = read_small(&path)?;
        serde_json::from_str(&text).map_err(|e| RunError::Corrupt {
            path,
            message: format!("not valid run JSON: {e}"),
        })
    }
}

/// Convert Unix seconds to a UTC civil date and time (Howard Hinnant's algorithm).
fn civil_from_unix(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

/// The epochs `N` of the `epoch-NNNN{suffix}` files in `dir`, in order (none when it is missing).
fn numbered_epochs(dir: &Path, suffix: &str) -> Vec<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<usize> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            name.strip_prefix("epoch-")?
                .strip_suffix(suffix)?
                .parse()
                .ok()
        })
        .collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil_from_unix(1_795_830_582), (2026, 11, 28, 1, 49, 42));
    }

    #[test]
    fn classes_json_survives_a_non_utf8_skipped_name() {
        use std::os::unix::ffi::OsStrExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let (run, _lock, _) = RunDir::create(&dir.path().join("r")).expect("create");
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.jpg");
        let info = ClassesInfo {
            classes: vec!["a".into(), "b".into()],
            train_images: 3,
            val_images: 1,
            skipped: vec![SkippedFile {
                path: Path::new("data/a").join(name),
                reason: "empty file (0 bytes)".into(),
            }],
        };
        run.write_classes(&info).expect("write");
        let back = run.read_classes().expect("read");
        assert_eq!(back.classes, info.classes);
        assert_eq!(back.skipped[0].path, Path::new("data/a/caf\u{fffd}.jpg"));
    }

    #[test]
    fn create_refuses_existing_run_and_open_refuses_non_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (run, lock, found) = RunDir::create(&dir.path().join("r")).expect("create");
        assert_eq!(found, Found::New);
        run.write_config(&Config::default()).expect("write");
        // While the first holds the lock, nobody else gets in (flock is per open file, so
        // this holds within one process too).
        assert!(matches!(
            RunDir::create(&run.path),
            Err(RunError::Busy { .. })
        ));
        assert!(matches!(run.lock(), Err(RunError::Busy { .. })));
        drop(lock);
        // A run with no complete checkpoint is taken over; one with a checkpoint is refused.
        let (_, lock, found) = RunDir::create(&run.path).expect("no checkpoint: reused");
        assert_eq!(found, Found::NoCheckpoint);
        drop(lock);
        let state = checkpoint::TrainState {
            epoch: 1,
            batch: 2,
            batches_per_epoch: 2,
            ..Default::default()
        };
        checkpoint::save(&run.checkpoints_path(), &state, |tmp| {
            std::fs::write(tmp.join(checkpoint::MODEL_FILE), b"m").map_err(|e| e.to_string())?;
            std::fs::write(tmp.join(checkpoint::OPTIM_FILE), b"o").map_err(|e| e.to_string())
        })
        .expect("checkpoint");
        assert!(matches!(
            RunDir::create(&run.path),
            Err(RunError::Exists { .. })
        ));
        assert_eq!(run.read_config().expect("read"), Config::default());
        assert!(matches!(
            RunDir::open(dir.path()),
            Err(RunError::NotARun { .. })
        ));
    }

    #[test]
    fn a_folder_of_other_files_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path().join("mine");
        std::fs::create_dir_all(folder.join("checkpoints/epoch-0001")).expect("mkdir");
        std::fs::write(folder.join("control.sock"), b"my notes").expect("write");
        let err = RunDir::create(&folder).expect_err("refused");
        assert!(matches!(err, RunError::NotEmpty { .. }), "{err}");
        assert!(err.to_string().contains("not a convscope run"), "{err}");
        assert_eq!(
            std::fs::read(folder.join("control.sock")).expect("kept"),
            b"my notes"
        );
        assert!(folder.join("checkpoints/epoch-0001").is_dir());
        // A file where the folder should be.
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        assert!(matches!(
            RunDir::create(&file),
            Err(RunError::NotEmpty { .. })
        ));
        // What --detach leaves before its background process starts is fine.
        let detached = dir.path().join("detached");
        std::fs::create_dir(&detached).expect("mkdir");
        std::fs::write(detached.join("convscope.out"), b"").expect("write");
        assert!(RunDir::create(&detached).is_ok());
    }

    #[test]
    fn runs_started_in_the_same_second_get_folders_of_their_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, _la, _) = RunDir::create_unique(dir.path(), "20261202-200000").expect("a");
        let (b, _lb, _) = RunDir::create_unique(dir.path(), "20261202-200000").expect("b");
        let (c, _lc, _) = RunDir::create_unique(dir.path(), "20261202-200000").expect("c");
        assert_eq!(a.path, dir.path().join("20261202-200000"));
        assert_eq!(b.path, dir.path().join("20261202-200000-2"));
        assert_eq!(c.path, dir.path().join("20261202-200000-3"));
    }

    #[test]
    fn printed_paths_are_quoted_for_the_shell_when_needed() {
        assert_eq!(shell_quote(Path::new("runs/2026-x_1")), "runs/2026-x_1");
        assert_eq!(shell_quote(Path::new("my runs/a")), "'my runs/a'");
        assert_eq!(shell_quote(Path::new("it's")), "'it'\\''s'");
        assert_eq!(shell_quote(Path::new("")), "''");
    }

    #[test]
    fn a_run_inside_the_data_folder_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("bag")).expect("mkdir");
        for run in [
            data.join("runs/x"),
            data.clone(),
            data.join("bag/x"),
            data.join("new/../runs/y"),
        ] {
            let err = refuse_inside_data(&run, &data, "data").expect_err("inside");
            let text = err.to_string();
            assert!(text.contains("would be inside the data folder"), "{text}");
            assert!(
                text.contains(&dir.path().join("runs").display().to_string()),
                "suggests a folder beside the data: {text}"
            );
        }
        refuse_inside_data(&dir.path().join("runs/x"), &data, "data").expect("outside");
        refuse_inside_data(&dir.path().join("data2/x"), &data, "data").expect("a sibling");
        // Through a symlink to the data folder.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&data, &link).expect("symlink");
        assert!(refuse_inside_data(&link.join("runs/z"), &data, "data").is_err());
    }
}
