//! Validation of a [`Config`]: every value, and the layer stack's shapes against the input.

use super::{
    Activation, Config, ConfigError, LayerSpec, Padding, Units, invalid, output_units, parse_device,
};

impl Config {
    /// Check every value; the error names the key and the reason.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.data;
        for (i, &s) in d.image_size.iter().enumerate() {
            if s == 0 || s > 4096 {
                return Err(invalid(
                    format!("data.image_size[{i}]"),
                    s,
                    "must be between 1 and 4096 pixels",
                ));
            }
        }
        if !(d.rescale.is_finite() && d.rescale > 0.0) {
            return Err(invalid(
                "data.rescale",
                d.rescale,
                "must be a positive number",
            ));
        }
        if !(0.0..1.0).contains(&d.val_split) {
            return Err(invalid(
                "data.val_split",
                d.val_split,
                "must be at least 0 and below 1 (a fraction of each class)",
            ));
        }
        if d.max_pixels == 0 {
            return Err(invalid("data.max_pixels", 0, "must be positive"));
        }
        if d.prefetch_batches == 0 {
            return Err(invalid("data.prefetch_batches", 0, "must be at least 1"));
        }
        let a = &self.augment;
        for (key, v) in [
            ("augment.rotation_range", a.rotation_range),
            ("augment.width_shift_range", a.width_shift_range),
            ("augment.height_shift_range", a.height_shift_range),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(key, v, "must be zero or positive"));
            }
        }
        if !(a.width_shift_range < 1.0 && a.height_shift_range < 1.0) {
            return Err(invalid(
                "augment.width_shift_range / height_shift_range",
                a.width_shift_range.max(a.height_shift_range),
                "shifts are fractions of the image size and must be below 1",
            ));
        }
        if !(a.zoom_range.is_finite() && (0.0..1.0).contains(&a.zoom_range)) {
            return Err(invalid(
                "augment.zoom_range",
                a.zoom_range,
                "must be at least 0 and below 1 (zoom is drawn from [1-z, 1+z])",
            ));
        }
        let o = &self.optimizer;
        if !(o.lr.is_finite() && o.lr > 0.0) {
            return Err(invalid(
                "optimizer.lr",
                o.lr,
                "the learning rate must be positive, e.g. 0.001",
            ));
        }
        for (key, v) in [
            ("optimizer.beta_1", o.beta_1),
            ("optimizer.beta_2", o.beta_2),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(invalid(key, v, "must be at least 0 and below 1"));
            }
        }
        if !(o.epsilon.is_finite() && o.epsilon > 0.0) {
            return Err(invalid("optimizer.epsilon", o.epsilon, "must be positive"));
        }
        let t = &self.train;
        if t.epochs == 0 {
            return Err(invalid("train.epochs", 0, "must be at least 1"));
        }
        if t.batch_size == 0 {
            return Err(invalid("train.batch_size", 0, "must be at least 1"));
        }
        if t.batch_events_per_sec == 0 {
            return Err(invalid(
                "train.batch_events_per_sec",
                0,
                "must be at least 1",
            ));
        }
        parse_device(&t.device)?;
        if self.ui.fps == 0 || self.ui.fps > 240 {
            return Err(invalid("ui.fps", self.ui.fps, "must be between 1 and 240"));
        }
        self.layer_shapes(2).map(|_| ())
    }

    /// Input shape `[channels, height, width]`.
    #[must_use]
    pub fn input_shape(&self) -> [usize; 3] {
        [
            self.data.color_mode.channels(),
            self.data.image_size[0] as usize,
            self.data.image_size[1] as usize,
        ]
    }

    /// Output shape of every layer for `classes` classes, checking that the stack fits the input.
    pub fn layer_shapes(&self, classes: usize) -> Result<Vec<Vec<usize>>, ConfigError> {
        let layers = &self.model.layers;
        if layers.is_empty() {
            return Err(invalid("model.layers", "[]", "needs at least one layer"));
        }
        let [c, h, w] = self.input_shape();
        let mut shape = vec![c, h, w];
        let mut out = Vec::with_capacity(layers.len());
        let outputs = output_units(classes);
        for (i, layer) in layers.iter().enumerate() {
            shape = self.layer_shape(&format!("model.layers[{i}]"), layer, &shape, outputs)?;
            out.push(shape.clone());
        }
        check_logits(layers)?;
        Ok(out)
    }

    /// The output shape of `layer` (at `key`) for an input of `shape`.
    fn layer_shape(
        &self,
        key: &str,
        layer: &LayerSpec,
        shape: &[usize],
        outputs: usize,
    ) -> Result<Vec<usize>, ConfigError> {
        let spatial = shape.len() == 3;
        Ok(match *layer {
            LayerSpec::Conv { .. } => self.conv_shape(key, layer, shape)?,
            LayerSpec::Maxpool { size } => {
                if !spatial {
                    return Err(invalid(
                        key,
                        "maxpool",
                        "a pooling layer cannot follow flatten or dense",
                    ));
                }
                if size == 0 {
                    return Err(invalid(format!("{key}.size"), 0, "must be at least 1"));
                }
                if shape[1] < size || shape[2] < size {
                    return Err(too_small(self, key, shape));
                }
                vec![shape[0], shape[1] / size, shape[2] / size]
            }
            LayerSpec::Dropout { rate } => {
                if !(rate.is_finite() && (0.0..1.0).contains(&rate)) {
                    return Err(invalid(
                        format!("{key}.rate"),
                        rate,
                        "dropout rate must be at least 0 and below 1",
                    ));
                }
                shape.to_vec()
            }
            LayerSpec::Flatten => vec![shape.iter().product()], // bounded by check_size
            LayerSpec::Dense { units, .. } => {
                if spatial {
                    return Err(invalid(
                        key,
                        "dense",
                        "a dense layer needs a flatten layer before it",
                    ));
                }
                let n = match units {
                    Units::Fixed(0) => {
                        return Err(invalid(format!("{key}.units"), 0, "must be at least 1"));
                    }
                    Units::Fixed(n) => n,
                    Units::Classes(_) => outputs,
                };
                let params = shape[0].checked_add(1).and_then(|i| i.checked_mul(n));
                check_size(key, "dense", params, &[n])?;
                vec![n]
            }
        })
    }

    /// The output shape of the conv layer `layer` (at `key`) for an input of `shape`.
    fn conv_shape(
        &self,
        key: &str,
        layer: &LayerSpec,
        shape: &[usize],
    ) -> Result<Vec<usize>, ConfigError> {
        let LayerSpec::Conv {
            filters,
            kernel,
            padding,
            stride,
            ..
        } = *layer
        else {
            return Ok(shape.to_vec());
        };
        if shape.len() != 3 {
            return Err(invalid(
                key,
                "conv",
                "a conv layer cannot follow flatten or dense",
            ));
        }
        if filters == 0 || kernel == 0 || stride == 0 {
            return Err(invalid(
                key,
                "conv",
                "filters, kernel and stride must be at least 1",
            ));
        }
        let conv_out = |n: usize| -> Option<usize> {
            match padding {
                Padding::Same => Some(n.div_ceil(stride)),
                Padding::Valid => n.checked_sub(kernel).map(|r| r / stride + 1),
            }
        };
        let out = match (conv_out(shape[1]), conv_out(shape[2])) {
            (Some(oh), Some(ow)) if oh > 0 && ow > 0 => vec![filters, oh, ow],
            _ => {
                return Err(too_small(self, key, shape));
            }
        };
        // kernel * kernel * channels * filters + filters, as the summary counts.
        let params = kernel
            .checked_mul(kernel)
            .and_then(|k| k.checked_mul(shape[0]))
            .and_then(|k| k.checked_add(1))
            .and_then(|k| k.checked_mul(filters));
        check_size(key, "conv", params, &out)?;
        Ok(out)
    }
}

/// The last layer must be the logits, and only it may have `units = "classes"`.
fn check_logits(layers: &[LayerSpec]) -> Result<(), ConfigError> {
    let last = layers.len() - 1;
    match layers[last] {
        LayerSpec::Dense {
            units: Units::Classes(_),
            activation: Activation::None,
        } => {}
        _ => {
            return Err(invalid(
                format!("model.layers[{last}]"),
                "last layer",
                "the last layer must be { type = \"dense\", units = \"classes\", activation = \"none\" } (the logits)",
            ));
        }
    }
    if let Some(i) = layers[..last].iter().position(|l| {
        matches!(
            l,
            LayerSpec::Dense {
                units: Units::Classes(_),
                ..
            }
        )
    }) {
        return Err(invalid(
            format!("model.layers[{i}].units"),
            "\"classes\"",
            "only the last layer may have units = \"classes\"",
        ));
    }
    Ok(())
}

/// Most values one layer may output per image, and most parameters one layer may have: far
/// beyond any machine, and low enough that sizes multiplied by a batch never overflow.
const MAX_LAYER_VALUES: usize = 1 << 32;
const MAX_LAYER_PARAMS: usize = 1 << 36;

fn check_size(
    key: &str,
    kind: &str,
    params: Option<usize>,
    out: &[usize],
) -> Result<(), ConfigError> {
    let values = out.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if params.is_none_or(|p| p > MAX_LAYER_PARAMS) || values.is_none_or(|v| v > MAX_LAYER_VALUES) {
        return Err(invalid(
            key,
            kind,
            "this layer is far too large (parameters or outputs beyond what any machine holds); use fewer filters or units",
        ));
    }
    Ok(())
}

fn too_small(cfg: &Config, key: &str, shape: &[usize]) -> ConfigError {
    invalid(
        "data.image_size",
        format!("{:?}", cfg.data.image_size),
        format!(
            "too small for the layer stack: {key} receives {}x{} pixels and cannot shrink it further; use a larger data.image_size or fewer pooling layers",
            shape[1], shape[2]
        ),
    )
}
