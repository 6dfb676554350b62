//! `convscope bench --end-to-end`: a real training on an image folder (augmentation,
//! validation, a checkpoint every epoch, the epoch-end snapshots), its rate against the step
//! alone, peak memory per epoch, and what the work around the steps costs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;

use super::{Rates, Scratch, Stepper, out};
use crate::config::Config;
use crate::data::{Dataset, Split};
use crate::events::{Event, RunState};
use crate::infer::probe;
use crate::run::RunDir;
use crate::run::checkpoint::{self, TrainState};
use crate::train;

/// What to train on, and for how long.
pub struct Options {
    /// An image folder (one sub-folder per class); `None`: `images` generated photo-sized JPEGs.
    pub folder: Option<PathBuf>,
    pub images: usize,
    pub epochs: usize,
}

fn memory_text() -> String {
    train::timing::memory_mib().map_or_else(
        || "peak RSS unknown (no /proc/self/status)".into(),
        |(peak, now)| format!("peak RSS {peak:.0} MiB (now {now:.0} MiB)"),
    )
}

/// A finished end-to-end training, for [`report`] once the step alone is timed.
pub struct Trained {
    /// The generated data (and the run) live here until the report is made.
    scratch: Scratch,
    data: PathBuf,
    cfg: Config,
    /// From the first step to the end, checkpoints on disk.
    wall: f64,
    train_images: usize,
    val_images: usize,
    /// Where each epoch's time went.
    epochs: Vec<train::timing::EpochTimes>,
    /// Each epoch's wall time as the observer saw it (from the last epoch's end, the first from
    /// the first step): everything, validation and the epoch end included.
    epoch_walls: Vec<f64>,
}

impl Trained {
    /// Images per second of the best epoch after the first (the first warms up), whole epochs
    /// as the observer saw them: how the tutorial's pipeline is timed too.
    #[must_use]
    pub fn best_epoch_rate(&self) -> f64 {
        let rates: Vec<f64> = self
            .epoch_walls
            .iter()
            .map(|&s| self.train_images as f64 / s.max(1e-9))
            .collect();
        rates
            .iter()
            .skip(usize::from(rates.len() > 1))
            .copied()
            .fold(0.0, f64::max)
    }

    /// The same training and validation images as this run's, as the two folders (one
    /// sub-folder per class, symbolic links) that the tutorial's `flow_from_directory` reads.
    pub fn keras_folders(&self) -> Result<(PathBuf, PathBuf)> {
        let ds = Dataset::open(&self.data, None, &self.cfg)?;
        let root = self.scratch.0.join("keras");
        let mut dirs = Vec::new();
        for (name, samples) in [("train", &ds.train), ("val", &ds.val)] {
            let dir = root.join(name);
            for (i, s) in samples.iter().enumerate() {
                let class = ds.classes.get(s.label).map_or("unknown", String::as_str);
                let folder = dir.join(class);
                std::fs::create_dir_all(&folder)
                    .with_context(|| format!("creating {}", folder.display()))?;
                let file = s.path.file_name().map_or_else(
                    || format!("{i}.jpg"),
                    |f| format!("{i:06}-{}", f.to_string_lossy()),
                );
                let target = std::fs::canonicalize(&s.path)
                    .with_context(|| format!("reading {}", s.path.display()))?;
                std::os::unix::fs::symlink(&target, folder.join(&file))
                    .with_context(|| format!("linking {}", folder.join(&file).display()))?;
            }
            dirs.push(dir);
        }
        let val = dirs.pop().context("no validation folder")?;
        let train = dirs.pop().context("no training folder")?;
        Ok((train, val))
    }
}

/// Train first (so that each epoch's peak RSS is the training's alone, before the step
/// benchmark's own network and batches), printing each epoch.
pub fn train(cfg: &Config, device: &Device, opts: &Options) -> Result<Trained> {
    let scratch = Scratch::new("e2e")?;
    let data = if let Some(folder) = &opts.folder {
        folder.clone()
    } else {
        let dir = scratch.0.join("data");
        crate::data::write_bench_jpegs(&dir, opts.images, [375, 500])?;
        dir
    };
    let mut cfg = cfg.clone();
    cfg.augment.enabled = true;
    cfg.train.epochs = opts.epochs.max(1);
    out(&format!(
        "end to end: training {} for {} epochs (augmentation, validation, a checkpoint and snapshots every epoch)",
        opts.folder.as_ref().map_or_else(
            || format!("{} generated 500x375 JPEGs", opts.images),
            |f| f.display().to_string()
        ),
        cfg.train.epochs
    ));
    let breakdown = train::timing::Breakdown::default();
    let (wall, train_images, val_images, epoch_walls) =
        train_folder(&cfg, device, &data, &scratch.0, &breakdown)?;
    out("");
    Ok(Trained {
        scratch,
        data,
        cfg,
        wall,
        train_images,
        val_images,
        epochs: breakdown.epochs(),
        epoch_walls,
    })
}

/// The end-to-end rate against the step's (`step_rate`, img/s, measured after the training),
/// what the epoch end holds the step up for, and the step fed by the data pipeline.
pub fn report(t: &Trained, stepper: &mut Stepper, rates: Rates) -> Result<()> {
    let step_rate = rates.step;
    out("");
    let images = (t.train_images * t.cfg.train.epochs) as f64;
    let rate = images / t.wall;
    let at_step_rate = images / step_rate.max(1e-9);
    out(&format!(
        "end to end: {rate:.1} img/s ({} train + {} val images, {} epochs in {:.2} s); step alone {step_rate:.1} img/s: {:.2}x the step rate, overhead {:.0} % beyond the step time",
        t.train_images,
        t.val_images,
        t.cfg.train.epochs,
        t.wall,
        rate / step_rate.max(1e-9),
        100.0 * (t.wall / at_step_rate - 1.0),
    ));
    // The most the training images could come to with validation every epoch: the steps at the
    // step rate, validation at the inference rate, and nothing else.
    if t.val_images > 0 && rates.inference > 0.0 {
        let steps = t.train_images as f64 / step_rate.max(1e-9);
        let bound = steps / (steps + t.val_images as f64 / rates.inference);
        out(&format!(
            "  the most training images could come to with validation every epoch: {:.2}x the step rate (its {} images at the inference rate, {:.1} img/s, nothing else around the steps)",
            bound, t.val_images, rates.inference,
        ));
    }
    // Each epoch also runs the validation images forward: counted too, the run's rate over
    // the whole folder.
    let folder = ((t.train_images + t.val_images) * t.cfg.train.epochs) as f64 / t.wall;
    out(&format!(
        "  every image of the folder (train + val) each epoch: {folder:.1} img/s, {:.2}x the step rate",
        folder / step_rate.max(1e-9),
    ));
    // The validation pass is work of its own (a forward pass of every validation image); set
    // aside, what is left is the steps and the work between and around them.
    let validation: f64 = t.epochs.iter().map(|e| e.validation.as_secs_f64()).sum();
    if validation > 0.0 && validation < t.wall {
        let around = images / (t.wall - validation);
        out(&format!(
            "  the validation pass set aside ({validation:.2} s): training images over the rest of the wall time, {around:.1} img/s, {:.2}x the step rate",
            around / step_rate.max(1e-9),
        ));
    }
    breakdown(&t.epochs, t.train_images, step_rate);
    epoch_end_costs(&t.cfg, stepper, &t.scratch.0)?;
    competing(&t.cfg, &t.data, stepper, step_rate)
}

/// Where each epoch's wall time went, in seconds: the steps, waiting for the pipeline, the
/// validation pass (of which waiting for its data), the checkpoint's start, the rest of the epoch end and
/// what none of them accounts for; then the sums over the epochs, and the time the steps
/// would take at the step-alone rate (what the steps lose to what runs beside them).
fn breakdown(epochs: &[train::timing::EpochTimes], train_images: usize, step_rate: f64) {
    if epochs.is_empty() {
        return;
    }
    out(
        "  where the time goes (s): epoch   wall  steps  data-wait  validation (its data)  checkpoint  epoch-end  other   peak/now RSS MiB",
    );
    let s = |d: Duration| d.as_secs_f64();
    let mut total = train::timing::EpochTimes::default();
    for e in epochs {
        let mem = e
            .memory_mib
            .map_or_else(|| "-".into(), |(peak, now)| format!("{peak:.0}/{now:.0}"));
        out(&format!(
            "  {:>29} {:>6.2} {:>6.2} {:>10.3} {:>11.3} ({:.3}) {:>11.3} {:>10.3} {:>6.3}   {mem}",
            e.epoch,
            s(e.wall),
            s(e.steps),
            s(e.data_wait),
            s(e.validation),
            s(e.validation_data_wait),
            s(e.checkpoint),
            s(e.epoch_end),
            s(e.other()),
        ));
        total.wall += e.wall;
        total.steps += e.steps;
        total.data_wait += e.data_wait;
        total.validation += e.validation;
        total.validation_data_wait += e.validation_data_wait;
        total.checkpoint += e.checkpoint;
        total.epoch_end += e.epoch_end;
        total.writer_cpu += e.writer_cpu;
        total.written += e.written;
    }
    let pct = |d: Duration| 100.0 * s(d) / s(total.wall).max(1e-9);
    let alone = (train_images * epochs.len()) as f64 / step_rate.max(1e-9);
    out(&format!(
        "  {:>29} {:>6.2} {:>6.2} {:>10.3} {:>11.3} ({:.3}) {:>11.3} {:>10.3} {:>6.3}",
        "all",
        s(total.wall),
        s(total.steps),
        s(total.data_wait),
        s(total.validation),
        s(total.validation_data_wait),
        s(total.checkpoint),
        s(total.epoch_end),
        s(total.other()),
    ));
    out(&format!(
        "  share of the wall time: steps {:.0} %, data wait {:.0} %, validation {:.0} %, checkpoint {:.0} %, epoch end {:.0} %, other {:.0} %; the steps took {:.2} s against {alone:.2} s at the step-alone rate ({:+.0} % slower beside the pipeline and background work)",
        pct(total.steps),
        pct(total.data_wait),
        pct(total.validation),
        pct(total.checkpoint),
        pct(total.epoch_end),
        pct(total.other()),
        s(total.steps),
        100.0 * (s(total.steps) / alone.max(1e-9) - 1.0),
    ));
    if total.written > 0 {
        out(&format!(
            "  beside the steps: the checkpoint writer thread used {:.0} ms of CPU per checkpoint ({} written during training)",
            1e3 * s(total.writer_cpu) / total.written as f64,
            total.written,
        ));
    }
}

/// What the work at an epoch's end holds the step up for: a checkpoint written on the
/// training thread (as before), starting one in the background (as now), and the filter and
/// feature-map snapshots.
fn epoch_end_costs(cfg: &Config, s: &Stepper, scratch: &Path) -> Result<()> {
    let dir = scratch.join("costs");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut state = TrainState {
        epoch: 1,
        batch: 1,
        batches_per_epoch: 1,
        ..TrainState::default()
    };
    let t0 = Instant::now();
    checkpoint::save(&dir, &state, |tmp| {
        s.net.clone().save_file(tmp.join(checkpoint::MODEL_FILE))?;
        s.optim.save(tmp.join(checkpoint::OPTIM_FILE))
    })?;
    let on_thread = t0.elapsed();
    state.epoch = 2;
    let mut writer = checkpoint::Background::default();
    let (net, optim) = (s.net.clone(), s.optim.clone());
    let t0 = Instant::now();
    let files = crate::train::files_writer(&net, &optim)
        .map_err(anyhow::Error::msg)
        .context("laying out the checkpoint files")?;
    writer.start(&dir, &state, [0, 0], files)?;
    let stall = t0.elapsed();
    writer.wait().transpose()?;
    let written = t0.elapsed();
    let classes = ["a".to_string(), "b".to_string()];
    let [c, h, w] = cfg.input_shape();
    let input: Vec<f32> = (0..c * h * w).map(|i| (i % 251) as f32 / 251.0).collect();
    let t0 = Instant::now();
    let _ = probe::filters(&s.net, 1)?;
    let filters = t0.elapsed();
    let t0 = Instant::now();
    let _ = probe::Probe::new(cfg, &classes).feature_maps_of(&s.net, &dir, &input, 1)?;
    let maps = t0.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    out(&format!(
        "  epoch end: checkpoint on the training thread {:.0} ms; in the background: the step waits {:.1} ms (written in {:.0} ms); snapshots: filters {:.1} ms, feature maps {:.1} ms",
        ms(on_thread),
        ms(stall),
        ms(written),
        ms(filters),
        ms(maps)
    ));
    Ok(())
}

/// The step with the data pipeline (decoding, augmentation, prefetch) feeding it a batch per
/// step, against the step alone: what the pipeline costs when it competes for the cores.
fn competing(cfg: &Config, data: &Path, s: &mut Stepper, step_rate: f64) -> Result<()> {
    let ds = Dataset::open(data, None, cfg)?;
    let bs = cfg.train.batch_size;
    let per_epoch = ds.batches_per_epoch(bs).max(1);
    // One epoch first: the decoded images go into the cache, as in a training's first epoch.
    let t0 = Instant::now();
    let first: usize = ds.batches(Split::Train, 1, 0, bs).map(|b| b.len).sum();
    let first_rate = first as f64 / t0.elapsed().as_secs_f64().max(1e-9);
    let steps = (2 * per_epoch).max(8);
    let ad = s.net.convs[0].weight.val().device();
    let mut waited = Duration::ZERO;
    let t0 = Instant::now();
    let mut epoch = 2;
    let mut batches = ds.batches(Split::Train, epoch, 0, bs);
    for _ in 0..steps {
        let t = Instant::now();
        // The batch is made (decoded, augmented) and dropped: the step trains on memory.
        let _batch = if let Some(b) = batches.next() {
            b
        } else {
            epoch += 1;
            batches = ds.batches(Split::Train, epoch, 0, bs);
            batches.next().context("the data folder gave no batch")?
        };
        waited += t.elapsed();
        s.step(&ad);
    }
    let secs = t0.elapsed().as_secs_f64().max(1e-9);
    let rate = (steps * bs) as f64 / secs;
    out(&format!(
        "  data pipeline: first epoch (decoding) {first_rate:.0} img/s alone; the step fed by it (cached, augmenting): {rate:.1} img/s, {:.0} % of the step alone ({step_rate:.1}); waited for data {:.1} ms/step",
        100.0 * rate / step_rate.max(1e-9),
        waited.as_secs_f64() * 1e3 / steps as f64,
    ));
    Ok(())
}

/// Never asks the training to stop.
struct NoInterrupt;

impl train::Interrupt for NoInterrupt {
    fn requested(&self) -> Option<i32> {
        None
    }
}

/// Train `data` as `convscope train` would, in this process, and time it from the
/// observer's side: seconds from the first step to the end, train and validation images, and
/// each epoch's seconds.
fn train_folder(
    cfg: &Config,
    device: &Device,
    data: &Path,
    scratch: &Path,
    breakdown: &train::timing::Breakdown,
) -> Result<(f64, usize, usize, Vec<f64>)> {
    let (run, _lock, _) = RunDir::create(&scratch.join("run"))?;
    run.write_config(cfg)?;
    let job = train::Job {
        cfg: cfg.clone(),
        device: device.clone(),
        data_dir: data.to_path_buf(),
        val_dir: None,
        run,
        resume: None,
        samples: Vec::new(),
        samples_first: false,
        stop_by: train::StopBy::default(),
        memory: None,
        breakdown: Some(breakdown.clone()),
    };
    let (events_tx, mut events) = crate::events::channel(256);
    let (commands_tx, commands) = std::sync::mpsc::channel();
    let handle = train::spawn(job, events_tx, commands, NoInterrupt)
        .context("starting the training thread")?;
    let (mut train_images, mut val_images) = (0, 0);
    let mut started = None;
    let mut last = None;
    let mut finished = None;
    let mut failed = None;
    let mut epoch_walls = Vec::new();
    while let Some(event) = events.blocking_recv() {
        match event {
            Event::Started(info) => {
                (train_images, val_images) = (info.train_images, info.val_images);
            }
            Event::Status(s) if s.state == RunState::Running && started.is_none() => {
                started = Some(Instant::now());
            }
            Event::Epoch(m) => {
                let now = Instant::now();
                let since = last
                    .or(started)
                    .map_or(0.0, |t| now.duration_since(t).as_secs_f64());
                last = Some(now);
                epoch_walls.push(since);
                out(&format!(
                    "  epoch {}: {since:.2} s since the last (batches and validation {:.2} s, {:.1} img/s), val acc {}, {}",
                    m.epoch,
                    m.seconds,
                    train_images as f64 / m.seconds.max(1e-9),
                    m.val_accuracy
                        .map_or_else(|| "-".into(), |a| format!("{a:.3}")),
                    memory_text()
                ));
            }
            Event::Finished(_) => {
                finished = Some(Instant::now());
                break;
            }
            Event::Failed(f) => {
                failed = Some(f.error);
                break;
            }
            _ => {}
        }
    }
    drop(events);
    drop(commands_tx);
    let result = handle.join();
    if let Some(error) = failed {
        bail!("the end-to-end training failed: {error}");
    }
    match result {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => bail!("the end-to-end training failed: {e}"),
        Err(_) => bail!("the end-to-end training thread failed"),
    }
    let (Some(started), Some(finished)) = (started, finished) else {
        bail!("the end-to-end training ended without finishing");
    };
    let wall = finished.duration_since(started).as_secs_f64().max(1e-9);
    out(&format!("  after training: {}", memory_text()));
    Ok((wall, train_images, val_images, epoch_walls))
}
