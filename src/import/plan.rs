//! Match a file's layers to the network's conv and dense layers, by order and shape, and
//! convert each to convscope's layout; the table `--dry-run` prints and a refusal shows.

use std::fmt::Write as _;

use anyhow::Result;
use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};

use super::{Head, Layout, Source, SourceLayer};
use crate::config::{Config, LayerSpec};
use crate::model::Net;

/// One line of the table: a tensor of the file, where it goes and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub source: String,
    pub shape: String,
    pub target: String,
    pub conversion: String,
    /// What is wrong (`None`: it fits).
    pub problem: Option<String>,
}

/// Converted weights of one layer in convscope's layout.
#[derive(Debug, Clone)]
pub struct Weights {
    /// Conv `[out, in, k, k]`, dense `[in, out]`, flat.
    pub weight: Vec<f32>,
    pub shape: Vec<usize>,
    pub bias: Vec<f32>,
}

/// The outcome of matching.
#[derive(Debug, Clone)]
pub struct Plan {
    pub rows: Vec<Row>,
    pub convs: Vec<Weights>,
    pub denses: Vec<Weights>,
}

impl Plan {
    /// The first problem, when there is one.
    #[must_use]
    pub fn first_problem(&self) -> Option<&Row> {
        self.rows.iter().find(|r| r.problem.is_some())
    }

    /// The table, aligned, one tensor a line.
    #[must_use]
    pub fn table(&self) -> String {
        let head = ["source tensor", "shape", "target", "conversion", "status"];
        let cells: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.source.clone(),
                    r.shape.clone(),
                    r.target.clone(),
                    r.conversion.clone(),
                    r.problem.clone().unwrap_or_else(|| "ok".into()),
                ]
            })
            .collect();
        let mut widths = head.map(|h| h.chars().count());
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            let mut l = String::new();
            for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
                if i + 1 == cells.len() {
                    l.push_str(c);
                } else {
                    let _ = write!(l, "{c}{}  ", " ".repeat(w - c.chars().count()));
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&mut out, &head.map(String::from));
        for row in &cells {
            line(&mut out, row);
        }
        out
    }
}

fn dims(shape: &[usize]) -> String {
    format!(
        "({})",
        shape
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A conv or dense layer of the network, as the file should have it.
struct Target {
    /// Index in `[model].layers`.
    layer: usize,
    conv: bool,
    /// convscope's shape: conv `[out, in, k, k]`, dense `[in, out]`.
    shape: Vec<usize>,
    /// `(C, H, W)` of the maps flattened into this dense layer, if it is the first after
    /// `Flatten` (Keras flattens `(H, W, C)`: its rows are reordered).
    flattened: Option<[usize; 3]>,
    last: bool,
}

fn targets(cfg: &Config, classes: usize) -> Result<Vec<Target>> {
    let shapes = cfg.layer_shapes(classes)?;
    let mut prev = cfg.input_shape().to_vec();
    let mut before_flatten: Option<Vec<usize>> = None;
    let mut flatten_pending = false;
    let mut out = Vec::new();
    let n = cfg.model.layers.len();
    for (i, (layer, shape)) in cfg.model.layers.iter().zip(shapes).enumerate() {
        match layer {
            LayerSpec::Conv {
                filters, kernel, ..
            } => out.push(Target {
                layer: i,
                conv: true,
                shape: vec![*filters, prev[0], *kernel, *kernel],
                flattened: None,
                last: false,
            }),
            LayerSpec::Flatten => {
                flatten_pending = true;
                before_flatten = Some(prev.clone());
            }
            LayerSpec::Dense { .. } => {
                let flattened = if flatten_pending {
                    flatten_pending = false;
                    before_flatten
                        .as_deref()
                        .and_then(|s| <[usize; 3]>::try_from(s).ok())
                } else {
                    None
                };
                out.push(Target {
                    layer: i,
                    conv: false,
                    shape: vec![prev[0], shape[0]],
                    flattened,
                    last: i + 1 == n,
                });
            }
            LayerSpec::Maxpool { .. } | LayerSpec::Dropout { .. } => {}
        }
        prev = shape;
    }
    Ok(out)
}

/// Match `source`'s layers to `cfg`'s network for `classes` classes and convert them.
pub fn plan(source: &Source, cfg: &Config, classes: usize) -> Result<Plan> {
    let targets = targets(cfg, classes)?;
    let mut rows = Vec::new();
    let mut convs = Vec::new();
    let mut denses = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let what = |part: &str| {
            format!(
                "layer {} {} {part} {}",
                t.layer,
                if t.conv { "conv" } else { "dense" },
                dims(&if part == "bias" {
                    vec![if t.conv { t.shape[0] } else { t.shape[1] }]
                } else {
                    t.shape.clone()
                })
            )
        };
        let Some(src) = source.layers.get(i) else {
            rows.push(Row {
                source: "-".into(),
                shape: "-".into(),
                target: what("weight"),
                conversion: "-".into(),
                problem: Some("missing: the file has no tensor for it".into()),
            });
            continue;
        };
        match convert(source, src, t) {
            Ok((w, mut r)) => {
                rows.append(&mut r);
                if t.conv {
                    convs.push(w);
                } else {
                    denses.push(w);
                }
            }
            Err(problem) => {
                rows.push(Row {
                    source: src.kernel.name.clone(),
                    shape: dims(&src.kernel.shape),
                    target: what("weight"),
                    conversion: "-".into(),
                    problem: Some(problem),
                });
                if let Some(b) = &src.bias {
                    rows.push(Row {
                        source: b.name.clone(),
                        shape: dims(&b.shape),
                        target: what("bias"),
                        conversion: "-".into(),
                        problem: Some("not used (its kernel does not fit)".into()),
                    });
                }
            }
        }
    }
    for src in source.layers.iter().skip(targets.len()) {
        for t in std::iter::once(&src.kernel).chain(&src.bias) {
            rows.push(Row {
                source: t.name.clone(),
                shape: dims(&t.shape),
                target: "-".into(),
                conversion: "-".into(),
                problem: Some("extra: no layer of the network takes it".into()),
            });
        }
    }
    for (name, shape, why) in &source.unsupported {
        rows.push(Row {
            source: name.clone(),
            shape: dims(shape),
            target: "-".into(),
            conversion: "-".into(),
            problem: Some(format!("unsupported: {why}")),
        });
    }
    Ok(Plan {
        rows,
        convs,
        denses,
    })
}

/// The file's shape for a target: `(kh, kw, in, out)` / `(in, out)` for Keras, `(out, in,
/// kh, kw)` / `(out, in)` for PyTorch.
fn source_shape(layout: Layout, t: &Target, out_units: usize) -> Vec<usize> {
    match (layout, t.conv) {
        (Layout::Keras, true) => vec![t.shape[2], t.shape[3], t.shape[1], t.shape[0]],
        (Layout::Torch, true) => t.shape.clone(),
        (Layout::Keras, false) => vec![t.shape[0], out_units],
        (Layout::Torch, false) => vec![out_units, t.shape[0]],
    }
}

/// Convert one layer; the rows say how, the error what does not fit.
#[expect(
    clippy::too_many_lines,
    reason = "each layer kind's conversion and its table rows side by side, so the dry-run table says what the code does"
)]
fn convert(source: &Source, src: &SourceLayer, t: &Target) -> Result<(Weights, Vec<Row>), String> {
    let layout = source.layout;
    let k = &src.kernel;
    // Two classes: convscope has one logit; a two-unit softmax becomes the difference.
    let units_here = if t.conv { t.shape[0] } else { t.shape[1] };
    let two_unit = t.last && units_here == 1 && file_units(layout, k) == Some(2);
    if two_unit && source.head == Head::Sigmoid {
        return Err(
            "two sigmoid outputs (multi-label): convscope's two-class output is one sigmoid or a softmax"
                .into(),
        );
    }
    let want = source_shape(layout, t, if two_unit { 2 } else { units_here });
    if k.shape != want {
        return Err(format!("shape mismatch: wants {}", dims(&want)));
    }
    let bias_len = want[if layout == Layout::Keras {
        want.len() - 1
    } else {
        0
    }];
    let bias = match &src.bias {
        Some(b) if b.shape != [bias_len] => {
            return Err(format!(
                "its bias `{}` has shape {}, wants ({bias_len})",
                b.name,
                dims(&b.shape)
            ));
        }
        Some(b) => b.data.clone(),
        None => vec![0.0; bias_len],
    };
    if k.data.len() != k.shape.iter().product::<usize>() {
        return Err("its values are not numbers convscope can read (not a float tensor)".into());
    }
    let (mut weight, mut how) = match (layout, t.conv) {
        (Layout::Keras, true) => (
            keras_conv(&k.data, &t.shape),
            "kernel (kh, kw, in, out) -> (out, in, kh, kw)".to_string(),
        ),
        (Layout::Torch, true) => (k.data.clone(), "as is".to_string()),
        (Layout::Keras, false) => match t.flattened {
            Some(chw) if chw[1] * chw[2] > 1 && chw[0] > 1 => (
                keras_flatten_rows(&k.data, chw, want[1]),
                format!(
                    "rows reordered from Keras's (H, W, C) = ({}, {}, {}) flattening to (C, H, W)",
                    chw[1], chw[2], chw[0]
                ),
            ),
            _ => (k.data.clone(), "as is".to_string()),
        },
        (Layout::Torch, false) => (
            transpose(&k.data, want[0], want[1]),
            "Linear weight (out, in) transposed to (in, out)".to_string(),
        ),
    };
    let mut bias = bias;
    if two_unit {
        let n_in = t.shape[0];
        weight = (0..n_in)
            .map(|r| weight[r * 2 + 1] - weight[r * 2])
            .collect();
        bias = vec![bias[1] - bias[0]];
        how.push_str("; 2-unit softmax -> 1 logit (unit 1 - unit 0)");
    } else if t.last {
        match (source.head, units_here) {
            (Head::Sigmoid, 1) | (Head::Softmax, 2..) => {
                how.push_str("; its activation is convscope's output probability");
            }
            (Head::Softmax, _) => {
                return Err(
                    "a softmax over one unit is always 1: the model cannot have been trained so"
                        .into(),
                );
            }
            (Head::Sigmoid, _) => {
                return Err(
                    "sigmoid outputs (multi-label): convscope applies a softmax to several outputs"
                        .into(),
                );
            }
            (Head::Linear | Head::Unknown, 1) => how.push_str("; logit (sigmoid applied)"),
            (Head::Linear | Head::Unknown, _) => how.push_str("; logits (softmax applied)"),
        }
    }
    let target = format!(
        "layer {} {}",
        t.layer,
        if t.conv { "conv" } else { "dense" }
    );
    let mut rows = vec![Row {
        source: k.name.clone(),
        shape: dims(&k.shape),
        target: format!("{target} weight {}", dims(&t.shape)),
        conversion: how,
        problem: None,
    }];
    rows.push(Row {
        source: src
            .bias
            .as_ref()
            .map_or_else(|| "(no bias)".into(), |b| b.name.clone()),
        shape: src.bias.as_ref().map_or("-".into(), |b| dims(&b.shape)),
        target: format!("{target} bias ({})", bias.len()),
        conversion: if src.bias.is_none() {
            "zeros".into()
        } else if two_unit {
            "unit 1 - unit 0".into()
        } else {
            "as is".into()
        },
        problem: None,
    });
    Ok((
        Weights {
            weight,
            shape: t.shape.clone(),
            bias,
        },
        rows,
    ))
}

/// Outputs of a dense kernel in the file's layout.
fn file_units(layout: Layout, k: &super::SourceTensor) -> Option<usize> {
    match (layout, k.shape.as_slice()) {
        (Layout::Keras, [_, out]) | (Layout::Torch, [out, _]) => Some(*out),
        _ => None,
    }
}

/// `(kh, kw, in, out)` to `(out, in, kh, kw)`; `shape` is the result's.
#[must_use]
pub fn keras_conv(src: &[f32], shape: &[usize]) -> Vec<f32> {
    let [o, i, kh, kw] = [shape[0], shape[1], shape[2], shape[3]];
    let mut out = vec![0.0; src.len()];
    for y in 0..kh {
        for x in 0..kw {
            for c in 0..i {
                for f in 0..o {
                    out[((f * i + c) * kh + y) * kw + x] = src[((y * kw + x) * i + c) * o + f];
                }
            }
        }
    }
    out
}

/// `(out, in, kh, kw)` to Keras's `(kh, kw, in, out)`.
#[must_use]
pub fn to_keras_conv(src: &[f32], shape: &[usize]) -> Vec<f32> {
    let [o, i, kh, kw] = [shape[0], shape[1], shape[2], shape[3]];
    let mut out = vec![0.0; src.len()];
    for y in 0..kh {
        for x in 0..kw {
            for c in 0..i {
                for f in 0..o {
                    out[((y * kw + x) * i + c) * o + f] = src[((f * i + c) * kh + y) * kw + x];
                }
            }
        }
    }
    out
}

/// Rows of a dense kernel `[in, out]` from Keras's `(H, W, C)` flattening to `(C, H, W)`.
#[must_use]
pub fn keras_flatten_rows(src: &[f32], chw: [usize; 3], out: usize) -> Vec<f32> {
    move_flatten_rows(src, chw, out, |hwc, chw| (hwc, chw))
}

/// Rows of a dense kernel `[in, out]` from `(C, H, W)` back to Keras's `(H, W, C)`.
#[must_use]
pub fn to_keras_flatten_rows(src: &[f32], chw: [usize; 3], out: usize) -> Vec<f32> {
    move_flatten_rows(src, chw, out, |hwc, chw| (chw, hwc))
}

/// Rows of `[in, out]` moved between the two flattenings: `from_to(hwc row, chw row)` says
/// which of the two a row comes from and which it goes to.
fn move_flatten_rows(
    src: &[f32],
    [c, h, w]: [usize; 3],
    out: usize,
    from_to: impl Fn(usize, usize) -> (usize, usize),
) -> Vec<f32> {
    let mut dst = vec![0.0; src.len()];
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let (from, to) = from_to((y * w + x) * c + ch, (ch * h + y) * w + x);
                dst[to * out..(to + 1) * out].copy_from_slice(&src[from * out..(from + 1) * out]);
            }
        }
    }
    dst
}

/// A `[rows, cols]` matrix transposed.
#[must_use]
pub fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; src.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = src[r * cols + c];
        }
    }
    out
}

/// The `(C, H, W)` shape flattened into the first dense layer after `Flatten`, by dense
/// layer index: what the Keras reordering needs.
pub fn flattened_shapes(cfg: &Config, classes: usize) -> Result<Vec<Option<[usize; 3]>>> {
    Ok(targets(cfg, classes)?
        .into_iter()
        .filter(|t| !t.conv)
        .map(|t| t.flattened)
        .collect())
}

/// The network of `cfg` with the planned weights in it.
pub fn build(cfg: &Config, classes: usize, plan: &Plan, device: &Device) -> Result<Net> {
    let mut net = Net::new(cfg, classes, cfg.train.seed, device)?;
    for (p, w) in net.convs.iter_mut().zip(&plan.convs) {
        let s = [w.shape[0], w.shape[1], w.shape[2], w.shape[3]];
        p.weight = Param::from_tensor(Tensor::<4>::from_data(
            TensorData::new(w.weight.clone(), s),
            device,
        ));
        p.bias = Param::from_tensor(Tensor::<1>::from_data(
            TensorData::new(w.bias.clone(), [w.bias.len()]),
            device,
        ));
    }
    for (p, w) in net.denses.iter_mut().zip(&plan.denses) {
        p.weight = Param::from_tensor(Tensor::<2>::from_data(
            TensorData::new(w.weight.clone(), [w.shape[0], w.shape[1]]),
            device,
        ));
        p.bias = Param::from_tensor(Tensor::<1>::from_data(
            TensorData::new(w.bias.clone(), [w.bias.len()]),
            device,
        ));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_conversions_invert() {
        let shape = [4, 3, 2, 2];
        let src: Vec<f32> = (0..48).map(|v| v as f32).collect();
        assert_eq!(to_keras_conv(&keras_conv(&src, &shape), &shape), src);
        // Keras kernel element (y=1, x=0, in=2, out=3) lands at [3, 2, 1, 0].
        let k = keras_conv(&src, &shape);
        let keras_at = (2 * 3 + 2) * 4 + 3; // (y * kw + x) = 2
        let ours_at = ((3 * 3 + 2) * 2 + 1) * 2; // x = 0
        assert_eq!(k[ours_at].to_bits(), src[keras_at].to_bits());
        let rows: Vec<f32> = (0..2 * 3 * 4 * 5).map(|v| v as f32).collect();
        let chw = [2, 3, 4];
        assert_eq!(
            to_keras_flatten_rows(&keras_flatten_rows(&rows, chw, 5), chw, 5),
            rows
        );
        // convscope row (c=1, h=0, w=2) = Keras row (h=0, w=2, c=1) = 2*2+1 = 5.
        let r = keras_flatten_rows(&rows, chw, 5);
        let to = (3 * 4) + 2;
        assert_eq!(r[to * 5..to * 5 + 5], rows[25..30]);
        assert_eq!(
            transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3),
            [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
        );
    }
}
