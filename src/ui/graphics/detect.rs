//! Which graphics protocol the terminal gets, found without ever holding up the first frame.
//!
//! ratatui-image's picker asks the terminal (escape sequences answered on stdin) and, inside tmux,
//! also runs `tmux set -p allow-passthrough on` and waits for it: every one of its constructors
//! does, even `Picker::halfblocks()`. A slow or stuck `tmux` client, or a terminal that does not
//! answer, must not leave the screen blank, so all of it runs on a thread of its own. The UI
//! waits for it at most [`DEADLINE`] (the answer normally takes milliseconds); a later answer is
//! taken in when it comes ([`super::Graphics::poll_late`]).

use std::io::Write as _;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use ratatui_image::FontSize;
use ratatui_image::picker::{Picker, ProtocolType};

use crate::config::Graphics as GraphicsSetting;

/// How long the first frame waits for the terminal's answer.
pub const DEADLINE: Duration = Duration::from_secs(3);

/// How pictures are turned into terminal graphics.
#[derive(Clone)]
pub enum Encoder {
    /// Our own sixel encoder (exact palettes, see `ui::sixel`): it needs only the cell size and
    /// whether to wrap the image in tmux's passthrough.
    Sixel { font: FontSize, tmux: bool },
    /// kitty or iTerm2, through ratatui-image.
    Picker(Picker),
}

impl Encoder {
    /// The encoder for what `picker` chose; `None` for half blocks.
    #[must_use]
    pub fn from_picker(picker: Picker) -> Option<Self> {
        match picker.protocol_type() {
            ProtocolType::Halfblocks => None,
            ProtocolType::Sixel => Some(Self::Sixel {
                font: picker.font_size(),
                tmux: picker.tmux_detected(),
            }),
            ProtocolType::Kitty | ProtocolType::Iterm2 => Some(Self::Picker(picker)),
        }
    }

    #[must_use]
    pub fn protocol(&self) -> ProtocolType {
        match self {
            Self::Sixel { .. } => ProtocolType::Sixel,
            Self::Picker(p) => p.protocol_type(),
        }
    }

    /// The size of one cell in pixels.
    #[must_use]
    pub fn font(&self) -> FontSize {
        match self {
            Self::Sixel { font, .. } => *font,
            Self::Picker(p) => p.font_size(),
        }
    }
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {:?}", self.protocol(), self.font())
    }
}

/// The outcome of [`start`].
pub struct Detected {
    /// What to draw with now (`None`: half blocks).
    pub now: Option<Encoder>,
    /// The answer, when it did not come within the deadline.
    pub late: Option<Receiver<Option<Encoder>>>,
}

/// Find the encoder for `setting`. Call it in the alternate screen and in raw mode, before
/// anything else reads terminal input.
#[must_use]
pub fn start(setting: GraphicsSetting) -> Detected {
    let none = Detected {
        now: None,
        late: None,
    };
    if setting == GraphicsSetting::Halfblocks {
        return none;
    }
    // tmux passes graphics through only with `allow-passthrough on`, and its answer to the
    // query can leave the query waiting: in tmux, auto means half blocks (force a protocol with
    // --graphics to use passthrough).
    if setting == GraphicsSetting::Auto && std::env::var_os("TMUX").is_some() {
        tracing::info!("inside tmux: half blocks (use --graphics sixel with allow-passthrough on)");
        return none;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("graphics-query".into())
        .spawn(move || {
            // The UI may be gone by now: nothing to do then.
            let _ = tx.send(query(setting));
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the terminal graphics query: {e}");
        return Detected {
            now: stand_in(setting),
            late: None,
        };
    }
    match rx.recv_timeout(DEADLINE) {
        Ok(now) => Detected { now, late: None },
        Err(RecvTimeoutError::Disconnected) => Detected {
            now: stand_in(setting),
            late: None,
        },
        Err(RecvTimeoutError::Timeout) => {
            // A status request, which every terminal answers, ends ratatui-image's read loop if
            // that is where the query waits.
            let mut out = std::io::stdout();
            let _ = out.write_all(b"\x1b[5n").and_then(|()| out.flush());
            let now = stand_in(setting);
            tracing::info!(
                "the terminal graphics query did not finish within {DEADLINE:?}: drawing with \
                 {now:?} until it does"
            );
            Detected {
                now,
                late: Some(rx),
            }
        }
    }
}

/// Ask the terminal (on the query thread) and decide.
fn query(setting: GraphicsSetting) -> Option<Encoder> {
    let picker = Picker::from_query_stdio();
    if picker
        .as_ref()
        .map_or(true, |p| p.capabilities().is_empty())
    {
        // The terminal did not answer (e.g. tmux without passthrough). ratatui-image's reader
        // thread is still blocked on stdin and would swallow the first key press: ask for the
        // primary device attributes, which every terminal (and tmux itself) answers, so that the
        // thread reads its end marker and exits. If crossterm sees the answer instead, it
        // discards it as an internal event.
        let mut out = std::io::stdout();
        let _ = out.write_all(b"\x1b[c").and_then(|()| out.flush());
    }
    let mut picker = match picker {
        Ok(p) => p,
        // A forced protocol is honoured even without an answer (font size guessed).
        Err(e) if setting != GraphicsSetting::Auto => {
            tracing::info!("terminal graphics query failed, forcing {setting:?}: {e}");
            Picker::halfblocks()
        }
        Err(e) => {
            tracing::info!("terminal graphics query failed, using half blocks: {e}");
            return None;
        }
    };
    if let Some(p) = forced(setting) {
        picker.set_protocol_type(p);
    }
    tracing::info!(
        "terminal graphics: {:?}, font {:?}",
        picker.protocol_type(),
        picker.font_size()
    );
    Encoder::from_picker(picker)
}

/// The protocol `setting` insists on, if any.
fn forced(setting: GraphicsSetting) -> Option<ProtocolType> {
    match setting {
        GraphicsSetting::Sixel => Some(ProtocolType::Sixel),
        GraphicsSetting::Kitty => Some(ProtocolType::Kitty),
        GraphicsSetting::Iterm2 => Some(ProtocolType::Iterm2),
        GraphicsSetting::Auto | GraphicsSetting::Halfblocks => None,
    }
}

/// What to draw with while the answer is outstanding: a forced sixel needs no picker (our own
/// encoder, the cell size from the kernel or guessed, tmux from the environment); the others wait
/// for the picker and draw half blocks meanwhile.
fn stand_in(setting: GraphicsSetting) -> Option<Encoder> {
    (setting == GraphicsSetting::Sixel).then(|| Encoder::Sixel {
        font: font_from_kernel().unwrap_or(FontSize::new(10, 20)),
        tmux: in_tmux(),
    })
}

/// The cell size from the terminal's window size in pixels, where the terminal reports it.
fn font_from_kernel() -> Option<FontSize> {
    let w = crossterm::terminal::window_size().ok()?;
    if w.columns == 0 || w.rows == 0 || w.width == 0 || w.height == 0 {
        return None;
    }
    Some(FontSize::new(w.width / w.columns, w.height / w.rows))
}

/// Whether this process runs inside tmux (the same test as ratatui-image's, plus `$TMUX`).
fn in_tmux() -> bool {
    std::env::var_os("TMUX").is_some()
        || std::env::var("TERM").is_ok_and(|t| t.starts_with("tmux"))
        || std::env::var("TERM_PROGRAM").is_ok_and(|t| t == "tmux")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picker_maps_to_our_encoder() {
        let mut p = Picker::halfblocks();
        assert!(Encoder::from_picker(p.clone()).is_none());
        p.set_protocol_type(ProtocolType::Sixel);
        let tmux = p.tmux_detected();
        match Encoder::from_picker(p.clone()) {
            Some(Encoder::Sixel { font, tmux: t }) => {
                assert_eq!((font.width, font.height), (10, 20));
                assert_eq!(t, tmux);
            }
            other => panic!("our sixel encoder, got {other:?}"),
        }
        p.set_protocol_type(ProtocolType::Kitty);
        assert!(matches!(Encoder::from_picker(p), Some(Encoder::Picker(_))));
    }

    #[test]
    fn only_a_forced_sixel_draws_graphics_before_the_answer() {
        assert_eq!(
            stand_in(GraphicsSetting::Sixel).map(|e| e.protocol()),
            Some(ProtocolType::Sixel)
        );
        for s in [
            GraphicsSetting::Auto,
            GraphicsSetting::Kitty,
            GraphicsSetting::Iterm2,
            GraphicsSetting::Halfblocks,
        ] {
            assert!(stand_in(s).is_none(), "{s:?}");
        }
    }
}
