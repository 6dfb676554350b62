//! Training tab: progress, curves, per-epoch table.

use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Dataset, Gauge, GraphType, LegendPosition, Paragraph, Row, Table,
    Wrap,
};

use super::Scene;
use crate::ui::header::{self, duration};
use crate::ui::state::AppState;

/// Draw the Training tab.
pub fn render(scene: Scene<'_>, frame: &mut Frame) {
    let (state, a) = (scene.state, &scene.layout.training);
    render_head(state, frame, a.head_text, a.gauge);
    if let Some(e) = state.error().filter(|_| a.error.height > 0) {
        frame.render_widget(
            Paragraph::new(e.to_string())
                .wrap(Wrap { trim: false })
                .style(Style::new().fg(Color::Red))
                .block(
                    Block::bordered()
                        .title(" error ")
                        .border_style(Style::new().fg(Color::Red)),
                ),
            a.error,
        );
    }
    render_loss(state, frame, a.loss);
    render_accuracy(state, frame, a.accuracy);
    render_table(state, frame, a.table);
}

/// The header: its lines wrapped into `text` above the gauge, then the gauge.
fn render_head(state: &AppState, frame: &mut Frame, text: Rect, gauge: Rect) {
    frame.render_widget(
        Paragraph::new(Vec::from(header::head_lines(state))).wrap(Wrap { trim: true }),
        text,
    );
    let (done, total) = state.progress().unwrap_or((0, 0));
    let ratio = if total == 0 {
        0.0
    } else {
        done as f64 / total as f64
    };
    frame.render_widget(
        Gauge::default()
            .ratio(ratio.clamp(0.0, 1.0))
            .label(format!("{:.1}%  ({done}/{total} batches)", ratio * 100.0))
            .gauge_style(Style::new().fg(Color::Cyan).bg(Color::Black)),
        gauge,
    );
}

fn epoch_points(
    state: &AppState,
    f: impl Fn(&crate::events::EpochMetrics) -> Option<f32>,
) -> Vec<(f64, f64)> {
    state
        .epochs()
        .iter()
        .filter_map(|e| {
            f(e).filter(|v| v.is_finite())
                .map(|v| (e.epoch as f64, f64::from(v)))
        })
        .collect()
}

fn x_max(state: &AppState) -> f64 {
    let e = state.epochs().last().map_or(0, |e| e.epoch);
    let b = state.batches().last().map_or(0, |b| b.epoch);
    e.max(b).max(1) as f64
}

fn render_loss(state: &AppState, frame: &mut Frame, area: Rect) {
    let batch: Vec<(f64, f64)> = state
        .batches()
        .iter()
        .filter(|b| b.loss.is_finite())
        .map(|b| {
            (
                (b.epoch.saturating_sub(1)) as f64 + b.batch as f64 / b.batches.max(1) as f64,
                f64::from(b.loss),
            )
        })
        .collect();
    let train = epoch_points(state, |e| Some(e.train_loss));
    let val = epoch_points(state, |e| e.val_loss);
    let y_max = batch
        .iter()
        .chain(&train)
        .chain(&val)
        .map(|p| p.1)
        .fold(0.0_f64, f64::max)
        .max(0.1)
        * 1.1;
    let mut datasets = vec![
        Dataset::default()
            .name("batch")
            .marker(Marker::Braille)
            .style(Style::new().fg(Color::DarkGray))
            .data(&batch),
    ];
    datasets.extend(epoch_lines(&train, &val));
    let corner = legend_corner(&[&batch, &train, &val], x_max(state), y_max);
    frame.render_widget(
        chart(datasets, " Loss ", x_max(state), y_max).legend_position(Some(corner)),
        area,
    );
}

/// The per-epoch train (cyan) and val (yellow) lines of a chart.
fn epoch_lines<'a>(train: &'a [(f64, f64)], val: &'a [(f64, f64)]) -> [Dataset<'a>; 2] {
    let line = |name: &'static str, color: Color, data: &'a [(f64, f64)]| {
        Dataset::default()
            .name(name)
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(color))
            .data(data)
    };
    [
        line("train", Color::Cyan, train),
        line("val", Color::Yellow, val),
    ]
}

fn render_accuracy(state: &AppState, frame: &mut Frame, area: Rect) {
    let train = epoch_points(state, |e| Some(e.train_accuracy));
    let val = epoch_points(state, |e| e.val_accuracy);
    let datasets = epoch_lines(&train, &val).to_vec();
    let corner = legend_corner(&[&train, &val], x_max(state), 1.0);
    frame.render_widget(
        chart(datasets, " Accuracy ", x_max(state), 1.0).legend_position(Some(corner)),
        area,
    );
}

/// The corner of a chart where the legend hides the fewest points: a rising accuracy ends
/// in the top right, where the legend would cover the newest epochs; a falling loss leaves it
/// free. The top right wins a tie.
fn legend_corner(series: &[&[(f64, f64)]], x_max: f64, y_max: f64) -> LegendPosition {
    let (right, left) = (0.7 * x_max, 0.3 * x_max);
    let (top, bottom) = (0.7 * y_max, 0.3 * y_max);
    let points = || series.iter().flat_map(|s| s.iter());
    let count = |inside: &dyn Fn(&(f64, f64)) -> bool| points().filter(|p| inside(p)).count();
    [
        (
            LegendPosition::TopRight,
            count(&|p| p.0 >= right && p.1 >= top),
        ),
        (
            LegendPosition::BottomRight,
            count(&|p| p.0 >= right && p.1 <= bottom),
        ),
        (
            LegendPosition::TopLeft,
            count(&|p| p.0 <= left && p.1 >= top),
        ),
        (
            LegendPosition::BottomLeft,
            count(&|p| p.0 <= left && p.1 <= bottom),
        ),
    ]
    .into_iter()
    .min_by_key(|&(_, n)| n)
    .map_or(LegendPosition::TopRight, |(corner, _)| corner)
}

fn chart<'a>(datasets: Vec<Dataset<'a>>, title: &'a str, x_max: f64, y_max: f64) -> Chart<'a> {
    let dim = Style::new().fg(Color::DarkGray);
    Chart::new(datasets)
        .block(Block::bordered().title(title))
        .x_axis(
            Axis::default()
                .title("epoch")
                .style(dim)
                .bounds([0.0, x_max])
                .labels(["0".to_string(), format!("{x_max:.0}")]),
        )
        .y_axis(
            Axis::default()
                .style(dim)
                .bounds([0.0, y_max])
                .labels(["0".to_string(), format!("{y_max:.2}")]),
        )
}

fn render_table(state: &AppState, frame: &mut Frame, area: Rect) {
    let best = state.best_epoch();
    let opt = |v: Option<f32>, p: usize| v.map_or_else(|| "–".into(), |v| format!("{v:.p$}"));
    let visible = usize::from(area.height.saturating_sub(3));
    let skip = state.first_epoch_row(visible);
    let rows = state.epochs().iter().skip(skip).take(visible).map(|e| {
        let is_best = Some(e.epoch) == best;
        let style = if is_best {
            Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        Row::new(vec![
            Cell::from(format!("{}{}", e.epoch, if is_best { " ★" } else { "" })),
            Cell::from(format!("{:.4}", e.train_loss)),
            Cell::from(format!("{:.3}", e.train_accuracy)),
            Cell::from(opt(e.val_loss, 4)),
            Cell::from(opt(e.val_accuracy, 3)),
            Cell::from(duration(e.seconds)),
            Cell::from(format!("{:.0}", e.images_per_sec)),
        ])
        .style(style)
    });
    let header = Row::new([
        "epoch", "loss", "acc", "val loss", "val acc", "time", "img/s",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let widths = [Constraint::Length(8); 7];
    let n = state.epochs().len();
    let mut title = String::from(" Epochs");
    if n > visible {
        // Which rows are shown, and how to see the others.
        let last = (skip + visible).min(n);
        let above = if skip > 0 { "↑" } else { "" };
        let below = if last < n { "↓" } else { "" };
        let _ = write!(title, " {}–{last} of {n} {above}{below}", skip + 1);
    }
    match best.and_then(|b| state.epochs().iter().find(|e| e.epoch == b)) {
        Some(b) => {
            let _ = write!(
                title,
                " · ★ best val accuracy: epoch {} ({:.3}){} ",
                b.epoch,
                b.val_accuracy.unwrap_or(0.0),
                if n > visible { ", b shows it" } else { "" }
            );
        }
        None => title.push_str(" (★ best val accuracy) "),
    }
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(title)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::{LegendPosition, duration, legend_corner};

    #[test]
    fn the_legend_keeps_off_the_newest_epochs() {
        let rising: Vec<(f64, f64)> = (0..=20)
            .map(|e| (f64::from(e), 0.5 + 0.024 * f64::from(e)))
            .collect();
        let falling: Vec<(f64, f64)> = (0..=20)
            .map(|e| (f64::from(e), 2.0 - 0.09 * f64::from(e)))
            .collect();
        // Accuracy climbs into the top right: the legend goes below it.
        assert_eq!(
            legend_corner(&[&rising], 20.0, 1.0),
            LegendPosition::BottomRight
        );
        // Loss falls into the bottom right: the top right stays free.
        assert_eq!(
            legend_corner(&[&falling], 20.0, 2.2),
            LegendPosition::TopRight
        );
        // Both corners on the right taken (a val loss turning up over a falling train loss),
        // curves starting mid-height: the top left.
        let up = [(18.0, 2.0), (19.0, 2.1), (20.0, 2.2)];
        let down = [(0.0, 1.0), (18.0, 0.1), (19.0, 0.1), (20.0, 0.1)];
        assert_eq!(
            legend_corner(&[&up, &down], 20.0, 2.2),
            LegendPosition::TopLeft
        );
        assert_eq!(legend_corner(&[], 1.0, 1.0), LegendPosition::TopRight);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(3.2), "3s");
        assert_eq!(duration(125.0), "2m05s");
        assert_eq!(duration(3723.0), "1h02m03s");
        assert_eq!(duration(-1.0), "0s");
    }
}
