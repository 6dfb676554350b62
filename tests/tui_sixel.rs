//! Sixel in a real terminal: the viewer of a finished run, with `--graphics sixel`, in tmux;
//! what it writes to the terminal is captured (`pipe-pane`) and its sixel images decoded.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Tmux, wait_for};

/// The sixel images in a terminal stream (inside tmux's passthrough, escapes doubled).
fn sixels(stream: &[u8]) -> Vec<icy_sixel::SixelImage> {
    let text = String::from_utf8_lossy(stream);
    text.split("\u{1b}Ptmux;")
        .skip(1)
        .filter_map(|part| {
            let inner = part.replace("\u{1b}\u{1b}", "\u{1b}");
            let start = inner.find("\u{1b}P")?;
            let end = inner[start..].find("\u{1b}\\")? + start + 2;
            Some(
                icy_sixel::SixelImage::decode(&inner.as_bytes()[start..end])
                    .expect("a valid sixel"),
            )
        })
        .collect()
}

fn read(log: &Path) -> Vec<u8> {
    std::fs::read(log).unwrap_or_default()
}

fn colours(img: &icy_sixel::SixelImage) -> usize {
    let mut set: Vec<&[u8]> = img.pixels.chunks(4).collect();
    set.sort_unstable();
    set.dedup();
    set.len()
}

/// A finished demo run of `epochs` epochs viewed with sixel in tmux (`flags` added to `view`),
/// on the Feature maps tab once its first three pictures (photo, grid, zoom) have arrived.
/// Returns the temporary folder, the run, the viewer and the file its output goes to.
fn sixel_feature_maps(
    session: &str,
    epochs: u32,
    flags: &str,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Tmux,
    std::path::PathBuf,
) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = common::demo_run(tmp.path(), epochs, 32, 20);
    let view = Tmux::start(
        session,
        &format!(
            "{} view {} --graphics sixel{flags}; sleep 30",
            env!("CARGO_BIN_EXE_convscope"),
            run_dir.display()
        ),
    );
    view.wait_text_noting("finished", Some(&run_dir.join("viewer.log")));
    let log = tmp.path().join("terminal.log");
    view.pipe_to(&log);
    view.keys("4");
    view.wait_text("(x-mean)/std");
    wait_for("three sixel images", Duration::from_mins(1), || {
        sixels(&read(&log)).len() >= 3
    });
    std::thread::sleep(Duration::from_millis(500));
    (tmp, run_dir, view, log)
}

#[test]
fn feature_maps_arrive_as_sixel_and_an_epoch_step_sends_no_half_blocks() {
    let (_tmp, _run, view, log) = sixel_feature_maps("convscope-sixel", 2, "");
    let first = read(&log);
    let images = sixels(&first);
    for img in &images {
        assert!(
            img.width >= 16 && img.height >= 16,
            "{}x{}",
            img.width,
            img.height
        );
    }
    let richest = images.iter().map(colours).max().unwrap_or(0);
    assert!(richest > 16, "maps in many colours, got {richest}");
    // The previous epoch's maps of the same image: new sixels, and no half-block stand-in.
    view.keys("[");
    // Done when the epoch-1 maps have arrived and the screen says so.
    wait_for("the epoch-1 maps", Duration::from_mins(1), || {
        sixels(&read(&log)[first.len()..]).len() >= 2
            && common::strip(&view.capture()).contains("epoch 1")
    });
    let step = read(&log)[first.len()..].to_vec();
    assert!(
        !String::from_utf8_lossy(&step).contains('▀'),
        "an epoch step redraws no half blocks"
    );
    let screen = common::strip(&view.capture());
    assert!(screen.contains("epoch 1"), "{screen}");
}

/// `view --sixel-max-kb` (for slow links): every sixel picture stays within the limit.
#[test]
fn sixel_pictures_keep_to_their_byte_limit() {
    let (_tmp, _run, _view, log) =
        sixel_feature_maps("convscope-sixel-limit", 1, " --sixel-max-kb 8");
    let stream = String::from_utf8_lossy(&read(&log)).into_owned();
    let pictures: Vec<&str> = stream.split("\u{1b}Ptmux;").skip(1).collect();
    assert!(pictures.len() >= 3);
    for p in pictures {
        // The passthrough wrapping doubles escapes; the limit counts what is written.
        // The picture's end: the sixel's own terminator, the cursor restored, the passthrough's.
        let end = p
            .find("\u{1b}\u{1b}\\\u{1b}\u{1b}8\u{1b}\\")
            .map_or(p.len(), |e| e + 8);
        assert!(end <= 8_000, "a picture of {end} bytes");
    }
    let images = sixels(&read(&log));
    assert!(images.iter().all(|i| i.width >= 16 && i.height >= 16));
}
