//! `convscope explain RUN --maximize LAYER [--filters 0-15] [--tier quick|regularised]
//! [--seed N] [--epoch N] --out DIR [--json]`: for each filter of a conv layer, the image that
//! drives it hardest ([`crate::infer::maximize`]), one PNG per filter and a sheet of them all.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::cli::{ExplainArgs, TierArg};
use crate::infer::maximize::{self as engine, Outcome};
use crate::infer::restore;
use crate::model::maximize::{Settings, Tier};
use crate::run::RunDir;
use crate::viz::{Raster, raster, sheets};

/// What to maximise and where to write it: the parsed command line.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub run: &'a Path,
    /// The conv layer's Keras name, e.g. `conv2d_2`.
    pub layer: &'a str,
    /// `0-15`, `0,3,8-11`; `None`: every filter of the layer.
    pub filters: Option<&'a str>,
    pub tier: Tier,
    pub seed: u64,
    pub epoch: Option<usize>,
    pub out: &'a Path,
    pub json: bool,
}

/// `convscope explain` as this build has it: activation maximisation.
pub fn explain(args: &ExplainArgs) -> Result<i32> {
    let Some(layer) = args.maximize.as_deref() else {
        bail!(
            "say what to explain: --maximize LAYER (e.g. `convscope explain {} --maximize conv2d_2 --out DIR`)",
            crate::run::shell_quote(&args.run)
        );
    };
    let Some(out) = args.out.as_deref() else {
        bail!("--maximize writes pictures: give the folder with --out DIR");
    };
    run(&Request {
        run: &args.run,
        layer,
        filters: args.filters.as_deref(),
        tier: match args.tier {
            TierArg::Quick => Tier::Quick,
            TierArg::Regularised => Tier::Regularised,
        },
        seed: args.seed,
        epoch: args.epoch,
        out,
        json: args.json,
    })
}

/// Parse a filter list: `0-15`, `3`, `0,3,8-11` (duplicates dropped, order kept).
pub fn parse_filters(text: &str) -> Result<Vec<usize>, String> {
    let mut out: Vec<usize> = Vec::new();
    let number = |s: &str| {
        s.trim()
            .parse::<usize>()
            .map_err(|_| format!("{s:?} in --filters {text:?} is not a filter number"))
    };
    for part in text.split(',') {
        let (lo, hi) = if let Some((a, b)) = part.split_once('-') {
            (number(a)?, number(b)?)
        } else {
            let n = number(part)?;
            (n, n)
        };
        if lo > hi {
            return Err(format!(
                "--filters {text:?}: the range {part:?} runs backwards; write it low-high"
            ));
        }
        for f in lo..=hi {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// One filter in `--json`.
#[derive(Debug, Serialize)]
struct FilterJson {
    filter: usize,
    /// The filter's mean activation on the random start image.
    seed_activation: f32,
    /// The same on the optimised image (before the quick tier's deprocessing).
    activation: f32,
    /// The same on the picture written.
    shown_activation: f32,
    cached: bool,
    file: PathBuf,
}

/// The whole of `--json`.
#[derive(Debug, Serialize)]
struct ReportJson<'a> {
    run: &'a Path,
    checkpoint: &'a str,
    epoch: usize,
    layer: &'a str,
    tier: &'static str,
    seed: u64,
    steps: usize,
    /// Every image came from the run's cache.
    cached: bool,
    cache: &'a Path,
    sheet: PathBuf,
    filters: Vec<FilterJson>,
}

/// Run the maximisation and write its pictures.
pub fn run(req: &Request<'_>) -> Result<i32> {
    let filters = req
        .filters
        .map(parse_filters)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let run = RunDir::open(req.run)?;
    let restored = restore::load(&run, req.epoch)?;
    let mut stderr = std::io::stderr();
    if let Some(note) = &restored.note {
        let _ = writeln!(stderr, "convscope: {note}");
    }
    let settings = Settings::new(req.tier, req.seed);
    let live = stderr.is_terminal();
    let mut progress = |done: usize, steps: usize| {
        if live {
            let _ = write!(
                std::io::stderr(),
                "\rconvscope: {} step {done}/{steps}",
                req.tier.name()
            );
        }
    };
    let never = AtomicBool::new(false);
    let outcome = engine::explain(
        &run,
        &restored,
        req.layer,
        filters.as_deref(),
        &settings,
        &never,
        &mut progress,
    )?;
    if live {
        let _ = writeln!(stderr);
    }
    if let Some(note) = &outcome.cache_note {
        let _ = writeln!(stderr, "convscope: the images are not cached: {note}");
    }
    let (files, sheet) = write_pictures(&outcome, req)?;
    let all_cached = outcome.images.iter().all(|i| i.cached);
    let mut stdout = std::io::stdout();
    if req.json {
        let report = ReportJson {
            run: &run.path,
            checkpoint: &restored.checkpoint.name,
            epoch: restored.checkpoint.state.epoch,
            layer: &outcome.layer,
            tier: req.tier.name(),
            seed: req.seed,
            steps: settings.steps,
            cached: all_cached,
            cache: &outcome.cache,
            sheet,
            filters: outcome
                .images
                .iter()
                .zip(files)
                .map(|(i, file)| FilterJson {
                    filter: i.filter,
                    seed_activation: i.seed_activation,
                    activation: i.activation,
                    shown_activation: i.shown_activation,
                    cached: i.cached,
                    file,
                })
                .collect(),
        };
        writeln!(stdout, "{}", serde_json::to_string_pretty(&report)?).context("stdout")?;
    } else {
        writeln!(
            stdout,
            "{:>6}  {:>10}  {:>10}  {:>10}  file",
            "filter", "start", "result", "shown"
        )
        .context("stdout")?;
        for (i, file) in outcome.images.iter().zip(&files) {
            writeln!(
                stdout,
                "{:>6}  {:>10.4}  {:>10.4}  {:>10.4}  {}",
                i.filter,
                i.seed_activation,
                i.activation,
                i.shown_activation,
                file.display()
            )
            .context("stdout")?;
        }
        writeln!(stdout, "sheet: {}", sheet.display()).context("stdout")?;
        let _ = writeln!(
            stderr,
            "convscope: {} filters of {} ({}, seed {}) from checkpoint {}{}; mean activation of each filter on its random start, on the optimised image and on the picture written (deprocessed to mean 0.5, std 0.15 for the quick tier)",
            outcome.images.len(),
            outcome.layer,
            req.tier.name(),
            req.seed,
            restored.checkpoint.name,
            if all_cached { ", from the cache" } else { "" }
        );
    }
    Ok(0)
}

/// Write one PNG per filter and the sheet; returns their paths.
fn write_pictures(outcome: &Outcome, req: &Request<'_>) -> Result<(Vec<PathBuf>, PathBuf)> {
    std::fs::create_dir_all(req.out).with_context(|| {
        format!(
            "cannot create the output folder {}; choose a writable --out folder",
            req.out.display()
        )
    })?;
    let stem = format!("{}-{}", outcome.layer, req.tier.name());
    let save = |picture: &Raster, name: String| -> Result<PathBuf> {
        let path = req.out.join(name);
        picture.to_rgb_image().save(&path).with_context(|| {
            format!(
                "cannot write {}; check that the --out folder is writable",
                path.display()
            )
        })?;
        Ok(path)
    };
    let mut files = Vec::with_capacity(outcome.images.len());
    for image in &outcome.images {
        files.push(save(
            &image.picture,
            format!("{stem}-filter-{:03}.png", image.filter),
        )?);
    }
    let sheet = save(&sheet(outcome), format!("{stem}-sheet.png"))?;
    Ok((files, sheet))
}

/// Smallest side of a tile on the sheet: tiny test images are enlarged to it.
const SHEET_MIN_SIDE: usize = 64;

/// Every filter's image on one grid, in filter order.
fn sheet(outcome: &Outcome) -> Raster {
    let tiles: Vec<Raster> = outcome
        .images
        .iter()
        .map(|i| {
            let side = i.picture.width().min(i.picture.height()).max(1);
            i.picture.upscale(SHEET_MIN_SIDE.div_ceil(side).max(1))
        })
        .collect();
    let tile_w = tiles.first().map_or(1, Raster::width);
    raster::tile(
        &tiles,
        sheets::columns(tiles.len(), tile_w),
        sheets::GAP,
        crate::viz::pictures::BACKGROUND,
        |_| None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_lists_parse_ranges_and_refuse_nonsense() {
        assert_eq!(parse_filters("0-3"), Ok(vec![0, 1, 2, 3]));
        assert_eq!(parse_filters("5"), Ok(vec![5]));
        assert_eq!(parse_filters("0,3,8-10,3"), Ok(vec![0, 3, 8, 9, 10]));
        assert!(parse_filters("3-1").is_err());
        assert!(parse_filters("a").is_err());
        assert!(parse_filters("").is_err());
        assert!(parse_filters("1-").is_err());
    }
}
