//! `convscope import` and `convscope export-weights` with the real binary, on small models
//! made by the real Keras and PyTorch (`scripts/import_fixtures.py`, committed under
//! `tests/fixtures/import/`): the imported run predicts what the framework predicted on the
//! same images (the layout conversions), it is an ordinary run (predict, export, resume on an
//! image folder), bad files are refused naming what is wrong, and exported weights import back
//! to the same predictions.

mod common;

use std::path::{Path, PathBuf};

use common::{events, run, synthetic};
use convscope::events::Event;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).to_string_lossy().into_owned()
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("json")
}

fn images(exp: &Value) -> Vec<String> {
    exp["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|n| fixture(n.as_str().expect("name")))
        .collect()
}

/// `convscope ARGS`: (success, stdout, stderr).
fn cs(args: &[&str]) -> (bool, String, String) {
    let out = run(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn import(file: &str, run_dir: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["import", file, "--run", run_dir.to_str().expect("utf8")];
    args.extend_from_slice(extra);
    cs(&args)
}

/// `predict --json`: probabilities per image.
fn predict(run_dir: &Path, images: &[String]) -> Vec<Vec<f64>> {
    let mut args = vec!["predict", run_dir.to_str().expect("utf8"), "--json"];
    args.extend(images.iter().map(String::as_str));
    let (ok, out, err) = cs(&args);
    assert!(ok, "predict failed: {err}");
    let v: Value = serde_json::from_str(&out).expect("predict json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|p| {
            p["probabilities"]
                .as_array()
                .expect("probabilities")
                .iter()
                .map(|x| x.as_f64().expect("number"))
                .collect()
        })
        .collect()
}

fn max_abs_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len(), "{x:?} vs {y:?}");
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f64::max)
}

fn sha256sum(path: &str) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("hash")
        .to_string()
}

#[test]
fn every_fixture_imports_and_predicts_what_its_framework_did() {
    let exp = expected();
    let imgs = images(&exp);
    let tmp = tempfile::tempdir().expect("tempdir");
    let models = exp["models"].as_object().expect("models");
    assert_eq!(models.len(), 7, "every format has a fixture");
    for (name, m) in models {
        let run_dir = tmp.path().join(name.replace('.', "_"));
        let config = m["config"].as_str().map(fixture);
        let mut extra = Vec::new();
        if let Some(c) = &config {
            extra.extend(["--config", c.as_str()]);
        }
        let (ok, _, err) = import(&fixture(name), &run_dir, &extra);
        assert!(ok, "{name}: {err}");
        let want: Vec<Vec<f64>> = m["probabilities"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                r.as_array()
                    .expect("row")
                    .iter()
                    .map(|x| x.as_f64().expect("number"))
                    .collect()
            })
            .collect();
        let got = predict(&run_dir, &imgs);
        let diff = max_abs_diff(&got, &want);
        assert!(
            diff < 1e-4,
            "{name}: max |p - p_framework| = {diff}: {got:?} vs {want:?}"
        );
        // An ordinary run directory: config, classes, a checkpoint, and where it came from.
        let classes: Value = serde_json::from_str(
            &std::fs::read_to_string(run_dir.join("classes.json")).expect("classes.json"),
        )
        .expect("json");
        let names: Vec<&str> = classes["classes"]
            .as_array()
            .expect("classes")
            .iter()
            .map(|c| c.as_str().expect("name"))
            .collect();
        match m["classes"].as_array() {
            Some(want) => assert_eq!(names, *want, "{name}: the file's class names"),
            None => assert_eq!(names.len(), want[0].len(), "{name}"),
        }
        assert!(run_dir.join("config.toml").is_file());
        assert!(run_dir.join("checkpoints/epoch-0001/model.bpk").is_file());
        let imported = events(&run_dir)
            .into_iter()
            .find_map(|e| match e {
                Event::Imported(i) => Some(i),
                _ => None,
            })
            .expect("an imported event");
        assert_eq!(imported.sha256, sha256sum(&fixture(name)), "{name}");
        assert!(imported.source.ends_with(name), "{:?}", imported.source);
    }
}

#[test]
fn dry_run_prints_every_tensor_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = tmp.path().join("run");
    let (ok, out, err) = import(&fixture("keras3_binary.keras"), &run_dir, &["--dry-run"]);
    assert!(ok, "{err}");
    for tensor in [
        "layers/conv2d/vars/0",
        "layers/conv2d/vars/1",
        "layers/conv2d_1/vars/0",
        "layers/conv2d_2/vars/0",
        "layers/dense/vars/0",
        "layers/dense_1/vars/1",
    ] {
        assert!(out.contains(tensor), "{tensor} missing from:\n{out}");
    }
    assert!(out.contains("(3, 3, 3, 4)"), "{out}");
    assert!(
        out.contains("kernel (kh, kw, in, out) -> (out, in, kh, kw)"),
        "{out}"
    );
    assert!(
        out.contains("rows reordered from Keras's (H, W, C) = (4, 4, 8) flattening to (C, H, W)"),
        "{out}"
    );
    assert!(out.contains("layer 9 dense weight (128, 16)"), "{out}");
    assert!(!run_dir.exists(), "a dry run writes nothing");
    // PyTorch: Linear weights are transposed.
    let (ok, out, err) = import(
        &fixture("torch_binary.pt"),
        &run_dir,
        &["--dry-run", "--config", &fixture("small.toml")],
    );
    assert!(ok, "{err}");
    assert!(out.contains("12.weight"), "{out}");
    assert!(
        out.contains("Linear weight (out, in) transposed to (in, out)"),
        "{out}"
    );
    assert!(!run_dir.exists());
}

#[test]
fn a_file_that_does_not_fit_is_refused_with_the_table_and_nothing_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = tmp.path().join("run");
    // The default network is the tutorial's: the small PyTorch model does not fit it.
    let (ok, _, err) = import(&fixture("torch_binary.pt"), &run_dir, &[]);
    assert!(!ok);
    assert!(
        err.contains("First problem: `0.weight` (4, 3, 3, 3): shape mismatch: wants (16, 3, 3, 3)"),
        "{err}"
    );
    assert!(err.contains("source tensor"), "the table: {err}");
    assert!(err.contains("--config"), "says what to do: {err}");
    assert!(!run_dir.exists(), "nothing written");
    // Another architecture: a ResNet's conv without bias and batch norm.
    let (ok, out, err) = import(
        &fixture("resnet_like.pt"),
        &run_dir,
        &["--config", &fixture("small.toml"), "--dry-run"],
    );
    assert!(!ok);
    assert!(
        err.contains("`0.weight` (16, 3, 3, 3): shape mismatch"),
        "{err}"
    );
    assert!(out.contains("1.running_mean"), "{out}");
    assert!(out.contains("batch normalisation"), "{out}");
    assert!(
        out.contains("missing: the file has no tensor for it"),
        "{out}"
    );
    assert!(!run_dir.exists());
    // Too few classes for the file's last layer.
    let (ok, _, err) = import(
        &fixture("keras3_three.keras"),
        &run_dir,
        &["--classes", "a,b"],
    );
    assert!(!ok);
    assert!(err.contains("layers/dense_1/vars/0"), "{err}");
    assert!(!run_dir.exists());
    // An existing run is not overwritten.
    let (ok, _, err) = import(&fixture("keras3_binary.keras"), &run_dir, &[]);
    assert!(ok, "{err}");
    let (ok, _, err) = import(&fixture("keras3_binary.keras"), &run_dir, &[]);
    assert!(!ok);
    assert!(err.contains("holds a run already"), "{err}");
}

#[test]
fn an_unsupported_keras_layer_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = tmp.path().join("run");
    let (ok, _, err) = import(&fixture("keras3_functional_bn.keras"), &run_dir, &[]);
    assert!(!ok);
    assert!(
        err.contains("`batch_normalization` is a BatchNormalization"),
        "{err}"
    );
    assert!(
        err.contains("Conv2D, MaxPooling2D, Dropout, Flatten and Dense"),
        "{err}"
    );
    assert!(!run_dir.exists());
}

#[test]
fn damaged_and_unknown_files_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = tmp.path().join("run");
    for (name, says) in [
        ("keras3_binary.keras", "damaged or truncated"),
        ("keras2_softmax2.h5", "damaged or truncated"),
        ("keras3_binary.weights.h5", "damaged or truncated"),
        ("torch_binary.pt", "damaged or truncated"),
        ("torch_three.safetensors", "damaged or truncated"),
    ] {
        let bytes = std::fs::read(fixtures().join(name)).expect("fixture");
        let cut = tmp.path().join(name);
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
        let (ok, _, err) = import(cut.to_str().expect("utf8"), &run_dir, &[]);
        assert!(!ok, "{name}");
        assert!(
            err.contains(cut.to_str().expect("utf8")),
            "{name}: names the file: {err}"
        );
        assert!(err.contains(says), "{name}: {err}");
        assert!(!run_dir.exists(), "{name}");
    }
    let junk = tmp.path().join("model.onnx");
    std::fs::write(&junk, b"not a model at all").expect("write");
    let (ok, _, err) = import(junk.to_str().expect("utf8"), &run_dir, &[]);
    assert!(!ok);
    assert!(err.contains("unknown model format"), "{err}");
    assert!(
        err.contains(".keras") && err.contains(".safetensors") && err.contains(".pth"),
        "{err}"
    );
    let (ok, _, err) = import(
        tmp.path().join("nope.keras").to_str().expect("utf8"),
        &run_dir,
        &[],
    );
    assert!(!ok);
    assert!(err.contains("nope.keras"), "{err}");
}

#[test]
fn an_imported_run_exports_pictures_and_trains_on_from_an_image_folder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 6, 32);
    let run_dir = tmp.path().join("run");
    let (ok, _, err) = import(
        &fixture("torch_binary.pt"),
        &run_dir,
        &[
            "--config",
            &fixture("small.toml"),
            "--data",
            data.to_str().expect("utf8"),
        ],
    );
    assert!(ok, "{err}");
    assert!(err.contains("convscope resume"), "{err}");
    // Class names from the folder.
    let classes = std::fs::read_to_string(run_dir.join("classes.json")).expect("classes");
    let mut folders: Vec<String> = std::fs::read_dir(&data)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    for f in &folders {
        assert!(classes.contains(f.as_str()), "{classes}");
    }
    // export: the pictures of the imported network.
    let pictures = tmp.path().join("pictures");
    let (ok, _, err) = cs(&[
        "export",
        run_dir.to_str().expect("utf8"),
        "--out",
        pictures.to_str().expect("utf8"),
    ]);
    assert!(ok, "{err}");
    let pngs = std::fs::read_dir(&pictures)
        .expect("ls")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png"))
        })
        .count();
    assert!(pngs >= 3, "{pngs} pictures");
    // One more epoch on the image folder.
    let before = predict(&run_dir, &images(&expected()));
    let (ok, _, err) = cs(&[
        "resume",
        run_dir.to_str().expect("utf8"),
        "--epochs",
        "2",
        "--headless",
    ]);
    assert!(ok, "{err}");
    assert!(run_dir.join("checkpoints/epoch-0002/model.bpk").is_file());
    let after = predict(&run_dir, &images(&expected()));
    assert!(
        max_abs_diff(&before, &after) > 0.0,
        "training changed the weights"
    );
    assert!(
        events(&run_dir)
            .iter()
            .any(|e| matches!(e, Event::Epoch(m) if m.epoch == 2))
    );
}

#[test]
fn exported_weights_import_back_to_the_same_predictions() {
    let exp = expected();
    let imgs = images(&exp);
    let tmp = tempfile::tempdir().expect("tempdir");
    let small = fixture("small.toml");
    for (model, config) in [
        ("keras3_three.keras", None),
        ("keras3_binary.weights.h5", Some("small.toml")),
        ("torch_checkpoint.pth", Some("small.toml")),
    ] {
        let first = tmp.path().join(format!("{model}-run"));
        let mut extra = Vec::new();
        let cfg = config.map(fixture);
        if let Some(c) = &cfg {
            extra.extend(["--config", c.as_str()]);
        }
        let (ok, _, err) = import(&fixture(model), &first, &extra);
        assert!(ok, "{model}: {err}");
        let want = predict(&first, &imgs);
        let want_classes = std::fs::read_to_string(first.join("classes.json")).expect("classes");
        for (out, back_extra) in [
            ("w.safetensors", Vec::new()),
            ("w.keras", Vec::new()),
            ("w.weights.h5", vec!["--config", small.as_str()]),
        ] {
            let file = tmp.path().join(format!("{model}-{out}"));
            let file = file.to_str().expect("utf8");
            let (ok, _, err) = cs(&[
                "export-weights",
                first.to_str().expect("utf8"),
                "--out",
                file,
            ]);
            assert!(ok, "{model} -> {out}: {err}");
            let back = tmp.path().join(format!("{model}-{out}-back"));
            let (ok, _, err) = import(file, &back, &back_extra);
            assert!(ok, "{model} -> {out} -> import: {err}");
            let got = predict(&back, &imgs);
            let diff = max_abs_diff(&got, &want);
            assert!(diff < 1e-6, "{model} -> {out}: {diff}");
            if out != "w.weights.h5" {
                let classes = std::fs::read_to_string(back.join("classes.json")).expect("classes");
                let names = |s: &str| -> Value {
                    serde_json::from_str::<Value>(s).expect("json")["classes"].clone()
                };
                assert_eq!(
                    names(&classes),
                    names(&want_classes),
                    "{model} -> {out}: class names travel"
                );
            }
        }
    }
    // The format is told from the name, or asked for.
    let (ok, _, err) = cs(&[
        "export-weights",
        tmp.path()
            .join("keras3_three.keras-run")
            .to_str()
            .expect("utf8"),
        "--out",
        tmp.path().join("w.bin").to_str().expect("utf8"),
    ]);
    assert!(!ok);
    assert!(err.contains("--format"), "{err}");
}

/// The tutorial network at 150x150 (10.6 M parameters), made by
/// `scripts/import_fixtures.py full --out DIR`; run with
/// `CONVSCOPE_IMPORT_FULL=DIR cargo test --test import -- --ignored`.
#[test]
#[ignore = "needs the full-size model made by scripts/import_fixtures.py full"]
fn import_full_size_keras_model() {
    let dir =
        PathBuf::from(std::env::var("CONVSCOPE_IMPORT_FULL").expect("CONVSCOPE_IMPORT_FULL=DIR"));
    let exp: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.json")).expect("expected.json"),
    )
    .expect("json");
    let imgs: Vec<String> = exp["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|n| {
            dir.join(n.as_str().expect("name"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = tmp.path().join("run");
    let file = dir.join("tutorial.keras");
    let (ok, _, err) = import(file.to_str().expect("utf8"), &run_dir, &[]);
    assert!(ok, "{err}");
    let want: Vec<Vec<f64>> =
        serde_json::from_value(exp["models"]["tutorial.keras"]["probabilities"].clone())
            .expect("rows");
    let diff = max_abs_diff(&predict(&run_dir, &imgs), &want);
    assert!(diff < 1e-4, "{diff}");
}

/// The screen of an imported run: where its weights came from, its network on the Model tab and
/// its filters, as for a run trained here (before: "waiting for the trainer…" and no summary).
#[test]
fn an_imported_run_is_viewed_with_its_origin_and_its_network() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = tmp.path().join("run");
    let (ok, _, err) = import(&fixture("keras3_three.keras"), &run_dir, &[]);
    assert!(ok, "{err}");
    let view = common::Tmux::start(
        "convscope-imported",
        &format!(
            "{} view {} --graphics halfblocks; sleep 30",
            env!("CARGO_BIN_EXE_convscope"),
            run_dir.display()
        ),
    );
    let screen = common::strip(&view.wait_text("imported from keras3_three.keras"));
    assert!(screen.contains("3 classes"), "{screen}");
    assert!(!screen.contains("waiting for the trainer"), "{screen}");
    view.keys("2");
    let screen = common::strip(&view.wait_text("Conv2D"));
    assert!(screen.contains("Dense"), "{screen}");
    view.keys("3");
    view.wait_text("filter");
    view.keys("q");
}
