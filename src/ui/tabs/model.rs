//! Model tab: the Keras-style summary; Enter opens a layer's pictures.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use super::Scene;
use crate::events::{group_digits, keras_shape};

/// A number column's cell: right-aligned, so magnitudes line up.
fn right(s: String) -> Cell<'static> {
    Cell::from(Line::from(s).right_aligned())
}

/// Draw the Model tab.
pub fn render(scene: Scene<'_>, frame: &mut Frame) {
    let (state, area) = (scene.state, scene.layout.body);
    let Some(start) = state.start() else {
        frame.render_widget(
            Paragraph::new("The model summary appears when the trainer starts.")
                .style(Style::new().fg(Color::DarkGray))
                .block(Block::bordered().title(" Model ")),
            area,
        );
        return;
    };
    let names: Vec<String> = start
        .summary
        .iter()
        .map(|r| format!("{} ({})", r.name, r.kind))
        .collect();
    let shapes: Vec<String> = start
        .summary
        .iter()
        .map(|r| keras_shape(&r.output_shape))
        .collect();
    // Columns as wide as their entries, like Keras's table: a column that fills a wide
    // terminal puts the shapes and counts far from the names they belong to.
    let width = |items: &[String], header: &str, gap: usize| {
        let w = items.iter().map(|s| s.chars().count()).max().unwrap_or(0);
        u16::try_from(w.max(header.len()) + gap).unwrap_or(u16::MAX)
    };
    let (name_width, shape_width) = (
        width(&names, "Total params", 4),
        width(&shapes, "Output shape", 2),
    );
    let rows: Vec<Row> = start
        .summary
        .iter()
        .zip(names.into_iter().zip(shapes))
        .map(|(r, (name, shape))| {
            Row::new(vec![
                Cell::from(name),
                Cell::from(shape),
                right(group_digits(r.params)),
            ])
        })
        .collect();
    let total: usize = start.summary.iter().map(|r| r.params).sum();
    let footer = Row::new(vec![
        Cell::from("Total params"),
        Cell::from(""),
        right(group_digits(if start.params > 0 {
            start.params
        } else {
            total
        })),
    ])
    .style(Style::new().add_modifier(Modifier::BOLD))
    .top_margin(1);
    let table = Table::new(
        rows,
        [
            Constraint::Length(name_width),
            Constraint::Length(shape_width),
            Constraint::Length(12),
        ],
    )
    .flex(Flex::Start)
    .header(
        Row::new([
            Cell::from("Layer (type)"),
            Cell::from("Output shape"),
            right("Param #".into()),
        ])
        .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .footer(footer)
    .row_highlight_style(Style::new().fg(Color::Black).bg(Color::Cyan))
    .highlight_symbol("▶ ")
    .block(
        Block::bordered()
            .title(" Model · Enter: filters (conv) or feature maps · m: feature maps "),
    );
    let mut ts = TableState::default().with_selected(Some(state.model_row()));
    frame.render_stateful_widget(table, area, &mut ts);
}
