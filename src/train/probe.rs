//! Turn weights and activations into plain snapshots for observers.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};

use crate::config::{Config, LayerSpec};
use crate::events::{Event, FeatureSnapshot, FilterSnapshot, LayerFilters, LayerMaps, WarningInfo};
use crate::model::{self, Net};

/// The conv layers' weights as plain numbers.
#[must_use]
pub fn filters(net: &Net, epoch: usize) -> Event {
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
            weights: w.into_data().try_to_vec::<f32>().unwrap_or_default(),
        });
    }
    Event::Filters(Box::new(FilterSnapshot {
        epoch,
        at_epoch_end: false,
        layers,
    }))
}

/// Computes feature maps of one image.
pub struct Probe {
    cfg: Config,
    names: Vec<String>,
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
        }
    }

    /// Run `image` through the current weights; an unreadable image gives `Event::Warning`.
    pub fn feature_maps(&self, net: &Net, image: &Path, epoch: usize) -> Event {
        let input = match crate::data::load_image(image, &self.cfg) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("probe {}: {e}", image.display());
                return Event::Warning(WarningInfo {
                    // The error names the image already.
                    message: format!("probe {e}"),
                });
            }
        };
        let shape = self.cfg.input_shape();
        let eval = net.valid();
        let device = eval
            .convs
            .first()
            .map_or_else(burn::tensor::Device::flex, |p| p.weight.val().device());
        let x = Tensor::<4>::from_data(
            TensorData::new(input.clone(), [1, shape[0], shape[1], shape[2]]),
            &device,
        );
        let out = eval.forward(x, false, true);
        let probabilities: Vec<f32> = model::probabilities(out.logits)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        let (predicted, probability) = model::argmax(&probabilities);
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
                data: t.into_data().try_to_vec::<f32>().unwrap_or_default(),
            });
        }
        // The network sees rescaled pixels; observers get them as 0..1 for display.
        let scale = self.cfg.data.rescale * 255.0;
        let display: Vec<f32> = input.iter().map(|v| (v / scale).clamp(0.0, 1.0)).collect();
        Event::FeatureMaps(Box::new(FeatureSnapshot {
            epoch,
            at_epoch_end: false,
            image: image.to_path_buf(),
            input: display,
            input_shape: shape,
            predicted,
            probability,
            probabilities,
            layers,
        }))
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
        let Event::Warning(w) = probe.feature_maps(&net, Path::new("/nope/x.png"), 3) else {
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
