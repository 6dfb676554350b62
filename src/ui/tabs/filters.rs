//! Filters tab: every filter of a conv layer as heatmaps, the selected one zoomed with its
//! weights, and the first layer's filters as RGB patches.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};

use crate::config::FilterNorm;
use crate::ui::graphics::{Graphics, Slot};
use crate::ui::picture;
use crate::ui::pictures::Pic;
use crate::ui::state::AppState;
use crate::viz::colormap;

/// Where the parts of the Filters tab go.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    pub header: Rect,
    pub grid_block: Rect,
    pub grid: Rect,
    pub zoom_block: Rect,
    pub zoom: Rect,
    pub numbers: Rect,
    pub rgb_block: Option<Rect>,
    pub rgb: Option<Rect>,
}

/// Lay out the Filters tab in `body`.
#[must_use]
pub fn areas(state: &AppState, body: Rect) -> Areas {
    let [header, main] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(body);
    let [grid_block, side] =
        Layout::horizontal([Constraint::Percentage(64), Constraint::Percentage(36)]).areas(main);
    let has_rgb = state.filter_layer().is_some_and(|l| l.in_channels == 3);
    let (zoom_block, numbers, rgb_block) = if has_rgb {
        let [z, n, r] = Layout::vertical([
            Constraint::Percentage(30),
            Constraint::Min(5),
            Constraint::Percentage(30),
        ])
        .areas(side);
        (z, n, Some(r))
    } else {
        let [z, n] = Layout::vertical([Constraint::Percentage(35), Constraint::Min(5)]).areas(side);
        (z, n, None)
    };
    let inner = |r: Rect| Block::bordered().inner(r);
    Areas {
        header,
        grid_block,
        grid: inner(grid_block),
        zoom_block,
        zoom: inner(zoom_block),
        numbers,
        rgb_block,
        rgb: rgb_block.map(inner),
    }
}

/// The pictures this tab draws, and where.
#[must_use]
pub fn slots(state: &AppState, body: Rect) -> Vec<(Slot, Rect, &Pic)> {
    if state.filter_layer().is_none() {
        return Vec::new();
    }
    let a = areas(state, body);
    let p = &state.pictures;
    let mut v = vec![
        (Slot::FilterGrid, a.grid, &p.filter_grid),
        (Slot::FilterZoom, a.zoom, &p.filter_zoom),
    ];
    if let (Some(r), Some(pic)) = (a.rgb, p.filter_rgb.as_ref()) {
        v.push((Slot::FilterRgb, r, pic));
    }
    v
}

/// Draw the Filters tab.
pub fn render(state: &AppState, gfx: &Graphics, frame: &mut Frame, area: Rect) {
    let a = areas(state, area);
    let dim = Style::new().fg(Color::DarkGray);
    let Some(snap) = state.filters.as_ref() else {
        frame.render_widget(Line::styled(" Filters", dim), a.header);
        frame.render_widget(
            Paragraph::new(
                "No filters yet: a snapshot arrives when the trainer starts, at each epoch end, \
                 and when you press r.",
            )
            .style(dim)
            .wrap(ratatui::widgets::Wrap { trim: true })
            .block(Block::bordered().title(" Filters ")),
            a.grid_block,
        );
        return;
    };
    // Header: layer selector and modes.
    let norm = match state.filter_norm {
        FilterNorm::Layer => "min-max over layer",
        FilterNorm::Filter => "min-max per filter",
    };
    let norm = if state.colormap == crate::config::ColormapName::Diverging {
        format!("{norm}, symmetric about 0")
    } else {
        norm.to_string()
    };
    let names: Vec<&str> = snap.layers.iter().map(|l| l.name.as_str()).collect();
    frame.render_widget(
        super::layer_bar(
            &names,
            state.filter_layer,
            format!(
                "│ {norm} │ {} │ epoch {}",
                colormap::name(state.colormap),
                snap.epoch
            ),
            a.header.width,
        ),
        a.header,
    );
    let Some(layer) = state.filter_layer() else {
        return;
    };
    let [out, inp, kh, kw] = [
        layer.out_channels,
        layer.in_channels,
        layer.kernel[0],
        layer.kernel[1],
    ];
    frame.render_widget(
        Block::bordered().title(format!(
            " {} · {out} filters × {inp} input channels · {kh}×{kw}{} ",
            layer.name,
            super::page_note(state.pictures.filter_geom.as_ref(), "filters")
        )),
        a.grid_block,
    );
    picture::draw(
        frame,
        gfx,
        state.color_depth,
        Slot::FilterGrid,
        a.grid,
        &state.pictures.filter_grid,
    );
    frame.render_widget(
        Block::bordered().title(format!(" filter {}/{out} ", state.filter + 1)),
        a.zoom_block,
    );
    picture::draw(
        frame,
        gfx,
        state.color_depth,
        Slot::FilterZoom,
        a.zoom,
        &state.pictures.filter_zoom,
    );
    render_numbers(state, layer, frame, a.numbers);
    if let (Some(block), Some(inner), Some(pic)) =
        (a.rgb_block, a.rgb, state.pictures.filter_rgb.as_ref())
    {
        frame.render_widget(Block::bordered().title(" as RGB "), block);
        picture::draw(frame, gfx, state.color_depth, Slot::FilterRgb, inner, pic);
    }
}

fn render_numbers(
    state: &AppState,
    layer: &crate::events::LayerFilters,
    frame: &mut Frame,
    area: Rect,
) {
    let [_, inp, kh, kw] = [
        layer.out_channels,
        layer.in_channels,
        layer.kernel[0],
        layer.kernel[1],
    ];
    let per = inp * kh * kw;
    let weights = layer
        .weights
        .get(state.filter * per..(state.filter + 1) * per)
        .unwrap_or(&[]);
    let inner_h = usize::from(area.height.saturating_sub(2));
    let mut lines: Vec<Line> = Vec::new();
    for c in 0..inp {
        if lines.len() + kh + 1 > inner_h {
            lines.push(Line::styled(
                format!("… {} more input channels", inp - c),
                Style::new().fg(Color::DarkGray),
            ));
            break;
        }
        lines.push(Line::styled(
            format!("in {c}"),
            Style::new().fg(Color::DarkGray),
        ));
        for y in 0..kh {
            let row: Vec<String> = (0..kw)
                .map(|x| {
                    weights
                        .get((c * kh + y) * kw + x)
                        .map_or_else(String::new, |w| format!("{w:+.3}"))
                })
                .collect();
            lines.push(Line::raw(format!(" {}", row.join(" "))));
        }
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" weights ")),
        area,
    );
}
