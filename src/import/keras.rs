//! Keras files: Keras 3 `.keras` (a zip of `config.json` and `model.weights.h5`), Keras 3
//! `.weights.h5`, and Keras 2 / tf-keras `.h5` (full model or weights), read with a pure-Rust
//! HDF5 reader.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use hdf5_pure::{AttrValue, File, Group};
use serde_json::Value;

use super::{Arch, Format, Head, Layout, Source, SourceLayer, SourceTensor, natural_cmp};
use crate::config::{Activation, ClassesMarker, ColorMode, LayerSpec, Padding, Units};

fn act(relu: bool) -> Activation {
    if relu {
        Activation::Relu
    } else {
        Activation::None
    }
}

/// Whether a zip archive holds a Keras model (`config.json` and `model.weights.h5`).
#[must_use]
pub fn is_keras_zip(path: &Path) -> bool {
    std::fs::File::open(path)
        .ok()
        .and_then(|f| zip::ZipArchive::new(f).ok())
        .is_some_and(|z| z.index_for_name("config.json").is_some())
}

/// Read a Keras 3 `.keras` file.
pub fn read_keras(path: &Path) -> Result<Source> {
    let damaged = |e: &dyn std::fmt::Display| {
        anyhow!(
            "{} is not a readable .keras archive ({e}): the file is damaged or truncated; save it again with model.save(\"model.keras\")",
            path.display()
        )
    };
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| damaged(&e))?;
    let mut entry = |name: &str| -> Result<Vec<u8>> {
        let mut e = zip.by_name(name).map_err(|_| {
            anyhow!(
                "{} has no {name} inside: it is not a Keras 3 .keras file (it should hold config.json and model.weights.h5)",
                path.display()
            )
        })?;
        let mut buf = Vec::new();
        e.read_to_end(&mut buf).map_err(|e| damaged(&e))?;
        Ok(buf)
    };
    let config: Value = serde_json::from_slice(&entry("config.json")?)
        .map_err(|e| anyhow!("{}: config.json is not valid JSON ({e})", path.display()))?;
    let weights = entry("model.weights.h5")?;
    // A file exported by convscope names its classes in metadata.json.
    let classes = entry("metadata.json")
        .ok()
        .and_then(|m| serde_json::from_slice::<Value>(&m).ok())
        .and_then(|m| string_list(m.get("convscope_classes")?));
    let h5 = File::from_bytes(weights).map_err(|e| {
        anyhow!(
            "{}: model.weights.h5 inside it is not readable HDF5 ({e}): the file is damaged",
            path.display()
        )
    })?;
    let model = parse_model(&config, &path.display().to_string())?;
    let mut layers = Vec::new();
    // Keras 3 files a layer's variables under its class name, numbered per class
    // (`conv2d`, `conv2d_1`, ...), whatever the layer's own name.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (name, class) in model.weighted.iter().zip(&model.weighted_class) {
        let n = seen.entry(class.as_str()).or_insert(0);
        let key = if *n == 0 {
            class.clone()
        } else {
            format!("{class}_{n}")
        };
        *n += 1;
        let at = format!("layers/{key}/vars");
        let vars = h5.group(&at).map_err(|_| {
            anyhow!(
                "{}: model.weights.h5 has no weights for layer `{name}` (no group {at}): the file is damaged",
                path.display()
            )
        })?;
        let tensors = read_vars(&h5, &vars, &at, path)?;
        layers.push(layer_of(name, tensors, path)?);
    }
    Ok(Source {
        path: path.to_path_buf(),
        format: Format::Keras,
        layout: Layout::Keras,
        layers,
        unsupported: Vec::new(),
        arch: Some(model.arch),
        head: model.head,
        classes,
    })
}

/// Read an HDF5 Keras file: Keras 3 `.weights.h5`, or a Keras 2 full model or weights.
pub fn read_h5(path: &Path) -> Result<Source> {
    let h5 = File::open(path).map_err(|e| {
        anyhow!(
            "{} is not a readable HDF5 file ({e}): the file is damaged or truncated",
            path.display()
        )
    })?;
    let root = h5.root();
    let root_attrs = root.attrs().unwrap_or_default();
    let root_groups = root.groups().unwrap_or_default();
    if root_groups.iter().any(|g| g == "model_weights") || root_attrs.contains_key("layer_names") {
        return read_legacy(path, &h5, &root_attrs);
    }
    if root_groups.iter().any(|g| g == "layers") {
        return read_weights_h5(path, &h5);
    }
    bail!(
        "{}: an HDF5 file, but not one Keras wrote (no `layers` group as in a Keras 3 .weights.h5, no `model_weights` or `layer_names` as in a Keras 2 .h5), or the file is damaged or truncated",
        path.display()
    )
}

/// Keras 3 `.weights.h5`: `layers/<name>/vars/<i>`, no architecture.
fn read_weights_h5(path: &Path, h5: &File) -> Result<Source> {
    let layers_group = h5.group("layers").map_err(|e| {
        anyhow!(
            "{}: cannot read group `layers` ({e}): the file is damaged or truncated",
            path.display()
        )
    })?;
    let damaged = |at: &str, e: &dyn std::fmt::Display| {
        anyhow!(
            "{}: cannot read {at} ({e}): the file is damaged or truncated",
            path.display()
        )
    };
    let mut names = layers_group
        .groups()
        .map_err(|e| damaged("the group `layers`", &e))?;
    names.sort_by(|a, b| natural_cmp(a, b));
    let mut layers = Vec::new();
    let mut unsupported = Vec::new();
    for name in names {
        let at = format!("layers/{name}/vars");
        let vars = match h5.group(&format!("layers/{name}")).and_then(|g| g.groups()) {
            Ok(children) if !children.iter().any(|c| c == "vars") => continue,
            Ok(_) => h5.group(&at).map_err(|e| damaged(&at, &e))?,
            Err(e) => return Err(damaged(&format!("layers/{name}"), &e)),
        };
        let tensors = read_vars(h5, &vars, &at, path)?;
        if tensors.is_empty() {
            continue;
        }
        match layer_of(&name, tensors.clone(), path) {
            Ok(l) => layers.push(l),
            Err(_) => {
                for t in tensors {
                    unsupported.push((
                        t.name,
                        t.shape,
                        format!("layer `{name}` is not a Conv2D or Dense layer (its variables do not look like a kernel and a bias)"),
                    ));
                }
            }
        }
    }
    Ok(Source {
        path: path.to_path_buf(),
        format: Format::KerasWeights,
        layout: Layout::Keras,
        layers,
        unsupported,
        arch: None,
        head: Head::Unknown,
        classes: None,
    })
}

/// The datasets of a Keras 3 `vars` group, in order (`0`, `1`, ...).
fn read_vars(h5: &File, vars: &Group, at: &str, path: &Path) -> Result<Vec<SourceTensor>> {
    let mut names = vars.datasets().map_err(|e| {
        anyhow!(
            "{}: cannot read {at} ({e}): the file is damaged or truncated",
            path.display()
        )
    })?;
    names.sort_by(|a, b| natural_cmp(a, b));
    names
        .iter()
        .map(|n| read_dataset(h5, &format!("{at}/{n}"), path))
        .collect()
}

/// Read one dataset as `f32`.
fn read_dataset(h5: &File, at: &str, path: &Path) -> Result<SourceTensor> {
    let ds = h5.dataset(at).map_err(|e| {
        anyhow!(
            "{}: cannot read dataset {at} ({e}): the file is damaged or truncated",
            path.display()
        )
    })?;
    let shape: Vec<usize> = ds
        .shape()
        .map_err(|e| {
            anyhow!(
                "{}: dataset {at}: {e}: the file is damaged or truncated",
                path.display()
            )
        })?
        .into_iter()
        .map(|d| d as usize)
        .collect();
    let data = ds.read_f32().map_err(|e| {
        anyhow!(
            "{}: dataset {at} cannot be read as numbers ({e}): the file is damaged or truncated, or holds weights of a type convscope cannot read",
            path.display()
        )
    })?;
    if data.len() != shape.iter().product::<usize>() {
        bail!(
            "{}: dataset {at} has {} values for shape {shape:?}: the file is damaged",
            path.display(),
            data.len()
        );
    }
    Ok(SourceTensor {
        name: at.to_string(),
        shape,
        data,
    })
}

/// A kernel (rank 4 or 2) and an optional bias (rank 1) as one layer.
fn layer_of(name: &str, tensors: Vec<SourceTensor>, path: &Path) -> Result<SourceLayer> {
    let mut it = tensors.into_iter();
    let kernel = it
        .next()
        .ok_or_else(|| anyhow!("{}: layer `{name}` has no weights", path.display()))?;
    let bias = it.next();
    if !matches!(kernel.shape.len(), 2 | 4)
        || bias.as_ref().is_some_and(|b| b.shape.len() != 1)
        || it.next().is_some()
    {
        bail!(
            "{}: layer `{name}` has weights convscope cannot place (not a Conv2D or Dense kernel and bias)",
            path.display()
        );
    }
    Ok(SourceLayer {
        name: name.to_string(),
        kernel,
        bias,
    })
}

/// Keras 2 / tf-keras `.h5`: `model_weights/<layer>/<weight name>` in the order of the
/// `layer_names` and `weight_names` attributes; the architecture in `model_config`.
fn read_legacy(path: &Path, h5: &File, root_attrs: &HashMap<String, AttrValue>) -> Result<Source> {
    let (base, attrs) = if h5.group("model_weights").is_ok() {
        let g = h5.group("model_weights").map_err(|e| {
            anyhow!(
                "{}: cannot read model_weights ({e}): the file is damaged or truncated",
                path.display()
            )
        })?;
        ("model_weights/".to_string(), g.attrs().unwrap_or_default())
    } else {
        (String::new(), root_attrs.clone())
    };
    let layer_names = attrs
        .get("layer_names")
        .and_then(attr_strings)
        .ok_or_else(|| {
            anyhow!(
                "{}: the `layer_names` attribute is missing or unreadable: not a Keras .h5 file, or the file is damaged or truncated",
                path.display()
            )
        })?;
    let model = match root_attrs.get("model_config").and_then(attr_string) {
        Some(text) => {
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| anyhow!("{}: model_config is not valid JSON ({e})", path.display()))?;
            Some(parse_model(&v, &path.display().to_string())?)
        }
        None => None,
    };
    let mut by_name: HashMap<String, Vec<SourceTensor>> = HashMap::new();
    for layer in &layer_names {
        let g = h5.group(&format!("{base}{layer}")).map_err(|e| {
            anyhow!(
                "{}: cannot read layer group {base}{layer} ({e}): the file is damaged or truncated",
                path.display()
            )
        })?;
        let weight_names = g
            .attrs()
            .unwrap_or_default()
            .get("weight_names")
            .and_then(attr_strings)
            .unwrap_or_default();
        let mut tensors = Vec::new();
        for w in weight_names {
            tensors.push(read_dataset(h5, &format!("{base}{layer}/{w}"), path)?);
        }
        by_name.insert(layer.clone(), tensors);
    }
    let mut layers = Vec::new();
    let mut unsupported = Vec::new();
    match &model {
        Some(m) => {
            for name in &m.weighted {
                let tensors = by_name.remove(name).ok_or_else(|| {
                    anyhow!(
                        "{}: no weights for layer `{name}` of model_config",
                        path.display()
                    )
                })?;
                layers.push(layer_of(name, tensors, path)?);
            }
        }
        None => {
            for name in &layer_names {
                let tensors = by_name.remove(name).unwrap_or_default();
                if tensors.is_empty() {
                    continue;
                }
                match layer_of(name, tensors.clone(), path) {
                    Ok(l) => layers.push(l),
                    Err(_) => unsupported.extend(tensors.into_iter().map(|t| {
                        (
                            t.name,
                            t.shape,
                            format!("layer `{name}` is not a Conv2D or Dense layer"),
                        )
                    })),
                }
            }
        }
    }
    Ok(Source {
        path: path.to_path_buf(),
        format: Format::KerasLegacy,
        layout: Layout::Keras,
        layers,
        unsupported,
        head: model.as_ref().map_or(Head::Unknown, |m| m.head),
        arch: model.map(|m| m.arch),
        classes: None,
    })
}

/// One string attribute (h5py writes them variable-length or fixed-length).
fn attr_string(v: &AttrValue) -> Option<String> {
    match v {
        AttrValue::String(s)
        | AttrValue::AsciiString(s)
        | AttrValue::VarLenString(s)
        | AttrValue::VarLenAsciiString(s) => Some(s.clone()),
        AttrValue::StringSized { value, .. } | AttrValue::AsciiStringSized { value, .. } => {
            Some(value.clone())
        }
        other => attr_strings(other).and_then(|v| (v.len() == 1).then(|| v[0].clone())),
    }
}

/// A string-array attribute (an empty numeric array, as Keras writes for no weights, is
/// an empty list).
fn attr_strings(v: &AttrValue) -> Option<Vec<String>> {
    match v {
        AttrValue::StringArray(v)
        | AttrValue::AsciiStringArray(v)
        | AttrValue::VarLenStringArray(v)
        | AttrValue::VarLenAsciiCharArray(v)
        | AttrValue::VarLenAsciiStringArray(v) => Some(v.clone()),
        AttrValue::StringArraySized { values, .. }
        | AttrValue::AsciiStringArraySized { values, .. } => Some(values.clone()),
        AttrValue::String(s)
        | AttrValue::AsciiString(s)
        | AttrValue::VarLenString(s)
        | AttrValue::VarLenAsciiString(s) => Some(vec![s.clone()]),
        AttrValue::F64Array(v) if v.is_empty() => Some(Vec::new()),
        AttrValue::F32Array(v) if v.is_empty() => Some(Vec::new()),
        _ => None,
    }
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// A Keras model config turned into convscope's layers.
pub(crate) struct Model {
    pub arch: Arch,
    pub head: Head,
    /// Names of the layers with weights, in order.
    pub weighted: Vec<String>,
    /// Their classes in snake case (`conv2d`, `dense`), as Keras 3 files their variables.
    pub weighted_class: Vec<String>,
}

/// What convscope's networks are made of, for the messages.
const SUPPORTED_LAYERS: &str = "convscope's networks are a chain of Conv2D, MaxPooling2D, Dropout, Flatten and Dense layers (ReLU or no activation; sigmoid or softmax only on the last Dense)";

/// Turn a Keras model config (`config.json` or `model_config`) into an architecture.
#[expect(
    clippy::too_many_lines,
    reason = "one match over Keras layer kinds, each arm checking its own config keys"
)]
pub(crate) fn parse_model(v: &Value, origin: &str) -> Result<Model> {
    let class = v.get("class_name").and_then(Value::as_str).unwrap_or("");
    if !matches!(class, "Sequential" | "Functional" | "Model") {
        bail!(
            "{origin}: the model is a `{class}`; only Sequential (or a functional chain) models can be imported: {SUPPORTED_LAYERS}"
        );
    }
    let cfg = v
        .get("config")
        .ok_or_else(|| anyhow!("{origin}: the model config has no `config`"))?;
    let layers = cfg
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("{origin}: the model config lists no layers"))?;
    let shape_of = |v: Option<&Value>| -> Option<Vec<Option<usize>>> {
        v?.as_array()
            .map(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
    };
    let mut input: Option<Vec<Option<usize>>> = shape_of(cfg.get("build_input_shape"))
        .or_else(|| shape_of(v.get("build_config").and_then(|b| b.get("input_shape"))));
    let mut out: Vec<LayerSpec> = Vec::new();
    let mut weighted = Vec::new();
    let mut weighted_class = Vec::new();
    let mut notes = Vec::new();
    let mut head = Head::Linear;
    let mut last_activation = String::from("linear");
    for (i, layer) in layers.iter().enumerate() {
        let class = layer
            .get("class_name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let c = layer.get("config").unwrap_or(&Value::Null);
        let name = c
            .get("name")
            .or_else(|| layer.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let here = format!("{origin}: layer {i} `{name}` ({class})");
        if input.is_none() {
            input = shape_of(c.get("batch_shape")).or_else(|| shape_of(c.get("batch_input_shape")));
        }
        if let Some(inbound) = layer.get("inbound_nodes").and_then(Value::as_array)
            && inbound.len() > 1
        {
            bail!("{here} is used more than once; only a plain chain of layers can be imported");
        }
        if c.get("data_format").and_then(Value::as_str) == Some("channels_first") {
            bail!(
                "{here} uses data_format=\"channels_first\"; only channels_last models can be imported"
            );
        }
        let pair = |key: &str| -> Result<Option<usize>> {
            match c.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_u64().map(|n| n as usize)),
                Some(Value::Array(a)) => {
                    let v: Vec<usize> = a
                        .iter()
                        .filter_map(Value::as_u64)
                        .map(|n| n as usize)
                        .collect();
                    match v.as_slice() {
                        [a, b] if a == b => Ok(Some(*a)),
                        _ => bail!(
                            "{here}: {key} = {} is not square; convscope's layers are",
                            Value::Array(a.clone())
                        ),
                    }
                }
                Some(other) => bail!("{here}: {key} = {other} is not understood"),
            }
        };
        let activation = c
            .get("activation")
            .and_then(Value::as_str)
            .unwrap_or("linear")
            .to_string();
        match class {
            "InputLayer" => {}
            "Conv2D" | "Convolution2D" => {
                if pair("dilation_rate")?.unwrap_or(1) != 1
                    || c.get("groups").and_then(Value::as_u64).unwrap_or(1) != 1
                {
                    bail!("{here}: dilated or grouped convolutions cannot be imported");
                }
                let relu = match activation.as_str() {
                    "relu" => true,
                    "linear" => false,
                    other => bail!(
                        "{here}: activation `{other}` is not supported on a convolution (ReLU or none)"
                    ),
                };
                let padding = match c.get("padding").and_then(Value::as_str) {
                    Some("same") => Padding::Same,
                    Some("valid") | None => Padding::Valid,
                    Some(p) => bail!("{here}: padding `{p}` is not supported (same or valid)"),
                };
                out.push(LayerSpec::Conv {
                    filters: c
                        .get("filters")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| anyhow!("{here}: no `filters`"))?
                        as usize,
                    kernel: pair("kernel_size")?
                        .ok_or_else(|| anyhow!("{here}: no `kernel_size`"))?,
                    padding,
                    activation: act(relu),
                    stride: pair("strides")?.unwrap_or(1),
                });
                weighted.push(name);
                weighted_class.push("conv2d".to_string());
            }
            "MaxPooling2D" | "MaxPool2D" => {
                let size = pair("pool_size")?.unwrap_or(2);
                if pair("strides")?.is_some_and(|s| s != size) {
                    bail!(
                        "{here}: strides differ from pool_size; convscope pools with stride = size"
                    );
                }
                if c.get("padding")
                    .and_then(Value::as_str)
                    .is_some_and(|p| p != "valid")
                {
                    bail!("{here}: only padding=\"valid\" pooling can be imported");
                }
                out.push(LayerSpec::Maxpool { size });
            }
            "Dropout" => out.push(LayerSpec::Dropout {
                rate: c.get("rate").and_then(Value::as_f64).unwrap_or(0.0) as f32,
            }),
            "Flatten" => out.push(LayerSpec::Flatten),
            "Rescaling" => {
                let scale = c.get("scale").and_then(Value::as_f64).unwrap_or(1.0);
                let offset = c.get("offset").and_then(Value::as_f64).unwrap_or(0.0);
                if (scale - 1.0 / 255.0).abs() > 1e-9 || offset != 0.0 {
                    bail!(
                        "{here}: Rescaling(scale={scale}, offset={offset}) cannot be imported; convscope feeds pixels / 255 (only Rescaling(1/255) can be left to it)"
                    );
                }
                notes.push(format!(
                    "`{name}` Rescaling(1/255): done by convscope's data.rescale"
                ));
            }
            "Activation" | "ReLU" | "Softmax" => {
                let act = if class == "ReLU" {
                    "relu".to_string()
                } else if class == "Softmax" {
                    "softmax".to_string()
                } else {
                    activation.clone()
                };
                let folded = match (out.last_mut(), act.as_str()) {
                    (
                        Some(
                            LayerSpec::Conv { activation, .. }
                            | LayerSpec::Dense { activation, .. },
                        ),
                        "relu",
                    ) if *activation != Activation::Relu => {
                        *activation = Activation::Relu;
                        true
                    }
                    (Some(LayerSpec::Dense { .. }), "sigmoid" | "softmax")
                        if last_activation == "linear" && i + 1 == layers.len() =>
                    {
                        last_activation.clone_from(&act);
                        true
                    }
                    (_, "linear") => true,
                    _ => false,
                };
                if !folded {
                    bail!("{here}: activation `{act}` here cannot be imported; {SUPPORTED_LAYERS}");
                }
                notes.push(format!("`{name}` {act}: joined to the layer before it"));
            }
            "Dense" => {
                let units =
                    c.get("units")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| anyhow!("{here}: no `units`"))? as usize;
                let is_last = layers[i + 1..].iter().all(|l| {
                    matches!(
                        l.get("class_name").and_then(Value::as_str),
                        Some("Activation" | "Softmax" | "Dropout")
                    )
                });
                let relu = match activation.as_str() {
                    "relu" => true,
                    "linear" => false,
                    "sigmoid" | "softmax" if is_last => false,
                    other => bail!(
                        "{here}: activation `{other}` is not supported here ({SUPPORTED_LAYERS})"
                    ),
                };
                out.push(LayerSpec::Dense {
                    units: Units::Fixed(units),
                    activation: act(relu),
                });
                last_activation.clone_from(&activation);
                weighted.push(name);
                weighted_class.push("dense".to_string());
            }
            other => bail!(
                "{origin}: layer {i} `{name}` is a {other}, which cannot be imported: {SUPPORTED_LAYERS}"
            ),
        }
    }
    head = match last_activation.as_str() {
        "sigmoid" => Head::Sigmoid,
        "softmax" => Head::Softmax,
        _ => head,
    };
    match out.last_mut() {
        Some(LayerSpec::Dense { units, activation }) if *activation != Activation::Relu => {
            *units = Units::Classes(ClassesMarker::Classes);
        }
        _ => bail!(
            "{origin}: the model does not end with a Dense layer without ReLU (its class scores); {SUPPORTED_LAYERS}"
        ),
    }
    let input = input.ok_or_else(|| anyhow!("{origin}: the model config gives no input shape"))?;
    let [h, w, ch] = match input.as_slice() {
        [_, Some(h), Some(w), Some(c)] => [*h, *w, *c],
        _ => bail!(
            "{origin}: input shape {input:?} is not (batch, height, width, channels) with fixed sizes"
        ),
    };
    let color_mode = match ch {
        3 => ColorMode::Rgb,
        1 => ColorMode::Grayscale,
        n => bail!(
            "{origin}: the input has {n} channels; convscope reads RGB (3) or grayscale (1) images"
        ),
    };
    Ok(Model {
        arch: Arch {
            layers: out,
            image_size: [h as u32, w as u32],
            color_mode,
            notes,
        },
        head,
        weighted,
        weighted_class,
    })
}
