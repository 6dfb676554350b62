//! Where everything goes: the terminal's size and the state in, every area of every tab out,
//! computed once for each state and size and used by drawing, mouse clicks, the pictures
//! (which are tiled for their boxes) and the graphics encoder alike. Pure: it draws nothing.
//!
//! ```text
//!  tab_bar  │ 1 Training │ 2 Model │ 3 Filters │ 4 Feature maps │ 5 Help │   title ● phase
//!  body     ┌───────────────────────────────────────────────────────────────────────────┐
//!           │ Training: head (facts, gauge) · error box (failed) · charts (loss │ acc)  │
//!           │           · epoch table                                                   │
//!           │ Model:    the body                                                        │
//!           │ Filters:  header (layer bar)                                              │
//!           │           grid block 64 %           │ zoom block                          │
//!           │                                     │ numbers (weights)                   │
//!           │                                     │ rgb block (3 input channels)        │
//!           │ Features: header (layer bar)                                              │
//!           │           probe block 30 % │ grid block 70 %                              │
//!           │           zoom block       │                                              │
//!           │ Validation: header · matrix block (matrix, metrics) · the cell's footer     │
//!           │           or, with a cell open: list block 60 % │ image block             │
//!           │                                                  │ thumbs block            │
//!           │ Help:     colours line · key columns (two from 80 columns)                │
//!           └───────────────────────────────────────────────────────────────────────────┘
//!  status   the prompt, the path line, a note, or the key hints
//! ```
//!
//! Below the tab's smallest size ([`min_size`]) only a notice is drawn and no picture is shown.

use ratatui::layout::{Constraint, Layout as Split, Rect};
use ratatui::widgets::Block;

use super::header;
use super::keys::{self, HelpRow, Section};
use super::state::{AppState, View};
use super::vocab::{Phase, Slot, Tab};

/// Rows the charts keep before the epoch table grows past its smallest (it scrolls): at 80×24
/// that leaves the plots 6 rows, not 3.
const CHARTS_MIN: u16 = 10;

/// From this width the Help tab's sections go in two columns.
const HELP_TWO_COLUMNS_FROM: u16 = 80;

/// The whole screen laid out.
#[derive(Debug, Clone)]
pub struct Layout {
    pub screen: Rect,
    pub tab: Tab,
    /// The tab's smallest size, when the terminal is smaller: then only a notice is drawn.
    pub too_small: Option<(u16, u16)>,
    pub tab_bar: Rect,
    /// The tab names are drawn without padding (a narrow terminal; see [`compact_tabs`]).
    pub tabs_compact: bool,
    /// Between the tab bar and the status line: where the tabs draw.
    pub body: Rect,
    pub status: Rect,
    pub training: TrainingAreas,
    pub filters: FilterAreas,
    pub features: FeatureAreas,
    pub validation: ValidationAreas,
    pub help: HelpAreas,
    /// The pictures on screen and where: none when the terminal is too small or the tab has
    /// nothing to show yet.
    pub slots: Vec<(Slot, Rect)>,
}

/// The Training tab's parts.
#[derive(Debug, Clone, Copy)]
pub struct TrainingAreas {
    pub head: Rect,
    /// The header's text, bottom-aligned above the gauge, and the rows it wraps into.
    pub head_text: Rect,
    pub gauge: Rect,
    pub error: Rect,
    pub loss: Rect,
    pub accuracy: Rect,
    pub table: Rect,
}

impl TrainingAreas {
    /// How many epochs the table shows at once.
    #[must_use]
    pub fn table_rows(&self) -> usize {
        usize::from(self.table.height.saturating_sub(3))
    }
}

/// The Filters tab's parts.
#[derive(Debug, Clone, Copy)]
pub struct FilterAreas {
    pub header: Rect,
    pub grid_block: Rect,
    pub grid: Rect,
    pub zoom_block: Rect,
    pub zoom: Rect,
    pub numbers: Rect,
    pub rgb_block: Option<Rect>,
    pub rgb: Option<Rect>,
}

/// The Feature maps tab's parts.
#[derive(Debug, Clone, Copy)]
pub struct FeatureAreas {
    pub header: Rect,
    pub probe_block: Rect,
    pub probe: Rect,
    pub zoom_block: Rect,
    pub zoom: Rect,
    pub grid_block: Rect,
    pub grid: Rect,
}

/// The Validation tab's parts: the matrix view, or a cell's list beside its pictures.
#[derive(Debug, Clone, Copy)]
pub struct ValidationAreas {
    pub header: Rect,
    /// Below the header: the matrix block and its footer, or the list and the pictures.
    pub main: Rect,
    pub list_block: Rect,
    pub image_block: Rect,
    pub image: Rect,
    pub thumbs_block: Rect,
    pub thumbs: Rect,
}

/// The Help tab's parts: the colours line, then one or two columns of keys.
#[derive(Debug, Clone)]
pub struct HelpAreas {
    pub info: Rect,
    pub columns: Vec<HelpColumn>,
    /// How far the columns can scroll, in rows (0 when everything fits).
    pub max_scroll: usize,
}

/// One column of the Help tab: its area, its rows and the furthest it can scroll.
#[derive(Debug, Clone)]
pub struct HelpColumn {
    pub area: Rect,
    pub rows: Vec<HelpRow>,
    pub last: usize,
}

impl HelpColumn {
    /// Lines of the column's area inside its border.
    #[must_use]
    pub fn visible(&self) -> usize {
        visible(self.area)
    }
}

/// The smallest terminal each tab can draw in.
#[must_use]
pub fn min_size(tab: Tab) -> (u16, u16) {
    match tab {
        Tab::Training => (60, 16),
        Tab::Model => (44, 8),
        Tab::Filters | Tab::Features => (64, 18),
        Tab::Validation => (50, 12),
        Tab::Help => (50, 10),
    }
}

/// Columns the tab bar keeps free for the run's phase ("● interrupted" and a margin): below
/// that, the tab names lose their padding.
const PHASE_ROOM: u16 = 16;

/// A tab's name in the tab bar; `compact` (a narrow terminal) without the padding around it.
#[must_use]
pub fn tab_label(i: usize, tab: Tab, compact: bool) -> String {
    if compact {
        format!("{} {}", i + 1, tab.title())
    } else {
        format!(" {} {} ", i + 1, tab.title())
    }
}

/// Columns the tab names take in the tab bar, each with its separator.
#[must_use]
pub fn tab_names_width(compact: bool) -> u16 {
    Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, &t)| tab_label(i, t, compact).chars().count() as u16 + 1)
        .sum()
}

/// Whether a tab bar `width` columns wide shows compact names, to keep room for the phase.
#[must_use]
pub fn compact_tabs(width: u16) -> bool {
    width < tab_names_width(false) + PHASE_ROOM
}

/// The tab under column `x` of the tab bar.
#[must_use]
pub fn tab_at(x: u16, compact: bool) -> Option<Tab> {
    let mut start = 0_u16;
    for (i, &tab) in Tab::ALL.iter().enumerate() {
        let w = tab_label(i, tab, compact).chars().count() as u16;
        if (start..start + w).contains(&x) {
            return Some(tab);
        }
        start += w + 1;
    }
    None
}

/// Lay out a terminal of `size` (columns, rows) showing `state`.
#[must_use]
pub fn compute(size: (u16, u16), state: &AppState) -> Layout {
    let screen = Rect::new(0, 0, size.0, size.1);
    let tab = state.tab();
    let (min_w, min_h) = min_size(tab);
    let too_small = (screen.width < min_w || screen.height < min_h).then_some((min_w, min_h));
    let body = Rect::new(
        screen.x,
        screen.y + 1,
        screen.width,
        screen.height.saturating_sub(2),
    );
    let filters = filter_areas(state, body);
    let features = feature_areas(body);
    let validation = validation_areas(body);
    let mut slots = Vec::new();
    if too_small.is_none() {
        match tab {
            Tab::Filters if state.filter_layer().is_some() => {
                slots.push((Slot::FilterGrid, filters.grid));
                slots.push((Slot::FilterZoom, filters.zoom));
                slots.extend(filters.rgb.map(|r| (Slot::FilterRgb, r)));
            }
            Tab::Features if state.features().is_some() => {
                slots.push((Slot::Probe, features.probe));
                slots.push((Slot::FeatureGrid, features.grid));
                slots.push((Slot::ChannelZoom, features.zoom));
            }
            Tab::Validation if state.validation().list().is_some() => {
                slots.push((Slot::ValImage, validation.image));
                slots.push((Slot::ValThumbs, validation.thumbs));
            }
            _ => {}
        }
    }
    Layout {
        screen,
        tab,
        too_small,
        tab_bar: Rect::new(screen.x, screen.y, screen.width, 1),
        tabs_compact: compact_tabs(screen.width),
        body,
        status: Rect::new(screen.x, screen.bottom().saturating_sub(1), screen.width, 1),
        training: training_areas(state, body),
        filters,
        features,
        validation,
        help: help_areas(state, body),
        slots,
    }
}

impl Layout {
    /// What an update needs of this layout.
    #[must_use]
    pub fn view(&self) -> View {
        View {
            table_rows: self.training.table_rows(),
            help_max_scroll: self.help.max_scroll,
        }
    }
}

fn inner(r: Rect) -> Rect {
    Block::bordered().inner(r)
}

fn training_areas(state: &AppState, area: Rect) -> TrainingAreas {
    let error_h = if state.phase() == Phase::Failed { 4 } else { 0 };
    // Two lines of facts above the gauge with a blank row over them; on a narrow terminal
    // they wrap, into that row and below it when they need more.
    let lines = header::head_lines(state);
    let text_rows = u16::try_from(header::head_text_rows(&lines, area.width)).unwrap_or(u16::MAX);
    let head_h = text_rows.saturating_add(1).max(4);
    let rest = area.height.saturating_sub(head_h + error_h);
    let table_h = (state.epochs().len() as u16 + 3)
        .min(10)
        .min(rest.saturating_sub(CHARTS_MIN))
        .max(4);
    let [head, error, charts, table] = Split::vertical([
        Constraint::Length(head_h),
        Constraint::Length(error_h),
        Constraint::Min(6),
        Constraint::Length(table_h),
    ])
    .areas(area);
    let [loss, accuracy] =
        Split::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts);
    let gauge_row = head.y + head.height.saturating_sub(1);
    // Bottom-aligned above the gauge: rows the text does not need stay blank above it.
    let rows = text_rows.min(head.height.saturating_sub(1));
    TrainingAreas {
        head,
        head_text: Rect {
            y: gauge_row.saturating_sub(rows),
            height: rows,
            ..head
        },
        gauge: Rect {
            y: gauge_row,
            height: head.height.min(1),
            ..head
        },
        error,
        loss,
        accuracy,
        table,
    }
}

fn filter_areas(state: &AppState, body: Rect) -> FilterAreas {
    let [header, main] = Split::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(body);
    let [grid_block, side] =
        Split::horizontal([Constraint::Percentage(64), Constraint::Percentage(36)]).areas(main);
    let has_rgb = state.filter_layer().is_some_and(|l| l.in_channels == 3);
    let (zoom_block, numbers, rgb_block) = if has_rgb {
        let [z, n, r] = Split::vertical([
            Constraint::Percentage(30),
            Constraint::Min(5),
            Constraint::Percentage(30),
        ])
        .areas(side);
        (z, n, Some(r))
    } else {
        let [z, n] = Split::vertical([Constraint::Percentage(35), Constraint::Min(5)]).areas(side);
        (z, n, None)
    };
    FilterAreas {
        header,
        grid_block,
        grid: inner(grid_block),
        zoom_block,
        zoom: inner(zoom_block),
        numbers,
        rgb_block,
        rgb: rgb_block.map(inner),
    }
}

fn feature_areas(body: Rect) -> FeatureAreas {
    let [header, main] = Split::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(body);
    let [left, grid_block] =
        Split::horizontal([Constraint::Percentage(30), Constraint::Percentage(70)]).areas(main);
    let [probe_block, zoom_block] =
        Split::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(left);
    FeatureAreas {
        header,
        probe_block,
        probe: inner(probe_block),
        zoom_block,
        zoom: inner(zoom_block),
        grid_block,
        grid: inner(grid_block),
    }
}

fn validation_areas(body: Rect) -> ValidationAreas {
    let [header, main] = Split::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(body);
    let [list_block, side] =
        Split::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(main);
    let [image_block, thumbs_block] =
        Split::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(side);
    ValidationAreas {
        header,
        main,
        list_block,
        image_block,
        image: inner(image_block),
        thumbs_block,
        thumbs: inner(thumbs_block),
    }
}

fn help_areas(state: &AppState, body: Rect) -> HelpAreas {
    // The lines about colours and pictures (wrapped, at most 3 rows each), then the keys.
    let rows = u16::try_from(header::screen_lines(state, body.width).len()).unwrap_or(6);
    let [info, keys_area] =
        Split::vertical([Constraint::Length(rows), Constraint::Min(1)]).areas(body);
    let sections: Vec<(Rect, &'static [Section])> = if keys_area.width >= HELP_TWO_COLUMNS_FROM {
        let [left, right] =
            Split::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(keys_area);
        vec![(left, &keys::HELP_LEFT[..]), (right, &keys::HELP_RIGHT[..])]
    } else {
        vec![(keys_area, &keys::HELP_ALL[..])]
    };
    let columns: Vec<HelpColumn> = sections
        .into_iter()
        .map(|(area, sections)| {
            let rows = keys::help_rows(sections, area.width);
            let last = last_start(&rows, visible(area));
            HelpColumn { area, rows, last }
        })
        .collect();
    let max_scroll = columns.iter().map(|c| c.last).max().unwrap_or(0);
    HelpAreas {
        info,
        columns,
        max_scroll,
    }
}

/// Lines of an area inside its border.
fn visible(r: Rect) -> usize {
    usize::from(r.height.saturating_sub(2))
}

/// Lines that the rows from `first` on take.
#[must_use]
pub fn lines_from(rows: &[HelpRow], first: usize) -> usize {
    rows.iter().skip(first).map(HelpRow::height).sum()
}

/// How many rows to skip so that the rest fills `visible` lines at most.
fn last_start(rows: &[HelpRow], visible: usize) -> usize {
    (0..rows.len())
        .find(|&k| lines_from(rows, k) <= visible)
        .unwrap_or(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UiConfig;
    use crate::events::Event;

    #[test]
    fn a_too_small_terminal_shows_no_picture_and_the_tab_bar_maps_columns_to_tabs() {
        let mut s = AppState::new(&UiConfig::default(), "t".into(), "r".into());
        s.apply(Event::Filters(Box::new(
            crate::ui::bench_data::tutorial_filters(),
        )));
        s.set_tab(Tab::Filters);
        let l = compute((100, 30), &s);
        let slots: Vec<Slot> = l.slots.iter().map(|&(slot, _)| slot).collect();
        assert_eq!(slots, [Slot::FilterGrid, Slot::FilterZoom, Slot::FilterRgb]);
        assert_eq!((l.body.y, l.body.height, l.status.y), (1, 28, 29));
        assert!(l.body.contains(l.filters.grid.as_position()));
        let small = compute((63, 30), &s);
        assert_eq!(small.too_small, Some((64, 18)));
        assert!(small.slots.is_empty());
        for compact in [false, true] {
            let mut x = 0;
            for (i, &tab) in Tab::ALL.iter().enumerate() {
                let w = tab_label(i, tab, compact).chars().count() as u16;
                assert_eq!(
                    (tab_at(x, compact), tab_at(x + w - 1, compact)),
                    (Some(tab), Some(tab))
                );
                assert_eq!(tab_at(x + w, compact), None, "the separator after {tab:?}");
                x += w + 1;
            }
            assert_eq!(x, tab_names_width(compact));
        }
        assert!(compact_tabs(80) && !compact_tabs(100));
    }
}
