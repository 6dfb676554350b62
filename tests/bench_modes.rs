//! `convscope bench --peers` and `--end-to-end` through the real binary, at test sizes: the
//! three-way table's ratios (a fake Python prints the peers' JSON lines), what a missing
//! package says, and the end-to-end report. No timing is asserted, only what is printed.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use common::{bin, synthetic};

/// A stand-in for Python: prints fixed epochs for `peer_tf.py`; for `peer_torch.py`, either
/// fixed epochs or the error of a missing `torch`.
fn fake_python(dir: &Path, torch_missing: bool) -> PathBuf {
    let torch = if torch_missing {
        "echo 'Traceback (most recent call last):' >&2; echo \"ModuleNotFoundError: No module named 'torch'\" >&2; exit 1"
    } else {
        "echo '{\"epoch\": 1, \"img_per_s\": 90.0}'; echo '{\"epoch\": 2, \"img_per_s\": 80.0}'"
    };
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in\n*peer_tf.py) if [ \"$2\" = --folder ]; then echo '{{\"epoch\": 1, \"img_per_s\": 1.0}}'; echo \"{{\\\"epoch\\\": 2, \\\"img_per_s\\\": $(find \"$3\" -type l | wc -l)}}\"; echo \"{{\\\"epoch\\\": 3, \\\"img_per_s\\\": $(find \"$4\" -type l | wc -l).5}}\"; exit 0; fi; echo 'loading'; echo '{{\"epoch\": 1, \"epoch_s\": 9.0, \"img_per_s\": 500.0}}'; echo '{{\"epoch\": 2, \"epoch_s\": 2.0, \"img_per_s\": 200.0}}'; echo '{{\"epoch\": 3, \"epoch_s\": 2.5, \"img_per_s\": 160.0}}' ;;\n*peer_torch.py) {torch} ;;\n*) exit 2 ;;\nesac\n"
    );
    let path = dir.join("python");
    fs::write(&path, script).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn bench(args: &[&str]) -> String {
    let out = bin()
        .args([
            "bench",
            "--pipeline",
            "false",
            "--image-size",
            "16",
            "--batch-size",
            "4",
        ])
        .args(["--steps", "1", "--warmup", "1"])
        .args(args)
        .output()
        .expect("convscope runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The rate and ratio of a table row.
fn row(text: &str, name: &str) -> (String, String) {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("  {name} ")))
        .unwrap_or_else(|| panic!("{name} in {text}"));
    let mut fields = line[name.len() + 2..].split_whitespace();
    (
        fields.next().expect("rate").to_string(),
        fields.next().expect("ratio").to_string(),
    )
}

#[test]
fn peers_table_gives_each_rate_and_convscope_over_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let python = fake_python(tmp.path(), false);
    let text = bench(&["--peers", "--python", python.to_str().expect("utf8")]);
    assert!(
        text.contains("three-way training step (random data in memory, batch 4, 16x16,"),
        "{text}"
    );
    let (ours, one) = row(&text, "convscope");
    assert_eq!(one, "1.00x", "{text}");
    let ours: f64 = ours.parse().expect("convscope's rate");
    // The best epoch after the first: 200 for TensorFlow (not its first, 500), 80 for PyTorch.
    for (name, peer) in [("TensorFlow/Keras", 200.0), ("PyTorch", 80.0)] {
        let (rate, ratio) = row(&text, name);
        assert_eq!(rate, format!("{peer:.1}"), "{text}");
        // convscope's rate is printed to 0.1: its ratio to the last digit.
        let ratio: f64 = ratio.trim_end_matches('x').parse().expect("a ratio");
        assert!(
            (ratio - ours / peer).abs() <= 0.01 + 0.05 / peer,
            "{ratio} against {ours} / {peer}: {text}"
        );
    }
}

#[test]
fn a_peer_without_its_packages_says_what_to_install() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let python = fake_python(tmp.path(), true);
    let text = bench(&["--peers", "--python", python.to_str().expect("utf8")]);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("PyTorch"))
        .expect("a PyTorch row");
    assert!(
        line.contains(&format!(
            "has no `torch`; install the peer's packages with `{} -m pip install torch numpy pillow`",
            python.display()
        )),
        "{line}"
    );
    assert_eq!(row(&text, "TensorFlow/Keras").0, "200.0", "{text}");
    // No Python at all.
    let text = bench(&["--peers", "--python", "/nonexistent/python"]);
    assert!(text.contains("cannot run /nonexistent/python"), "{text}");
}

#[test]
fn end_to_end_reports_each_epoch_s_memory_and_the_overhead() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 12, 16);
    let text = bench(&[
        "--end-to-end",
        "--folder",
        data.to_str().expect("utf8"),
        "--epochs",
        "2",
    ]);
    for epoch in 1..=2 {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("epoch {epoch}:")))
            .unwrap_or_else(|| panic!("epoch {epoch} in {text}"));
        assert!(line.contains("peak RSS"), "{line}");
    }
    assert!(
        text.contains("  epoch end: checkpoint on the training thread"),
        "{text}"
    );
    assert!(text.contains("  data pipeline: "), "{text}");
    let summary = text
        .lines()
        .find(|l| l.trim_start().starts_with("end to end:") && l.contains("img/s"))
        .unwrap_or_else(|| panic!("the summary in {text}"));
    assert!(summary.contains("2 epochs in"), "{summary}");
    assert!(summary.contains("the step rate, overhead"), "{summary}");
    // The rate three ways: training images, every image of the folder, and training images
    // over the wall time without the validation pass.
    assert!(
        text.contains("  every image of the folder (train + val) each epoch: "),
        "{text}"
    );
    // The bound validation sets on the first: a ratio between 0 and 1.
    let bound = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("  the most training images could come to with validation every epoch: ")
        })
        .unwrap_or_else(|| panic!("the bound in {text}"));
    let ratio: f64 = bound
        .split('x')
        .next()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("a ratio in {bound}"));
    assert!(ratio > 0.0 && ratio < 1.0, "{bound}");
    let around = text
        .lines()
        .find(|l| l.starts_with("  the validation pass set aside ("))
        .unwrap_or_else(|| panic!("the rate without validation in {text}"));
    assert!(around.ends_with("x the step rate"), "{around}");
    // Where the time went: a row per epoch and one for all, with its peak/current RSS.
    assert!(text.contains("  where the time goes (s): epoch"), "{text}");
    for epoch in ["1", "2", "all"] {
        let row = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(epoch) && l.contains('('))
            .unwrap_or_else(|| panic!("breakdown row {epoch} in {text}"));
        let fields: Vec<&str> = row.split_whitespace().collect();
        // wall, steps, data wait, validation: numbers, the steps inside the wall time.
        let wall: f64 = fields[1].parse().expect("wall seconds");
        let steps: f64 = fields[2].parse().expect("step seconds");
        assert!(steps > 0.0 && steps <= wall + 0.01, "{row}");
        if epoch != "all" {
            assert!(fields.last().is_some_and(|m| m.contains('/')), "{row}");
        }
    }
    assert!(text.contains("  share of the wall time: steps "), "{text}");
}

/// `--end-to-end --peers`: the tutorial's Keras pipeline runs on two folders holding the same
/// training and validation images as convscope's run (the fake Python reports the number of
/// linked images in each as its epochs' rates), and the table sets convscope's best epoch
/// against it.
#[test]
fn end_to_end_with_peers_runs_the_tutorial_pipeline_on_the_same_images() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 12, 16);
    let python = fake_python(tmp.path(), false);
    let text = bench(&[
        "--end-to-end",
        "--folder",
        data.to_str().expect("utf8"),
        "--epochs",
        "2",
        "--peers",
        "--python",
        python.to_str().expect("utf8"),
    ]);
    let summary = text
        .lines()
        .find(|l| l.trim_start().starts_with("end to end:") && l.contains("img/s"))
        .unwrap_or_else(|| panic!("the summary in {text}"));
    // "(N train + M val images, ..."
    let counts: Vec<usize> = summary
        .split(['(', ' ', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    let (train, val) = (counts[0], counts[1]);
    assert!(train > 0 && val > 0, "{summary}");
    assert!(
        text.contains("end to end, convscope against the tutorial's own Keras pipeline"),
        "{text}"
    );
    let (keras, ratio) = row(&text, "Keras ImageDataGenerator + fit");
    // The best epoch after the first: the larger of the two folders' counts (the fake's
    // validation rate has .5 so that the two cannot be confused).
    let want = if val as f64 + 0.5 > train as f64 {
        format!("{val}.5")
    } else {
        format!("{train}.0")
    };
    assert_eq!(keras, want, "{text}");
    let (ours, _) = row(&text, "convscope train");
    let ours: f64 = ours.parse().expect("a rate");
    // convscope's rate as printed (to 0.1) over Keras's: the ratio to its last digit.
    let keras: f64 = keras.parse().expect("a rate");
    let ratio: f64 = ratio.trim_end_matches('x').parse().expect("a ratio");
    assert!(
        (ratio - ours / keras).abs() <= 0.01 + 0.05 / keras,
        "{ratio} against {ours} / {keras}"
    );
}
