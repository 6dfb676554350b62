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
    assert_eq!((r.source, r.target), ([30, 40], [24, 32]));
    // Every stage measured (a stage that was skipped or timed over nothing is not finite),
    // and each printed with its own number.
    let text = r.to_string();
    assert!(
        text.starts_with("data pipeline: 10 JPEGs 40x30 -> 32x24"),
        "{text}"
    );
    for (stage, rate) in [
        ("open", r.open_per_s),
        ("epoch without cache", r.uncached_per_s),
        ("epoch with cache", r.cached_per_s),
        ("augmentation warp alone", r.augment_per_s_one_thread),
    ] {
        assert!(rate.is_finite() && rate > 0.0, "{stage}: {rate}");
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(stage))
            .unwrap_or_else(|| panic!("{stage} in {text}"));
        assert!(line.ends_with(&format!("{rate:8.0} images/s")), "{line}");
    }
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
