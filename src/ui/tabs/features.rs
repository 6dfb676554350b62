//! Feature maps tab: the probe image beside every channel of one layer, one channel zoomed.

use ratatui::Frame;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::Scene;
use crate::events::{CamMap, FeatureSnapshot, LayerMaps};
use crate::ui::picture;
use crate::ui::state::CamView;
use crate::ui::vocab::Slot;
use crate::viz::colormap;

/// Draw the Feature maps tab.
pub fn render(scene: Scene<'_>, frame: &mut Frame) {
    let (state, a) = (scene.state, &scene.layout.features);
    let dim = Style::new().fg(Color::DarkGray);
    let Some(snap) = state.features() else {
        frame.render_widget(Line::styled(" Feature maps", dim), a.header);
        let n = state.start().map_or(0, |s| s.probe_images.len());
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
            state.feature_layer_index(),
            format!(
                "│ (x-mean)/std·64+128{} │ {} │ epoch {}{}",
                state
                    .pinned_scale()
                    .filter(|_| state.compare_image().is_none())
                    .map_or_else(String::new, |p| format!(" at epoch {}'s scale", p.epoch)),
                colormap::name(state.colormap()),
                snap.epoch,
                cam_note(state.cam()) + &compare_note(scene)
            ),
            a.header.width,
        ),
        a.header,
    );

    render_probe(scene, snap, frame);
    let Some(layer) = state.feature_layer() else {
        return;
    };
    render_grid(scene, layer, frame);
    render_zoom(scene, layer, frame);
}

/// The probe image, titled with its file, and the prediction under it.
fn render_probe(scene: Scene<'_>, snap: &FeatureSnapshot, frame: &mut Frame) {
    let Scene {
        state,
        pictures,
        gfx,
        layout,
    } = scene;
    let a = &layout.features;
    let dim = Style::new().fg(Color::DarkGray);
    let name = |i: usize| {
        state
            .start()
            .and_then(|s| s.classes.get(i))
            .map_or_else(|| format!("class {i}"), Clone::clone)
    };
    let (file, label) = probe_title(snap, state.start().map(|s| &s.classes[..]));
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
    let cam = state.cam();
    let shown = snap.cam.as_ref().filter(|_| cam.on);
    let title = match shown {
        Some(c) => Line::styled(
            format!(" {} ", cam_caption(c, &name(c.class))),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        None if cam.on => Line::raw(format!(" {file} · Grad-CAM… ")),
        None if state.compare_image().is_some() => Line::raw(format!(" A {file} ")),
        None => Line::raw(format!(" {file} ")),
    };
    frame.render_widget(
        Block::bordered()
            .title(title)
            .title_bottom(Line::from(prediction)),
        a.probe_block,
    );
    if let Some(c) = shown.filter(|c| !c.has_evidence()) {
        frame.render_widget(
            Paragraph::new(format!(
                "no positive evidence for {} at {}",
                name(c.class),
                c.layer
            ))
            .wrap(Wrap { trim: true }),
            a.probe,
        );
        return;
    }
    picture::draw(
        frame,
        gfx,
        state.color_depth(),
        Slot::Probe,
        a.probe,
        &pictures.probe,
    );
}

/// The Grad-CAM pane's caption: the layer, the class explained and its probability.
fn cam_caption(cam: &CamMap, class: &str) -> String {
    format!(
        "Grad-CAM {} · {class} {:.1}%",
        cam.layer,
        cam.probability * 100.0
    )
}

/// The overlay's settings for the header, while it is on.
fn cam_note(cam: CamView) -> String {
    if cam.on {
        format!(
            " │ Grad-CAM {} image {}",
            cam.colormap.name(),
            cam.weight.name()
        )
    } else {
        String::new()
    }
}

/// The comparison in the header, while comparing: B's file and the channels' order.
fn compare_note(scene: Scene<'_>) -> String {
    let state = scene.state;
    let Some(chosen) = state.compare_image() else {
        return String::new();
    };
    // The image B's maps are of, once they are here.
    let b = state
        .features()
        .and_then(|f| f.compare.as_ref())
        .map_or(chosen, |c| c.image.as_path());
    let file = b.file_name().map_or_else(
        || b.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let order = state.compare_order();
    let waiting = if scene.pictures.compared.is_none() {
        " (B's maps on their way)"
    } else {
        ""
    };
    let fallback = match (order, scene.pictures.compared.as_ref()) {
        (crate::viz::compare::Order::Selectivity, Some(c))
            if c.rows.iter().all(|r| r.selectivity.is_none()) =>
        {
            " (no class means for this layer: in order)"
        }
        _ => "",
    };
    format!(
        " │ compare B {file}: {}{fallback}{waiting}",
        order_label(order)
    )
}

/// How the channels are ordered while comparing, in words.
fn order_label(order: crate::viz::compare::Order) -> &'static str {
    use crate::viz::compare::Order;
    match order {
        Order::Diff => "by diff",
        Order::Selectivity => "by selectivity",
        Order::Natural => "in order",
    }
}

/// Every channel of the layer, with the dead ones listed in the title.
fn render_grid(scene: Scene<'_>, layer: &LayerMaps, frame: &mut Frame) {
    let Scene {
        state,
        pictures,
        gfx,
        layout,
    } = scene;
    let a = &layout.features;
    if pictures.compared.is_some() {
        frame.render_widget(
            Block::bordered().title(format!(
                " {} · A · {} channels {} · one scale per channel for A and B{} ",
                layer.name,
                layer.channels,
                order_label(state.compare_order()),
                super::page_note(pictures.feature_geom.as_ref(), "channels")
            )),
            a.grid_block,
        );
        picture::draw(
            frame,
            gfx,
            state.color_depth(),
            Slot::FeatureGrid,
            a.grid,
            &pictures.feature_grid,
        );
        return;
    }
    let levels = &pictures.levels;
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
                super::page_note(pictures.feature_geom.as_ref(), "channels")
            )),
            Span::styled(dead_text, Style::new().fg(Color::Red)),
            Span::raw(" "),
        ])),
        a.grid_block,
    );
    picture::draw(
        frame,
        gfx,
        state.color_depth(),
        Slot::FeatureGrid,
        a.grid,
        &pictures.feature_grid,
    );
}

/// The selected channel, with its range and mean.
fn render_zoom(scene: Scene<'_>, layer: &LayerMaps, frame: &mut Frame) {
    let Scene {
        state, pictures, ..
    } = scene;
    if let Some(c) = &pictures.compared {
        render_compare_zoom(scene, layer, c, frame);
        return;
    }
    if let Some(d) = &pictures.epoch_diff {
        render_epoch_zoom(scene, layer, d, frame);
        return;
    }
    let levels = &pictures.levels;
    let is_dead = levels.get(state.channel()).is_some_and(|l| l.dead);
    let title = if is_dead {
        Line::from(vec![
            Span::raw(format!(
                " channel {}/{} ",
                state.channel() + 1,
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
            state.channel() + 1,
            layer.channels
        ))
    };
    let plane = layer.height * layer.width;
    let raw = layer
        .data
        .get(state.channel() * plane..(state.channel() + 1) * plane)
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
    draw_zoom(scene, title, stats, frame);
}

/// The selected channel as three panes, A | B | A−B, with the channel's means, its largest
/// |A−B| and its class selectivity.
fn render_compare_zoom(
    scene: Scene<'_>,
    layer: &LayerMaps,
    c: &crate::viz::compare::Layer,
    frame: &mut Frame,
) {
    use crate::viz::compare::Pane;
    let state = scene.state;
    let Some(row) = c.rows.get(state.channel()) else {
        return;
    };
    let title = format!(
        " channel {}/{} · {} | {} | {} ",
        row.channel + 1,
        layer.channels,
        Pane::A.caption(),
        Pane::B.caption(),
        Pane::Diff.caption()
    );
    let class = |k: usize| {
        state
            .start()
            .and_then(|s| s.classes.get(k))
            .map_or_else(|| format!("class {k}"), Clone::clone)
    };
    let selectivity = row.selectivity.map_or_else(String::new, |s| {
        format!(" · selectivity {:.2} ({})", s.index, class(s.preferred))
    });
    let stats = format!(
        " mean A {:.3} B {:.3} · max|A-B| {:.3}{selectivity} ",
        row.mean_a,
        row.mean_b,
        c.diff_max.get(row.channel).copied().unwrap_or(0.0)
    );
    draw_zoom(scene, title, stats, frame);
}

/// The selected channel at the pinned epoch, at the shown one (both at the pinned scale) and
/// shown − pinned, with both means and the largest difference.
fn render_epoch_zoom(
    scene: Scene<'_>,
    layer: &LayerMaps,
    d: &crate::ui::pictures::EpochDiff,
    frame: &mut Frame,
) {
    let state = scene.state;
    let c = state.channel();
    let (then, now) = d.epochs;
    let title = format!(
        " channel {}/{} · epoch {then} | epoch {now} | {now} − {then} ",
        c + 1,
        layer.channels
    );
    let (mean_then, mean_now) = d.means.get(c).copied().unwrap_or_default();
    let stats = format!(
        " mean {mean_then:.3} → {mean_now:.3} · max|{now}−{then}| {:.3} ",
        d.diff_max.get(c).copied().unwrap_or(0.0)
    );
    draw_zoom(scene, title, stats, frame);
}

/// The zoom pane: its frame titled `title` with `stats` at the bottom, and the channel's picture.
fn draw_zoom<'t>(scene: Scene<'_>, title: impl Into<Line<'t>>, stats: String, frame: &mut Frame) {
    let Scene {
        state,
        pictures,
        gfx,
        layout,
    } = scene;
    let a = &layout.features;
    frame.render_widget(
        Block::bordered()
            .title(title)
            .title_bottom(Line::styled(stats, Style::new().fg(Color::DarkGray))),
        a.zoom_block,
    );
    picture::draw(
        frame,
        gfx,
        state.color_depth(),
        Slot::ChannelZoom,
        a.zoom,
        &pictures.channel_zoom,
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
