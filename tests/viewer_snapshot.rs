//! The viewer on a finished-run fixture: the run directory is written from fixed events, the
//! viewer's worker reads it as it would any run, and the Training tab is snapshotted.

use convscope::config::{Config, UiConfig};
use convscope::events::{Event, FinishInfo, FinishReason};
use convscope::run::{ClassesInfo, RunDir, event_log::EventLog};
use convscope::ui::App;
use convscope::ui::bench_data as fixtures;
use ratatui::{Terminal, backend::TestBackend};

/// A finished run written from the fixture's events (no checkpoint).
fn finished_fixture(dir: &std::path::Path) -> RunDir {
    let (run, _lock, _) = RunDir::create(&dir.join("run")).expect("run dir");
    run.write_config(&Config::default()).expect("config");
    run.write_classes(&ClassesInfo {
        classes: vec!["cats".into(), "dogs".into()],
        train_images: 1600,
        val_images: 400,
        skipped: Vec::new(),
    })
    .expect("classes");
    let mut log = EventLog::append(&run.events_path()).expect("events");
    let mut history = fixtures::history();
    history.push(Event::Finished(FinishInfo {
        reason: FinishReason::Completed,
        epoch: 2,
        batch: 32,
        cause: None,
    }));
    for e in &history {
        log.write(e).expect("write");
    }
    drop(log);
    run
}

#[test]
fn viewer_on_a_finished_run_fixture() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = finished_fixture(tmp.path());

    let (tx, mut rx) = convscope::events::channel(1024);
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
    let viewer = convscope::infer::viewer::spawn(run.clone(), tx, cmd_rx).expect("viewer");
    let mut state = App::new(
        &UiConfig::default(),
        "convscope · fixture".into(),
        run.path.clone(),
    );
    // Everything the log holds arrives, ending with the final event.
    while let Some(e) = rx.blocking_recv() {
        let done = matches!(e, Event::Finished(_));
        state.apply(e);
        if done {
            break;
        }
    }
    drop(cmd_tx);
    drop(rx);
    viewer.join().expect("viewer thread");
    state.resize(120, 40);
    // The Training tab: the first one shown.
    let mut t = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    t.draw(|f| state.render(f)).expect("draw");
    let text = format!("{}", t.backend());
    assert!(text.contains("finished"), "{text}");
    // The run dir path differs per test run: blank it before comparing.
    let text = text.replace(&run.path.display().to_string(), "RUN");
    insta::assert_snapshot!("viewer_finished_run_training", text);
}

/// Probes asked for faster than they are answered (a held `n`) are answered once, for the
/// last image, not one by one.
#[test]
fn queued_probes_are_answered_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = finished_fixture(tmp.path());
    let (tx, mut rx) = convscope::events::channel(1024);
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
    for i in 0..10 {
        cmd_tx
            .send(convscope::events::Command::Probe {
                image: format!("/probe-{i}.png").into(),
            })
            .expect("queued");
    }
    let viewer = convscope::infer::viewer::spawn(run, tx, cmd_rx).expect("viewer");
    let mut warnings = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // The fixture has no checkpoint: each answered probe is a warning.
    while warnings.is_empty() && std::time::Instant::now() < deadline {
        while let Some(e) = rx.try_recv() {
            if let Event::Warning(w) = e {
                warnings.push(w.message);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Once the viewer has seen its commands end and stopped, every answer it sent is queued.
    drop(cmd_tx);
    viewer.join().expect("viewer thread");
    while let Some(e) = rx.try_recv() {
        if let Event::Warning(w) = e {
            warnings.push(w.message);
        }
    }
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}
