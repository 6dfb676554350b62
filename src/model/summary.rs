//! The Keras-style model summary: layer names, output shapes and parameter counts (pure math).

use crate::config::{Config, ConfigError, LayerSpec};
use crate::events::SummaryRow;
pub use crate::events::{group_digits, keras_shape};

/// What a layer is, as its summary row names it (Keras's class name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    Conv2D,
    MaxPooling2D,
    Dropout,
    Flatten,
    Dense,
    /// A name this version does not know.
    Other,
}

impl LayerKind {
    /// Keras's class name, as the summary shows it.
    #[must_use]
    pub fn keras(self) -> &'static str {
        match self {
            LayerKind::Conv2D => "Conv2D",
            LayerKind::MaxPooling2D => "MaxPooling2D",
            LayerKind::Dropout => "Dropout",
            LayerKind::Flatten => "Flatten",
            LayerKind::Dense => "Dense",
            LayerKind::Other => "?",
        }
    }

    /// The kind a summary row's `kind` names.
    #[must_use]
    pub fn of(keras: &str) -> Self {
        [
            LayerKind::Conv2D,
            LayerKind::MaxPooling2D,
            LayerKind::Dropout,
            LayerKind::Flatten,
            LayerKind::Dense,
        ]
        .into_iter()
        .find(|k| k.keras() == keras)
        .unwrap_or(LayerKind::Other)
    }

    /// Whether a filter snapshot holds this layer's kernels (the conv layers, in order).
    #[must_use]
    pub fn has_filters(self) -> bool {
        self == LayerKind::Conv2D
    }

    /// Whether a feature snapshot holds this layer's output (conv and pooling layers, in order).
    #[must_use]
    pub fn has_maps(self) -> bool {
        matches!(self, LayerKind::Conv2D | LayerKind::MaxPooling2D)
    }
}

/// Summarise the configured network for `classes` classes, naming layers as Keras does.
pub fn summarize(cfg: &Config, classes: usize) -> Result<Vec<SummaryRow>, ConfigError> {
    let shapes = cfg.layer_shapes(classes)?;
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    let mut prev = cfg.input_shape().to_vec();
    let mut rows = Vec::with_capacity(shapes.len());
    for (layer, shape) in cfg.model.layers.iter().zip(shapes) {
        let (base, kind, params) = match layer {
            LayerSpec::Conv {
                filters, kernel, ..
            } => (
                "conv2d",
                LayerKind::Conv2D,
                kernel * kernel * prev[0] * filters + filters,
            ),
            LayerSpec::Maxpool { .. } => ("max_pooling2d", LayerKind::MaxPooling2D, 0),
            LayerSpec::Dropout { .. } => ("dropout", LayerKind::Dropout, 0),
            LayerSpec::Flatten => ("flatten", LayerKind::Flatten, 0),
            LayerSpec::Dense { .. } => ("dense", LayerKind::Dense, prev[0] * shape[0] + shape[0]),
        };
        let n = counts.entry(base).or_insert(0);
        let name = if *n == 0 {
            base.to_string()
        } else {
            format!("{base}_{n}")
        };
        *n += 1;
        rows.push(SummaryRow {
            name,
            kind: kind.keras().to_string(),
            output_shape: shape.clone(),
            params,
        });
        prev = shape;
    }
    Ok(rows)
}

/// Total trainable parameters.
#[must_use]
pub fn total_params(rows: &[SummaryRow]) -> usize {
    rows.iter().map(|r| r.params).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tutorial_network_has_keras_parameter_count() {
        let rows = summarize(&Config::default(), 2).expect("valid");
        assert_eq!(total_params(&rows), 10_641_441);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "conv2d",
                "max_pooling2d",
                "dropout",
                "conv2d_1",
                "max_pooling2d_1",
                "conv2d_2",
                "max_pooling2d_2",
                "dropout_1",
                "flatten",
                "dense",
                "dense_1"
            ]
        );
        assert_eq!(rows[0].params, 448);
        assert_eq!(rows[9].params, 10_617_344);
        assert_eq!(keras_shape(&rows[6].output_shape), "(None, 18, 18, 64)");
    }

    #[test]
    fn grayscale_changes_first_layer() {
        let mut c = Config::default();
        c.data.color_mode = crate::config::ColorMode::Grayscale;
        let rows = summarize(&c, 10).expect("valid");
        assert_eq!(rows[0].params, 3 * 3 * 16 + 16);
        assert_eq!(rows[10].params, 512 * 10 + 10);
    }
}
