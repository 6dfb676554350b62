//! Unit health on a real training: the trainer writes `RUN/health/epoch-NNNN.json` every
//! epoch, `convscope report` shows it per layer, and `convscope export` writes it as CSV with
//! the confusion matrix (CSV and PNG) that `report --json` gives.

mod common;

use serde_json::Value;

#[test]
fn health_is_recorded_reported_and_exported_with_the_confusion_matrix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::synthetic(dir.path(), 16, 16);
    let run = dir.path().join("run");
    common::train(&data, &run).epochs(2).success();
    let run_s = run.to_str().expect("utf8");

    // One file per validated epoch, naming the tutorial's conv and hidden dense layers.
    assert_eq!(convscope::run::health::epochs(&run), [1, 2]);
    let stored = convscope::run::health::read(&run, 2).expect("health");
    let names: Vec<&str> = stored.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["conv2d", "conv2d_1", "conv2d_2", "dense"]);
    let units: Vec<usize> = stored.layers.iter().map(|l| l.units).collect();
    assert_eq!(units, [16, 32, 64, 512]);
    for l in &stored.layers {
        assert_eq!(l.channels.len(), l.units);
        assert_eq!(l.on_rate_histogram.iter().sum::<usize>(), l.units);
    }
    let classes: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("classes.json")).expect("classes"))
            .expect("json");
    assert_eq!(classes["val_images"], stored.images);

    let report = common::json(&common::run(&["report", run_s, "--json"]));
    let health = &report["unit_health"];
    let layers = health["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 4);
    for (line, l) in layers.iter().zip(&stored.layers) {
        assert_eq!(line["layer"], l.name.as_str());
        assert_eq!(line["units"], l.units);
        assert!((line["dead_pct"].as_f64().expect("dead") - l.dead_pct).abs() < 1e-9);
        let dead = line["dead_units"].as_array().expect("dead units").len();
        assert!((100.0 * dead as f64 / l.units as f64 - l.dead_pct).abs() < 1e-9);
    }
    let text = common::run(&["report", run_s]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("unit health over"), "{text}");
    assert!(text.contains("conv2d_2"), "{text}");

    // export: the confusion matrix is report's, the unit CSV has a row per unit.
    let out = dir.path().join("out");
    let done = common::run(&["export", run_s, "--out", out.to_str().expect("utf8")]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let csv = std::fs::read_to_string(out.join("confusion.csv")).expect("confusion.csv");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let report_classes: Vec<&str> = report["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| c.as_str().expect("name"))
        .collect();
    assert_eq!(header[1..], report_classes[..]);
    let matrix: Vec<Vec<u64>> = lines
        .map(|l| {
            l.split(',')
                .skip(1)
                .map(|n| n.parse().expect("count"))
                .collect()
        })
        .collect();
    let expected: Vec<Vec<u64>> =
        serde_json::from_value(report["confusion"].clone()).expect("matrix");
    assert_eq!(matrix, expected);
    assert_eq!(
        matrix.iter().flatten().sum::<u64>(),
        report["images"].as_u64().expect("images")
    );
    let png = image::open(out.join("confusion.png")).expect("confusion.png decodes");
    assert!(png.width() > 100 && png.height() > 50);

    let units_csv = std::fs::read_to_string(out.join("unit_health.csv")).expect("unit csv");
    let rows: Vec<Vec<&str>> = units_csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 16 + 32 + 64 + 512);
    for l in &stored.layers {
        let dead_in_csv = rows
            .iter()
            .filter(|r| r[0] == l.name && r[7] == "1")
            .count();
        assert_eq!(dead_in_csv, l.dead_units().len(), "{}", l.name);
        let first = rows.iter().find(|r| r[0] == l.name).expect("a row");
        let on: f64 = first[2].parse().expect("on rate");
        assert!((on - l.channels[0].on_rate).abs() < 1e-12);
    }
    let layers_csv =
        std::fs::read_to_string(out.join("unit_health_layers.csv")).expect("layers csv");
    assert_eq!(layers_csv.lines().count(), 1 + 4 + 1, "{layers_csv}");
    assert!(
        layers_csv
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("output,"))
    );
}

#[test]
fn a_viewer_shows_the_runs_unit_health_on_the_model_tab() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::synthetic(dir.path(), 12, 16);
    let run = dir.path().join("run");
    common::train(&data, &run).epochs(2).success();
    let stored = convscope::run::health::read(&run, 2).expect("health");

    // The viewer's worker sends what RUN/health/ holds: both epochs, the newest in full.
    let (events_tx, mut rx) = convscope::events::channel(1024);
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
    let worker = convscope::infer::viewer::spawn(
        convscope::run::RunDir::open(&run).expect("run"),
        events_tx,
        cmd_rx,
    )
    .expect("viewer");
    let mut health = None;
    common::wait_for(
        "the viewer's unit health",
        std::time::Duration::from_mins(1),
        || {
            while let Some(e) = rx.try_recv() {
                if let convscope::events::Event::Health(h) = e {
                    health = Some(h);
                }
            }
            health.is_some()
        },
    );
    let health = health.expect("health");
    assert_eq!(
        health.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(health.latest(), Some(&stored));
    assert!(
        health.epochs[0]
            .layers
            .iter()
            .all(|l| l.channels.is_empty())
    );
    drop(cmd_tx);
    worker.join().expect("the viewer thread ends");

    // And `convscope view` draws it: the Model tab's health columns, with the stored numbers.
    let view = common::Tmux::start(
        &format!("convscope-health-{}", std::process::id()),
        &format!("{} view {}", env!("CARGO_BIN_EXE_convscope"), run.display()),
    );
    view.wait_text("● finished");
    view.keys("2");
    view.wait_text("dead%");
    let conv = stored.layer("conv2d_2").expect("conv2d_2");
    let (dead, dormant) = (
        format!("{:.1}", conv.dead_pct),
        format!("{:.1}", conv.dormant_pct),
    );
    // The whole table, once drawn (a capture may land in the middle of a redraw).
    let mut screen = String::new();
    common::wait_for(
        "the Model tab's health columns",
        std::time::Duration::from_secs(30),
        || {
            screen = common::strip(&view.capture());
            screen.contains("unit health, epoch 2")
                && screen.lines().any(|l| {
                    l.contains("conv2d_2 (Conv2D)") && l.contains(&dead) && l.contains(&dormant)
                })
        },
    );
    view.keys("q");
}
