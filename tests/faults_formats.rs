//! Image formats convscope does not read are listed as skipped with what to do (not left out
//! unseen); TIFF, which Keras reads, trains; a memory limit is named up front.

mod common;

use std::fs;
use std::path::Path;

use common::{bin, events, synthetic};
use convscope::events::Event;

#[test]
fn tiff_trains_and_heic_or_avif_are_listed_as_skipped_with_what_to_do() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 6, 16);
    let classes: Vec<_> = {
        let mut v: Vec<_> = fs::read_dir(&data)
            .expect("ls")
            .map(|e| e.expect("entry").path())
            .collect();
        v.sort();
        v
    };
    // A real TIFF, as a scanner or microscope writes it.
    let tif = classes[0].join("scan.tif");
    image::RgbImage::from_fn(16, 16, |x, y| {
        image::Rgb([(x * 16) as u8, (y * 16) as u8, 90])
    })
    .save(&tif)
    .expect("tiff written");
    fs::write(classes[1].join("phone.HEIC"), b"\0\0\0\x18ftypheic").expect("heic");
    fs::write(classes[1].join("web.avif"), b"\0\0\0\x1cftypavif").expect("avif");
    let run = tmp.path().join("run");
    let out = bin()
        .arg("train")
        .arg(&data)
        .arg("--run")
        .arg(&run)
        .args(["--headless", "--image-size", "16", "--epochs", "1"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("HEIC images are not read by convscope; convert the file to PNG or JPEG"),
        "{err}"
    );
    assert!(
        err.contains("AVIF images are not read by convscope"),
        "{err}"
    );
    let Some(Event::Started(s)) = events(&run)
        .into_iter()
        .find(|e| matches!(e, Event::Started(_)))
    else {
        panic!("no start event");
    };
    assert_eq!(s.train_images + s.val_images, 13, "12 + the TIFF");
    assert_eq!(s.skipped_images, 2);
    let classes_json = fs::read_to_string(run.join("classes.json")).expect("classes.json");
    assert!(classes_json.contains("phone.HEIC"), "{classes_json}");
    assert!(classes_json.contains("web.avif"), "{classes_json}");
    assert!(!classes_json.contains("scan.tif"), "{classes_json}");
}

/// One headless epoch of `convscope train DATA --run RUN ARGS` under `ulimit -v KIB`.
fn train_under_ulimit(kib: u64, data: &Path, run: &Path, args: &str) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {kib} && exec '{}' train '{}' --run '{}' --headless --epochs 1 {args}",
            env!("CARGO_BIN_EXE_convscope"),
            data.display(),
            run.display()
        ))
        .env_remove("RUST_LOG")
        .env("TERM", "dumb")
        .output()
        .expect("runs")
}

#[test]
fn a_memory_limit_is_named_up_front_with_what_to_do() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 4, 16);
    let run = tmp.path().join("run");
    // 32 GiB of address space: enough to train, but a limit all the same.
    let out = train_under_ulimit(33_554_432, &data, &run, "--image-size 16");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("a virtual memory limit is set (32768 MiB, `ulimit -v`)"),
        "{err}"
    );
    assert!(err.contains("lower --batch-size or --image-size"), "{err}");
    assert!(err.contains("convscope resume"), "{err}");
    // Without a limit, no such word.
    let out = bin()
        .arg("train")
        .arg(&data)
        .arg("--run")
        .arg(tmp.path().join("run2"))
        .args(["--headless", "--image-size", "16", "--epochs", "1"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("virtual memory limit"), "{err}");
}

/// A memory limit one training step cannot fit in: refused before anything is written, naming
/// the limit and what to do (before: the process aborted mid-step with Rust's bare
/// `memory allocation of N bytes failed`).
#[test]
fn a_memory_limit_too_small_for_one_step_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 4, 16);
    let run = tmp.path().join("run");
    // 300 MB: the program starts, but a 150 px step at batch 64 needs far more.
    let out = train_under_ulimit(300_000, &data, &run, "--image-size 150 --batch-size 64");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("one training step (batch 64, 150 px) does not fit in the virtual memory limit of 292 MiB (`ulimit -v`)")
            && err.contains("Nothing was written")
            && err.contains("lower --batch-size or --image-size"),
        "{err}"
    );
    assert!(!err.contains("memory allocation of"), "{err}");
    assert!(!run.exists(), "no run directory");
}
