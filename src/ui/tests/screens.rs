//! Screen tests: `TestBackend` snapshots of every tab in its empty, training, failed and tiny
//! states, layouts at narrow sizes, and colour checks on the heatmaps.

use super::*;

#[test]
fn with_more_than_two_classes_the_runners_up_are_shown() {
    let mut s = training_state();
    if let Some(start) = s.start.as_mut() {
        start.classes = ["bag", "boot", "coat", "dress"].map(String::from).to_vec();
    }
    let mut maps = fixtures::small_features();
    maps.probabilities = vec![0.1, 0.6, 0.25, 0.05];
    maps.predicted = 1;
    maps.probability = 0.6;
    s.apply(Event::FeatureMaps(Box::new(maps)));
    press(&mut s, "4");
    let text = format!("{}", draw(&s, 200, 50).backend());
    assert!(text.contains(" boot 60.0% coat 25.0% bag 10.0% "), "{text}");
    // Two classes: the other one is 1 - p, not worth the room.
    let mut s = training_state();
    press(&mut s, "4");
    let text = format!("{}", draw(&s, 200, 50).backend());
    assert!(!text.contains("12.7%"), "{text}");
}

fn snapshot_all(name: &str, state: &mut AppState, w: u16, h: u16) {
    state.resize(w, h);
    for tab in Tab::ALL {
        state.tab = tab;
        let t = draw(state, w, h);
        insta::assert_snapshot!(
            format!("{name}_{}", tab.title().replace(' ', "_").to_lowercase()),
            t.backend()
        );
    }
}

#[test]
fn snapshots_empty() {
    snapshot_all("empty", &mut new_state(), 100, 30);
}

#[test]
fn snapshots_training() {
    snapshot_all("training", &mut training_state(), 100, 30);
}

#[test]
fn snapshots_failed() {
    let mut s = training_state();
    s.apply(fixtures::failed());
    snapshot_all("failed", &mut s, 100, 30);
}

#[test]
fn snapshots_tiny() {
    snapshot_all("tiny", &mut training_state(), 30, 8);
}

#[test]
fn quit_prompt_and_stopping_are_on_screen() {
    let mut s = training_state();
    press(&mut s, "q");
    let t = draw(&s, 100, 30);
    insta::assert_snapshot!("prompt_quit", t.backend());
    press(&mut s, "y");
    let t = draw(&s, 100, 30);
    let text = format!("{}", t.backend());
    assert!(text.contains("stopping, writing checkpoint"), "{text}");
}

#[test]
fn a_narrow_tab_bar_keeps_the_phase_whole_and_drops_the_title() {
    let mut s = training_state();
    s.title = "convscope · /home/someone/runs/a-long-run-name".into();
    let first_line = |w: u16| {
        let t = draw(&s, w, 30);
        let text = format!("{}", t.backend());
        let line = text.lines().next().unwrap_or_default();
        line.trim_matches('"').trim_end().to_string()
    };
    let wide = first_line(140);
    assert!(wide.ends_with("a-long-run-name ● running"), "{wide}");
    for w in [80, 100] {
        let line = first_line(w);
        assert!(line.ends_with("● running"), "{w}: {line}");
        assert!(!line.contains("run-name"), "no half title: {line}");
    }
    // Without room for the phase either, the tab bar is left alone.
    let narrow = first_line(64);
    assert!(narrow.ends_with("5 Help │"), "{narrow}");
}

#[test]
fn the_training_header_wraps_on_a_narrow_terminal_instead_of_losing_its_ends() {
    let s = training_state();
    let text = |w: u16| {
        let t = draw(&s, w, 30);
        format!("{}", t.backend())
            .lines()
            .take(5)
            .map(|l| l.trim_matches('"').trim_end().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    for w in [80, 60, 200] {
        let head = text(w);
        for fact in ["classes", "last checkpoint epoch-0002", "acc 0."] {
            assert!(head.contains(fact), "{w} columns: {fact} in {head}");
        }
    }
}

#[test]
fn help_wraps_and_scrolls_on_a_small_terminal() {
    let mut s = training_state();
    s.resize(80, 24);
    press(&mut s, "5");
    let screen = |s: &AppState| format!("{}", draw(s, 80, 24).backend());
    let top = screen(&s);
    assert!(top.contains("Keys · ↓ more"), "{top}");
    assert!(!top.contains("probe an image by path"), "{top}");
    // A description longer than its column wraps onto a second line instead of being cut.
    assert!(top.contains("next epoch (past the  "), "{top}");
    assert!(top.contains("  newest: follow training)"), "{top}");
    // Scroll to the end, and past it: the last key shows, and one line up moves at once.
    for _ in 0..10 {
        s.handle_key(code(KeyCode::PageDown));
    }
    let bottom = screen(&s);
    assert!(bottom.contains("probe an image by path"), "{bottom}");
    assert!(
        bottom.contains("↑ more") && !bottom.contains("↓ more"),
        "{bottom}"
    );
    let end = s.help_scroll;
    press(&mut s, "k");
    assert_eq!(s.help_scroll, end - 1);
    press(&mut s, "K");
    press(&mut s, "K");
    assert_eq!(s.help_scroll, 0);
    assert_eq!(screen(&s), top);
}

fn cell_colours(t: &Terminal<TestBackend>, area: Rect) -> Vec<(Color, Color)> {
    let buf = t.backend().buffer();
    let mut v = Vec::new();
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            let c = &buf[(x, y)];
            if c.symbol() == "▀" {
                v.push((c.fg, c.bg));
            }
        }
    }
    v
}

#[test]
fn heatmap_cells_are_the_viridis_colours_of_normalised_weights() {
    let mut s = new_state();
    s.color_depth = ColorDepth::TrueColor;
    // One filter, one channel, 2×2 weights: layer min-max gives 0, 1/3, 2/3, 1.
    s.apply(Event::Filters(Box::new(FilterSnapshot {
        epoch: 1,
        at_epoch_end: false,
        layers: vec![LayerFilters {
            name: "conv2d".into(),
            out_channels: 1,
            in_channels: 1,
            kernel: [2, 2],
            weights: vec![-1.0, 0.0, 1.0, 2.0],
        }],
    })));
    s.tab = Tab::Filters;
    let t = draw(&s, 100, 30);
    let area =
        crate::ui::tabs::filters::areas(&s, crate::ui::render::body_area(Rect::new(0, 0, 100, 30)));
    let colours = cell_colours(&t, area.grid);
    let used: HashSet<Color> = colours.iter().flat_map(|&(f, b)| [f, b]).collect();
    for (i, t) in [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0].into_iter().enumerate() {
        let want = to_color(
            colormap::color(ColormapName::Viridis, t),
            ColorDepth::TrueColor,
        );
        assert!(
            used.contains(&want),
            "weight {i} ({t}) not drawn as {want:?}: {used:?}"
        );
    }
    // One weight fills whole cells: the upper-left weight's colour covers a block of cells.
    let first = to_color(
        colormap::color(ColormapName::Viridis, 0.0),
        ColorDepth::TrueColor,
    );
    let full = colours
        .iter()
        .filter(|&&(f, b)| f == first && b == first)
        .count();
    assert!(full >= 4, "{full}");
}

#[test]
fn filter_grid_has_many_distinct_colours_and_palette_fallback_works() {
    let mut s = training_state();
    s.tab = Tab::Filters;
    s.color_depth = ColorDepth::TrueColor;
    let t = draw(&s, 100, 30);
    let a =
        crate::ui::tabs::filters::areas(&s, crate::ui::render::body_area(Rect::new(0, 0, 100, 30)));
    let distinct: HashSet<Color> = cell_colours(&t, a.grid)
        .into_iter()
        .flat_map(|(f, b)| [f, b])
        .collect();
    assert!(distinct.len() > 60, "{}", distinct.len());
    assert!(
        distinct
            .iter()
            .all(|c| matches!(c, Color::Rgb(..) | Color::Reset))
    );
    s.color_depth = ColorDepth::Palette256;
    let t = draw(&s, 100, 30);
    let cells = cell_colours(&t, a.grid);
    assert!(!cells.is_empty());
    assert!(cells.iter().all(|(f, _)| matches!(f, Color::Indexed(_))));
}

#[test]
fn dead_channel_is_flat_and_marked() {
    let mut s = training_state();
    s.tab = Tab::Features;
    press(&mut s, "jj"); // channel index 2 of conv2d is dead
    let t = draw(&s, 100, 30);
    let text = format!("{}", t.backend());
    assert!(text.contains("dead: 3"), "{text}");
    assert!(text.contains("dead (constant)"), "{text}");
    let a = crate::ui::tabs::features::areas(
        &s,
        crate::ui::render::body_area(Rect::new(0, 0, 100, 30)),
    );
    let flat = to_color(
        colormap::color_u8(ColormapName::Viridis, 128),
        ColorDepth::TrueColor,
    );
    let zoom = cell_colours(&t, a.zoom);
    assert!(!zoom.is_empty());
    assert!(
        zoom.iter()
            .all(|&(f, b)| f == flat && (b == flat || b == Color::Reset))
    );
}

#[test]
fn bench_render_reports_every_tab() {
    let r = crate::ui::bench_render(3);
    assert_eq!(r.len(), 7);
    assert!(r.iter().all(|t| t.samples > 0 && t.p50 <= t.p99));
}

#[test]
fn skipped_images_are_counted_in_the_header() {
    let mut s = new_state();
    s.apply(Event::Started(Box::new(crate::events::StartInfo {
        skipped_images: 2,
        ..fixtures::start_info()
    })));
    let screen = format!("{}", draw(&s, 160, 30).backend());
    assert!(
        screen.contains("2 unreadable images skipped (classes.json)"),
        "{screen}"
    );
    let mut clean = new_state();
    clean.apply(Event::Started(Box::new(fixtures::start_info())));
    let screen = format!("{}", draw(&clean, 160, 30).backend());
    assert!(!screen.contains("skipped"), "{screen}");
}

#[test]
fn gpu_kernel_tuning_is_said_until_the_first_batch() {
    use crate::events::{RunState, StatusChange};
    let mut s = new_state();
    s.apply(Event::Started(Box::new(fixtures::start_info())));
    s.apply(Event::Status(StatusChange {
        state: RunState::Tuning,
    }));
    assert_eq!(s.phase, Phase::Tuning);
    let screen = format!("{:?}", draw(&s, 100, 30).backend().buffer());
    assert!(screen.contains("tuning GPU kernels"), "{screen}");
    s.apply(Event::Status(StatusChange {
        state: RunState::Running,
    }));
    let screen = format!("{:?}", draw(&s, 100, 30).backend().buffer());
    assert!(!screen.contains("tuning GPU kernels"));
}
