//! The UI's small vocabulary: tabs, the run's phase, prompts, colour depth, picture slots and
//! how the TUI ended. The bottom of the UI: it imports nothing from it.

use crate::events::FinishReason;

/// The tabs, in tab-bar order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tab {
    Training,
    Model,
    Filters,
    Features,
    Validation,
    Help,
}

impl Tab {
    /// Every tab in order.
    pub const ALL: [Tab; 6] = [
        Tab::Training,
        Tab::Model,
        Tab::Filters,
        Tab::Features,
        Tab::Validation,
        Tab::Help,
    ];

    /// Title in the tab bar.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Tab::Training => "Training",
            Tab::Model => "Model",
            Tab::Filters => "Filters",
            Tab::Features => "Feature maps",
            Tab::Validation => "Validation",
            Tab::Help => "Help",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|&t| t == self).unwrap_or(0)
    }

    /// The tab `by` places on in the tab bar, wrapping around.
    #[must_use]
    pub fn offset(self, by: isize) -> Tab {
        let n = Tab::ALL.len() as isize;
        Tab::ALL[(self.index() as isize + by).rem_euclid(n) as usize]
    }
}

/// Where the run is, as far as the UI knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No event yet.
    Waiting,
    Preparing,
    Tuning,
    Running,
    Paused,
    Stopping,
    /// A viewer saw no event for a while from a live process.
    Stalled,
    /// A viewer found the run's process gone without a final event.
    Interrupted,
    Finished(FinishReason),
    Failed,
}

impl Phase {
    /// Whether the worker is still working (quitting should ask first).
    #[must_use]
    pub fn is_active(self) -> bool {
        !matches!(
            self,
            Phase::Finished(_) | Phase::Failed | Phase::Interrupted
        )
    }
}

/// A question on the status line waiting for y/n.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    None,
    ConfirmStop,
    ConfirmQuit,
}

/// Epoch pictures asked for with `[` / `]` that have not arrived yet: further presses count
/// from here, not from the epoch on screen (several presses in one read, as key repeat or
/// typing over SSH sends them, moved one epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochRequest {
    /// A past epoch's checkpoint.
    At(usize),
    /// Follow training again; the newest epoch was this one when asked.
    Newest(usize),
}

/// How colours reach the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorDepth {
    TrueColor,
    Palette256,
}

/// The places a picture can appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    FilterGrid,
    FilterRgb,
    FilterZoom,
    Probe,
    FeatureGrid,
    ChannelZoom,
    /// Validation tab: the selected image of a cell's list.
    ValImage,
    /// Validation tab: thumbnails of the listed images around the selected one.
    ValThumbs,
}

/// Which images of a confusion cell the Validation tab lists, and in what order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListMode {
    /// Every image of the cell, highest loss (most confidently wrong) first.
    #[default]
    Wrong,
    /// Nearest the decision boundary (smallest gap between the top two probabilities) first.
    Ambiguous,
    /// Only those whose right/wrong changed since the previous epoch.
    Flipped,
    /// Only probable label noise (confidently wrong for several epochs in a row).
    Noise,
}

impl ListMode {
    /// How the list is described on screen.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            ListMode::Wrong => "highest loss first",
            ListMode::Ambiguous => "ambiguous: nearest the decision boundary first",
            ListMode::Flipped => "flipped since the previous epoch",
            ListMode::Noise => "probable label noise (wrong at p >= 0.9, 3+ epochs in a row)",
        }
    }
}

/// How the TUI ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiExit {
    /// The run had finished (or failed) and the user quit.
    Finished,
    /// The user chose to stop the run; it stopped and wrote its checkpoint.
    QuitStopped,
    /// The user left while the run kept going (detach, or a second Ctrl-C while stopping).
    QuitWhileRunning,
}
