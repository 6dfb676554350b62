//! `convscope export` on a tiny trained run: every picture decodes with the grid geometry, the
//! heatmaps are viridis with the right values, metrics.csv has one row per epoch, and
//! `--epoch` picks a checkpoint or names the available ones.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use common::{checkpoint_weights, run, synthetic};
use convscope::commands::export::{
    BLOCK, CSV_HEADER, CURVE_PANEL, FEATURE_COLUMNS, FEATURE_GAP, FILTER_GAP, RGB_FIT,
    feature_scale,
};
use convscope::config::ColormapName;
use convscope::viz::colormap::{self, VIRIDIS};
use convscope::viz::norm;
use convscope::viz::raster::columns_for;
use convscope::viz::text::{PAD, header_height};

/// Lines of text under each picture's heading.
const LINES: usize = 2;

/// A 16-pixel, 2-epoch run on synthetic data (with a validation split).
fn trained(tmp: &Path) -> (PathBuf, PathBuf) {
    let data = synthetic(tmp, 24, 16);
    let run_dir = tmp.join("run");
    let out = run(&[
        "train",
        data.to_str().expect("utf8"),
        "--run",
        run_dir.to_str().expect("utf8"),
        "--headless",
        "--image-size",
        "16",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--seed",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (data, run_dir)
}

fn export(args: &[&str]) -> (bool, String, String) {
    let mut v = vec!["export"];
    v.extend_from_slice(args);
    let out = run(&v);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rgb(path: &Path) -> image::RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{} decodes: {e}", path.display()))
        .to_rgb8()
}

/// `(channels, height, width)` and name of every conv and pool layer of the run's network.
fn conv_and_pool_layers(run_dir: &Path) -> Vec<(String, bool, [usize; 3])> {
    let cfg = convscope::run::RunDir::open(run_dir)
        .expect("run")
        .read_config()
        .expect("config");
    convscope::model::summary::summarize(&cfg, 2)
        .expect("summary")
        .into_iter()
        .filter(|r| r.kind == "Conv2D" || r.kind == "MaxPooling2D")
        .map(|r| {
            let s = &r.output_shape;
            (r.name, r.kind == "Conv2D", [s[0], s[1], s[2]])
        })
        .collect()
}

#[test]
fn export_writes_every_picture_with_the_grid_geometry_and_the_metrics() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, run_dir) = trained(tmp.path());
    let out_dir = tmp.path().join("out/nested");
    let (ok, stdout, stderr) = export(&[
        run_dir.to_str().expect("utf8"),
        "--out",
        out_dir.to_str().expect("utf8"),
    ]);
    assert!(ok, "{stderr}");

    // The printed list is exactly what is in the folder.
    let listed: HashSet<PathBuf> = stdout.lines().map(PathBuf::from).collect();
    let present: HashSet<PathBuf> = std::fs::read_dir(&out_dir)
        .expect("out dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(listed, present, "{stdout}");

    let layers = conv_and_pool_layers(&run_dir);
    let convs: Vec<_> = layers.iter().filter(|l| l.1).collect();
    assert_eq!(convs.len(), 3, "the tutorial network: {layers:?}");
    assert_eq!(layers.len(), 6);
    let weights = checkpoint_weights(&run_dir, "epoch-0002");
    let viridis: HashSet<[u8; 3]> = VIRIDIS.iter().copied().collect();

    // Filters: a row per filter, a column per input channel, each weight a BLOCK² square.
    let mut in_channels = 3;
    for (i, (name, _, [out_ch, _, _])) in convs.iter().enumerate() {
        let (k, top) = (3, header_height(LINES));
        let cell = k * BLOCK;
        let grid_w = FILTER_GAP + in_channels * (cell + FILTER_GAP);
        let grid_h = FILTER_GAP + out_ch * (cell + FILTER_GAP);
        let img = rgb(&out_dir.join(format!("filters_{name}.png")));
        assert_eq!(img.height() as usize, top + grid_h + PAD, "{name}");
        assert!(img.width() as usize >= grid_w + 2 * PAD, "{name}");
        // The TUI's normalisation: min-max over the layer's weights, viridis.
        let w = &weights[2 * i];
        assert_eq!(w.len(), out_ch * in_channels * k * k);
        let values = norm::min_max(w);
        let mut colours = HashSet::new();
        for f in 0..*out_ch {
            for c in 0..in_channels {
                let x0 = PAD + FILTER_GAP + c * (cell + FILTER_GAP);
                let y0 = top + FILTER_GAP + f * (cell + FILTER_GAP);
                for ky in 0..k {
                    for kx in 0..k {
                        let v = values[((f * in_channels + c) * k + ky) * k + kx];
                        let want = colormap::color(ColormapName::Viridis, v);
                        for dy in 0..BLOCK {
                            for dx in 0..BLOCK {
                                let p = img
                                    .get_pixel(
                                        (x0 + kx * BLOCK + dx) as u32,
                                        (y0 + ky * BLOCK + dy) as u32,
                                    )
                                    .0;
                                assert_eq!(p, want, "{name} filter {f} channel {c}");
                            }
                        }
                        colours.insert(want);
                    }
                }
            }
        }
        assert!(colours.len() > 60, "{name}: {} colours", colours.len());
        assert!(colours.contains(&VIRIDIS[0]) && colours.contains(&VIRIDIS[255]));
        in_channels = *out_ch;
    }

    // The first layer reads RGB, so it is also drawn as colour patches.
    let first = &convs[0].0;
    let (n, k) = (convs[0].2[0], 3);
    let cols = columns_for(n, k, k, 1, RGB_FIT);
    let rgb_img = rgb(&out_dir.join(format!("filters_{first}_rgb.png")));
    let patches_w = (1 + cols * (k + 1)) * BLOCK;
    let patches_h = (1 + n.div_ceil(cols) * (k + 1)) * BLOCK;
    assert_eq!(
        rgb_img.height() as usize,
        header_height(LINES) + patches_h + PAD
    );
    assert!(rgb_img.width() as usize >= patches_w + 2 * PAD);
    assert!(!out_dir.join("filters_conv2d_1_rgb.png").exists());

    // Feature maps: both sample photos, every conv and pool layer, 8 channels a row.
    for stem in ["cat", "dog"] {
        for (name, is_conv, [c, h, w]) in &layers {
            let img = rgb(&out_dir.join(format!("features_{stem}_{name}.png")));
            let s = feature_scale(*h, *w);
            assert!(h * s >= 64 && w * s >= 64);
            let cols = FEATURE_COLUMNS.min(*c);
            let grid_w = FEATURE_GAP + cols * (w * s + FEATURE_GAP);
            let grid_h = FEATURE_GAP + c.div_ceil(cols) * (h * s + FEATURE_GAP);
            let top = header_height(LINES);
            assert_eq!(img.height() as usize, top + grid_h + PAD, "{stem} {name}");
            assert!(img.width() as usize >= grid_w + 2 * PAD, "{stem} {name}");
            // Every heatmap pixel is a viridis colour; the first conv layer shows structure.
            let mut colours = HashSet::new();
            for ch in 0..*c {
                let x0 = PAD + FEATURE_GAP + (ch % cols) * (w * s + FEATURE_GAP);
                let y0 = top + FEATURE_GAP + (ch / cols) * (h * s + FEATURE_GAP);
                for y in y0..y0 + h * s {
                    for x in x0..x0 + w * s {
                        let p = img.get_pixel(x as u32, y as u32).0;
                        assert!(viridis.contains(&p), "{stem} {name} ({x}, {y}) {p:?}");
                        colours.insert(p);
                    }
                }
            }
            if *is_conv && name == "conv2d" {
                assert!(colours.len() > 40, "{stem}: {} colours", colours.len());
            }
        }
    }

    // Curves: two panels, lines drawn.
    let curves = rgb(&out_dir.join("curves.png"));
    assert_eq!(
        (curves.width() as usize, curves.height() as usize),
        (2 * CURVE_PANEL.0, CURVE_PANEL.1)
    );
    let distinct: HashSet<[u8; 3]> = curves.pixels().map(|p| p.0).collect();
    assert!(distinct.len() >= 5, "{}", distinct.len());

    // metrics.csv: the header and one row of numbers per epoch.
    let csv = std::fs::read_to_string(out_dir.join("metrics.csv")).expect("metrics.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert_eq!(lines[0], CSV_HEADER);
    for (i, line) in lines[1..].iter().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), 7, "{line}");
        assert_eq!(cells[0].parse::<usize>().expect("epoch"), i + 1);
        for cell in &cells[1..] {
            let v: f64 = cell.parse().unwrap_or_else(|_| panic!("number: {line}"));
            assert!(v.is_finite() && v >= 0.0, "{line}");
        }
        let acc: f64 = cells[2].parse().expect("accuracy");
        assert!((0.0..=1.0).contains(&acc));
    }
}

#[test]
fn export_picks_the_epoch_and_explicit_images_and_names_what_is_missing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, run_dir) = trained(tmp.path());
    let run_s = run_dir.to_str().expect("utf8");
    let image = std::fs::read_dir(data.join("stripes"))
        .expect("stripes")
        .map(|e| e.expect("entry").path())
        .min()
        .expect("an image");
    let stem = image
        .file_stem()
        .expect("stem")
        .to_string_lossy()
        .into_owned();
    let out1 = tmp.path().join("epoch1");
    let (ok, stdout, stderr) = export(&[
        run_s,
        "--epoch",
        "1",
        "--image",
        image.to_str().expect("utf8"),
        "--out",
        out1.to_str().expect("utf8"),
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("epoch-0001"), "{stderr}");
    assert!(out1.join(format!("features_{stem}_conv2d.png")).is_file());
    assert!(
        out1.join(format!("features_{stem}_max_pooling2d_2.png"))
            .is_file()
    );
    assert!(!out1.join("features_cat_conv2d.png").exists(), "{stdout}");
    // Epoch 1's weights, not the newest ones.
    let img = rgb(&out1.join("filters_conv2d.png"));
    let values = norm::min_max(&checkpoint_weights(&run_dir, "epoch-0001")[0]);
    let at = |x: usize, y: usize| img.get_pixel(x as u32, y as u32).0;
    let (x0, y0) = (PAD + FILTER_GAP, header_height(LINES) + FILTER_GAP);
    assert_eq!(
        at(x0, y0),
        colormap::color(ColormapName::Viridis, values[0])
    );
    assert_eq!(
        at(x0 + BLOCK, y0),
        colormap::color(ColormapName::Viridis, values[1])
    );

    let out9 = tmp.path().join("epoch9");
    let (ok, _, stderr) = export(&[run_s, "--epoch", "9", "--out", out9.to_str().expect("utf8")]);
    assert!(!ok);
    assert!(
        stderr.contains("no complete checkpoint for epoch 9; epochs with one: 1-2"),
        "{stderr}"
    );

    let missing = tmp.path().join("nope.jpg");
    let (ok, _, stderr) = export(&[
        run_s,
        "--image",
        missing.to_str().expect("utf8"),
        "--out",
        out9.to_str().expect("utf8"),
    ]);
    assert!(!ok);
    assert!(stderr.contains("nope.jpg"), "{stderr}");

    // An unreadable image stops the export before anything is written.
    let bad = tmp.path().join("bad.jpg");
    std::fs::write(&bad, b"not a jpeg").expect("write");
    let out_bad = tmp.path().join("bad-out");
    let (ok, _, stderr) = export(&[
        run_s,
        "--image",
        bad.to_str().expect("utf8"),
        "--out",
        out_bad.to_str().expect("utf8"),
    ]);
    assert!(!ok);
    assert!(stderr.contains("bad.jpg"), "{stderr}");
    assert!(!out_bad.exists(), "nothing written");

    let not_a_run = tmp.path().join("data");
    let (ok, _, stderr) = export(&[
        not_a_run.to_str().expect("utf8"),
        "--out",
        out9.to_str().expect("utf8"),
    ]);
    assert!(!ok);
    assert!(stderr.contains("not a convscope run"), "{stderr}");
}
