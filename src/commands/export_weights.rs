//! `convscope export-weights RUN --out FILE`: a run's weights for PyTorch or Keras.

use std::io::Write as _;

use anyhow::{Result, bail};

use crate::cli::{ExportWeightsArgs, WeightsFormat};
use crate::import::write;
use crate::infer::restore;
use crate::run::RunDir;

/// Run the command.
pub fn run(args: &ExportWeightsArgs) -> Result<i32> {
    let ext = |e: &str| crate::import::has_ext(&args.out, e);
    let format = match args.format {
        Some(f) => f,
        None if ext(".safetensors") => WeightsFormat::Safetensors,
        None if ext(".keras") || ext(".h5") => WeightsFormat::Keras,
        None => bail!(
            "cannot tell the format from the name {}: give --format safetensors or --format keras (or name it .safetensors, .keras or .weights.h5)",
            args.out.display()
        ),
    };
    if format == WeightsFormat::Keras && !(ext(".keras") || ext(".h5")) {
        bail!(
            "{}: a Keras file is named .keras (the whole model) or .weights.h5 (the weights); Keras refuses other names",
            args.out.display()
        );
    }
    let run = RunDir::open(&args.run)?;
    let restored = restore::load(&run, args.epoch)?;
    if let Some(note) = &restored.note {
        let _ = writeln!(std::io::stderr(), "convscope: {note}");
    }
    let how = match format {
        WeightsFormat::Safetensors => {
            write::safetensors(&restored.cfg, &restored.classes, &restored.net, &args.out)?;
            "PyTorch: keys layers.{i}.weight / .bias (i = the index in [model].layers), Linear weights (out, in); the config and classes are in the file's metadata"
        }
        WeightsFormat::Keras if ext(".h5") => {
            write::keras(&restored.cfg, &restored.classes, &restored.net, &args.out)?;
            "Keras 3: model.load_weights(...) into the same Sequential network"
        }
        WeightsFormat::Keras => {
            write::keras(&restored.cfg, &restored.classes, &restored.net, &args.out)?;
            "Keras 3: keras.models.load_model(...); predict() gives the probabilities convscope does"
        }
    };
    let _ = writeln!(
        std::io::stderr(),
        "convscope: wrote {} from checkpoint {} of {}\n  {how}",
        args.out.display(),
        restored.checkpoint.name,
        run.path.display()
    );
    Ok(0)
}
