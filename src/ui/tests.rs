//! State and key tests: key -> action -> state; the screens are in `screens`.

use std::collections::HashSet;
use std::path::PathBuf;

use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::style::Color;

use super::UiExit;
use super::fixtures;
use super::graphics::Graphics;
use super::picture::to_color;
use super::render::render;
use super::state::{AppState, ColorDepth, Phase, Prompt, Tab};
use crate::config::{ColormapName, FilterNorm, UiConfig};
use crate::events::{Command, Event, FilterSnapshot, FinishInfo, FinishReason, LayerFilters};
use crate::viz::colormap;
fn new_state() -> AppState {
    let mut s = AppState::new(
        &UiConfig::default(),
        "fixture".into(),
        PathBuf::from("runs/fixture"),
    );
    s.resize(100, 30);
    s
}

fn training_state() -> AppState {
    let mut s = new_state();
    for e in fixtures::history() {
        s.apply(e);
    }
    s.apply(Event::Filters(Box::new(fixtures::filters(
        &[("conv2d", [16, 3, 3, 3]), ("conv2d_1", [32, 16, 3, 3])],
        2,
    ))));
    s.apply(Event::FeatureMaps(Box::new(fixtures::small_features())));
    s
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn press(s: &mut AppState, keys: &str) -> Vec<Command> {
    keys.chars().flat_map(|c| s.handle_key(key(c))).collect()
}

fn draw(state: &AppState, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    t.draw(|f| render(state, &Graphics::halfblocks(), f))
        .expect("draws");
    t
}

// ---- state: key -> action -> state ----

#[test]
fn number_keys_tab_and_backtab_switch_tabs() {
    let mut s = new_state();
    press(&mut s, "3");
    assert_eq!(s.tab, Tab::Filters);
    s.handle_key(code(KeyCode::Tab));
    assert_eq!(s.tab, Tab::Features);
    s.handle_key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    s.handle_key(code(KeyCode::BackTab));
    assert_eq!(s.tab, Tab::Model);
    press(&mut s, "?");
    assert_eq!(s.tab, Tab::Help);
    s.handle_key(code(KeyCode::Tab));
    assert_eq!(s.tab, Tab::Training);
}

#[test]
fn clicking_the_tab_bar_selects_the_tab() {
    let mut s = new_state();
    let click = |column| {
        TermEvent::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row: 0,
            modifiers: KeyModifiers::NONE,
        })
    };
    // " 1 Training " is 12 wide, then "│", then " 2 Model " (9 wide).
    s.handle_terminal(&click(14));
    assert_eq!(s.tab, Tab::Model);
    s.handle_terminal(&click(2));
    assert_eq!(s.tab, Tab::Training);
    s.handle_terminal(&click(199));
    assert_eq!(s.tab, Tab::Training);
}

#[test]
fn clicking_a_tile_selects_that_filter_or_channel() {
    let mut s = training_state();
    let click = |column, row| {
        TermEvent::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    let body = super::render::body_area(Rect::new(0, 0, 100, 30));
    for (tab, want) in [(Tab::Filters, 5_usize), (Tab::Features, 6)] {
        s.tab = tab;
        // Find the cell of tile `want` through the same geometry the drawing uses.
        let (raster, geom, area) = if tab == Tab::Filters {
            let a = super::tabs::filters::areas(&s, body);
            (
                &s.pictures.filter_grid.raster,
                s.pictures.filter_geom.expect("geometry"),
                a.grid,
            )
        } else {
            let a = super::tabs::features::areas(&s, body);
            (
                &s.pictures.feature_grid.raster,
                s.pictures.feature_geom.expect("geometry"),
                a.grid,
            )
        };
        let cell = (area.left()..area.right())
            .flat_map(|x| (area.top()..area.bottom()).map(move |y| (x, y)))
            .find(|&(x, y)| {
                super::picture::pixel_at(raster, area, x, y)
                    .and_then(|(px, py)| geom.tile_at(px, py))
                    == Some(want)
            })
            .expect("tile on screen");
        s.handle_terminal(&click(cell.0, cell.1));
        let got = if tab == Tab::Filters {
            s.filter
        } else {
            s.channel
        };
        assert_eq!(got, want, "{tab:?}");
    }
    // A click outside any tile changes nothing.
    s.handle_terminal(&click(0, 29));
    assert_eq!(s.channel, 6);
}

#[test]
fn clicks_on_a_graphics_image_map_through_where_it_was_drawn() {
    // A sixel image scaled by a whole factor can be smaller than its box, centred in it, while
    // half blocks fill the box: a click must pick the tile that the image shows there.
    let mut s = training_state();
    s.tab = Tab::Features;
    let body = super::render::body_area(Rect::new(0, 0, 100, 30));
    let area = super::tabs::features::areas(&s, body).grid;
    let raster = s.pictures.feature_grid.raster.clone();
    let geom = s.pictures.feature_geom.expect("geometry");
    let shown = Rect::new(
        area.x + area.width / 4,
        area.y + area.height / 4,
        area.width / 2,
        area.height / 2,
    );
    s.shown = vec![(super::graphics::Slot::FeatureGrid, shown)];
    // A cell where the image shows the last channel and half blocks would show another tile.
    let want = geom.count - 1;
    let tile_of = |p: Option<(usize, usize)>| p.and_then(|(x, y)| geom.tile_at(x, y));
    let (col, row) = (shown.left()..shown.right())
        .flat_map(|x| (shown.top()..shown.bottom()).map(move |y| (x, y)))
        .find(|&(x, y)| {
            tile_of(super::picture::pixel_in(&raster, shown, x, y)) == Some(want)
                && tile_of(super::picture::pixel_at(&raster, area, x, y)) != Some(want)
        })
        .expect("a cell where the two mappings differ");
    s.handle_terminal(&TermEvent::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: col,
        row,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(s.channel, want);
}

#[test]
fn space_pauses_and_resumes_by_phase() {
    let mut s = training_state();
    assert_eq!(s.phase, Phase::Running);
    assert_eq!(press(&mut s, " "), vec![Command::Pause]);
    s.apply(Event::Status(crate::events::StatusChange {
        state: crate::events::RunState::Paused,
    }));
    assert_eq!(press(&mut s, " "), vec![Command::Resume]);
    assert_eq!(press(&mut s, "s"), vec![Command::CheckpointNow]);
}

#[test]
fn x_asks_before_stopping() {
    let mut s = training_state();
    assert!(press(&mut s, "x").is_empty());
    assert_eq!(s.prompt, Prompt::ConfirmStop);
    assert!(press(&mut s, "n").is_empty());
    assert_eq!(s.prompt, Prompt::None);
    assert_eq!(s.phase, Phase::Running);
    assert_eq!(press(&mut s, "xy"), vec![Command::Stop]);
    assert_eq!(s.phase, Phase::Stopping);
    assert_eq!(s.exit, None);
}

#[test]
fn q_while_running_asks_then_stops_and_waits_for_finished() {
    let mut s = training_state();
    assert!(press(&mut s, "q").is_empty());
    assert_eq!(s.prompt, Prompt::ConfirmQuit);
    assert_eq!(s.exit, None);
    assert_eq!(press(&mut s, "y"), vec![Command::Stop]);
    assert!(s.quitting);
    assert_eq!(s.exit, None, "waits for the worker");
    s.apply(Event::Finished(FinishInfo {
        reason: FinishReason::Stopped,
        epoch: 3,
        batch: 7,
        cause: None,
    }));
    assert_eq!(s.exit, Some(UiExit::QuitStopped));
}

#[test]
fn q_detach_and_double_ctrl_c() {
    let mut s = training_state();
    press(&mut s, "qd");
    assert_eq!(s.exit, Some(UiExit::QuitWhileRunning));

    let mut s = training_state();
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    s.handle_key(ctrl_c);
    assert_eq!(s.prompt, Prompt::ConfirmQuit);
    assert_eq!(press(&mut s, "y"), vec![Command::Stop]);
    s.handle_key(ctrl_c);
    assert_eq!(s.exit, Some(UiExit::QuitWhileRunning));
}

#[test]
fn q_after_the_run_ended_quits_at_once() {
    let mut s = training_state();
    s.apply(fixtures::failed());
    assert_eq!(s.phase, Phase::Failed);
    press(&mut s, "q");
    assert_eq!(s.exit, Some(UiExit::Finished));
}

#[test]
fn a_new_session_after_a_failure_starts_afresh() {
    // A resumed run's screen replays the log: the earlier session failed, the new one starts.
    let mut s = training_state();
    s.apply(Event::Failed(crate::events::FailInfo {
        error: "disk full".into(),
    }));
    assert_eq!(s.phase, Phase::Failed);
    s.apply(Event::Started(Box::new(fixtures::start_info())));
    assert_eq!(s.phase, Phase::Preparing);
    assert_eq!(s.error, None, "the old error box is gone");
    assert!(!s.epochs.is_empty(), "the earlier epochs stay");
}

#[test]
fn worker_gone_without_final_event_is_a_failure() {
    let mut s = training_state();
    s.worker_gone();
    assert_eq!(s.phase, Phase::Failed);
    assert!(s.error.is_some());
}

#[test]
fn tab_completes_the_probe_path_and_lists_what_still_matches() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for name in ["boot_1.png", "boot_2.png", "coat.png"] {
        std::fs::write(tmp.path().join(name), b"x").expect("file");
    }
    let mut s = training_state();
    press(&mut s, "4");
    press(&mut s, "o");
    s.handle_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    press(&mut s, &format!("{}/c", tmp.path().display()));
    s.handle_key(code(KeyCode::Tab));
    assert_eq!(s.input, Some(format!("{}/coat.png", tmp.path().display())));
    for _ in 0.."coat.png".len() {
        s.handle_key(code(KeyCode::Backspace));
    }
    press(&mut s, "b");
    s.handle_key(code(KeyCode::Tab));
    assert_eq!(s.input, Some(format!("{}/boot_", tmp.path().display())));
    let text = format!("{}", draw(&s, 200, 40).backend());
    assert!(text.contains("2 matches: boot_1.png  boot_2.png"), "{text}");
    // The list goes once the line changes.
    press(&mut s, "2");
    assert!(s.input_matches.is_empty());
    s.handle_key(code(KeyCode::Tab));
    let cmds = s.handle_key(code(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Command::Probe {
            image: tmp.path().join("boot_2.png")
        }]
    );
}

#[test]
fn probes_step_and_open_by_path() {
    let mut s = training_state();
    press(&mut s, "4");
    assert_eq!(
        press(&mut s, "n"),
        vec![Command::Probe {
            image: PathBuf::from("runs/fixture/probes/dog.jpg")
        }]
    );
    assert_eq!(
        press(&mut s, "n"),
        vec![Command::Probe {
            image: PathBuf::from("runs/fixture/probes/cat.jpg")
        }]
    );
    assert!(press(&mut s, "o").is_empty());
    // The line starts in the shown image's folder; Ctrl-U empties it.
    assert_eq!(s.input.as_deref(), Some("runs/fixture/probes/"));
    s.handle_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    assert_eq!(s.input.as_deref(), Some(""));
    // While the line is open, letters are text, not keys ('q' does not quit).
    assert!(press(&mut s, "/tmp/qx.png").is_empty());
    s.handle_key(code(KeyCode::Backspace));
    let cmds = s.handle_key(code(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Command::Probe {
            image: PathBuf::from("/tmp/qx.pn")
        }]
    );
    assert_eq!(s.exit, None);
    assert!(s.input.is_none());
    assert_eq!(s.message.as_deref(), Some("probing /tmp/qx.pn"));
    // The maps arrive: the message has done its work.
    s.apply(Event::FeatureMaps(Box::new(fixtures::small_features())));
    assert_eq!(s.message, None);
}

#[test]
fn filter_keys_select_layer_filter_norm_and_refresh() {
    let mut s = training_state();
    press(&mut s, "3");
    let g0 = s.pictures.filter_grid.generation;
    press(&mut s, "jjj");
    assert_eq!(s.filter, 3);
    assert!(
        s.pictures.filter_grid.generation > g0,
        "selection re-frames the grid"
    );
    press(&mut s, "l");
    assert_eq!((s.filter_layer, s.filter), (1, 0));
    assert!(
        s.pictures.filter_rgb.is_none(),
        "RGB patches only for 3 input channels"
    );
    press(&mut s, "ll");
    assert_eq!(s.filter_layer, 1, "clamped at the last layer");
    press(&mut s, "h");
    assert!(s.pictures.filter_rgb.is_some());
    s.handle_key(code(KeyCode::PageDown));
    s.handle_key(code(KeyCode::PageDown));
    s.handle_key(code(KeyCode::PageDown));
    assert_eq!(s.filter, 15, "clamped at the last filter");
    assert_eq!(s.filter_norm, FilterNorm::Layer);
    press(&mut s, "f");
    assert_eq!(s.filter_norm, FilterNorm::Filter);
    assert_eq!(press(&mut s, "r"), vec![Command::RefreshFilters]);
    press(&mut s, "c");
    assert_eq!(s.colormap, ColormapName::Magma);
}

#[test]
fn model_enter_opens_filters_for_conv_and_maps_for_pool() {
    let mut s = training_state();
    press(&mut s, "2");
    press(&mut s, "jjj"); // conv2d_1
    s.handle_key(code(KeyCode::Enter));
    assert_eq!((s.tab, s.filter_layer), (Tab::Filters, 1));
    press(&mut s, "2");
    s.handle_key(code(KeyCode::Up));
    s.handle_key(code(KeyCode::Up)); // max_pooling2d
    s.handle_key(code(KeyCode::Enter));
    assert_eq!((s.tab, s.feature_layer), (Tab::Features, 1));
    // A dense layer has no pictures: stay and say so.
    press(&mut s, "2");
    for _ in 0..12 {
        s.handle_key(code(KeyCode::Down));
    }
    s.handle_key(code(KeyCode::Enter));
    assert_eq!(s.tab, Tab::Model);
    assert!(
        s.message.as_deref().is_some_and(|m| m.contains("dense_1")),
        "{:?}",
        s.message
    );
}

#[test]
fn new_snapshots_keep_selections_in_range() {
    let mut s = training_state();
    press(&mut s, "3l");
    press(&mut s, "JJJ");
    assert_eq!((s.filter_layer, s.filter), (1, 24));
    s.apply(Event::Filters(Box::new(fixtures::filters(
        &[("conv2d", [4, 3, 3, 3])],
        3,
    ))));
    assert_eq!((s.filter_layer, s.filter), (0, 3));
}

#[test]
fn eta_uses_this_session_s_pace_after_a_resume() {
    let mut s = new_state();
    // A session of 20 epochs of 10 batches, starting at `epoch`.
    let started = |start_epoch| {
        Event::Started(Box::new(crate::events::StartInfo {
            epochs: 20,
            batches_per_epoch: 10,
            start_epoch,
            start_batch: 0,
            ..fixtures::start_info()
        }))
    };
    // Resumed at epoch 11, after 100 s of earlier training.
    s.apply(started(11));
    let batch = |epoch, batch, elapsed| {
        Event::Batch(crate::events::BatchMetrics {
            epoch,
            batch,
            batches: 10,
            loss: 0.5,
            accuracy: 0.5,
            images_per_sec: 100.0,
            elapsed,
        })
    };
    s.apply(batch(11, 1, 100.5));
    assert_eq!(s.eta_seconds(), None, "no pace from one point");
    s.apply(batch(12, 1, 105.5));
    // 10 batches in 5 s; 89 batches left.
    let eta = s.eta_seconds().expect("eta");
    assert!((eta - 44.5).abs() < 1e-9, "{eta}");
    // A second session in the same history starts its own pace.
    s.apply(started(13));
    s.apply(batch(13, 1, 200.0));
    s.apply(batch(13, 3, 201.0));
    let eta = s.eta_seconds().expect("eta");
    assert!((eta - 77.0 * 0.5).abs() < 1e-9, "{eta}");
}

#[test]
fn brackets_step_through_epochs_and_follow_training_past_the_newest() {
    let mut s = training_state(); // two epochs done, filters of epoch 2
    press(&mut s, "3");
    assert_eq!(
        press(&mut s, "["),
        vec![Command::SelectEpoch { epoch: Some(1) }]
    );
    assert!(
        s.message
            .as_deref()
            .is_some_and(|m| m.starts_with("loading epoch 1 ")),
        "{:?}",
        s.message
    );
    s.apply(Event::Filters(Box::new(fixtures::filters(
        &[("conv2d", [16, 3, 3, 3])],
        1,
    ))));
    assert!(
        s.message
            .as_deref()
            .is_some_and(|m| m.starts_with("showing epoch 1 (")),
        "the note says the pictures are here: {:?}",
        s.message
    );
    assert!(press(&mut s, "[").is_empty(), "nothing before epoch 1");
    assert_eq!(
        press(&mut s, "]"),
        vec![Command::SelectEpoch { epoch: None }]
    );
    press(&mut s, "4");
    assert!(!press(&mut s, "[").is_empty(), "feature maps step too");
}

#[test]
fn e_exports_the_current_tab_as_png_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = training_state();
    s.run_dir = dir.path().to_path_buf();
    press(&mut s, "3");
    press(&mut s, "e");
    let msg = s.message.clone().expect("message");
    assert!(
        msg.starts_with(&format!(
            "exported 3 files to {}: filters-conv2d-epoch-0002.png, ",
            dir.path().join("export").display()
        )),
        "{msg}"
    );
    press(&mut s, "4");
    press(&mut s, "e");
    let files: Vec<String> = std::fs::read_dir(dir.path().join("export"))
        .expect("export dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 6, "{files:?}");
    for f in &files {
        let img = image::open(dir.path().join("export").join(f)).expect("png decodes");
        assert!(img.width().max(img.height()) >= 512, "{f} upscaled");
    }
    // The Training tab: the curves as a plot and the metrics as CSV, one row per epoch.
    press(&mut s, "1");
    press(&mut s, "e");
    let export = dir.path().join("export");
    let curves = image::open(export.join("training-epoch-0002-curves.png")).expect("curves");
    assert!(curves.width() > curves.height(), "two panels side by side");
    let csv = std::fs::read_to_string(export.join("training-epoch-0002-metrics.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 1 + s.epochs.len(), "{csv}");
    assert!(
        csv.lines().nth(1).is_some_and(|l| l.starts_with("1,")),
        "{csv}"
    );
    // The Model tab: the summary table.
    press(&mut s, "2");
    press(&mut s, "e");
    let summary = std::fs::read_to_string(export.join("model-summary.txt")).expect("summary");
    assert!(
        summary.contains("Param #") && summary.contains("conv2d"),
        "{summary}"
    );
    // Help has nothing of its own and says what else to use.
    press(&mut s, "5");
    press(&mut s, "e");
    assert!(
        s.message
            .clone()
            .expect("message")
            .contains("convscope export")
    );
}

mod screens;
