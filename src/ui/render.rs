//! The frame: tab bar, the current tab, the status line, and the too-small notice.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::graphics::{Graphics, Slot};
use super::pictures::Pic;
use super::state::{AppState, Phase, Prompt, Tab};
use super::tabs;
use crate::events::FinishReason;

/// Draw the whole screen from `state`.
pub fn render(state: &AppState, gfx: &Graphics, frame: &mut Frame) {
    let area = frame.area();
    let (min_w, min_h) = min_size(state.tab);
    if area.width < min_w || area.height < min_h {
        let text = format!(
            "Terminal too small for {}: {}×{}, needs {min_w}×{min_h}. Enlarge it, or press 1–5 / q.",
            state.tab.title(),
            area.width,
            area.height
        );
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .style(Style::new().fg(Color::Yellow)),
            area,
        );
        return;
    }
    render_tab_bar(state, frame, Rect::new(area.x, area.y, area.width, 1));
    let body = body_area(area);
    match state.tab {
        Tab::Training => tabs::training::render(state, frame, body),
        Tab::Model => tabs::model::render(state, frame, body),
        Tab::Filters => tabs::filters::render(state, gfx, frame, body),
        Tab::Features => tabs::features::render(state, gfx, frame, body),
        Tab::Help => tabs::help::render(state, frame, body),
    }
    render_status(
        state,
        frame,
        Rect::new(area.x, area.bottom() - 1, area.width, 1),
    );
}

/// The smallest terminal each tab can draw in.
#[must_use]
pub fn min_size(tab: Tab) -> (u16, u16) {
    match tab {
        Tab::Training => (60, 16),
        Tab::Model => (44, 8),
        Tab::Filters | Tab::Features => (64, 18),
        Tab::Help => (50, 10),
    }
}

/// The area between the tab bar and the status line.
#[must_use]
pub fn body_area(area: Rect) -> Rect {
    Rect::new(
        area.x,
        area.y + 1,
        area.width,
        area.height.saturating_sub(2),
    )
}

/// The pictures on screen for `state` in a terminal of `area`, as drawn by `render`.
#[must_use]
pub fn picture_slots(state: &AppState, area: Rect) -> Vec<(Slot, Rect, &Pic)> {
    let (min_w, min_h) = min_size(state.tab);
    if area.width < min_w || area.height < min_h {
        return Vec::new();
    }
    let body = body_area(area);
    match state.tab {
        Tab::Filters => tabs::filters::slots(state, body),
        Tab::Features => tabs::features::slots(state, body),
        _ => Vec::new(),
    }
}

fn tab_label(i: usize, tab: Tab) -> String {
    format!(" {} {} ", i + 1, tab.title())
}

/// The tab under column `x` of the tab bar.
#[must_use]
pub fn tab_at(x: u16) -> Option<Tab> {
    let mut start = 0_u16;
    for (i, &tab) in Tab::ALL.iter().enumerate() {
        let w = tab_label(i, tab).chars().count() as u16;
        if (start..start + w).contains(&x) {
            return Some(tab);
        }
        start += w + 1;
    }
    None
}

fn render_tab_bar(state: &AppState, frame: &mut Frame, area: Rect) {
    let mut spans = Vec::new();
    for (i, &tab) in Tab::ALL.iter().enumerate() {
        spans.push(Span::styled(
            tab_label(i, tab),
            super::tabs::chip_style(tab == state.tab),
        ));
        spans.push(Span::styled("│", Style::new().fg(Color::DarkGray)));
    }
    frame.render_widget(Line::from(spans), area);
    let used: u16 = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, &t)| tab_label(i, t).chars().count() as u16 + 1)
        .sum();
    // The run's phase always fits whole when anything does; the title only when it fits too
    // (cut from the left it showed half a path).
    let free = usize::from(area.width.saturating_sub(used));
    let phase = phase_span(state, false);
    let title = Span::styled(format!("{} ", state.title), Style::new().fg(Color::Gray));
    let mut right = Vec::new();
    if title.width() + phase.width() + 2 <= free {
        right.push(title);
    }
    if phase.width() + 2 <= free {
        right.extend([phase, Span::raw(" ")]);
        let r = Rect::new(area.x + used, area.y, area.width - used, 1);
        frame.render_widget(Line::from(right).alignment(Alignment::Right), r);
    }
}

/// The run phase as a coloured word; `full` adds what to do about it where there is room
/// (an interrupted run's resume command, with its path to copy).
#[must_use]
pub fn phase_span(state: &AppState, full: bool) -> Span<'static> {
    if state.phase == Phase::Interrupted && full {
        return Span::styled(
            format!(
                "● interrupted: resume with `convscope resume {}`",
                crate::run::shell_quote(&state.run_dir)
            ),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        );
    }
    if state.phase == Phase::Finished(FinishReason::Stopped) && full {
        let why = state
            .stop_cause
            .map_or_else(String::new, |c| format!(" by {}", c.describe()));
        return Span::styled(
            format!(
                "● stopped{why}: resume with `convscope resume {}`",
                crate::run::shell_quote(&state.run_dir)
            ),
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        );
    }
    let (text, color) = match state.phase {
        Phase::Waiting => ("waiting", Color::Gray),
        Phase::Preparing => ("preparing", Color::Yellow),
        Phase::Tuning => ("tuning GPU kernels", Color::Yellow),
        Phase::Running => ("running", Color::Green),
        Phase::Paused => ("paused", Color::Yellow),
        Phase::Stopping => ("stopping, writing checkpoint", Color::Magenta),
        Phase::Finished(FinishReason::Completed) => ("finished", Color::Cyan),
        Phase::Finished(FinishReason::Stopped) => ("stopped", Color::Cyan),
        Phase::Failed => ("failed", Color::Red),
        Phase::Stalled => ("stalled: no event for a minute", Color::Yellow),
        Phase::Interrupted => ("interrupted", Color::Red),
    };
    Span::styled(
        format!("● {text}"),
        Style::new().fg(color).add_modifier(Modifier::BOLD),
    )
}

fn render_status(state: &AppState, frame: &mut Frame, area: Rect) {
    let line = if let Some(input) = &state.input {
        Line::from(vec![
            Span::styled(
                " probe image path: ",
                Style::new().fg(Color::Black).bg(Color::Yellow),
            ),
            Span::raw(format!(" {input}▏")),
            Span::styled(
                if state.input_matches.is_empty() {
                    let fresh = if state.input_prefilled {
                        "  / or ~: start from the root or home"
                    } else {
                        ""
                    };
                    format!("   Tab: complete  Enter: probe  Esc: cancel{fresh}")
                } else {
                    format!(
                        "   {} matches: {}",
                        state.input_matches.len(),
                        state.input_matches.join("  ")
                    )
                },
                Style::new().fg(Color::DarkGray),
            ),
        ])
    } else if state.prompt != Prompt::None {
        let q = match state.prompt {
            Prompt::ConfirmStop => {
                " Stop training now (a checkpoint is written)? y: stop  n: cancel "
            }
            Prompt::ConfirmQuit | Prompt::None => {
                " Training is running. y: stop it and quit  d: quit, leave it running  n: cancel "
            }
        };
        Line::from(Span::styled(
            q,
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ))
    } else if state.quitting {
        Line::from(Span::styled(
            " stopping, writing checkpoint… (Ctrl-C again: leave now) ",
            Style::new().fg(Color::Black).bg(Color::Magenta),
        ))
    } else if let Some(m) = &state.message {
        Line::from(Span::styled(format!(" {m}"), Style::new().fg(Color::Cyan)))
    } else {
        Line::from(Span::styled(
            format!(" {}", tabs::hints(state.tab, state.phase.is_active())),
            Style::new().fg(Color::DarkGray),
        ))
    };
    frame.render_widget(line, area);
}
