//! Filters tab: every filter of a conv layer as heatmaps, the selected one zoomed with its
//! weights, and the first layer's filters as RGB patches. Filters that were never on over the
//! last validated epoch are marked dead, with the reason when their weights alone explain it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};

use super::Scene;
use crate::config::FilterNorm;
use crate::events::health::LayerHealth;
use crate::ui::picture;
use crate::ui::state::AppState;
use crate::ui::vocab::Slot;
use crate::viz::colormap;

/// Draw the Filters tab.
pub fn render(scene: Scene<'_>, frame: &mut Frame) {
    let Scene {
        state,
        pictures,
        gfx,
        layout,
    } = scene;
    let a = &layout.filters;
    let dim = Style::new().fg(Color::DarkGray);
    let Some(snap) = state.filters() else {
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
    let names: Vec<&str> = snap.layers.iter().map(|l| l.name.as_str()).collect();
    let info = looks_header(state).unwrap_or_else(|| weights_header(state, snap.epoch));
    frame.render_widget(
        super::layer_bar(&names, state.filter_layer_index(), info, a.header.width),
        a.header,
    );
    let Some(layer) = state.filter_layer() else {
        return;
    };
    let latest = state.health().and_then(|h| h.latest());
    let health = latest
        .and_then(|h| h.layer(&layer.name))
        .filter(|l| l.channels.len() == layer.out_channels);
    // The dead marks come from the newest validation; shown beside other weights (`[`/`]`,
    // or mid-epoch), they say which epoch's they are.
    let other = latest.map(|h| h.epoch).filter(|&e| e != snap.epoch);
    let [out, inp, kh, kw] = [
        layer.out_channels,
        layer.in_channels,
        layer.kernel[0],
        layer.kernel[1],
    ];
    let page = super::page_note(pictures.filter_geom.as_ref(), "filters");
    let title = looks_title(state, out).map_or_else(
        || {
            format!(
                " {}{} · {out} filters × {inp} input channels · {kh}×{kw}{page} ",
                layer.name,
                health.map_or_else(String::new, |l| dead_note(l, other)),
            )
        },
        |title| format!("{title}{page} "),
    );
    frame.render_widget(Block::bordered().title(title), a.grid_block);
    picture::draw(
        frame,
        gfx,
        state.color_depth(),
        Slot::FilterGrid,
        a.grid,
        &pictures.filter_grid,
    );
    let this = health.and_then(|l| l.channels.get(state.filter()));
    frame.render_widget(
        Block::bordered().title(zoom_title(this, state.filter(), out, other)),
        a.zoom_block,
    );
    picture::draw(
        frame,
        gfx,
        state.color_depth(),
        Slot::FilterZoom,
        a.zoom,
        &pictures.filter_zoom,
    );
    if state.looks().tier.is_some() {
        render_looks(state, frame, a.numbers);
    } else {
        render_numbers(state, layer, (health, other), frame, a.numbers);
    }
    if let (Some(block), Some(inner), Some(pic)) =
        (a.rgb_block, a.rgb, pictures.filter_rgb.as_ref())
    {
        frame.render_widget(Block::bordered().title(" as RGB "), block);
        picture::draw(frame, gfx, state.color_depth(), Slot::FilterRgb, inner, pic);
    }
}

/// The header's note for the raw weights: their normalisation, colormap and epoch.
fn weights_header(state: &AppState, epoch: usize) -> String {
    let norm = match state.filter_norm() {
        FilterNorm::Layer => "min-max over layer",
        FilterNorm::Filter => "min-max per filter",
    };
    let norm = if state.colormap() == crate::config::ColormapName::Diverging {
        format!("{norm}, symmetric about 0")
    } else {
        norm.to_string()
    };
    format!(
        "│ {norm} │ {} │ epoch {epoch}",
        colormap::name(state.colormap())
    )
}

/// The header's note in the "what it looks for" mode: the tier and the checkpoint used.
fn looks_header(state: &AppState) -> Option<String> {
    let want = state.looks_want()?;
    let checkpoint = state
        .looks_shown()
        .map_or_else(|| format!("epoch {}", want.epoch), |l| l.checkpoint.clone());
    Some(format!(
        "│ what it looks for · {} │ checkpoint {checkpoint}",
        want.tier.name()
    ))
}

/// The grid's title in the "what it looks for" mode: the job's progress, its error, or what
/// the images are (without the closing space, for the page note).
fn looks_title(state: &AppState, filters: usize) -> Option<String> {
    let want = state.looks_want()?;
    let tier = want.tier.name();
    if let Some(looks) = state.looks_shown() {
        let how = if looks.cached {
            "from the cache".to_string()
        } else {
            format!("made in {:.1} s", looks.seconds)
        };
        return Some(format!(
            " {} · what each filter looks for · {tier} · {} filters · {how}",
            want.layer,
            looks.filters.len()
        ));
    }
    if let Some(Err(_)) = state.looks().answer(&want) {
        return Some(format!(
            " {} · what it looks for: failed (see the right)",
            want.layer
        ));
    }
    let (done, steps) = state
        .looks()
        .running()
        .filter(|(w, _)| **w == want)
        .map_or((0, 0), |(_, p)| p.steps());
    let at = if steps == 0 {
        "loading the checkpoint".to_string()
    } else {
        format!("step {done}/{steps}")
    };
    Some(format!(
        " {} · what it looks for · {tier}: optimising {filters} filters, {at} · weights meanwhile",
        want.layer
    ))
}

/// The right-hand pane in the "what it looks for" mode: the selected filter's activations,
/// the recipe, or why there are no images.
fn render_looks(state: &AppState, frame: &mut Frame, area: Rect) {
    let dim = Style::new().fg(Color::DarkGray);
    let mut lines: Vec<Line> = Vec::new();
    let want = state.looks_want();
    let answer = want.as_ref().and_then(|w| state.looks().answer(w));
    match (want.as_ref(), answer) {
        (_, Some(Ok(looks))) => {
            if let Some(f) = looks.filters.get(state.filter()) {
                lines.push(Line::raw(format!("filter {}", f.filter + 1)));
                lines.push(Line::styled("mean activation", dim));
                lines.push(Line::raw(format!(" random start {:.3}", f.seed_activation)));
                lines.push(Line::raw(format!(" optimised    {:.3}", f.activation)));
                if !f.patches.is_empty() {
                    lines.push(Line::styled(
                        format!("zoom: + top-{} patches", f.patches.len()),
                        dim,
                    ));
                }
            }
            if let Some(note) = &looks.patches_note {
                lines.push(Line::styled(note.clone(), dim));
            }
            lines.push(Line::styled(
                format!("checkpoint {}", looks.checkpoint),
                dim,
            ));
            if let Some(note) = &looks.cache_note {
                lines.push(Line::styled(format!("not cached: {note}"), dim));
            }
        }
        (_, Some(Err(e))) => {
            lines.push(Line::styled(e.clone(), Style::new().fg(Color::Red)));
        }
        (Some(w), None) => {
            let tier = w.tier;
            lines.push(Line::raw(format!(
                "{} steps from a random image (seed {})",
                tier.default_steps(),
                crate::ui::looks::SEED
            )));
            if tier == crate::model::maximize::Tier::Regularised {
                lines.push(Line::styled(
                    "regularised: slow (minutes on a CPU); W: quick",
                    dim,
                ));
            }
        }
        (None, None) => {}
    }
    lines.push(Line::styled("w: raw weights", dim));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: true })
            .block(Block::bordered().title(" looks for ")),
        area,
    );
}

/// The zoomed filter's title, red and saying so when the filter is dead (at epoch `other`'s
/// validation when the weights shown are another epoch's).
fn zoom_title(
    health: Option<&crate::events::health::ChannelHealth>,
    filter: usize,
    out: usize,
    other: Option<usize>,
) -> Line<'static> {
    let red = Style::new().fg(Color::Red);
    let at = at_epoch(other);
    match health {
        Some(c) if c.on_rate <= 0.0 && c.dead_by_weights => Line::styled(
            format!(" filter {}/{out} · dead{at} (weights) ", filter + 1),
            red,
        ),
        Some(c) if c.on_rate <= 0.0 => {
            Line::styled(format!(" filter {}/{out} · dead{at} ", filter + 1), red)
        }
        _ => Line::raw(format!(" filter {}/{out} ", filter + 1)),
    }
}

/// " at epoch N" when the dead marks are another epoch's than the weights shown.
fn at_epoch(other: Option<usize>) -> String {
    other.map_or_else(String::new, |e| format!(" at epoch {e}"))
}

/// The grid title's note of the layer's dead filters (1-based), the first few; the epoch of
/// the validation they come from when it is not the one whose weights are shown.
fn dead_note(l: &LayerHealth, other: Option<usize>) -> String {
    const SHOWN: usize = 6;
    let dead = l.dead_units();
    if dead.is_empty() {
        return String::new();
    }
    let mut list: Vec<String> = dead
        .iter()
        .take(SHOWN)
        .map(|i| (i + 1).to_string())
        .collect();
    if dead.len() > SHOWN {
        list.push("…".into());
    }
    format!(" · dead {}{}", list.join(", "), at_epoch(other))
}

fn render_numbers(
    state: &AppState,
    layer: &crate::events::LayerFilters,
    (health, other): (Option<&LayerHealth>, Option<usize>),
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
        .get(state.filter() * per..(state.filter() + 1) * per)
        .unwrap_or(&[]);
    let inner_h = usize::from(area.height.saturating_sub(2));
    let mut lines: Vec<Line> = Vec::new();
    // Why a dead filter is dead, first: what the validation pass saw, and whether the
    // weights alone explain it.
    if let Some(c) = health.and_then(|l| l.channels.get(state.filter()))
        && c.on_rate <= 0.0
    {
        let red = Style::new().fg(Color::Red);
        // Narrow: the epoch, when it is said, takes the place of "(validation)".
        let why = other.map_or_else(
            || "dead: never > 0 (validation)".to_string(),
            |e| format!("dead at epoch {e}: never > 0"),
        );
        lines.push(Line::styled(why, red));
        if c.dead_by_weights {
            let rule = health.map_or("", |l| l.weight_rule.as_str());
            lines.push(Line::styled(format!("weights: {rule}"), red));
        }
    }
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
