//! The run directory, the source of truth: resolved config, classes, events, checkpoints.

pub mod checkpoint;
pub mod control;
pub mod event_log;
pub mod small_file;

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
        "{path} is already a training run; continue it with `convscope resume {path}` or choose another --run directory"
    )]
    Exists { path: PathBuf },
    #[error(
        "{path} is not a convscope run directory (no config.toml); point at a folder made by `convscope train`"
    )]
    NotARun { path: PathBuf },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "{path} has no complete checkpoint yet; start the training again with `convscope train`"
    )]
    NoCheckpoint { path: PathBuf },
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
    small_file::read_string(path).map_err(|e| match e {
        small_file::SmallFileError::Io(error) => RunError::Io {
            path: path.to_path_buf(),
            error,
        },
        other => RunError::Corrupt {
            path: path.to_path_buf(),
            message: other.to_string(),
        },
    })
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

/// Paths inside a run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
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
    /// Create a new run directory; refuses one that already holds a run.
    pub fn create(path: &Path) -> Result<Self, RunError> {
        if path.join("config.toml").exists() {
            return Err(RunError::Exists {
                path: path.to_path_buf(),
            });
        }
        std::fs::create_dir_all(path.join("checkpoints")).map_err(io_err(path))?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// Open an existing run directory.
    pub fn open(path: &Path) -> Result<Self, RunError> {
        if !path.join("config.toml").is_file() {
            return Err(RunError::NotARun {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// A fresh default location: `runs/<UTC timestamp>`.
    #[must_use]
    pub fn default_path() -> PathBuf {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (y, mo, d, h, mi, s) = civil_from_unix(secs);
        PathBuf::from("runs").join(format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}"))
    }

    #[must_use]
    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.toml")
    }
    #[must_use]
    pub fn classes_path(&self) -> PathBuf {
        self.path.join("classes.json")
    }
    #[must_use]
    pub fn events_path(&self) -> PathBuf {
        self.path.join("events.jsonl")
    }
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.path.join("convscope.log")
    }
    #[must_use]
    pub fn checkpoints_path(&self) -> PathBuf {
        self.path.join("checkpoints")
    }
    #[must_use]
    pub fn socket_path(&self) -> PathBuf {
        self.path.join("control.sock")
    }
    #[must_use]
    pub fn samples_path(&self) -> PathBuf {
        self.path.join("samples")
    }

    /// Write the fully resolved config.
    pub fn write_config(&self, cfg: &Config) -> Result<(), RunError> {
        let text = format!(
            "# Resolved configuration of this run (file + environment + flags).\n{}",
            cfg.to_toml()
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
        let run = RunDir::create(&dir.path().join("r")).expect("create");
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
        let run = RunDir::create(&dir.path().join("r")).expect("create");
        run.write_config(&Config::default()).expect("write");
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
}
