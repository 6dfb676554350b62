//! `convscope explain --maximize` and `convscope bench --maximize` with the real binary on a
//! real (tiny) training.

mod common;

use std::path::Path;

use serde_json::Value;

fn explain(run: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "explain",
        run.to_str().expect("utf8"),
        "--maximize",
        "conv2d_1",
        "--out",
        out.to_str().expect("utf8"),
        "--json",
    ];
    args.extend(extra);
    common::run(&args)
}

#[test]
fn maximize_writes_a_picture_per_filter_raises_each_and_caches_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::synthetic(dir.path(), 12, 16);
    let run = dir.path().join("run");
    common::train(&data, &run).epochs(2).success();
    let out = dir.path().join("out");

    let first = common::json(&explain(&run, &out, &["--filters", "0-7"]));
    assert_eq!(first["layer"], "conv2d_1");
    assert_eq!(first["tier"], "quick");
    assert_eq!(first["epoch"], 2);
    assert_eq!(first["cached"], false);
    let filters = first["filters"].as_array().expect("filters");
    assert_eq!(filters.len(), 8);
    for (i, f) in filters.iter().enumerate() {
        assert_eq!(f["filter"], i);
        assert_eq!(f["cached"], false);
        let (seed, result) = (
            f["seed_activation"].as_f64().expect("number"),
            f["activation"].as_f64().expect("number"),
        );
        assert!(result > seed, "filter {i}: {result} not above {seed}");
        assert!(f["shown_activation"].as_f64().expect("number") >= 0.0);
        let file = Path::new(f["file"].as_str().expect("file"));
        assert!(file.starts_with(&out), "{}", file.display());
        let picture = image::open(file).expect("a PNG").to_rgb8();
        assert_eq!(picture.dimensions(), (16, 16));
    }
    let sheet = image::open(first["sheet"].as_str().expect("sheet")).expect("a PNG");
    assert!(sheet.width() > 64 && sheet.height() >= 64);

    // The cache is in the run directory; make one entry say something only the cache knows.
    let cache = Path::new(first["cache"].as_str().expect("cache"));
    assert!(cache.starts_with(&run), "{}", cache.display());
    let entry = cache.join("filter-003.json");
    let mut planted: Value =
        serde_json::from_str(&std::fs::read_to_string(&entry).expect("entry")).expect("json");
    planted["activation"] = Value::from(1234.5);
    std::fs::write(&entry, planted.to_string()).expect("write");
    let before = std::fs::read(out.join("conv2d_1-quick-filter-005.png")).expect("png");

    let out2 = dir.path().join("out2");
    let second = common::json(&explain(&run, &out2, &["--filters", "2-5"]));
    assert_eq!(second["cached"], true);
    let filters = second["filters"].as_array().expect("filters");
    assert_eq!(filters.len(), 4);
    assert!(filters.iter().all(|f| f["cached"] == true));
    assert_eq!(filters[1]["filter"], 3);
    assert_eq!(filters[1]["activation"], 1234.5);
    let after = std::fs::read(out2.join("conv2d_1-quick-filter-005.png")).expect("png");
    assert_eq!(before, after, "the cached picture differs");

    // Another seed is another cache entry: computed afresh.
    let other = common::json(&explain(&run, &out2, &["--filters", "0", "--seed", "9"]));
    assert_eq!(other["cached"], false);
    assert_ne!(other["cache"], first["cache"]);
}

#[test]
fn maximize_names_the_conv_layers_when_the_layer_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::synthetic(dir.path(), 8, 16);
    let run = dir.path().join("run");
    common::train(&data, &run).success();
    let out = dir.path().join("out");
    let mut args = vec![
        "explain",
        run.to_str().expect("utf8"),
        "--maximize",
        "dense",
        "--out",
        out.to_str().expect("utf8"),
    ];
    let failed = common::run(&args);
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("conv2d, conv2d_1, conv2d_2"),
        "no list of conv layers in: {err}"
    );
    args[3] = "conv2d";
    args.extend(["--filters", "16"]);
    let failed = common::run(&args);
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains("filters 0-15"), "{err}");
    assert!(!out.join("conv2d-quick-sheet.png").exists());
}

#[test]
fn bench_maximize_times_both_tiers() {
    let out = common::run(&["bench", "--maximize", "--image-size", "16"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for tier in ["quick", "regularised"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("maximize {tier}: 64 filters of conv layer 3")))
            .unwrap_or_else(|| panic!("no {tier} line in:\n{text}"));
        assert!(line.contains(" s ("), "{line}");
    }
    assert!(
        !text.contains("train step"),
        "--maximize times only maximisation"
    );
}
