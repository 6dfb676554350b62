//! `convscope bench`: training and data-pipeline throughput, printed beside the peer command.

use std::io::Write as _;
use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Distribution, Tensor};

use crate::cli::BenchArgs;
use crate::config::Config;
use crate::model::{self, Net};

fn out(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// Run the benchmarks.
pub fn run(args: &BenchArgs) -> Result<i32> {
    let mut cfg = Config::default();
    cfg.data.image_size = args.image_size;
    cfg.train.batch_size = args.batch_size;
    cfg.train.device.clone_from(&args.device);
    cfg.model.conv_impl = args.conv_impl.into();
    cfg.validate()?;
    let threads = rayon::current_num_threads();
    out(&format!(
        "convscope bench: tutorial network, {}x{} RGB, batch {}, device {}, conv {:?}, {} threads",
        args.image_size[0],
        args.image_size[1],
        args.batch_size,
        args.device,
        cfg.model.conv_impl,
        threads
    ));
    if args.ui || args.ui_only {
        for t in crate::ui::bench_render(500) {
            out(&format!(
                "ui {:<28} p50 {:6.2} ms  p99 {:6.2} ms  ({} samples, 200x60 half-blocks)",
                t.name,
                t.p50.as_secs_f64() * 1e3,
                t.p99.as_secs_f64() * 1e3,
                t.samples
            ));
        }
        if args.ui_only {
            return Ok(0);
        }
    }
    train_step(&cfg, args.steps)?;
    if args.breakdown {
        use crate::model::ops::bench::{OpsPath, bench_step};
        let side = args.image_size[0].min(args.image_size[1]) as usize;
        for path in [OpsPath::Burn, OpsPath::Fast] {
            let r = bench_step(args.batch_size, side, args.steps, path);
            out(&format!(
                "breakdown ({} ops): {:.1} img/s, {:.0} ms/step",
                path.name(),
                r.images_per_sec,
                r.step_ms
            ));
            for p in &r.phases {
                out(&format!("  {:<40} {:8.1} ms", p.name, p.ms));
            }
        }
    }
    if args.pipeline {
        pipeline(&cfg)?;
    }
    out("");
    out("peer (same machine, same session):");
    out(&format!(
        "  python3 ../shared/bench/peer_torch.py --random 512 --size {} --epochs 2 --batch {} --threads {threads}",
        args.image_size[0], args.batch_size
    ));
    Ok(0)
}

fn train_step(cfg: &Config, steps: usize) -> Result<()> {
    let device = crate::train::device::create(&cfg.train.device).map_err(anyhow::Error::msg)?;
    let ad = device.clone().autodiff();
    let mut net = Net::new(cfg, 2, 1, &ad)?;
    let mut optim = AdamConfig::new().with_epsilon(1e-7).init();
    let [c, h, w] = cfg.input_shape();
    let n = cfg.train.batch_size;
    let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
    let (mut t_fwd, mut t_bwd, mut t_opt) = (0.0f64, 0.0f64, 0.0f64);
    for step in 0..=steps {
        let x = Tensor::<4>::random([n, c, h, w], Distribution::Default, &ad);
        let _ = device.sync();
        let t0 = Instant::now();
        let logits = net.forward(x, true, false).logits;
        let loss = model::loss(logits, &labels, &ad);
        let _: f32 = loss.clone().into_scalar();
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let _ = device.sync();
        let t2 = Instant::now();
        net = optim.step(cfg.optimizer.lr, net, grads);
        let _: f32 = net.convs[0].bias.val().sum().into_scalar();
        let t3 = Instant::now();
        if step > 0 {
            t_fwd += (t1 - t0).as_secs_f64();
            t_bwd += (t2 - t1).as_secs_f64();
            t_opt += (t3 - t2).as_secs_f64();
        }
    }
    let s = steps.max(1) as f64;
    let total = (t_fwd + t_bwd + t_opt) / s;
    out(&format!(
        "train step: {:.1} img/s ({:.0} ms/step: forward {:.0} ms, backward {:.0} ms, optimizer {:.0} ms; {steps} steps after 1 warm-up)",
        n as f64 / total,
        total * 1e3,
        t_fwd / s * 1e3,
        t_bwd / s * 1e3,
        t_opt / s * 1e3
    ));
    // Inference on the plain device.
    let eval = net.valid();
    let vd = eval.convs[0].weight.val().device();
    let mut t_inf = 0.0;
    for step in 0..=steps {
        let x = Tensor::<4>::random([n, c, h, w], Distribution::Default, &vd);
        let t0 = Instant::now();
        let _: Vec<f32> = eval
            .forward(x, false, false)
            .logits
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        if step > 0 {
            t_inf += t0.elapsed().as_secs_f64();
        }
    }
    out(&format!("inference: {:.1} img/s", n as f64 * s / t_inf));
    Ok(())
}

fn pipeline(cfg: &Config) -> Result<()> {
    // Photo-sized JPEGs (500x375, like the cats-vs-dogs images) -> the network's input size.
    let report = crate::data::bench_pipeline(500, [375, 500], cfg)?;
    out(&report.to_string());
    Ok(())
}
