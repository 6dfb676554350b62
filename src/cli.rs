//! Command-line definitions (clap). Every flag also reads a `CONVSCOPE_*` environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{ColorSetting, ColormapName, ConvImpl, Graphics, Overrides};
use crate::session::Screen;
use crate::yesno::parse_bool;

/// Train a convolutional network on a folder of images and watch it learn, in the terminal.
#[derive(Debug, Parser)]
#[command(
    name = "convscope",
    version = env!("CONVSCOPE_LONG_VERSION"),
    about,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Generate a small synthetic dataset and train the tutorial network on it (downloads nothing).
    Demo(DemoArgs),
    /// Train on an image folder (one sub-folder per class).
    Train(TrainArgs),
    /// Continue an interrupted run exactly where it stopped.
    Resume(ResumeArgs),
    /// Attach the TUI to a run directory, live or finished.
    View(ViewArgs),
    /// Print the Keras-style model summary: layers, output shapes, parameters.
    Summary(SummaryArgs),
    /// Measure training and data-pipeline speed.
    Bench(BenchArgs),
    /// Class and probability for each image, from a run's checkpoint.
    Predict(PredictArgs),
    /// Where the network looked: Grad-CAM, saliency or SmoothGrad over each image, as a PNG (and
    /// JSON); `--maximize LAYER`: what each filter of a conv layer looks for.
    Explain(ExplainArgs),
    /// Validation analysis of one epoch: accuracy, confusion matrix, per-class metrics, most wrong, flipped, label noise.
    Report(ReportArgs),
    /// Write PNG pictures of filters, feature maps and training curves, and a metrics CSV.
    Export(ExportArgs),
    /// Print a run's pictures (filters, feature maps, curves, confusion matrix) in the terminal.
    Show(ShowArgs),
    /// Make a run directory from a model trained elsewhere (Keras .keras / .weights.h5 / .h5, PyTorch .pt / .pth, .safetensors).
    Import(ImportArgs),
    /// Write a run's weights as a file PyTorch (.safetensors) or Keras (.keras, .weights.h5) loads.
    ExportWeights(ExportWeightsArgs),
    /// Print a shell completion script, e.g. `convscope completions bash > ~/.local/share/bash-completion/completions/convscope`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff), e.g. `convscope manpage > ~/.local/share/man/man1/convscope.1`.
    Manpage,
    /// Run one training step under this process's memory limit (started by `train` and
    /// `resume` under `ulimit -v`; the config comes on stdin).
    #[command(name = "memory-trial", hide = true)]
    MemoryTrial(MemoryTrialArgs),
}

/// `convscope memory-trial` (hidden).
#[derive(Debug, Args, Clone)]
pub struct MemoryTrialArgs {
    /// Classes of the network to build.
    #[arg(long)]
    pub classes: usize,
}

/// `convscope completions`.
#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `convscope export`.
#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    /// The run directory.
    pub run: PathBuf,
    /// Use the checkpoint of this epoch (default: the newest).
    #[arg(long)]
    pub epoch: Option<usize>,
    /// Image to draw feature maps for; repeat for several (default: the run's sample photos).
    #[arg(long = "image", value_name = "IMG")]
    pub images: Vec<PathBuf>,
    /// Folder to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Compare two images (two --image, A then B): per layer the A, B and A−B sheets with one
    /// scale per channel for both, and a CSV of the channels' means and class selectivity.
    #[arg(long)]
    pub compare: bool,
    /// The order of the channels in --compare's sheets and CSV: by |mean A − mean B| or by class
    /// selectivity on the validation set (from the run's unit health).
    #[arg(long, value_enum, default_value = "diff", requires = "compare")]
    pub order: CompareOrder,
}

/// `convscope export --compare --order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareOrder {
    Diff,
    Selectivity,
}

/// `convscope import`.
#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    /// The model file: .keras, .weights.h5, .h5, .pt, .pth or .safetensors.
    pub file: PathBuf,
    /// The run directory to make (new, or an empty folder).
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// Config file (TOML): the network for files that do not describe it (.weights.h5, PyTorch,
    /// .safetensors; default: the tutorial network), and the training settings.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Class names in index order, comma-separated (default: the file's, else the --data
    /// folder's, else class0, class1, ...).
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    pub classes: Option<Vec<String>>,
    /// Image folder (one sub-folder per class) that `convscope resume RUN --epochs N` goes on
    /// training on.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Validation image folder for that training.
    #[arg(long, value_name = "DIR", requires = "data")]
    pub val: Option<PathBuf>,
    /// Print every tensor (name, shape, target layer, conversion) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `convscope export-weights`.
#[derive(Debug, Args, Clone)]
pub struct ExportWeightsArgs {
    /// The run directory.
    pub run: PathBuf,
    /// Use the checkpoint of this epoch (default: the newest).
    #[arg(long)]
    pub epoch: Option<usize>,
    /// File format (default: from the --out name: .safetensors, .keras or .weights.h5).
    #[arg(long, value_enum)]
    pub format: Option<WeightsFormat>,
    /// The file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `export-weights --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeightsFormat {
    /// PyTorch names and layout (`layers.{i}.weight`), the config in the metadata.
    Safetensors,
    /// A Keras 3 `.keras` model (or, for an --out ending in .h5, a `.weights.h5`).
    Keras,
}

/// `convscope report`.
#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// The run directory.
    pub run: PathBuf,
    /// Report this epoch (default: the newest recorded).
    #[arg(long)]
    pub epoch: Option<usize>,
    /// How many images the most-wrong and ambiguous lists show.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `explain --tier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TierArg {
    Quick,
    #[value(alias = "regularized")]
    Regularised,
}

/// `convscope predict`.
#[derive(Debug, Args, Clone)]
pub struct PredictArgs {
    /// The run directory.
    pub run: PathBuf,
    /// Images to classify.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Use the checkpoint of this epoch (default: the newest).
    #[arg(long)]
    pub epoch: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long, conflicts_with = "show")]
    pub json: bool,
    /// Print each image in the terminal with its class and probability.
    #[arg(long)]
    pub show: bool,
    /// Terminal graphics for --show [ui.graphics].
    #[arg(long, env = "CONVSCOPE_GRAPHICS", value_enum)]
    pub graphics: Option<GraphicsArg>,
}

/// `convscope explain`.
#[derive(Debug, Args, Clone)]
pub struct ExplainArgs {
    /// The run directory.
    pub run: PathBuf,
    /// Images to explain.
    #[arg(required_unless_present = "maximize", conflicts_with = "maximize")]
    pub images: Vec<PathBuf>,
    /// Make, for every filter of this conv layer (e.g. conv2d_2), an image that drives it hard
    /// (activation maximisation); cached in the run directory.
    #[arg(long, value_name = "LAYER")]
    pub maximize: Option<String>,
    /// Filters to maximise, e.g. `0-15` or `0,3,8-11` (default: all of the layer's).
    #[arg(long, value_name = "LIST", requires = "maximize")]
    pub filters: Option<String>,
    /// Maximisation recipe: quick (30 steps of gradient ascent) or regularised (Fourier
    /// parameterisation, random transforms, 256 Adam steps; slower, more natural).
    #[arg(long, value_enum, default_value = "quick", requires = "maximize")]
    pub tier: TierArg,
    /// Seed of the random start images and transforms.
    #[arg(long, default_value_t = 0, requires = "maximize")]
    pub seed: u64,
    /// How the map is made.
    #[arg(long, value_enum, default_value = "gradcam")]
    pub method: ExplainMethodArg,
    /// Grad-CAM's layer: a conv layer's name as the summary shows it (conv2d_2), its index in the
    /// layer list, or `all` (every conv layer averaged) [default: the last conv before its pool].
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,
    /// Explain this class (its name) [default: the predicted class].
    #[arg(long, value_name = "NAME")]
    pub class: Option<String>,
    /// Use the checkpoint of this epoch (default: the newest).
    #[arg(long)]
    pub epoch: Option<usize>,
    /// Folder the overlay PNGs go to (created if missing) [default: the run's export/ folder].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print JSON (per image: the class explained, its probability, the layer, the map at the
    /// layer's resolution) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The heat's colormap.
    #[arg(long, value_enum, default_value = "jet")]
    pub colormap: HeatColormapArg,
    /// The image's share of the overlay: 0.3, 0.5, 0.7, or heat (the map alone).
    #[arg(long, default_value = "0.5", value_parser = ["0.3", "0.5", "0.7", "heat"])]
    pub image_weight: String,
}

/// `explain --method`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExplainMethodArg {
    Gradcam,
    Saliency,
    Smoothgrad,
}

/// `explain --colormap`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HeatColormapArg {
    Jet,
    Turbo,
    Magma,
}

/// `convscope show`.
#[derive(Debug, Args, Clone)]
pub struct ShowArgs {
    /// The run directory.
    pub run: PathBuf,
    /// What to print (default: filters, feature maps and curves).
    #[arg(value_enum)]
    pub what: Option<ShowWhat>,
    /// Only this layer's filters or feature maps (e.g. conv2d_1).
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,
    /// Image to draw feature maps for; repeat for several (default: as `export`).
    #[arg(long = "image", value_name = "IMG")]
    pub images: Vec<PathBuf>,
    /// Use the checkpoint of this epoch (default: the newest).
    #[arg(long)]
    pub epoch: Option<usize>,
    /// Terminal graphics [ui.graphics].
    #[arg(long, env = "CONVSCOPE_GRAPHICS", value_enum)]
    pub graphics: Option<GraphicsArg>,
}

/// What `convscope show` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowWhat {
    /// Every conv layer's filters.
    Filters,
    /// Every layer's feature maps for each image.
    Maps,
    /// Loss and accuracy per epoch.
    Curves,
    /// The validation confusion matrix, computed from the checkpoint.
    Confusion,
}

/// Flags shared by commands that train.
#[derive(Debug, Args, Clone, Default)]
#[allow(clippy::struct_excessive_bools)] // each bool is one independent command-line switch
pub struct TrainFlags {
    /// Config file (TOML); the built-in default is the Keras tutorial.
    #[arg(long, env = "CONVSCOPE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Run directory (default: runs/<timestamp>).
    #[arg(long, env = "CONVSCOPE_RUN")]
    pub run: Option<PathBuf>,
    /// Plain progress on stdout instead of the TUI (warnings and errors on stderr).
    #[arg(long, env = "CONVSCOPE_HEADLESS", value_parser = parse_bool)]
    pub headless: bool,
    /// Train in a background process of its own (survives the terminal closing) and attach a viewer.
    #[arg(long, conflicts_with = "headless")]
    pub detach: bool,
    /// Compute device: cpu, wgpu, cuda or cuda:N.
    #[arg(long, env = "CONVSCOPE_DEVICE")]
    pub device: Option<String>,
    /// Number of epochs [train.epochs].
    #[arg(long, env = "CONVSCOPE_EPOCHS")]
    pub epochs: Option<usize>,
    /// Images per batch [train.batch_size].
    #[arg(long, env = "CONVSCOPE_BATCH_SIZE")]
    pub batch_size: Option<usize>,
    /// Input size, `N` or `HxW` [data.image_size].
    #[arg(long, env = "CONVSCOPE_IMAGE_SIZE", value_parser = parse_size)]
    pub image_size: Option<[u32; 2]>,
    /// Adam learning rate [optimizer.lr].
    #[arg(long, env = "CONVSCOPE_LR")]
    pub lr: Option<f64>,
    /// Random seed [train.seed].
    #[arg(long, env = "CONVSCOPE_SEED")]
    pub seed: Option<u64>,
    /// Turn augmentation off [augment.enabled = false].
    #[arg(long, env = "CONVSCOPE_NO_AUGMENT", value_parser = parse_bool)]
    pub no_augment: bool,
    /// One grey channel instead of RGB [data.color_mode = "grayscale"].
    #[arg(long, env = "CONVSCOPE_GRAYSCALE", value_parser = parse_bool)]
    pub grayscale: bool,
    /// CPU convolution kernels [model.conv_impl].
    #[arg(long, env = "CONVSCOPE_CONV_IMPL", value_enum)]
    pub conv_impl: Option<ConvImplArg>,
    /// Terminal graphics [ui.graphics].
    #[arg(long, env = "CONVSCOPE_GRAPHICS", value_enum)]
    pub graphics: Option<GraphicsArg>,
    /// Colour depth: auto (COLORTERM, tmux, or ask the terminal), truecolor or 256 [ui.color].
    #[arg(long, env = "CONVSCOPE_COLOR", value_enum)]
    pub color: Option<ColorArg>,
}

/// `convscope demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    #[command(flatten)]
    pub flags: TrainFlags,
    /// Synthetic images per class.
    #[arg(long, default_value_t = 400)]
    pub per_class: usize,
}

/// `convscope train`.
#[derive(Debug, Args, Clone)]
pub struct TrainArgs {
    /// Image folder: one sub-folder per class, sorted names give the class indices.
    pub data: PathBuf,
    /// Validation folder with the same class sub-folders.
    #[arg(long, env = "CONVSCOPE_VAL", conflicts_with = "val_split")]
    pub val: Option<PathBuf>,
    /// Fraction of each class held out for validation [data.val_split].
    #[arg(long, env = "CONVSCOPE_VAL_SPLIT")]
    pub val_split: Option<f32>,
    #[command(flatten)]
    pub flags: TrainFlags,
}

/// `convscope resume`.
#[derive(Debug, Args, Clone)]
pub struct ResumeArgs {
    /// The run directory to continue.
    pub run: PathBuf,
    /// Plain progress on stdout instead of the TUI (warnings and errors on stderr).
    #[arg(long, env = "CONVSCOPE_HEADLESS", value_parser = parse_bool)]
    pub headless: bool,
    /// Train in a background process of its own (survives the terminal closing) and attach a viewer.
    #[arg(long, conflicts_with = "headless")]
    pub detach: bool,
    /// Continue on this compute device: cpu, wgpu, cuda or cuda:N (default: the run's own).
    #[arg(long)]
    pub device: Option<String>,
    /// Continue with this many images per batch, from the next epoch on (default: the run's own).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Train until this many epochs in total (default: the run's own setting).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Continue with this Adam learning rate (e.g. after the loss diverged).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Colour depth: auto (COLORTERM, tmux, or ask the terminal), truecolor or 256 [ui.color].
    #[arg(long, env = "CONVSCOPE_COLOR", value_enum)]
    pub color: Option<ColorArg>,
}

/// `convscope view`.
#[derive(Debug, Args, Clone)]
pub struct ViewArgs {
    /// The run directory (or a folder of runs, to list them).
    pub run: PathBuf,
    /// Config file whose [ui] preferences apply over the run's own.
    #[arg(long, env = "CONVSCOPE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Terminal graphics [ui.graphics].
    #[arg(long, env = "CONVSCOPE_GRAPHICS", value_enum)]
    pub graphics: Option<GraphicsArg>,
    /// Colour depth: auto (COLORTERM, tmux, or ask the terminal), truecolor or 256 [ui.color].
    #[arg(long, env = "CONVSCOPE_COLOR", value_enum)]
    pub color: Option<ColorArg>,
    /// Colormap of filters and feature maps [ui.colormap].
    #[arg(long, env = "CONVSCOPE_COLORMAP", value_enum)]
    pub colormap: Option<ColormapArg>,
    /// Most kilobytes one sixel picture may take, for slow links; 0: no limit [ui.sixel_max_kb].
    #[arg(long, env = "CONVSCOPE_SIXEL_MAX_KB")]
    pub sixel_max_kb: Option<u32>,
    /// Average kilobytes a second that epoch-end picture refreshes may write; what a key asks
    /// for is drawn at once; 0: every epoch [ui.refresh_kb_per_sec].
    #[arg(long, env = "CONVSCOPE_REFRESH_KB_PER_SEC")]
    pub refresh_kb_per_sec: Option<u32>,
}

/// `convscope summary`.
#[derive(Debug, Args, Clone)]
pub struct SummaryArgs {
    /// A run directory: its own config and classes (default: the built-in config, 2 classes).
    pub run: Option<PathBuf>,
    /// Config file (TOML); a run's `RUN/config.toml` brings the run's classes too.
    #[arg(long, env = "CONVSCOPE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Number of classes (2 gives one logit, as in the tutorial) [default: the run's, else 2].
    #[arg(long)]
    pub classes: Option<usize>,
    /// Input size, `N` or `HxW`.
    #[arg(long, value_parser = parse_size)]
    pub image_size: Option<[u32; 2]>,
    /// One grey channel instead of RGB.
    #[arg(long)]
    pub grayscale: bool,
}

/// `convscope bench`.
#[derive(Debug, Args, Clone)]
#[allow(clippy::struct_excessive_bools)] // independent switches
pub struct BenchArgs {
    /// Compute device: cpu, wgpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Images per batch.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Input size, `N` or `HxW`.
    #[arg(long, default_value = "150", value_parser = parse_size)]
    pub image_size: [u32; 2],
    /// Timed training steps (after the warm-up steps).
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Untimed steps first (the first compiles, and on a GPU tunes, the kernels).
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Also time the data pipeline on generated JPEGs.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pipeline: bool,
    /// CPU convolution kernels.
    #[arg(long, value_enum, default_value = "fast")]
    pub conv_impl: ConvImplArg,
    /// Also time drawing every TUI tab at 200x60 with the tutorial network's maps.
    #[arg(long)]
    pub ui: bool,
    /// Only the UI timing (no training, no pipeline).
    #[arg(long)]
    pub ui_only: bool,
    /// Only time explaining one image (Grad-CAM, saliency, SmoothGrad): p50 of --steps runs.
    #[arg(long)]
    pub explain: bool,
    /// Only time activation maximisation: the quick and regularised tiers for all 64 filters of the tutorial network's third conv layer.
    #[arg(long)]
    pub maximize: bool,
    /// Steps of the regularised tier in --maximize (its recipe: 256).
    #[arg(long, default_value_t = 256, requires = "maximize")]
    pub maximize_steps: usize,
    /// Also time every op of a training step (conv, pool, dense, Adam) with burn's ops, the fast ops, and the fast ops with conv+pool fused (what training runs).
    #[arg(long)]
    pub breakdown: bool,
    /// Also train a folder as `convscope train` does (augmentation, validation, a checkpoint every epoch) and print its rate against the step's, the overhead, and peak memory per epoch.
    #[arg(long)]
    pub end_to_end: bool,
    /// The image folder of --end-to-end (one sub-folder per class); default: generated photo-sized JPEGs.
    #[arg(long, value_name = "DIR", requires = "end_to_end")]
    pub folder: Option<PathBuf>,
    /// Images generated for --end-to-end, and random images per epoch of the --peers runs.
    #[arg(long, default_value_t = 512)]
    pub images: usize,
    /// Epochs of --end-to-end and of the --peers runs (their best epoch after the first counts).
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Also time the same step in TensorFlow/Keras and PyTorch (`pip install tensorflow-cpu tf-keras scipy torch`) and print the ratios.
    #[arg(long)]
    pub peers: bool,
    /// The Python that runs the --peers scripts.
    #[arg(long, value_name = "PATH", default_value = "python3")]
    pub python: PathBuf,
}

/// `--conv-impl`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ConvImplArg {
    Fast,
    Reference,
}

impl From<ConvImplArg> for ConvImpl {
    fn from(v: ConvImplArg) -> Self {
        match v {
            ConvImplArg::Fast => Self::Fast,
            ConvImplArg::Reference => Self::Reference,
        }
    }
}

/// `--colormap`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColormapArg {
    Viridis,
    Magma,
    Gray,
    Diverging,
}

impl From<ColormapArg> for ColormapName {
    fn from(v: ColormapArg) -> Self {
        match v {
            ColormapArg::Viridis => Self::Viridis,
            ColormapArg::Magma => Self::Magma,
            ColormapArg::Gray => Self::Gray,
            ColormapArg::Diverging => Self::Diverging,
        }
    }
}

/// `--graphics`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphicsArg {
    Auto,
    Halfblocks,
    Sixel,
    Kitty,
    Iterm2,
}

impl From<GraphicsArg> for Graphics {
    fn from(v: GraphicsArg) -> Self {
        match v {
            GraphicsArg::Auto => Self::Auto,
            GraphicsArg::Halfblocks => Self::Halfblocks,
            GraphicsArg::Sixel => Self::Sixel,
            GraphicsArg::Kitty => Self::Kitty,
            GraphicsArg::Iterm2 => Self::Iterm2,
        }
    }
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Truecolor,
    #[value(name = "256")]
    Palette256,
}

impl From<ColorArg> for ColorSetting {
    fn from(v: ColorArg) -> Self {
        match v {
            ColorArg::Auto => Self::Auto,
            ColorArg::Truecolor => Self::Truecolor,
            ColorArg::Palette256 => Self::Palette256,
        }
    }
}

/// The environment variable that gave `value` to the flag `arg` (clap's `--epochs <EPOCHS>`),
/// if one did.
fn env_source(arg: &str, value: &str) -> Option<String> {
    fn search(cmd: &clap::Command, long: &str, value: &str) -> Option<String> {
        let here = cmd.get_arguments().find_map(|a| {
            let env = a.get_env()?;
            (a.get_long() == Some(long) && std::env::var_os(env).is_some_and(|v| v == value))
                .then(|| env.to_string_lossy().into_owned())
        });
        here.or_else(|| cmd.get_subcommands().find_map(|c| search(c, long, value)))
    }
    use clap::CommandFactory as _;
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    search(&Cli::command(), long, value)
}

/// Print a command-line error (or the help or version clap answers with) and return the exit
/// status; a bad value that came from an environment variable names the variable.
pub fn report_parse_error(e: &clap::Error) -> i32 {
    use clap::error::{ContextKind, ContextValue};
    use std::io::Write as _;
    if !e.use_stderr() {
        let _ = e.print();
        return e.exit_code();
    }
    let mut text = e.render().to_string();
    if let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        e.get(ContextKind::InvalidArg),
        e.get(ContextKind::InvalidValue),
    ) && let Some(var) = env_source(arg, value)
    {
        text = format!(
            "{}\n\nThe value {value:?} comes from the environment variable {var}: correct it, or unset it (unset {var}).\n",
            text.trim_end()
        );
    }
    let _ = write!(std::io::stderr(), "{text}");
    e.exit_code()
}

/// A value that is not an image size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an image size: use N (square) or HxW, e.g. 150 or 120x160")]
pub struct NotASize(String);

fn parse_size(s: &str) -> Result<[u32; 2], NotASize> {
    let bad = || NotASize(s.to_string());
    let parse = |t: &str| t.trim().parse::<u32>().map_err(|_| bad());
    if let Some((h, w)) = s.split_once(['x', 'X']) {
        Ok([parse(h)?, parse(w)?])
    } else {
        let n = parse(s)?;
        Ok([n, n])
    }
}

impl TrainFlags {
    /// The config overrides these flags ask for.
    #[must_use]
    pub fn overrides(&self, val_split: Option<f32>) -> Overrides {
        Overrides {
            epochs: self.epochs,
            batch_size: self.batch_size,
            image_size: self.image_size,
            lr: self.lr,
            seed: self.seed,
            device: self.device.clone(),
            val_split,
            no_augment: self.no_augment,
            grayscale: self.grayscale,
            conv_impl: self.conv_impl.map(Into::into),
            graphics: self.graphics.map(Into::into),
            color: self.color.map(Into::into),
            ..Overrides::default()
        }
    }

    /// How the training is to be shown.
    #[must_use]
    pub fn screen(&self) -> Screen {
        screen(self.headless, self.detach)
    }
}

fn screen(headless: bool, detach: bool) -> Screen {
    match (headless, detach) {
        (_, true) => Screen::Detach,
        (true, false) => Screen::Headless,
        (false, false) => Screen::Auto,
    }
}

impl ResumeArgs {
    /// The changes to the run's own settings these flags ask for.
    #[must_use]
    pub fn overrides(&self) -> Overrides {
        Overrides {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            device: self.device.clone(),
            color: self.color.map(Into::into),
            ..Overrides::default()
        }
    }

    /// How the training is to be shown.
    #[must_use]
    pub fn screen(&self) -> Screen {
        screen(self.headless, self.detach)
    }
}

impl ViewArgs {
    /// The [ui] settings these flags ask for.
    #[must_use]
    pub fn overrides(&self) -> Overrides {
        Overrides {
            graphics: self.graphics.map(Into::into),
            color: self.color.map(Into::into),
            colormap: self.colormap.map(Into::into),
            sixel_max_kb: self.sixel_max_kb,
            refresh_kb_per_sec: self.refresh_kb_per_sec,
            ..Overrides::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("150").expect("ok"), [150, 150]);
        assert_eq!(parse_size("120x160").expect("ok"), [120, 160]);
        assert!(parse_size("big").unwrap_err().to_string().contains("HxW"));
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn train_flags_override() {
        let cli = Cli::try_parse_from([
            "convscope",
            "train",
            "data",
            "--epochs",
            "3",
            "--no-augment",
            "--image-size",
            "64",
        ])
        .expect("parses");
        let Commands::Train(t) = cli.command else {
            panic!("train")
        };
        let o = t.flags.overrides(t.val_split);
        assert_eq!(o.epochs, Some(3));
        assert!(o.no_augment);
        assert_eq!(o.image_size, Some([64, 64]));
    }
}
