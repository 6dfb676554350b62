//! `control.sock`: a live run's Unix socket for pause / resume / stop / checkpoint-now / probe.
//!
//! Protocol: one JSON `Command` per line; the server answers one JSON line per command,
//! `{"ok":true}` or `{"ok":false,"error":"..."}`. Only the run's owner may connect (mode 0600
//! and the peer's uid checked). A line may carry `"deadline"` (Unix seconds): a command that
//! arrives later (the trainer was stopped by SIGSTOP, say, and its client gave up) is answered
//! with an error and not carried out. Lines are at most [`MAX_LINE`] bytes, and at most
//! [`MAX_CLIENTS`] clients are served at once.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{RunError, io_err};
use crate::events::Command;

/// The server's answer to one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The longest command line accepted; a longer one closes the connection.
pub const MAX_LINE: u64 = 64 * 1024;
/// Clients served at once; more are answered with an error and closed.
pub const MAX_CLIENTS: usize = 16;
/// How long a client waits for the answer, and so how long a command stays valid.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// A listening control socket; dropping it stops the server and removes the socket file
/// (only if it is still this server's: a new run in a re-made folder keeps its own).
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    inode: Option<(u64, u64)>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if self.inode.is_some() && inode(&self.path) == self.inode {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn inode(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Call `f` with `path` or, when it is too long for a Unix socket address (108 bytes with its
/// terminator), with a short path to the same file through `/proc/self/fd`: deep experiment
/// folders work too.
fn short_path<T>(path: &Path, f: impl FnOnce(&Path) -> std::io::Result<T>) -> std::io::Result<T> {
    const ROOM: usize = 100;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return f(path);
    };
    if path.as_os_str().len() < ROOM {
        return f(path);
    }
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let handle = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd())).join(name);
    if short.as_os_str().len() >= ROOM {
        return f(path);
    }
    let out = f(&short);
    drop(handle);
    out
}

fn connect(path: &Path) -> std::io::Result<UnixStream> {
    short_path(path, |p| UnixStream::connect(p))
}

/// Whether a process is serving `path` right now.
#[must_use]
pub fn is_live(path: &Path) -> bool {
    connect(path).is_ok()
}

/// Listen on `path`, forwarding every accepted command to `commands`.
pub fn serve(path: &Path, commands: Sender<Command>) -> Result<ControlServer, RunError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            if is_live(path) {
                return Err(RunError::Corrupt {
                    path: path.to_path_buf(),
                    message: "another convscope process is training this run right now; attach to it with `convscope view` instead".into(),
                });
            }
            if !meta.file_type().is_socket() {
                return Err(RunError::Corrupt {
                    path: path.to_path_buf(),
                    message: "this is not a socket, and convscope only replaces a socket left by a process that died; move it out of the run directory".into(),
                });
            }
            // A socket left by a process that died.
            std::fs::remove_file(path).map_err(io_err(path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path)(e)),
    }
    let listener = short_path(path, |p| UnixListener::bind(p)).map_err(io_err(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err(path))?;
    listener.set_nonblocking(true).map_err(io_err(path))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flag = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("control".into())
        .spawn(move || accept_loop(&listener, &commands, &stop_flag))
        .map_err(io_err(path))?;
    Ok(ControlServer {
        path: path.to_path_buf(),
        inode: inode(path),
        stop,
        thread: Some(thread),
    })
}

fn accept_loop(listener: &UnixListener, commands: &Sender<Command>, stop: &AtomicBool) {
    let me = rustix::process::geteuid();
    let clients = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let peer = rustix::net::sockopt::socket_peercred(&stream);
                if !matches!(peer, Ok(cred) if cred.uid == me) {
                    tracing::warn!(
                        "control socket: refused a connection from another user ({peer:?})"
                    );
                    continue;
                }
                if clients.load(Ordering::SeqCst) >= MAX_CLIENTS {
                    tracing::warn!(
                        "control socket: refused a connection: {MAX_CLIENTS} clients are connected already"
                    );
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
                    let _ = reply_line(
                        &mut stream,
                        &Reply {
                            ok: false,
                            error: Some(format!(
                                "{MAX_CLIENTS} clients are connected already; close one and try again"
                            )),
                        },
                    );
                    continue;
                }
                let commands = commands.clone();
                let count = Arc::clone(&clients);
                count.fetch_add(1, Ordering::SeqCst);
                let spawned = std::thread::Builder::new()
                    .name("control-client".into())
                    .spawn(move || {
                        serve_client(stream, &commands);
                        count.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    clients.fetch_sub(1, Ordering::SeqCst);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                tracing::error!("control socket: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn reply_line(stream: &mut UnixStream, reply: &Reply) -> std::io::Result<()> {
    let mut text = serde_json::to_string(reply)
        .unwrap_or_else(|_| r#"{"ok":false,"error":"cannot encode the reply"}"#.into());
    text.push('\n');
    stream.write_all(text.as_bytes())
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A line that is not a command.
#[derive(Debug, thiserror::Error)]
enum BadLine {
    #[error("not a command: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a command: deadline {0} is not a number of seconds")]
    Deadline(serde_json::Value),
}

/// Parse one line: the command, and its deadline if it has one.
fn parse_line(line: &str) -> Result<(Command, Option<f64>), BadLine> {
    let mut value: serde_json::Value = serde_json::from_str(line)?;
    let deadline = value
        .as_object_mut()
        .and_then(|o| o.remove("deadline"))
        .map(|d| d.as_f64().ok_or(BadLine::Deadline(d)))
        .transpose()?;
    let cmd = serde_json::from_value(value)?;
    Ok((cmd, deadline))
}

fn serve_client(stream: UnixStream, commands: &Sender<Command>) {
    let _ = stream.set_nonblocking(false);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut reader).take(MAX_LINE + 1).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if buf.last() != Some(&b'\n') {
            if buf.len() as u64 > MAX_LINE {
                let _ = reply_line(
                    &mut writer,
                    &Reply {
                        ok: false,
                        error: Some(format!(
                            "a command line is at most {MAX_LINE} bytes; closing the connection"
                        )),
                    },
                );
            }
            // Too long, or the client left in the middle of a line.
            return;
        }
        let line = String::from_utf8_lossy(&buf);
        if line.trim().is_empty() {
            continue;
        }
        let reply = match parse_line(line.trim()) {
            Ok((_, Some(deadline))) if now_secs() > deadline => {
                tracing::warn!(
                    "control socket: a command arrived after its deadline (this process was held up, e.g. stopped by SIGSTOP); not carried out: {}",
                    line.trim().escape_debug()
                );
                Reply {
                    ok: false,
                    error: Some("the command arrived too late (the training was held up) and was not carried out; send it again".into()),
                }
            }
            Ok((cmd, _)) => {
                tracing::info!("control socket: {cmd:?}");
                if commands.send(cmd).is_ok() {
                    Reply {
                        ok: true,
                        error: None,
                    }
                } else {
                    Reply {
                        ok: false,
                        error: Some("the training has ended".into()),
                    }
                }
            }
            Err(error) => Reply {
                ok: false,
                error: Some(error.to_string()),
            },
        };
        if reply_line(&mut writer, &reply).is_err() {
            return;
        }
    }
}

/// Send one command to the live run at `path` and wait for its answer.
pub fn send(path: &Path, command: &Command) -> Result<(), RunError> {
    let err = |message: String| RunError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let mut stream = connect(path).map_err(|e| {
        err(format!(
            "no live training to talk to ({e}); the run may have finished or been interrupted"
        ))
    })?;
    stream
        .set_read_timeout(Some(ANSWER_WITHIN))
        .map_err(io_err(path))?;
    // A probe's image is named from this process's folder; the trainer runs in another.
    let command = match command {
        Command::Probe { image } if image.is_relative() => Command::Probe {
            image: std::path::absolute(image).unwrap_or_else(|_| image.clone()),
        },
        other => other.clone(),
    };
    let mut value = serde_json::to_value(&command).map_err(|e| err(e.to_string()))?;
    if let Some(o) = value.as_object_mut() {
        // Not carried out if it arrives after this client has stopped waiting for it.
        o.insert(
            "deadline".into(),
            serde_json::Value::from(now_secs() + ANSWER_WITHIN.as_secs_f64()),
        );
    }
    let mut line = value.to_string();
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io_err(path))?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => err(format!(
                "the training did not answer within {} s (is it stopped, e.g. by Ctrl-Z or SIGSTOP?); the command was not carried out",
                ANSWER_WITHIN.as_secs()
            )),
            _ => io_err(path)(e),
        })?;
    let reply: Reply = serde_json::from_str(answer.trim())
        .map_err(|e| err(format!("bad reply {answer:?}: {e}")))?;
    if reply.ok {
        Ok(())
    } else {
        Err(err(reply.error.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_arrive_and_socket_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control.sock");
        let (tx, rx) = std::sync::mpsc::channel();
        let server = serve(&path, tx).expect("serve");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        send(&path, &Command::Pause).expect("pause");
        send(
            &path,
            &Command::Probe {
                image: "x.png".into(),
            },
        )
        .expect("probe");
        assert_eq!(rx.recv().expect("cmd"), Command::Pause);
        // The trainer runs in another folder: a relative image path is sent absolute.
        assert_eq!(
            rx.recv().expect("cmd"),
            Command::Probe {
                image: std::env::current_dir().expect("cwd").join("x.png")
            }
        );
        // A second server on the same live socket is refused.
        let (tx2, _rx2) = std::sync::mpsc::channel();
        assert!(serve(&path, tx2).is_err());
        drop(server);
        assert!(!path.exists());
        assert!(send(&path, &Command::Stop).is_err());
    }

    #[test]
    fn stale_socket_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control.sock");
        // A socket file nobody listens on, as left by a killed process.
        drop(UnixListener::bind(&path).expect("bind"));
        let (tx, rx) = std::sync::mpsc::channel();
        let _server = serve(&path, tx).expect("serve replaces stale socket");
        send(&path, &Command::Resume).expect("resume");
        assert_eq!(rx.recv().expect("cmd"), Command::Resume);
    }

    #[test]
    fn a_socket_path_too_long_for_an_address_still_serves() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut deep = dir.path().to_path_buf();
        for i in 0..5 {
            deep.push(format!("a-rather-long-folder-name-number-{i}"));
        }
        std::fs::create_dir_all(&deep).expect("mkdir");
        let path = deep.join("control.sock");
        assert!(path.as_os_str().len() > 150);
        let (tx, rx) = std::sync::mpsc::channel();
        let server = serve(&path, tx).expect("serve");
        assert!(path.exists(), "the socket is at its real path");
        assert!(is_live(&path));
        send(&path, &Command::Pause).expect("pause");
        assert_eq!(rx.recv().expect("cmd"), Command::Pause);
        drop(server);
        assert!(!path.exists());
    }

    #[test]
    fn a_file_that_is_not_a_socket_is_never_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control.sock");
        std::fs::write(&path, b"someone's notes").expect("write");
        let (tx, _rx) = std::sync::mpsc::channel();
        let err = serve(&path, tx).expect_err("refused");
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(std::fs::read(&path).expect("kept"), b"someone's notes");
    }

    #[test]
    fn a_server_leaves_a_newer_socket_at_its_path_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control.sock");
        let (tx, _rx) = std::sync::mpsc::channel();
        let server = serve(&path, tx).expect("serve");
        // The run directory was re-made and another run listens at the same path now.
        std::fs::remove_file(&path).expect("rm");
        let other = UnixListener::bind(&path).expect("bind");
        drop(server);
        assert!(path.exists(), "the other run's socket stays");
        drop(other);
    }

    #[test]
    fn a_late_command_is_refused_and_not_carried_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control.sock");
        let (tx, rx) = std::sync::mpsc::channel();
        let _server = serve(&path, tx).expect("serve");
        let mut s = UnixStream::connect(&path).expect("connect");
        s.write_all(b"{\"command\":\"stop\",\"deadline\":1000}\n")
            .expect("write");
        let mut answer = String::new();
        BufReader::new(&s).read_line(&mut answer).expect("read");
        assert!(answer.contains("too late"), "{answer}");
        s.write_all(b"{\"command\":\"pause\",\"deadline\":\"soon\"}\n")
            .expect("write");
        let mut answer = String::new();
        BufReader::new(&s).read_line(&mut answer).expect("read");
        assert!(answer.contains("not a number"), "{answer}");
        // Without a deadline (socat by hand) and with one still ahead: carried out.
        s.write_all(b"{\"command\":\"pause\"}\n").expect("write");
        let mut answer = String::new();
        BufReader::new(&s).read_line(&mut answer).expect("read");
        assert!(answer.contains("\"ok\":true"), "{answer}");
        send(&path, &Command::Resume).expect("resume");
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            vec![Command::Pause, Command::Resume]
        );
    }

    #[test]
    fn an_endless_line_is_cut_off_and_clients_are_capped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control.sock");
        let (tx, rx) = std::sync::mpsc::channel();
        let _server = serve(&path, tx).expect("serve");
        let mut s = UnixStream::connect(&path).expect("connect");
        let chunk = vec![b'x'; 1 << 16];
        // The server closes the connection after MAX_LINE bytes; writing on fails.
        let mut written = 0u64;
        while written < 16 * MAX_LINE {
            if s.write_all(&chunk).is_err() {
                break;
            }
            written += chunk.len() as u64;
        }
        let mut answer = String::new();
        let _ = BufReader::new(&s).read_line(&mut answer);
        assert!(answer.contains("at most"), "{answer}");
        assert!(rx.try_recv().is_err());
        // MAX_CLIENTS connections are served; one more is told why it is refused.
        let held: Vec<UnixStream> = (0..MAX_CLIENTS)
            .map(|_| {
                let mut c = UnixStream::connect(&path).expect("connect");
                c.write_all(b"{\"command\":\"pause\"}\n").expect("write");
                let mut a = String::new();
                BufReader::new(&c).read_line(&mut a).expect("read");
                assert!(a.contains("\"ok\":true"), "{a}");
                c
            })
            .collect();
        let extra = UnixStream::connect(&path).expect("connect");
        let mut a = String::new();
        BufReader::new(&extra).read_line(&mut a).expect("read");
        assert!(a.contains("clients are connected already"), "{a}");
        drop(held);
    }

    #[test]
    fn garbage_gets_an_error_reply() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control.sock");
        let (tx, _rx) = std::sync::mpsc::channel();
        let _server = serve(&path, tx).expect("serve");
        let mut s = UnixStream::connect(&path).expect("connect");
        s.write_all(b"{\"command\":\"explode\"}\n").expect("write");
        let mut answer = String::new();
        BufReader::new(&s).read_line(&mut answer).expect("read");
        assert!(answer.contains("\"ok\":false"), "{answer}");
    }
}
