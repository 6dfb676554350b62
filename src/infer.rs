//! The inference side: a run's network loaded from a checkpoint ([`restore`]), images
//! classified ([`classify`]), weights and activations turned into snapshots for observers
//! ([`probe`], [`inspect`]), and a run followed from its directory ([`viewer`]).
//!
//! It serves `export`, `predict` and `view`, and the training's own snapshots; it never
//! trains, and imports nothing from [`crate::train`].

pub mod inspect;
pub mod maximize;
pub mod probe;
pub mod restore;
pub mod viewer;

use burn::tensor::Tensor;

use crate::model::{self, ReadError};

pub use restore::RestoreError;

/// What the network makes of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// The predicted class: the largest logit (with one logit, class 1 when it is positive).
    pub class: usize,
    /// The predicted class's probability.
    pub probability: f32,
    /// Every class's probability, in class-index order.
    pub probabilities: Vec<f32>,
}

/// Classify each row of `logits` (`[images, outputs]`): the one rule for probe, predict and
/// validation, so that the class a user is shown is the class validation counts.
pub fn classify(logits: Tensor<2>) -> Result<Vec<Classified>, ReadError> {
    let outputs = logits.dims()[1];
    let probabilities = model::probabilities(logits.clone());
    let classes = probabilities.dims()[1].max(1);
    let probabilities = model::read_f32(probabilities, "class probabilities")?;
    let logits = model::read_f32(logits, "logits")?;
    Ok(model::predictions(&logits, outputs)
        .into_iter()
        .zip(probabilities.chunks(classes))
        .map(|(class, row)| Classified {
            class,
            probability: row.get(class).copied().unwrap_or(f32::NEG_INFINITY),
            probabilities: row.to_vec(),
        })
        .collect())
}
