//! Pipeline throughput on generated JPEGs; run with `cargo test --test data_bench -- --ignored --nocapture`.

#![allow(clippy::float_cmp)] // decoded pixel values are exact integers in f32

use convscope::config::Config;
use convscope::data::bench_pipeline;

#[test]
fn bench_smoke() {
    let mut cfg = Config::default();
    cfg.data.image_size = [24, 32];
    cfg.train.batch_size = 4;
    let r = bench_pipeline(10, [30, 40], &cfg).expect("bench");
    assert_eq!(r.images, 10);
    assert!(r.cached_per_s > 0.0 && r.uncached_per_s > 0.0 && r.open_per_s > 0.0);
    assert!(r.to_string().contains("images/s"));
}

#[test]
#[ignore = "benchmark: slow, prints numbers"]
fn bench_tutorial_sizes() {
    let images = std::env::var("CONVSCOPE_BENCH_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let r = bench_pipeline(images, [375, 500], &Config::default()).expect("bench");
    eprintln!("{r}");
}

#[test]
#[ignore = "benchmark: prints the time of one augmentation warp"]
fn bench_warp_only() {
    use convscope::data::{Transform, warp_into};
    let src: Vec<u8> = (0..150 * 150 * 3).map(|v| (v % 251) as u8).collect();
    let mut out = vec![0.0f32; src.len()];
    let t = Transform {
        theta: 0.3,
        tx: 5.0,
        ty: -3.0,
        zx: 1.1,
        zy: 0.9,
        ..Transform::IDENTITY
    };
    let start = std::time::Instant::now();
    let n = 500;
    for _ in 0..n {
        warp_into(&src, (150, 150), 3, &t, 1.0 / 255.0, &mut out);
    }
    eprintln!(
        "warp 150x150x3: {:.3} ms/image (one thread)",
        start.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
    );
}
