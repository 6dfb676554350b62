//! Screen tests: `TestBackend` snapshots of every tab in its empty, training, failed and tiny
//! states, layouts at narrow sizes, and colour checks on the heatmaps.

use super::*;

#[test]
fn with_more_than_two_classes_the_runners_up_are_shown() {
    let mut s = training_state();
    s.arrange(|st| {
        if let Some(start) = st.start_mut() {
            start.classes = ["bag", "boot", "coat", "dress"].map(String::from).to_vec();
        }
    });
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

fn snapshot_all(name: &str, state: &mut App, w: u16, h: u16) {
    state.resize(w, h);
    for tab in Tab::ALL {
        state.arrange(|st| st.set_tab(tab));
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
    s.arrange(|st| st.set_title("convscope · /home/someone/runs/a-long-run-name"));
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
    assert!(narrow.ends_with("6 Help│"), "{narrow}");
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
    press(&mut s, "6");
    let screen = |s: &App| format!("{}", draw(s, 80, 24).backend());
    let top = screen(&s);
    assert!(top.contains("Keys · ↓ more"), "{top}");
    assert!(!top.contains("probe an image by path"), "{top}");
    // A description longer than its column wraps onto a second line instead of being cut.
    assert!(top.contains("quit (asks if training   "), "{top}");
    assert!(top.contains("             runs)  "), "{top}");
    // Scroll to the end, and past it: the last key shows, and one line up moves at once.
    for _ in 0..10 {
        s.handle_key(code(KeyCode::PageDown));
    }
    let bottom = screen(&s);
    assert!(bottom.contains("compare: off"), "{bottom}");
    assert!(
        bottom.contains("↑ more") && !bottom.contains("↓ more"),
        "{bottom}"
    );
    let end = s.state().help_scroll();
    press(&mut s, "k");
    assert_eq!(s.state().help_scroll(), end - 1);
    // Ten lines a press, stopping at the top.
    press(&mut s, "KKKK");
    assert_eq!(s.state().help_scroll(), 0);
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
    s.arrange(|st| st.set_color_depth(ColorDepth::TrueColor));
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
    s.arrange(|st| st.set_tab(Tab::Filters));
    let t = draw(&s, 100, 30);
    let area = s.layout().filters;
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
    s.arrange(|st| st.set_tab(Tab::Filters));
    s.arrange(|st| st.set_color_depth(ColorDepth::TrueColor));
    let t = draw(&s, 100, 30);
    let a = s.layout().filters;
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
    s.arrange(|st| st.set_color_depth(ColorDepth::Palette256));
    let t = draw(&s, 100, 30);
    let cells = cell_colours(&t, a.grid);
    assert!(!cells.is_empty());
    assert!(cells.iter().all(|(f, _)| matches!(f, Color::Indexed(_))));
}

#[test]
fn dead_channel_is_flat_and_marked() {
    let mut s = training_state();
    s.arrange(|st| st.set_tab(Tab::Features));
    press(&mut s, "jj"); // channel index 2 of conv2d is dead
    let t = draw(&s, 100, 30);
    let text = format!("{}", t.backend());
    assert!(text.contains("dead: 3"), "{text}");
    assert!(text.contains("dead (constant)"), "{text}");
    let a = s.layout().features;
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
    assert_eq!(r.len(), 8);
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
    assert_eq!(s.state().phase(), Phase::Tuning);
    let screen = format!("{:?}", draw(&s, 100, 30).backend().buffer());
    assert!(screen.contains("tuning GPU kernels"), "{screen}");
    s.apply(Event::Status(StatusChange {
        state: RunState::Running,
    }));
    let screen = format!("{:?}", draw(&s, 100, 30).backend().buffer());
    assert!(!screen.contains("tuning GPU kernels"));
}

/// A state with the tutorial network's filters and maps (16 first-layer maps of 150×150).
fn tutorial_state(w: u16, h: u16) -> App {
    let mut s = training_state();
    s.apply(Event::Filters(Box::new(fixtures::tutorial_filters())));
    s.apply(Event::FeatureMaps(Box::new(fixtures::tutorial_features())));
    s.arrange(|st| st.set_color_depth(ColorDepth::TrueColor));
    s.resize(w, h);
    s
}

/// Each cell of `area` as its two half-block pixels (upper, lower), row by row.
fn pixels_of(t: &Terminal<TestBackend>, area: Rect) -> Vec<Vec<Color>> {
    let buf = t.backend().buffer();
    let mut rows = Vec::new();
    for y in area.top()..area.bottom() {
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for x in area.left()..area.right() {
            let c = &buf[(x, y)];
            let drawn = c.symbol() == "▀";
            up.push(if drawn { c.fg } else { Color::Reset });
            down.push(if drawn { c.bg } else { Color::Reset });
        }
        rows.push(up);
        rows.push(down);
    }
    rows
}

/// On the drawn feature grid, every tile stands apart: the pixel rows and columns between
/// tiles are the gap colour (or a frame), and the selected and dead frames are drawn.
fn maps_stay_apart(w: u16, h: u16, selected: usize) {
    let mut s = tutorial_state(w, h);
    press(&mut s, "4");
    s.arrange(|st| st.set_channel(selected));
    s.resize(w + 1, h);
    s.resize(w, h);
    let t = draw(&s, w, h);
    let area = s.layout().features.grid;
    let raster = &s.pictures().feature_grid.raster;
    let g = s.pictures().feature_geom.expect("geometry");
    // The grid is made for the box: drawn at a whole factor, nothing is lost to scaling.
    let (fw, fh) = crate::ui::pictures::pixels(area, (1, 2));
    assert!(
        raster.width() <= fw && raster.height() <= fh,
        "{}×{} in {fw}×{fh}",
        raster.width(),
        raster.height()
    );
    assert!(g.tile_w >= 8 && g.tile_h >= 8, "{g:?}");
    let (cells, pw, _) = crate::ui::picture::placement(raster, area);
    let k = pw / raster.width();
    let px = pixels_of(&t, cells);
    let gap = to_color(crate::viz::pictures::BACKGROUND, ColorDepth::TrueColor);
    let frames = [
        to_color(crate::viz::pictures::SELECTED, ColorDepth::TrueColor),
        to_color(crate::viz::pictures::DEAD, ColorDepth::TrueColor),
    ];
    let is_gap = |c: &Color| *c == gap || frames.contains(c);
    let rows = g.count.div_ceil(g.columns);
    for col in 0..=g.columns {
        let x = col * (g.tile_w + g.gap) * k;
        for (y, row) in px.iter().enumerate().take(raster.height() * k) {
            assert!(
                is_gap(&row[x]),
                "{w}×{h}: gap column {col} at pixel row {y}: {:?}",
                row[x]
            );
        }
    }
    for r in 0..=rows {
        let y = r * (g.tile_h + g.gap) * k;
        assert!(
            px[y].iter().take(raster.width() * k).all(is_gap),
            "{w}×{h}: gap row {r}"
        );
    }
    let drawn: HashSet<Color> = px.iter().flatten().copied().collect();
    assert!(
        drawn.contains(&frames[0]),
        "{w}×{h}: the selected frame is drawn"
    );
    assert!(
        drawn.contains(&frames[1]),
        "{w}×{h}: the dead channel's frame is drawn"
    );
}

#[test]
fn feature_maps_keep_their_gaps_and_frames_at_every_size() {
    // The tutorial fixture's channel 6 of the first layer is dead; select another.
    for (w, h) in [(80, 24), (100, 30), (200, 60), (120, 40)] {
        maps_stay_apart(w, h, 2);
    }
}

#[test]
fn many_small_maps_are_paged_and_the_page_follows_the_selection() {
    let mut s = tutorial_state(80, 24);
    press(&mut s, "4ll"); // conv2d_1: 32 maps of 75×75
    let g = s.pictures().feature_geom.expect("geometry");
    assert!(g.paged(), "{g:?}");
    assert_eq!(g.first, 0);
    assert!(g.tile_w >= crate::viz::pictures::MIN_MAP_SIDE, "{g:?}");
    let text = format!("{}", draw(&s, 80, 24).backend());
    assert!(
        text.contains(&format!("channels 1–{} shown", g.count)),
        "{text}"
    );
    // Stepping past the page shows the next one, with the selected map on it.
    for _ in 0..g.count {
        press(&mut s, "j");
    }
    let g2 = s.pictures().feature_geom.expect("geometry");
    assert_eq!(g2.first, g.count);
    assert!((g2.first..g2.first + g2.count).contains(&s.state().channel()));
    // A click maps to the tile of the page shown.
    let area = s.layout().features.grid;
    let raster = s.pictures().feature_grid.raster.clone();
    let (col, row) = (area.left()..area.right())
        .flat_map(|x| (area.top()..area.bottom()).map(move |y| (x, y)))
        .find(|&(x, y)| {
            crate::ui::picture::pixel_at(&raster, area, x, y)
                .and_then(|(px, py)| g2.tile_at(px, py))
                == Some(g2.first + 1)
        })
        .expect("the page's second tile on screen");
    s.handle_terminal(&TermEvent::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: col,
        row,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(s.state().channel(), g2.first + 1);
}

#[test]
fn snapshots_small_and_large_terminals() {
    // 80×24: the charts keep readable plots (the epoch table scrolls instead); the maps keep
    // their gaps. 200×60: every tab at a large size.
    for (w, h) in [(80, 24), (200, 60)] {
        let mut s = tutorial_state(w, h);
        for tab in [Tab::Training, Tab::Filters, Tab::Features] {
            s.arrange(|st| st.set_tab(tab));
            let t = draw(&s, w, h);
            insta::assert_snapshot!(
                format!(
                    "size_{w}x{h}_{}",
                    tab.title().replace(' ', "_").to_lowercase()
                ),
                t.backend()
            );
        }
    }
}

#[test]
fn charts_keep_readable_plots_at_80_by_24() {
    let mut s = state_with_epochs(20);
    press(&mut s, "1");
    s.resize(80, 24);
    let t = draw(&s, 80, 24);
    let buf = t.backend().buffer();
    // The loss chart's border: its top and bottom corners in the left column.
    let corners: Vec<u16> = (0..24)
        .filter(|&y| matches!(buf[(0, y)].symbol(), "┌" | "└"))
        .collect();
    // Chart box, then the epoch table's box.
    assert!(corners.len() >= 2, "{corners:?}");
    let chart_rows = corners[1] - corners[0] - 1;
    // Inside the border the x axis takes two rows; the plot needs at least 6.
    assert!(chart_rows >= 8, "chart {chart_rows} rows: {}", t.backend());
}

/// Unit health of three epochs: `conv2d` loses units (filter 1 dead by its weights, filter 10
/// dead on the data), `conv2d_1` stays healthy, `dense` has a few dormant units.
fn health_fixture() -> crate::events::health::HealthSnapshot {
    use crate::events::health::{ChannelHealth, EpochHealth, HISTOGRAM_BINS, LayerHealth};
    let unit = |on_rate: f64, by_weights: bool| ChannelHealth {
        on_rate,
        mean: on_rate,
        std: 0.5,
        max: 2.0,
        mean_abs: on_rate,
        dead_by_weights: by_weights,
    };
    let layer = |name: &str, units: usize, dead: &[usize], pct: [f64; 3]| LayerHealth {
        name: name.into(),
        units,
        dead_pct: pct[0],
        dormant_pct: pct[1],
        always_on_pct: pct[2],
        on_rate_histogram: [0; HISTOGRAM_BINS],
        weight_rule: if name == "conv2d" {
            "sum(w+) x 1 + b <= 0".into()
        } else {
            String::new()
        },
        channels: (0..units)
            .map(|i| {
                if dead.contains(&i) {
                    unit(0.0, i == 0)
                } else {
                    unit(0.5, false)
                }
            })
            .collect(),
        top: Vec::new(),
        class_means: Vec::new(),
    };
    let mut snap = crate::events::health::HealthSnapshot::default();
    for (epoch, dead) in [(1, 0.0), (2, 6.25), (3, 12.5)] {
        let dead_units: &[usize] = if epoch == 3 { &[0, 9] } else { &[0] };
        snap.push(EpochHealth {
            epoch,
            images: 40,
            layers: vec![
                layer("conv2d", 16, dead_units, [dead, dead, 6.25]),
                layer("conv2d_1", 32, &[], [0.0, 3.1, 0.0]),
                layer("dense", 512, &[], [0.0, 1.2, 0.0]),
            ],
            output_saturated_pct: 12.5,
        });
    }
    snap
}

#[test]
fn model_and_filters_tabs_show_unit_health() {
    let mut s = training_state();
    s.apply(Event::Health(Box::new(health_fixture())));
    s.resize(100, 30);
    for tab in [Tab::Model, Tab::Filters] {
        s.arrange(|st| st.set_tab(tab));
        let t = draw(&s, 100, 30);
        let text = format!("{}", t.backend());
        if tab == Tab::Model {
            // conv2d: 12.5 % dead now, rising over the three epochs.
            assert!(text.contains("12.5"), "{text}");
            assert!(text.contains("▁▂▂"), "{text}");
        } else {
            // The filters shown are epoch 2's, the newest validation epoch 3's: the marks
            // say so.
            assert!(text.contains("epoch 2"), "{text}");
            assert!(
                text.contains("conv2d · dead 1, 10 at epoch 3 · 16 filters"),
                "{text}"
            );
            assert!(text.contains("filter 1/16 · dead at epoch 3 (we"), "{text}");
            assert!(text.contains("dead at epoch 3: never > 0"), "{text}");
            assert!(text.contains("weights: sum(w+) x 1 + b <= 0"), "{text}");
        }
        insta::assert_snapshot!(
            format!("health_{}", tab.title().replace(' ', "_").to_lowercase()),
            t.backend()
        );
    }
    // The newest validation is of the epoch whose filters are shown: the marks need no epoch.
    let mut at_2 = health_fixture();
    let mut newest = at_2.epochs.pop().expect("three epochs");
    newest.epoch = 2;
    at_2.epochs = vec![newest];
    s.apply(Event::Health(Box::new(at_2)));
    let text = format!("{}", draw(&s, 100, 30).backend());
    assert!(text.contains("conv2d · dead 1, 10 · 16 filters"), "{text}");
    assert!(text.contains("filter 1/16 · dead (weights)"), "{text}");
    assert!(!text.contains("at epoch"), "{text}");
}
