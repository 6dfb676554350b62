//! Comparing two images on the Feature maps tab in tmux with the real binary: a trained run's
//! viewer, `b` to make the probe B, `n` to pick another A, the three panes' captions, the
//! order key and its label, and `B` to stop.

mod common;

use std::time::Duration;

use common::{Tmux, strip, wait_for};

#[test]
fn b_compares_the_probe_with_another_and_r_orders_the_channels() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = common::synthetic(tmp.path(), 20, 16);
    let run = tmp.path().join("run");
    common::train(&data, &run).epochs(2).success();
    let view = Tmux::start(
        &format!("convscope-compare-{}", std::process::id()),
        &format!(
            "{} view {}; sleep 30",
            env!("CARGO_BIN_EXE_convscope"),
            run.display()
        ),
    );
    view.wait_text("● finished");
    view.keys("4");
    let maps = strip(&view.wait_text("std·64+128"));
    assert!(!maps.contains("A | B | A-B"), "not comparing yet: {maps}");
    // The probe shown becomes B; its maps come back with the probe's.
    view.keys("b");
    let screen = strip(&view.wait_text("A | B | A-B"));
    assert!(screen.contains(": by diff"), "{screen}");
    assert!(screen.contains("channels by diff"), "{screen}");
    assert!(screen.contains("max|A-B| 0.000"), "A is B: {screen}");
    // Another A: the same B, the differences no longer zero.
    view.keys("n");
    wait_for("a new A against B", Duration::from_mins(1), || {
        let s = strip(&view.capture());
        s.contains("A | B | A-B") && s.contains("max|A-B| ") && !s.contains("max|A-B| 0.000")
    });
    // By class selectivity: the conv layer's channels have class means from validation.
    view.keys("r");
    let screen = strip(&view.wait_text("channels by selectivity"));
    assert!(screen.contains(": by selectivity"), "{screen}");
    assert!(!screen.contains("no class means"), "{screen}");
    view.wait_text(" · selectivity ");
    view.keys("r");
    view.wait_text("channels in order");
    // Off: one image again.
    view.keys("B");
    wait_for("the panes to go", Duration::from_mins(1), || {
        let s = strip(&view.capture());
        s.contains("compare off") && !s.contains("A | B | A-B")
    });
    view.kill();
}

/// One image across epochs: `z` pins each channel's scale to the epoch shown, `[` steps to the
/// epoch before, and the zoom shows the channel at both epochs and their difference.
#[test]
fn z_pins_the_scale_and_another_epoch_shows_the_difference_pane() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (view, maps) = Tmux::on_feature_maps(
        &format!("convscope-epochs-{}", std::process::id()),
        tmp.path(),
    );
    assert!(maps.contains("epoch 2"), "the newest epoch first: {maps}");
    view.keys("z");
    let pinned = strip(&view.wait_text("at epoch 2's scale"));
    assert!(pinned.contains("scale pinned to epoch 2"), "{pinned}");
    // The epoch before, at epoch 2's scale, beside it.
    view.keys("[");
    let screen = strip(&view.wait_text("epoch 2 | epoch 1 | 1 − 2"));
    assert!(screen.contains("at epoch 2's scale"), "{screen}");
    assert!(screen.contains("max|1−2| "), "{screen}");
    // Unpinned: one map again.
    view.keys("z");
    wait_for("the panes to go", Duration::from_mins(1), || {
        let s = strip(&view.capture());
        s.contains("each snapshot's own again") && !s.contains("| epoch 1 |")
    });
    view.kill();
}
