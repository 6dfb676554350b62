//! `convscope report RUN [--epoch N] [--json]`: what the validation record says about one
//! epoch: accuracy, confusion matrix, per-class metrics, the most confidently wrong and the
//! most ambiguous images, images flipped since the previous epoch, probable label noise.

use std::collections::HashMap;
use std::io::Write as _;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::analysis::{self, ClassMetrics};
use crate::cli::ReportArgs;
use crate::events::health::EpochHealth;
use crate::run::RunDir;
use crate::run::validation::{self, EpochRecord, ImageList, Row};

/// One image in a list of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ImageLine {
    pub path: String,
    pub label: String,
    pub predicted: String,
    pub loss: f32,
    /// Probability of the predicted class.
    pub probability: f32,
}

/// Per-class metrics with the class name.
#[derive(Debug, Clone, Serialize)]
pub struct ClassLine {
    pub class: String,
    #[serde(flatten)]
    pub metrics: ClassMetrics,
}

/// Images flipped since the previous epoch (paths).
#[derive(Debug, Clone, Serialize)]
pub struct FlippedLines {
    pub previous_epoch: usize,
    pub right_to_wrong: Vec<String>,
    pub wrong_to_right: Vec<String>,
}

/// A probably mislabelled image.
#[derive(Debug, Clone, Serialize)]
pub struct NoiseLine {
    pub path: String,
    pub label: String,
    pub predicted: String,
    pub epochs: usize,
}

/// The whole report (what `--json` prints).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub epoch: usize,
    pub classes: Vec<String>,
    pub images: usize,
    pub accuracy: f64,
    /// Actual (row) x predicted (column) counts.
    pub confusion: Vec<Vec<u64>>,
    /// The same as percentages of each row.
    pub confusion_row_pct: Vec<Vec<f64>>,
    pub per_class: Vec<ClassLine>,
    pub most_wrong: Vec<ImageLine>,
    pub ambiguous: Vec<ImageLine>,
    pub flipped: Option<FlippedLines>,
    pub label_noise: Vec<NoiseLine>,
    /// Unit health of the epoch (`RUN/health/`); `None` when it was not recorded.
    pub unit_health: Option<HealthLines>,
}

/// Unit health of one layer in the report.
#[derive(Debug, Clone, Serialize)]
pub struct HealthLayerLine {
    pub layer: String,
    pub units: usize,
    pub dead_pct: f64,
    pub dormant_pct: f64,
    pub always_on_pct: f64,
    pub on_rate_histogram: [usize; crate::events::health::HISTOGRAM_BINS],
    /// Units never > 0 (0-based).
    pub dead_units: Vec<usize>,
    /// Of those, the ones the weights alone keep off (see `weight_rule`).
    pub dead_by_weights: Vec<usize>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub weight_rule: String,
}

/// The epoch's unit health in the report.
#[derive(Debug, Clone, Serialize)]
pub struct HealthLines {
    pub images: usize,
    pub output_saturated_pct: f64,
    pub layers: Vec<HealthLayerLine>,
}

impl HealthLines {
    fn of(h: &EpochHealth) -> Self {
        Self {
            images: h.images,
            output_saturated_pct: h.output_saturated_pct,
            layers: h
                .layers
                .iter()
                .map(|l| HealthLayerLine {
                    layer: l.name.clone(),
                    units: l.units,
                    dead_pct: l.dead_pct,
                    dormant_pct: l.dormant_pct,
                    always_on_pct: l.always_on_pct,
                    on_rate_histogram: l.on_rate_histogram,
                    dead_units: l.dead_units(),
                    dead_by_weights: l
                        .channels
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| c.dead_by_weights)
                        .map(|(i, _)| i)
                        .collect(),
                    weight_rule: l.weight_rule.clone(),
                })
                .collect(),
        }
    }
}

/// Rows of `record` re-indexed onto `list` by path (an older epoch may index another list).
fn onto(record: &EpochRecord, own: &ImageList, list: &ImageList) -> Vec<Row> {
    if own == list {
        return record.rows.clone();
    }
    let at: HashMap<&str, u32> = list
        .images
        .iter()
        .enumerate()
        .map(|(i, im)| (im.path.as_str(), u32::try_from(i).unwrap_or(u32::MAX)))
        .collect();
    record
        .rows
        .iter()
        .filter_map(|r| {
            let path = own.images.get(r.index as usize)?.path.as_str();
            Some(Row {
                index: *at.get(path)?,
                ..r.clone()
            })
        })
        .collect()
}

/// Build the report of `epoch` (default: the newest recorded).
#[expect(
    clippy::too_many_lines,
    reason = "one pass over the record: each section of the report is a few lines, in the order printed"
)]
pub fn build(run: &RunDir, epoch: Option<usize>, top: usize) -> Result<Report> {
    let recorded = validation::epochs(&run.path);
    let Some(&newest) = recorded.last() else {
        bail!(
            "{} has no validation record yet (it is written at the end of each epoch, by convscope versions that record it); train at least one epoch",
            validation::dir(&run.path).display()
        );
    };
    let epoch = epoch.unwrap_or(newest);
    if !recorded.contains(&epoch) {
        bail!(
            "epoch {epoch} has no validation record in {}; recorded epochs: {}",
            run.path.display(),
            recorded
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let record = validation::read_epoch(&run.path, epoch)?;
    let list = validation::read_list(&run.path, record.list_id)?;
    let classes = list.classes.clone();
    let class = |c: u16| {
        classes
            .get(usize::from(c))
            .cloned()
            .unwrap_or_else(|| c.to_string())
    };
    let path = |i: u32| {
        list.images
            .get(i as usize)
            .map_or_else(|| format!("#{i}"), |im| im.path.clone())
    };
    let line = |r: &Row| ImageLine {
        path: path(r.index),
        label: class(r.label),
        predicted: class(r.predicted),
        loss: r.loss,
        probability: r.confidence(),
    };
    // Earlier epochs, newest last, re-indexed onto this epoch's list; a consecutive run only
    // (a missing or unreadable epoch ends the history there).
    let mut history: Vec<Vec<Row>> = Vec::new();
    let mut lists: HashMap<u64, ImageList> = HashMap::new();
    lists.insert(record.list_id, list.clone());
    for e in (1..epoch).rev() {
        let Ok(older) = validation::read_epoch(&run.path, e) else {
            break;
        };
        let own = match lists.entry(older.list_id) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let Ok(l) = validation::read_list(&run.path, older.list_id) else {
                    break;
                };
                v.insert(l)
            }
        };
        history.push(onto(&older, own, &list));
    }
    history.reverse();
    let confusion = analysis::confusion(&record.rows, classes.len());
    let flipped = history.last().map(|prev| {
        let f = analysis::flipped(prev, &record.rows);
        FlippedLines {
            previous_epoch: epoch - 1,
            right_to_wrong: f.right_to_wrong.into_iter().map(path).collect(),
            wrong_to_right: f.wrong_to_right.into_iter().map(path).collect(),
        }
    });
    let mut seq: Vec<&[Row]> = history.iter().map(Vec::as_slice).collect();
    seq.push(&record.rows);
    let by_index: HashMap<u32, &Row> = record.rows.iter().map(|r| (r.index, r)).collect();
    let label_noise = analysis::label_noise(&seq)
        .into_iter()
        .filter_map(|n| {
            let r = by_index.get(&n.index)?;
            Some(NoiseLine {
                path: path(n.index),
                label: class(r.label),
                predicted: class(r.predicted),
                epochs: n.epochs,
            })
        })
        .collect();
    Ok(Report {
        epoch,
        images: record.rows.len(),
        accuracy: analysis::accuracy(&record.rows),
        confusion_row_pct: analysis::row_percentages(&confusion),
        per_class: analysis::metrics(&confusion)
            .into_iter()
            .zip(&classes)
            .map(|(metrics, c)| ClassLine {
                class: c.clone(),
                metrics,
            })
            .collect(),
        confusion,
        most_wrong: analysis::most_wrong(&record.rows, top)
            .into_iter()
            .map(line)
            .collect(),
        ambiguous: analysis::ambiguous(&record.rows, top)
            .into_iter()
            .map(line)
            .collect(),
        flipped,
        label_noise,
        classes,
        unit_health: crate::run::health::read(&run.path, epoch)
            .ok()
            .map(|h| HealthLines::of(&h)),
    })
}

/// Run the command.
pub fn run(args: &ReportArgs) -> Result<i32> {
    let run = RunDir::open(&args.run)?;
    let report = build(&run, args.epoch, args.top)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?).context("stdout")?;
    } else {
        write!(out, "{}", text(&report)).context("stdout")?;
    }
    Ok(0)
}

/// The human-readable report.
#[must_use]
pub fn text(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "epoch {}: {} validation images, accuracy {:.1} %",
        r.epoch,
        r.images,
        100.0 * r.accuracy
    );
    let w = r
        .classes
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let _ = writeln!(
        s,
        "\nconfusion matrix (rows: actual, columns: predicted; count and row %)"
    );
    let _ = write!(s, "{:w$}", "");
    for c in &r.classes {
        let _ = write!(s, "  {c:>14}");
    }
    s.push('\n');
    for (i, row) in r.confusion.iter().enumerate() {
        let _ = write!(s, "{:w$}", r.classes.get(i).map_or("", String::as_str));
        for (j, n) in row.iter().enumerate() {
            let pct = r.confusion_row_pct[i][j];
            let _ = write!(s, "  {:>14}", format!("{n} ({pct:.1}%)"));
        }
        s.push('\n');
    }
    let _ = writeln!(s, "\n{:w$}  precision  recall     F1  images", "class");
    for c in &r.per_class {
        let m = c.metrics;
        let _ = writeln!(
            s,
            "{:w$}  {:>9.3}  {:>6.3}  {:>5.3}  {:>6}",
            c.class, m.precision, m.recall, m.f1, m.support
        );
    }
    let list = |s: &mut String, title: &str, lines: &[ImageLine]| {
        let _ = writeln!(s, "\n{title}");
        if lines.is_empty() {
            let _ = writeln!(s, "  (none)");
        }
        for l in lines {
            let _ = writeln!(
                s,
                "  {:>7.3}  {} -> {} ({:.2})  {}",
                l.loss, l.label, l.predicted, l.probability, l.path
            );
        }
    };
    list(
        &mut s,
        "most confidently wrong (loss, label -> predicted (p), image)",
        &r.most_wrong,
    );
    list(&mut s, "most ambiguous", &r.ambiguous);
    match &r.flipped {
        None => {
            let _ = writeln!(s, "\nflipped: no record of the previous epoch");
        }
        Some(f) => {
            let _ = writeln!(
                s,
                "\nflipped since epoch {}: {} right -> wrong, {} wrong -> right",
                f.previous_epoch,
                f.right_to_wrong.len(),
                f.wrong_to_right.len()
            );
            for p in &f.right_to_wrong {
                let _ = writeln!(s, "  right -> wrong  {p}");
            }
            for p in &f.wrong_to_right {
                let _ = writeln!(s, "  wrong -> right  {p}");
            }
        }
    }
    let _ = writeln!(
        s,
        "\nprobable label noise (wrong with p >= {} for {}+ epochs in a row): {}",
        analysis::NOISE_PROBABILITY,
        analysis::NOISE_EPOCHS,
        r.label_noise.len()
    );
    for n in &r.label_noise {
        let _ = writeln!(
            s,
            "  {} epochs  {} -> {}  {}",
            n.epochs, n.label, n.predicted, n.path
        );
    }
    health_text(&mut s, r.unit_health.as_ref());
    s
}

/// The unit health section of the text report.
fn health_text(s: &mut String, health: Option<&HealthLines>) {
    use std::fmt::Write as _;
    let Some(h) = health else {
        let _ = writeln!(
            s,
            "\nunit health: not recorded for this epoch (written by convscope versions that gather it)"
        );
        return;
    };
    let _ = writeln!(
        s,
        "\nunit health over {} validation images (dead: never > 0; dormant: mean |a| <= {} x the layer's; always on: on > {} %)",
        h.images,
        crate::model::health::DORMANT_FRACTION,
        100.0 * crate::model::health::ALWAYS_ON_RATE
    );
    let w = h
        .layers
        .iter()
        .map(|l| l.layer.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let _ = writeln!(
        s,
        "{:w$}  units   dead  dormant  always on  on-rate histogram (tenths)",
        "layer"
    );
    for l in &h.layers {
        let hist: Vec<String> = l
            .on_rate_histogram
            .iter()
            .map(ToString::to_string)
            .collect();
        let _ = writeln!(
            s,
            "{:w$}  {:>5}  {:>4.1}%  {:>6.1}%  {:>8.1}%  {}",
            l.layer,
            l.units,
            l.dead_pct,
            l.dormant_pct,
            l.always_on_pct,
            hist.join(" ")
        );
        if !l.dead_units.is_empty() {
            let list = |v: &[usize]| {
                v.iter()
                    .map(|i| (i + 1).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                s,
                "{:w$}  dead units (1-based): {}",
                "",
                list(&l.dead_units)
            );
            if !l.dead_by_weights.is_empty() {
                let _ = writeln!(
                    s,
                    "{:w$}  dead by their weights alone ({}): {}",
                    "",
                    l.weight_rule,
                    list(&l.dead_by_weights)
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "output: {:.1} % of logits saturated (|z| > {})",
        h.output_saturated_pct,
        crate::model::health::SATURATED_LOGIT
    );
}
