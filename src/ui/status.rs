//! The note on the status line, as what it says rather than as text: the state can ask what
//! it is (a probe under way, an epoch being loaded) and [`Note`]'s `Display` writes it.

use std::fmt;

/// What the status line says (when no prompt or path line takes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A probe image's maps were asked for; they have not arrived yet.
    Probing(String),
    /// A past epoch's pictures were asked for (`[` / `]`); `newest` is the newest epoch.
    Loading { epoch: usize, newest: usize },
    /// The pictures asked for with [`Note::Loading`] have arrived.
    Showing { epoch: usize, newest: usize },
    /// Anything else: an answer, a confirmation, a warning.
    Text(String),
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Probing(image) => write!(f, "probing {image}"),
            Note::Loading { epoch, newest } => write!(
                f,
                "loading epoch {epoch} ( ] steps forward, past {newest} follows training)"
            ),
            Note::Showing { epoch, newest } => write!(
                f,
                "showing epoch {epoch} ( ] steps forward, past {newest} follows training)"
            ),
            Note::Text(text) => f.write_str(text),
        }
    }
}

impl From<String> for Note {
    fn from(text: String) -> Self {
        Note::Text(text)
    }
}

impl From<&str> for Note {
    fn from(text: &str) -> Self {
        Note::Text(text.to_string())
    }
}
