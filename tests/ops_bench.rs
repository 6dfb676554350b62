//! The training-step benchmark runs both paths on a tiny image and reports every phase.

use convscope::model::ops::bench::{OpsPath, bench_step};

#[test]
fn bench_step_reports_every_path() {
    for path in OpsPath::ALL {
        let report = bench_step(2, 16, 1, path);
        assert_eq!(report.path, path);
        assert_eq!((report.batch, report.size, report.steps), (2, 16, 1));
        // The rate and the step time are one measurement: batch images per step.
        let per_step = report.images_per_sec * report.step_ms / 1000.0;
        assert!((per_step - 2.0).abs() < 1e-6, "{per_step} images a step");
        let names: Vec<&str> = report.phases.iter().map(|p| p.name.as_str()).collect();
        let in_step = names.iter().filter(|n| n.starts_with("in step: ")).count();
        // Forward and backward of each of the three blocks' ops; burn's ops are not seen.
        let (want_in_step, per_op) = match path {
            OpsPath::Burn => (0, 3 * 4),
            OpsPath::Fast => (12, 3 * 4),
            OpsPath::Fused => (6, 3 * 2),
        };
        assert_eq!(in_step, want_in_step, "{names:?}");
        assert_eq!(names.len(), 3 + in_step + per_op, "{names:?}");
        for p in &report.phases {
            assert!(p.ms.is_finite() && p.ms >= 0.0, "{}: {} ms", p.name, p.ms);
        }
        // Forward, backward and optimizer are the step, split three ways.
        let parts: f64 = report.phases[..3].iter().map(|p| p.ms).sum();
        assert_eq!(
            names[..3],
            ["step forward", "step backward", "step optimizer"]
        );
        assert!(
            (parts - report.step_ms).abs() <= 1e-9 * report.step_ms.max(1.0),
            "{parts} ms of parts, {} ms a step",
            report.step_ms
        );
    }
}

/// Full-size comparison; run with
/// `cargo test --release --test ops_bench -- --ignored --nocapture`.
#[test]
#[ignore = "takes minutes; a benchmark, not a check"]
fn tutorial_net_150px() {
    let batches: Vec<usize> = std::env::var("BENCH_BATCHES")
        .unwrap_or_else(|_| "32,64".into())
        .split(',')
        .map(|b| {
            b.trim()
                .parse()
                .expect("BENCH_BATCHES is a comma-separated list of sizes")
        })
        .collect();
    let steps = std::env::var("BENCH_STEPS").map_or(3, |s| s.parse().expect("BENCH_STEPS"));
    let paths = std::env::var("BENCH_PATHS").unwrap_or_else(|_| "burn,fast,fused".into());
    for batch in batches {
        for name in paths.split(',') {
            let path = OpsPath::ALL
                .into_iter()
                .find(|p| p.name() == name)
                .expect("BENCH_PATHS names burn, fast or fused");
            let r = bench_step(batch, 150, steps, path);
            eprintln!(
                "{name:>5} batch {batch:>3}: {:6.1} img/s, step {:7.1} ms, cpu {:7.1} ms/step",
                r.images_per_sec,
                r.step_ms,
                r.cpu_ms.unwrap_or(f64::NAN)
            );
            for p in &r.phases {
                eprintln!("       {:<34} {:8.1} ms", p.name, p.ms);
            }
        }
    }
}
