//! Help tab, generated from the key table: two columns when the terminal is wide enough, one
//! otherwise; descriptions wrap instead of being cut, and the arrow keys scroll what does not
//! fit.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Paragraph, Row, Table};

use crate::ui::keys::{BINDINGS, Context};
use crate::ui::state::{AppState, Tab};

/// The sections in two columns, of about the same length; one column reads them in order.
const LEFT: [(Context, &str); 3] = [
    (Context::Global, "everywhere"),
    (Context::On(Tab::Model), "Model"),
    (Context::On(Tab::Help), "Help"),
];
const RIGHT: [(Context, &str); 3] = [
    (Context::On(Tab::Training), "Training"),
    (Context::On(Tab::Filters), "Filters"),
    (Context::On(Tab::Features), "Feature maps"),
];
const ALL: [(Context, &str); 6] = [LEFT[0], RIGHT[0], LEFT[1], RIGHT[1], RIGHT[2], LEFT[2]];

/// What the mouse does, listed with the keys that work everywhere.
const MOUSE: [(&str, &str); 2] = [
    ("click", "a tab's name opens the tab"),
    ("click", "a filter or map tile zooms it"),
];

/// From this width the sections go in two columns.
const TWO_COLUMNS_FROM: u16 = 80;

/// Width of the key column.
const KEYS_WIDTH: u16 = 12;

/// The columns for a body `area`: each its area and the sections in it.
fn columns(area: Rect) -> Vec<(Rect, &'static [(Context, &'static str)])> {
    if area.width >= TWO_COLUMNS_FROM {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(area);
        vec![(left, &LEFT[..]), (right, &RIGHT[..])]
    } else {
        vec![(area, &ALL[..])]
    }
}

/// The rows of `sections` for a column `width` cells wide: a title row each, then its keys,
/// each description wrapped at spaces to the room left by the key column.
fn rows(sections: &[(Context, &str)], width: u16) -> Vec<(Row<'static>, usize)> {
    let room = usize::from(width.saturating_sub(2 + KEYS_WIDTH + 1)).max(10);
    let mut rows = Vec::new();
    for &(ctx, name) in sections {
        rows.push((
            Row::new(vec![name.to_string(), String::new()])
                .style(Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)),
            1,
        ));
        let keys = BINDINGS
            .iter()
            .filter(|b| b.context == ctx)
            .map(|b| (b.label, b.help));
        let mouse = MOUSE.iter().copied().filter(|_| ctx == Context::Global);
        for (label, help) in keys.chain(mouse) {
            let lines = wrap(help, room);
            let height = lines.len().max(1);
            rows.push((
                Row::new(vec![format!("  {label}"), lines.join("\n")])
                    .height(u16::try_from(height).unwrap_or(1)),
                height,
            ));
        }
    }
    rows
}

/// `text` in lines of at most `room` characters, broken at spaces (a longer word is cut).
fn wrap(text: &str, room: usize) -> Vec<String> {
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

/// Lines that the rows from `first` on take.
fn lines_from(rows: &[(Row<'_>, usize)], first: usize) -> usize {
    rows.iter().skip(first).map(|(_, h)| h).sum()
}

/// How many rows to skip so that the rest fills `visible` lines at most.
fn last_start(rows: &[(Row<'_>, usize)], visible: usize) -> usize {
    (0..rows.len())
        .find(|&k| lines_from(rows, k) <= visible)
        .unwrap_or(rows.len())
}

/// One column as laid out: its area, its rows and the furthest it can scroll.
struct Column {
    area: Rect,
    rows: Vec<(Row<'static>, usize)>,
    last: usize,
}

fn laid_out(area: Rect) -> Vec<Column> {
    columns(area)
        .into_iter()
        .map(|(r, sections)| {
            let rows = rows(sections, r.width);
            let last = last_start(&rows, visible(r));
            Column {
                area: r,
                rows,
                last,
            }
        })
        .collect()
}

/// Lines of a column's area inside its border.
fn visible(r: Rect) -> usize {
    usize::from(r.height.saturating_sub(2))
}

/// The lines about the screen above the keys, wrapped to `width`: the colour depth in use and
/// why, then the picture protocol in use and why (at most 3 rows each).
fn screen_lines(state: &AppState, width: u16) -> Vec<String> {
    let width = usize::from(width.max(1));
    let mut lines = Vec::new();
    for (label, note) in [
        ("Colours", &state.color_note),
        ("Pictures", &state.graphics_note),
    ] {
        if !note.is_empty() {
            let mut wrapped = wrap(&format!(" {label}: {note}"), width);
            wrapped.truncate(3);
            lines.extend(wrapped);
        }
    }
    lines
}

/// The body `area` split into the screen lines' rows and the keys.
fn split(state: &AppState, area: Rect) -> (Rect, Rect) {
    let rows = u16::try_from(screen_lines(state, area.width).len()).unwrap_or(6);
    let [info, keys] = Layout::vertical([Constraint::Length(rows), Constraint::Min(1)]).areas(area);
    (info, keys)
}

/// How far the help can scroll in a body `area`, in rows (0 when it fits).
#[must_use]
pub fn max_scroll(state: &AppState, area: Rect) -> usize {
    let (_, keys) = split(state, area);
    laid_out(keys).iter().map(|c| c.last).max().unwrap_or(0)
}

/// Draw the Help tab.
pub fn render(state: &AppState, frame: &mut Frame, area: Rect) {
    let (info, area) = split(state, area);
    let lines = screen_lines(state, info.width);
    if !lines.is_empty() {
        frame.render_widget(
            Paragraph::new(lines.join("\n")).style(Style::new().fg(Color::DarkGray)),
            info,
        );
    }
    let columns = laid_out(area);
    // The columns scroll together; a resize can leave the scroll past the end.
    let scroll = state
        .help_scroll
        .min(columns.iter().map(|c| c.last).max().unwrap_or(0));
    for c in columns {
        let title = if lines_from(&c.rows, 0) > visible(c.area) {
            let first = scroll.min(c.rows.len());
            let above = if first > 0 { " · ↑ more" } else { "" };
            let below = if first < c.last { " · ↓ more" } else { "" };
            format!(" Keys{above}{below} ")
        } else {
            " Keys ".to_string()
        };
        let table = Table::new(
            c.rows.into_iter().skip(scroll).map(|(row, _)| row),
            [Constraint::Length(KEYS_WIDTH), Constraint::Min(10)],
        )
        .block(Block::bordered().title(title));
        frame.render_widget(table, c.area);
    }
}
