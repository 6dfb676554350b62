//! Model tab: the Keras-style summary; Enter opens a layer's pictures. Once an epoch is
//! validated, each conv and hidden dense layer's unit health: % dead, dormant and always on,
//! and the % dead of every epoch so far as a sparkline (a dying layer shows as it happens).

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use super::Scene;
use crate::events::health::HealthSnapshot;
use crate::events::{group_digits, keras_shape};

/// Sparkline levels, lowest first.
const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Epochs the trend shows at most and at least (the newest), as room allows.
const TREND_EPOCHS: (usize, usize) = (3, 24);
/// Widths of the dead, dormant and always-on columns.
const PCT_WIDTHS: [u16; 3] = [6, 6, 5];

/// `values` (percentages) as a sparkline on a fixed 0–100 scale: a layer at 0 % stays flat
/// at the bottom, any dead unit lifts it.
#[must_use]
pub fn sparkline(values: &[f64]) -> String {
    values
        .iter()
        .map(|&v| {
            if v <= 0.0 {
                SPARK[0]
            } else {
                let level = (v / 100.0 * (SPARK.len() - 1) as f64).ceil() as usize;
                SPARK[level.clamp(1, SPARK.len() - 1)]
            }
        })
        .collect()
}

/// A percentage cell: one decimal, right-aligned; coloured when some units are dead.
fn pct(v: f64, warn: bool) -> Cell<'static> {
    let cell = right(format!("{v:.1}"));
    if warn && v > 0.0 {
        cell.style(Style::new().fg(Color::Red))
    } else {
        cell
    }
}

/// The health cells of the layer named `name` (empty cells for a layer without any).
fn health_cells(health: &HealthSnapshot, name: &str, epochs: usize) -> Vec<Cell<'static>> {
    let Some(l) = health.latest().and_then(|h| h.layer(name)) else {
        return vec![Cell::from(""); 4];
    };
    let trend = health.dead_trend(name);
    let trend = &trend[trend.len().saturating_sub(epochs)..];
    vec![
        pct(l.dead_pct, true),
        pct(l.dormant_pct, false),
        pct(l.always_on_pct, false),
        Cell::from(sparkline(trend)),
    ]
}

/// A number column's cell: right-aligned, so magnitudes line up.
fn right(s: String) -> Cell<'static> {
    Cell::from(Line::from(s).right_aligned())
}

/// Add the health columns' headers, widths and (empty) footer cells; returns the note under
/// the table.
fn health_columns(
    health: &HealthSnapshot,
    trend_width: u16,
    header: &mut Vec<Cell<'static>>,
    widths: &mut Vec<Constraint>,
    footer: &mut Vec<Cell<'static>>,
) -> String {
    let Some(latest) = health.latest() else {
        return String::new();
    };
    header.extend([
        right("dead%".into()),
        right("dorm%".into()),
        right("on%".into()),
        Cell::from("trend"),
    ]);
    widths.extend(PCT_WIDTHS.map(Constraint::Length));
    widths.push(Constraint::Length(trend_width));
    footer.extend([
        Cell::from(""),
        Cell::from(""),
        Cell::from(""),
        Cell::from(""),
    ]);
    format!(
        " unit health, epoch {} ({} val images): dead = never > 0 · output {:.1} % saturated ",
        latest.epoch, latest.images, latest.output_saturated_pct
    )
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
    let health = state.health().filter(|h| h.latest().is_some());
    let width = |items: &[String], header: &str, gap: usize| {
        let w = items.iter().map(|s| s.chars().count()).max().unwrap_or(0);
        u16::try_from(w.max(header.len()) + gap).unwrap_or(u16::MAX)
    };
    let (name_width, shape_width) = (
        // Closer together when the health columns need the room.
        width(&names, "Total params", if health.is_some() { 2 } else { 4 }),
        width(
            &shapes,
            "Output shape",
            if health.is_some() { 1 } else { 2 },
        ),
    );
    // The trend takes what the other columns leave (borders, the ▶ column and 6 gaps).
    let used = 2 + 2 + name_width + shape_width + 12 + PCT_WIDTHS.iter().sum::<u16>() + 6;
    let trend_width = u16::try_from(
        usize::from(area.width.saturating_sub(used)).clamp(TREND_EPOCHS.0, TREND_EPOCHS.1),
    )
    .unwrap_or(3);
    let rows: Vec<Row> = start
        .summary
        .iter()
        .zip(names.into_iter().zip(shapes))
        .map(|(r, (name, shape))| {
            let mut cells = vec![
                Cell::from(name),
                Cell::from(shape),
                right(group_digits(r.params)),
            ];
            if let Some(h) = health {
                cells.extend(health_cells(h, &r.name, usize::from(trend_width)));
            }
            Row::new(cells)
        })
        .collect();
    let total: usize = start.summary.iter().map(|r| r.params).sum();
    let mut footer = vec![
        Cell::from("Total params"),
        Cell::from(""),
        right(group_digits(if start.params > 0 {
            start.params
        } else {
            total
        })),
    ];
    let mut header = vec![
        Cell::from("Layer (type)"),
        Cell::from("Output shape"),
        right("Param #".into()),
    ];
    let mut widths = vec![
        Constraint::Length(name_width),
        Constraint::Length(shape_width),
        Constraint::Length(12),
    ];
    let bottom = health.map_or_else(String::new, |h| {
        health_columns(h, trend_width, &mut header, &mut widths, &mut footer)
    });
    let footer = Row::new(footer)
        .style(Style::new().add_modifier(Modifier::BOLD))
        .top_margin(1);
    let table = Table::new(rows, widths)
        .flex(Flex::Start)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .footer(footer)
        .row_highlight_style(Style::new().fg(Color::Black).bg(Color::Cyan))
        .highlight_symbol("▶ ")
        .block({
            let block = Block::bordered()
                .title(" Model · Enter: filters (conv) or feature maps · m: feature maps ");
            if bottom.is_empty() {
                block
            } else {
                block.title_bottom(bottom)
            }
        });
    let mut ts = TableState::default().with_selected(Some(state.model_row()));
    frame.render_stateful_widget(table, area, &mut ts);
}
