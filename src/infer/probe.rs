//! Turn weights and activations into plain snapshots for observers.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};

use crate::config::{Config, LayerSpec};
use crate::data::DataError;
use crate::events::{
    CamMap, CamRequest, Event, FeatureSnapshot, FilterSnapshot, LayerFilters, LayerMaps,
    WarningInfo,
};
use crate::model::explain::{self, CamLayer, Evidence, ExplainError, Method};
use crate::model::{self, Net, ReadError};

/// Why a probe image gave no feature maps; shown as a warning, it names the image.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("probe {0}")]
    Image(#[from] DataError),
    #[error("probe image {image}: cannot start a thread to read it: {error}")]
    Thread {
        image: String,
        error: std::io::Error,
    },
}

/// The conv layers' weights as plain numbers.
pub fn filters(net: &Net, epoch: usize) -> Result<Event, ReadError> {
    let mut layers = Vec::new();
    for (i, p) in net.convs.iter().enumerate() {
        let w = p.weight.val();
        let [out_channels, in_channels, kh, kw] = w.dims();
        layers.push(LayerFilters {
            name: if i == 0 {
                "conv2d".into()
            } else {
                format!("conv2d_{i}")
            },
            out_channels,
            in_channels,
            kernel: [kh, kw],
            weights: model::read_f32(w, "filter weights")?,
        });
    }
    Ok(Event::Filters(Box::new(FilterSnapshot {
        epoch,
        at_epoch_end: false,
        layers,
    })))
}

/// Computes feature maps of one image.
pub struct Probe {
    cfg: Config,
    names: Vec<String>,
    /// The Grad-CAM each snapshot carries, while an observer asks for one.
    cam: Option<CamRequest>,
}

impl Probe {
    /// Prepare for the configured network.
    #[must_use]
    pub fn new(cfg: &Config, classes: &[String]) -> Self {
        let names = model::summary::summarize(cfg, classes.len())
            .map(|rows| rows.into_iter().map(|r| r.name).collect())
            .unwrap_or_default();
        Self {
            cfg: cfg.clone(),
            names,
            cam: None,
        }
    }

    /// Add Grad-CAM to the snapshots from now on (`None`: no more).
    pub fn set_cam(&mut self, cam: Option<CamRequest>) {
        self.cam = cam;
    }

    /// Grad-CAM of `x` as `request` picks it: the layer `request.layer` steps from the default
    /// through the conv layers and "all averaged", the class `request.class` steps from
    /// `predicted`.
    pub fn grad_cam(
        &self,
        net: &Net,
        x: Tensor<4>,
        predicted: usize,
        request: CamRequest,
    ) -> Result<CamMap, ExplainError> {
        let convs = explain::conv_layers(net);
        let default = explain::default_layer(net).ok_or(ExplainError::NoConv)?;
        let start = convs.iter().position(|&i| i == default).unwrap_or(0);
        let (layer, name) = match convs.get((start + request.layer) % (convs.len() + 1)) {
            Some(&i) => (
                CamLayer::Step(i),
                self.names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("layer {i}")),
            ),
            None => (CamLayer::AllConv, "all conv layers".to_string()),
        };
        let class = (predicted + request.class) % explain::class_count(net);
        let found = explain::explain(net, x, Method::GradCam, layer, Some(class))?;
        let probability = found.probabilities.get(class).copied().unwrap_or(0.0);
        let (width, height) = found.evidence.size();
        let values = match found.evidence {
            Evidence::Map(heat) => heat.values,
            Evidence::NoPositiveEvidence { .. } => Vec::new(),
        };
        Ok(CamMap {
            layer: name,
            class,
            probability,
            width,
            height,
            values,
        })
    }

    /// Run `image` through the current weights; an unreadable image gives `Event::Warning`.
    pub fn feature_maps(&self, net: &Net, image: &Path, epoch: usize) -> Result<Event, ReadError> {
        match read(image, &self.cfg) {
            Ok(input) => self.feature_maps_of(net, image, &input, epoch),
            Err(e) => Ok(Event::Warning(WarningInfo {
                message: e.to_string(),
            })),
        }
    }

    /// Run `input`, the pixels of `image` as [`read`] gives them, through the current weights.
    pub fn feature_maps_of(
        &self,
        net: &Net,
        image: &Path,
        input: &[f32],
        epoch: usize,
    ) -> Result<Event, ReadError> {
        let shape = self.cfg.input_shape();
        let eval = net.valid();
        let device = eval
            .convs
            .first()
            .map_or_else(burn::tensor::Device::flex, |p| p.weight.val().device());
        let x = Tensor::<4>::from_data(
            TensorData::new(input.to_vec(), [1, shape[0], shape[1], shape[2]]),
            &device,
        );
        let cam_input = self.cam.map(|request| (request, x.clone()));
        let out = eval.forward(x, false, true);
        let super::Classified {
            class: predicted,
            probability,
            probabilities,
        } = super::classify(out.logits)?
            .pop()
            .unwrap_or(super::Classified {
                class: 0,
                probability: f32::NEG_INFINITY,
                probabilities: Vec::new(),
            });
        let mut layers = Vec::new();
        for (index, t) in out.activations {
            let [_, channels, height, width] = t.dims();
            let name = self
                .names
                .get(index)
                .cloned()
                .unwrap_or_else(|| format!("layer {index}"));
            let kind = match self.cfg.model.layers.get(index) {
                Some(LayerSpec::Conv { .. }) => "conv",
                _ => "pool",
            };
            tracing::trace!("probe layer {name} ({kind}) {channels}x{height}x{width}");
            layers.push(LayerMaps {
                name,
                channels,
                height,
                width,
                data: model::read_f32(t, "feature maps")?,
            });
        }
        // Looking inside never stops the training: a Grad-CAM that fails is logged, not shown.
        let cam = cam_input.and_then(|(request, x)| {
            self.grad_cam(net, x, predicted, request)
                .inspect_err(|e| tracing::warn!("Grad-CAM of {}: {e}", image.display()))
                .ok()
        });
        // The network sees rescaled pixels; observers get them as 0..1 for display.
        let scale = self.cfg.data.rescale * 255.0;
        let display: Vec<f32> = input.iter().map(|v| (v / scale).clamp(0.0, 1.0)).collect();
        Ok(Event::FeatureMaps(Box::new(FeatureSnapshot {
            epoch,
            at_epoch_end: false,
            image: image.to_path_buf(),
            input: display,
            input_shape: shape,
            predicted,
            probability,
            probabilities,
            layers,
            cam,
            compare: None,
        })))
    }
}

/// Read and decode a probe image as the network sees it; the error is the warning to show
/// (it names the image).
pub fn read(image: &Path, cfg: &Config) -> Result<Vec<f32>, ProbeError> {
    crate::data::load_image(image, cfg).map_err(|e| {
        tracing::warn!("probe {}: {e}", image.display());
        ProbeError::Image(e)
    })
}

/// What a [`Loader`] hands back: the request's number, the image and its pixels or why not.
type Loaded = (u64, PathBuf, Result<Vec<f32>, ProbeError>);

/// Reads probe images on threads of their own, so that the thread asking (the training) never
/// waits on a file: a slow disk, a network mount, a huge file. Only the newest request's result
/// is handed back; an older one still being read is dropped when it ends.
pub struct Loader {
    cfg: Config,
    done_tx: Sender<Loaded>,
    done: Receiver<Loaded>,
    asked: u64,
    answered: u64,
}

impl Loader {
    /// A loader decoding for the configured input.
    #[must_use]
    pub fn new(cfg: &Config) -> Self {
        let (done_tx, done) = std::sync::mpsc::channel();
        Self {
            cfg: cfg.clone(),
            done_tx,
            done,
            asked: 0,
            answered: 0,
        }
    }

    /// Start reading `image`; what an earlier request reads is no longer wanted.
    pub fn request(&mut self, image: PathBuf) {
        self.asked += 1;
        let (id, tx, cfg) = (self.asked, self.done_tx.clone(), self.cfg.clone());
        let shown = image.display().to_string();
        let spawned = std::thread::Builder::new()
            .name("probe-reader".into())
            .spawn(move || {
                let read = read(&image, &cfg);
                // The asker may be gone (the run ended): nothing to hand back then.
                let _ = tx.send((id, image, read));
            });
        if let Err(e) = spawned {
            let _ = self.done_tx.send((
                id,
                PathBuf::from(&shown),
                Err(ProbeError::Thread {
                    image: shown,
                    error: e,
                }),
            ));
        }
    }

    /// Whether the newest request is still being read.
    #[must_use]
    pub fn pending(&self) -> bool {
        self.answered < self.asked
    }

    /// The newest request's image and pixels once read, waiting up to `wait` for it.
    pub fn take(&mut self, wait: Duration) -> Option<(PathBuf, Result<Vec<f32>, ProbeError>)> {
        let deadline = std::time::Instant::now() + wait;
        while self.pending() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok((id, image, read)) = self.done.recv_timeout(left) else {
                return None;
            };
            if id == self.asked {
                self.answered = id;
                return Some((image, read));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_probe_is_a_warning_naming_it_once() {
        let cfg = Config::default();
        let classes = ["a".to_string(), "b".to_string()];
        let probe = Probe::new(&cfg, &classes);
        let net = Net::new(&cfg, 2, 1, &burn::tensor::Device::flex()).expect("net");
        let Ok(Event::Warning(w)) = probe.feature_maps(&net, Path::new("/nope/x.png"), 3) else {
            panic!("a warning")
        };
        assert!(
            w.message
                .starts_with("probe image /nope/x.png: cannot read the file"),
            "{}",
            w.message
        );
        assert_eq!(w.message.matches("/nope/x.png").count(), 1, "{}", w.message);
    }
}
