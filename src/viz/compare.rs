//! Two images' feature maps side by side (A and B): one per-channel normalisation for both, so
//! that brightness compares; their difference A−B on a scale symmetric about 0 (drawn with the
//! diverging palette); and the orders the channels are shown in (by |mean A − mean B|, or by
//! class selectivity on the validation set).

use super::colormap::Rgb;
use super::norm::Standardised;
use super::pictures::{self, BACKGROUND, DEAD};
use super::raster::{Raster, tile};
use super::sheets::{self, FEATURE_COLUMNS, GAP, LABEL_H};
use super::text::{self, DIM};
use crate::config::ColormapName;

/// The per-channel scale of the tutorial's normalisation, `(x - mean) / std * 64 + 128`, shared
/// by every map drawn with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub mean: f64,
    pub std: f64,
}

impl Scale {
    /// The mean and standard deviation of the finite values of every part together.
    #[must_use]
    pub fn over(parts: &[&[f32]]) -> Self {
        let finite = || {
            parts
                .iter()
                .flat_map(|p| p.iter())
                .filter(|v| v.is_finite())
        };
        let n = finite().count();
        if n == 0 {
            return Self {
                mean: 0.0,
                std: 0.0,
            };
        }
        let mean = finite().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let var = finite()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        Self {
            mean,
            std: var.sqrt(),
        }
    }

    /// Whether the values were all the same (drawn flat, like [`super::norm::standardise`]).
    #[must_use]
    pub fn constant(&self) -> bool {
        self.std.is_nan() || self.std <= 1e-6 * self.mean.abs().max(1e-6)
    }

    /// `values` at this scale: `clip((x - mean) / std * 64 + 128, 0, 255)`.
    #[must_use]
    pub fn levels(&self, values: &[f32]) -> Standardised {
        let dead = self.constant();
        let levels = values
            .iter()
            .map(|&v| {
                if dead || !v.is_finite() {
                    128
                } else {
                    ((f64::from(v) - self.mean) / self.std * 64.0 + 128.0).clamp(0.0, 255.0) as u8
                }
            })
            .collect();
        Standardised { levels, dead }
    }
}

/// One channel of A and of B at the scale of both together, so that a channel twice as active
/// in A also looks brighter in A.
#[must_use]
pub fn shared(a: &[f32], b: &[f32]) -> (Standardised, Standardised) {
    let scale = Scale::over(&[a, b]);
    (scale.levels(a), scale.levels(b))
}

/// The difference A−B of one channel as levels of the diverging palette, with its largest |A−B|:
/// `128 + round(127 (A−B) / max|A−B|)`, so that no difference is 128 and ±max|A−B| are 255 and 1
/// (positive: A more active), the same distance either side. Pixels A or B lacks count as 0.
#[must_use]
pub fn difference(a: &[f32], b: &[f32]) -> (Standardised, f32) {
    let n = a.len().max(b.len());
    let at = |v: &[f32], i: usize| v.get(i).copied().filter(|x| x.is_finite()).unwrap_or(0.0);
    let diff: Vec<f32> = (0..n).map(|i| at(a, i) - at(b, i)).collect();
    let max = diff.iter().fold(0.0_f32, |m, d| m.max(d.abs()));
    let levels = diff
        .iter()
        .map(|&d| {
            if max > 0.0 {
                (128.0 + (127.0 * d / max).round()).clamp(1.0, 255.0) as u8
            } else {
                128
            }
        })
        .collect();
    (
        Standardised {
            levels,
            dead: max <= 0.0,
        },
        max,
    )
}

/// The mean of each channel of `data` (`[channels, h, w]`), non-finite values left out.
#[must_use]
pub fn channel_means(data: &[f32], channels: usize) -> Vec<f64> {
    if channels == 0 {
        return Vec::new();
    }
    let per = data.len() / channels;
    (0..channels)
        .map(|c| {
            let plane = data.get(c * per..(c + 1) * per).unwrap_or(&[]);
            let finite: Vec<f64> = plane
                .iter()
                .filter(|v| v.is_finite())
                .map(|&v| f64::from(v))
                .collect();
            if finite.is_empty() {
                0.0
            } else {
                finite.iter().sum::<f64>() / finite.len() as f64
            }
        })
        .collect()
}

/// How much a channel prefers one class on the validation set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Selectivity {
    /// `(μ_max − μ_rest) / (μ_max + μ_rest)` of its class-conditional mean activations, `μ_rest`
    /// the mean of the other classes' means: 0 when it treats every class alike, 1 when it is
    /// only ever active for one class. 0 when the denominator is not positive.
    pub index: f64,
    /// The class with the largest mean (`μ_max`).
    pub preferred: usize,
}

/// The selectivity of every channel, from `class_means[class][channel]` (classes with no
/// validation image left out: an empty row).
#[must_use]
pub fn selectivity(class_means: &[Vec<f64>]) -> Vec<Selectivity> {
    let channels = class_means.iter().map(Vec::len).max().unwrap_or(0);
    (0..channels)
        .map(|c| {
            let means: Vec<(usize, f64)> = class_means
                .iter()
                .enumerate()
                .filter_map(|(k, row)| row.get(c).map(|&m| (k, m)))
                .filter(|(_, m)| m.is_finite())
                .collect();
            let Some(&(preferred, max)) = means
                .iter()
                .max_by(|x, y| x.1.total_cmp(&y.1).then(y.0.cmp(&x.0)))
            else {
                return Selectivity {
                    index: 0.0,
                    preferred: 0,
                };
            };
            let rest: Vec<f64> = means
                .iter()
                .filter(|(k, _)| *k != preferred)
                .map(|(_, m)| *m)
                .collect();
            let rest = if rest.is_empty() {
                0.0
            } else {
                rest.iter().sum::<f64>() / rest.len() as f64
            };
            let denominator = max + rest;
            let index = if means.len() < 2 || denominator <= 0.0 {
                0.0
            } else {
                (max - rest) / denominator
            };
            Selectivity { index, preferred }
        })
        .collect()
}

/// The order channels are shown in when comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// By |mean A − mean B|, largest first.
    #[default]
    Diff,
    /// By class selectivity on the validation set, most selective first.
    Selectivity,
    /// In the network's order.
    Natural,
}

impl Order {
    /// The next order in the cycle diff → selectivity → natural.
    #[must_use]
    pub fn next(self) -> Self {
        match self {
            Self::Diff => Self::Selectivity,
            Self::Selectivity => Self::Natural,
            Self::Natural => Self::Diff,
        }
    }

    /// Its name, as `--order` takes it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Diff => "diff",
            Self::Selectivity => "selectivity",
            Self::Natural => "natural",
        }
    }
}

/// Channel indices sorted by `key`, largest first; ties (and NaN) keep the network's order.
#[must_use]
pub fn ranked(key: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..key.len()).collect();
    let k = |i: usize| if key[i].is_finite() { key[i] } else { f64::MIN };
    order.sort_by(|&x, &y| k(y).total_cmp(&k(x)).then(x.cmp(&y)));
    order
}

/// Channel indices by |mean A − mean B|, largest first.
#[must_use]
pub fn by_difference(mean_a: &[f64], mean_b: &[f64]) -> Vec<usize> {
    let key: Vec<f64> = mean_a
        .iter()
        .zip(mean_b)
        .map(|(a, b)| (a - b).abs())
        .collect();
    ranked(&key)
}

/// Channel indices by selectivity, most selective first.
#[must_use]
pub fn by_selectivity(sel: &[Selectivity]) -> Vec<usize> {
    ranked(&sel.iter().map(|s| s.index).collect::<Vec<_>>())
}

/// One row of a layer's comparison table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub channel: usize,
    pub mean_a: f64,
    pub mean_b: f64,
    pub selectivity: Option<Selectivity>,
}

/// A layer's comparison, one row per channel in `order` (`Selectivity` without selectivities
/// falls back to the network's order).
#[must_use]
pub fn rows(mean_a: &[f64], mean_b: &[f64], sel: Option<&[Selectivity]>, order: Order) -> Vec<Row> {
    let n = mean_a.len().min(mean_b.len());
    let indices = match (order, sel) {
        (Order::Diff, _) => by_difference(&mean_a[..n], &mean_b[..n]),
        (Order::Selectivity, Some(s)) => by_selectivity(s),
        _ => (0..n).collect(),
    };
    indices
        .into_iter()
        .filter(|&c| c < n)
        .map(|c| Row {
            channel: c,
            mean_a: mean_a[c],
            mean_b: mean_b[c],
            selectivity: sel.and_then(|s| s.get(c).copied()),
        })
        .collect()
}

/// The CSV header of [`csv`].
pub const CSV_HEADER: &str = "channel,mean_a,mean_b,diff,selectivity,preferred_class";

/// A layer's comparison as CSV: channels numbered from 1 (as in the sheets), `diff` = mean A −
/// mean B, the preferred class by name; selectivity columns empty without a health file.
#[must_use]
pub fn csv(rows: &[Row], classes: &[String]) -> String {
    use std::fmt::Write as _;
    let mut out = format!("{CSV_HEADER}\n");
    for r in rows {
        let (sel, class) = r.selectivity.map_or_else(
            || (String::new(), String::new()),
            |s| {
                (
                    format!("{:.6}", s.index),
                    classes
                        .get(s.preferred)
                        .cloned()
                        .unwrap_or_else(|| s.preferred.to_string()),
                )
            },
        );
        let _ = writeln!(
            out,
            "{},{:.6},{:.6},{:.6},{sel},{class}",
            r.channel + 1,
            r.mean_a,
            r.mean_b,
            r.mean_a - r.mean_b
        );
    }
    out
}

/// One layer of A and B compared: every channel at the shared scale, their differences, and
/// the table's rows in the order chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Per channel, in the network's order.
    pub a: Vec<Standardised>,
    pub b: Vec<Standardised>,
    pub diff: Vec<Standardised>,
    /// Per channel, the largest |A−B|.
    pub diff_max: Vec<f32>,
    /// One per channel, in the order chosen.
    pub rows: Vec<Row>,
}

/// Compare one layer's maps of A and B (`[channels, h, w]` each, `per = h * w`).
#[must_use]
pub fn layer(
    a: &[f32],
    b: &[f32],
    channels: usize,
    per: usize,
    sel: Option<&[Selectivity]>,
    order: Order,
) -> Layer {
    let plane = |v: &'_ [f32], c: usize| -> Vec<f32> {
        let mut p = v.get(c * per..(c + 1) * per).unwrap_or(&[]).to_vec();
        p.resize(per, 0.0);
        p
    };
    let mut out = Layer {
        a: Vec::with_capacity(channels),
        b: Vec::with_capacity(channels),
        diff: Vec::with_capacity(channels),
        diff_max: Vec::with_capacity(channels),
        rows: Vec::new(),
    };
    for c in 0..channels {
        let (pa, pb) = (plane(a, c), plane(b, c));
        let (la, lb) = shared(&pa, &pb);
        let (d, max) = difference(&pa, &pb);
        out.a.push(la);
        out.b.push(lb);
        out.diff.push(d);
        out.diff_max.push(max);
    }
    let mean_a = channel_means(a, channels);
    let mean_b = channel_means(b, channels);
    out.rows = rows(&mean_a, &mean_b, sel, order);
    out
}

/// Which of the three sheets of a layer's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    A,
    B,
    Diff,
}

impl Pane {
    /// Its caption, as the tab and the exported sheets write it (ASCII: the sheets' font has
    /// no minus sign).
    #[must_use]
    pub fn caption(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::B => "B",
            Self::Diff => "A-B",
        }
    }
}

/// The colour scale of a pane: the shared standardisation for A and B, ±max|A−B| for A−B.
#[must_use]
pub fn scale_bar(pane: Pane, map: ColormapName) -> Raster {
    match pane {
        Pane::A | Pane::B => sheets::scale_bar(
            map,
            ("-2σ", "+2σ"),
            "mean",
            "each channel: (x-mean)/std·64+128, mean and std of A and B together",
        ),
        Pane::Diff => sheets::scale_bar(
            ColormapName::Diverging,
            ("B more", "A more"),
            "0",
            "each channel: A-B scaled by its largest |A-B|",
        ),
    }
}

/// One pane of a layer's comparison: `cells` (channel index, levels) in the order given, each
/// numbered with its channel (from 1), constant ones ringed red; titled with `heading` and
/// `lines`. A and B are drawn with `map`, A−B with the diverging palette.
#[must_use]
pub fn sheet(
    cells: &[(usize, &Standardised)],
    (h, w): (usize, usize),
    pane: Pane,
    map: ColormapName,
    (heading, lines): (&str, &[&str]),
) -> Raster {
    let colours = match pane {
        Pane::A | Pane::B => map,
        Pane::Diff => ColormapName::Diverging,
    };
    let s = sheets::feature_scale(h, w);
    let tiles: Vec<Raster> = cells
        .iter()
        .map(|(c, l)| {
            let ring: Rgb = if l.dead { DEAD } else { BACKGROUND };
            let body = pictures::channel(l, h, w, colours).upscale(s);
            let mut ringed = Raster::new(body.width() + 4, body.height() + 4, ring);
            ringed.blit(&body, 2, 2);
            let label = (c + 1).to_string();
            let mut cell = Raster::new(
                ringed.width().max(text::width(&label, 1)),
                LABEL_H + ringed.height(),
                BACKGROUND,
            );
            text::draw(&mut cell, 0, 0, &label, 1, DIM);
            cell.blit(&ringed, 0, LABEL_H);
            cell
        })
        .collect();
    let tw = tiles.iter().map(Raster::width).max().unwrap_or(0);
    let th = tiles.iter().map(Raster::height).max().unwrap_or(0);
    let padded: Vec<Raster> = tiles
        .iter()
        .map(|t| {
            let mut p = Raster::new(tw, th, BACKGROUND);
            p.blit(t, 0, 0);
            p
        })
        .collect();
    let grid = tile(
        &padded,
        FEATURE_COLUMNS.min(padded.len()).max(1),
        GAP,
        BACKGROUND,
        |_| None,
    );
    let bar = scale_bar(pane, map);
    let mut body = Raster::new(
        grid.width().max(bar.width()),
        grid.height() + GAP + bar.height(),
        BACKGROUND,
    );
    body.blit(&grid, 0, 0);
    body.blit(&bar, 0, grid.height() + GAP);
    text::titled(&body, heading, lines, BACKGROUND)
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the expected values are exact
mod tests {
    use super::*;

    #[test]
    fn a_channel_twice_as_active_in_a_is_twice_as_bright_above_zero_s_level() {
        let b: Vec<f32> = (0..16).map(|i| i as f32 * 0.25).collect();
        let a: Vec<f32> = b.iter().map(|v| v * 2.0).collect();
        // Each on its own scale, the two look the same: brightness would not compare.
        assert_eq!(
            crate::viz::norm::standardise(&a).levels,
            crate::viz::norm::standardise(&b).levels
        );
        let (la, lb) = shared(&a, &b);
        assert!(!la.dead && !lb.dead);
        let scale = Scale::over(&[&a, &b]);
        let zero = (-scale.mean / scale.std * 64.0 + 128.0).clamp(0.0, 255.0);
        let mut brighter = 0;
        for i in 0..16 {
            let above_a = f64::from(la.levels[i]) - zero;
            let above_b = f64::from(lb.levels[i]) - zero;
            if la.levels[i] < 255 {
                // Twice as far above zero's level, within the truncation to whole levels.
                assert!(
                    (above_a - 2.0 * above_b).abs() <= 3.0,
                    "{i}: {above_a} {above_b}"
                );
            }
            if la.levels[i] > lb.levels[i] {
                brighter += 1;
            }
        }
        assert_eq!(
            brighter, 15,
            "every pixel but the zero one is brighter in A"
        );
        assert_eq!(la.levels[0], lb.levels[0]);
    }

    #[test]
    fn shared_scale_of_a_constant_pair_is_flat() {
        let (a, b) = shared(&[2.0; 4], &[2.0; 4]);
        assert!(a.dead && b.dead);
        assert_eq!(a.levels, vec![128; 4]);
        assert_eq!(b.levels, vec![128; 4]);
    }

    #[test]
    fn difference_is_symmetric_about_zero_at_its_largest_magnitude() {
        let a = [1.0, 0.0, 0.5, 0.0, 3.0];
        let b = [0.0, 1.0, 0.5, 4.0, 3.0];
        let (d, max) = difference(&a, &b);
        assert_eq!(max, 4.0);
        // A−B = [1, −1, 0, −4, 0]: ±1 the same distance either side of the middle (127/4
        // rounds to 32), −4 the bottom, no change the middle.
        assert_eq!(d.levels, vec![160, 96, 128, 1, 128]);
        assert!(!d.dead);
        // A−B and B−A mirror each other about 128.
        let (r, _) = difference(&b, &a);
        for (x, y) in d.levels.iter().zip(&r.levels) {
            assert_eq!(u16::from(*x) + u16::from(*y), 256);
        }
        let (same, max) = difference(&a, &a);
        assert_eq!(max, 0.0);
        assert!(same.dead);
        assert!(same.levels.iter().all(|&l| l == 128));
    }

    #[test]
    fn channels_order_by_mean_difference_then_network_order() {
        let a = [0.5, 2.0, 1.0, 1.0];
        let b = [0.5, 0.0, 1.5, 0.5];
        assert_eq!(by_difference(&a, &b), vec![1, 2, 3, 0]);
        assert_eq!(
            channel_means(&[1.0, 3.0, 0.0, f32::NAN, 4.0, 4.0], 3),
            vec![2.0, 0.0, 4.0]
        );
    }

    #[test]
    fn the_cat_channel_comes_first_by_selectivity() {
        // Classes: 0 cat, 1 dog. Channel 0 answers both; 1 mostly dogs; 2 only cats; 3 never.
        let class_means = vec![vec![1.0, 0.2, 3.0, 0.0], vec![1.0, 0.6, 0.0, 0.0]];
        let sel = selectivity(&class_means);
        assert_eq!(by_selectivity(&sel), vec![2, 1, 0, 3]);
        assert_eq!(sel[2].preferred, 0);
        assert!((sel[2].index - 1.0).abs() < 1e-12);
        assert_eq!(sel[1].preferred, 1);
        assert!((sel[1].index - 0.5).abs() < 1e-12);
        assert_eq!(sel[0].index, 0.0);
        assert_eq!(sel[3].index, 0.0);
        // Three classes: μ_rest is the mean of the other two.
        let sel = selectivity(&[vec![4.0], vec![1.0], vec![3.0]]);
        assert!((sel[0].index - (4.0 - 2.0) / (4.0 + 2.0)).abs() < 1e-12);
    }

    #[test]
    fn rows_follow_the_order_and_csv_names_the_class() {
        let sel = selectivity(&[vec![1.0, 0.0], vec![0.0, 1.0]]);
        let rows = rows(&[0.1, 0.9], &[0.2, 0.1], Some(&sel), Order::Diff);
        assert_eq!(
            rows.iter().map(|r| r.channel).collect::<Vec<_>>(),
            vec![1, 0]
        );
        let text = csv(&rows, &["cat".into(), "dog".into()]);
        assert_eq!(
            text,
            format!(
                "{CSV_HEADER}\n2,0.900000,0.100000,0.800000,1.000000,dog\n1,0.100000,0.200000,-0.100000,1.000000,cat\n"
            )
        );
        let natural = super::rows(&[0.1, 0.9], &[0.2, 0.1], None, Order::Selectivity);
        assert_eq!(
            natural.iter().map(|r| r.channel).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert!(csv(&natural, &[]).ends_with("2,0.900000,0.100000,0.800000,,\n"));
        assert_eq!(Order::Diff.next().next().next(), Order::Diff);
    }
}
