//! `bench --breakdown`'s `kernels A/B` table: the training step with each convolution kernel
//! variant, taking turns in one process.

use std::time::Instant;

use burn::tensor::Device;

use super::{Stepper, out};

/// The kernel variants [`kernel_ab`] compares: name, pooled backward, Winograd. The first is the
/// default and the one the others are compared with.
const KERNEL_VARIANTS: [(&str, bool, bool); 3] = [
    ("pooled", true, false),
    ("im2col", false, false),
    ("winograd", true, true),
];

/// The training step with each of [`KERNEL_VARIANTS`]: the pooled backward kernel (the default),
/// the dense im2col backward pass everywhere, and Winograd where it applies. They alternate step
/// by step in this one process (the order rotates every round), so all see the same machine
/// load: median wall time, CPU time, and each fast op's time.
pub(super) fn kernel_ab(s: &mut Stepper, ad: &Device, steps: usize) {
    use crate::model::ops::bench::process_cpu_time;
    use crate::model::ops::conv::{pooled, winograd};
    use crate::model::ops::profile;
    use std::fmt::Write as _;
    use std::time::Duration;
    const V: usize = KERNEL_VARIANTS.len();
    let was = (pooled::enabled(), winograd::enabled());
    let mut wall: [Vec<f64>; V] = Default::default();
    let mut cpu = [Duration::ZERO; V];
    let mut cpu_ok = true;
    let mut kernels: [Vec<(String, Duration)>; V] = Default::default();
    for round in 0..=steps.max(1) {
        for j in 0..V {
            let i = (round + j) % V;
            let (_, pool_on, wino_on) = KERNEL_VARIANTS[i];
            pooled::set_enabled(pool_on);
            winograd::set_enabled(wino_on);
            profile::enable(true);
            let c0 = process_cpu_time();
            let t0 = Instant::now();
            s.step(ad);
            let dt = t0.elapsed();
            let c1 = process_cpu_time();
            let totals = profile::totals();
            profile::enable(false);
            if round == 0 {
                continue; // warms every variant's buffers
            }
            wall[i].push(dt.as_secs_f64() * 1e3);
            match (c0, c1) {
                (Some(a), Some(b)) => cpu[i] += b.saturating_sub(a),
                _ => cpu_ok = false,
            }
            for (name, d) in totals {
                match kernels[i].iter_mut().find(|(n, _)| *n == name) {
                    Some(entry) => entry.1 += d,
                    None => kernels[i].push((name, d)),
                }
            }
        }
    }
    pooled::set_enabled(was.0);
    winograd::set_enabled(was.1);
    let n = steps.max(1) as f64;
    let med: [f64; V] = std::array::from_fn(|i| {
        let mut v = wall[i].clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    });
    let batch = s.shape[0] as f64;
    out(&format!(
        "kernels A/B ({} rotating steps each, one process; CPU ms counts all threads):",
        steps.max(1)
    ));
    let cpu_ms = |i: usize| cpu[i].as_secs_f64() * 1e3 / n;
    for (i, (name, _, _)) in KERNEL_VARIANTS.iter().enumerate() {
        let cpu_txt = if cpu_ok {
            format!("{:.0}", cpu_ms(i))
        } else {
            "?".into()
        };
        out(&format!(
            "  {name:<9} {:7.1} img/s  median step {:7.1} ms  CPU {cpu_txt} ms/step",
            batch * 1e3 / med[i],
            med[i]
        ));
    }
    let base = KERNEL_VARIANTS[0].0;
    for (i, (name, _, _)) in KERNEL_VARIANTS.iter().enumerate().skip(1) {
        out(&format!(
            "  {name} / {base}: {:.2}x by median wall time{}",
            med[0] / med[i],
            if cpu_ok && cpu[i] > Duration::ZERO {
                format!(", {:.2}x by CPU time", cpu_ms(0) / cpu_ms(i))
            } else {
                String::new()
            }
        ));
    }
    out(&format!(
        "  {:<34} {}",
        "op (ms/step)",
        KERNEL_VARIANTS
            .iter()
            .fold(String::new(), |mut t, (name, _, _)| {
                let _ = write!(t, "{name:>11}");
                t
            })
    ));
    for (name, _) in &kernels[0] {
        let cols = kernels.iter().fold(String::new(), |mut t, k| {
            let d = k
                .iter()
                .find(|(n, _)| n == name)
                .map_or(Duration::ZERO, |e| e.1);
            let _ = write!(t, "{:8.1} ms", d.as_secs_f64() * 1e3 / n);
            t
        });
        out(&format!("  {name:<34} {cols}"));
    }
}
