//! Weights trained elsewhere: read Keras and PyTorch files into convscope's network
//! (`convscope import`), and write a run's weights back out for them
//! (`convscope export-weights`).
//!
//! Every reader gives the same thing, a [`Source`]: the file's weight tensors grouped into the
//! layers that have weights (a kernel and a bias), in network order, with the tensors that
//! belong to no such layer listed apart, and the architecture where the file has one.
//! [`plan::plan`] then matches those layers to the configured network's conv and dense layers
//! by order and shape and converts each to convscope's layout.

pub mod keras;
pub mod plan;
pub mod torch;
pub mod write;

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::config::{ColorMode, Config, LayerSpec};

/// The file formats `convscope import` reads, for error messages.
pub const SUPPORTED: &str = "Keras 3 `.keras`, Keras 3 `.weights.h5`, Keras 2 / legacy full-model `.h5`, PyTorch `.pt` / `.pth` (a state dict, or a checkpoint dict with it under `state_dict` or `model`) and `.safetensors`";

/// The kinds of file read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Keras 3 `.keras`: a zip of `config.json` and `model.weights.h5`.
    Keras,
    /// Keras 3 `model.save_weights("x.weights.h5")`.
    KerasWeights,
    /// Keras 2 / tf-keras `model.save("x.h5")` (or `save_weights` to `.h5`).
    KerasLegacy,
    /// `torch.save(...)`.
    Pytorch,
    /// `.safetensors`.
    Safetensors,
}

impl Format {
    /// What the `imported` event and the messages call it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Keras => "keras",
            Self::KerasWeights => "keras-weights-h5",
            Self::KerasLegacy => "keras-legacy-h5",
            Self::Pytorch => "pytorch",
            Self::Safetensors => "safetensors",
        }
    }
}

/// How a file lays its weights out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Conv kernels `(kh, kw, in, out)`, dense kernels `(in, out)`, flattening `(H, W, C)`.
    Keras,
    /// Conv weights `(out, in, kh, kw)`, `Linear` weights `(out, in)`, flattening `(C, H, W)`.
    Torch,
}

/// What the network's last layer turns its outputs into, as the file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// Nothing (logits).
    Linear,
    Sigmoid,
    Softmax,
    /// The file does not say (PyTorch modules keep activations out of their weights): one
    /// output is read as a sigmoid's logit, several as a softmax's.
    Unknown,
}

/// One tensor as the file holds it, as `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A layer with weights: its kernel and (optional) bias.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceLayer {
    /// The layer's name in the file.
    pub name: String,
    pub kernel: SourceTensor,
    pub bias: Option<SourceTensor>,
}

/// The architecture a file describes.
#[derive(Debug, Clone, PartialEq)]
pub struct Arch {
    pub layers: Vec<LayerSpec>,
    /// `[height, width]`
    pub image_size: [u32; 2],
    pub color_mode: ColorMode,
    /// What became of layers convscope does in another way (a `Rescaling(1/255)` is its
    /// `data.rescale`), for the table.
    pub notes: Vec<String>,
}

/// Everything read from a file.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub format: Format,
    pub layout: Layout,
    /// Layers with weights, in network order.
    pub layers: Vec<SourceLayer>,
    /// Tensors that belong to no conv or dense layer, and why.
    pub unsupported: Vec<Unsupported>,
    pub arch: Option<Arch>,
    pub head: Head,
    pub classes: Option<Vec<String>>,
}

/// A tensor that belongs to no conv or dense layer: name, shape and why.
pub type Unsupported = (String, Vec<usize>, String);

/// Whether a file name ends in `ext` (given in lower case), whatever its case.
#[must_use]
pub fn has_ext(path: &Path, ext: &str) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().to_lowercase().ends_with(ext))
}

/// Read a model file, telling its format from its name and first bytes.
pub fn read(path: &Path) -> Result<Source> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}: check the path", path.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a file; give a model file: {SUPPORTED}",
            path.display()
        );
    }
    let mut magic = [0u8; 8];
    {
        use std::io::Read as _;
        let mut f =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let _ = f.read(&mut magic);
    }
    let is_zip = magic.starts_with(b"PK\x03\x04");
    let is_hdf5 = magic == *b"\x89HDF\r\n\x1a\n";
    let ext = |e: &str| has_ext(path, e);
    if ext(".keras") {
        if !is_zip {
            bail!(
                "{} is not a valid .keras file (a .keras file is a zip archive; this one does not start like one): the file is damaged or truncated, save it again with model.save(\"model.keras\")",
                path.display()
            );
        }
        return keras::read_keras(path);
    }
    if ext(".h5") || ext(".hdf5") {
        if !is_hdf5 {
            bail!(
                "{} is not an HDF5 file (it does not start with the HDF5 signature): the file is damaged or truncated, or not a Keras file",
                path.display()
            );
        }
        return keras::read_h5(path);
    }
    if ext(".safetensors") {
        return torch::read_safetensors(path);
    }
    if ext(".pt") || ext(".pth") || ext(".bin") || ext(".ckpt") {
        return torch::read_pytorch(path);
    }
    // An unusual name: go by the contents.
    if is_hdf5 {
        return keras::read_h5(path);
    }
    if is_zip {
        if keras::is_keras_zip(path) {
            return keras::read_keras(path);
        }
        return torch::read_pytorch(path);
    }
    bail!(
        "{}: unknown model format (neither the name nor the first bytes tell it); supported: {SUPPORTED}",
        path.display()
    )
}

/// Order names as people number layers: `conv2d`, `conv2d_1`, ..., `conv2d_10`; `0.weight`,
/// `3.weight`, `12.weight`.
#[must_use]
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let o = match (x, y) {
            ((true, x), (true, y)) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            ((_, x), (_, y)) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    ca.len().cmp(&cb.len()).then_with(|| a.cmp(b))
}

/// Bytes of little-endian `f32`, `f64`, `f16` or `bf16` as `f32`.
pub(crate) fn floats(bytes: &[u8], dtype: FloatType, what: &str) -> Result<Vec<f32>> {
    let size = match dtype {
        FloatType::F32 => 4,
        FloatType::F64 => 8,
        FloatType::F16 | FloatType::Bf16 => 2,
    };
    if !bytes.len().is_multiple_of(size) {
        bail!(
            "{what}: {} bytes is not a whole number of values",
            bytes.len()
        );
    }
    Ok(bytes
        .chunks_exact(size)
        .map(|c| match dtype {
            FloatType::F32 => f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            FloatType::F64 => {
                f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
            }
            FloatType::F16 => burn::tensor::f16::from_le_bytes([c[0], c[1]]).to_f32(),
            FloatType::Bf16 => burn::tensor::bf16::from_le_bytes([c[0], c[1]]).to_f32(),
        })
        .collect())
}

/// The floating-point types weights come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloatType {
    F32,
    F64,
    F16,
    Bf16,
}

/// Group named tensors (`prefix.weight`, `prefix.bias`) into layers, in natural order of
/// their names; what is not a conv or dense layer's weight goes to `unsupported`.
pub(crate) fn group_by_prefix(
    mut tensors: Vec<SourceTensor>,
) -> (Vec<SourceLayer>, Vec<Unsupported>) {
    tensors.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    let prefix = |n: &str| {
        n.rsplit_once('.')
            .map_or(String::new(), |(p, _)| p.to_string())
    };
    let mut groups: Vec<(String, Vec<SourceTensor>)> = Vec::new();
    for t in tensors {
        let p = prefix(&t.name);
        match groups.iter_mut().find(|(q, _)| *q == p) {
            Some((_, v)) => v.push(t),
            None => groups.push((p, vec![t])),
        }
    }
    groups.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    let mut layers = Vec::new();
    let mut unsupported = Vec::new();
    for (p, ts) in groups {
        let last = |t: &SourceTensor| t.name.rsplit('.').next().unwrap_or("").to_string();
        let weight = ts
            .iter()
            .find(|t| last(t) == "weight" && matches!(t.shape.len(), 2 | 4));
        let bias = ts.iter().find(|t| last(t) == "bias" && t.shape.len() == 1);
        let known = usize::from(weight.is_some()) + usize::from(bias.is_some());
        match weight {
            Some(w) if known == ts.len() => layers.push(SourceLayer {
                name: p,
                kernel: w.clone(),
                bias: bias.cloned(),
            }),
            _ => {
                let why = if ts.iter().any(|t| last(t).starts_with("running_")) {
                    "batch normalisation, which convscope's networks do not have"
                } else {
                    "not the weight or bias of a convolution or a dense (Linear) layer"
                };
                for t in ts {
                    unsupported.push((t.name, t.shape, why.to_string()));
                }
            }
        }
    }
    (layers, unsupported)
}

/// The number of outputs the file's last layer has.
#[must_use]
pub fn final_units(source: &Source) -> Option<usize> {
    let k = &source.layers.last()?.kernel;
    match source.layout {
        Layout::Keras => k.shape.last().copied(),
        Layout::Torch => k.shape.first().copied(),
    }
}

/// The class names: `given` (`--classes`), else the file's, else `data`'s (a folder's
/// sub-folders), else `class0..N-1` for as many classes as the last layer's outputs say.
pub fn resolve_classes(
    source: &Source,
    given: Option<Vec<String>>,
    data: Option<Vec<String>>,
) -> Result<Vec<String>> {
    let named = given.or_else(|| source.classes.clone()).or(data);
    let units = final_units(source);
    if let Some(names) = named {
        if names.len() < 2 {
            bail!(
                "{} class name(s) given ({names:?}); a classifier needs at least 2",
                names.len()
            );
        }
        return Ok(names);
    }
    let n = match units {
        Some(0) | None => bail!(
            "{} holds no dense layer to tell the number of classes from; give them with --classes a,b,...",
            source.path.display()
        ),
        Some(1) => 2,
        Some(n) => n,
    };
    Ok((0..n).map(|i| format!("class{i}")).collect())
}

/// The run's config: `base` (a `--config` file or the default) with the file's architecture,
/// where it has one, in place of `[model].layers` and the input size.
#[must_use]
pub fn config_for(source: &Source, mut base: Config) -> Config {
    if let Some(arch) = &source.arch {
        base.model.layers.clone_from(&arch.layers);
        base.data.image_size = arch.image_size;
        base.data.color_mode = arch.color_mode;
    }
    // One imported "epoch": resume with --epochs N trains further.
    base.train.epochs = 1;
    base
}

/// The SHA-256 of a file, in hex (what `sha256sum` prints).
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize()
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_of_layer_names() {
        let mut v = vec![
            "conv2d_10",
            "dense",
            "conv2d_2",
            "conv2d",
            "conv2d_1",
            "dense_1",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "conv2d",
                "conv2d_1",
                "conv2d_2",
                "conv2d_10",
                "dense",
                "dense_1"
            ]
        );
        let mut v = vec!["12.weight", "0.weight", "4.bias", "4.weight", "0.bias"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["0.bias", "0.weight", "4.bias", "4.weight", "12.weight"]);
    }

    fn t(name: &str, shape: &[usize]) -> SourceTensor {
        SourceTensor {
            name: name.into(),
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }

    #[test]
    fn tensors_group_into_layers_and_batch_norm_is_named() {
        let (layers, bad) = group_by_prefix(vec![
            t("fc.weight", &[2, 8]),
            t("conv1.weight", &[8, 3, 3, 3]),
            t("fc.bias", &[2]),
            t("bn1.weight", &[8]),
            t("bn1.running_mean", &[8]),
        ]);
        let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["conv1", "fc"]);
        assert!(layers[0].bias.is_none());
        assert_eq!(bad.len(), 2);
        assert!(bad[0].2.contains("batch normalisation"), "{bad:?}");
    }

    #[test]
    fn half_floats_convert() {
        let h = burn::tensor::f16::from_f32(1.5).to_le_bytes();
        assert_eq!(floats(&h, FloatType::F16, "x").expect("ok"), [1.5]);
        let b = burn::tensor::bf16::from_f32(-2.0).to_le_bytes();
        assert_eq!(floats(&b, FloatType::Bf16, "x").expect("ok"), [-2.0]);
        assert!(floats(&[0, 1, 2], FloatType::F32, "x").is_err());
    }
}
