//! Colour depth: 24-bit colour where the terminal has it, else the 256-colour palette, and why.
//!
//! `COLORTERM` says it when it is set, but OpenSSH does not pass it on (and Debian's sshd would
//! not accept it), so over SSH it is missing from terminals that have 24-bit colour. Then:
//! inside tmux, tmux knows what its client terminal can do (`#{client_termfeatures}` contains
//! `RGB` when `terminal-features` or a `Tc` / `RGB` terminal override gives it); elsewhere the
//! terminal is asked, once, before the first frame: an RGB colour is set and read back with
//! DECRQSS (a terminal that keeps 24-bit colour gives it back), and XTGETTCAP asks for the
//! `RGB` and `Tc` capabilities. A request for the primary device attributes, which every
//! terminal answers, ends the wait; a terminal that answers nothing costs [`FIRST_BYTE`] once.

use std::io::Write as _;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::vocab::ColorDepth;
use crate::config::ColorSetting;

/// How long to wait for the first byte of the terminal's answer.
pub const FIRST_BYTE: Duration = Duration::from_millis(150);

/// How long to wait for the whole answer once the terminal has started answering.
pub const WHOLE_ANSWER: Duration = Duration::from_secs(1);

/// The colour the DECRQSS query sets and reads back.
const PROBE_RGB: [u8; 3] = [1, 2, 3];

/// Set [`PROBE_RGB`] as the foreground, read the SGR state back (DECRQSS), reset it, ask for
/// the `RGB` and `Tc` capabilities (XTGETTCAP, hex-encoded names), then for the primary device
/// attributes (answered by every terminal: the end of the answer).
pub const QUERY: &[u8] =
    b"\x1b[38;2;1;2;3m\x1bP$qm\x1b\\\x1b[0m\x1bP+q524742\x1b\\\x1bP+q5463\x1b\\\x1b[c";

/// The colour depth chosen and why, as the Help tab says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub depth: ColorDepth,
    pub why: String,
    pub origin: Origin,
}

/// Where a [`Choice`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The setting, `COLORTERM` or tmux: final.
    Decided,
    /// The terminal's answer to [`QUERY`]: a late answer can still come.
    Asked,
}

impl Choice {
    fn new(depth: ColorDepth, why: impl Into<String>) -> Self {
        Self {
            depth,
            why: why.into(),
            origin: Origin::Decided,
        }
    }

    /// `truecolor (why)` or `256 colours (why)`.
    #[must_use]
    pub fn describe(&self) -> String {
        let depth = match self.depth {
            ColorDepth::TrueColor => "truecolor",
            ColorDepth::Palette256 => "256 colours",
        };
        format!("{depth} ({})", self.why)
    }
}

/// What `COLORTERM` says: `Some(true)` for `truecolor` / `24bit`.
fn colorterm_says(value: Option<&str>) -> Option<bool> {
    value
        .filter(|v| v.eq_ignore_ascii_case("truecolor") || v.eq_ignore_ascii_case("24bit"))
        .map(|_| true)
}

/// Pick the colour depth for `setting`. Call it in raw mode, before anything else reads the
/// terminal's input (it may ask the terminal and read the answer).
#[must_use]
pub fn detect(setting: ColorSetting) -> Choice {
    let forced = "set by --color, CONVSCOPE_COLOR or ui.color";
    match setting {
        ColorSetting::Truecolor => return Choice::new(ColorDepth::TrueColor, forced),
        ColorSetting::Palette256 => return Choice::new(ColorDepth::Palette256, forced),
        ColorSetting::Auto => {}
    }
    let colorterm = std::env::var("COLORTERM").ok();
    if colorterm_says(colorterm.as_deref()) == Some(true) {
        return Choice::new(
            ColorDepth::TrueColor,
            format!("COLORTERM={}", colorterm.unwrap_or_default()),
        );
    }
    if std::env::var_os("TMUX").is_some() {
        return from_tmux(tmux_client_features());
    }
    let started = Instant::now();
    let mut choice = match ask_terminal() {
        Ok(answer) => from_answer(&parse_answer(&answer)),
        Err(e) => Choice::new(
            ColorDepth::Palette256,
            format!(
                "COLORTERM unset and the terminal could not be asked: {e}; --color truecolor to force"
            ),
        ),
    };
    choice.origin = Origin::Asked;
    tracing::info!(
        "colour depth: {} (asked in {:?})",
        choice.describe(),
        started.elapsed()
    );
    choice
}

/// Why tmux did not say what its client terminal can do.
#[derive(Debug, thiserror::Error)]
enum TmuxError {
    #[error("cannot run tmux: {0}")]
    Spawn(std::io::Error),
    #[error("tmux did not answer within 0.5 s")]
    Timeout,
    /// Waiting for tmux failed (the error as the system gives it).
    #[error("{0}")]
    Wait(std::io::Error),
    /// tmux answered with an error (its message).
    #[error("{0}")]
    Failed(String),
}

/// The depth for tmux's answer about its client terminal's features.
fn from_tmux(features: Result<String, TmuxError>) -> Choice {
    match features {
        Ok(f) if f.split(',').any(|x| x.trim() == "RGB") => Choice::new(
            ColorDepth::TrueColor,
            "tmux: the client terminal has the RGB feature",
        ),
        Ok(f) if f.trim().is_empty() => Choice::new(
            ColorDepth::Palette256,
            "COLORTERM unset and no tmux client is attached to say what the terminal can do; \
             --color truecolor to force",
        ),
        Ok(_) => Choice::new(
            ColorDepth::Palette256,
            "tmux: the client terminal lacks the RGB feature; add \
             `set -as terminal-features \",*:RGB\"` to tmux.conf if it has 24-bit colour, \
             or --color truecolor",
        ),
        Err(e) => Choice::new(
            ColorDepth::Palette256,
            format!("COLORTERM unset and tmux did not say ({e}); --color truecolor to force"),
        ),
    }
}

/// Ask the tmux server this process runs under for its client terminal's features.
fn tmux_client_features() -> Result<String, TmuxError> {
    // The tmux client finds its server through $TMUX, as for any command run inside tmux.
    let mut child = std::process::Command::new("tmux")
        .args(["display-message", "-p", "#{client_termfeatures}"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(TmuxError::Spawn)?;
    // A stuck server must not hold up the screen.
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TmuxError::Timeout);
            }
            Err(e) => return Err(TmuxError::Wait(e)),
        }
    }
    let out = child.wait_with_output().map_err(TmuxError::Wait)?;
    if !out.status.success() {
        return Err(TmuxError::Failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Write [`QUERY`] to the terminal and read its answer from the terminal's input.
fn ask_terminal() -> std::io::Result<Vec<u8>> {
    use std::io::IsTerminal as _;
    let stdin = std::io::stdin();
    // crossterm reads keys from stdin when it is a terminal, else from /dev/tty: the same here.
    let tty;
    let fd = if stdin.is_terminal() {
        stdin.as_fd()
    } else {
        tty = std::fs::File::open("/dev/tty")?;
        tty.as_fd()
    };
    let mut out = std::io::stdout();
    out.write_all(QUERY)?;
    out.flush()?;
    read_answer(fd, FIRST_BYTE, WHOLE_ANSWER)
}

/// Read what arrives on `fd` until the device attributes end the answer, no answer has begun
/// within `first`, or `whole` has passed.
fn read_answer(
    fd: std::os::fd::BorrowedFd<'_>,
    first: Duration,
    whole: Duration,
) -> std::io::Result<Vec<u8>> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let start = Instant::now();
    let mut answer = Vec::new();
    while !parse_answer(&answer).complete {
        let limit = wait_limit(&answer, first, whole);
        let Some(left) = limit.checked_sub(start.elapsed()) else {
            break;
        };
        let timeout = Timespec::try_from(left).map_err(std::io::Error::other)?;
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let mut buf = [0_u8; 256];
        let n = rustix::io::read(fd, &mut buf)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    Ok(answer)
}

/// How long to wait in all for the answer, given what has come so far: `first` until an answer
/// has begun (an ESC), then `whole`. Keys typed meanwhile, or a pty's stray bytes, do not
/// extend the wait.
fn wait_limit(so_far: &[u8], first: Duration, whole: Duration) -> Duration {
    if so_far.contains(&0x1b) { whole } else { first }
}

/// What the terminal's answer says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The device attributes came: the terminal has said all it will.
    pub complete: bool,
    /// The SGR state read back with DECRQSS: `Some(true)` when it kept the RGB colour.
    pub decrqss_rgb: Option<bool>,
    /// A 24-bit capability XTGETTCAP confirmed (`RGB` or `Tc`).
    pub capability: Option<String>,
}

/// Read the terminal's answer to [`QUERY`] (DCS strings and the device attributes; anything
/// else, such as keys typed meanwhile, is skipped).
#[must_use]
pub fn parse_answer(bytes: &[u8]) -> Answer {
    let mut answer = Answer::default();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if let Some(body) = rest.strip_prefix(b"\x1bP") {
            // A DCS string, ended by ST (ESC \) or BEL.
            let Some(end) = body.iter().position(|&b| b == 0x07 || b == 0x1b) else {
                break;
            };
            if body[end] == 0x1b && body.get(end + 1).is_none() {
                break;
            }
            dcs(&String::from_utf8_lossy(&body[..end]), &mut answer);
            i += 2 + end + 1;
            continue;
        }
        if let Some(body) = rest.strip_prefix(b"\x1b[?") {
            // The device attributes: digits and semicolons, then `c`.
            let len = body
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b';'))
                .unwrap_or(body.len());
            if body.get(len) == Some(&b'c') {
                answer.complete = true;
                i += 3 + len + 1;
                continue;
            }
        }
        i += 1;
    }
    answer
}

/// Take in one DCS string's body (after `ESC P`, before its terminator).
pub fn dcs(body: &str, answer: &mut Answer) {
    if let Some(sgr) = body.strip_prefix("1$r") {
        let sgr = sgr.strip_suffix('m').unwrap_or(sgr);
        answer.decrqss_rgb = Some(answer.decrqss_rgb == Some(true) || sgr_has_rgb(sgr, PROBE_RGB));
    } else if body.starts_with("0$r") {
        // The request was not understood: no word on colours.
    } else if let Some(caps) = body.strip_prefix("1+r") {
        for cap in caps.split(';') {
            let name = cap.split('=').next().unwrap_or_default();
            let name = unhex(name).unwrap_or_default();
            if name == "RGB" || name == "Tc" {
                answer.capability.get_or_insert(name);
            }
        }
    }
}

/// Whether SGR parameters `sgr` set the foreground to `rgb` as a 24-bit colour, in any of the
/// spellings terminals give back: `38;2;r;g;b`, `38:2:r:g:b`, `38:2::r:g:b`, `38:2:cs:r:g:b`.
#[must_use]
pub fn sgr_has_rgb(sgr: &str, rgb: [u8; 3]) -> bool {
    let want: Vec<String> = rgb.iter().map(ToString::to_string).collect();
    let params: Vec<&str> = sgr.split(';').collect();
    for (i, p) in params.iter().enumerate() {
        if p.contains(':') {
            let sub: Vec<&str> = p.split(':').collect();
            if sub.len() >= 5 && sub[0] == "38" && sub[1] == "2" && sub[sub.len() - 3..] == want[..]
            {
                return true;
            }
        } else if *p == "38"
            && params.get(i + 1) == Some(&"2")
            && params.get(i + 2..i + 5).is_some_and(|c| c == want)
        {
            return true;
        }
    }
    false
}

/// Decode a hex-encoded XTGETTCAP name.
fn unhex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The depth for the terminal's answer.
#[must_use]
pub fn from_answer(answer: &Answer) -> Choice {
    if answer.decrqss_rgb == Some(true) {
        return Choice::new(
            ColorDepth::TrueColor,
            "the terminal gave an RGB colour back through DECRQSS",
        );
    }
    if let Some(cap) = &answer.capability {
        return Choice::new(
            ColorDepth::TrueColor,
            format!("the terminal has the {cap} capability (XTGETTCAP)"),
        );
    }
    let why = if answer.decrqss_rgb == Some(false) {
        "COLORTERM unset and the terminal did not keep an RGB colour; --color truecolor to force"
    } else if answer.complete {
        "COLORTERM unset and the terminal did not say it has 24-bit colour; --color truecolor to force"
    } else {
        "COLORTERM unset and the terminal did not answer; --color truecolor to force"
    };
    Choice::new(ColorDepth::Palette256, why)
}

/// Keeps a terminal's late answer to [`QUERY`] out of the keys. crossterm reads a DCS string
/// (`ESC P ... ESC \`) as Alt-P, its characters as keys (`3` would open the Filters tab), then
/// Alt-\. Between those two, keys are the answer's characters: they are collected, not acted
/// on, for at most [`LATE_ANSWER_KEYS`] keys.
#[derive(Debug, Default)]
pub struct LateAnswer {
    /// The characters of the DCS string being read, while one is.
    body: Option<String>,
}

/// The longest DCS answer taken (anything longer was keys after all).
pub const LATE_ANSWER_KEYS: usize = 128;

impl LateAnswer {
    /// Take in a key: `None` when it was part of a late answer; the finished answer's body, when
    /// this key ended one, is given to `done`.
    pub fn filter(
        &mut self,
        key: crossterm::event::KeyEvent,
        done: impl FnOnce(&str),
    ) -> Option<crossterm::event::KeyEvent> {
        use crossterm::event::{KeyCode, KeyModifiers};
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match (&mut self.body, key.code) {
            (None, KeyCode::Char('P')) if alt => {
                self.body = Some(String::new());
                None
            }
            (Some(body), KeyCode::Char('\\')) if alt => {
                done(body);
                self.body = None;
                None
            }
            // BEL ends a DCS string too; crossterm reads it as Ctrl-G.
            (Some(body), KeyCode::Char('g')) if key.modifiers.contains(KeyModifiers::CONTROL) => {
                done(body);
                self.body = None;
                None
            }
            (Some(body), KeyCode::Char(c)) if body.len() < LATE_ANSWER_KEYS && !alt => {
                body.push(c);
                None
            }
            (Some(_), _) => {
                // Not an answer after all: what came from here on is keys again.
                self.body = None;
                Some(key)
            }
            (None, _) => Some(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    #[test]
    fn decrqss_answers_in_every_spelling_are_read() {
        for sgr in [
            "0;38;2;1;2;3",
            "0;38:2:1:2:3",
            "0;38:2::1:2:3",
            "38:2:0:1:2:3",
            "0;1;38;2;1;2;3",
        ] {
            assert!(sgr_has_rgb(sgr, PROBE_RGB), "{sgr}");
        }
        for sgr in [
            "0;38;5;16",
            "0",
            "0;38;2;1;2",
            "0;48;2;1;2;3",
            "38:2:1:2:4",
            "",
        ] {
            assert!(!sgr_has_rgb(sgr, PROBE_RGB), "{sgr}");
        }
    }

    #[test]
    fn an_xterm_s_answer_means_truecolor() {
        // What xterm (direct colour built in) answers, with DA1 last.
        let a = parse_answer(
            b"\x1bP1$r0;38:2::1:2:3m\x1b\\\x1bP0+r524742\x1b\\\x1bP0+r5463\x1b\\\x1b[?64;1;2;6;9;15;16;17;18;21;22;28c",
        );
        assert_eq!(
            a,
            Answer {
                complete: true,
                decrqss_rgb: Some(true),
                capability: None,
            }
        );
        let c = from_answer(&a);
        assert_eq!(c.depth, ColorDepth::TrueColor);
        assert_eq!(
            c.describe(),
            "truecolor (the terminal gave an RGB colour back through DECRQSS)"
        );
    }

    #[test]
    fn a_capability_answer_means_truecolor() {
        // kitty-like: no SGR read-back, `Tc` confirmed (BEL as terminator too).
        let a = parse_answer(b"\x1bP0$r\x1b\\\x1bP1+r5463=\x07\x1b[?62;c");
        assert_eq!(a.capability.as_deref(), Some("Tc"));
        assert!(a.complete);
        let c = from_answer(&a);
        assert_eq!(c.depth, ColorDepth::TrueColor);
        assert!(c.why.contains("Tc capability"), "{}", c.why);
        let a = parse_answer(b"\x1bP1+r524742=382F382F38\x1b\\\x1b[?1;2c");
        assert_eq!(a.capability.as_deref(), Some("RGB"));
    }

    #[test]
    fn palette_answers_and_silence_mean_256_colours() {
        // The colour came back as a palette index: no 24-bit colour.
        let c = from_answer(&parse_answer(b"\x1bP1$r0;38;5;16m\x1b\\\x1b[?1;2c"));
        assert_eq!(c.depth, ColorDepth::Palette256);
        assert!(c.why.contains("did not keep an RGB colour"), "{}", c.why);
        // Only the device attributes (tmux, screen, many others).
        let a = parse_answer(b"\x1b[?1;2c");
        assert!(a.complete);
        let c = from_answer(&a);
        assert_eq!(c.depth, ColorDepth::Palette256);
        assert_eq!(
            c.describe(),
            "256 colours (COLORTERM unset and the terminal did not say it has 24-bit colour; \
             --color truecolor to force)"
        );
        // Nothing at all.
        let c = from_answer(&parse_answer(b""));
        assert_eq!(
            c.describe(),
            "256 colours (COLORTERM unset and the terminal did not answer; --color truecolor to force)"
        );
    }

    #[test]
    fn partial_answers_are_not_complete_and_keys_typed_meanwhile_are_skipped() {
        assert!(!parse_answer(b"\x1bP1$r0;38:2::1:2:3m").complete);
        assert!(!parse_answer(b"\x1bP1$r0;38:2::1:2:3m\x1b").complete);
        assert!(!parse_answer(b"\x1b[?64;1").complete);
        let a = parse_answer(b"jk\x1bP1$r0;38;2;1;2;3m\x1b\\q\x1b[?1;2c");
        assert!(a.complete);
        assert_eq!(a.decrqss_rgb, Some(true));
    }

    #[test]
    fn tmux_s_client_features_decide_inside_tmux() {
        let c = from_tmux(Ok("bpaste,ccolour,clipboard,cstyle,focus,RGB,title".into()));
        assert_eq!(c.depth, ColorDepth::TrueColor);
        let c = from_tmux(Ok("bpaste,ccolour,clipboard,cstyle,focus,title".into()));
        assert_eq!(c.depth, ColorDepth::Palette256);
        assert!(c.why.contains("terminal-features"), "{}", c.why);
        let c = from_tmux(Ok(String::new()));
        assert_eq!(c.depth, ColorDepth::Palette256);
        assert!(c.why.contains("no tmux client"), "{}", c.why);
        let c = from_tmux(Err(TmuxError::Failed("no server running".into())));
        assert!(c.why.contains("no server running"), "{}", c.why);
    }

    #[test]
    fn only_the_start_of_an_answer_extends_the_wait() {
        let (first, whole) = (FIRST_BYTE, WHOLE_ANSWER);
        assert_eq!(wait_limit(b"", first, whole), first);
        // A key typed, or a stray byte from a pty nobody answers on.
        assert_eq!(wait_limit(b"j\x04", first, whole), first);
        assert_eq!(wait_limit(b"\x1bP1$r0;38", first, whole), whole);
    }

    #[test]
    fn colorterm_says_truecolor_only_for_its_two_values() {
        assert_eq!(colorterm_says(Some("truecolor")), Some(true));
        assert_eq!(colorterm_says(Some("24bit")), Some(true));
        assert_eq!(colorterm_says(Some("yes")), None);
        assert_eq!(colorterm_says(None), None);
    }

    #[test]
    fn a_late_answer_is_kept_out_of_the_keys() {
        let mut late = LateAnswer::default();
        let alt = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::ALT);
        let plain = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        // crossterm's reading of "ESC P 1 $ r 0 ; 3 8 : 2 : : 1 : 2 : 3 m ESC \".
        let mut keys = vec![KeyEvent::new(
            KeyCode::Char('P'),
            KeyModifiers::ALT | KeyModifiers::SHIFT,
        )];
        keys.extend("1$r0;38:2::1:2:3m".chars().map(plain));
        keys.push(alt('\\'));
        keys.push(plain('q'));
        let mut answers = Vec::new();
        let passed: Vec<KeyEvent> = keys
            .into_iter()
            .filter_map(|k| late.filter(k, |body| answers.push(body.to_string())))
            .collect();
        assert_eq!(passed, [plain('q')], "only the key after the answer");
        assert_eq!(answers, ["1$r0;38:2::1:2:3m"]);
        let mut a = Answer::default();
        dcs(&answers[0], &mut a);
        assert_eq!(from_answer(&a).depth, ColorDepth::TrueColor);
        // BEL ends a DCS string too (crossterm: Ctrl-G).
        let mut bel = Vec::new();
        for k in [alt('P'), plain('1'), plain('+'), plain('r')] {
            assert_eq!(late.filter(k, |_| {}), None);
        }
        let ctrl_g = KeyEvent::new(KeyCode::Char('g'), KeyModifiers::CONTROL);
        assert_eq!(late.filter(ctrl_g, |b| bel.push(b.to_string())), None);
        assert_eq!(bel, ["1+r"]);
        assert_eq!(late.filter(plain('q'), |_| {}), Some(plain('q')));
        // Alt-P followed by an arrow key was keys after all.
        let up = KeyEvent::new(KeyCode::Up, KeyModifiers::NONE);
        assert_eq!(late.filter(alt('P'), |_| {}), None);
        assert_eq!(late.filter(up, |_| {}), Some(up));
        assert_eq!(late.filter(plain('j'), |_| {}), Some(plain('j')));
    }
}
