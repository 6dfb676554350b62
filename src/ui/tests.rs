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

use super::app::App;
use super::picture::to_color;
use super::state::AppState;
use super::vocab::{ColorDepth, EpochRequest, Phase, Prompt, Tab, UiExit};
use crate::config::{ColormapName, FilterNorm, UiConfig};
use crate::events::{Command, Event, FilterSnapshot, FinishInfo, FinishReason, LayerFilters};
use crate::viz::colormap;

/// The bench's data, and what only tests draw.
mod fixtures {
    use crate::events::{Event, FailInfo, FeatureSnapshot};
    pub use crate::ui::bench_data::*;

    /// A failure event.
    #[must_use]
    pub fn failed() -> Event {
        Event::Failed(FailInfo {
            error: "loss became NaN at epoch 3, batch 7: lower the learning rate (train.lr in \
                    config.toml)"
                .into(),
        })
    }

    /// A few small layers for snapshots: channel 2 of the first layer is dead.
    #[must_use]
    pub fn small_features() -> FeatureSnapshot {
        features(
            &[
                ("conv2d", [8, 24, 24]),
                ("max_pooling2d", [8, 12, 12]),
                ("conv2d_1", [16, 12, 12]),
            ],
            Some((0, 2)),
        )
    }
}

fn new_state() -> App {
    let mut s = App::new(
        &UiConfig::default(),
        "fixture".into(),
        PathBuf::from("runs/fixture"),
    );
    s.resize(100, 30);
    s
}

fn training_state() -> App {
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

fn press(s: &mut App, keys: &str) -> Vec<Command> {
    keys.chars().flat_map(|c| s.handle_key(key(c))).collect()
}

fn draw(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    t.draw(|f| app.render(f)).expect("draws");
    t
}

// ---- state: key -> action -> state ----

#[test]
fn number_keys_tab_and_backtab_switch_tabs() {
    let mut s = new_state();
    press(&mut s, "3");
    assert_eq!(s.state().tab(), Tab::Filters);
    s.handle_key(code(KeyCode::Tab));
    assert_eq!(s.state().tab(), Tab::Features);
    s.handle_key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    s.handle_key(code(KeyCode::BackTab));
    assert_eq!(s.state().tab(), Tab::Model);
    press(&mut s, "?");
    assert_eq!(s.state().tab(), Tab::Help);
    s.handle_key(code(KeyCode::Tab));
    assert_eq!(s.state().tab(), Tab::Training);
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
    assert_eq!(s.state().tab(), Tab::Model);
    s.handle_terminal(&click(2));
    assert_eq!(s.state().tab(), Tab::Training);
    s.handle_terminal(&click(199));
    assert_eq!(s.state().tab(), Tab::Training);
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
    for (tab, want) in [(Tab::Filters, 5_usize), (Tab::Features, 6)] {
        s.arrange(|st| st.set_tab(tab));
        // Find the cell of tile `want` through the same geometry the drawing uses.
        let (raster, geom, area) = if tab == Tab::Filters {
            let a = s.layout().filters;
            (
                &s.pictures().filter_grid.raster,
                s.pictures().filter_geom.expect("geometry"),
                a.grid,
            )
        } else {
            let a = s.layout().features;
            (
                &s.pictures().feature_grid.raster,
                s.pictures().feature_geom.expect("geometry"),
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
            s.state().filter()
        } else {
            s.state().channel()
        };
        assert_eq!(got, want, "{tab:?}");
    }
    // A click outside any tile changes nothing.
    s.handle_terminal(&click(0, 29));
    assert_eq!(s.state().channel(), 6);
}

#[test]
fn clicks_on_a_graphics_image_map_through_where_it_was_drawn() {
    // A sixel image scaled by a whole factor can be smaller than its box, centred in it, while
    // half blocks fill the box: a click must pick the tile that the image shows there.
    let mut s = training_state();
    s.arrange(|st| st.set_tab(Tab::Features));
    let area = s.layout().features.grid;
    let raster = s.pictures().feature_grid.raster.clone();
    let geom = s.pictures().feature_geom.expect("geometry");
    let shown = Rect::new(
        area.x + area.width / 4,
        area.y + area.height / 4,
        area.width / 2,
        area.height / 2,
    );
    s.set_shown(vec![(super::vocab::Slot::FeatureGrid, shown)]);
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
    assert_eq!(s.state().channel(), want);
}

#[test]
fn space_pauses_and_resumes_by_phase() {
    let mut s = training_state();
    assert_eq!(s.state().phase(), Phase::Running);
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
    assert_eq!(s.state().prompt(), Prompt::ConfirmStop);
    assert!(press(&mut s, "n").is_empty());
    assert_eq!(s.state().prompt(), Prompt::None);
    assert_eq!(s.state().phase(), Phase::Running);
    assert_eq!(press(&mut s, "xy"), vec![Command::Stop]);
    assert_eq!(s.state().phase(), Phase::Stopping);
    assert_eq!(s.state().exit(), None);
}

#[test]
fn q_while_running_asks_then_stops_and_waits_for_finished() {
    let mut s = training_state();
    assert!(press(&mut s, "q").is_empty());
    assert_eq!(s.state().prompt(), Prompt::ConfirmQuit);
    assert_eq!(s.state().exit(), None);
    assert_eq!(press(&mut s, "y"), vec![Command::Stop]);
    assert!(s.state().quitting());
    assert_eq!(s.state().exit(), None, "waits for the worker");
    s.apply(Event::Finished(FinishInfo {
        reason: FinishReason::Stopped,
        epoch: 3,
        batch: 7,
        cause: None,
    }));
    assert_eq!(s.state().exit(), Some(UiExit::QuitStopped));
}

#[test]
fn q_detach_and_double_ctrl_c() {
    let mut s = training_state();
    press(&mut s, "qd");
    assert_eq!(s.state().exit(), Some(UiExit::QuitWhileRunning));

    let mut s = training_state();
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    s.handle_key(ctrl_c);
    assert_eq!(s.state().prompt(), Prompt::ConfirmQuit);
    assert_eq!(press(&mut s, "y"), vec![Command::Stop]);
    s.handle_key(ctrl_c);
    assert_eq!(s.state().exit(), Some(UiExit::QuitWhileRunning));
}

#[test]
fn q_after_the_run_ended_quits_at_once() {
    let mut s = training_state();
    s.apply(fixtures::failed());
    assert_eq!(s.state().phase(), Phase::Failed);
    press(&mut s, "q");
    assert_eq!(s.state().exit(), Some(UiExit::Finished));
}

#[test]
fn run_keys_on_an_ended_run_are_not_offered_and_say_why() {
    let mut s = training_state();
    let footer = |s: &App| {
        let t = draw(s, 120, 30);
        let buf = t.backend().buffer().clone();
        (0..buf.area.width)
            .map(|x| buf[(x, buf.area.height - 1)].symbol().to_string())
            .collect::<String>()
    };
    s.arrange(AppState::clear_message);
    assert!(footer(&s).contains("Space pause/resume · s checkpoint · x stop"));
    s.apply(Event::Finished(FinishInfo {
        reason: FinishReason::Completed,
        epoch: 2,
        batch: 32,
        cause: None,
    }));
    s.arrange(AppState::clear_message);
    let f = footer(&s);
    assert!(
        !f.contains("Space") && !f.contains("checkpoint") && !f.contains("stop"),
        "{f}"
    );
    assert!(f.contains("e export"), "{f}");
    for (k, what) in [(" ", "pause"), ("s", "checkpoint"), ("x", "stop")] {
        assert!(press(&mut s, k).is_empty());
        assert_eq!(
            s.state().prompt(),
            Prompt::None,
            "no question about stopping"
        );
        assert_eq!(
            s.state().message().as_deref(),
            Some(
                format!(
                    "nothing to {what}: the run has finished; continue it with \
                     `convscope resume runs/fixture --epochs N`"
                )
                .as_str()
            )
        );
        // The message is what the footer shows now.
        assert!(footer(&s).contains(&format!("nothing to {what}")));
    }
    let mut s = training_state();
    s.apply(fixtures::failed());
    press(&mut s, " ");
    assert!(
        s.state()
            .message()
            .as_deref()
            .is_some_and(|m| m.starts_with("nothing to pause: the run failed")),
        "{:?}",
        s.state().message()
    );
    // Stopping already: said, not asked again.
    let mut s = training_state();
    press(&mut s, "xy");
    assert!(press(&mut s, "x").is_empty());
    assert_eq!(s.state().prompt(), Prompt::None);
    assert_eq!(
        s.state().message().as_deref(),
        Some("the run is stopping already")
    );
}

#[test]
fn a_new_session_after_a_failure_starts_afresh() {
    // A resumed run's screen replays the log: the earlier session failed, the new one starts.
    let mut s = training_state();
    s.apply(Event::Failed(crate::events::FailInfo {
        error: "disk full".into(),
    }));
    assert_eq!(s.state().phase(), Phase::Failed);
    s.apply(Event::Started(Box::new(fixtures::start_info())));
    assert_eq!(s.state().phase(), Phase::Preparing);
    assert_eq!(s.state().error(), None, "the old error box is gone");
    assert!(!s.state().epochs().is_empty(), "the earlier epochs stay");
}

#[test]
fn worker_gone_without_final_event_is_a_failure() {
    let mut s = training_state();
    s.worker_gone();
    assert_eq!(s.state().phase(), Phase::Failed);
    assert!(s.state().error().is_some());
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
    assert_eq!(
        s.state().input(),
        Some(format!("{}/coat.png", tmp.path().display()).as_str())
    );
    for _ in 0.."coat.png".len() {
        s.handle_key(code(KeyCode::Backspace));
    }
    press(&mut s, "b");
    s.handle_key(code(KeyCode::Tab));
    assert_eq!(
        s.state().input(),
        Some(format!("{}/boot_", tmp.path().display()).as_str())
    );
    let text = format!("{}", draw(&s, 200, 40).backend());
    assert!(text.contains("2 matches: boot_1.png  boot_2.png"), "{text}");
    // The list goes once the line changes.
    press(&mut s, "2");
    assert!(s.state().input_matches().is_empty());
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
    assert_eq!(s.state().input(), Some("runs/fixture/probes/"));
    s.handle_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    assert_eq!(s.state().input(), Some(""));
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
    assert_eq!(s.state().exit(), None);
    assert!(s.state().input().is_none());
    assert_eq!(s.state().message().as_deref(), Some("probing /tmp/qx.pn"));
    // The maps arrive: the message has done its work.
    s.apply(Event::FeatureMaps(Box::new(fixtures::small_features())));
    assert_eq!(s.state().message(), None);
}

#[test]
fn a_path_typed_from_the_root_or_home_replaces_the_prefilled_folder() {
    let mut s = training_state();
    press(&mut s, "4o");
    assert_eq!(s.state().input(), Some("runs/fixture/probes/"));
    let text = format!("{}", draw(&s, 200, 40).backend());
    assert!(
        text.contains("/ or ~: start from the root or home"),
        "{text}"
    );
    // An absolute path replaces the folder instead of being appended to it.
    press(&mut s, "/tmp/a.png");
    assert_eq!(s.state().input(), Some("/tmp/a.png"));
    s.handle_key(code(KeyCode::Esc));
    // So does one from the home folder.
    press(&mut s, "o~/b.png");
    assert_eq!(s.state().input(), Some("~/b.png"));
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cmds = s.handle_key(code(KeyCode::Enter));
    if let Some(home) = home {
        assert_eq!(
            cmds,
            vec![Command::Probe {
                image: home.join("b.png")
            }]
        );
    }
    // Once the line was edited, `/` and `~` are plain characters of the path.
    press(&mut s, "osub/dir~");
    assert_eq!(s.state().input(), Some("runs/fixture/probes/sub/dir~"));
    s.handle_key(code(KeyCode::Esc));
    press(&mut s, "o");
    s.handle_key(code(KeyCode::Backspace));
    press(&mut s, "/x");
    assert_eq!(s.state().input(), Some("runs/fixture/probes/x"));
}

#[test]
fn filter_keys_select_layer_filter_norm_and_refresh() {
    let mut s = training_state();
    press(&mut s, "3");
    let g0 = s.pictures().filter_grid.generation;
    press(&mut s, "jjj");
    assert_eq!(s.state().filter(), 3);
    assert!(
        s.pictures().filter_grid.generation > g0,
        "selection re-frames the grid"
    );
    press(&mut s, "l");
    assert_eq!((s.state().filter_layer_index(), s.state().filter()), (1, 0));
    assert!(
        s.pictures().filter_rgb.is_none(),
        "RGB patches only for 3 input channels"
    );
    press(&mut s, "ll");
    assert_eq!(
        s.state().filter_layer_index(),
        1,
        "clamped at the last layer"
    );
    press(&mut s, "h");
    assert!(s.pictures().filter_rgb.is_some());
    s.handle_key(code(KeyCode::PageDown));
    s.handle_key(code(KeyCode::PageDown));
    s.handle_key(code(KeyCode::PageDown));
    assert_eq!(s.state().filter(), 15, "clamped at the last filter");
    assert_eq!(s.state().filter_norm(), FilterNorm::Layer);
    press(&mut s, "f");
    assert_eq!(s.state().filter_norm(), FilterNorm::Filter);
    assert_eq!(press(&mut s, "r"), vec![Command::RefreshFilters]);
    press(&mut s, "c");
    assert_eq!(s.state().colormap(), ColormapName::Magma);
}

#[test]
fn model_enter_opens_filters_for_conv_and_maps_for_pool() {
    let mut s = training_state();
    press(&mut s, "2");
    press(&mut s, "jjj"); // conv2d_1
    s.handle_key(code(KeyCode::Enter));
    assert_eq!(
        (s.state().tab(), s.state().filter_layer_index()),
        (Tab::Filters, 1)
    );
    press(&mut s, "2");
    s.handle_key(code(KeyCode::Up));
    s.handle_key(code(KeyCode::Up)); // max_pooling2d
    s.handle_key(code(KeyCode::Enter));
    assert_eq!(
        (s.state().tab(), s.state().feature_layer_index()),
        (Tab::Features, 1)
    );
    // A dense layer has no pictures: stay and say so.
    press(&mut s, "2");
    for _ in 0..12 {
        s.handle_key(code(KeyCode::Down));
    }
    s.handle_key(code(KeyCode::Enter));
    assert_eq!(s.state().tab(), Tab::Model);
    assert!(
        s.state()
            .message()
            .as_deref()
            .is_some_and(|m| m.contains("dense_1")),
        "{:?}",
        s.state().message()
    );
}

#[test]
fn new_snapshots_keep_selections_in_range() {
    let mut s = training_state();
    press(&mut s, "3l");
    press(&mut s, "JJJ");
    assert_eq!(
        (s.state().filter_layer_index(), s.state().filter()),
        (1, 24)
    );
    s.apply(Event::Filters(Box::new(fixtures::filters(
        &[("conv2d", [4, 3, 3, 3])],
        3,
    ))));
    assert_eq!((s.state().filter_layer_index(), s.state().filter()), (0, 3));
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
    assert_eq!(s.state().eta_seconds(), None, "no pace from one point");
    s.apply(batch(12, 1, 105.5));
    // 10 batches in 5 s; 89 batches left.
    let eta = s.state().eta_seconds().expect("eta");
    assert!((eta - 44.5).abs() < 1e-9, "{eta}");
    // A second session in the same history starts its own pace.
    s.apply(started(13));
    s.apply(batch(13, 1, 200.0));
    s.apply(batch(13, 3, 201.0));
    let eta = s.state().eta_seconds().expect("eta");
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
        s.state()
            .message()
            .as_deref()
            .is_some_and(|m| m.starts_with("loading epoch 1 ")),
        "{:?}",
        s.state().message()
    );
    s.apply(Event::Filters(Box::new(fixtures::filters(
        &[("conv2d", [16, 3, 3, 3])],
        1,
    ))));
    assert!(
        s.state()
            .message()
            .as_deref()
            .is_some_and(|m| m.starts_with("showing epoch 1 (")),
        "the note says the pictures are here: {:?}",
        s.state().message()
    );
    assert!(press(&mut s, "[").is_empty(), "nothing before epoch 1");
    assert_eq!(
        press(&mut s, "]"),
        vec![Command::SelectEpoch { epoch: None }]
    );
    press(&mut s, "4");
    assert!(!press(&mut s, "[").is_empty(), "feature maps step too");
}

/// A state with epochs 1..=`n` done and the feature maps of epoch `n` on the Feature maps tab.
fn state_with_epochs(n: usize) -> App {
    let mut s = training_state();
    for epoch in 3..=n {
        s.apply(Event::Epoch(crate::events::EpochMetrics {
            epoch,
            train_loss: 0.5,
            train_accuracy: 0.7,
            val_loss: Some(0.5),
            val_accuracy: Some(0.7),
            seconds: 12.0,
            images_per_sec: 170.0,
        }));
    }
    s.apply(maps_of(n));
    press(&mut s, "4");
    s
}

fn maps_of(epoch: usize) -> Event {
    Event::FeatureMaps(Box::new(crate::events::FeatureSnapshot {
        epoch,
        ..fixtures::small_features()
    }))
}

fn epochs_asked(cmds: &[Command]) -> Vec<Option<usize>> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::SelectEpoch { epoch } => Some(*epoch),
            _ => None,
        })
        .collect()
}

#[test]
fn brackets_pressed_faster_than_the_pictures_come_count_every_press() {
    let mut s = state_with_epochs(8);
    // Five presses in one read, before any picture comes back: five epochs back.
    let cmds = press(&mut s, "[[[[[");
    assert_eq!(
        epochs_asked(&cmds),
        [Some(7), Some(6), Some(5), Some(4), Some(3)]
    );
    // The maps of an earlier request (or of an epoch end) arriving in between change nothing.
    s.apply(maps_of(6));
    assert_eq!(epochs_asked(&press(&mut s, "]")), [Some(4)]);
    // The asked-for maps arrive: the next press counts from them.
    s.apply(maps_of(4));
    assert_eq!(s.state().epoch_request(), None);
    assert_eq!(epochs_asked(&press(&mut s, "[[")), [Some(3), Some(2)]);
    // Forward past the newest follows training, however many presses there are.
    assert_eq!(
        epochs_asked(&press(&mut s, "]]]]]]]]")),
        [
            Some(3),
            Some(4),
            Some(5),
            Some(6),
            Some(7),
            None,
            None,
            None
        ]
    );
    // While following is on its way, `[` steps back from the newest epoch.
    assert_eq!(epochs_asked(&press(&mut s, "[")), [Some(7)]);
    // A request that fails (its checkpoint is gone) says so; the next press counts from
    // what is on screen.
    s.apply(maps_of(8));
    assert_eq!(s.state().epoch_request(), Some(EpochRequest::At(7)));
    s.apply(Event::Warning(crate::events::WarningInfo {
        message: "epoch 7: no such checkpoint".into(),
    }));
    assert_eq!(epochs_asked(&press(&mut s, "[")), [Some(7)]);
}

#[test]
fn an_export_s_message_outlasts_routine_messages_for_a_few_seconds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = training_state();
    s.arrange(|st| st.set_run_dir(dir.path().to_path_buf()));
    let t0 = std::time::Instant::now();
    s.set_now(t0);
    press(&mut s, "3e");
    let exported = s.state().message().expect("message");
    assert!(exported.starts_with("exported 3 files"), "{exported}");
    let checkpoint = |epoch: usize| {
        Event::Checkpoint(crate::events::CheckpointInfo {
            epoch,
            batch: 32,
            name: format!("epoch-{epoch:04}"),
        })
    };
    // An epoch ends a second later: its checkpoint note waits.
    s.set_now(t0 + std::time::Duration::from_secs(1));
    s.apply(checkpoint(3));
    assert_eq!(s.state().message().as_deref(), Some(exported.as_str()));
    // A key that has nothing to say leaves it too.
    press(&mut s, "j");
    assert_eq!(s.state().message().as_deref(), Some(exported.as_str()));
    // Past the hold, routine messages show again.
    s.set_now(t0 + super::state::MESSAGE_HOLD + std::time::Duration::from_millis(1));
    s.apply(checkpoint(4));
    assert_eq!(
        s.state().message().as_deref(),
        Some("checkpoint epoch-0004 written")
    );
    // An error is held the same way; a key with an answer of its own replaces it at once.
    s.apply(Event::Warning(crate::events::WarningInfo {
        message: "cannot read /x.png".into(),
    }));
    s.apply(checkpoint(5));
    assert_eq!(s.state().message().as_deref(), Some("cannot read /x.png"));
    press(&mut s, "r");
    assert_eq!(s.state().message().as_deref(), Some("filters requested"));
    s.apply(checkpoint(6));
    assert_eq!(
        s.state().message().as_deref(),
        Some("checkpoint epoch-0006 written")
    );
}

/// The epoch table's rows as drawn: the epoch number of each (a `★` after the best).
fn table_epochs(s: &App, w: u16, h: u16) -> Vec<String> {
    let t = draw(s, w, h);
    let buf = t.backend().buffer().clone();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .filter_map(|l| {
            let l = l.trim_start().strip_prefix('│')?.to_string();
            let mut words = l.split_whitespace();
            let epoch = words.next()?;
            let next = words.next()?;
            let star = next == "★";
            let loss = if star { words.next()? } else { next };
            (epoch.chars().all(|c| c.is_ascii_digit()) && loss.parse::<f64>().is_ok())
                .then(|| format!("{epoch}{}", if star { "★" } else { "" }))
        })
        .collect()
}

#[test]
fn the_epoch_table_scrolls_and_the_best_epoch_can_be_reached() {
    let mut s = state_with_epochs(30);
    // Epoch 5 is the best; the others stay below it.
    s.arrange(|st| {
        for e in st.epochs_mut() {
            e.val_accuracy = Some(if e.epoch == 5 { 0.95 } else { 0.5 });
        }
    });
    press(&mut s, "1");
    let rows = table_epochs(&s, 100, 30);
    let visible = rows.len();
    assert!(visible >= 3, "{rows:?}");
    assert_eq!(
        rows.last().map(String::as_str),
        Some("30"),
        "the newest rows"
    );
    let text = format!("{}", draw(&s, 100, 30).backend());
    assert!(
        text.contains(&format!("Epochs {}–30 of 30 ↑", 31 - visible)),
        "{text}"
    );
    assert!(
        text.contains("best val accuracy: epoch 5 (0.950), b shows it"),
        "{text}"
    );
    // Up a row at a time.
    press(&mut s, "kk");
    assert_eq!(
        table_epochs(&s, 100, 30).last().map(String::as_str),
        Some("28")
    );
    // New epochs do not move a scrolled table.
    s.apply(Event::Epoch(crate::events::EpochMetrics {
        epoch: 31,
        train_loss: 0.5,
        train_accuracy: 0.7,
        val_loss: Some(0.5),
        val_accuracy: Some(0.5),
        seconds: 12.0,
        images_per_sec: 170.0,
    }));
    assert_eq!(
        table_epochs(&s, 100, 30).last().map(String::as_str),
        Some("28")
    );
    // The best epoch: in view, marked.
    press(&mut s, "b");
    let rows = table_epochs(&s, 100, 30);
    assert!(rows.contains(&"5★".to_string()), "{rows:?}");
    assert_eq!(
        s.state().message().as_deref(),
        Some("best val accuracy: epoch 5 (0.950)")
    );
    // Home: the first epochs; End: the newest, following again.
    press(&mut s, "g");
    assert_eq!(
        table_epochs(&s, 100, 30).first().map(String::as_str),
        Some("1")
    );
    s.handle_key(code(KeyCode::End));
    assert_eq!(s.state().epoch_scroll(), None);
    assert_eq!(
        table_epochs(&s, 100, 30).last().map(String::as_str),
        Some("31")
    );
    // Scrolling down to the end follows too.
    press(&mut s, "gJJJJ");
    assert_eq!(s.state().epoch_scroll(), None);
}

#[test]
fn the_header_shows_the_checkpoint_s_batch_when_it_is_newer_than_the_last_batch_event() {
    let mut s = training_state();
    s.apply(Event::Batch(crate::events::BatchMetrics {
        epoch: 3,
        batch: 8,
        batches: 32,
        loss: 0.5,
        accuracy: 0.5,
        images_per_sec: 100.0,
        elapsed: 40.0,
    }));
    press(&mut s, "s");
    s.apply(Event::Checkpoint(crate::events::CheckpointInfo {
        epoch: 3,
        batch: 9,
        name: "epoch-0003-batch-000009".into(),
    }));
    let text = format!("{}", draw(&s, 160, 30).backend());
    assert!(text.contains("epoch 3/50  batch 9/32"), "{text}");
    assert_eq!(s.state().progress(), Some((2 * 32 + 9, 50 * 32)));
    // The checkpoint asked for is a confirmation that says it is temporary.
    let m = s.state().message().expect("message");
    assert!(
        m.starts_with(
            "checkpoint epoch-0003-batch-000009 written; a mid-epoch checkpoint is temporary"
        ),
        "{m}"
    );
    assert!(m.contains("the end of epoch 3"), "{m}");
    assert!(s.state().message_held());
    // An epoch-end checkpoint is plain.
    s.set_now(std::time::Instant::now() + super::state::MESSAGE_HOLD * 2);
    s.apply(Event::Checkpoint(crate::events::CheckpointInfo {
        epoch: 3,
        batch: 32,
        name: "epoch-0003".into(),
    }));
    assert_eq!(
        s.state().message().as_deref(),
        Some("checkpoint epoch-0003 written")
    );
    assert!(!s.state().message_held());
}

#[test]
fn e_exports_the_current_tab_as_png_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = training_state();
    s.arrange(|st| st.set_run_dir(dir.path().to_path_buf()));
    press(&mut s, "3");
    press(&mut s, "e");
    let msg = s.state().message().expect("message");
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
    assert_eq!(csv.lines().count(), 1 + s.state().epochs().len(), "{csv}");
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
    press(&mut s, "6");
    press(&mut s, "e");
    assert!(
        s.state()
            .message()
            .clone()
            .expect("message")
            .contains("convscope export")
    );
}

mod looks;
mod screens;
mod validation;

#[test]
fn grad_cam_keys_ask_the_worker_for_the_map_and_set_the_overlay() {
    use crate::events::CamRequest;
    use crate::viz::overlay::{HeatColormap, ImageWeight};
    let mut s = training_state();
    press(&mut s, "4");
    let asked = |layer, class| Command::Explain {
        cam: Some(CamRequest { layer, class }),
    };
    assert!(!s.state().cam().on);
    assert_eq!(press(&mut s, "v"), vec![asked(0, 0)]);
    assert!(s.state().cam().on);
    assert_eq!(press(&mut s, "d"), vec![asked(1, 0)]);
    assert_eq!(press(&mut s, "t"), vec![asked(1, 1)]);
    assert_eq!(press(&mut s, "v"), vec![Command::Explain { cam: None }]);
    assert!(!s.state().cam().on);
    // The layer and class keys turn it on again, from where they were.
    assert_eq!(press(&mut s, "d"), vec![asked(2, 1)]);
    assert!(s.state().cam().on);
    // Image weight and colormap are the screen's own: nothing to recompute.
    assert_eq!(s.state().cam().weight, ImageWeight::Half);
    assert!(press(&mut s, "i").is_empty());
    assert_eq!(s.state().cam().weight, ImageWeight::Strong);
    assert!(press(&mut s, "iii").is_empty());
    assert_eq!(s.state().cam().weight, ImageWeight::Half);
    assert_eq!(s.state().cam().colormap, HeatColormap::Jet);
    assert!(press(&mut s, "u").is_empty());
    assert_eq!(s.state().cam().colormap, HeatColormap::Turbo);
    press(&mut s, "uu");
    assert_eq!(s.state().cam().colormap, HeatColormap::Jet);
    // The keys belong to the Feature maps tab.
    press(&mut s, "3");
    assert!(press(&mut s, "vdt").is_empty());
    assert!(s.state().cam().on);
}

#[test]
fn the_probe_pane_shows_the_grad_cam_overlay_or_says_there_is_no_evidence() {
    use crate::events::CamMap;
    let mut s = training_state();
    press(&mut s, "4");
    let plain = s.pictures().probe.raster.clone();
    let with_cam = |values: Vec<f32>| {
        let mut snap = fixtures::small_features();
        snap.cam = Some(CamMap {
            layer: "conv2d_1".into(),
            class: 1,
            probability: 0.127,
            width: 2,
            height: 2,
            values,
        });
        Event::FeatureMaps(Box::new(snap))
    };
    // A map arriving while the overlay is off is not drawn.
    s.apply(with_cam(vec![0.0, 1.0, 0.5, 0.25]));
    assert_eq!(s.pictures().probe.raster, plain);
    press(&mut s, "v");
    s.apply(with_cam(vec![0.0, 1.0, 0.5, 0.25]));
    let over = s.pictures().probe.raster.clone();
    assert_eq!(
        (over.width(), over.height()),
        (plain.width(), plain.height())
    );
    assert_ne!(over, plain);
    let text = format!("{}", draw(&s, 160, 40).backend());
    assert!(text.contains("Grad-CAM conv2d_1 · dogs 12.7%"), "{text}");
    assert!(text.contains("Grad-CAM jet image 0.5"), "{text}");
    // Another image weight redraws it.
    press(&mut s, "i");
    assert_ne!(s.pictures().probe.raster, over);
    // No positive evidence: words instead of a normalised nothing.
    s.apply(with_cam(Vec::new()));
    let text = format!("{}", draw(&s, 160, 40).backend());
    assert!(
        text.contains("no positive evidence for dogs at conv2d_1"),
        "{text}"
    );
    // Off again: the photo.
    press(&mut s, "v");
    assert_eq!(s.pictures().probe.raster, plain);
}

#[test]
fn compare_keys_pick_b_order_the_channels_and_show_three_panes() {
    use crate::events::{CompareMaps, LayerMaps};
    use crate::viz::compare;
    let mut s = training_state();
    press(&mut s, "4");
    let a = fixtures::small_features();
    let asked = press(&mut s, "b");
    assert_eq!(
        asked,
        vec![Command::Compare {
            image: Some(a.image.clone())
        }]
    );
    assert_eq!(s.state().compare_image(), Some(a.image.as_path()));
    // Until B's maps arrive the tab says so and shows the probe's maps as before.
    let screen = |s: &App| format!("{}", draw(s, 160, 40).backend());
    assert!(screen(&s).contains("on their way"), "{}", screen(&s));
    // B: the same layers, channel c scaled by (c + 1) / 4.
    let b_layers: Vec<LayerMaps> = a
        .layers
        .iter()
        .map(|l| {
            let per = l.height * l.width;
            LayerMaps {
                data: l
                    .data
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v * ((i / per) as f32 + 1.0) / 4.0)
                    .collect(),
                ..l.clone()
            }
        })
        .collect();
    let b_image = PathBuf::from("runs/fixture/probes/dog.jpg");
    s.apply(Event::FeatureMaps(Box::new(
        crate::events::FeatureSnapshot {
            compare: Some(Box::new(CompareMaps {
                image: b_image,
                predicted: 1,
                probability: 0.6,
                layers: b_layers.clone(),
            })),
            ..a.clone()
        },
    )));
    let l0 = &a.layers[0];
    let want = compare::by_difference(
        &compare::channel_means(&l0.data, l0.channels),
        &compare::channel_means(&b_layers[0].data, l0.channels),
    );
    let text = screen(&s);
    assert!(text.contains("A | B | A-B"), "{text}");
    assert!(text.contains("compare B dog.jpg: by diff"), "{text}");
    assert!(text.contains(" A cat.jpg "), "{text}");
    // The cursor starts on the channel that differs most.
    let first = format!("channel {}/{}", want[0] + 1, l0.channels);
    assert!(text.contains(&first), "{first} in {text}");
    press(&mut s, "j");
    let second = format!("channel {}/{}", want[1] + 1, l0.channels);
    assert!(screen(&s).contains(&second), "{second}");
    // r: by selectivity (no class means in this run's health: in order), then in order.
    assert!(press(&mut s, "r").is_empty());
    let text = screen(&s);
    assert!(text.contains("by selectivity"), "{text}");
    assert!(
        text.contains(&format!("channel 1/{}", l0.channels)),
        "{text}"
    );
    press(&mut s, "r");
    assert!(screen(&s).contains("in order"));
    press(&mut s, "r");
    assert_eq!(s.state().compare_order(), compare::Order::Diff);
    // B: off, back to one image.
    assert_eq!(press(&mut s, "B"), vec![Command::Compare { image: None }]);
    assert!(!screen(&s).contains("A | B | A-B"));
    assert!(press(&mut s, "B").is_empty(), "nothing to stop");
    // The keys belong to the Feature maps tab.
    press(&mut s, "3");
    assert!(
        press(&mut s, "r")
            .iter()
            .all(|c| !matches!(c, Command::Compare { .. }))
    );
}

#[test]
fn z_pins_each_channel_s_scale_to_the_epoch_shown() {
    let mut s = training_state();
    press(&mut s, "4");
    let a = fixtures::small_features();
    let own = |s: &App| s.pictures().levels.clone();
    let before = own(&s);
    assert!(press(&mut s, "z").is_empty());
    assert_eq!(s.state().pinned_scale().map(|p| p.epoch), Some(2));
    // The same maps at their own scale: the same levels.
    assert_eq!(own(&s), before);
    // Epoch 3's maps twice as strong: at epoch 2's scale every live channel is brighter where
    // it is on, where on its own scale it would look the same.
    let doubled = crate::events::FeatureSnapshot {
        epoch: 3,
        layers: a
            .layers
            .iter()
            .map(|l| crate::events::LayerMaps {
                data: l.data.iter().map(|v| v * 2.0).collect(),
                ..l.clone()
            })
            .collect(),
        ..a.clone()
    };
    s.apply(Event::FeatureMaps(Box::new(doubled.clone())));
    let pinned = own(&s);
    let l0 = &doubled.layers[0];
    let on_own = crate::viz::pictures::feature_levels(&l0.data, l0.channels, l0.height, l0.width);
    assert_eq!(
        on_own, before,
        "standardised, twice as strong looks the same"
    );
    assert_ne!(pinned, on_own);
    let per = l0.height * l0.width;
    for (c, (p, b)) in pinned.iter().zip(&before).enumerate() {
        if b.dead {
            continue;
        }
        let plane = &a.layers[0].data[c * per..(c + 1) * per];
        let peak = (0..per)
            .max_by(|&i, &j| plane[i].total_cmp(&plane[j]))
            .expect("pixels");
        assert!(p.levels[peak] >= b.levels[peak], "channel {c}");
        assert!(
            p.levels.iter().map(|&l| u32::from(l)).sum::<u32>()
                > b.levels.iter().map(|&l| u32::from(l)).sum::<u32>(),
            "channel {c} brighter"
        );
    }
    // The zoom: epoch 2 | epoch 3 | 3 − 2, the difference being epoch 2's maps (2a − a).
    let d = s
        .pictures()
        .epoch_diff
        .clone()
        .expect("an epoch difference");
    assert_eq!(d.epochs, (2, 3));
    assert_eq!(d.then.len(), l0.channels);
    for (c, own_scale) in before.iter().enumerate() {
        let plane = &a.layers[0].data[c * per..(c + 1) * per];
        let max = plane.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
        assert!(
            (d.diff_max[c] - max).abs() <= 1e-6 * max.max(1.0),
            "channel {c}"
        );
        if max > 0.0 {
            let peak = (0..per)
                .max_by(|&i, &j| plane[i].abs().total_cmp(&plane[j].abs()))
                .expect("pixels");
            let want = if plane[peak] > 0.0 { 255 } else { 1 };
            assert_eq!(d.diff[c].levels[peak], want, "channel {c}");
        }
        assert_eq!(
            &d.then[c], own_scale,
            "channel {c}: epoch 2 at its own scale"
        );
    }
    let text = format!("{}", draw(&s, 160, 40).backend());
    assert!(text.contains("at epoch 2's scale"), "{text}");
    assert!(text.contains("epoch 2 | epoch 3 | 3 − 2"), "{text}");
    // z again: each snapshot's own scale.
    press(&mut s, "z");
    assert!(s.state().pinned_scale().is_none());
    assert!(s.pictures().epoch_diff.is_none());
    assert_eq!(own(&s), on_own);
}
