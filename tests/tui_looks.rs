//! The Filters tab's "what it looks for" mode in tmux with the real binary: a trained run's
//! viewer optimises the third conv layer's images in the background (quick, then the
//! regularised tier with its progress on screen), and a second visit reads the run's cache.

mod common;

use common::{Tmux, strip};

#[test]
fn w_shows_what_each_filter_looks_for_with_progress_then_from_the_cache() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = common::synthetic(tmp.path(), 12, 16);
    let run = tmp.path().join("run");
    common::train(&data, &run).epochs(1).success();
    let view = Tmux::start(
        &format!("convscope-looks-{}", std::process::id()),
        &format!(
            "{} view {}; sleep 30",
            env!("CARGO_BIN_EXE_convscope"),
            run.display()
        ),
    );
    view.wait_text("● finished");
    view.keys("3");
    view.wait_text("16 filters × 3 input channels");
    view.keys("l");
    view.keys("l");
    view.wait_text("64 filters × 32 input channels");
    // The quick tier: the header names the checkpoint, the grid's title what it shows.
    view.keys("w");
    // Waited for on the right-hand pane, drawn after the grid's title: a capture can catch a
    // frame half drawn on a loaded machine.
    let quick = strip(&view.wait_text("zoom: + top-"));
    assert!(
        quick.contains("conv2d_2 · what each filter looks for · quick · 64 filters"),
        "{quick}"
    );
    assert!(
        quick.contains("what it looks for · quick │ checkpoint epoch-0001"),
        "{quick}"
    );
    assert!(
        quick.contains("optimised"),
        "the selected filter's activations: {quick}"
    );
    // Beside the image, its strongest validation patches (the run's health has them).
    assert!(quick.contains("zoom: + top-"), "{quick}");
    // The regularised tier takes seconds: its progress shows, then its images.
    view.keys("W");
    let busy = strip(&view.wait_text("regularised: optimising 64 filters, step"));
    assert!(busy.contains("conv2d_2 · what it looks for"), "{busy}");
    view.wait_text("conv2d_2 · what each filter looks for · regularised · 64 filters · made in");
    assert!(
        run.join("maximize/epoch-0001/conv2d_2-regularised-seed0/filter-063.png")
            .is_file(),
        "the images are cached in the run"
    );
    // Another layer starts its own job; back again, the images come from the cache.
    view.keys("h");
    view.wait_text("conv2d_1 · what it looks for · regularised");
    view.keys("l");
    view.wait_text(
        "conv2d_2 · what each filter looks for · regularised · 64 filters · from the cache",
    );
    // Back to the raw weights.
    view.keys("w");
    view.wait_text("64 filters × 32 input channels");
    view.kill();
}
