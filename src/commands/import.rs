//! `convscope import FILE --run DIR`: a run directory from a model trained elsewhere.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use burn::module::Module as _;
use burn::tensor::Device;

use crate::cli::ImportArgs;
use crate::config::Config;
use crate::events::{CheckpointInfo, Event, FinishInfo, FinishReason, ImportInfo};
use crate::import::{self, Source, plan};
use crate::model::Net;
use crate::run::RunSource;
use crate::run::checkpoint::{self, TrainState};
use crate::run::event_log::EventLog;
use crate::run::{ClassesInfo, RunDir, shell_quote};

/// Run the command.
pub fn run(args: &ImportArgs) -> Result<i32> {
    let source = import::read(&args.file)?;
    let base = Config::load(args.config.as_deref())?;
    let data_classes = args.data.as_deref().map(class_folders).transpose()?;
    let classes = import::resolve_classes(&source, args.classes.clone(), data_classes.clone())?;
    if let (Some(data), Some(found)) = (&args.data, &data_classes)
        && found != &classes
    {
        bail!(
            "the classes {classes:?} differ from the sub-folders of {} ({found:?}); training on it needs the same classes in the same order: rename the folders or give --classes",
            data.display()
        );
    }
    let cfg = import::config_for(&source, base);
    cfg.validate().with_context(|| {
        format!(
            "the network of {} is not one convscope can build",
            args.file.display()
        )
    })?;
    let plan = plan::plan(&source, &cfg, classes.len())?;
    let header = header(&source, &cfg, &classes, args.config.as_deref());
    if args.dry_run {
        let mut out = std::io::stdout();
        let _ = write!(out, "{header}\n{}", plan.table());
        if let Some(row) = plan.first_problem() {
            let _ = writeln!(
                std::io::stderr(),
                "convscope: {} does not fit the network: `{}` {}: {}",
                args.file.display(),
                row.source,
                row.shape,
                row.problem.as_deref().unwrap_or_default()
            );
            return Ok(1);
        }
        return Ok(0);
    }
    if let Some(row) = plan.first_problem() {
        let hint = if source.arch.is_none() {
            "\nThis file does not describe its network: it is taken from --config (default: the tutorial network). Give --config with the [model] layers and [data] image_size the file was trained with."
        } else {
            ""
        };
        bail!(
            "{} does not fit the network; nothing was written. First problem: `{}` {}: {}\n{header}\n{}{hint}",
            args.file.display(),
            row.source,
            row.shape,
            row.problem.as_deref().unwrap_or_default(),
            plan.table()
        );
    }
    let device = Device::flex();
    let net = plan::build(&cfg, classes.len(), &plan, &device)?;
    let tensors = plan.rows.iter().filter(|r| r.source != "(no bias)").count();
    let written = write_run(args, &source, &cfg, &classes, &net, tensors)?;
    let run = shell_quote(&args.run);
    let mut msg = format!(
        "convscope: imported {} ({}, {} tensors, {} parameters) into {} as checkpoint {written}\n  look inside: convscope view {run}\n  classify:    convscope predict {run} IMAGE...\n",
        args.file.display(),
        source.format.name(),
        tensors,
        net.num_params(),
        args.run.display(),
    );
    if args.data.is_some() {
        let _ = writeln!(
            msg,
            "  train on:    convscope resume {run} --epochs 2   (one epoch more on the --data folder)"
        );
    } else {
        msg.push_str(
            "  to train it further on images, import it with --data FOLDER (one sub-folder per class)\n",
        );
    }
    let _ = write!(std::io::stderr(), "{msg}");
    Ok(0)
}

/// What was read and what it becomes, above the table.
fn header(source: &Source, cfg: &Config, classes: &[String], config: Option<&Path>) -> String {
    let network = match (&source.arch, config) {
        (Some(_), _) => "from the file".to_string(),
        (None, Some(c)) => format!("from {}", c.display()),
        (None, None) => "the built-in tutorial network (the file does not describe one; --config FILE gives another)".to_string(),
    };
    let mut s = format!(
        "{}: {} ({} layers with weights)\nnetwork: {network}; input {}x{}x{}; classes: {}\n",
        source.path.display(),
        source.format.name(),
        source.layers.len(),
        cfg.data.image_size[0],
        cfg.data.image_size[1],
        cfg.input_shape()[0],
        classes.join(", ")
    );
    for note in source.arch.iter().flat_map(|a| &a.notes) {
        let _ = writeln!(s, "note: {note}");
    }
    s
}

/// Sorted sub-folder names of an image folder (class index = sorted folder name).
fn class_folders(data: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(data)
        .with_context(|| format!("cannot read the --data folder {}", data.display()))?
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    if names.len() < 2 {
        bail!(
            "{} has {} sub-folder(s); it needs one per class (at least 2)",
            data.display(),
            names.len()
        );
    }
    Ok(names)
}

/// Make the run directory; on any failure remove what was made.
fn write_run(
    args: &ImportArgs,
    source: &Source,
    cfg: &Config,
    classes: &[String],
    net: &Net,
    tensors: usize,
) -> Result<String> {
    let path = &args.run;
    if path.join("config.toml").exists() {
        bail!(
            "{} holds a run already; import into a new --run directory",
            path.display()
        );
    }
    let existed = path.exists();
    let (run, lock, _) = RunDir::create(path)?;
    let result = fill_run(&run, args, source, cfg, classes, net, tensors);
    if result.is_err() {
        drop(lock);
        if existed {
            if let Ok(entries) = std::fs::read_dir(path) {
                for e in entries.flatten() {
                    let p = e.path();
                    let _ = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                }
            }
        } else {
            let _ = std::fs::remove_dir_all(path);
        }
    }
    result
}

fn fill_run(
    run: &RunDir,
    args: &ImportArgs,
    source: &Source,
    cfg: &Config,
    classes: &[String],
    net: &Net,
    tensors: usize,
) -> Result<String> {
    let sha256 = import::sha256_file(&source.path)?;
    let bytes = std::fs::metadata(&source.path).map_or(0, |m| m.len());
    run.write_config(cfg)?;
    run.write_classes(&ClassesInfo {
        classes: classes.to_vec(),
        ..ClassesInfo::default()
    })?;
    if let Some(data) = &args.data {
        RunSource {
            data_dir: data.clone(),
            val_dir: args.val.clone(),
        }
        .write(run)?;
    }
    let samples = run.write_samples();
    let state = TrainState {
        epoch: 1,
        batch: 1,
        batches_per_epoch: 1,
        seed: cfg.train.seed,
        ..TrainState::default()
    };
    let optim = crate::model::ops::adam::adam(&cfg.optimizer);
    let cp = checkpoint::save(&run.checkpoints_path(), &state, |tmp| {
        net.clone()
            .save_file(tmp.join(checkpoint::MODEL_FILE))
            .map_err(|e| e.to_string())?;
        optim
            .save(tmp.join(checkpoint::OPTIM_FILE))
            .map_err(|e| e.to_string())
    })?;
    let mut log = EventLog::append(&run.events_path())?;
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    // What a viewer needs to draw the network (its summary, classes and probe images), as a
    // training session's start says it; the `imported` event after it says where it came from.
    let summary = crate::model::summary::summarize(cfg, classes.len())?;
    log.write(&Event::Started(Box::new(crate::events::StartInfo {
        run_dir: run.path.clone(),
        device: "imported".into(),
        classes: classes.to_vec(),
        train_images: 0,
        val_images: 0,
        skipped_images: 0,
        epochs: 1,
        batches_per_epoch: 1,
        batch_size: cfg.train.batch_size,
        start_epoch: 1,
        start_batch: 1,
        params: summary.iter().map(|r| r.params).sum(),
        summary,
        probe_images: samples,
        time,
    })))?;
    log.write(&Event::Imported(Box::new(ImportInfo {
        source: std::path::absolute(&source.path).unwrap_or_else(|_| source.path.clone()),
        format: source.format.name().into(),
        sha256,
        bytes,
        tensors,
        checkpoint: cp.name.clone(),
        time,
    })))?;
    log.write(&Event::Checkpoint(CheckpointInfo {
        epoch: 1,
        batch: 1,
        name: cp.name.clone(),
    }))?;
    log.write(&Event::Finished(FinishInfo {
        reason: FinishReason::Completed,
        epoch: 1,
        batch: 1,
        cause: None,
    }))?;
    Ok(cp.name)
}
