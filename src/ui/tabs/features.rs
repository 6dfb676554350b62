//! Feature maps tab: the probe image beside every channel of one layer, one channel zoomed.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::events::FeatureSnapshot;
use crate::ui::graphics::{Graphics, Slot};
use crate::ui::picture;
use crate::ui::pictures::Pic;
use crate::ui::state::AppState;
use crate::viz::colormap;

/// Where the parts of the Feature maps tab go.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    pub header: Rect,
    pub probe_block: Rect,
    pub probe: Rect,
    pub zoom_block: Rect,
    pub zoom: Rect,
    pub grid_block: Rect,
    pub grid: Rect,
}

/// Lay out the Feature maps tab in `body`.
#[must_use]
pub fn areas(_state: &AppState, body: Rect) -> Areas {
    let [header, main] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(body);
    let [left, grid_block] =
        Layout::horizontal([Constraint::Percentage(30), Constraint::Percentage(70)]).areas(main);
    let [probe_block, zoom_block] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(left);
    let inner = |r: Rect| Block::bordered().inner(r);
    Areas {
        header,
        probe_block,
        probe: inner(probe_block),
        zoom_block,
        zoom: inner(zoom_block),
        grid_block,
        grid: inner(grid_block),
    }
}

/// The pictures this tab draws, and where.
#[must_use]
pub fn slots(state: &AppState, body: Rect) -> Vec<(Slot, Rect, &Pic)> {
    if state.features.is_none() {
        return Vec::new();
    }
    let a = areas(state, body);
    let p = &state.pictures;
    vec![
        (Slot::Probe, a.probe, &p.probe),
        (Slot::FeatureGrid, a.grid, &p.feature_grid),
        (Slot::ChannelZoom, a.zoom, &p.channel_zoom),
    ]
}

/// Draw the Feature maps tab.
pub fn render(state: &AppState, gfx: &Graphics, frame: &mut Frame, area: Rect) {
    let a = areas(state, area);
    let dim = Style::new().fg(Color::DarkGray);
    let Some(snap) = state.features.as_ref() else {
        frame.render_widget(Line::styled(" Feature maps", dim), a.header);
        let n = state.start.as_ref().map_or(0, |s| s.probe_images.len());
        frame.render_widget(
            Paragraph::new(format!(
                "No feature maps yet. They arrive with each epoch; n/p step through the {n} probe \
                 images, o opens any image by path."
            ))
            .style(dim)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(" Feature maps ")),
            a.grid_block,
        );
        return;
    };
    let names: Vec<&str> = snap.layers.iter().map(|l| l.name.as_str()).collect();
    frame.render_widget(
        super::layer_bar(
            &names,
            state.feature_layer,
            format!(
                "│ (x-mean)/std·64+128 │ {} │ epoch {}",
                colormap::name(state.colormap),
                snap.epoch
            ),
            a.header.width,
        ),
        a.header,
    );

    // Probe and prediction.
    let name = |i: usize| {
        state
            .start
            .as_ref()
            .and_then(|s| s.classes.get(i))
            .map_or_else(|| format!("class {i}"), Clone::clone)
    };
    let (file, label) = probe_title(snap, state.start.as_ref().map(|s| &s.classes[..]));
    // Green when the image's folder names the predicted class, red when it names another.
    let verdict = match label {
        Some(l) if l == snap.predicted => Color::Green,
        Some(_) => Color::Red,
        None => Color::White,
    };
    let mut prediction = vec![Span::styled(
        format!(
            " {} {:.1}% ",
            name(snap.predicted),
            snap.probability * 100.0
        ),
        Style::new().fg(verdict).add_modifier(Modifier::BOLD),
    )];
    // With more than two classes, the runners-up where they fit (with two, the other is 1 - p).
    if snap.probabilities.len() > 2 {
        let p = &snap.probabilities;
        let mut others: Vec<usize> = (0..p.len()).filter(|&i| i != snap.predicted).collect();
        others.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        let room = usize::from(a.probe_block.width.saturating_sub(4));
        let mut used = prediction[0].width();
        for i in others.into_iter().take(2) {
            let text = format!("{} {:.1}% ", name(i), p[i] * 100.0);
            used += text.chars().count();
            if used > room {
                break;
            }
            prediction.push(Span::styled(text, dim));
        }
    }
    frame.render_widget(
        Block::bordered()
            .title(format!(" {file} "))
            .title_bottom(Line::from(prediction)),
        a.probe_block,
    );
    picture::draw(
        frame,
        gfx,
        state.color_depth,
        Slot::Probe,
        a.probe,
        &state.pictures.probe,
    );

    let Some(layer) = state.feature_layer() else {
        return;
    };
    let levels = &state.pictures.levels;
    let dead: Vec<usize> = levels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.dead)
        .map(|(i, _)| i + 1)
        .collect();
    let dead_text = if dead.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = dead.iter().take(12).map(ToString::to_string).collect();
        let more = if dead.len() > 12 { "…" } else { "" };
        format!(" · dead: {}{more}", list.join(","))
    };
    frame.render_widget(
        Block::bordered().title(Line::from(vec![
            Span::raw(format!(
                " {} · {} channels · {}×{}{}",
                layer.name,
                layer.channels,
                layer.height,
                layer.width,
                super::page_note(state.pictures.feature_geom.as_ref(), "channels")
            )),
            Span::styled(dead_text, Style::new().fg(Color::Red)),
            Span::raw(" "),
        ])),
        a.grid_block,
    );
    picture::draw(
        frame,
        gfx,
        state.color_depth,
        Slot::FeatureGrid,
        a.grid,
        &state.pictures.feature_grid,
    );

    let is_dead = levels.get(state.channel).is_some_and(|l| l.dead);
    let title = if is_dead {
        Line::from(vec![
            Span::raw(format!(
                " channel {}/{} ",
                state.channel + 1,
                layer.channels
            )),
            Span::styled(
                "dead (constant) ",
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ),
        ])
    } else {
        Line::raw(format!(
            " channel {}/{} ",
            state.channel + 1,
            layer.channels
        ))
    };
    let plane = layer.height * layer.width;
    let raw = layer
        .data
        .get(state.channel * plane..(state.channel + 1) * plane)
        .unwrap_or(&[]);
    let (lo, hi, sum) = raw.iter().filter(|v| v.is_finite()).fold(
        (f32::INFINITY, f32::NEG_INFINITY, 0.0_f64),
        |(lo, hi, sum), &v| (lo.min(v), hi.max(v), sum + f64::from(v)),
    );
    let stats = if raw.is_empty() || lo > hi {
        String::new()
    } else {
        format!(" {lo:.2}…{hi:.2} mean {:.2} ", sum / raw.len() as f64)
    };
    frame.render_widget(
        Block::bordered()
            .title(title)
            .title_bottom(Line::styled(stats, Style::new().fg(Color::DarkGray))),
        a.zoom_block,
    );
    picture::draw(
        frame,
        gfx,
        state.color_depth,
        Slot::ChannelZoom,
        a.zoom,
        &state.pictures.channel_zoom,
    );
}

/// The probe's title: its file name, with its folder when the folder is a class (an image of
/// the dataset: `5-sandal/00008.png`), and that class's index as the image's true label.
fn probe_title(snap: &FeatureSnapshot, classes: Option<&[String]>) -> (String, Option<usize>) {
    let file = snap.image.file_name().map_or_else(
        || snap.image.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let folder = snap
        .image
        .parent()
        .and_then(|p| p.file_name())
        .map(|f| f.to_string_lossy().into_owned());
    match folder.and_then(|f| Some((classes?.iter().position(|c| *c == f)?, f))) {
        Some((label, folder)) => (format!("{folder}/{file}"), Some(label)),
        None => (file, None),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn a_dataset_image_is_titled_with_its_class_folder_and_labelled() {
        let classes = ["blobs".to_string(), "stripes".to_string()];
        let snap = |p: &str| FeatureSnapshot {
            image: PathBuf::from(p),
            ..FeatureSnapshot::default()
        };
        assert_eq!(
            probe_title(&snap("/d/val/stripes/s_01.png"), Some(&classes)),
            ("stripes/s_01.png".to_string(), Some(1))
        );
        // A folder that is no class (the bundled photos), or no classes known yet.
        assert_eq!(
            probe_title(&snap("/run/samples/cat.jpg"), Some(&classes)),
            ("cat.jpg".to_string(), None)
        );
        assert_eq!(
            probe_title(&snap("/d/val/stripes/s_01.png"), None),
            ("s_01.png".to_string(), None)
        );
        assert_eq!(
            probe_title(&snap("x.png"), Some(&classes)),
            ("x.png".to_string(), None)
        );
    }
}
