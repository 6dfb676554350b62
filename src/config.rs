//! Configuration: the TOML file layer, flag overrides, and validation with clear errors.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod resolve;
mod validate;

pub use resolve::{Base, Settings};

/// The default configuration file, embedded so that a bare binary works.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// A configuration problem, naming the file or key and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // Not a `source` field: the error is already in the text, and an error chain printed it twice.
    #[error("cannot read config file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config key `{key}` = {value}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("cannot write the configuration as TOML: {message}")]
    Serialize { message: String },
}

fn invalid(
    key: impl Into<String>,
    value: impl fmt::Display,
    reason: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// The fully resolved configuration of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data: DataConfig,
    pub augment: AugmentConfig,
    pub model: ModelConfig,
    pub optimizer: OptimizerConfig,
    pub train: TrainConfig,
    pub ui: UiConfig,
}

/// Pixel layout of the network input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorMode {
    Rgb,
    Grayscale,
}

impl ColorMode {
    /// Number of input channels.
    #[must_use]
    pub fn channels(self) -> usize {
        match self {
            Self::Rgb => 3,
            Self::Grayscale => 1,
        }
    }
}

/// `[data]`: where images come from and how they become tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub image_size: [u32; 2],
    pub color_mode: ColorMode,
    pub rescale: f32,
    pub val_split: f32,
    pub max_pixels: u64,
    pub cache_mib: u64,
    pub prefetch_batches: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            image_size: [150, 150],
            color_mode: ColorMode::Rgb,
            rescale: 1.0 / 255.0,
            val_split: 0.2,
            max_pixels: 100_000_000,
            cache_mib: 2048,
            prefetch_batches: 4,
        }
    }
}

/// `[augment]`: Keras `ImageDataGenerator` random transforms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    pub enabled: bool,
    pub rotation_range: f32,
    pub width_shift_range: f32,
    pub height_shift_range: f32,
    pub zoom_range: f32,
    pub horizontal_flip: bool,
    pub vertical_flip: bool,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            rotation_range: 45.0,
            width_shift_range: 0.15,
            height_shift_range: 0.15,
            zoom_range: 0.3,
            horizontal_flip: true,
            vertical_flip: false,
        }
    }
}

impl AugmentConfig {
    /// Whether any transform would change an image.
    #[must_use]
    pub fn is_identity(&self) -> bool {
        !self.enabled
            || (self.rotation_range == 0.0
                && self.width_shift_range == 0.0
                && self.height_shift_range == 0.0
                && self.zoom_range == 0.0
                && !self.horizontal_flip
                && !self.vertical_flip)
    }
}

/// Convolution padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    Same,
    Valid,
}

/// Layer activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    #[default]
    None,
}

/// Number of units of a dense layer: fixed, or the number of classes (output layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Units {
    Fixed(usize),
    Classes(ClassesMarker),
}

/// The literal string `"classes"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassesMarker {
    Classes,
}

fn one() -> usize {
    1
}

/// One entry of `model.layers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum LayerSpec {
    Conv {
        filters: usize,
        kernel: usize,
        padding: Padding,
        #[serde(default)]
        activation: Activation,
        #[serde(default = "one")]
        stride: usize,
    },
    Maxpool {
        size: usize,
    },
    Dropout {
        rate: f32,
    },
    Flatten,
    Dense {
        units: Units,
        #[serde(default)]
        activation: Activation,
    },
}

/// Which convolution kernels the CPU device uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvImpl {
    Fast,
    Reference,
}

/// `[model]`: the architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub layers: Vec<LayerSpec>,
    pub conv_impl: ConvImpl,
}

impl Default for ModelConfig {
    fn default() -> Self {
        let conv = |filters| LayerSpec::Conv {
            filters,
            kernel: 3,
            padding: Padding::Same,
            activation: Activation::Relu,
            stride: 1,
        };
        let pool = || LayerSpec::Maxpool { size: 2 };
        let dropout = || LayerSpec::Dropout { rate: 0.2 };
        Self {
            layers: vec![
                conv(16),
                pool(),
                dropout(),
                conv(32),
                pool(),
                conv(64),
                pool(),
                dropout(),
                LayerSpec::Flatten,
                LayerSpec::Dense {
                    units: Units::Fixed(512),
                    activation: Activation::Relu,
                },
                LayerSpec::Dense {
                    units: Units::Classes(ClassesMarker::Classes),
                    activation: Activation::None,
                },
            ],
            conv_impl: ConvImpl::Fast,
        }
    }
}

/// `[optimizer]`: Adam.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    pub lr: f64,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            lr: 0.001,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
        }
    }
}

/// `[train]`: the loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub device: String,
    pub keep_checkpoints: usize,
    /// How many of the newest checkpoints keep the optimizer state (0: all); older ones keep
    /// only the weights.
    pub keep_optimizer: usize,
    pub batch_events_per_sec: u32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 50,
            batch_size: 64,
            seed: 42,
            device: "cpu".into(),
            keep_checkpoints: 0,
            keep_optimizer: 2,
            batch_events_per_sec: 10,
        }
    }
}

/// Terminal graphics protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Graphics {
    Auto,
    Halfblocks,
    Sixel,
    Kitty,
    Iterm2,
}

/// Colour depth of the screen: found out, or set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColorSetting {
    /// `COLORTERM`, else tmux's knowledge of its client terminal, else the terminal's answer.
    #[serde(rename = "auto")]
    Auto,
    /// 24-bit colour.
    #[serde(rename = "truecolor")]
    Truecolor,
    /// The 256-colour palette.
    #[serde(rename = "256")]
    Palette256,
}

/// Colormap for heatmaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColormapName {
    Viridis,
    Magma,
    Gray,
    Diverging,
}

/// Filter weight normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterNorm {
    Layer,
    Filter,
}

/// `[ui]`: the terminal interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    pub graphics: Graphics,
    /// Colour depth: `auto`, `truecolor` or `256`.
    pub color: ColorSetting,
    pub colormap: ColormapName,
    pub filter_norm: FilterNorm,
    pub fps: u32,
    /// Most kilobytes one sixel picture may take (0: no limit); over it, a picture is sent
    /// less enlarged, then in fewer colour levels, then with fewer pixels.
    pub sixel_max_kb: u32,
    /// Pictures that change on their own (at epoch ends) are drawn only as often as keeps the
    /// screen's writes to this many kilobytes a second on average; what a key asks for is
    /// drawn at once (0: every epoch).
    pub refresh_kb_per_sec: u32,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            graphics: Graphics::Auto,
            color: ColorSetting::Auto,
            colormap: ColormapName::Viridis,
            filter_norm: FilterNorm::Layer,
            fps: 30,
            sixel_max_kb: 0,
            refresh_kb_per_sec: 256,
        }
    }
}

impl UiConfig {
    /// These preferences with the keys of `over` that differ from the defaults put on top: a
    /// config file's `[ui]` over the user's preferences file.
    #[must_use]
    pub fn overlaid(mut self, over: &UiConfig) -> Self {
        let d = UiConfig::default();
        if over.graphics != d.graphics {
            self.graphics = over.graphics;
        }
        if over.colormap != d.colormap {
            self.colormap = over.colormap;
        }
        if over.filter_norm != d.filter_norm {
            self.filter_norm = over.filter_norm;
        }
        if over.fps != d.fps {
            self.fps = over.fps;
        }
        if over.sixel_max_kb != d.sixel_max_kb {
            self.sixel_max_kb = over.sixel_max_kb;
        }
        if over.refresh_kb_per_sec != d.refresh_kb_per_sec {
            self.refresh_kb_per_sec = over.refresh_kb_per_sec;
        }
        self
    }
}

/// The user's preferences file: `$XDG_CONFIG_HOME/convscope/config.toml`, else
/// `~/.config/convscope/config.toml` (`None` without either variable).
#[must_use]
pub fn user_config_path() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    std::env::var_os("XDG_CONFIG_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".config"))
        })
        .map(|dir| dir.join("convscope").join("config.toml"))
}

/// The user's preferences file: only `[ui]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    #[serde(default)]
    ui: UiConfig,
}

/// The `[ui]` preferences of the user's file ([`user_config_path`]); the defaults when there is
/// no such file.
pub fn user_ui() -> Result<UiConfig, ConfigError> {
    let Some(path) = user_config_path() else {
        return Ok(UiConfig::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(UiConfig::default()),
        Err(error) => return Err(ConfigError::Read { path, error }),
    };
    let file: UserFile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.display().to_string(),
        message: format!(
            "{}\n(the user config file holds only [ui] preferences; training settings go in a --config file)",
            e.to_string().trim_end()
        ),
    })?;
    let check = Config {
        ui: file.ui.clone(),
        ..Config::default()
    };
    check.validate().map_err(|e| ConfigError::Parse {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(file.ui)
}

/// Overrides from command-line flags and environment variables (each `None` when not given).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub image_size: Option<[u32; 2]>,
    pub lr: Option<f64>,
    pub seed: Option<u64>,
    pub device: Option<String>,
    pub val_split: Option<f32>,
    pub no_augment: bool,
    pub grayscale: bool,
    pub conv_impl: Option<ConvImpl>,
    pub graphics: Option<Graphics>,
    pub color: Option<ColorSetting>,
    pub colormap: Option<ColormapName>,
    pub sixel_max_kb: Option<u32>,
    pub refresh_kb_per_sec: Option<u32>,
}

impl Config {
    /// Parse a TOML document; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Load a config file, or the embedded default when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            None => Self::from_toml(DEFAULT_TOML, "config/default.toml (built in)"),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|error| ConfigError::Read {
                    path: p.to_path_buf(),
                    error,
                })?;
                Self::from_toml(&text, &p.display().to_string())
            }
        }
    }

    /// Apply flag and environment overrides on top of the file layer.
    pub fn apply(&mut self, o: &Overrides) {
        if let Some(v) = o.epochs {
            self.train.epochs = v;
        }
        if let Some(v) = o.batch_size {
            self.train.batch_size = v;
        }
        if let Some(v) = o.image_size {
            self.data.image_size = v;
        }
        if let Some(v) = o.lr {
            self.optimizer.lr = v;
        }
        if let Some(v) = o.seed {
            self.train.seed = v;
        }
        if let Some(v) = &o.device {
            self.train.device.clone_from(v);
        }
        if let Some(v) = o.val_split {
            self.data.val_split = v;
        }
        if o.no_augment {
            self.augment.enabled = false;
        }
        if o.grayscale {
            self.data.color_mode = ColorMode::Grayscale;
        }
        if let Some(v) = o.conv_impl {
            self.model.conv_impl = v;
        }
        if let Some(v) = o.graphics {
            self.ui.graphics = v;
        }
        if let Some(v) = o.color {
            self.ui.color = v;
        }
        if let Some(v) = o.colormap {
            self.ui.colormap = v;
        }
        if let Some(v) = o.sixel_max_kb {
            self.ui.sixel_max_kb = v;
        }
        if let Some(v) = o.refresh_kb_per_sec {
            self.ui.refresh_kb_per_sec = v;
        }
    }

    /// Serialise the resolved config as TOML (written into the run directory).
    pub fn try_to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|e| ConfigError::Serialize {
            message: e.to_string(),
        })
    }

    /// [`Config::try_to_toml`] for showing: an error becomes a TOML comment saying so.
    #[must_use]
    pub fn to_toml(&self) -> String {
        self.try_to_toml()
            .unwrap_or_else(|e| format!("# {}\n", e.to_string().replace('\n', " ")))
    }
}

/// Number of output logits for `classes` classes: one for two classes (binary), else one each.
#[must_use]
pub fn output_units(classes: usize) -> usize {
    if classes == 2 { 1 } else { classes }
}

/// A compute device as named in the config: parsed once from `train.device`, then passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Wgpu,
    Cuda(usize),
}

/// A device name that is none of `cpu`, `wgpu`, `cuda`, `cuda:N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a device: use cpu, wgpu, cuda or cuda:N")]
pub struct UnknownDevice(pub String);

impl std::str::FromStr for DeviceSpec {
    type Err = UnknownDevice;

    /// Parse `cpu`, `wgpu`, `cuda` or `cuda:N`.
    fn from_str(s: &str) -> Result<Self, UnknownDevice> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| UnknownDevice(s.to_string())),
        }
    }
}

impl DeviceSpec {
    /// Whether this is a GPU (kernels are compiled and tuned on the first steps).
    #[must_use]
    pub fn is_gpu(self) -> bool {
        self != Self::Cpu
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Wgpu => write!(f, "wgpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Parse `cpu`, `wgpu`, `cuda` or `cuda:N` as the value of `train.device`.
pub fn parse_device(s: &str) -> Result<DeviceSpec, ConfigError> {
    s.parse().map_err(|_: UnknownDevice| {
        invalid(
            "train.device",
            format!("{s:?}"),
            "use cpu, wgpu, cuda or cuda:N",
        )
    })
}

impl Config {
    /// The device `train.device` names (checked by [`Config::validate`]).
    pub fn device(&self) -> Result<DeviceSpec, ConfigError> {
        parse_device(&self.train.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_equals_builtin_defaults() {
        let parsed = Config::from_toml(DEFAULT_TOML, "default.toml").expect("default.toml parses");
        assert_eq!(parsed, Config::default());
        parsed.validate().expect("defaults are valid");
    }

    #[test]
    fn resolved_config_round_trips() {
        let c = Config::default();
        let again = Config::from_toml(&c.to_toml(), "x").expect("round trip");
        assert_eq!(again, c);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("[train]\nepochz = 3\n", "my.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("epochz"), "{err}");
        assert!(err.contains("my.toml"), "{err}");
        let err = Config::from_toml("[trian]\n", "my.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("trian"), "{err}");
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let err = Config::from_toml("[train]\n\nepochs = \"ten\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("epochs"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn malformed_toml_gives_line_and_column() {
        let err = Config::from_toml("[train\nepochs = 3\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
        assert!(err.contains("column"), "{err}");
    }

    fn invalid_key(mut f: impl FnMut(&mut Config)) -> String {
        let mut c = Config::default();
        f(&mut c);
        match c.validate() {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid key, got {other:?}"),
        }
    }

    #[test]
    fn impossible_values_name_the_key() {
        assert_eq!(invalid_key(|c| c.train.epochs = 0), "train.epochs");
        assert_eq!(invalid_key(|c| c.train.batch_size = 0), "train.batch_size");
        assert_eq!(invalid_key(|c| c.optimizer.lr = 0.0), "optimizer.lr");
        assert_eq!(invalid_key(|c| c.optimizer.lr = -1.0), "optimizer.lr");
        assert_eq!(invalid_key(|c| c.data.val_split = 1.0), "data.val_split");
        assert_eq!(
            invalid_key(|c| c.train.device = "tpu".into()),
            "train.device"
        );
        assert_eq!(
            invalid_key(|c| c.model.layers[2] = LayerSpec::Dropout { rate: 1.0 }),
            "model.layers[2].rate"
        );
        assert_eq!(
            invalid_key(|c| c.data.image_size = [4, 4]),
            "data.image_size"
        );
        assert_eq!(
            invalid_key(|c| {
                c.model.layers.pop();
            }),
            "model.layers[9]"
        );
    }

    #[test]
    fn absurd_layer_sizes_are_refused_not_overflowed() {
        // Found by tests/fuzz_config.rs: the flatten size overflowed usize and panicked.
        let mut c = Config::default();
        c.data.image_size = [1, 36];
        c.model.layers = vec![
            LayerSpec::Conv {
                filters: 512_409_557_603_043_101,
                kernel: 1,
                padding: Padding::Valid,
                activation: Activation::Relu,
                stride: 1,
            },
            LayerSpec::Flatten,
            LayerSpec::Dense {
                units: Units::Classes(ClassesMarker::Classes),
                activation: Activation::None,
            },
        ];
        assert_eq!(invalid_key(|x| *x = c.clone()), "model.layers[0]");
        let mut c = Config::default();
        c.model.layers[9] = LayerSpec::Dense {
            units: Units::Fixed(usize::MAX),
            activation: Activation::Relu,
        };
        assert_eq!(invalid_key(|x| *x = c.clone()), "model.layers[9]");
        c.model.layers[0] = LayerSpec::Conv {
            filters: 16,
            kernel: usize::MAX,
            padding: Padding::Same,
            activation: Activation::Relu,
            stride: 1,
        };
        assert_eq!(invalid_key(|x| *x = c.clone()), "model.layers[0]");
    }

    #[test]
    fn input_too_small_for_pooling_explains() {
        let mut c = Config::default();
        c.data.image_size = [7, 7];
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("too small"), "{err}");
        // 8x8 survives three 2x2 pools (8 -> 4 -> 2 -> 1).
        c.data.image_size = [8, 8];
        c.validate().expect("8x8 fits");
    }

    #[test]
    fn default_shapes_match_keras() {
        let shapes = Config::default().layer_shapes(2).expect("valid");
        assert_eq!(shapes[0], vec![16, 150, 150]);
        assert_eq!(shapes[6], vec![64, 18, 18]);
        assert_eq!(shapes[8], vec![20736]);
        assert_eq!(shapes[10], vec![1]);
        assert_eq!(
            Config::default().layer_shapes(10).expect("valid")[10],
            vec![10]
        );
    }

    #[test]
    fn overrides_apply() {
        let mut c = Config::default();
        c.apply(&Overrides {
            epochs: Some(3),
            batch_size: Some(8),
            image_size: Some([32, 48]),
            lr: Some(0.01),
            no_augment: true,
            grayscale: true,
            ..Overrides::default()
        });
        assert_eq!(c.train.epochs, 3);
        assert_eq!(c.train.batch_size, 8);
        assert_eq!(c.data.image_size, [32, 48]);
        assert!(!c.augment.enabled);
        assert_eq!(c.input_shape(), [1, 32, 48]);
    }

    #[test]
    fn a_file_s_ui_keys_override_the_user_s_where_they_say_something() {
        let user = UiConfig {
            colormap: ColormapName::Magma,
            fps: 20,
            ..UiConfig::default()
        };
        let file = UiConfig {
            graphics: Graphics::Halfblocks,
            ..UiConfig::default()
        };
        let ui = user.clone().overlaid(&file);
        assert_eq!(ui.colormap, ColormapName::Magma);
        assert_eq!(ui.fps, 20);
        assert_eq!(ui.graphics, Graphics::Halfblocks);
        let file = UiConfig {
            colormap: ColormapName::Gray,
            ..UiConfig::default()
        };
        assert_eq!(user.overlaid(&file).colormap, ColormapName::Gray);
    }

    #[test]
    fn devices_parse() {
        assert_eq!(parse_device("cuda:1").expect("ok"), DeviceSpec::Cuda(1));
        assert_eq!(parse_device("wgpu").expect("ok"), DeviceSpec::Wgpu);
        assert!(parse_device("cuda:x").is_err());
    }
}
