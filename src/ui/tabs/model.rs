//! Model tab: the Keras-style summary; Enter opens a layer's pictures.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use crate::events::{group_digits, keras_shape};
use crate::ui::state::AppState;

/// A number column's cell: right-aligned, so magnitudes line up.
fn right(s: String) -> Cell<'static> {
    Cell::from(Line::from(s).right_aligned())
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
    let names: Vec<String> = start
        .summary
        .iter()
        .map(|r| format!("{} ({})", r.name, r.kind))
        .collect();
    // As wide as the longest name, like Keras's table: a column that fills a wide terminal
    // puts the shapes and counts far from the names they belong to.
    let name_width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max("Total params".len())
        + 4;
    let shapes: Vec<String> = start
        .summary
        .iter()
        .map(|r| keras_shape(&r.output_shape))
        .collect();
    let shape_width = shapes
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
        .max("Output shape".len())
        + 2;
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
            Constraint::Length(u16::try_from(name_width).unwrap_or(u16::MAX)),
            Constraint::Length(u16::try_from(shape_width).unwrap_or(u16::MAX)),
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
    let mut ts = TableState::default().with_selected(Some(state.model_row));
    frame.render_stateful_widget(table, area, &mut ts);
}
