//! `convscope bench`: training and data-pipeline throughput, printed beside the peer command;
//! `--end-to-end` trains a folder as `convscope train` does (`bench/end_to_end.rs`), `--peers`
//! times TensorFlow/Keras and PyTorch in the same run (`bench/peers.rs`), `--breakdown` also
//! compares the convolution kernels step by step (`bench/kernels.rs`).

mod end_to_end;
mod kernels;
mod peers;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor};

use crate::cli::BenchArgs;
use crate::config::{Config, DeviceSpec, Overrides, Settings};
use crate::model::{self, Flow, Net, Step};

fn out(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// A scratch folder under the temporary directory, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Result<Self> {
        let path =
            std::env::temp_dir().join(format!("convscope-bench-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path); // a leftover from a killed run
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run the benchmarks.
pub fn run(args: &BenchArgs) -> Result<i32> {
    let overrides = Overrides {
        image_size: Some(args.image_size),
        batch_size: Some(args.batch_size),
        device: Some(args.device.clone()),
        conv_impl: Some(args.conv_impl.into()),
        ..Overrides::default()
    };
    let cfg = Settings::new_run(Config::default(), None, overrides)
        .without_user_preferences()
        .resolve()?;
    let spec = cfg.device()?;
    // A device this build or machine lacks is refused before the banner says what would run.
    let device = if args.ui_only {
        None
    } else {
        Some(crate::device::create(spec)?)
    };
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
    }
    let Some(device) = device else {
        return Ok(0);
    };
    if one_mode(args, &cfg, &device)? {
        return Ok(0);
    }
    let trained = end_to_end_first(args, &cfg, &device)?;
    let (rates, mut stepper) = train_step(&cfg, &device, spec, args.steps, args.warmup)?;
    let step_rate = rates.step;
    if args.breakdown {
        breakdown(args, &mut stepper, &device);
    }
    if args.pipeline {
        pipeline(&cfg)?;
    }
    if let Some(trained) = &trained {
        end_to_end::report(trained, &mut stepper, rates)?;
    }
    if args.peers {
        let shape = peers::Shape {
            batch: args.batch_size,
            size: args.image_size[0],
            threads,
            images: args.images,
            epochs: args.epochs.max(2),
        };
        peers::run(&args.python, &shape, step_rate)?;
        if let Some(trained) = &trained {
            let (train, val) = trained.keras_folders()?;
            peers::end_to_end(
                &args.python,
                &shape,
                &train,
                &val,
                trained.best_epoch_rate(),
            )?;
        }
        return Ok(0);
    }
    out("");
    out("peer (same machine, same session):");
    if spec.is_gpu() {
        out(&format!(
            "  python3 ../shared/bench/peer_torch.py --random 8192 --size {} --epochs 3 --batch {} --device cuda",
            args.image_size[0], args.batch_size
        ));
    } else {
        out(&format!(
            "  python3 ../shared/bench/peer_torch.py --random 512 --size {} --epochs 2 --batch {} --threads {threads}",
            args.image_size[0], args.batch_size
        ));
    }
    Ok(0)
}

/// One optimiser step on a random batch; the loss is read back (a device sync), as the
/// peer script does with `loss.item()`.
struct Stepper {
    net: Net,
    optim: burn::optim::ModuleOptimizer,
    labels: Vec<usize>,
    shape: [usize; 4],
    lr: f64,
    /// Random batches made once, like the peer's random dataset: making 4 million random
    /// numbers each step (tens of milliseconds on a CPU) is not part of training.
    batches: Vec<Tensor<4>>,
    next: usize,
}

impl Stepper {
    /// Batches to rotate through.
    const BATCHES: usize = 4;

    fn batch(&mut self, device: &Device) -> Tensor<4> {
        if self.batches.is_empty() || self.batches[0].device() != *device {
            self.batches = (0..Self::BATCHES)
                .map(|_| Tensor::<4>::random(self.shape, Distribution::Default, device))
                .collect();
        }
        self.next = (self.next + 1) % self.batches.len();
        self.batches[self.next].clone()
    }

    fn step(&mut self, ad: &Device) -> f32 {
        let x = self.batch(ad);
        let logits = self.net.forward(x, true, false).logits;
        let loss = model::loss(logits, &self.labels, ad);
        let grads = GradientsParams::from_grads(loss.backward(), &self.net);
        let net = std::mem::replace(&mut self.net, Net::empty());
        self.net = self.optim.step(self.lr, net, grads);
        loss.into_scalar()
    }
}

/// Where a step's time goes: a sync after each phase.
fn phases(s: &mut Stepper, ad: &Device, steps: usize, sync: &dyn Fn()) {
    let (mut t_fwd, mut t_bwd, mut t_opt) = (0.0f64, 0.0f64, 0.0f64);
    for _ in 0..steps {
        let x = s.batch(ad);
        sync();
        let t0 = Instant::now();
        let logits = s.net.forward(x, true, false).logits;
        let loss = model::loss(logits, &s.labels, ad);
        let _: f32 = loss.clone().into_scalar();
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &s.net);
        sync();
        let t2 = Instant::now();
        let net = std::mem::replace(&mut s.net, Net::empty());
        s.net = s.optim.step(s.lr, net, grads);
        sync();
        let t3 = Instant::now();
        t_fwd += (t1 - t0).as_secs_f64();
        t_bwd += (t2 - t1).as_secs_f64();
        t_opt += (t3 - t2).as_secs_f64();
    }
    let k = steps.max(1) as f64 / 1e3;
    out(&format!(
        "  phases (synced): forward {:.1} ms, backward {:.1} ms, optimizer {:.1} ms",
        t_fwd / k,
        t_bwd / k,
        t_opt / k
    ));
}

fn train_step(
    cfg: &Config,
    device: &Device,
    spec: DeviceSpec,
    steps: usize,
    warmup: usize,
) -> Result<(Rates, Stepper)> {
    let ad = device.clone().autodiff();
    let [c, h, w] = cfg.input_shape();
    let n = cfg.train.batch_size;
    let mut s = Stepper {
        net: Net::new(cfg, 2, 1, &ad)?,
        optim: crate::model::ops::adam::adam(&cfg.optimizer),
        labels: (0..n).map(|i| i % 2).collect(),
        shape: [n, c, h, w],
        lr: cfg.optimizer.lr,
        batches: Vec::new(),
        next: 0,
    };
    let sync = || {
        let _ = device.sync();
    };

    // The first step compiles (and on a GPU, tunes) every kernel.
    let t0 = Instant::now();
    s.step(&ad);
    let first = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for _ in 1..warmup.max(1) {
        s.step(&ad);
    }
    out(&format!(
        "first step: {first:.2} s{}; {} more warm-up steps: {:.2} s",
        if spec.is_gpu() {
            " (compiles and tunes the GPU kernels unless this machine's tuning cache has them)"
        } else {
            ""
        },
        warmup.max(1) - 1,
        t0.elapsed().as_secs_f64()
    ));

    // Throughput, measured like the peer: one read of the loss per step.
    let t0 = Instant::now();
    for _ in 0..steps {
        s.step(&ad);
    }
    let per_step = t0.elapsed().as_secs_f64() / steps.max(1) as f64;
    let step_rate = n as f64 / per_step;
    out(&format!(
        "train step: {step_rate:.1} img/s ({:.1} ms/step, {steps} steps)",
        per_step * 1e3
    ));

    phases(&mut s, &ad, steps, &sync);
    layer_types(&mut s, &ad, steps, &sync);

    // Inference on the plain device: read back the logits of each batch.
    let eval = s.net.valid();
    let vd = eval.convs[0].weight.val().device();
    let mut infer = |eval: &Net| -> Result<()> {
        let _: Vec<f32> = eval
            .forward(s.batch(&vd), false, false)
            .logits
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("cannot read the logits: {e:?}"))?;
        Ok(())
    };
    for _ in 0..warmup.max(1) {
        infer(&eval)?;
    }
    let t0 = Instant::now();
    for _ in 0..steps {
        infer(&eval)?;
    }
    let inference = n as f64 * steps as f64 / t0.elapsed().as_secs_f64();
    out(&format!("inference: {inference:.1} img/s"));
    Ok((
        Rates {
            step: step_rate,
            inference,
        },
        s,
    ))
}

/// What [`train_step`] measured, in images per second.
#[derive(Clone, Copy, Debug)]
pub struct Rates {
    /// Training steps (forward, backward, optimizer) on in-memory batches.
    pub step: f64,
    /// The evaluation forward pass (fused), logits read back.
    pub inference: f64,
}

/// Forward and forward+backward time of each layer on its own, summed by layer type.
fn layer_types(s: &mut Stepper, ad: &Device, steps: usize, sync: &dyn Fn()) {
    let mut x = Flow::Map(s.batch(ad));
    let net = &s.net;
    // Each step's input, from one forward pass.
    let mut inputs = Vec::with_capacity(net.steps.len());
    for i in 0..net.steps.len() {
        inputs.push(x.clone().detach());
        x = net.step(i, x, true);
    }
    let reps = steps.clamp(1, 20);
    let mut rows: Vec<(&str, f64, f64)> = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let kind = match net.steps[i] {
            Step::Conv { .. } => "conv",
            Step::Pool { .. } => "pool",
            Step::Dense { .. } => "dense",
            Step::Dropout { .. } | Step::Flatten => "dropout/flatten",
        };
        let (mut fwd, mut both) = (0.0, 0.0);
        for rep in 0..=reps {
            let x = input.clone().require_grad();
            sync();
            let t0 = Instant::now();
            let y = net.step(i, x, true);
            sync();
            let t1 = Instant::now();
            let _grads = y.sum().backward();
            sync();
            if rep > 0 {
                fwd += (t1 - t0).as_secs_f64();
                both += t0.elapsed().as_secs_f64();
            }
        }
        match rows.iter_mut().find(|r| r.0 == kind) {
            Some(r) => {
                r.1 += fwd;
                r.2 += both;
            }
            None => rows.push((kind, fwd, both)),
        }
    }
    let k = reps as f64 / 1e3;
    for (kind, fwd, both) in rows {
        out(&format!(
            "  {kind:<16} forward {:7.1} ms   forward+backward {:7.1} ms   (each layer alone, synced)",
            fwd / k,
            both / k
        ));
    }
}

/// Explaining one image with the configured network (random weights): p50 of `steps` runs of
/// each method after one untimed run.
/// `--breakdown`: the two conv kernels timed in alternating steps, then every op of a step
/// with burn's ops, the fast ops, and the fast ops with conv+pool fused.
fn breakdown(args: &BenchArgs, stepper: &mut Stepper, device: &Device) {
    use crate::model::ops::bench::{OpsPath, bench_step};
    kernels::kernel_ab(stepper, &device.clone().autodiff(), args.steps);
    let side = args.image_size[0].min(args.image_size[1]) as usize;
    for path in OpsPath::ALL {
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

/// `--end-to-end`: the folder trained first, so that its peak RSS is the training's alone.
fn end_to_end_first(
    args: &BenchArgs,
    cfg: &Config,
    device: &Device,
) -> Result<Option<end_to_end::Trained>> {
    if !args.end_to_end {
        return Ok(None);
    }
    let opts = end_to_end::Options {
        folder: args.folder.clone(),
        images: args.images,
        epochs: args.epochs,
    };
    end_to_end::train(cfg, device, &opts).map(Some)
}

/// The modes that time one thing and nothing else (`--explain`, `--maximize`); whether one ran.
fn one_mode(args: &BenchArgs, cfg: &Config, device: &Device) -> Result<bool> {
    if args.explain {
        explain_one(cfg, device, args.steps)?;
    } else if args.maximize {
        maximize(cfg, device, args.maximize_steps)?;
    } else {
        return Ok(false);
    }
    Ok(true)
}

fn explain_one(cfg: &Config, device: &Device, steps: usize) -> Result<()> {
    use crate::model::explain::{self, CamLayer, Method};
    let [c, h, w] = cfg.input_shape();
    let net = Net::new(cfg, 2, 1, device)?;
    let layer = explain::default_layer(&net).map_or(CamLayer::AllConv, CamLayer::Step);
    let x = Tensor::<4>::random([1, c, h, w], Distribution::Default, device);
    let build = if cfg!(debug_assertions) {
        "debug build"
    } else {
        "release build"
    };
    for (method, label) in [
        (Method::GradCam, "gradcam"),
        (Method::Saliency, "saliency"),
        (Method::SmoothGrad, "smoothgrad"),
    ] {
        let mut times = Vec::with_capacity(steps.max(1));
        for rep in 0..=steps.max(1) {
            let t0 = Instant::now();
            explain::explain(&net, x.clone(), method, layer, Some(1))?;
            if rep > 0 {
                times.push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
        times.sort_by(f64::total_cmp);
        out(&format!(
            "explain {label:<10} p50 {:8.1} ms  ({} runs, one {h}x{w} image, {build})",
            times[times.len() / 2],
            times.len()
        ));
    }
    Ok(())
}

fn pipeline(cfg: &Config) -> Result<()> {
    // Photo-sized JPEGs (500x375, like the cats-vs-dogs images) -> the network's input size.
    let report = crate::data::bench_pipeline(500, [375, 500], cfg)?;
    out(&report.to_string());
    Ok(())
}

/// Activation maximisation of every filter of the third conv layer (`conv2d_2` of the tutorial
/// network), each tier once, on a seeded untrained network.
fn maximize(cfg: &Config, device: &Device, regularised_steps: usize) -> Result<()> {
    use crate::model::maximize::{Settings, Tier, maximize};
    let net = Net::new(cfg, 2, 1, device)?;
    let convs: Vec<usize> = (0..net.steps.len())
        .filter(|&i| matches!(net.steps[i], Step::Conv { .. }))
        .collect();
    let Some(&step) = convs.get(2).or(convs.last()) else {
        anyhow::bail!("the network has no conv layer to maximise");
    };
    let Step::Conv { index, .. } = net.steps[step] else {
        anyhow::bail!("step {step} is not a conv layer");
    };
    let filters: Vec<usize> = (0..net.convs[index].weight.dims()[0]).collect();
    let [_, h, w] = cfg.input_shape();
    let never = std::sync::atomic::AtomicBool::new(false);
    for tier in [Tier::Quick, Tier::Regularised] {
        let mut settings = Settings::new(tier, 0);
        if tier == Tier::Regularised {
            settings.steps = regularised_steps;
        }
        let t0 = Instant::now();
        let images = maximize(
            &net,
            step,
            cfg.input_shape(),
            &filters,
            &settings,
            &never,
            &mut |_, _| {},
        )?;
        let secs = t0.elapsed().as_secs_f64();
        let mean = |f: fn(&crate::model::maximize::Maximized) -> f32| {
            images.iter().map(f).sum::<f32>() / images.len().max(1) as f32
        };
        out(&format!(
            "maximize {}: {} filters of conv layer {} at {h}x{w}, {} steps: {secs:.2} s ({:.0} ms/step); mean activation {:.4} -> {:.4}",
            tier.name(),
            filters.len(),
            convs.iter().position(|&c| c == step).unwrap_or(0) + 1,
            settings.steps,
            secs * 1e3 / settings.steps.max(1) as f64,
            mean(|m| m.seed_activation),
            mean(|m| m.activation),
        ));
    }
    Ok(())
}
