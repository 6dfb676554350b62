//! tracing to the run's log file (never to the screen under the TUI).

use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Log to `file` (info and up, `RUST_LOG` overrides); with `stderr_warnings`, warnings and
/// errors also go to stderr (headless runs).
pub fn init(file: &Path, stderr_warnings: bool) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(Mutex::new(Escaping(f)))
        .with_ansi(false)
        .with_thread_names(true)
        .with_filter(filter());
    let stderr_layer = stderr_warnings.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(|| Escaping(std::io::stderr()))
            .without_time()
            .with_target(false)
            .with_ansi(false)
            // The trainer's own failure is printed once by the command, not twice.
            .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                *m.level() == tracing::Level::WARN
                    || (*m.level() == tracing::Level::ERROR && m.target() != "convscope::train")
            }))
    });
    // A second init in the same process (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
    Ok(())
}

/// A writer for log lines that escapes every control character of an event but its final
/// newline: a file name holding `\n WARN ...` (or terminal escapes) cannot forge a log line of
/// its own, nor drive the terminal that shows the headless output.
pub struct Escaping<W>(pub W);

impl<W: std::io::Write> std::io::Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::fmt::Write as _;
        let (body, newline) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, true),
            None => (buf, false),
        };
        let mut out = String::with_capacity(buf.len() + 8);
        for c in String::from_utf8_lossy(body).chars() {
            match c {
                '\t' => out.push(c),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        if newline {
            out.push('\n');
        }
        // One write a line, as the formatter hands it over: concurrent lines stay whole.
        self.0.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    #[test]
    fn control_characters_are_escaped_but_the_final_newline() {
        let mut w = super::Escaping(Vec::new());
        w.write_all(b"WARN skipping image d/x\n ERROR forged\x1b[2J\t.png: bad\n")
            .expect("write");
        assert_eq!(
            String::from_utf8(w.0).expect("utf8"),
            "WARN skipping image d/x\\n ERROR forged\\u{1b}[2J\t.png: bad\n"
        );
    }
}
