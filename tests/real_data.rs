//! Learning on real photos: Debian's Fashion-MNIST (apt-get install dataset-fashion-mnist),
//! written as image folders by scripts/fashion_mnist.py, trained by the real binary.

mod common;

use common::{events, run};
use convscope::events::Event;

#[test]
fn fashion_mnist_learns_far_above_chance() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("fm");
    let status = std::process::Command::new("python3")
        .args([
            "scripts/fashion_mnist.py",
            data.to_str().expect("utf8"),
            "--per-class",
            "100",
        ])
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "needs `apt-get install -y dataset-fashion-mnist`"
    );
    let run_dir = tmp.path().join("run");
    let train = data.join("train");
    let val = data.join("test");
    let out = run(&[
        "train",
        train.to_str().expect("utf8"),
        "--val",
        val.to_str().expect("utf8"),
        "--run",
        run_dir.to_str().expect("utf8"),
        "--headless",
        "--grayscale",
        "--image-size",
        "28",
        "--no-augment",
        "--epochs",
        "3",
        "--batch-size",
        "32",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let classes = std::fs::read_to_string(run_dir.join("classes.json")).expect("classes");
    assert!(
        classes.contains("9-boot") && classes.contains("\"train_images\": 1000"),
        "{classes}"
    );
    let last = events(&run_dir)
        .into_iter()
        .rev()
        .find_map(|e| {
            if let Event::Epoch(m) = e {
                Some(m)
            } else {
                None
            }
        })
        .expect("epochs");
    let acc = last.val_accuracy.expect("validation folder");
    // Ten classes: chance is 0.1.
    assert!(acc > 0.5, "validation accuracy {acc}");
}
