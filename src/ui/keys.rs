//! Every key binding, in one table; the Help tab and the status line's key hints are
//! generated from it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::vocab::{ListMode, Tab};

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
    /// Validation tab: move the cursor over the matrix's cells (rows, columns), or through a
    /// cell's list of images (rows).
    CellMove(i8, i8),
    /// Validation tab: list the cell's images; on an image, probe it on the Feature maps tab.
    Open,
    /// Validation tab: from a cell's images back to the matrix.
    Back,
    /// Validation tab: list the cell's images in this order or filter (again: the default).
    ListImages(ListMode),
    /// Validation tab: the cells show counts or row percentages.
    TogglePercent,
    /// Feature maps: Grad-CAM over the probe image on / off.
    ToggleCam,
    /// Feature maps: Grad-CAM at the next conv layer (then all of them averaged); turns it on.
    NextCamLayer,
    /// Feature maps: Grad-CAM of the next class (a counterfactual); turns it on.
    NextCamClass,
    /// Feature maps: the photo's weight in the overlay, 0.3 / 0.5 / 0.7 / heat only.
    CycleCamWeight,
    /// Feature maps: the overlay's colormap, jet / turbo / magma.
    CycleCamColormap,
    /// Filters: raw weights / what each filter looks for (the quick tier).
    ToggleLooks,
    /// Filters: what each filter looks for, the regularised tier / the quick one.
    ToggleLooksRegularised,
    /// Feature maps: compare with the probe shown (it becomes B; n/p/o then pick A).
    CompareWithProbe,
    /// Feature maps: stop comparing.
    CompareOff,
    /// Feature maps: while comparing, order the channels by difference / selectivity / not.
    CycleCompareOrder,
    /// Validation tab: on an image, compare the probe with it (it becomes B).
    CompareWithImage,
    /// Feature maps: pin each channel's scale to the epoch shown (again: unpin), so that
    /// brightness compares across epochs.
    PinScale,
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
    /// How the binding appears in the status line's key hints, on which tabs.
    pub hints: &'static [Hint],
}

/// When a hint is shown, by the run's state: the run's own keys only while there is a run to
/// steer, the tab keys on the Training tab only once there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Any,
    Active,
    Ended,
}

/// One entry of the status line's key hints: on `tab`, at place `order`, the text.
#[derive(Debug, Clone, Copy)]
pub struct Hint {
    pub tab: Tab,
    pub order: u8,
    pub run: Run,
    pub text: &'static str,
}

const fn hint(tab: Tab, order: u8, text: &'static str) -> Hint {
    Hint {
        tab,
        order,
        run: Run::Any,
        text,
    }
}

const fn hint_when(run: Run, tab: Tab, order: u8, text: &'static str) -> Hint {
    Hint {
        tab,
        order,
        run,
        text,
    }
}

impl Binding {
    const fn hinted(self, hints: &'static [Hint]) -> Self {
        Binding { hints, ..self }
    }
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
        hints: &[],
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
    )
    .hinted(&[
        hint_when(Run::Ended, Tab::Training, 6, "1-6 tabs"),
        hint(Tab::Help, 2, "1-6 tabs"),
    ]),
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
        &[key('5')],
        "5",
        Action::ShowTab(Tab::Validation),
        "Validation tab",
    ),
    bind(
        Global,
        &[key('6'), key('?')],
        "6 ?",
        Action::ShowTab(Tab::Help),
        "Help",
    )
    .hinted(&[
        hint(Tab::Training, 7, "? help"),
        hint(Tab::Model, 4, "? help"),
        hint(Tab::Filters, 8, "? help"),
        hint(Tab::Features, 8, "? help"),
        hint(Tab::Validation, 7, "? help"),
    ]),
    bind(
        Global,
        &[code(KeyCode::Tab)],
        "Tab",
        Action::NextTab,
        "next tab",
    )
    .hinted(&[hint(Tab::Help, 3, "Tab next")]),
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
    )
    .hinted(&[hint_when(
        Run::Active,
        Tab::Training,
        1,
        "Space pause/resume",
    )]),
    bind(
        Global,
        &[key('s')],
        "s",
        Action::CheckpointNow,
        "checkpoint now (mid-epoch: kept until the epoch's own)",
    )
    .hinted(&[hint_when(Run::Active, Tab::Training, 2, "s checkpoint")]),
    bind(
        Global,
        &[key('x')],
        "x",
        Action::Stop,
        "stop training (asks)",
    )
    .hinted(&[hint_when(Run::Active, Tab::Training, 3, "x stop")]),
    bind(
        Global,
        &[key('c')],
        "c",
        Action::CycleColormap,
        "cycle colormap",
    )
    .hinted(&[
        hint(Tab::Filters, 5, "c colormap"),
        hint(Tab::Features, 6, "c colormap"),
    ]),
    bind(
        Global,
        &[key('q')],
        "q",
        Action::Quit,
        "quit (asks if training runs)",
    )
    .hinted(&[
        hint(Tab::Training, 8, "q quit"),
        hint(Tab::Model, 5, "q quit"),
        hint(Tab::Help, 4, "q quit"),
    ]),
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
    )
    .hinted(&[hint(Tab::Training, 4, "↑↓ b epochs")]),
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
    )
    .hinted(&[hint(Tab::Help, 1, "↑↓ PgUp PgDn scroll")]),
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
    )
    .hinted(&[hint(Tab::Model, 1, "↑↓ select")]),
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
    )
    .hinted(&[hint(Tab::Model, 2, "Enter filters/maps")]),
    bind(
        On(Tab::Model),
        &[key('m')],
        "m",
        Action::OpenMaps,
        "open feature maps",
    )
    .hinted(&[hint(Tab::Model, 3, "m maps")]),
    bind(
        On(Tab::Filters),
        &[code(KeyCode::Left), key('h')],
        "← h",
        Action::PrevLayer,
        "previous conv layer",
    )
    .hinted(&[hint(Tab::Filters, 1, "←→ layer")]),
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
    )
    .hinted(&[hint(Tab::Filters, 2, "↑↓ filter")]),
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
    )
    .hinted(&[hint(Tab::Filters, 4, "f norm")]),
    bind(
        Global,
        &[key('e')],
        "e",
        Action::Export,
        "export what is on screen (PNG, CSV, text)",
    )
    .hinted(&[
        hint(Tab::Training, 5, "e export"),
        hint(Tab::Filters, 7, "e export"),
        hint(Tab::Features, 7, "e export"),
    ]),
    bind(
        On(Tab::Filters),
        &[key('r')],
        "r",
        Action::RefreshFilters,
        "refresh the filters now",
    )
    .hinted(&[hint(Tab::Filters, 6, "r refresh")]),
    bind(
        On(Tab::Filters),
        &[key('[')],
        "[",
        Action::PrevEpoch,
        "filters of the previous epoch",
    )
    .hinted(&[hint(Tab::Filters, 3, "[ ] epoch")]),
    bind(
        On(Tab::Filters),
        &[key(']')],
        "]",
        Action::NextEpoch,
        "next epoch (past the newest: follow training)",
    ),
    bind(
        On(Tab::Filters),
        &[key('w')],
        "w",
        Action::ToggleLooks,
        "raw weights / what it looks for",
    )
    .hinted(&[hint(Tab::Filters, 9, "w looks")]),
    bind(
        On(Tab::Filters),
        &[key('W')],
        "W",
        Action::ToggleLooksRegularised,
        "looks for: regularised tier, slow",
    ),
    bind(
        On(Tab::Features),
        &[key('[')],
        "[",
        Action::PrevEpoch,
        "maps of the previous epoch",
    )
    .hinted(&[hint(Tab::Features, 3, "[ ] epoch")]),
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
    )
    .hinted(&[hint(Tab::Features, 1, "←→ layer")]),
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
    )
    .hinted(&[hint(Tab::Features, 2, "↑↓ channel")]),
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
    )
    .hinted(&[hint(Tab::Features, 4, "n/p probe")]),
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
    )
    .hinted(&[hint(Tab::Features, 5, "o open")]),
    bind(
        On(Tab::Validation),
        &[code(KeyCode::Up), key('k')],
        "↑ k",
        Action::CellMove(-1, 0),
        "the cell above; in a list, the previous image",
    )
    .hinted(&[hint(Tab::Validation, 1, "←↑↓→ cell")]),
    bind(
        On(Tab::Validation),
        &[code(KeyCode::Down), key('j')],
        "↓ j",
        Action::CellMove(1, 0),
        "the cell below; in a list, the next image",
    ),
    bind(
        On(Tab::Validation),
        &[code(KeyCode::Left), key('h')],
        "← h",
        Action::CellMove(0, -1),
        "the cell to the left",
    ),
    bind(
        On(Tab::Validation),
        &[code(KeyCode::Right), key('l')],
        "→ l",
        Action::CellMove(0, 1),
        "the cell to the right",
    ),
    bind(
        On(Tab::Validation),
        &[code(KeyCode::PageUp), key('K')],
        "PgUp K",
        Action::CellMove(-10, 0),
        "10 up",
    ),
    bind(
        On(Tab::Validation),
        &[code(KeyCode::PageDown), key('J')],
        "PgDn J",
        Action::CellMove(10, 0),
        "10 down",
    ),
    bind(
        On(Tab::Validation),
        &[code(KeyCode::Enter)],
        "Enter",
        Action::Open,
        "list the cell's images; on an image: probe it on the Feature maps tab",
    )
    .hinted(&[hint(Tab::Validation, 2, "Enter open")]),
    bind(
        On(Tab::Validation),
        &[code(KeyCode::Esc), code(KeyCode::Backspace)],
        "Esc",
        Action::Back,
        "from the images back to the matrix",
    )
    .hinted(&[hint(Tab::Validation, 3, "Esc back")]),
    bind(
        On(Tab::Validation),
        &[key('a')],
        "a",
        Action::ListImages(ListMode::Ambiguous),
        "list: nearest the decision boundary first (again: highest loss first)",
    )
    .hinted(&[hint(Tab::Validation, 4, "a/f/n lists")]),
    bind(
        On(Tab::Validation),
        &[key('f')],
        "f",
        Action::ListImages(ListMode::Flipped),
        "list: only those flipped since the previous epoch",
    ),
    bind(
        On(Tab::Validation),
        &[key('n')],
        "n",
        Action::ListImages(ListMode::Noise),
        "list: only probable label noise",
    ),
    bind(
        On(Tab::Validation),
        &[key('%')],
        "%",
        Action::TogglePercent,
        "cells: counts / percentages of the row",
    )
    .hinted(&[hint(Tab::Validation, 5, "% pct")]),
    bind(
        On(Tab::Validation),
        &[key('[')],
        "[",
        Action::PrevEpoch,
        "the previous epoch's record",
    )
    .hinted(&[hint(Tab::Validation, 6, "[ ] epoch")]),
    bind(
        On(Tab::Validation),
        &[key(']')],
        "]",
        Action::NextEpoch,
        "the next epoch's record (past the newest: follow training)",
    ),
    bind(
        On(Tab::Features),
        &[key('v')],
        "v",
        Action::ToggleCam,
        "Grad-CAM over the probe on / off",
    )
    .hinted(&[hint(Tab::Features, 9, "v CAM")]),
    bind(
        On(Tab::Features),
        &[key('d')],
        "d",
        Action::NextCamLayer,
        "Grad-CAM: next conv layer, then all averaged",
    ),
    bind(
        On(Tab::Features),
        &[key('t')],
        "t",
        Action::NextCamClass,
        "Grad-CAM: explain the next class (counterfactual)",
    ),
    bind(
        On(Tab::Features),
        &[key('i')],
        "i",
        Action::CycleCamWeight,
        "Grad-CAM: image weight 0.3/0.5/0.7/heat only",
    ),
    bind(
        On(Tab::Features),
        &[key('u')],
        "u",
        Action::CycleCamColormap,
        "Grad-CAM: colormap jet/turbo/magma",
    ),
    bind(
        On(Tab::Features),
        &[key('b')],
        "b",
        Action::CompareWithProbe,
        "compare: this probe becomes B; n/p/o pick A (panes A | B | A-B)",
    ),
    bind(
        On(Tab::Features),
        &[key('B')],
        "B",
        Action::CompareOff,
        "compare: off",
    ),
    bind(
        On(Tab::Features),
        &[key('r')],
        "r",
        Action::CycleCompareOrder,
        "compare: channels by |mean A-B| / class selectivity / in order",
    ),
    bind(
        On(Tab::Features),
        &[key('z')],
        "z",
        Action::PinScale,
        "pin each channel's scale and maps to this epoch ([ ]: k | shown | diff; again: unpin)",
    ),
    bind(
        On(Tab::Validation),
        &[key('b')],
        "b",
        Action::CompareWithImage,
        "on an image: compare the probe with it (it becomes B)",
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

/// The short key hint shown on the status line for a tab, from the key table's hints; the
/// run's keys (pause, checkpoint, stop) only while there is a run to steer.
#[must_use]
pub fn hints(tab: Tab, run_active: bool) -> String {
    let mut shown: Vec<&Hint> = BINDINGS
        .iter()
        .flat_map(|b| b.hints)
        .filter(|h| h.tab == tab)
        .filter(|h| match h.run {
            Run::Any => true,
            Run::Active => run_active,
            Run::Ended => !run_active,
        })
        .collect();
    shown.sort_by_key(|h| h.order);
    shown.iter().map(|h| h.text).collect::<Vec<_>>().join(" · ")
}

/// A Help section: the bindings of one context, under a name.
pub type Section = (Context, &'static str);

/// The Help sections in two columns, of about the same length; one column reads them in order.
pub const HELP_LEFT: [Section; 3] = [
    (Context::Global, "everywhere"),
    (Context::On(Tab::Model), "Model"),
    (Context::On(Tab::Validation), "Validation"),
];
/// The right-hand column of [`HELP_LEFT`].
pub const HELP_RIGHT: [Section; 4] = [
    (Context::On(Tab::Training), "Training"),
    (Context::On(Tab::Filters), "Filters"),
    (Context::On(Tab::Features), "Feature maps"),
    (Context::On(Tab::Help), "Help"),
];
/// Every Help section in reading order, for one column.
pub const HELP_ALL: [Section; 7] = [
    HELP_LEFT[0],
    HELP_RIGHT[0],
    HELP_LEFT[1],
    HELP_RIGHT[1],
    HELP_RIGHT[2],
    HELP_LEFT[2],
    HELP_RIGHT[3],
];

/// What the mouse does, listed with the keys that work everywhere.
const MOUSE: [(&str, &str); 2] = [
    ("click", "a tab's name opens the tab"),
    ("click", "a filter or map tile zooms it"),
];

/// Width of the Help tab's key column.
pub const HELP_KEYS_WIDTH: u16 = 12;

/// One row of the Help tab: a section title, or a key and its description in lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelpRow {
    Title(&'static str),
    Key {
        label: &'static str,
        lines: Vec<String>,
    },
}

impl HelpRow {
    /// Lines the row takes.
    #[must_use]
    pub fn height(&self) -> usize {
        match self {
            HelpRow::Title(_) => 1,
            HelpRow::Key { lines, .. } => lines.len().max(1),
        }
    }
}

/// The rows of `sections` for a column `width` cells wide: a title row each, then its keys,
/// each description wrapped at spaces to the room left by the key column.
#[must_use]
pub fn help_rows(sections: &[Section], width: u16) -> Vec<HelpRow> {
    let room = usize::from(width.saturating_sub(2 + HELP_KEYS_WIDTH + 1)).max(10);
    let mut rows = Vec::new();
    for &(ctx, name) in sections {
        rows.push(HelpRow::Title(name));
        let keys = BINDINGS
            .iter()
            .filter(|b| b.context == ctx)
            .map(|b| (b.label, b.help));
        let mouse = MOUSE.iter().copied().filter(|_| ctx == Context::Global);
        for (label, help) in keys.chain(mouse) {
            rows.push(HelpRow::Key {
                label,
                lines: wrap(help, room),
            });
        }
    }
    rows
}

/// `text` in lines of at most `room` characters, broken at spaces (a longer word is cut).
#[must_use]
pub fn wrap(text: &str, room: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= room => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.chars().take(room).collect()),
        }
    }
    lines
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

    #[test]
    fn hints_name_keys_that_work_on_their_tab() {
        for b in BINDINGS {
            for h in b.hints {
                assert!(
                    b.context == Global || b.context == On(h.tab),
                    "{:?} hinted on {:?}",
                    b.action,
                    h.tab
                );
            }
        }
        assert_eq!(
            hints(Tab::Training, true),
            "Space pause/resume · s checkpoint · x stop · ↑↓ b epochs · e export · ? help · q quit"
        );
        assert_eq!(
            hints(Tab::Training, false),
            "↑↓ b epochs · e export · 1-6 tabs · ? help · q quit"
        );
        assert_eq!(
            hints(Tab::Model, true),
            "↑↓ select · Enter filters/maps · m maps · ? help · q quit"
        );
        assert_eq!(
            hints(Tab::Filters, true),
            "←→ layer · ↑↓ filter · [ ] epoch · f norm · c colormap · r refresh · e export · ? help \
             · w looks"
        );
        assert_eq!(
            hints(Tab::Features, false),
            "←→ layer · ↑↓ channel · [ ] epoch · n/p probe · o open · c colormap · e export · ? help · v CAM"
        );
        assert_eq!(
            hints(Tab::Help, true),
            "↑↓ PgUp PgDn scroll · 1-6 tabs · Tab next · q quit"
        );
        assert_eq!(
            hints(Tab::Validation, true),
            "←↑↓→ cell · Enter open · Esc back · a/f/n lists · % pct · [ ] epoch · ? help"
        );
    }
}
