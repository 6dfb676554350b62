//! Model tab: the Keras-style summary; Enter opens a layer's pictures.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState};

use crate::ui::state::AppState;

/// Group digits in threes: `10641441` -> `10,641,441`.
#[must_use]
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Draw the Model tab.
pub fn render(state: &AppState, frame: &mut Frame, area: Rect) {
    let Some(start) = &state.start else {
        frame.render_widget(
            Paragraph::new("The model summary appears when the trainer starts.")
                .style(Style::new().fg(Color::DarkGray))
                .block(Block::bordered().title(" Model ")),
            area,
        );
        return;
    };
    let shape = |v: &[usize]| {
        let inner: Vec<String> = v.iter().map(ToString::to_string).collect();
        format!("({})", inner.join(", "))
    };
    let rows: Vec<Row> = start
        .summary
        .iter()
        .map(|r| {
            Row::new(vec![
                format!("{} ({})", r.name, r.kind),
                shape(&r.output_shape),
                thousands(r.params),
            ])
        })
        .collect();
    let total: usize = start.summary.iter().map(|r| r.params).sum();
    let footer = Row::new(vec![
        "Total params".to_string(),
        String::new(),
        thousands(if start.params > 0 {
            start.params
        } else {
            total
        }),
    ])
    .style(Style::new().add_modifier(Modifier::BOLD))
    .top_margin(1);
    let table = Table::new(
        rows,
        [
            Constraint::Min(28),
            Constraint::Length(20),
            Constraint::Length(14),
        ],
    )
    .header(
        Row::new(["Layer (type)", "Output shape", "Param #"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .footer(footer)
    .row_highlight_style(Style::new().fg(Color::Black).bg(Color::Cyan))
    .highlight_symbol("▶ ")
    .block(
        Block::bordered()
            .title(" Model · Enter: filters (conv) or feature maps · m: feature maps "),
    );
    let mut ts = TableState::default().with_selected(Some(state.model_row));
    frame.render_stateful_widget(table, area, &mut ts);
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits() {
        assert_eq!(super::thousands(10_641_441), "10,641,441");
        assert_eq!(super::thousands(448), "448");
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(1000), "1,000");
    }
}
