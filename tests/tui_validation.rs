//! The Validation tab in tmux with the real binary: a trained run's viewer, from the confusion
//! matrix to a cell's images, to one image as the probe of the Feature maps tab.

mod common;

use std::time::Duration;

use common::{Tmux, strip, wait_for};

/// The title of the first block drawn at the left edge (the probe's on the Feature maps tab,
/// the cell list's on the Validation tab): `┌ TITLE ─…`.
fn first_title(screen: &str) -> Option<String> {
    let line = screen.lines().find(|l| l.starts_with("┌ "))?;
    let rest = &line["┌ ".len()..];
    Some(rest[..rest.find(" ─")?].to_string())
}

/// The image (class folder/file) on the selected line of a cell's list.
fn selected_image(screen: &str) -> Option<String> {
    let line = screen.lines().find(|l| l.contains('▶'))?;
    line.split(['│', ' '])
        .find(|w| w.contains(".png"))
        .map(str::to_string)
}

#[test]
fn from_the_matrix_to_a_cell_s_images_to_one_image_s_maps_with_the_overlay() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The probe the Feature maps tab starts with.
    let (view, maps) = Tmux::on_feature_maps("convscope-valtab", tmp.path());
    let first_probe = first_title(&maps).unwrap_or_else(|| panic!("the probe's title in {maps}"));

    view.keys("5");
    view.wait_text("actual ↓ × predicted →");
    let matrix = strip(&view.wait_text("P    R   F1"));
    assert!(matrix.contains("│ accuracy "), "{matrix}");
    // The second class's row: its diagonal cell, else the cell to its left.
    view.keys("j");
    view.keys("l");
    view.keys("Enter");
    let mut list = strip(&view.wait_text("p(pred)"));
    if !list.contains('▶') {
        view.keys("Escape");
        view.wait_text("× predicted →");
        view.keys("h");
        view.keys("Enter");
        list = strip(&view.wait_text("p(pred)"));
    }
    let cell = first_title(&list).expect("the list's title");
    assert!(cell.contains(" → ") && cell.contains(": "), "{list}");
    // Pick an image other than the probe shown now.
    let mut picked = selected_image(&list).expect("a selected image");
    for _ in 0..20 {
        if picked != first_probe {
            break;
        }
        view.keys("j");
        wait_for("the selection to move", Duration::from_mins(1), || {
            selected_image(&strip(&view.capture())).is_some_and(|p| p != picked)
        });
        picked = selected_image(&strip(&view.capture())).expect("a selected image");
    }
    assert_ne!(picked, first_probe, "the cell has another image");
    view.keys("Enter");
    // The Feature maps tab, probing the picked image (its class folder names its label).
    wait_for("the picked image's maps", Duration::from_mins(1), || {
        let screen = strip(&view.capture());
        screen.contains("std·64+128") && first_title(&screen).as_deref() == Some(picked.as_str())
    });
    // Where in that image the network looked: the Grad-CAM overlay over the picked probe.
    view.keys("v");
    let screen = strip(&view.wait_text("Grad-CAM conv2d_"));
    assert!(screen.contains("Grad-CAM jet image 0.5"), "{screen}");
    view.kill();
}
