//! Validation tab: the confusion matrix of an epoch's validation record (actual × predicted,
//! counts or row percentages, cells shaded by the row's share), per-class precision, recall
//! and F1, and overall accuracy; Enter on a cell lists its images beside their thumbnails.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout as Split};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::Scene;
use crate::events::group_digits;
use crate::ui::picture;
use crate::ui::record::Loaded;
use crate::ui::state::{CellList, ValidationView};
use crate::ui::vocab::{ListMode, Slot};
use crate::viz::colormap;

/// Columns of the per-class metrics: " P    R    F1" as three 5-wide columns.
const METRICS_W: u16 = 15;
/// The widest a class name is shown in the label column.
const LABEL_MAX: usize = 7;

fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

/// Draw the Validation tab.
pub fn render(scene: Scene<'_>, frame: &mut Frame) {
    let (state, a) = (scene.state, &scene.layout.validation);
    let v = state.validation();
    let Some(data) = v.loaded() else {
        frame.render_widget(Line::styled(" Validation", dim()), a.header);
        let text = v.error().map_or_else(
            || "Reading the validation record… (written at the end of every epoch)".to_string(),
            |e| format!("Cannot show the validation record: {e}"),
        );
        frame.render_widget(
            Paragraph::new(text)
                .style(dim())
                .wrap(Wrap { trim: true })
                .block(Block::bordered().title(" Validation ")),
            a.main,
        );
        return;
    };
    frame.render_widget(header(v, data), a.header);
    match v.list() {
        Some(list) => render_list(scene, data, list, frame),
        None => render_matrix(scene, data, frame),
    }
}

/// The line above the matrix: epoch, accuracy, images, what the cells show.
fn header(v: &ValidationView, data: &Loaded) -> Line<'static> {
    let newest = data.recorded.last().copied().unwrap_or(data.epoch);
    let which = if v.chosen().is_none() {
        " (newest)".to_string()
    } else {
        format!(" of {newest}")
    };
    let cells = if v.percent() { "row %" } else { "counts" };
    Line::from(vec![
        Span::styled(format!(" epoch {}{which}", data.epoch), dim()),
        Span::styled(" │ accuracy ", dim()),
        Span::styled(
            format!("{:.1}%", data.accuracy * 100.0),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!(
                " │ {} images │ cells: {cells}",
                group_digits(data.rows.len())
            ),
            dim(),
        ),
    ])
}

/// `name` cut to `w` characters.
fn abbrev(name: &str, w: usize) -> String {
    name.chars().take(w).collect()
}

/// The first of `visible` items shown so that `cursor` (of `n`) is in view, near the middle.
fn first_shown(cursor: usize, visible: usize, n: usize) -> usize {
    cursor
        .saturating_sub(visible / 2)
        .min(n.saturating_sub(visible))
}

/// Black or white, whichever reads on `bg`.
fn ink(bg: colormap::Rgb) -> Color {
    let luma = 0.299 * f32::from(bg[0]) + 0.587 * f32::from(bg[1]) + 0.114 * f32::from(bg[2]);
    if luma > 128.0 {
        Color::Black
    } else {
        Color::White
    }
}

fn count_text(n: u64) -> String {
    group_digits(usize::try_from(n).unwrap_or(usize::MAX))
}

fn ratio(x: f64) -> String {
    format!("{x:>5.2}")
}

#[expect(
    clippy::too_many_lines,
    reason = "the matrix's header row, its rows of shaded cells with their metrics and the \
              footer about the cursor's cell, in the order drawn"
)]
fn render_matrix(scene: Scene<'_>, data: &Loaded, frame: &mut Frame) {
    let (state, a) = (scene.state, &scene.layout.validation);
    let v = state.validation();
    let n = data.classes.len();
    let [block_area, footer] = Split::vertical([
        Constraint::Length(u16::try_from(n).unwrap_or(u16::MAX).saturating_add(3)),
        Constraint::Min(0),
    ])
    .areas(a.main);
    let inner = Block::bordered().inner(block_area);
    let label_w = data
        .classes
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(1)
        .clamp(2, LABEL_MAX);
    let widest = data
        .confusion
        .iter()
        .flatten()
        .map(|&c| count_text(c).chars().count())
        .max()
        .unwrap_or(1);
    let cell_w = if v.percent() { 5 } else { widest.max(4) + 1 };
    let metrics = inner.width >= METRICS_W + 20;
    let room = usize::from(inner.width)
        .saturating_sub(label_w + 1 + if metrics { usize::from(METRICS_W) } else { 0 });
    let cols = (room / cell_w).clamp(1, n.max(1));
    let rows = usize::from(inner.height.saturating_sub(1)).clamp(1, n.max(1));
    let (cr, cc) = v.cursor();
    let (r0, c0) = (first_shown(cr, rows, n), first_shown(cc, cols, n));
    let shown = |first: usize, count: usize| {
        if count < n {
            format!(" {}–{} of {n}", first + 1, first + count)
        } else {
            String::new()
        }
    };
    let title = format!(
        " actual ↓{} × predicted →{} ",
        shown(r0, rows),
        shown(c0, cols)
    );
    frame.render_widget(Block::bordered().title(title), block_area);

    let mut lines = Vec::with_capacity(rows + 1);
    let mut head = vec![Span::raw(" ".repeat(label_w + 1))];
    for c in c0..(c0 + cols).min(n) {
        let style = if c == cc {
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            dim()
        };
        head.push(Span::styled(
            format!("{:>cell_w$}", abbrev(&data.classes[c], cell_w - 1)),
            style,
        ));
    }
    if metrics {
        head.push(Span::styled(
            format!("{:>5}{:>5}{:>5}", "P", "R", "F1"),
            dim(),
        ));
    }
    lines.push(Line::from(head));
    let depth = state.color_depth();
    for r in r0..(r0 + rows).min(n) {
        let label_style = if r == cr {
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        let mut spans = vec![Span::styled(
            format!("{:<w$} ", abbrev(&data.classes[r], label_w), w = label_w),
            label_style,
        )];
        for c in c0..(c0 + cols).min(n) {
            let count = data.confusion[r][c];
            let pct = data.percent[r][c];
            let text = if v.percent() {
                format!("{:>w$}", format!("{pct:.0}%"), w = cell_w - 1)
            } else {
                format!("{:>w$}", count_text(count), w = cell_w - 1)
            };
            // Shaded by the row's share: a class's mistakes stand out whatever its size.
            let bg = colormap::color(state.colormap(), (pct / 100.0) as f32);
            let mut style = Style::new().bg(picture::to_color(bg, depth)).fg(ink(bg));
            if count == 0 {
                style = Style::new().fg(Color::DarkGray);
            }
            if (r, c) == (cr, cc) {
                style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
            }
            spans.push(Span::raw(" "));
            spans.push(Span::styled(text, style));
        }
        if metrics && let Some(m) = data.metrics.get(r) {
            spans.push(Span::raw(format!(
                "{}{}{}",
                ratio(m.precision),
                ratio(m.recall),
                ratio(m.f1)
            )));
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), inner);

    let (actual, predicted) = (data.class(cr), data.class(cc));
    let count = data
        .confusion
        .get(cr)
        .and_then(|r| r.get(cc))
        .copied()
        .unwrap_or(0);
    let pct = data
        .percent
        .get(cr)
        .and_then(|r| r.get(cc))
        .copied()
        .unwrap_or(0.0);
    let support: u64 = data.confusion.get(cr).map_or(0, |r| r.iter().sum());
    let verdict = if cr == cc { "right" } else { "wrong" };
    let mut text = vec![Line::from(vec![
        Span::styled(
            format!(" {actual} → {predicted}"),
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            ": {} {verdict} ({pct:.1}% of {actual}'s {})",
            count_text(count),
            count_text(support)
        )),
        Span::styled(
            if count > 0 {
                " · Enter lists them"
            } else {
                ""
            },
            dim(),
        ),
    ])];
    let flips = match data.previous {
        Some(p) => format!(
            "since epoch {p}: {} right→wrong, {} wrong→right",
            data.flipped.right_to_wrong.len(),
            data.flipped.wrong_to_right.len()
        ),
        None => "no previous epoch to compare".to_string(),
    };
    text.push(Line::styled(
        format!(" {flips} · probable label noise: {}", data.noise.len()),
        dim(),
    ));
    text.push(Line::styled(
        " shading: share of the actual class · P precision · R recall · F1",
        dim(),
    ));
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), footer);
}

/// The last two parts of a path: the class folder and the file.
fn short_path(path: &str) -> String {
    let p = std::path::Path::new(path);
    let file = p
        .file_name()
        .map_or_else(|| path.to_string(), |f| f.to_string_lossy().into_owned());
    match p.parent().and_then(|d| d.file_name()) {
        Some(d) => format!("{}/{file}", d.to_string_lossy()),
        None => file,
    }
}

fn render_list(scene: Scene<'_>, data: &Loaded, list: &CellList, frame: &mut Frame) {
    let a = &scene.layout.validation;
    let (actual, predicted) = (list.cell.0, list.cell.1);
    let title = format!(
        " {} → {}: {} · {} ",
        data.class(actual),
        data.class(predicted),
        group_digits(list.items.len()),
        list.mode.describe()
    );
    let block = Block::bordered().title(title).title_bottom(Line::styled(
        format!(" epoch {} · Enter: probe · Esc: matrix ", data.epoch),
        dim(),
    ));
    let inner = block.inner(a.list_block);
    frame.render_widget(block, a.list_block);
    if list.items.is_empty() {
        let what = match list.mode {
            ListMode::Wrong | ListMode::Ambiguous => "No images in this cell.",
            ListMode::Flipped => "No image of this cell flipped since the previous epoch.",
            ListMode::Noise => "No image of this cell is probable label noise.",
        };
        frame.render_widget(
            Paragraph::new(format!("{what} Esc goes back to the matrix."))
                .style(dim())
                .wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    let extra = match list.mode {
        ListMode::Flipped => "flip ",
        ListMode::Noise => "epochs ",
        ListMode::Wrong | ListMode::Ambiguous => "",
    };
    let mut lines = vec![Line::styled(
        format!("    loss p(pred) p(true) {extra}image"),
        dim(),
    )];
    let rows = usize::from(inner.height.saturating_sub(1)).max(1);
    let first = first_shown(list.selected, rows, list.items.len());
    for (k, &at) in list.items.iter().enumerate().skip(first).take(rows) {
        let Some(r) = data.rows.get(at) else {
            continue;
        };
        let p = |c: u16| r.probs.get(usize::from(c)).copied().unwrap_or(0.0);
        let mark = match list.mode {
            ListMode::Flipped if r.correct() => "w→r  ".to_string(),
            ListMode::Flipped => "r→w  ".to_string(),
            ListMode::Noise => format!(
                "{:>6} ",
                data.noise
                    .iter()
                    .find(|x| x.index == r.index)
                    .map_or(0, |x| x.epochs)
            ),
            ListMode::Wrong | ListMode::Ambiguous => String::new(),
        };
        let text = format!(
            "{} {:>6.3} {:>7.2} {:>7.2} {mark}{}",
            if k == list.selected { "▶" } else { " " },
            r.loss,
            p(r.predicted),
            p(r.label),
            data.path(r.index)
                .map_or_else(|| format!("#{}", r.index), short_path)
        );
        let style = if k == list.selected {
            Style::new().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::new()
        };
        lines.push(Line::styled(text, style));
    }
    frame.render_widget(Paragraph::new(lines), inner);
    render_pictures(scene, data, list, frame);
}

/// The selected image, titled with its file and its verdict, and the page of thumbnails.
fn render_pictures(scene: Scene<'_>, data: &Loaded, list: &CellList, frame: &mut Frame) {
    let Scene {
        state,
        pictures,
        gfx,
        layout,
    } = scene;
    let a = &layout.validation;
    let v = state.validation();
    let Some(row) = v.selected_row() else {
        return;
    };
    let file = data
        .path(row.index)
        .map_or_else(|| format!("#{}", row.index), short_path);
    let verdict = if row.correct() {
        Color::Green
    } else {
        Color::Red
    };
    frame.render_widget(
        Block::bordered()
            .title(format!(" {file} "))
            .title_bottom(Line::from(vec![
                Span::styled(format!(" {} ", data.class(usize::from(row.label))), dim()),
                Span::styled(
                    format!(
                        "→ {} {:.1}% ",
                        data.class(usize::from(row.predicted)),
                        row.confidence() * 100.0
                    ),
                    Style::new().fg(verdict).add_modifier(Modifier::BOLD),
                ),
            ])),
        a.image_block,
    );
    let depth = state.color_depth();
    if v.thumb(row.index).is_some() {
        picture::draw(
            frame,
            gfx,
            depth,
            Slot::ValImage,
            a.image,
            &pictures.val_image,
        );
    }
    let start = list.page_start();
    let end = (start + crate::ui::state::THUMB_PAGE).min(list.items.len());
    frame.render_widget(
        Block::bordered().title(format!(
            " images {}–{end} of {} ",
            start + 1,
            list.items.len()
        )),
        a.thumbs_block,
    );
    picture::draw(
        frame,
        gfx,
        depth,
        Slot::ValThumbs,
        a.thumbs,
        &pictures.val_thumbs,
    );
}
