//! One module per tab.

pub mod features;
pub mod filters;
pub mod help;
pub mod model;
pub mod training;
pub mod validation;

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::graphics::Graphics;
use super::layout::Layout;
use super::pictures::Pictures;
use super::state::AppState;

/// What a tab draws from: the state, its pictures, the graphics encoded for them, and where
/// everything goes.
#[derive(Clone, Copy)]
pub struct Scene<'a> {
    pub state: &'a AppState,
    pub pictures: &'a Pictures,
    pub gfx: &'a Graphics,
    pub layout: &'a Layout,
}

/// What a grid title adds when the grid shows a page of its tiles: which, and how to see the
/// others (`what`: "filters", "channels").
#[must_use]
pub fn page_note(geom: Option<&crate::viz::raster::Grid>, what: &str) -> String {
    match geom {
        Some(g) if g.paged() => format!(
            " · {what} {}–{} shown, PgUp/PgDn for the rest",
            g.first + 1,
            g.first + g.count
        ),
        _ => String::new(),
    }
}

/// A tab's name in the tab bar, or a layer's in a layer bar: the selected one highlighted.
#[must_use]
pub fn chip_style(selected: bool) -> Style {
    if selected {
        Style::new()
            .fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::new().fg(Color::Gray)
    }
}

/// The Filters and Feature maps tabs' header: the layer selector, then `info` (normalisation,
/// colormap, epoch). When it does not fit in `width`, `info` stays whole and the selector shows
/// the layers around the selected one, with ‹ › where layers are left out.
#[must_use]
pub fn layer_bar(names: &[&str], selected: usize, info: String, width: u16) -> Line<'static> {
    const LABEL: &str = " layer ";
    let dim = Style::new().fg(Color::DarkGray);
    let chip = |i: usize| format!(" {} ", names[i]);
    // A chip and the space after it.
    let chip_w = |i: usize| names[i].chars().count() + 3;
    let width = usize::from(width);
    let info_w = info.chars().count();
    let all: usize = (0..names.len()).map(chip_w).sum();
    let (mut lo, mut hi) = (0, names.len().saturating_sub(1));
    if LABEL.len() + all + info_w > width && selected < names.len() {
        // Room for the chips between "‹ " and "› ".
        let room = width.saturating_sub(LABEL.len() + info_w + 4);
        (lo, hi) = (selected, selected);
        let mut used = chip_w(selected);
        loop {
            let right = hi + 1 < names.len() && used + chip_w(hi + 1) <= room;
            if right {
                hi += 1;
                used += chip_w(hi);
            }
            let left = lo > 0 && used + chip_w(lo - 1) <= room;
            if left {
                lo -= 1;
                used += chip_w(lo);
            }
            if !left && !right {
                break;
            }
        }
    }
    let mut spans = vec![Span::styled(LABEL, dim)];
    if lo > 0 {
        spans.push(Span::styled("‹ ", dim));
    }
    // No layers (an empty snapshot): the label and the info alone.
    let shown = if names.is_empty() { 0..0 } else { lo..hi + 1 };
    for i in shown {
        spans.push(Span::styled(chip(i), chip_style(i == selected)));
        spans.push(Span::raw(" "));
    }
    if hi + 1 < names.len() {
        spans.push(Span::styled("› ", dim));
    }
    spans.push(Span::styled(info, dim));
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::layer_bar;

    fn text(l: &ratatui::text::Line<'_>) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn a_narrow_layer_bar_keeps_its_info_and_the_selected_layer() {
        let names = [
            "conv2d",
            "max_pooling2d",
            "conv2d_1",
            "max_pooling2d_1",
            "conv2d_2",
        ];
        let info = "│ viridis │ epoch 40".to_string();
        let wide = text(&layer_bar(&names, 0, info.clone(), 120));
        assert_eq!(
            wide,
            " layer  conv2d   max_pooling2d   conv2d_1   max_pooling2d_1   conv2d_2  │ viridis │ epoch 40"
        );
        for selected in 0..names.len() {
            let line = text(&layer_bar(&names, selected, info.clone(), 60));
            assert!(line.chars().count() <= 60, "{line}");
            assert!(line.ends_with("│ viridis │ epoch 40"), "{line}");
            assert!(line.contains(&format!(" {} ", names[selected])), "{line}");
            assert_eq!(line.contains('‹'), !line.contains(" conv2d  "), "{line}");
        }
        let last = text(&layer_bar(&names, 4, info.clone(), 60));
        assert!(last.contains("‹ ") && !last.contains('›'), "{last}");
        let first = text(&layer_bar(&names, 0, info.clone(), 60));
        assert!(first.contains("› ") && !first.contains('‹'), "{first}");
        assert_eq!(
            text(&layer_bar(&[], 0, info, 60)),
            " layer │ viridis │ epoch 40"
        );
    }
}
