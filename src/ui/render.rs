//! The frame: tab bar, the current tab, the status line, and the too-small notice, drawn from
//! a [`Scene`] (the state, its pictures and the one layout of this frame).

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::header::phase_span;
use super::keys;
use super::layout::{Layout, tab_label, tab_names_width};
use super::state::AppState;
use super::tabs::{self, Scene};
use super::vocab::{Prompt, Tab};

/// Draw the whole screen.
pub fn render(scene: Scene<'_>, frame: &mut Frame) {
    let (state, layout) = (scene.state, scene.layout);
    let area = layout.screen;
    if let Some((min_w, min_h)) = layout.too_small {
        let text = format!(
            "Terminal too small for {}: {}×{}, needs {min_w}×{min_h}. Enlarge it, or press 1–{} / q.",
            state.tab().title(),
            area.width,
            area.height,
            Tab::ALL.len()
        );
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .style(Style::new().fg(Color::Yellow)),
            area,
        );
        return;
    }
    render_tab_bar(state, frame, layout);
    match state.tab() {
        Tab::Training => tabs::training::render(scene, frame),
        Tab::Model => tabs::model::render(scene, frame),
        Tab::Filters => tabs::filters::render(scene, frame),
        Tab::Features => tabs::features::render(scene, frame),
        Tab::Validation => tabs::validation::render(scene, frame),
        Tab::Help => tabs::help::render(scene, frame),
    }
    render_status(state, frame, layout.status);
}

fn render_tab_bar(state: &AppState, frame: &mut Frame, layout: &Layout) {
    let area = layout.tab_bar;
    let mut spans = Vec::new();
    for (i, &tab) in Tab::ALL.iter().enumerate() {
        spans.push(Span::styled(
            tab_label(i, tab, layout.tabs_compact),
            tabs::chip_style(tab == state.tab()),
        ));
        spans.push(Span::styled("│", Style::new().fg(Color::DarkGray)));
    }
    frame.render_widget(Line::from(spans), area);
    let used = tab_names_width(layout.tabs_compact);
    // The run's phase always fits whole when anything does; the title only when it fits too
    // (cut from the left it showed half a path).
    let free = usize::from(area.width.saturating_sub(used));
    let phase = phase_span(state, false);
    let title = Span::styled(format!("{} ", state.title()), Style::new().fg(Color::Gray));
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

fn render_status(state: &AppState, frame: &mut Frame, area: Rect) {
    let line = if let Some(input) = state.input() {
        Line::from(vec![
            Span::styled(
                " probe image path: ",
                Style::new().fg(Color::Black).bg(Color::Yellow),
            ),
            Span::raw(format!(" {input}▏")),
            Span::styled(
                if state.input_matches().is_empty() {
                    let fresh = if state.input_prefilled() {
                        "  / or ~: start from the root or home"
                    } else {
                        ""
                    };
                    format!("   Tab: complete  Enter: probe  Esc: cancel{fresh}")
                } else {
                    format!(
                        "   {} matches: {}",
                        state.input_matches().len(),
                        state.input_matches().join("  ")
                    )
                },
                Style::new().fg(Color::DarkGray),
            ),
        ])
    } else if state.prompt() != Prompt::None {
        let q = match state.prompt() {
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
    } else if state.quitting() {
        Line::from(Span::styled(
            " stopping, writing checkpoint… (Ctrl-C again: leave now) ",
            Style::new().fg(Color::Black).bg(Color::Magenta),
        ))
    } else if let Some(note) = state.note() {
        Line::from(Span::styled(
            format!(" {note}"),
            Style::new().fg(Color::Cyan),
        ))
    } else {
        Line::from(Span::styled(
            format!(" {}", keys::hints(state.tab(), state.phase().is_active())),
            Style::new().fg(Color::DarkGray),
        ))
    };
    frame.render_widget(line, area);
}
