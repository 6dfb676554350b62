//! `convscope export-weights`: a run's weights as `.safetensors` (PyTorch names and layout)
//! or as a Keras 3 `.keras` / `.weights.h5` file.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, anyhow};
use burn::tensor::Tensor;
use serde_json::{Value, json};

use super::plan::{flattened_shapes, to_keras_conv, to_keras_flatten_rows, transpose};
use super::torch::{META_CLASSES, META_CONFIG};
use crate::config::{Activation, ColorMode, Config, LayerSpec, Padding};
use crate::model::Net;

/// One exported layer: its index in `[model].layers` and its weights in convscope's layout.
struct Layer {
    index: usize,
    conv: bool,
    /// Conv `[out, in, k, k]`, dense `[in, out]`.
    shape: Vec<usize>,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

fn values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow!("cannot read the weights: {e:?}"))
}

fn layers(cfg: &Config, net: &Net) -> Result<Vec<Layer>> {
    let mut out = Vec::new();
    let (mut c, mut d) = (0, 0);
    for (index, spec) in cfg.model.layers.iter().enumerate() {
        match spec {
            LayerSpec::Conv { .. } => {
                let p = &net.convs[c];
                c += 1;
                let w = p.weight.val();
                out.push(Layer {
                    index,
                    conv: true,
                    shape: w.dims().to_vec(),
                    weight: values(w)?,
                    bias: values(p.bias.val())?,
                });
            }
            LayerSpec::Dense { .. } => {
                let p = &net.denses[d];
                d += 1;
                let w = p.weight.val();
                out.push(Layer {
                    index,
                    conv: false,
                    shape: w.dims().to_vec(),
                    weight: values(w)?,
                    bias: values(p.bias.val())?,
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Write `.safetensors`: `layers.{i}.weight` / `.bias` (i: the layer's index in
/// `[model].layers`), conv weights `(out, in, kh, kw)`, dense weights `(out, in)` as
/// PyTorch's `Linear`; the config and classes in the metadata.
pub fn safetensors(cfg: &Config, classes: &[String], net: &Net, out: &Path) -> Result<()> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for l in layers(cfg, net)? {
        let (shape, w) = if l.conv {
            (l.shape.clone(), l.weight)
        } else {
            (
                vec![l.shape[1], l.shape[0]],
                transpose(&l.weight, l.shape[0], l.shape[1]),
            )
        };
        tensors.push((format!("layers.{}.weight", l.index), shape, le_bytes(&w)));
        tensors.push((
            format!("layers.{}.bias", l.index),
            vec![l.bias.len()],
            le_bytes(&l.bias),
        ));
    }
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| anyhow!("tensor {name}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    meta.insert(META_CONFIG.to_string(), model_toml(cfg));
    meta.insert(META_CLASSES.to_string(), serde_json::to_string(classes)?);
    let bytes = safetensors::serialize(views, Some(meta))
        .map_err(|e| anyhow!("cannot encode the weights: {e}"))?;
    write_file(out, &bytes)
}

/// The parts of the config that describe the network (what an import needs back).
fn model_toml(cfg: &Config) -> String {
    let mut c = Config {
        model: cfg.model.clone(),
        ..Config::default()
    };
    c.data.image_size = cfg.data.image_size;
    c.data.color_mode = cfg.data.color_mode;
    c.data.rescale = cfg.data.rescale;
    c.to_toml()
}

/// Keras layer names as Keras gives them: `conv2d`, `conv2d_1`, `dense`, ...
fn keras_names(cfg: &Config) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    cfg.model
        .layers
        .iter()
        .map(|l| {
            let base = match l {
                LayerSpec::Conv { .. } => "conv2d",
                LayerSpec::Maxpool { .. } => "max_pooling2d",
                LayerSpec::Dropout { .. } => "dropout",
                LayerSpec::Flatten => "flatten",
                LayerSpec::Dense { .. } => "dense",
            };
            let n = seen.entry(base).or_insert(0);
            let name = if *n == 0 {
                base.to_string()
            } else {
                format!("{base}_{n}")
            };
            *n += 1;
            name
        })
        .collect()
}

/// The Keras 3 `config.json` of the network: a Sequential whose last Dense has the sigmoid
/// (one output) or softmax that convscope applies, so that `predict` gives probabilities.
fn keras_config(cfg: &Config) -> Value {
    let [h, w] = cfg.data.image_size;
    let ch = match cfg.data.color_mode {
        ColorMode::Rgb => 3,
        ColorMode::Grayscale => 1,
    };
    let names = keras_names(cfg);
    let n = cfg.model.layers.len();
    let act = |a: &Activation| match a {
        Activation::Relu => "relu",
        Activation::None => "linear",
    };
    let mut layers = vec![json!({
        "module": "keras.layers", "class_name": "InputLayer",
        "config": {"batch_shape": [null, h, w, ch], "dtype": "float32", "name": "input_layer"},
        "registered_name": null
    })];
    for (i, (l, name)) in cfg.model.layers.iter().zip(&names).enumerate() {
        let (class, config) = match l {
            LayerSpec::Conv {
                filters,
                kernel,
                padding,
                activation,
                stride,
            } => (
                "Conv2D",
                json!({"name": name, "filters": filters, "kernel_size": [kernel, kernel],
                    "strides": [stride, stride],
                    "padding": if *padding == Padding::Same { "same" } else { "valid" },
                    "data_format": "channels_last", "activation": act(activation), "use_bias": true}),
            ),
            LayerSpec::Maxpool { size } => (
                "MaxPooling2D",
                json!({"name": name, "pool_size": [size, size], "strides": [size, size],
                    "padding": "valid", "data_format": "channels_last"}),
            ),
            LayerSpec::Dropout { rate } => ("Dropout", json!({"name": name, "rate": rate})),
            LayerSpec::Flatten => (
                "Flatten",
                json!({"name": name, "data_format": "channels_last"}),
            ),
            LayerSpec::Dense { activation, .. } => {
                let a = if i + 1 == n {
                    "__head__"
                } else {
                    act(activation)
                };
                (
                    "Dense",
                    json!({"name": name, "units": 0, "activation": a, "use_bias": true}),
                )
            }
        };
        layers.push(
            json!({"module": "keras.layers", "class_name": class, "config": config,
            "registered_name": null}),
        );
    }
    json!({
        "module": "keras", "class_name": "Sequential",
        "config": {"name": "sequential", "trainable": true, "layers": layers},
        "registered_name": null,
        "build_config": {"input_shape": [null, h, w, ch]}
    })
}

/// The Keras 3 weights file: `layers/<name>/vars/0` (kernel) and `/1` (bias).
fn keras_weights_h5(cfg: &Config, net: &Net, classes: usize) -> Result<Vec<u8>> {
    let names = keras_names(cfg);
    let flat = flattened_shapes(cfg, classes)?;
    let mut b = hdf5_pure::FileBuilder::new();
    let mut top = b.create_group("layers");
    let exported = layers(cfg, net)?;
    let mut dense_i = 0;
    for (i, name) in names.iter().enumerate() {
        let mut g = top.create_group(name);
        let mut vars = g.create_group("vars");
        vars.set_attr("name", hdf5_pure::AttrValue::String(name.clone()));
        if let Some(l) = exported.iter().find(|l| l.index == i) {
            let (kshape, kernel) = if l.conv {
                let s = &l.shape;
                (vec![s[2], s[3], s[1], s[0]], to_keras_conv(&l.weight, s))
            } else {
                let f = flat.get(dense_i).copied().flatten();
                dense_i += 1;
                let w = match f {
                    Some(chw) => to_keras_flatten_rows(&l.weight, chw, l.shape[1]),
                    None => l.weight.clone(),
                };
                (l.shape.clone(), w)
            };
            let dims: Vec<u64> = kshape.iter().map(|&d| d as u64).collect();
            vars.create_dataset("0")
                .with_f32_data(&kernel)
                .with_shape(&dims);
            vars.create_dataset("1")
                .with_f32_data(&l.bias)
                .with_shape(&[l.bias.len() as u64]);
        }
        g.add_group(vars.finish());
        top.add_group(g.finish());
    }
    b.add_group(top.finish());
    let mut vars = b.create_group("vars");
    vars.set_attr("name", hdf5_pure::AttrValue::String("sequential".into()));
    b.add_group(vars.finish());
    b.finish()
        .map_err(|e| anyhow!("cannot encode the Keras weights file: {e}"))
}

/// Write a Keras 3 file: `.keras` (config, weights, metadata in a zip) or, when `out` ends
/// in `.weights.h5`, the weights alone (for `model.load_weights`).
pub fn keras(cfg: &Config, classes: &[String], net: &Net, out: &Path) -> Result<()> {
    let h5 = keras_weights_h5(cfg, net, classes.len())?;
    if super::has_ext(out, ".h5") {
        return write_file(out, &h5);
    }
    let units = crate::config::output_units(classes.len());
    let mut config = keras_config(cfg);
    // The last Dense: its units and the activation that gives convscope's probabilities.
    if let Some(last) = config["config"]["layers"]
        .as_array_mut()
        .and_then(|l| l.last_mut())
    {
        last["config"]["units"] = json!(units);
        last["config"]["activation"] = json!(if units == 1 { "sigmoid" } else { "softmax" });
    }
    let mut dense_units = cfg
        .layer_shapes(classes.len())?
        .into_iter()
        .zip(&cfg.model.layers)
        .filter(|(_, l)| matches!(l, LayerSpec::Dense { .. }))
        .map(|(s, _)| s[0]);
    if let Some(layers) = config["config"]["layers"].as_array_mut() {
        for l in layers.iter_mut().filter(|l| l["class_name"] == "Dense") {
            if let Some(u) = dense_units.next() {
                l["config"]["units"] = json!(u);
            }
        }
    }
    let metadata = json!({
        "keras_version": "3.0.0",
        "convscope_version": env!("CARGO_PKG_VERSION"),
        "convscope_classes": classes,
    });
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (entry, bytes) in [
            ("metadata.json", serde_json::to_vec(&metadata)?),
            ("config.json", serde_json::to_vec(&config)?),
            ("model.weights.h5", h5),
        ] {
            zip.start_file(entry, opts)
                .map_err(|e| anyhow!("cannot write the .keras archive: {e}"))?;
            zip.write_all(&bytes)?;
        }
        zip.finish()
            .map_err(|e| anyhow!("cannot write the .keras archive: {e}"))?;
    }
    write_file(out, &buf.into_inner())
}

/// Write `bytes` to `out` through a temporary file beside it (no half-written file on
/// failure).
fn write_file(out: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    }
    crate::run::write_atomic(out, bytes).with_context(|| format!("cannot write {}", out.display()))
}
