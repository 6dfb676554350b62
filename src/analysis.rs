//! Validation analysis over the per-example record ([`crate::run::validation`]): confusion
//! matrix, per-class metrics, the most confidently wrong and the most ambiguous images, images
//! that flipped since the previous epoch, and probable label noise. Pure functions of rows.

use std::collections::HashMap;

use serde::Serialize;

use crate::run::validation::Row;

/// A wrong prediction at least this confident counts toward label noise.
pub const NOISE_PROBABILITY: f32 = 0.9;
/// Consecutive confidently wrong epochs that make an image probable label noise.
pub const NOISE_EPOCHS: usize = 3;

/// `classes x classes` counts, actual (row) x predicted (column). Rows naming a class outside
/// the matrix are left out.
#[must_use]
pub fn confusion(rows: &[Row], classes: usize) -> Vec<Vec<u64>> {
    let mut m = vec![vec![0u64; classes]; classes];
    for r in rows {
        if let Some(cell) = m
            .get_mut(usize::from(r.label))
            .and_then(|row| row.get_mut(usize::from(r.predicted)))
        {
            *cell += 1;
        }
    }
    m
}

/// Each cell as a percentage of its row (actual class); 0 for an empty row.
#[must_use]
pub fn row_percentages(confusion: &[Vec<u64>]) -> Vec<Vec<f64>> {
    confusion
        .iter()
        .map(|row| {
            let total: u64 = row.iter().sum();
            row.iter()
                .map(|&c| 100.0 * c as f64 / total.max(1) as f64)
                .collect()
        })
        .collect()
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassMetrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Images of this class.
    pub support: u64,
}

/// Per-class metrics from a confusion matrix (0 where undefined).
#[must_use]
pub fn metrics(confusion: &[Vec<u64>]) -> Vec<ClassMetrics> {
    (0..confusion.len())
        .map(|c| {
            let tp = confusion[c].get(c).copied().unwrap_or(0) as f64;
            let support: u64 = confusion[c].iter().sum();
            let predicted: u64 = confusion.iter().filter_map(|r| r.get(c)).sum();
            let ratio = |a: f64, b: u64| if b == 0 { 0.0 } else { a / b as f64 };
            let precision = ratio(tp, predicted);
            let recall = ratio(tp, support);
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            ClassMetrics {
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect()
}

/// Fraction of rows predicted right (0 when there are none).
#[must_use]
pub fn accuracy(rows: &[Row]) -> f64 {
    rows.iter().filter(|r| r.correct()).count() as f64 / rows.len().max(1) as f64
}

/// The `n` wrong rows with the highest loss, highest first (ties by image index).
#[must_use]
pub fn most_wrong(rows: &[Row], n: usize) -> Vec<&Row> {
    let mut wrong: Vec<&Row> = rows.iter().filter(|r| !r.correct()).collect();
    wrong.sort_by(|a, b| b.loss.total_cmp(&a.loss).then(a.index.cmp(&b.index)));
    wrong.truncate(n);
    wrong
}

/// The gap between the two largest probabilities: 0 on the decision boundary.
#[must_use]
pub fn margin(row: &Row) -> f32 {
    let (mut first, mut second) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &p in &row.probs {
        if p > first {
            second = first;
            first = p;
        } else if p > second {
            second = p;
        }
    }
    if second.is_finite() {
        first - second
    } else {
        1.0
    }
}

/// The `n` rows nearest the decision boundary (smallest [`margin`]), nearest first.
#[must_use]
pub fn ambiguous(rows: &[Row], n: usize) -> Vec<&Row> {
    let mut all: Vec<&Row> = rows.iter().collect();
    all.sort_by(|a, b| margin(a).total_cmp(&margin(b)).then(a.index.cmp(&b.index)));
    all.truncate(n);
    all
}

/// Images whose correctness changed between two epochs (image indices, ascending).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Flipped {
    pub right_to_wrong: Vec<u32>,
    pub wrong_to_right: Vec<u32>,
}

/// Compare `current` with `previous` by image index; images in only one of them are left out.
#[must_use]
pub fn flipped(previous: &[Row], current: &[Row]) -> Flipped {
    let before: HashMap<u32, bool> = previous.iter().map(|r| (r.index, r.correct())).collect();
    let mut out = Flipped::default();
    for r in current {
        match (before.get(&r.index), r.correct()) {
            (Some(true), false) => out.right_to_wrong.push(r.index),
            (Some(false), true) => out.wrong_to_right.push(r.index),
            _ => {}
        }
    }
    out.right_to_wrong.sort_unstable();
    out.wrong_to_right.sort_unstable();
    out
}

/// An image that is probably mislabelled, and for how many epochs in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Noisy {
    pub index: u32,
    pub epochs: usize,
}

/// Images wrong with probability >= 0.9 (of the predicted class) in each of the last 3 or
/// more consecutive epochs of `history` (oldest first, the epoch reported last). An image
/// missing from an epoch breaks its streak. Longest streak first, then by index.
#[must_use]
pub fn label_noise(history: &[&[Row]]) -> Vec<Noisy> {
    let Some((last, earlier)) = history.split_last() else {
        return Vec::new();
    };
    let confidently_wrong = |r: &Row| !r.correct() && r.confidence() >= NOISE_PROBABILITY;
    let maps: Vec<HashMap<u32, &Row>> = earlier
        .iter()
        .map(|rows| rows.iter().map(|r| (r.index, r)).collect())
        .collect();
    let mut out: Vec<Noisy> = last
        .iter()
        .filter(|r| confidently_wrong(r))
        .map(|r| {
            let before = maps
                .iter()
                .rev()
                .take_while(|m| m.get(&r.index).is_some_and(|p| confidently_wrong(p)))
                .count();
            Noisy {
                index: r.index,
                epochs: before + 1,
            }
        })
        .filter(|n| n.epochs >= NOISE_EPOCHS)
        .collect();
    out.sort_by(|a, b| b.epochs.cmp(&a.epochs).then(a.index.cmp(&b.index)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-class row: `p1` is the probability of class 1.
    fn row(index: u32, label: u16, p1: f32) -> Row {
        let predicted = u16::from(p1 > 0.5);
        let p = if label == 1 { p1 } else { 1.0 - p1 };
        Row {
            index,
            label,
            predicted,
            loss: -p.ln(),
            probs: vec![1.0 - p1, p1],
        }
    }

    #[test]
    fn confusion_metrics_and_accuracy() {
        // Actual 0: 3 right, 1 called 1; actual 1: 2 right, 2 called 0.
        let rows = vec![
            row(0, 0, 0.1),
            row(1, 0, 0.2),
            row(2, 0, 0.3),
            row(3, 0, 0.8),
            row(4, 1, 0.9),
            row(5, 1, 0.75),
            row(6, 1, 0.4),
            row(7, 1, 0.05),
        ];
        let m = confusion(&rows, 2);
        assert_eq!(m, vec![vec![3, 1], vec![2, 2]]);
        let pct = row_percentages(&m);
        assert!((pct[0][0] - 75.0).abs() < 1e-9 && (pct[1][1] - 50.0).abs() < 1e-9);
        let k = metrics(&m);
        assert!((k[0].precision - 0.6).abs() < 1e-9);
        assert!((k[0].recall - 0.75).abs() < 1e-9);
        assert!((k[0].f1 - 2.0 * 0.6 * 0.75 / 1.35).abs() < 1e-9);
        assert!((k[1].precision - 2.0 / 3.0).abs() < 1e-9);
        assert!((k[1].recall - 0.5).abs() < 1e-9);
        assert_eq!(k[1].support, 4);
        assert!((accuracy(&rows) - 5.0 / 8.0).abs() < 1e-9);
        // Most confidently wrong: image 7 (p(label) = 0.05), then 3 (0.2), then 6 (0.4).
        let w: Vec<u32> = most_wrong(&rows, 10).iter().map(|r| r.index).collect();
        assert_eq!(w, vec![7, 3, 6]);
        assert_eq!(most_wrong(&rows, 1).len(), 1);
        // Nearest the boundary: 6 (margin 0.2), 2 (0.4), 5 (0.5).
        let a: Vec<u32> = ambiguous(&rows, 3).iter().map(|r| r.index).collect();
        assert_eq!(a, vec![6, 2, 5]);
        // An empty class yields zeros, not NaN.
        let k3 = metrics(&confusion(&rows, 3));
        assert!(k3[2].precision == 0.0 && k3[2].f1 == 0.0);
    }

    #[test]
    fn flipped_on_a_scripted_pair_of_epochs() {
        let e1 = [
            row(0, 0, 0.1),
            row(1, 0, 0.9),
            row(2, 1, 0.9),
            row(3, 1, 0.1),
        ];
        let e2 = [
            row(0, 0, 0.9),
            row(1, 0, 0.1),
            row(2, 1, 0.8),
            row(3, 1, 0.2),
            row(4, 0, 0.9),
        ];
        let f = flipped(&e1, &e2);
        assert_eq!(f.right_to_wrong, vec![0]);
        assert_eq!(f.wrong_to_right, vec![1]);
        assert_eq!(flipped(&e2, &e2), Flipped::default());
    }

    #[test]
    fn label_noise_needs_three_confident_wrong_epochs_in_a_row() {
        // Image 0: confidently wrong in epochs 2..5 (4 in a row).
        // Image 1: confidently wrong in 1, 2, 4, 5 (the streak ending now is 2).
        // Image 2: wrong in 3..5 but once only at 0.85 (not confident): no.
        // Image 3: confidently wrong in 3..5 (exactly 3): yes.
        // Image 4: confidently wrong in 3, 4, missing in 5: no.
        let script: [[f32; 5]; 5] = [
            // p1 per image, every label 0 (wrong when p1 > 0.5).
            [0.1, 0.95, 0.1, 0.1, 0.1],
            [0.95, 0.95, 0.1, 0.1, 0.1],
            [0.95, 0.1, 0.95, 0.95, 0.95],
            [0.99, 0.95, 0.85, 0.92, 0.95],
            [0.9, 0.97, 0.95, 0.9, f32::NAN],
        ];
        let epochs: Vec<Vec<Row>> = script
            .iter()
            .map(|ps| {
                ps.iter()
                    .enumerate()
                    .filter(|(_, p)| !p.is_nan())
                    .map(|(i, &p)| row(i as u32, 0, p))
                    .collect()
            })
            .collect();
        let history: Vec<&[Row]> = epochs.iter().map(Vec::as_slice).collect();
        assert_eq!(
            label_noise(&history),
            vec![
                Noisy {
                    index: 0,
                    epochs: 4
                },
                Noisy {
                    index: 3,
                    epochs: 3
                }
            ]
        );
        // Two epochs are never enough; no history is no noise.
        assert!(label_noise(&history[..2]).is_empty());
        assert!(label_noise(&[]).is_empty());
    }
}
