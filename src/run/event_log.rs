//! `events.jsonl`: append-only, one JSON object per line; readers tolerate a torn last line.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{RunError, io_err, small_file};
use crate::events::Event;

/// Appends events to `events.jsonl`, one flushed line each.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    file: File,
}

impl EventLog {
    /// Open for appending, creating the file. A torn last line left by a crash is terminated so
    /// that the next event starts on its own line.
    pub fn append(path: &Path) -> Result<Self, RunError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Not waiting in `open`, and refusing what is not a regular file: a FIFO in the log's
        // place would take the events until its buffer filled, then hang the trainer.
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(path)
            .map_err(io_err(path))?;
        let meta = file.metadata().map_err(io_err(path))?;
        if !meta.is_file() {
            return Err(RunError::Corrupt {
                path: path.to_path_buf(),
                message: format!(
                    "is {}, not a regular file; put the run's own file back (or remove it)",
                    small_file::kind(&meta)
                ),
            });
        }
        let len = meta.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1)).map_err(io_err(path))?;
            file.read_exact(&mut last).map_err(io_err(path))?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(io_err(path))?;
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Append one event (snapshots are not logged).
    pub fn write(&mut self, event: &Event) -> Result<(), RunError> {
        if matches!(
            event,
            Event::Filters(_) | Event::FeatureMaps(_) | Event::Health(_)
        ) {
            return Ok(());
        }
        let mut line = serde_json::to_vec(event).map_err(|e| RunError::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        line.push(b'\n');
        // One write call per line keeps lines whole for concurrent readers.
        self.file.write_all(&line).map_err(io_err(&self.path))
    }
}

/// Read every complete event; a torn or unparsable last line is ignored, a bad line in the
/// middle is skipped and counted.
pub fn read_all(path: &Path) -> Result<(Vec<Event>, usize), RunError> {
    let file = open_log(path)?;
    let mut tail = Tail {
        reader: BufReader::new(file),
        partial: Vec::new(),
        bad_lines: 0,
    };
    let events = tail.poll().map_err(io_err(path))?;
    Ok((events, tail.bad_lines))
}

/// Open the log for reading, only if it is a regular file: a FIFO in its place would hang the
/// reader (a viewer, `export`, `resume`) in `open` or `read`, a device would never end.
fn open_log(path: &Path) -> Result<File, RunError> {
    small_file::open_regular(path, u64::MAX)
        .map(|(file, _)| file)
        .map_err(super::small_file_err(path))
}

/// Follows a growing `events.jsonl`.
#[derive(Debug)]
pub struct Tail {
    reader: BufReader<File>,
    /// Bytes of a line not finished yet; kept as bytes because the writer may be in the middle
    /// of a multi-byte character.
    partial: Vec<u8>,
    /// Lines that were complete but not valid events.
    pub bad_lines: usize,
}

impl Tail {
    /// Start following `path` from its beginning.
    pub fn open(path: &Path) -> Result<Self, RunError> {
        let file = open_log(path)?;
        Ok(Self {
            reader: BufReader::new(file),
            partial: Vec::new(),
            bad_lines: 0,
        })
    }

    /// Events from lines completed since the last call. A line without its newline yet is kept
    /// until it is finished.
    pub fn poll(&mut self) -> std::io::Result<Vec<Event>> {
        let mut out = Vec::new();
        loop {
            let n = self.reader.read_until(b'\n', &mut self.partial)?;
            if n == 0 {
                break;
            }
            if self.partial.last() != Some(&b'\n') {
                break;
            }
            let bytes = std::mem::take(&mut self.partial);
            let line = String::from_utf8_lossy(&bytes);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match serde_json::from_str::<Event>(line) {
                Ok(e) => out.push(e),
                Err(_) => self.bad_lines += 1,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{FailInfo, RunState, StatusChange};

    #[test]
    fn torn_last_line_is_ignored_then_repaired() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        let mut log = EventLog::append(&path).expect("open");
        log.write(&Event::Status(StatusChange {
            state: RunState::Running,
        }))
        .expect("write");
        drop(log);
        // A crash mid-write leaves half a line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"event\":\"epo"))
            .expect("tear");
        let (events, bad) = read_all(&path).expect("read");
        assert_eq!(events.len(), 1);
        assert_eq!(bad, 0);
        // Appending again starts a fresh line; the torn one counts as bad, the new one parses.
        let mut log = EventLog::append(&path).expect("reopen");
        log.write(&Event::Failed(FailInfo { error: "x".into() }))
            .expect("write");
        let (events, bad) = read_all(&path).expect("read");
        assert_eq!(events.len(), 2);
        assert_eq!(bad, 1);
    }

    #[test]
    fn tail_follows_growth() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        let mut log = EventLog::append(&path).expect("open");
        let mut tail = Tail::open(&path).expect("tail");
        assert!(tail.poll().expect("poll").is_empty());
        log.write(&Event::Status(StatusChange {
            state: RunState::Paused,
        }))
        .expect("write");
        assert_eq!(tail.poll().expect("poll").len(), 1);
        assert!(tail.poll().expect("poll").is_empty());
    }
}
