//! `convscope report`: the validation record of a real training, against `convscope predict`.

mod common;

use std::path::Path;

use serde_json::Value;

#[test]
fn report_confusion_matrix_equals_what_predict_gives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::synthetic(dir.path(), 20, 16);
    let run = dir.path().join("run");
    common::train(&data, &run).epochs(3).success();
    let run_s = run.to_str().expect("utf8");

    let report = common::json(&common::run(&["report", run_s, "--json"]));
    assert_eq!(report["epoch"], 3);
    let confusion: Vec<Vec<u64>> =
        serde_json::from_value(report["confusion"].clone()).expect("matrix");

    // The validation images the record indexes, with their labels.
    let record = convscope::run::validation::read_epoch(&run, 3).expect("record");
    let list = convscope::run::validation::read_list(&run, record.list_id).expect("list");
    let classes: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("classes.json")).expect("classes"))
            .expect("json");
    assert_eq!(classes["val_images"], list.images.len());
    assert!(!list.images.is_empty());
    assert_eq!(report["images"], list.images.len());

    let mut args = vec!["predict", run_s, "--json"];
    args.extend(list.images.iter().map(|i| i.path.as_str()));
    let predictions = common::json(&common::run(&args));
    let mut expected = vec![vec![0u64; list.classes.len()]; list.classes.len()];
    for (image, p) in list
        .images
        .iter()
        .zip(predictions.as_array().expect("array"))
    {
        assert_eq!(p["image"], image.path.as_str());
        let predicted = usize::try_from(p["index"].as_u64().expect("index")).expect("usize");
        expected[image.label][predicted] += 1;
    }
    assert_eq!(confusion, expected);

    // The other parts are there, and name images of the list.
    assert!(report["flipped"]["previous_epoch"] == 2);
    for line in report["most_wrong"].as_array().expect("most wrong") {
        let path = line["path"].as_str().expect("path");
        assert!(list.images.iter().any(|i| i.path == path), "{path}");
    }
    assert!(report["label_noise"].is_array());
    assert_eq!(
        report["per_class"].as_array().expect("per class").len(),
        list.classes.len()
    );

    // An earlier epoch, and the plain-text form.
    let first = common::json(&common::run(&["report", run_s, "--epoch", "1", "--json"]));
    assert_eq!(first["epoch"], 1);
    assert!(first["flipped"].is_null());
    let text = common::run(&["report", run_s]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("confusion matrix"), "{text}");
    assert!(text.contains("epoch 3:"), "{text}");
}

#[test]
fn a_missing_epoch_and_a_torn_record_are_named_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::synthetic(dir.path(), 8, 16);
    let run = dir.path().join("run");
    common::train(&data, &run).epochs(1).success();
    let run_s = run.to_str().expect("utf8");

    let out = common::run(&["report", run_s, "--epoch", "7"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("epoch 7 has no validation record"), "{err}");

    let path = Path::new(&run).join("validation/epoch-0001.bin");
    let bytes = std::fs::read(&path).expect("record");
    std::fs::write(&path, &bytes[..bytes.len() - 5]).expect("tear");
    let out = common::run(&["report", run_s]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("epoch-0001.bin") && err.contains("cut short"),
        "{err}"
    );
}
