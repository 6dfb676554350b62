//! `convscope export RUN --image A --image B --compare --out DIR` on a tiny trained run: the A,
//! B and A−B sheets and a CSV per layer, the CSV's means and selectivity checked against the
//! probe's maps and the run's unit-health file computed here, the orders, and the errors.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use common::{run, synthetic};
use convscope::events::Event;
use convscope::viz::colormap;

/// A 16-pixel, 2-epoch run on synthetic data (with a validation split), and one image of each
/// class.
fn trained(tmp: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let data = synthetic(tmp, 24, 16);
    let run_dir = tmp.join("run");
    common::train(&data, &run_dir).batch(16).epochs(2).success();
    (
        run_dir,
        data.join("stripes/stripes_0003.png"),
        data.join("blobs/blobs_0005.png"),
    )
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

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

/// The CSV as rows of fields, header checked.
fn rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).expect("csv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("channel,mean_a,mean_b,diff,selectivity,preferred_class")
    );
    lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn num(field: &str) -> f64 {
    field
        .parse()
        .unwrap_or_else(|e| panic!("{field:?} is a number: {e}"))
}

/// Every layer's channel means of `image` as the library's probe computes them.
fn channel_means(run_dir: &Path, image: &Path) -> Vec<(String, Vec<f64>)> {
    let rd = convscope::run::RunDir::open(run_dir).expect("run");
    let restored = convscope::infer::restore::load(&rd, None).expect("restore");
    let probe = convscope::infer::probe::Probe::new(&restored.cfg, &restored.classes);
    let epoch = restored.checkpoint.state.epoch;
    let Event::FeatureMaps(snap) = probe
        .feature_maps(&restored.net, image, epoch)
        .expect("maps")
    else {
        panic!("no maps of {}", image.display());
    };
    snap.layers
        .iter()
        .map(|l| {
            let per = l.height * l.width;
            let means = (0..l.channels)
                .map(|c| {
                    l.data[c * per..(c + 1) * per]
                        .iter()
                        .map(|&v| f64::from(v))
                        .sum::<f64>()
                        / per as f64
                })
                .collect();
            (l.name.clone(), means)
        })
        .collect()
}

/// Per conv layer, per channel (selectivity, preferred class) straight from the health file's
/// class means: `(μ_max − μ_rest) / (μ_max + μ_rest)`.
fn selectivity_from_file(run_dir: &Path, epoch: usize) -> Vec<(String, Vec<(f64, usize)>)> {
    let path = run_dir.join(format!("health/epoch-{epoch:04}.json"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("health file")).expect("json");
    let mut out = Vec::new();
    for layer in json["layers"].as_array().expect("layers") {
        let Some(classes) = layer.get("class_means").and_then(|m| m.as_array()) else {
            continue;
        };
        let means: Vec<Vec<f64>> = classes
            .iter()
            .map(|row| {
                row.as_array()
                    .expect("row")
                    .iter()
                    .map(|v| v.as_f64().expect("f64"))
                    .collect()
            })
            .collect();
        assert_eq!(means.len(), 2, "two classes");
        let sel = (0..means[0].len())
            .map(|c| {
                let (m0, m1) = (means[0][c], means[1][c]);
                let (max, rest, preferred) = if m1 > m0 { (m1, m0, 1) } else { (m0, m1, 0) };
                let index = if max + rest > 0.0 {
                    (max - rest) / (max + rest)
                } else {
                    0.0
                };
                (index, preferred)
            })
            .collect();
        out.push((layer["name"].as_str().expect("name").to_string(), sel));
    }
    out
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one comparison checked layer by layer against the probe and the health file"
)]
fn compare_writes_three_sheets_and_a_table_per_layer_that_match_a_direct_computation() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (run_dir, a, b) = trained(tmp.path());
    let out_dir = tmp.path().join("cmp");
    let (ok, stdout, stderr) = export(&[
        s(&run_dir),
        "--image",
        s(&a),
        "--image",
        s(&b),
        "--compare",
        "--out",
        s(&out_dir),
    ]);
    assert!(ok, "{stderr}");
    let listed: HashSet<PathBuf> = stdout.lines().map(PathBuf::from).collect();
    let present: HashSet<PathBuf> = std::fs::read_dir(&out_dir)
        .expect("out")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(listed, present);

    let means_a = channel_means(&run_dir, &a);
    let means_b = channel_means(&run_dir, &b);
    let selectivity = selectivity_from_file(&run_dir, 2);
    assert_eq!(selectivity.len(), 3, "three conv layers with class means");
    let expected: HashSet<PathBuf> = means_a
        .iter()
        .flat_map(|(name, _)| {
            ["_a.png", "_b.png", "_diff.png", ".csv"]
                .map(|end| out_dir.join(format!("compare_{name}{end}")))
        })
        .collect();
    assert_eq!(present, expected);

    let mut selective_layers = 0;
    for ((name, ma), (_, mb)) in means_a.iter().zip(&means_b) {
        let table = rows(&out_dir.join(format!("compare_{name}.csv")));
        assert_eq!(table.len(), ma.len(), "{name}: one row per channel");
        // Every channel once, by |mean A − mean B|, largest first.
        let channels: Vec<usize> = table.iter().map(|r| num(&r[0]) as usize - 1).collect();
        let distinct: HashSet<usize> = channels.iter().copied().collect();
        assert_eq!(distinct.len(), ma.len());
        let mut last = f64::INFINITY;
        let sel = selectivity.iter().find(|(n, _)| n == name).map(|(_, s)| s);
        for (r, &c) in table.iter().zip(&channels) {
            let (got_a, got_b, diff) = (num(&r[1]), num(&r[2]), num(&r[3]));
            let tol = |want: f64| 2e-6 + 1e-5 * want.abs();
            assert!(
                (got_a - ma[c]).abs() <= tol(ma[c]),
                "{name} {c}: A {got_a} vs {}",
                ma[c]
            );
            assert!(
                (got_b - mb[c]).abs() <= tol(mb[c]),
                "{name} {c}: B {got_b} vs {}",
                mb[c]
            );
            assert!((diff - (ma[c] - mb[c])).abs() <= 2.0 * tol(ma[c] - mb[c]));
            assert!(diff.abs() <= last + 2e-6, "{name}: ordered by |diff|");
            last = diff.abs();
            match sel {
                Some(sel) => {
                    let (want, preferred) = sel[c];
                    assert!((num(&r[4]) - want).abs() <= 1e-5, "{name} {c}: selectivity");
                    if want > 1e-6 {
                        let class = ["blobs", "stripes"][preferred];
                        assert_eq!(r[5], class, "{name} {c}: preferred class");
                    }
                }
                None => assert_eq!((r[4].as_str(), r[5].as_str()), ("", ""), "{name}: pool"),
            }
        }
        if sel.is_some() {
            selective_layers += 1;
        }
        // The sheets decode; A−B is drawn in the diverging palette, A and B in the run's.
        let diff = image::open(out_dir.join(format!("compare_{name}_diff.png")))
            .expect("diff png")
            .to_rgb8();
        let middle = colormap::color_u8(convscope::config::ColormapName::Diverging, 128);
        assert!(
            diff.pixels().any(|p| p.0 == middle),
            "{name}: A−B has a zero"
        );
        for pane in ["a", "b"] {
            let sheet = image::open(out_dir.join(format!("compare_{name}_{pane}.png")))
                .expect("png")
                .to_rgb8();
            assert!(
                sheet
                    .pixels()
                    .any(|p| colormap::VIRIDIS.contains(&p.0) && p.0 != colormap::VIRIDIS[0]),
                "{name} {pane}: viridis"
            );
        }
    }
    assert_eq!(selective_layers, 3);

    // By selectivity: the most selective channels first, the same numbers.
    let by_sel = tmp.path().join("by-sel");
    let (ok, _, stderr) = export(&[
        s(&run_dir),
        "--image",
        s(&a),
        "--image",
        s(&b),
        "--compare",
        "--order",
        "selectivity",
        "--out",
        s(&by_sel),
    ]);
    assert!(ok, "{stderr}");
    for (name, sel) in &selectivity {
        let table = rows(&by_sel.join(format!("compare_{name}.csv")));
        let got: Vec<f64> = table.iter().map(|r| num(&r[4])).collect();
        assert!(got.windows(2).all(|w| w[0] >= w[1]), "{name}: {got:?}");
        let mut want: Vec<f64> = sel.iter().map(|x| x.0).collect();
        want.sort_by(|x, y| y.total_cmp(x));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5);
        }
    }
}

#[test]
fn compare_names_what_is_missing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (run_dir, a, b) = trained(tmp.path());
    let out = tmp.path().join("out");
    // One image only.
    let (ok, _, stderr) = export(&[s(&run_dir), "--image", s(&a), "--compare", "--out", s(&out)]);
    assert!(!ok);
    assert!(stderr.contains("--compare takes two images"), "{stderr}");
    // A missing image.
    let missing = tmp.path().join("nope.png");
    let (ok, _, stderr) = export(&[
        s(&run_dir),
        "--image",
        s(&a),
        "--image",
        s(&missing),
        "--compare",
        "--out",
        s(&out),
    ]);
    assert!(!ok);
    assert!(stderr.contains("nope.png"), "{stderr}");
    // --order without --compare is refused by the parser.
    let (ok, _, _) = export(&[s(&run_dir), "--order", "diff", "--out", s(&out)]);
    assert!(!ok);
    // No unit health: the difference order still works (selectivity left empty), the
    // selectivity order says to run an epoch.
    std::fs::remove_dir_all(run_dir.join("health")).expect("remove health");
    let (ok, _, stderr) = export(&[
        s(&run_dir),
        "--image",
        s(&a),
        "--image",
        s(&b),
        "--compare",
        "--order",
        "selectivity",
        "--out",
        s(&out),
    ]);
    assert!(!ok);
    assert!(stderr.contains("run at least one epoch"), "{stderr}");
    assert!(!out.exists(), "nothing written on an error");
    let (ok, _, stderr) = export(&[
        s(&run_dir),
        "--image",
        s(&a),
        "--image",
        s(&b),
        "--compare",
        "--out",
        s(&out),
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("no class selectivity"), "{stderr}");
    let table = rows(&out.join("compare_conv2d.csv"));
    assert!(table.iter().all(|r| r[4].is_empty() && r[5].is_empty()));
}
