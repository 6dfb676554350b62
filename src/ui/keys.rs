//! Every key binding, in one table; the help tab is generated from it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::state::Tab;

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ShowTab(Tab),
    NextTab,
    PrevTab,
    Quit,
    /// Ctrl-C: like quit; a second one while stopping leaves at once.
    Interrupt,
    TogglePause,
    CheckpointNow,
    Stop,
    /// Model tab: move the row selection.
    RowUp,
    RowDown,
    /// Model tab: open the selected layer's filters (conv) or feature maps (others).
    OpenLayer,
    /// Model tab: open the selected layer's feature maps.
    OpenMaps,
    PrevLayer,
    NextLayer,
    /// Filters / feature maps: previous / next filter or channel.
    PrevItem,
    NextItem,
    /// Filters / feature maps: one grid row up / down (8 items).
    PrevItemRow,
    NextItemRow,
    ToggleFilterNorm,
    RefreshFilters,
    CycleColormap,
    NextProbe,
    PrevProbe,
    OpenProbe,
    /// Filters / feature maps: look at the previous / next epoch's checkpoint.
    PrevEpoch,
    NextEpoch,
    /// Write what the current tab shows into the run's export folder.
    Export,
    /// Help tab, Training tab's epoch table: scroll by `n` lines (negative: up).
    Scroll(i16),
    /// Training tab: the epoch table's first rows.
    ScrollHome,
    /// Training tab: the epoch table's newest rows, following new epochs.
    ScrollEnd,
    /// Training tab: scroll the epoch table to the best epoch (★).
    ShowBest,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Global,
    On(Tab),
}

/// One key chord.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

const fn key(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        modifiers: KeyModifiers::NONE,
    }
}

const fn code(code: KeyCode) -> Key {
    Key {
        code,
        modifiers: KeyModifiers::NONE,
    }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        modifiers: KeyModifiers::CONTROL,
    }
}

/// A row of the key table.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub context: Context,
    pub keys: &'static [Key],
    /// How the keys are written in the help.
    pub label: &'static str,
    pub action: Action,
    pub help: &'static str,
}

const fn bind(
    context: Context,
    keys: &'static [Key],
    label: &'static str,
    action: Action,
    help: &'static str,
) -> Binding {
    Binding {
        context,
        keys,
        label,
        action,
        help,
    }
}

use Context::{Global, On};

/// The key table.
pub const BINDINGS: &[Binding] = &[
    bind(
        Global,
        &[key('1')],
        "1",
        Action::ShowTab(Tab::Training),
        "Training tab",
    ),
    bind(
        Global,
        &[key('2')],
        "2",
        Action::ShowTab(Tab::Model),
        "Model tab",
    ),
    bind(
        Global,
        &[key('3')],
        "3",
        Action::ShowTab(Tab::Filters),
        "Filters tab",
    ),
    bind(
        Global,
        &[key('4')],
        "4",
        Action::ShowTab(Tab::Features),
        "Feature maps tab",
    ),
    bind(
        Global,
        &[key('5'), key('?')],
        "5 ?",
        Action::ShowTab(Tab::Help),
        "Help",
    ),
    bind(
        Global,
        &[code(KeyCode::Tab)],
        "Tab",
        Action::NextTab,
        "next tab",
    ),
    bind(
        Global,
        &[
            code(KeyCode::BackTab),
            Key {
                code: KeyCode::BackTab,
                modifiers: KeyModifiers::SHIFT,
            },
        ],
        "Shift-Tab",
        Action::PrevTab,
        "previous tab",
    ),
    bind(
        Global,
        &[key(' ')],
        "Space",
        Action::TogglePause,
        "pause / resume training",
    ),
    bind(
        Global,
        &[key('s')],
        "s",
        Action::CheckpointNow,
        "checkpoint now (mid-epoch: kept until the epoch's own)",
    ),
    bind(
        Global,
        &[key('x')],
        "x",
        Action::Stop,
        "stop training (asks)",
    ),
    bind(
        Global,
        &[key('c')],
        "c",
        Action::CycleColormap,
        "cycle colormap",
    ),
    bind(
        Global,
        &[key('q')],
        "q",
        Action::Quit,
        "quit (asks if training runs)",
    ),
    bind(
        Global,
        &[ctrl('c')],
        "Ctrl-C",
        Action::Interrupt,
        "quit; twice: leave now",
    ),
    bind(
        On(Tab::Training),
        &[code(KeyCode::Up), key('k')],
        "↑ k",
        Action::Scroll(-1),
        "epoch table: scroll up",
    ),
    bind(
        On(Tab::Training),
        &[code(KeyCode::Down), key('j')],
        "↓ j",
        Action::Scroll(1),
        "epoch table: scroll down",
    ),
    bind(
        On(Tab::Training),
        &[code(KeyCode::PageUp), key('K')],
        "PgUp K",
        Action::Scroll(-10),
        "epoch table: 10 up",
    ),
    bind(
        On(Tab::Training),
        &[code(KeyCode::PageDown), key('J')],
        "PgDn J",
        Action::Scroll(10),
        "epoch table: 10 down",
    ),
    bind(
        On(Tab::Training),
        &[code(KeyCode::Home), key('g')],
        "Home g",
        Action::ScrollHome,
        "epoch table: first epochs",
    ),
    bind(
        On(Tab::Training),
        &[code(KeyCode::End), key('G')],
        "End G",
        Action::ScrollEnd,
        "epoch table: newest (follows)",
    ),
    bind(
        On(Tab::Training),
        &[key('b')],
        "b",
        Action::ShowBest,
        "epoch table: the best epoch ★",
    ),
    bind(
        On(Tab::Help),
        &[code(KeyCode::Up), key('k')],
        "↑ k",
        Action::Scroll(-1),
        "scroll up",
    ),
    bind(
        On(Tab::Help),
        &[code(KeyCode::Down), key('j')],
        "↓ j",
        Action::Scroll(1),
        "scroll down",
    ),
    bind(
        On(Tab::Help),
        &[code(KeyCode::PageUp), key('K')],
        "PgUp K",
        Action::Scroll(-10),
        "10 lines up",
    ),
    bind(
        On(Tab::Help),
        &[code(KeyCode::PageDown), key('J')],
        "PgDn J",
        Action::Scroll(10),
        "10 lines down",
    ),
    bind(
        On(Tab::Model),
        &[code(KeyCode::Up), key('k')],
        "↑ k",
        Action::RowUp,
        "previous layer",
    ),
    bind(
        On(Tab::Model),
        &[code(KeyCode::Down), key('j')],
        "↓ j",
        Action::RowDown,
        "next layer",
    ),
    bind(
        On(Tab::Model),
        &[code(KeyCode::Enter)],
        "Enter",
        Action::OpenLayer,
        "open filters (conv) / maps",
    ),
    bind(
        On(Tab::Model),
        &[key('m')],
        "m",
        Action::OpenMaps,
        "open feature maps",
    ),
    bind(
        On(Tab::Filters),
        &[code(KeyCode::Left), key('h')],
        "← h",
        Action::PrevLayer,
        "previous conv layer",
    ),
    bind(
        On(Tab::Filters),
        &[code(KeyCode::Right), key('l')],
        "→ l",
        Action::NextLayer,
        "next conv layer",
    ),
    bind(
        On(Tab::Filters),
        &[code(KeyCode::Up), key('k')],
        "↑ k",
        Action::PrevItem,
        "previous filter (zoomed)",
    ),
    bind(
        On(Tab::Filters),
        &[code(KeyCode::Down), key('j')],
        "↓ j",
        Action::NextItem,
        "next filter (zoomed)",
    ),
    bind(
        On(Tab::Filters),
        &[code(KeyCode::PageUp), key('K')],
        "PgUp K",
        Action::PrevItemRow,
        "8 filters back",
    ),
    bind(
        On(Tab::Filters),
        &[code(KeyCode::PageDown), key('J')],
        "PgDn J",
        Action::NextItemRow,
        "8 filters on",
    ),
    bind(
        On(Tab::Filters),
        &[key('f')],
        "f",
        Action::ToggleFilterNorm,
        "min-max per layer / filter",
    ),
    bind(
        Global,
        &[key('e')],
        "e",
        Action::Export,
        "export what is on screen (PNG, CSV, text)",
    ),
    bind(
        On(Tab::Filters),
        &[key('r')],
        "r",
        Action::RefreshFilters,
        "refresh the filters now",
    ),
    bind(
        On(Tab::Filters),
        &[key('[')],
        "[",
        Action::PrevEpoch,
        "filters of the previous epoch",
    ),
    bind(
        On(Tab::Filters),
        &[key(']')],
        "]",
        Action::NextEpoch,
        "next epoch (past the newest: follow training)",
    ),
    bind(
        On(Tab::Features),
        &[key('[')],
        "[",
        Action::PrevEpoch,
        "maps of the previous epoch",
    ),
    bind(
        On(Tab::Features),
        &[key(']')],
        "]",
        Action::NextEpoch,
        "next epoch (past the newest: follow training)",
    ),
    bind(
        On(Tab::Features),
        &[code(KeyCode::Left), key('h')],
        "← h",
        Action::PrevLayer,
        "previous layer",
    ),
    bind(
        On(Tab::Features),
        &[code(KeyCode::Right), key('l')],
        "→ l",
        Action::NextLayer,
        "next layer",
    ),
    bind(
        On(Tab::Features),
        &[code(KeyCode::Up), key('k')],
        "↑ k",
        Action::PrevItem,
        "previous channel (zoomed)",
    ),
    bind(
        On(Tab::Features),
        &[code(KeyCode::Down), key('j')],
        "↓ j",
        Action::NextItem,
        "next channel (zoomed)",
    ),
    bind(
        On(Tab::Features),
        &[code(KeyCode::PageUp), key('K')],
        "PgUp K",
        Action::PrevItemRow,
        "8 channels back",
    ),
    bind(
        On(Tab::Features),
        &[code(KeyCode::PageDown), key('J')],
        "PgDn J",
        Action::NextItemRow,
        "8 channels on",
    ),
    bind(
        On(Tab::Features),
        &[key('n')],
        "n",
        Action::NextProbe,
        "next probe image",
    ),
    bind(
        On(Tab::Features),
        &[key('p')],
        "p",
        Action::PrevProbe,
        "previous probe image",
    ),
    bind(
        On(Tab::Features),
        &[key('o')],
        "o",
        Action::OpenProbe,
        "probe an image by path (Tab completes it, Ctrl-U clears it)",
    ),
];

/// The action bound to `event` on `tab`: the tab's own bindings first, then the global ones.
#[must_use]
pub fn lookup(event: KeyEvent, tab: Tab) -> Option<Action> {
    // Terminals differ on whether Shift is reported with upper-case letters and symbols.
    let mods = if let KeyCode::Char(_) = event.code {
        event.modifiers - KeyModifiers::SHIFT
    } else {
        event.modifiers
    };
    let hit = |b: &&Binding| {
        b.keys
            .iter()
            .any(|k| k.code == event.code && k.modifiers == mods)
    };
    BINDINGS
        .iter()
        .filter(|b| b.context == On(tab))
        .find(hit)
        .or_else(|| BINDINGS.iter().filter(|b| b.context == Global).find(hit))
        .map(|b| b.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn tab_bindings_shadow_global_ones_and_fall_back() {
        let left = ev(KeyCode::Left, KeyModifiers::NONE);
        assert_eq!(lookup(left, Tab::Filters), Some(Action::PrevLayer));
        assert_eq!(lookup(left, Tab::Training), None);
        let q = ev(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(lookup(q, Tab::Features), Some(Action::Quit));
        let cc = ev(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(lookup(cc, Tab::Model), Some(Action::Interrupt));
        let shifted = ev(KeyCode::Char('?'), KeyModifiers::SHIFT);
        assert_eq!(
            lookup(shifted, Tab::Model),
            Some(Action::ShowTab(Tab::Help))
        );
        let big_j = ev(KeyCode::Char('J'), KeyModifiers::SHIFT);
        assert_eq!(lookup(big_j, Tab::Filters), Some(Action::NextItemRow));
    }

    #[test]
    fn no_key_is_bound_twice_in_one_context() {
        for (i, a) in BINDINGS.iter().enumerate() {
            for b in &BINDINGS[i + 1..] {
                if a.context == b.context {
                    for k in a.keys {
                        assert!(!b.keys.contains(k), "{k:?} bound twice in {:?}", a.context);
                    }
                }
            }
        }
    }
}
