//! `control.sock`: a live run's Unix socket for pause / resume / stop / checkpoint-now / probe.
//!
//! Protocol: one JSON `Command` per line; the server answers one JSON line per command,
//! `{"ok":true}` or `{"ok":false,"error":"..."}`. Only the run's owner may connect (mode 0600
//! and the peer's uid checked).

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// A listening control socket; dropping it stops the server and removes the socket file.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether a process is serving `path` right now.
#[must_use]
pub fn is_live(path: &Path) -> bool {
    UnixStream::connect(path).is_ok()
}

/// Listen on `path`, forwarding every accepted command to `commands`.
pub fn serve(path: &Path, commands: Sender<Command>) -> Result<ControlServer, RunError> {
    if path.exists() {
        if is_live(path) {
            return Err(RunError::Corrupt {
                path: path.to_path_buf(),
                message: "another convscope process is training this run right now; attach to it with `convscope view` instead".into(),
            });
        }
        // A socket left by a process that died.
        std::fs::remove_file(path).map_err(io_err(path))?;
    }
    let listener = UnixListener::bind(path).map_err(io_err(path))?;
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
        stop,
        thread: Some(thread),
    })
}

fn accept_loop(listener: &UnixListener, commands: &Sender<Command>, stop: &AtomicBool) {
    let me = rustix::process::geteuid();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let peer = rustix::net::sockopt::socket_peercred(&stream);
                if !matches!(peer, Ok(cred) if cred.uid == me) {
                    tracing::warn!(
                        "control socket: refused a connection from another user ({peer:?})"
                    );
                    continue;
                }
                let commands = commands.clone();
                let _ = std::thread::Builder::new()
                    .name("control-client".into())
                    .spawn(move || serve_client(stream, &commands));
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

fn serve_client(stream: UnixStream, commands: &Sender<Command>) {
    let _ = stream.set_nonblocking(false);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Command>(&line) {
            Ok(cmd) => {
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
            Err(e) => Reply {
                ok: false,
                error: Some(format!("not a command: {e}")),
            },
        };
        let mut text = serde_json::to_string(&reply).unwrap_or_default();
        text.push('\n');
        if writer.write_all(text.as_bytes()).is_err() {
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
    let mut stream = UnixStream::connect(path).map_err(|e| {
        err(format!(
            "no live training to talk to ({e}); the run may have finished or been interrupted"
        ))
    })?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io_err(path))?;
    let mut line = serde_json::to_string(command).map_err(|e| err(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io_err(path))?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(io_err(path))?;
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
        assert_eq!(
            rx.recv().expect("cmd"),
            Command::Probe {
                image: "x.png".into()
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
