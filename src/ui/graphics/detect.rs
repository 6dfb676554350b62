//! Which graphics protocol the terminal gets, and why, found without ever holding up the first
//! frame.
//!
//! The choice itself is [`decide`]: a pure function of the setting, the environment ([`Env`]),
//! the terminal's replies to the graphics query ([`Replies`], outside tmux) and what tmux says
//! about itself and its client terminal ([`TmuxAnswers`], inside tmux). Inside tmux, in order:
//!
//! 1. kitty graphics with Unicode placeholders when the outer terminal is kitty (0.28 or later)
//!    or ghostty: the placeholder cells are text to tmux, so the pictures survive its redraws,
//!    pane switches and scrolling (only the image data goes through passthrough, once);
//! 2. plain sixel, no passthrough, when tmux itself draws sixel (`#{sixel_support}` is 1: tmux
//!    3.4+ built with sixel) and its client terminal has the `sixel` feature;
//! 3. sixel through passthrough when the outer terminal is known to draw sixel (tmux's
//!    `sixel` client feature, or a terminal type that has it), redrawn whenever tmux redraws
//!    ([`super::redraw`]);
//! 4. half blocks.
//!
//! Asking the terminal: ratatui-image's picker writes escape sequences and reads the answers on
//! stdin; inside tmux it also runs `tmux set -p allow-passthrough on` and waits for it, and tmux
//! swallows the outer terminal's answers. So inside tmux the terminal is not asked at all (tmux
//! is, with a deadline); outside, the query runs on a thread of its own and the UI waits for it
//! at most [`DEADLINE`] (the answer normally takes milliseconds); a later answer is taken in
//! when it comes ([`super::Graphics::poll_late`]).

use std::io::Write as _;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use ratatui::layout::{Rect, Size};
use ratatui_image::FontSize;
use ratatui_image::picker::cap_parser::{Parser, Response};
use ratatui_image::picker::{Capability, Picker, ProtocolType};
use ratatui_image::protocol::Protocol;

use crate::config::Graphics as GraphicsSetting;
use crate::viz::Raster;

/// How long the first frame waits for the terminal's answer.
pub const DEADLINE: Duration = Duration::from_secs(3);

/// How long tmux may take to answer `display-message`.
const TMUX_DEADLINE: Duration = Duration::from_millis(500);

/// The cell size assumed when nothing says it.
pub const GUESSED_CELL: (u16, u16) = (10, 20);

/// How pictures are turned into terminal graphics.
#[derive(Clone)]
pub enum Encoder {
    /// Our own sixel encoder (exact palettes, see `ui::sixel`): it needs only the cell size and
    /// whether to wrap the image in tmux's passthrough.
    Sixel { font: FontSize, tmux: bool },
    /// kitty graphics with Unicode placeholders (ratatui-image's): the image is transmitted once
    /// (through tmux's passthrough inside tmux) and drawn by placeholder characters.
    Kitty { font: FontSize, tmux: bool },
    /// iTerm2's inline images (ratatui-image's).
    Iterm2 { font: FontSize, tmux: bool },
}

impl Encoder {
    /// The encoder for a protocol; `None` for half blocks.
    #[must_use]
    pub fn new(protocol: ProtocolType, font: FontSize, tmux: bool) -> Option<Self> {
        match protocol {
            ProtocolType::Halfblocks => None,
            ProtocolType::Sixel => Some(Self::Sixel { font, tmux }),
            ProtocolType::Kitty => Some(Self::Kitty { font, tmux }),
            ProtocolType::Iterm2 => Some(Self::Iterm2 { font, tmux }),
        }
    }

    #[must_use]
    pub fn protocol(&self) -> ProtocolType {
        match self {
            Self::Sixel { .. } => ProtocolType::Sixel,
            Self::Kitty { .. } => ProtocolType::Kitty,
            Self::Iterm2 { .. } => ProtocolType::Iterm2,
        }
    }

    /// The size of one cell in pixels.
    #[must_use]
    pub fn font(&self) -> FontSize {
        match self {
            Self::Sixel { font, .. } | Self::Kitty { font, .. } | Self::Iterm2 { font, .. } => {
                *font
            }
        }
    }

    /// Whether the image data goes through tmux's passthrough.
    #[must_use]
    pub fn passthrough(&self) -> bool {
        match self {
            Self::Sixel { tmux, .. } | Self::Kitty { tmux, .. } | Self::Iterm2 { tmux, .. } => {
                *tmux
            }
        }
    }

    /// The picture `raster` fitted into `area` (nearest neighbour to the exact pixel size, so
    /// that no protocol smooths a weight); a sixel within `max_bytes` (0: no limit).
    pub fn encode(
        &self,
        raster: &Raster,
        area: Rect,
        max_bytes: usize,
    ) -> Result<Protocol, super::EncodeError> {
        let font = self.font();
        let (fw, fh) = (
            usize::from(font.width).max(1),
            usize::from(font.height).max(1),
        );
        let (pw, ph) = raster.fit_size(usize::from(area.width) * fw, usize::from(area.height) * fh);
        if let Self::Sixel { tmux, .. } = self {
            return crate::ui::sixel::protocol_within(raster, (pw, ph), font, *tmux, max_bytes)
                .map_err(super::EncodeError::Sixel);
        }
        let img = image::DynamicImage::ImageRgb8(raster.resized(pw, ph).to_rgb_image());
        let cells = Size::new(
            pw.div_ceil(fw).min(usize::from(area.width)) as u16,
            ph.div_ceil(fh).min(usize::from(area.height)) as u16,
        );
        match self {
            Self::Kitty { tmux, .. } => {
                // Ids above 255 are told by the colour's three bytes and a fourth in a
                // diacritic; never 0 (kitty's "no id").
                let id = rand::random::<u32>().max(1);
                ratatui_image::protocol::kitty::Kitty::new(img, cells, id, *tmux, false)
                    .map(Protocol::Kitty)
            }
            Self::Iterm2 { tmux, .. } => {
                ratatui_image::protocol::iterm2::Iterm2::new(img, cells, *tmux)
                    .map(Protocol::ITerm2)
            }
            Self::Sixel { .. } => unreachable!("handled above"),
        }
        .map_err(super::EncodeError::from)
    }
}

impl PartialEq for Encoder {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.font(), other.font());
        self.protocol() == other.protocol()
            && self.passthrough() == other.passthrough()
            && (a.width, a.height) == (b.width, b.height)
    }
}

impl Eq for Encoder {}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tmux = if self.passthrough() {
            " via tmux passthrough"
        } else {
            ""
        };
        write!(f, "{:?} {:?}{tmux}", self.protocol(), self.font())
    }
}

/// The environment variables that say something about the terminal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// Inside tmux (`$TMUX`, or `TERM`/`TERM_PROGRAM` saying tmux).
    pub tmux: bool,
    pub term: String,
    pub term_program: String,
    /// `LC_TERMINAL` (iTerm2 sets it, and OpenSSH passes `LC_*` on).
    pub lc_terminal: String,
    /// Over SSH (`SSH_CONNECTION` or `SSH_TTY`).
    pub ssh: bool,
}

impl Env {
    /// This process's environment.
    #[must_use]
    pub fn current() -> Self {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        let term = var("TERM");
        let term_program = var("TERM_PROGRAM");
        Self {
            tmux: std::env::var_os("TMUX").is_some()
                || term.starts_with("tmux")
                || term_program == "tmux",
            term,
            term_program,
            lc_terminal: var("LC_TERMINAL"),
            ssh: std::env::var_os("SSH_CONNECTION").is_some()
                || std::env::var_os("SSH_TTY").is_some(),
        }
    }

    /// iTerm2's inline images, by the terminal's name (iTerm2, WezTerm, mintty, VS Code, ...).
    fn iterm2_named(&self) -> Option<&str> {
        const NAMES: [&str; 6] = ["iTerm", "WezTerm", "mintty", "vscode", "Tabby", "rio"];
        [self.term_program.as_str(), self.lc_terminal.as_str()]
            .into_iter()
            .find(|v| NAMES.iter().any(|n| v.contains(n)))
    }
}

/// What the terminal answered to the graphics query (outside tmux).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replies {
    /// Anything came back at all.
    pub answered: bool,
    /// The kitty graphics query was answered `OK`.
    pub kitty: bool,
    /// The primary device attributes list sixel (4).
    pub sixel: bool,
    /// The cell size in pixels (CSI 16 t).
    pub cell: Option<(u16, u16)>,
}

impl Replies {
    /// The replies in a stream of bytes from the terminal (the answer to ratatui-image's query).
    #[must_use]
    pub fn parse(bytes: &[u8]) -> Self {
        let mut parser = Parser::new();
        let mut out = Self::default();
        for &b in bytes {
            for r in parser.push(char::from(b)) {
                out.answered = true;
                match r {
                    Response::Kitty => out.kitty = true,
                    Response::Sixel => out.sixel = true,
                    Response::CellSize(c) => out.cell = out.cell.or(c),
                    _ => {}
                }
            }
        }
        out
    }

    /// What ratatui-image's picker found.
    #[must_use]
    pub fn from_picker(picker: &Picker) -> Self {
        let caps = picker.capabilities();
        Self {
            answered: !caps.is_empty(),
            kitty: caps.contains(&Capability::Kitty),
            sixel: caps.contains(&Capability::Sixel),
            cell: caps.iter().find_map(|c| match c {
                Capability::CellSize(c) => *c,
                _ => None,
            }),
        }
    }
}

/// What tmux says about itself and its client terminal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TmuxAnswers {
    /// `#{version}`, e.g. `3.3a`.
    pub version: String,
    /// `#{sixel_support}`: `Some(true)` for a tmux built with sixel; `None` when this tmux does
    /// not know the variable (before 3.4).
    pub sixel_support: Option<bool>,
    /// `#{client_termname}`: the outer terminal's `TERM` (`xterm-kitty`, `xterm-ghostty`, ...).
    pub termname: String,
    /// `#{client_termtype}`: what the outer terminal called itself (`kitty(0.35.2)`, ...).
    pub termtype: String,
    /// `#{client_termfeatures}`: comma-separated (`RGB`, `sixel`, ...).
    pub features: String,
    /// `#{client_cell_width}` x `#{client_cell_height}`, where tmux knows them.
    pub cell: Option<(u16, u16)>,
}

/// Terminals that always draw sixel, by the start of their name or type.
const SIXEL_TERMINALS: [&str; 6] = ["foot", "wezterm", "mlterm", "contour", "konsole", "mintty"];

/// The format [`TmuxAnswers::parse`] reads: tab-separated.
pub const TMUX_FORMAT: &str = "#{version}\t#{sixel_support}\t#{client_termname}\t\
     #{client_termtype}\t#{client_termfeatures}\t#{client_cell_width}\t#{client_cell_height}";

impl TmuxAnswers {
    /// tmux's expansion of [`TMUX_FORMAT`].
    #[must_use]
    pub fn parse(line: &str) -> Self {
        let f: Vec<&str> = line.trim_end_matches(['\n', '\r']).split('\t').collect();
        let get = |i: usize| f.get(i).map_or("", |s| s.trim()).to_string();
        let num = |i: usize| get(i).parse::<u16>().ok().filter(|&n| n > 0);
        Self {
            version: get(0),
            sixel_support: match get(1).as_str() {
                "1" => Some(true),
                "0" => Some(false),
                _ => None,
            },
            termname: get(2),
            termtype: get(3),
            features: get(4),
            cell: num(5).zip(num(6)),
        }
    }

    fn has_feature(&self, name: &str) -> bool {
        self.features.split(',').any(|f| f.trim() == name)
    }

    /// The outer terminal, when it is kitty or ghostty: its name and, for kitty, its version.
    fn kitty_like(&self) -> Option<(&'static str, Option<(u32, u32)>)> {
        let name = self.termname.to_ascii_lowercase();
        let kind = self.termtype.to_ascii_lowercase();
        if name.contains("ghostty") || kind.starts_with("ghostty") {
            return Some(("ghostty", None));
        }
        if name.contains("kitty") || kind.starts_with("kitty") {
            // `kitty(0.26.5)`
            let version = kind
                .strip_prefix("kitty(")
                .and_then(|v| v.strip_suffix(')'))
                .and_then(|v| {
                    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
                    Some((parts.next()??, parts.next()??))
                });
            return Some(("kitty", version));
        }
        None
    }

    /// The outer terminal draws sixel, as far as tmux knows: its `sixel` feature (tmux 3.4+
    /// finds it in the terminal's device attributes), or a terminal type that always has it.
    fn outer_sixel(&self) -> Option<String> {
        if self.has_feature("sixel") {
            return Some("tmux: the client terminal has the sixel feature".into());
        }
        let kind = self.termtype.to_ascii_lowercase();
        let name = self.termname.to_ascii_lowercase();
        SIXEL_TERMINALS
            .iter()
            .find(|t| kind.starts_with(*t) || name.starts_with(*t))
            .map(|t| format!("the client terminal is {t}, which draws sixel"))
    }

    /// `tmux 3.3a`, or `tmux` when the version is unknown.
    fn name(&self) -> String {
        if self.version.is_empty() {
            "tmux".into()
        } else {
            format!("tmux {}", self.version)
        }
    }
}

/// The protocol chosen, the cell size it draws with and why, as the Help tab says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `None`: half blocks.
    pub encoder: Option<Encoder>,
    pub why: String,
}

impl Decision {
    fn new(protocol: ProtocolType, font: FontSize, tmux: bool, why: impl Into<String>) -> Self {
        Self {
            encoder: Encoder::new(protocol, font, tmux),
            why: why.into(),
        }
    }

    fn halfblocks(why: impl Into<String>) -> Self {
        Self {
            encoder: None,
            why: why.into(),
        }
    }

    /// `sixel through tmux passthrough (why)`, `half blocks (why)`, ...
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{} ({})", protocol_name(self.encoder.as_ref()), self.why)
    }
}

/// How the Help tab names what `encoder` draws.
#[must_use]
pub fn protocol_name(encoder: Option<&Encoder>) -> &'static str {
    match encoder {
        None => "half blocks",
        Some(Encoder::Sixel { tmux: false, .. }) => "sixel",
        Some(Encoder::Sixel { tmux: true, .. }) => "sixel through tmux passthrough",
        Some(Encoder::Kitty { tmux: false, .. }) => "kitty graphics",
        Some(Encoder::Kitty { tmux: true, .. }) => {
            "kitty graphics with Unicode placeholders through tmux"
        }
        Some(Encoder::Iterm2 { tmux: false, .. }) => "iTerm2 images",
        Some(Encoder::Iterm2 { tmux: true, .. }) => "iTerm2 images through tmux passthrough",
    }
}

const FORCE: &str = "--graphics, CONVSCOPE_GRAPHICS or ui.graphics";

/// Choose the protocol. `replies` is the terminal's answer (outside tmux; `None` when it was not
/// asked or did not answer), `tmux` what tmux said (inside tmux; `Err` with the reason when it
/// could not be asked), `kernel_cell` the cell size from the terminal's window size in pixels.
#[must_use]
#[expect(
    clippy::too_many_lines,
    reason = "one decision table: the protocols are tried in order, top to bottom"
)]
pub fn decide(
    setting: GraphicsSetting,
    env: &Env,
    replies: Option<&Replies>,
    tmux: Option<&Result<TmuxAnswers, String>>,
    kernel_cell: Option<(u16, u16)>,
) -> Decision {
    let answers = tmux.and_then(|t| t.as_ref().ok());
    let cell = replies
        .and_then(|r| r.cell)
        .or_else(|| answers.and_then(|a| a.cell))
        .or(kernel_cell)
        .unwrap_or(GUESSED_CELL);
    let font = FontSize::new(cell.0, cell.1);
    let forced = |p: ProtocolType| format!("{p:?} forced by {FORCE}").to_lowercase();
    match setting {
        GraphicsSetting::Halfblocks => {
            return Decision::halfblocks(format!("set by {FORCE}"));
        }
        GraphicsSetting::Auto => {}
        GraphicsSetting::Sixel if env.tmux => {
            // tmux's own sixel needs no passthrough and survives its redraws.
            let own = answers.is_some_and(|a| a.sixel_support == Some(true));
            let why = if own {
                format!(
                    "{}; {} draws sixel itself",
                    forced(ProtocolType::Sixel),
                    answers.map(TmuxAnswers::name).unwrap_or_default()
                )
            } else {
                format!(
                    "{}; passed through tmux and redrawn when tmux redraws",
                    forced(ProtocolType::Sixel)
                )
            };
            return Decision::new(ProtocolType::Sixel, font, !own, why);
        }
        GraphicsSetting::Sixel => {
            return Decision::new(
                ProtocolType::Sixel,
                font,
                false,
                forced(ProtocolType::Sixel),
            );
        }
        GraphicsSetting::Kitty => {
            return Decision::new(
                ProtocolType::Kitty,
                font,
                env.tmux,
                forced(ProtocolType::Kitty),
            );
        }
        GraphicsSetting::Iterm2 => {
            return Decision::new(
                ProtocolType::Iterm2,
                font,
                env.tmux,
                forced(ProtocolType::Iterm2),
            );
        }
    }
    if env.tmux {
        return decide_in_tmux(tmux, font);
    }
    let Some(replies) = replies.filter(|r| r.answered) else {
        if let Some(name) = env.iterm2_named() {
            return Decision::new(
                ProtocolType::Iterm2,
                font,
                false,
                format!("the terminal did not answer; {name} draws iTerm2 images"),
            );
        }
        let ssh = if env.ssh { " (over SSH)" } else { "" };
        return Decision::halfblocks(format!(
            "the terminal did not answer the graphics query{ssh}; {FORCE} forces a protocol"
        ));
    };
    if replies.kitty {
        return Decision::new(
            ProtocolType::Kitty,
            font,
            false,
            "the terminal answered the kitty graphics query",
        );
    }
    if replies.sixel {
        return Decision::new(
            ProtocolType::Sixel,
            font,
            false,
            "the terminal lists sixel in its device attributes",
        );
    }
    if let Some(name) = env.iterm2_named() {
        return Decision::new(
            ProtocolType::Iterm2,
            font,
            false,
            format!("{name} draws iTerm2 images"),
        );
    }
    let hint = if env.term.starts_with("xterm") && env.term_program.is_empty() {
        "; xterm draws sixel when started with -ti vt340"
    } else {
        ""
    };
    Decision::halfblocks(format!(
        "the terminal answered without kitty graphics or sixel{hint}"
    ))
}

/// The automatic choice inside tmux.
fn decide_in_tmux(tmux: Option<&Result<TmuxAnswers, String>>, font: FontSize) -> Decision {
    let a = match tmux {
        Some(Ok(a)) => a,
        Some(Err(e)) => {
            return Decision::halfblocks(format!(
                "inside tmux, and tmux did not say what its terminal can do ({e}); {FORCE} forces a protocol"
            ));
        }
        None => {
            return Decision::halfblocks(format!(
                "inside tmux, which was not asked; {FORCE} forces a protocol"
            ));
        }
    };
    let tmux_name = a.name();
    if a.termname.is_empty() && a.termtype.is_empty() {
        return Decision::halfblocks(format!(
            "{tmux_name} has no client attached to say what the terminal can do"
        ));
    }
    let mut notes = Vec::new();
    match a.kitty_like() {
        Some(("kitty", Some(v))) if v < (0, 28) => notes.push(format!(
            "kitty {}.{} is too old for Unicode placeholders (0.28+)",
            v.0, v.1
        )),
        Some((name, _)) => {
            return Decision::new(
                ProtocolType::Kitty,
                font,
                true,
                format!(
                    "{tmux_name} in {name}: placeholder cells are text to tmux, so pictures survive its redraws"
                ),
            );
        }
        None => {}
    }
    match a.sixel_support {
        Some(true) if a.has_feature("sixel") => {
            return Decision::new(
                ProtocolType::Sixel,
                font,
                false,
                format!(
                    "{tmux_name} draws sixel itself (#{{sixel_support}} is 1) and its terminal has sixel"
                ),
            );
        }
        Some(true) => notes.push(format!(
            "{tmux_name} draws sixel but its terminal lacks the sixel feature"
        )),
        Some(false) => notes.push(format!("{tmux_name} was built without sixel")),
        None => notes.push(format!("{tmux_name} cannot draw sixel itself (3.4+ can)")),
    }
    if let Some(why) = a.outer_sixel() {
        return Decision::new(
            ProtocolType::Sixel,
            font,
            true,
            format!(
                "{}; {why}: through passthrough, redrawn when tmux redraws",
                notes.join("; ")
            ),
        );
    }
    let outer = if a.termtype.is_empty() {
        &a.termname
    } else {
        &a.termtype
    };
    notes.push(format!(
        "its terminal ({outer}) is not known to draw kitty graphics or sixel"
    ));
    Decision::halfblocks(format!("{}; {FORCE} forces a protocol", notes.join("; ")))
}

/// Ask the tmux server this process runs under (through `$TMUX`) about itself and its client.
pub fn ask_tmux() -> Result<TmuxAnswers, String> {
    let out = tmux_command(&["display-message", "-p", TMUX_FORMAT])?;
    Ok(TmuxAnswers::parse(&out))
}

/// Run `tmux ARGS`, waiting at most [`TMUX_DEADLINE`]; its output.
pub(super) fn tmux_command(args: &[&str]) -> Result<String, String> {
    let mut child = std::process::Command::new("tmux")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run tmux: {e}"))?;
    let deadline = Instant::now() + TMUX_DEADLINE;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("tmux did not answer within {TMUX_DEADLINE:?}"));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Let tmux pass this pane's image data through to the outer terminal (`allow-passthrough`,
/// for this pane only).
pub fn allow_passthrough() {
    if let Err(e) = tmux_command(&["set", "-p", "allow-passthrough", "on"]) {
        tracing::warn!("cannot allow tmux passthrough: {e}");
    }
}

/// How long [`ask_terminal`] waits for the first byte of the answer, and for all of it.
const ASK_FIRST: Duration = Duration::from_millis(300);
const ASK_WHOLE: Duration = Duration::from_secs(1);

/// Ask the terminal ratatui-image's graphics query from a plain command line (outside the TUI)
/// and read the answer: in raw mode, at most [`ASK_FIRST`] for it to begin and [`ASK_WHOLE`] in
/// all, ending at the status report that closes it. `None` when there is no terminal to ask.
#[must_use]
pub fn ask_terminal() -> Option<Replies> {
    use std::io::IsTerminal as _;
    use std::os::fd::AsFd as _;
    let stdin = std::io::stdin();
    let tty;
    let fd = if stdin.is_terminal() {
        stdin.as_fd()
    } else {
        tty = std::fs::File::open("/dev/tty").ok()?;
        tty.as_fd()
    };
    crossterm::terminal::enable_raw_mode().ok()?;
    let query = Parser::query(
        false,
        ratatui_image::picker::cap_parser::QueryStdioOptions::default(),
    );
    let mut out = std::io::stdout();
    let answer = out
        .write_all(query.as_bytes())
        .and_then(|()| out.flush())
        .and_then(|()| read_until_status(fd));
    let _ = crossterm::terminal::disable_raw_mode();
    Some(Replies::parse(&answer.ok()?))
}

/// Read from `fd` until the status report (`ESC [ 0 n`) arrives or the time is up.
fn read_until_status(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Vec<u8>> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let start = Instant::now();
    let mut answer = Vec::new();
    while !answer.windows(4).any(|w| w == b"\x1b[0n") {
        let limit = if answer.contains(&0x1b) {
            ASK_WHOLE
        } else {
            ASK_FIRST
        };
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

/// The outcome of [`start`].
pub struct Detected {
    /// What to draw with now.
    pub now: Decision,
    /// The answer, when it did not come within the deadline.
    pub late: Option<Receiver<Decision>>,
}

/// Find the encoder for `setting`. Call it in the alternate screen and in raw mode, before
/// anything else reads terminal input.
#[must_use]
pub fn start(setting: GraphicsSetting) -> Detected {
    let env = Env::current();
    let now = |d: Decision| Detected { now: d, late: None };
    if setting == GraphicsSetting::Halfblocks {
        return now(decide(setting, &env, None, None, None));
    }
    if env.tmux {
        let answers = ask_tmux();
        let d = decide(setting, &env, None, Some(&answers), font_from_kernel());
        if d.encoder.as_ref().is_some_and(Encoder::passthrough) {
            // The image data reaches the outer terminal only with passthrough allowed.
            allow_passthrough();
        }
        tracing::info!("terminal graphics: {}", d.describe());
        return now(d);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("graphics-query".into())
        .spawn(move || {
            // The UI may be gone by now: nothing to do then.
            let _ = tx.send(query(setting, &env));
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the terminal graphics query: {e}");
        return now(stand_in(setting));
    }
    match rx.recv_timeout(DEADLINE) {
        Ok(d) => now(d),
        Err(RecvTimeoutError::Disconnected) => now(stand_in(setting)),
        Err(RecvTimeoutError::Timeout) => {
            // A status request, which every terminal answers, ends ratatui-image's read loop if
            // that is where the query waits.
            let mut out = std::io::stdout();
            let _ = out.write_all(b"\x1b[5n").and_then(|()| out.flush());
            let d = stand_in(setting);
            tracing::info!(
                "the terminal graphics query did not finish within {DEADLINE:?}: drawing with \
                 {d:?} until it does"
            );
            Detected {
                now: d,
                late: Some(rx),
            }
        }
    }
}

/// Ask the terminal (on the query thread) and decide.
fn query(setting: GraphicsSetting, env: &Env) -> Decision {
    let picker = Picker::from_query_stdio();
    let replies = picker.as_ref().ok().map(Replies::from_picker);
    if !replies.as_ref().is_some_and(|r| r.answered) {
        // The terminal did not answer. ratatui-image's reader thread is still blocked on stdin
        // and would swallow the first key press: ask for the primary device attributes, which
        // every terminal answers, so that the thread reads its end marker and exits. If
        // crossterm sees the answer instead, it discards it as an internal event.
        let mut out = std::io::stdout();
        let _ = out.write_all(b"\x1b[c").and_then(|()| out.flush());
    }
    if let Err(e) = &picker {
        tracing::info!("terminal graphics query failed: {e}");
    }
    let d = decide(setting, env, replies.as_ref(), None, font_from_kernel());
    tracing::info!("terminal graphics: {}", d.describe());
    d
}

/// What to draw with while the answer is outstanding: a forced sixel needs no answer (our own
/// encoder, the cell size from the kernel or guessed); the others wait for the answer and draw
/// half blocks meanwhile.
fn stand_in(setting: GraphicsSetting) -> Decision {
    if setting == GraphicsSetting::Sixel {
        let env = Env::current();
        let mut d = decide(setting, &env, None, None, font_from_kernel());
        d.why.push_str("; the terminal has not answered yet");
        d
    } else {
        Decision::halfblocks("waiting for the terminal to answer the graphics query")
    }
}

/// The cell size from the terminal's window size in pixels, where the terminal reports it.
#[must_use]
pub fn font_from_kernel() -> Option<(u16, u16)> {
    let w = crossterm::terminal::window_size().ok()?;
    if w.columns == 0 || w.rows == 0 || w.width == 0 || w.height == 0 {
        return None;
    }
    Some((w.width / w.columns, w.height / w.rows))
}

#[cfg(test)]
mod tests;
