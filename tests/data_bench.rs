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
    assert!(r.augment_per_s_one_thread > 0.0);
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
