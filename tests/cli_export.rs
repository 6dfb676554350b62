//! `convscope export` on a tiny trained run: every picture decodes with the grid geometry, the
//! heatmaps are viridis with the right values, metrics.csv has one row per epoch, and
//! `--epoch` picks a checkpoint or names the available ones.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use common::{checkpoint_weights, run, synthetic};
use convscope::commands::export::{BLOCK, CSV_HEADER, CURVE_PANEL, FEATURE_COLUMNS, feature_scale};
use convscope::config::ColormapName;
use convscope::viz::colormap::{self, VIRIDIS};
use convscope::viz::norm;
use convscope::viz::sheets::{self, CHANNEL_GAP, GAP, LABEL_H, RING, SCALE_H};
use convscope::viz::text::{self, PAD, header_height};

/// Lines of text under each picture's heading.
const LINES: usize = 2;

/// A 16-pixel, 2-epoch run on synthetic data (with a validation split).
fn trained(tmp: &Path) -> (PathBuf, PathBuf) {
    let data = synthetic(tmp, 24, 16);
    let run_dir = tmp.join("run");
    common::train(&data, &run_dir).batch(16).epochs(2).success();
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
#[expect(
    clippy::too_many_lines,
    reason = "one exported folder checked file by file: each picture's geometry follows from the last"
)]
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

    // Filters: a grid of numbered filters, each its input channels side by side, each weight a
    // BLOCK² square, and a colour scale under the grid.
    let mut in_channels = 3;
    for (i, (name, _, [out_ch, _, _])) in convs.iter().enumerate() {
        let (k, top) = (3, header_height(LINES));
        let kernel = k * BLOCK;
        let strip_w = in_channels * (kernel + CHANNEL_GAP) - CHANNEL_GAP;
        let (cell_w, cell_h) = (strip_w.max(16), LABEL_H + kernel);
        let cols = sheets::columns(*out_ch, cell_w);
        let rows = out_ch.div_ceil(cols);
        let grid_w = GAP + cols * (cell_w + GAP);
        let grid_h = GAP + rows * (cell_h + GAP);
        let img = rgb(&out_dir.join(format!("filters_{name}.png")));
        assert_eq!(
            img.height() as usize,
            top + grid_h + GAP + SCALE_H + PAD,
            "{name}"
        );
        assert!(img.width() as usize >= grid_w + 2 * PAD, "{name}");
        if i == 0 {
            // The first layer's 16 filters of 3 channels: two rows of 8, not one column.
            assert_eq!((cols, rows), (8, 2), "{name}");
            assert!(
                (img.width() as usize) < grid_w + 2 * PAD + 200,
                "no wide empty canvas: {} for a {grid_w}-px grid",
                img.width()
            );
        }
        // The TUI's normalisation: min-max over the layer's weights, viridis.
        let w = &weights[2 * i];
        assert_eq!(w.len(), out_ch * in_channels * k * k);
        let values = norm::min_max(w);
        let mut colours = HashSet::new();
        for f in 0..*out_ch {
            let (cx, cy) = (
                PAD + GAP + (f % cols) * (cell_w + GAP),
                top + GAP + (f / cols) * (cell_h + GAP),
            );
            // The filter's number is written above it.
            let label = (cx..cx + 8)
                .any(|x| (cy..cy + 8).any(|y| img.get_pixel(x as u32, y as u32).0 == text::DIM));
            assert!(label, "{name} filter {f} is numbered");
            for c in 0..in_channels {
                let x0 = cx + c * (kernel + CHANNEL_GAP);
                let y0 = cy + LABEL_H;
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
        // The title: heading and text in the rows above the grid.
        let titled =
            (0..top as u32).any(|y| (0..img.width()).any(|x| img.get_pixel(x, y).0 == text::INK));
        assert!(titled, "{name} has a title");
        in_channels = *out_ch;
    }

    // The first layer reads RGB, so it is also drawn as numbered colour patches.
    let first = &convs[0].0;
    let (n, k) = (convs[0].2[0], 3);
    let cell_w = (k * BLOCK).max(16);
    let cols = sheets::columns(n, cell_w);
    let rgb_img = rgb(&out_dir.join(format!("filters_{first}_rgb.png")));
    let patches_w = GAP + cols * (cell_w + GAP);
    let patches_h = GAP + n.div_ceil(cols) * (LABEL_H + k * BLOCK + GAP);
    assert_eq!(
        rgb_img.height() as usize,
        header_height(LINES) + patches_h + PAD
    );
    assert!(rgb_img.width() as usize >= patches_w + 2 * PAD);
    assert!(!out_dir.join("filters_conv2d_1_rgb.png").exists());

    // Feature maps: for a run on its own data, one validation image of each class (not the
    // bundled cat and dog), every conv and pool layer, 8 channels a row.
    let stems: HashSet<String> = present
        .iter()
        .filter_map(|p| {
            let f = p.file_name()?.to_str()?;
            Some(
                f.strip_prefix("features_")?
                    .strip_suffix("_conv2d.png")?
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(stems.len(), 2, "{stems:?}");
    for class in ["blobs", "stripes"] {
        assert!(
            stems.iter().any(|s| s.starts_with(class)),
            "an image of {class}: {stems:?}"
        );
    }
    for stem in &stems {
        for (name, is_conv, [c, h, w]) in &layers {
            let img = rgb(&out_dir.join(format!("features_{stem}_{name}.png")));
            let s = feature_scale(*h, *w);
            assert!(h * s >= 64 && w * s >= 64);
            let cols = FEATURE_COLUMNS.min(*c);
            let (cell_w, cell_h) = (w * s + 2 * RING, LABEL_H + h * s + 2 * RING);
            let cell_w = cell_w.max(text::width(&c.to_string(), 1));
            let grid_w = GAP + cols * (cell_w + GAP);
            let grid_h = GAP + c.div_ceil(cols) * (cell_h + GAP);
            let top = header_height(LINES);
            assert_eq!(
                img.height() as usize,
                top + grid_h + GAP + SCALE_H + PAD,
                "{stem} {name}"
            );
            assert!(img.width() as usize >= grid_w + 2 * PAD, "{stem} {name}");
            // Every heatmap pixel is a viridis colour; the first conv layer shows structure.
            let mut colours = HashSet::new();
            for ch in 0..*c {
                let x0 = PAD + GAP + (ch % cols) * (cell_w + GAP) + RING;
                let y0 = top + GAP + (ch / cols) * (cell_h + GAP) + LABEL_H + RING;
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
    let (x0, y0) = (PAD + GAP, header_height(LINES) + GAP + LABEL_H);
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
