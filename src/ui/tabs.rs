//! One module per tab.

pub mod features;
pub mod filters;
pub mod help;
pub mod model;
pub mod training;

use super::state::Tab;

/// The short key hint shown on the status line for a tab.
#[must_use]
pub fn hints(tab: Tab) -> &'static str {
    match tab {
        Tab::Training => "Space pause/resume · s checkpoint · x stop · 1-5 tabs · ? help · q quit",
        Tab::Model => "↑↓ select · Enter filters/maps · m maps · ? help · q quit",
        Tab::Filters => "←→ layer · ↑↓ filter · f norm · c colormap · r refresh · ? help",
        Tab::Features => "←→ layer · ↑↓ channel · n/p probe · o open · c colormap · ? help",
        Tab::Help => "↑↓ PgUp PgDn scroll · 1-5 tabs · Tab next · q quit",
    }
}
