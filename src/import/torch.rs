//! PyTorch files (`torch.save`, read with burn-store's PyTorch reader) and `.safetensors`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use burn::store::pytorch_reader::{PickleValue, PytorchReader};

use super::{Arch, FloatType, Format, Head, Layout, Source, SourceTensor, floats, group_by_prefix};
use crate::config::Config;

/// Keys a training script commonly keeps the weights under in a checkpoint dict.
const NESTED_KEYS: [&str; 4] = ["state_dict", "model", "model_state_dict", "net"];

/// Read a `torch.save` file: a state dict, or a checkpoint dict holding one under
/// `state_dict` / `model` / `model_state_dict` / `net`.
pub fn read_pytorch(path: &Path) -> Result<Source> {
    let plain = PytorchReader::new(path).map_err(|e| {
        anyhow!(
            "{} is not a readable PyTorch file ({e}): the file is damaged or truncated, or was not written by torch.save",
            path.display()
        )
    })?;
    let mut reader = plain;
    // A checkpoint dict: the weights are in one nested dict.
    let top = top_level(path);
    for key in NESTED_KEYS {
        let nested = top
            .as_ref()
            .is_some_and(|d| matches!(d.get(key), Some(PickleValue::Dict(_))));
        if nested && let Ok(r) = PytorchReader::with_top_level_key(path, key) {
            reader = r;
            break;
        }
    }
    let classes = top.as_ref().and_then(|d| {
        ["classes", "class_names"]
            .iter()
            .find_map(|k| match d.get(*k) {
                Some(PickleValue::List(v)) => v
                    .iter()
                    .map(|s| match s {
                        PickleValue::String(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>(),
                _ => None,
            })
    });
    let mut tensors = Vec::new();
    for (name, t) in reader.into_tensors() {
        use burn::store::pytorch_reader::DType;
        let dtype = match t.dtype() {
            DType::F32 => FloatType::F32,
            DType::F64 => FloatType::F64,
            DType::F16 => FloatType::F16,
            DType::BF16 => FloatType::Bf16,
            // Counters such as BatchNorm's num_batches_tracked.
            _ => {
                tensors.push(SourceTensor {
                    name,
                    shape: t.shape().to_vec(),
                    data: Vec::new(),
                });
                continue;
            }
        };
        let bytes = t.read().map_err(|e| {
            anyhow!(
                "{}: cannot read tensor `{name}` ({e}): the file is damaged or truncated",
                path.display()
            )
        })?;
        let data = floats(
            &bytes,
            dtype,
            &format!("{}: tensor `{name}`", path.display()),
        )?;
        // DataParallel saves `module.` in front of every name.
        let name = name
            .strip_prefix("module.")
            .map_or(name.clone(), str::to_string);
        tensors.push(SourceTensor {
            name,
            shape: t.shape().to_vec(),
            data,
        });
    }
    if tensors.is_empty() {
        bail!(
            "{} holds no tensors: save the model's weights with torch.save(model.state_dict(), path)",
            path.display()
        );
    }
    let (layers, unsupported) = group_by_prefix(tensors);
    Ok(Source {
        path: path.to_path_buf(),
        format: Format::Pytorch,
        layout: Layout::Torch,
        layers,
        unsupported,
        arch: None,
        head: Head::Unknown,
        classes,
    })
}

/// The top-level dict of a checkpoint, when it is one.
fn top_level(path: &Path) -> Option<HashMap<String, PickleValue>> {
    match PytorchReader::read_pickle_data(path, None).ok()? {
        PickleValue::Dict(d) => Some(d),
        _ => None,
    }
}

/// Metadata key of the convscope config in files `export-weights` writes.
pub const META_CONFIG: &str = "convscope_config";
/// Metadata key of the class names (a JSON list).
pub const META_CLASSES: &str = "classes";

/// Read a `.safetensors` file (PyTorch layout and names); one written by `convscope
/// export-weights` also gives its architecture and classes.
pub fn read_safetensors(path: &Path) -> Result<Source> {
    let bytes = std::fs::read(path).map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        anyhow!(
            "{} is not a readable .safetensors file ({e}): the file is damaged or truncated",
            path.display()
        )
    })?;
    let meta = safetensors::SafeTensors::read_metadata(&bytes)
        .ok()
        .and_then(|(_, m)| m.metadata().clone())
        .unwrap_or_default();
    let mut tensors = Vec::new();
    for (name, view) in st.tensors() {
        use safetensors::Dtype;
        let dtype = match view.dtype() {
            Dtype::F32 => FloatType::F32,
            Dtype::F64 => FloatType::F64,
            Dtype::F16 => FloatType::F16,
            Dtype::BF16 => FloatType::Bf16,
            _ => {
                tensors.push(SourceTensor {
                    name,
                    shape: view.shape().to_vec(),
                    data: Vec::new(),
                });
                continue;
            }
        };
        let data = floats(
            view.data(),
            dtype,
            &format!("{}: tensor `{name}`", path.display()),
        )?;
        tensors.push(SourceTensor {
            name,
            shape: view.shape().to_vec(),
            data,
        });
    }
    let arch = match meta.get(META_CONFIG) {
        Some(text) => {
            let cfg = Config::from_toml(
                text,
                &format!("{} (metadata {META_CONFIG})", path.display()),
            )?;
            Some(Arch {
                layers: cfg.model.layers,
                image_size: cfg.data.image_size,
                color_mode: cfg.data.color_mode,
                notes: Vec::new(),
            })
        }
        None => None,
    };
    let classes = meta
        .get(META_CLASSES)
        .and_then(|c| serde_json::from_str::<Vec<String>>(c).ok());
    let (layers, unsupported) = group_by_prefix(tensors);
    Ok(Source {
        path: path.to_path_buf(),
        format: Format::Safetensors,
        layout: Layout::Torch,
        layers,
        unsupported,
        arch,
        head: Head::Unknown,
        classes,
    })
}
