//! `convscope predict RUN IMG...`: class and probability per image.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use burn::module::Module as _;
use burn::tensor::{Tensor, TensorData};
use serde::Serialize;

use crate::cli::PredictArgs;
use crate::infer::{self, restore};
use crate::run::RunDir;

/// One image's prediction.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub image: PathBuf,
    pub class: String,
    pub index: usize,
    pub probability: f32,
    /// Probability of every class, in class-index order.
    pub probabilities: Vec<f32>,
}

/// Run the command.
pub fn run(args: &PredictArgs) -> Result<i32> {
    let run = RunDir::open(&args.run)?;
    let restored = restore::load(&run, args.epoch)?;
    if let Some(note) = &restored.note {
        let _ = writeln!(std::io::stderr(), "convscope: {note}");
    }
    let eval = restored.net.valid();
    let shape = restored.cfg.input_shape();
    let device = burn::tensor::Device::flex();
    let mut predictions = Vec::new();
    let mut failures = 0;
    for image in &args.images {
        let pixels = match crate::data::load_image(image, &restored.cfg) {
            Ok(p) => p,
            Err(e) => {
                failures += 1;
                // The error names the image already.
                let _ = writeln!(std::io::stderr(), "convscope: {e}");
                continue;
            }
        };
        let x = Tensor::<4>::from_data(
            TensorData::new(pixels, [1, shape[0], shape[1], shape[2]]),
            &device,
        );
        for c in infer::classify(eval.forward(x, false, false).logits)? {
            predictions.push(Prediction {
                image: image.clone(),
                class: restored.classes.get(c.class).cloned().unwrap_or_default(),
                index: c.class,
                probability: c.probability,
                probabilities: c.probabilities,
            });
        }
    }
    let mut stdout = std::io::stdout();
    if args.show && show_pictures(args, &restored, &predictions)? {
        let _ = writeln!(
            std::io::stderr(),
            "convscope: checkpoint {} of {}",
            restored.checkpoint.name,
            run.path.display()
        );
        return Ok(i32::from(failures > 0));
    }
    if args.json {
        let _ = writeln!(stdout, "{}", serde_json::to_string_pretty(&predictions)?);
    } else if !predictions.is_empty() {
        // Columns as wide as their longest entry (in characters: paths and class names need
        // not be ASCII).
        let images: Vec<String> = predictions
            .iter()
            .map(|p| p.image.display().to_string())
            .collect();
        let chars = |s: &str| s.chars().count();
        let iw = images
            .iter()
            .map(|s| chars(s))
            .chain([chars("image")])
            .max()
            .unwrap_or(0);
        let cw = predictions
            .iter()
            .map(|p| chars(&p.class))
            .chain([chars("class")])
            .max()
            .unwrap_or(0);
        let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(chars(s))));
        let _ = writeln!(
            stdout,
            "{}  {}  probability",
            pad("image", iw),
            pad("class", cw)
        );
        for (p, image) in predictions.iter().zip(&images) {
            let _ = writeln!(
                stdout,
                "{}  {}  {:.4}",
                pad(image, iw),
                pad(&p.class, cw),
                p.probability
            );
        }
        let _ = writeln!(
            std::io::stderr(),
            "convscope: checkpoint {} of {}",
            restored.checkpoint.name,
            run.path.display()
        );
    }
    Ok(i32::from(failures > 0))
}

/// `--show`: each image printed in the terminal with its class and probability; returns whether
/// it was (not when stdout is not a terminal: then the table is printed instead, with a note).
fn show_pictures(
    args: &PredictArgs,
    restored: &restore::Restored,
    predictions: &[Prediction],
) -> Result<bool> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        let _ = writeln!(
            std::io::stderr(),
            "convscope predict --show: {}; the table follows instead",
            super::show::NOT_A_TERMINAL_MESSAGE
        );
        return Ok(false);
    }
    let setting = args.graphics.map_or(restored.cfg.ui.graphics, Into::into);
    let printer = super::show::Printer::new(setting);
    let _ = writeln!(
        std::io::stderr(),
        "convscope: pictures as {}",
        printer.describe()
    );
    let rows: Vec<(PathBuf, String, f32)> = predictions
        .iter()
        .map(|p| (p.image.clone(), p.class.clone(), p.probability))
        .collect();
    super::show::show_predictions(&printer, &rows, &mut std::io::stdout().lock())?;
    Ok(true)
}
