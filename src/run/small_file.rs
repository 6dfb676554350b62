//! The run's small files (`checkpoints/latest`, `state.json`, `run.json`, `classes.json`,
//! `config.toml`) read with a size cap, and only when they are regular files: a FIFO in their
//! place must not hang the reader, nor a link to `/dev/zero` fill its memory.

use std::fs::File;
use std::io::Read as _;
use std::path::Path;

/// The most any of these files may take (classes.json lists skipped files, so it is the
/// largest: some 500,000 of them fit).
pub const MAX_BYTES: u64 = 64 << 20;

/// Why a small file was not read.
#[derive(Debug, thiserror::Error)]
pub enum SmallFileError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("is {what}, not a regular file; put the run's own file back (or remove it)")]
    NotRegular { what: &'static str },
    #[error(
        "is {len} bytes, more than such a file ever takes ({cap} at most); it is not the run's own file: put that back (or remove it)"
    )]
    TooLarge { len: u64, cap: u64 },
}

/// What kind of file `meta` describes, in words.
#[must_use]
pub fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// Open `path` for reading only if it is a regular file of at most `cap` bytes. The open does
/// not wait (`O_NONBLOCK`: opening a FIFO with no writer otherwise blocks until one comes),
/// and the check is made on the open file, so it cannot be swapped in between.
pub fn open_regular(path: &Path, cap: u64) -> Result<(File, u64), SmallFileError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(SmallFileError::NotRegular { what: kind(&meta) });
    }
    if meta.len() > cap {
        return Err(SmallFileError::TooLarge {
            len: meta.len(),
            cap,
        });
    }
    Ok((file, meta.len()))
}

/// Read a regular file of at most `cap` bytes whole (a file growing meanwhile is cut at `cap`
/// and refused).
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, SmallFileError> {
    let (file, len) = open_regular(path, cap)?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(SmallFileError::TooLarge {
            len: bytes.len() as u64,
            cap,
        });
    }
    Ok(bytes)
}

/// Read one of the run's small files as text.
pub fn read_string(path: &Path) -> Result<String, SmallFileError> {
    let bytes = read_capped(path, MAX_BYTES)?;
    String::from_utf8(bytes).map_err(|e| {
        SmallFileError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text ({e})"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_and_anything_else_refused_without_waiting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = dir.path().join("latest");
        std::fs::write(&ok, "epoch-0001\n").expect("write");
        assert_eq!(read_string(&ok).expect("read"), "epoch-0001\n");

        // A FIFO nobody writes to: opening it for reading would wait for a writer forever.
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .expect("mkfifo");
        let err = read_string(&fifo).expect_err("refused").to_string();
        assert!(
            err.starts_with("is a FIFO (named pipe), not a regular file"),
            "{err}"
        );

        // A link to an endless device.
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
        let err = read_string(&zero).expect_err("refused").to_string();
        assert!(err.starts_with("is a character device"), "{err}");

        assert!(
            read_string(dir.path())
                .expect_err("a folder")
                .to_string()
                .starts_with("is a folder")
        );

        // Large, without taking the disk: a sparse file.
        let big = dir.path().join("big");
        std::fs::File::create(&big)
            .and_then(|f| f.set_len(MAX_BYTES + 1))
            .expect("sparse file");
        let err = read_string(&big).expect_err("refused").to_string();
        assert!(
            err.starts_with(&format!("is {} bytes", MAX_BYTES + 1)),
            "{err}"
        );
        assert!(matches!(
            read_string(&dir.path().join("missing")),
            Err(SmallFileError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
        ));
    }
}
