//! What each filter of a run's conv layer looks for: [`crate::model::maximize`] on one
//! checkpoint's network, the layer named as Keras names it, the images cached in the run
//! directory per (checkpoint, layer, tier, seed) so that asking again costs a file read.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use crate::config::LayerSpec;
use crate::infer::restore::Restored;
use crate::model::maximize::{self, MaximizeError, Maximized, Settings};
use crate::model::{Step, summary};
use crate::run::{RunDir, write_atomic};
use crate::viz::Raster;

/// Why no images came back.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("no conv layer named {layer:?}; this network's conv layers are {}", .convs.join(", "))]
    NoSuchLayer { layer: String, convs: Vec<String> },
    #[error("filter {filter} does not exist: {layer} has filters 0-{}", .filters.saturating_sub(1))]
    NoSuchFilter {
        layer: String,
        filter: usize,
        filters: usize,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Maximize(#[from] MaximizeError),
}

/// One filter's picture and what it does to the filter.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterImage {
    pub filter: usize,
    /// The optimised image at the network's input size (grey models as grey RGB).
    pub picture: Raster,
    /// The filter's mean activation (2-pixel border left out) on the random start image.
    pub seed_activation: f32,
    /// The same on the optimised image (before the quick tier's deprocessing).
    pub activation: f32,
    /// The same on the picture (as deprocessed and written).
    pub shown_activation: f32,
    /// Read from the run's cache rather than computed now.
    pub cached: bool,
}

/// The images of one request.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub layer: String,
    pub images: Vec<FilterImage>,
    /// The cache folder.
    pub cache: PathBuf,
    /// Why the new images could not be cached, when they could not.
    pub cache_note: Option<String>,
}

/// The conv layers of `restored`'s network: `(Keras name, forward step, filters)`.
pub fn conv_layers(restored: &Restored) -> Result<Vec<(String, usize, usize)>, ExplainError> {
    let rows = summary::summarize(&restored.cfg, restored.classes.len())?;
    Ok(rows
        .into_iter()
        .zip(&restored.cfg.model.layers)
        .enumerate()
        .filter_map(|(step, (row, layer))| match layer {
            LayerSpec::Conv { filters, .. } => Some((row.name, step, *filters)),
            _ => None,
        })
        .collect())
}

/// One cached filter: the picture sits beside it as a PNG.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct CacheEntry {
    filter: usize,
    seed_activation: f32,
    activation: f32,
    shown_activation: f32,
    steps: usize,
    tv_weight: f32,
}

fn entry_path(dir: &Path, filter: usize) -> PathBuf {
    dir.join(format!("filter-{filter:03}.json"))
}

fn picture_path(dir: &Path, filter: usize) -> PathBuf {
    dir.join(format!("filter-{filter:03}.png"))
}

/// The cached image of `filter`, if one was made with these settings.
fn read_cached(dir: &Path, filter: usize, settings: &Settings) -> Option<FilterImage> {
    let text = std::fs::read_to_string(entry_path(dir, filter)).ok()?;
    let entry: CacheEntry = serde_json::from_str(&text).ok()?;
    if entry.filter != filter
        || entry.steps != settings.steps
        || entry.tv_weight.to_bits() != settings.tv_weight.to_bits()
    {
        return None;
    }
    let image = image::open(picture_path(dir, filter)).ok()?.to_rgb8();
    let picture = Raster::from_fn(image.width() as usize, image.height() as usize, |x, y| {
        image.get_pixel(x as u32, y as u32).0
    });
    Some(FilterImage {
        filter,
        picture,
        seed_activation: entry.seed_activation,
        activation: entry.activation,
        shown_activation: entry.shown_activation,
        cached: true,
    })
}

/// Write one filter's picture, then its entry (the entry's presence marks it complete).
fn write_cached(dir: &Path, image: &FilterImage, settings: &Settings) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut png = Vec::new();
    image
        .picture
        .to_rgb_image()
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("cannot encode a PNG: {e}"))?;
    write_atomic(&picture_path(dir, image.filter), &png).map_err(|e| e.to_string())?;
    let entry = CacheEntry {
        filter: image.filter,
        seed_activation: image.seed_activation,
        activation: image.activation,
        shown_activation: image.shown_activation,
        steps: settings.steps,
        tv_weight: settings.tv_weight,
    };
    let text = serde_json::to_string(&entry).map_err(|e| e.to_string())?;
    write_atomic(&entry_path(dir, image.filter), text.as_bytes()).map_err(|e| e.to_string())
}

/// An image `[c, h, w]` in `[0, 1]` as a picture (one channel as grey).
pub fn picture(image: &[f32], [c, h, w]: [usize; 3]) -> Raster {
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    Raster::from_fn(w, h, |x, y| {
        let at = |ch: usize| byte(image[(ch.min(c - 1) * h + y) * w + x]);
        [at(0), at(1), at(2)]
    })
}

/// Images for `filters` (all of the layer's when `None`) of conv layer `layer` of `restored`
/// (a checkpoint of `run`): the cached ones read, the others optimised together and cached.
pub fn explain(
    run: &RunDir,
    restored: &Restored,
    layer: &str,
    filters: Option<&[usize]>,
    settings: &Settings,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Outcome, ExplainError> {
    let convs = conv_layers(restored)?;
    let Some((_, step, count)) = convs.iter().find(|(name, ..)| name == layer).cloned() else {
        return Err(ExplainError::NoSuchLayer {
            layer: layer.to_string(),
            convs: convs.into_iter().map(|(name, ..)| name).collect(),
        });
    };
    debug_assert!(matches!(restored.net.steps[step], Step::Conv { .. }));
    let wanted: Vec<usize> = filters.map_or_else(|| (0..count).collect(), <[usize]>::to_vec);
    if let Some(&filter) = wanted.iter().find(|&&f| f >= count) {
        return Err(ExplainError::NoSuchFilter {
            layer: layer.to_string(),
            filter,
            filters: count,
        });
    }
    let cache = run.maximize_path(
        &restored.checkpoint.name,
        layer,
        settings.tier.name(),
        settings.seed,
    );
    let mut found: Vec<Option<FilterImage>> = wanted
        .iter()
        .map(|&f| read_cached(&cache, f, settings))
        .collect();
    let missing: Vec<usize> = wanted
        .iter()
        .zip(&found)
        .filter(|(_, c)| c.is_none())
        .map(|(&f, _)| f)
        .collect();
    let mut cache_note = None;
    if !missing.is_empty() {
        let shape = restored.cfg.input_shape();
        let made = maximize::maximize(
            &restored.net,
            step,
            shape,
            &missing,
            settings,
            cancel,
            progress,
        )?;
        for Maximized {
            filter,
            image,
            seed_activation,
            activation,
            shown_activation,
        } in made
        {
            let new = FilterImage {
                filter,
                picture: picture(&image, shape),
                seed_activation,
                activation,
                shown_activation,
                cached: false,
            };
            if cache_note.is_none()
                && let Err(why) = write_cached(&cache, &new, settings)
            {
                tracing::warn!("cannot cache maximisation images: {why}");
                cache_note = Some(why);
            }
            let slot = wanted.iter().position(|&f| f == filter);
            if let Some(i) = slot {
                found[i] = Some(new);
            }
        }
    }
    Ok(Outcome {
        layer: layer.to_string(),
        images: found.into_iter().flatten().collect(),
        cache,
        cache_note,
    })
}

/// Where a unit of a layer's output looks in the network's input, along one axis: unit `i`
/// sees input pixels `i * stride + offset` to `i * stride + offset + size - 1` (before
/// clamping at the borders: `offset` is negative where padding was added).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub size: usize,
    pub stride: usize,
    pub offset: isize,
}

impl Field {
    /// The input pixels unit `i` sees, clamped to `0..len`: `start..end`.
    #[must_use]
    pub fn span(&self, i: usize, len: usize) -> std::ops::Range<usize> {
        let start = i as isize * self.stride as isize + self.offset;
        let end = start + self.size as isize;
        let clamp = |v: isize| v.clamp(0, len as isize) as usize;
        clamp(start)..clamp(end)
    }

    /// This field seen through a window of `kernel` moved by `stride` with `pad` added before.
    fn then(self, kernel: usize, stride: usize, pad: usize) -> Self {
        Self {
            size: self.size + (kernel.max(1) - 1) * self.stride,
            stride: self.stride * stride.max(1),
            offset: self.offset - (pad * self.stride) as isize,
        }
    }
}

/// The receptive field of the output of step `step` of `net` (rows, columns), from the
/// geometry of its convolutions (kernel, stride, padding as the net has it: `same` or `valid`)
/// and poolings; `None` past the first step that is not a map (flatten, dense).
#[must_use]
pub fn receptive_field(net: &crate::model::Net, step: usize) -> Option<[Field; 2]> {
    let mut field = [Field {
        size: 1,
        stride: 1,
        offset: 0,
    }; 2];
    for s in net.steps.get(..=step)? {
        match *s {
            Step::Conv {
                index,
                stride,
                padding,
                ..
            } => {
                let [_, _, kh, kw] = net.convs.get(index)?.weight.val().dims();
                field = [
                    field[0].then(kh, stride, padding[0].0),
                    field[1].then(kw, stride, padding[1].0),
                ];
            }
            Step::Pool { size } => field = field.map(|f| f.then(size, size, 0)),
            Step::Dropout { .. } => {}
            Step::Flatten | Step::Dense { .. } => return None,
        }
    }
    Some(field)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::config::Config;
    use crate::model::{Net, read_f32};

    fn net(size: u32) -> Net {
        let mut cfg = Config::default();
        cfg.data.image_size = [size, size];
        Net::new(&cfg, 3, 2, &Device::flex()).expect("the tutorial net")
    }

    #[test]
    fn the_tutorial_net_s_fields_match_a_hand_computation() {
        let net = net(150);
        // conv 3×3 same (pad 1) → pool 2 → dropout → conv → pool → conv.
        let want = [
            (0, 3, 1, -1),
            (1, 4, 2, -1),
            (2, 4, 2, -1),
            (3, 8, 2, -3),
            (4, 10, 4, -3),
            (5, 18, 4, -7),
            (6, 22, 8, -7),
        ];
        for (step, size, stride, offset) in want {
            let f = receptive_field(&net, step).expect("a map");
            assert_eq!(
                f,
                [Field {
                    size,
                    stride,
                    offset
                }; 2],
                "step {step}"
            );
        }
        assert_eq!(receptive_field(&net, 8), None, "flatten has no field");
        let f = receptive_field(&net, 5).expect("conv2d_2")[0];
        // Clamped at the borders: unit 0 sees rows 0..11, the last unit (37) 141..150.
        assert_eq!(f.span(0, 150), 0..11);
        assert_eq!(f.span(10, 150), 33..51);
        assert_eq!(f.span(37, 150), 141..150);
    }

    /// Perturb one input pixel: every output of a conv layer that changes lies in a unit whose
    /// field holds the pixel, and some do.
    #[test]
    fn perturbing_one_pixel_changes_only_outputs_whose_field_holds_it() {
        let size = 32;
        let net = net(32);
        let device = Device::flex();
        let x = Tensor::<4>::random([1, 3, size, size], Distribution::Default, &device);
        let base = net.forward(x.clone(), false, true).activations;
        for (py, px) in [(13, 17), (0, 0), (31, 30)] {
            let mut values = read_f32(x.clone(), "x").expect("x");
            for c in 0..3 {
                values[(c * size + py) * size + px] += 50.0;
            }
            let moved = Tensor::<4>::from_data(
                burn::tensor::TensorData::new(values, [1, 3, size, size]),
                &device,
            );
            let after = net.forward(moved, false, true).activations;
            for ((step, a), (_, b)) in base.iter().zip(&after) {
                let [fy, fx] = receptive_field(&net, *step).expect("a map");
                let [_, c, h, w] = a.dims();
                let (a, b) = (
                    read_f32(a.clone(), "a").expect("a"),
                    read_f32(b.clone(), "b").expect("b"),
                );
                let mut changed = 0;
                for ch in 0..c {
                    for y in 0..h {
                        for xx in 0..w {
                            let at = (ch * h + y) * w + xx;
                            if a[at].to_bits() != b[at].to_bits() {
                                changed += 1;
                                assert!(
                                    fy.span(y, size).contains(&py)
                                        && fx.span(xx, size).contains(&px),
                                    "step {step}: output ({y}, {xx}) changed, its field \
                                     {:?}×{:?} misses pixel ({py}, {px})",
                                    fy.span(y, size),
                                    fx.span(xx, size)
                                );
                            }
                        }
                    }
                }
                assert!(
                    changed > 0,
                    "step {step}: pixel ({py}, {px}) changed nothing"
                );
            }
        }
    }
}
