//! Grad-CAM on the Feature maps tab in tmux with the real binary: a trained run's viewer, the
//! overlay key, its caption naming the layer and the class, and the layer key changing it.

mod common;

use std::time::Duration;

use common::{Tmux, strip, wait_for};

/// The Grad-CAM caption in the probe pane's title: `Grad-CAM LAYER · CLASS P%`.
fn caption(screen: &str) -> Option<String> {
    screen.lines().find_map(|line| {
        let rest = &line[line.find("Grad-CAM ")?..];
        Some(rest[..=rest.find('%')?].to_string())
    })
}

#[test]
fn the_overlay_key_shows_grad_cam_of_the_probe_and_the_layer_key_moves_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (view, maps) = Tmux::on_feature_maps("convscope-camtab", tmp.path());
    assert_eq!(caption(&maps), None, "no overlay before the key: {maps}");
    view.keys("v");
    // The default layer: the last conv before its pool (conv2d_2 in the tutorial network).
    let screen = strip(&view.wait_text("Grad-CAM conv2d_2 · "));
    let first = caption(&screen).unwrap_or_else(|| panic!("a caption in {screen}"));
    assert!(screen.contains("Grad-CAM jet image 0.5"), "{screen}");
    // Drawn, or said in words when nothing speaks for the class there.
    view.keys("d");
    let screen = strip(&view.wait_text("Grad-CAM all conv layers · "));
    let next = caption(&screen).unwrap_or_else(|| panic!("a caption in {screen}"));
    assert_ne!(next, first);
    view.keys("d");
    let screen = strip(&view.wait_text("Grad-CAM conv2d · "));
    let predicted = caption(&screen).unwrap_or_else(|| panic!("a caption in {screen}"));
    // The other class: a counterfactual, named in the caption.
    view.keys("t");
    wait_for("the other class's map", Duration::from_mins(1), || {
        caption(&strip(&view.capture()))
            .is_some_and(|c| c.starts_with("Grad-CAM conv2d · ") && c != predicted)
    });
    // Off: the photo again, no caption.
    view.keys("v");
    wait_for("the overlay to go", Duration::from_mins(1), || {
        caption(&strip(&view.capture())).is_none()
    });
    view.kill();
}
