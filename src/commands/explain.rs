//! `convscope explain RUN IMG...`: where the network looked (Grad-CAM, saliency, SmoothGrad),
//! an overlay PNG per image and, with `--json`, the map at the layer's resolution.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use burn::module::Module as _;
use burn::tensor::{Tensor, TensorData};
use serde::Serialize;

use crate::cli::{ExplainArgs, ExplainMethodArg, HeatColormapArg};
use crate::events::SummaryRow;
use crate::infer::restore;
use crate::model::Net;
use crate::model::explain::{self, CamLayer, Evidence, Method};
use crate::model::summary::{self, LayerKind};
use crate::run::RunDir;
use crate::viz::export::{image_stem, sanitise};
use crate::viz::overlay::{self, HeatColormap, ImageWeight};

/// One image explained, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    pub image: PathBuf,
    pub method: &'static str,
    /// The class explained.
    pub class: String,
    pub class_index: usize,
    /// The explained class's probability.
    pub probability: f32,
    /// The class the network predicts.
    pub predicted: String,
    /// The layer's name (`all`: every conv layer averaged; `input` for the gradient methods).
    pub layer: String,
    /// Its index in the layer list (none for `all` and `input`).
    pub layer_index: Option<usize>,
    pub width: usize,
    pub height: usize,
    /// True when the map's maximum was ≤ 0: no map is drawn.
    pub no_positive_evidence: bool,
    /// The normalised map (0..=1), `height` rows of `width`; null with no positive evidence.
    pub map: Option<Vec<Vec<f32>>>,
    /// The overlay PNG written.
    pub png: PathBuf,
}

/// Run the command.
pub fn run(args: &ExplainArgs) -> Result<i32> {
    let run = RunDir::open(&args.run)?;
    let restored = restore::load(&run, args.epoch)?;
    if let Some(note) = &restored.note {
        let _ = writeln!(std::io::stderr(), "convscope: {note}");
    }
    let cfg = &restored.cfg;
    let classes = &restored.classes;
    let net = restored.net.valid();
    let rows = summary::summarize(cfg, classes.len())?;
    let method = match args.method {
        ExplainMethodArg::Gradcam => Method::GradCam,
        ExplainMethodArg::Saliency => Method::Saliency,
        ExplainMethodArg::Smoothgrad => Method::SmoothGrad,
    };
    let layer = resolve_layer(args.layer.as_deref(), &rows, &net)?;
    let class = args
        .class
        .as_deref()
        .map(|name| resolve_class(name, classes))
        .transpose()?;
    let colormap = match args.colormap {
        HeatColormapArg::Jet => HeatColormap::Jet,
        HeatColormapArg::Turbo => HeatColormap::Turbo,
        HeatColormapArg::Magma => HeatColormap::Magma,
    };
    let weight = ImageWeight::ALL
        .into_iter()
        .find(|w| w.name() == args.image_weight)
        .unwrap_or_default();
    let (layer_name, layer_index) = match (method, layer) {
        (Method::GradCam, CamLayer::Step(i)) => (rows[i].name.clone(), Some(i)),
        (Method::GradCam, CamLayer::AllConv) => ("all".to_string(), None),
        _ => ("input".to_string(), None),
    };
    let out = args.out.clone().unwrap_or_else(|| run.export_path());
    std::fs::create_dir_all(&out).with_context(|| {
        format!(
            "cannot create the output folder {}; check the --out path and its permissions",
            out.display()
        )
    })?;

    let job = Job {
        net: &net,
        cfg,
        classes,
        method,
        layer,
        class,
        weight,
        colormap,
        layer_name,
        layer_index,
        out,
    };
    let mut results = Vec::new();
    let mut failures = 0;
    let mut stems = HashSet::new();
    for image in &args.images {
        match crate::data::load_image(image, cfg) {
            Ok(pixels) => results.push(job.explain(image, &pixels, &mut stems)?),
            Err(e) => {
                failures += 1;
                // The error names the image already.
                let _ = writeln!(std::io::stderr(), "convscope: {e}");
            }
        }
    }
    print(&results, args.json)?;
    let _ = writeln!(
        std::io::stderr(),
        "convscope: checkpoint {} of {}",
        restored.checkpoint.name,
        run.path.display()
    );
    Ok(i32::from(failures > 0))
}

/// What every image is explained with.
struct Job<'a> {
    net: &'a Net,
    cfg: &'a crate::config::Config,
    classes: &'a [String],
    method: Method,
    layer: CamLayer,
    class: Option<usize>,
    weight: ImageWeight,
    colormap: HeatColormap,
    layer_name: String,
    layer_index: Option<usize>,
    out: PathBuf,
}

impl Job<'_> {
    /// Explain one image (its network input `pixels`) and write its overlay.
    fn explain(
        &self,
        image: &Path,
        pixels: &[f32],
        stems: &mut HashSet<String>,
    ) -> Result<Explained> {
        let [c, h, w] = self.cfg.input_shape();
        let device = burn::tensor::Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(pixels.to_vec(), [1, c, h, w]), &device);
        let e = explain::explain(self.net, x, self.method, self.layer, self.class)?;
        let class_name = self.classes.get(e.class).cloned().unwrap_or_default();
        let predicted = crate::model::argmax(&e.probabilities).0;
        let photo = overlay::image_from_planar(pixels, c, w, h, self.cfg.data.rescale);
        let picture = match &e.evidence {
            Evidence::Map(map) => overlay::overlay(&photo, map, self.weight, self.colormap),
            Evidence::NoPositiveEvidence { .. } => {
                let _ = writeln!(
                    std::io::stderr(),
                    "convscope: {}: no positive evidence for {class_name} at {}",
                    image.display(),
                    self.layer_name
                );
                photo
            }
        };
        let stem = unique(&image_stem(image, "image"), stems);
        let png = self.out.join(format!(
            "explain-{stem}-{}-{}-{}.png",
            self.method.name(),
            sanitise(&self.layer_name),
            sanitise(&class_name)
        ));
        save(&picture, &png)?;
        let (width, height) = e.evidence.size();
        Ok(Explained {
            image: image.to_path_buf(),
            method: self.method.name(),
            class: class_name,
            class_index: e.class,
            probability: e.probabilities.get(e.class).copied().unwrap_or(f32::NAN),
            predicted: self.classes.get(predicted).cloned().unwrap_or_default(),
            layer: self.layer_name.clone(),
            layer_index: self.layer_index,
            width,
            height,
            no_positive_evidence: e.evidence.map().is_none(),
            map: e.evidence.map().map(|m| {
                m.values
                    .chunks(m.width.max(1))
                    .map(<[f32]>::to_vec)
                    .collect()
            }),
            png,
        })
    }
}

/// The results as JSON or as a line per image.
fn print(results: &[Explained], json: bool) -> Result<()> {
    let mut stdout = std::io::stdout();
    if json {
        let _ = writeln!(stdout, "{}", serde_json::to_string_pretty(results)?);
        return Ok(());
    }
    for r in results {
        let _ = writeln!(
            stdout,
            "{}  {} {:.4}  {} at {} ({}x{}){}  -> {}",
            r.image.display(),
            r.class,
            r.probability,
            r.method,
            r.layer,
            r.width,
            r.height,
            if r.no_positive_evidence {
                "  no positive evidence"
            } else {
                ""
            },
            r.png.display()
        );
    }
    Ok(())
}

/// `--layer`: a conv layer's summary name, its index in the layer list, or `all`; none: the
/// last conv before its pool.
fn resolve_layer(spec: Option<&str>, rows: &[SummaryRow], net: &Net) -> Result<CamLayer> {
    let convs: Vec<String> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| LayerKind::of(&r.kind) == LayerKind::Conv2D)
        .map(|(i, r)| format!("{} ({i})", r.name))
        .collect();
    let choices = format!("conv layers: {}, or all", convs.join(", "));
    let Some(spec) = spec else {
        return explain::default_layer(net)
            .map(CamLayer::Step)
            .context("the network has no conv layer to explain");
    };
    if spec == "all" {
        return Ok(CamLayer::AllConv);
    }
    let index = spec
        .parse::<usize>()
        .ok()
        .or_else(|| rows.iter().position(|r| r.name == spec));
    match index.and_then(|i| rows.get(i).map(|r| (i, r))) {
        Some((i, r)) if LayerKind::of(&r.kind) == LayerKind::Conv2D => Ok(CamLayer::Step(i)),
        Some((_, r)) => bail!(
            "--layer {spec}: {} is a {}, not a conv layer; {choices}",
            r.name,
            r.kind
        ),
        None => bail!("--layer {spec}: no such layer; {choices}"),
    }
}

/// `--class`: a class name of the run.
fn resolve_class(name: &str, classes: &[String]) -> Result<usize> {
    classes.iter().position(|c| c == name).with_context(|| {
        format!(
            "--class {name}: no such class; the run's classes are {}",
            classes.join(", ")
        )
    })
}

/// `stem`, with `-2`, `-3`, ... added when an earlier image had the same one.
fn unique(stem: &str, seen: &mut HashSet<String>) -> String {
    let mut name = stem.to_string();
    let mut n = 1;
    while !seen.insert(name.clone()) {
        n += 1;
        name = format!("{stem}-{n}");
    }
    name
}

fn save(picture: &crate::viz::Raster, path: &Path) -> Result<()> {
    picture.to_rgb_image().save(path).with_context(|| {
        format!(
            "cannot write {}; check that the --out folder is writable",
            path.display()
        )
    })
}
