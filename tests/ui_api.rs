//! The UI's public surface as the CLI uses it: the entry point, the sample photos, the bench.

use convscope::ui::{self, UiExit, UiOptions};

fn returns_ui_result<F: Future<Output = anyhow::Result<UiExit>>>(_: &F) {}
fn is_send<T: Send>(_: &T) {}

#[test]
fn entry_point_builds_a_sendable_future() {
    let (_events_tx, events) = convscope::events::channel(4);
    let (commands, _commands_rx) = std::sync::mpsc::channel();
    let options = UiOptions {
        config: convscope::config::UiConfig::default(),
        title: "t".into(),
        run_dir: "runs/t".into(),
    };
    // Built but never polled: polling would take over the terminal.
    let run = ui::run(options, events, commands);
    returns_ui_result(&run);
    is_send(&run);
}

#[test]
fn sample_photos_are_a_cat_and_a_dog() {
    let names: Vec<&str> = convscope::viz::SAMPLE_PHOTOS.iter().map(|p| p.0).collect();
    assert_eq!(names, ["cat.jpg", "dog.jpg"]);
}

#[test]
fn bench_render_times_every_tab() {
    let timings = ui::bench_render(2);
    for tab in ["Training", "Model", "Filters", "Feature maps", "Help"] {
        assert!(
            timings.iter().any(|t| t.name == format!("draw {tab}")),
            "{tab}: {timings:?}"
        );
    }
}
