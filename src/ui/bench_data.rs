//! What `convscope bench --ui-only` draws: the tutorial network's summary, a made-up training
//! history, and deterministic filter and feature-map snapshots of the tutorial network. Tests
//! draw the same screens.

use std::path::PathBuf;

use crate::events::{
    BatchMetrics, CheckpointInfo, EpochMetrics, Event, FeatureSnapshot, FilterSnapshot,
    LayerFilters, LayerMaps, RunState, StartInfo, StatusChange, SummaryRow,
};

/// A deterministic value in -0.5..0.5.
fn noise(i: usize, seed: usize) -> f32 {
    let x = ((i * 7919 + seed * 104_729) % 1_000_003) as f32;
    ((x * 12.9898).sin() * 43_758.547).fract() * 0.5
}

fn row(name: &str, kind: &str, shape: &[usize], params: usize) -> SummaryRow {
    SummaryRow {
        name: name.into(),
        kind: kind.into(),
        output_shape: shape.to_vec(),
        params,
    }
}

/// The tutorial network's summary (10,641,441 parameters).
#[must_use]
pub fn summary() -> Vec<SummaryRow> {
    vec![
        row("conv2d", "Conv2D", &[16, 150, 150], 448),
        row("max_pooling2d", "MaxPooling2D", &[16, 75, 75], 0),
        row("dropout", "Dropout", &[16, 75, 75], 0),
        row("conv2d_1", "Conv2D", &[32, 75, 75], 4640),
        row("max_pooling2d_1", "MaxPooling2D", &[32, 37, 37], 0),
        row("conv2d_2", "Conv2D", &[64, 37, 37], 18_496),
        row("max_pooling2d_2", "MaxPooling2D", &[64, 18, 18], 0),
        row("dropout_1", "Dropout", &[64, 18, 18], 0),
        row("flatten", "Flatten", &[20_736], 0),
        row("dense", "Dense", &[512], 10_617_344),
        row("dense_1", "Dense", &[1], 513),
    ]
}

/// A `Started` payload for a 50-epoch cats-vs-dogs run on the tutorial network.
#[must_use]
pub fn start_info() -> StartInfo {
    StartInfo {
        run_dir: PathBuf::from("runs/fixture"),
        device: "cpu".into(),
        classes: vec!["cats".into(), "dogs".into()],
        train_images: 2000,
        val_images: 1000,
        skipped_images: 0,
        epochs: 50,
        batches_per_epoch: 32,
        batch_size: 64,
        start_epoch: 1,
        start_batch: 0,
        params: 10_641_441,
        summary: summary(),
        probe_images: vec![
            PathBuf::from("runs/fixture/probes/cat.jpg"),
            PathBuf::from("runs/fixture/probes/dog.jpg"),
        ],
        time: 0.0,
    }
}

/// Started, running, two full epochs of batches and epoch metrics, and a checkpoint.
#[must_use]
pub fn history() -> Vec<Event> {
    let mut v = vec![
        Event::Started(Box::new(start_info())),
        Event::Status(StatusChange {
            state: RunState::Running,
        }),
    ];
    let mut elapsed = 0.0;
    for epoch in 1..=2 {
        for batch in (4..=32).step_by(4) {
            elapsed += 1.5;
            let t = (epoch - 1) as f32 + batch as f32 / 32.0;
            v.push(Event::Batch(BatchMetrics {
                epoch,
                batch,
                batches: 32,
                loss: 0.7 - 0.08 * t + noise(batch, epoch) * 0.05,
                accuracy: 0.5 + 0.07 * t,
                images_per_sec: 170.0,
                elapsed,
            }));
        }
        v.push(Event::Epoch(EpochMetrics {
            epoch,
            train_loss: 0.68 - 0.09 * epoch as f32,
            train_accuracy: 0.52 + 0.07 * epoch as f32,
            val_loss: Some(0.66 - 0.05 * epoch as f32 + if epoch == 2 { 0.04 } else { 0.0 }),
            val_accuracy: Some(if epoch == 1 { 0.61 } else { 0.58 }),
            seconds: 12.0,
            images_per_sec: 170.0,
        }));
    }
    v.push(Event::Checkpoint(CheckpointInfo {
        epoch: 2,
        batch: 32,
        name: "epoch-0002".into(),
    }));
    v
}

/// A filter snapshot with deterministic weights for `layers` of `(name, [out, in, kh, kw])`.
#[must_use]
pub fn filters(layers: &[(&str, [usize; 4])], epoch: usize) -> FilterSnapshot {
    FilterSnapshot {
        epoch,
        at_epoch_end: false,
        layers: layers
            .iter()
            .enumerate()
            .map(|(li, &(name, [out, inp, kh, kw]))| LayerFilters {
                name: name.into(),
                out_channels: out,
                in_channels: inp,
                kernel: [kh, kw],
                weights: (0..out * inp * kh * kw)
                    .map(|i| noise(i, li + 1) * 0.4)
                    .collect(),
            })
            .collect(),
    }
}

/// The tutorial's conv kernels: 16×3×3×3, 32×16×3×3, 64×32×3×3.
#[must_use]
pub fn tutorial_filters() -> FilterSnapshot {
    filters(
        &[
            ("conv2d", [16, 3, 3, 3]),
            ("conv2d_1", [32, 16, 3, 3]),
            ("conv2d_2", [64, 32, 3, 3]),
        ],
        2,
    )
}

/// A feature snapshot for `layers` of `(name, [channels, h, w])` with smooth, channel-dependent
/// patterns; channel `dead.1` of layer `dead.0` is all zero.
#[must_use]
pub fn features(layers: &[(&str, [usize; 3])], dead: Option<(usize, usize)>) -> FeatureSnapshot {
    let side = 48;
    let input = (0..3 * side * side)
        .map(|i| {
            let (ch, row, col) = (i / (side * side), i / side % side, i % side);
            let v = match ch {
                0 => col as f32 / side as f32,
                1 => row as f32 / side as f32,
                _ => 0.5 + 0.5 * ((col + row) as f32 * 0.2).sin(),
            };
            v.clamp(0.0, 1.0)
        })
        .collect();
    FeatureSnapshot {
        epoch: 2,
        at_epoch_end: false,
        image: PathBuf::from("runs/fixture/probes/cat.jpg"),
        input,
        input_shape: [3, side, side],
        predicted: 0,
        probability: 0.873,
        probabilities: vec![0.873, 0.127],
        layers: layers
            .iter()
            .enumerate()
            .map(|(li, &(name, [c, lh, lw]))| LayerMaps {
                name: name.into(),
                channels: c,
                height: lh,
                width: lw,
                data: (0..c * lh * lw)
                    .map(|i| {
                        let (ch, y, x) = (i / (lh * lw), i / lw % lh, i % lw);
                        if dead == Some((li, ch)) {
                            return 0.0;
                        }
                        let k = 0.05 + 0.03 * (ch % 7) as f32;
                        let v = (x as f32 * k).sin() * (y as f32 * k * 1.3 + ch as f32).cos();
                        // ReLU-like: many zeros, like a real activation.
                        (v + noise(i, li) * 0.2).max(0.0)
                    })
                    .collect(),
            })
            .collect(),
        cam: None,
        compare: None,
    }
}

/// The tutorial network's maps for a 150×150 input.
#[must_use]
pub fn tutorial_features() -> FeatureSnapshot {
    features(
        &[
            ("conv2d", [16, 150, 150]),
            ("max_pooling2d", [16, 75, 75]),
            ("conv2d_1", [32, 75, 75]),
            ("max_pooling2d_1", [32, 37, 37]),
            ("conv2d_2", [64, 37, 37]),
            ("max_pooling2d_2", [64, 18, 18]),
        ],
        Some((0, 5)),
    )
}
