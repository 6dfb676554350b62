//! Help tab, generated from the key table: two columns when the terminal is wide enough, one
//! otherwise; descriptions wrap instead of being cut, and the arrow keys scroll what does not
//! fit.

use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Paragraph, Row, Table};

use super::Scene;
use crate::ui::header;
use crate::ui::keys::{HELP_KEYS_WIDTH, HelpRow};
use crate::ui::layout::lines_from;

/// A Help row as a table row.
fn row(r: &HelpRow) -> Row<'static> {
    match r {
        HelpRow::Title(name) => Row::new(vec![(*name).to_string(), String::new()])
            .style(Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)),
        HelpRow::Key { label, lines } => Row::new(vec![format!("  {label}"), lines.join("\n")])
            .height(u16::try_from(r.height()).unwrap_or(1)),
    }
}

/// Draw the Help tab.
pub fn render(scene: Scene<'_>, frame: &mut Frame) {
    let (state, help) = (scene.state, &scene.layout.help);
    let lines = header::screen_lines(state, help.info.width);
    if !lines.is_empty() {
        frame.render_widget(
            Paragraph::new(lines.join("\n")).style(Style::new().fg(Color::DarkGray)),
            help.info,
        );
    }
    // The columns scroll together; a resize can leave the scroll past the end.
    let scroll = state.help_scroll().min(help.max_scroll);
    for c in &help.columns {
        let title = if lines_from(&c.rows, 0) > c.visible() {
            let first = scroll.min(c.rows.len());
            let above = if first > 0 { " · ↑ more" } else { "" };
            let below = if first < c.last { " · ↓ more" } else { "" };
            format!(" Keys{above}{below} ")
        } else {
            " Keys ".to_string()
        };
        let table = Table::new(
            c.rows.iter().skip(scroll).map(row),
            [Constraint::Length(HELP_KEYS_WIDTH), Constraint::Min(10)],
        )
        .block(Block::bordered().title(title));
        frame.render_widget(table, c.area);
    }
}
