//! Help tab, generated from the key table.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Row, Table};

use crate::ui::keys::{BINDINGS, Context};
use crate::ui::state::{AppState, Tab};

/// Draw the Help tab: two columns, each a list of contexts with their keys.
pub fn render(_state: &AppState, frame: &mut Frame, area: Rect) {
    let columns = [
        [
            (Context::Global, "everywhere"),
            (Context::On(Tab::Model), "Model"),
        ],
        [
            (Context::On(Tab::Filters), "Filters"),
            (Context::On(Tab::Features), "Feature maps"),
        ],
    ];
    let halves =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).split(area);
    for (col, half) in columns.iter().zip(halves.iter()) {
        let mut rows = Vec::new();
        for &(ctx, name) in col {
            rows.push(
                Row::new(vec![name.to_string(), String::new()])
                    .style(Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)),
            );
            for b in BINDINGS.iter().filter(|b| b.context == ctx) {
                rows.push(Row::new(vec![format!("  {}", b.label), b.help.to_string()]));
            }
        }
        let table = Table::new(rows, [Constraint::Length(12), Constraint::Min(20)])
            .block(Block::bordered().title(" Keys "));
        frame.render_widget(table, *half);
    }
}
