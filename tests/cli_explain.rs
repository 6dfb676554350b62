//! `convscope explain` with the real binary on a real (tiny) training: maps at each layer's
//! resolution, overlay PNGs, the probability `predict` gives, and clear errors for bad input;
//! `convscope bench --explain` prints its timings.

mod common;

use std::path::Path;

use serde_json::Value;

fn first_image(data: &Path, class: &str) -> String {
    let mut files: Vec<_> = std::fs::read_dir(data.join(class))
        .expect("class folder")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files[0].to_str().expect("utf8").to_string()
}

/// The one explained image of `out`, checked for the shape every answer has.
fn one(out: &std::process::Output) -> Value {
    let v = common::json(out);
    let list = v.as_array().expect("array");
    assert_eq!(list.len(), 1, "{v}");
    let e = list[0].clone();
    let (w, h) = (
        e["width"].as_u64().expect("width"),
        e["height"].as_u64().expect("height"),
    );
    if e["no_positive_evidence"] == true {
        assert!(e["map"].is_null());
    } else {
        let rows = e["map"].as_array().expect("map rows");
        assert_eq!(rows.len() as u64, h);
        let values: Vec<f64> = rows
            .iter()
            .flat_map(|r| {
                let r = r.as_array().expect("row");
                assert_eq!(r.len() as u64, w);
                r.iter().map(|v| v.as_f64().expect("number"))
            })
            .collect();
        assert!(values.iter().all(|v| (0.0..=1.0).contains(v)), "{values:?}");
        let max = values.iter().copied().fold(0.0, f64::max);
        assert!((max - 1.0).abs() < 1e-3, "normalised map's max is {max}");
    }
    let png = Path::new(e["png"].as_str().expect("png path"));
    let decoded = image::open(png).expect("the overlay is a PNG");
    assert_eq!((decoded.width(), decoded.height()), (16, 16));
    e
}

#[test]
fn explain_maps_layers_classes_and_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::synthetic(dir.path(), 12, 16);
    let run = dir.path().join("run");
    common::train(&data, &run).epochs(1).success();
    let run_s = run.to_str().expect("utf8");
    let out_dir = dir.path().join("out");
    let out_s = out_dir.to_str().expect("utf8");
    let img = first_image(&data, "stripes");
    let explain = |extra: &[&str]| {
        let mut args = vec!["explain", run_s, img.as_str(), "--out", out_s, "--json"];
        args.extend_from_slice(extra);
        common::run(&args)
    };

    // Default: Grad-CAM at the last conv before its pool, for the predicted class, with the
    // probability predict gives.
    let e = one(&explain(&[]));
    assert_eq!(e["method"], "gradcam");
    assert_eq!(e["layer"], "conv2d_2");
    assert_eq!(e["layer_index"], 5);
    assert_eq!(
        (e["width"].as_u64(), e["height"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(e["class"], e["predicted"]);
    let p = common::json(&common::run(&["predict", run_s, img.as_str(), "--json"]));
    assert_eq!(p[0]["class"], e["class"]);
    let (pp, ep) = (
        p[0]["probability"].as_f64().expect("p"),
        e["probability"].as_f64().expect("p"),
    );
    assert!((pp - ep).abs() < 1e-5, "predict {pp}, explain {ep}");

    // The other class: its probability is one minus the predicted one's.
    let other = if e["class"] == "blobs" {
        "stripes"
    } else {
        "blobs"
    };
    let o = one(&explain(&["--class", other]));
    assert_eq!(o["class"], other);
    let op = o["probability"].as_f64().expect("p");
    assert!((op + ep - 1.0).abs() < 1e-4, "{op} + {ep}");

    // Layers by name, by index and all; the gradient methods at the input's resolution.
    for (args, layer, side) in [
        (vec!["--layer", "conv2d"], "conv2d", 16),
        (vec!["--layer", "3"], "conv2d_1", 8),
        (vec!["--layer", "all"], "all", 16),
        (vec!["--method", "saliency"], "input", 16),
        (
            vec!["--method", "smoothgrad", "--colormap", "turbo"],
            "input",
            16,
        ),
        (
            vec![
                "--layer",
                "conv2d_1",
                "--image-weight",
                "heat",
                "--colormap",
                "magma",
            ],
            "conv2d_1",
            8,
        ),
    ] {
        let e = one(&explain(&args));
        assert_eq!(e["layer"], layer, "{args:?}");
        assert_eq!(e["width"].as_u64(), Some(side), "{args:?}");
    }
    // Each answer wrote its own picture.
    let pngs = std::fs::read_dir(&out_dir).expect("out").count();
    assert!(pngs >= 7, "{pngs} overlays written");

    // Without --json: a line per image naming the picture.
    let out = common::run(&["explain", run_s, img.as_str(), "--out", out_s]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("gradcam at conv2d_2 (4x4)"), "{text}");
    assert!(text.contains("explain-"), "{text}");

    bad_input_is_named(run_s, &img, out_s, dir.path());
}

/// Bad input: each error names what was wrong.
fn bad_input_is_named(run_s: &str, img: &str, out_s: &str, dir: &Path) {
    let explain = |extra: &[&str]| {
        let mut args = vec!["explain", run_s, img, "--out", out_s, "--json"];
        args.extend_from_slice(extra);
        common::run(&args)
    };
    for (args, names) in [
        (
            vec!["--layer", "max_pooling2d"],
            vec!["max_pooling2d", "not a conv layer", "conv2d_2 (5)"],
        ),
        (
            vec!["--layer", "nope"],
            vec!["nope", "no such layer", "conv2d_1 (3)"],
        ),
        (vec!["--layer", "99"], vec!["99", "no such layer"]),
        (vec!["--class", "zebras"], vec!["zebras", "blobs, stripes"]),
    ] {
        let out = explain(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        for n in names {
            assert!(err.contains(n), "{args:?}: {err}");
        }
    }
    // A missing image: named, the others still explained, exit 1.
    let missing = dir.join("no-such.png");
    let out = common::run(&[
        "explain",
        run_s,
        missing.to_str().expect("utf8"),
        img,
        "--out",
        out_s,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such.png"));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
}

#[test]
fn bench_explain_prints_each_method() {
    let out = common::run(&["bench", "--explain", "--steps", "1", "--image-size", "48"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for method in ["gradcam", "saliency", "smoothgrad"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("explain {method}")))
            .unwrap_or_else(|| panic!("no {method} line in {text}"));
        let ms: f64 = line
            .split("p50")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number in {line}"));
        assert!(ms.is_finite() && ms > 0.0 && ms < 600_000.0, "{line}");
    }
    // Only the explanation timings: no training step.
    assert!(!text.contains("train step"), "{text}");
}
