//! Training-step benchmark of the tutorial CNN with burn's ops, the fast ones, or the fused ones.
//!
//! The net is the Keras tutorial's: three conv(3x3, same) + `ReLU` + max-pool(2) blocks with 16, 32
//! and 64 channels, dropout 0.2 after the first and last block, then dense 512 + `ReLU` and dense 1,
//! trained with binary cross-entropy on logits and Adam. Flex runs eagerly, so wall-clock time
//! around each call is the time of that call.

use std::time::{Duration, Instant};

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};

use super::{conv2d_relu, conv2d_relu_pool, max_pool2d, profile};

/// Learning rate of the benchmark's Adam steps.
const LEARNING_RATE: f64 = 1e-3;

/// Which implementation of the conv and pool calls a benchmark uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpsPath {
    /// burn's `conv2d`, `relu` and `max_pool2d`.
    Burn,
    /// [`conv2d_relu`] and [`max_pool2d`] on the fast path.
    Fast,
    /// [`conv2d_relu_pool`]: convolution, `ReLU` and pooling as one fast op.
    Fused,
}

impl OpsPath {
    /// Every path, burn's first.
    pub const ALL: [Self; 3] = [Self::Burn, Self::Fast, Self::Fused];

    /// Short lower-case name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Burn => "burn",
            Self::Fast => "fast",
            Self::Fused => "fused",
        }
    }

    fn fast(self) -> bool {
        self != Self::Burn
    }
}

/// The tutorial CNN built from burn's layers; only the calls differ between the two paths.
#[derive(Module, Debug)]
struct Net {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    fc1: Linear,
    fc2: Linear,
    dropout: Dropout,
}

impl Net {
    fn new(size: usize, device: &Device) -> Self {
        let conv = |cin, cout| {
            Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        let flat = 64 * (size / 8) * (size / 8);
        Self {
            conv1: conv(3, 16),
            conv2: conv(16, 32),
            conv3: conv(32, 64),
            fc1: LinearConfig::new(flat, 512).init(device),
            fc2: LinearConfig::new(512, 1).init(device),
            dropout: DropoutConfig::new(0.2).init(),
        }
    }

    /// Logits `[batch, 1]` of images `[batch, 3, size, size]`.
    fn forward(&self, x: Tensor<4>, path: OpsPath) -> Tensor<2> {
        let block = |x: Tensor<4>, conv: &Conv2d| {
            let bias = conv.bias.as_ref().map(burn::module::Param::val);
            let weight = conv.weight.val();
            if path == OpsPath::Fused {
                return conv2d_relu_pool(x, weight, bias, [1, 1], [1, 1], 2, true);
            }
            let y = conv2d_relu(x, weight, bias, [1, 1], [1, 1], path.fast());
            max_pool2d(y, 2, path.fast())
        };
        let x = block(x, &self.conv1); // [batch, 16, size/2, size/2]
        let x = self.dropout.forward(x);
        let x = block(x, &self.conv2); // [batch, 32, size/4, size/4]
        let x = block(x, &self.conv3); // [batch, 64, size/8, size/8]
        let x = self.dropout.forward(x);
        let x: Tensor<2> = x.flatten(1, 3); // [batch, 64 * (size/8)^2]
        let x = relu(self.fc1.forward(x)); // [batch, 512]
        self.fc2.forward(x) // [batch, 1]
    }
}

/// Mean time of one named part of the step.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// What was timed, e.g. `"conv2 backward"`.
    pub name: String,
    /// Mean milliseconds per step (or per call for the per-op rows).
    pub ms: f64,
}

/// Result of [`bench_step`].
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    /// Which ops were used.
    pub path: OpsPath,
    /// Images per step.
    pub batch: usize,
    /// Image side in pixels.
    pub size: usize,
    /// Timed steps (after one warm-up step).
    pub steps: usize,
    /// Training throughput.
    pub images_per_sec: f64,
    /// Mean milliseconds of one full step.
    pub step_ms: f64,
    /// Mean CPU milliseconds (all threads, user + system) of one full step, where the OS reports
    /// it; unlike wall time it barely moves when other processes share the cores.
    pub cpu_ms: Option<f64>,
    /// Step phases (forward, backward, optimizer), the fast ops' kernel times inside the step
    /// (fast paths only), then each conv and pool op (or fused op) timed alone.
    pub phases: Vec<Phase>,
}

fn ms(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e3 / n.max(1) as f64
}

/// Train the tutorial net `steps` times on random `[batch, 3, size, size]` images on the flex CPU
/// device with the ops of `path`, and time it.
///
/// # Panics
/// Panics when `size` is smaller than 8 (three 2x2 poolings need at least one pixel).
#[must_use]
pub fn bench_step(batch: usize, size: usize, steps: usize, path: OpsPath) -> BenchReport {
    assert!(size >= 8, "bench_step: size {size} is below 8");
    let device = Device::flex().autodiff();
    let mut model = Net::new(size, &device);
    let mut optim = AdamConfig::new().init();
    let images = Tensor::<4>::random(
        [batch, 3, size, size],
        Distribution::Uniform(0.0, 1.0),
        &device,
    );
    let labels = Tensor::<2>::random([batch, 1], Distribution::Bernoulli(0.5), &device);

    let (mut fwd, mut bwd, mut opt) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut cpu_start = None;
    // Step 0 warms up allocators, thread pools and per-thread buffers; it is not timed.
    for step in 0..=steps {
        if step == 1 {
            profile::enable(true);
            cpu_start = process_cpu_time();
        }
        let t0 = Instant::now();
        let logits = model.forward(images.clone(), path);
        // Binary cross-entropy on logits: softplus(z) - y z, averaged.
        let loss = (logits.clone().exp().log1p() - logits * labels.clone()).mean();
        let t1 = Instant::now();
        let grads = loss.backward();
        let t2 = Instant::now();
        let grads = GradientsParams::from_grads(grads, &model);
        model = optim.step(LEARNING_RATE, model, grads);
        let t3 = Instant::now();
        if step > 0 {
            fwd += t1 - t0;
            bwd += t2 - t1;
            opt += t3 - t2;
        }
    }
    let cpu = cpu_start
        .zip(process_cpu_time())
        .map(|(start, end)| end.saturating_sub(start));
    let inside = profile::totals();
    profile::enable(false);
    let total = fwd + bwd + opt;
    let mut phases = vec![
        Phase {
            name: "step forward".into(),
            ms: ms(fwd, steps),
        },
        Phase {
            name: "step backward".into(),
            ms: ms(bwd, steps),
        },
        Phase {
            name: "step optimizer".into(),
            ms: ms(opt, steps),
        },
    ];
    // The fast ops' own kernels (inputs made contiguous, outputs allocated) inside the steps.
    phases.extend(inside.into_iter().map(|(name, d)| Phase {
        name: format!("in step: {name}"),
        ms: ms(d, steps),
    }));
    phases.extend(op_phases(batch, size, steps.clamp(1, 3), path, &device));
    BenchReport {
        path,
        batch,
        size,
        steps,
        images_per_sec: (batch * steps) as f64 / total.as_secs_f64().max(f64::MIN_POSITIVE),
        step_ms: ms(total, steps),
        cpu_ms: cpu.filter(|_| steps > 0).map(|d| ms(d, steps)),
        phases,
    }
}

/// CPU time of this process so far (all threads, user + system), from `/proc/self/stat`.
#[must_use]
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // Linux reports these in USER_HZ ticks, 100 per second on every mainstream configuration.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Each conv (+`ReLU`) and pool of the net (or each fused op) timed alone, forward and backward,
/// mean over `reps`.
///
/// Backward is `sum().backward()` on the op's output, so it includes a cheap sum and its gradient.
fn op_phases(batch: usize, size: usize, reps: usize, path: OpsPath, device: &Device) -> Vec<Phase> {
    let mut phases = Vec::new();
    let mut side = size;
    for (layer, (cin, cout)) in [(3, 16), (16, 32), (32, 64)].into_iter().enumerate() {
        let normal = Distribution::Normal(0.0, 1.0);
        let x = Tensor::<4>::random([batch, cin, side, side], normal, device);
        // The first layer's input is data: no input gradient, as in training.
        let x = if layer == 0 { x } else { x.require_grad() };
        let w = Tensor::<4>::random([cout, cin, 3, 3], normal, device).require_grad();
        let b = Tensor::<1>::random([cout], normal, device).require_grad();
        let mut times = [Duration::ZERO; 4];
        for rep in 0..=reps {
            let mut lap = Lap::new(rep > 0);
            if path == OpsPath::Fused {
                let out = conv2d_relu_pool(
                    x.clone(),
                    w.clone(),
                    Some(b.clone()),
                    [1, 1],
                    [1, 1],
                    2,
                    true,
                );
                lap.add(&mut times[0]);
                let _grads = out.sum().backward();
                lap.add(&mut times[1]);
                continue;
            }
            let out = conv2d_relu(
                x.clone(),
                w.clone(),
                Some(b.clone()),
                [1, 1],
                [1, 1],
                path.fast(),
            );
            lap.add(&mut times[0]);
            let _grads = out.clone().sum().backward();
            lap.add(&mut times[1]);
            let pool_in = out.detach().require_grad();
            lap.skip();
            let pooled = max_pool2d(pool_in, 2, path.fast());
            lap.add(&mut times[2]);
            let _grads = pooled.sum().backward();
            lap.add(&mut times[3]);
        }
        let n = layer + 1;
        let names = if path == OpsPath::Fused {
            vec![
                format!("conv{n}+relu+pool forward"),
                format!("conv{n}+relu+pool backward"),
            ]
        } else {
            vec![
                format!("conv{n}+relu forward"),
                format!("conv{n}+relu backward"),
                format!("pool{n} forward"),
                format!("pool{n} backward"),
            ]
        };
        for (name, d) in names.into_iter().zip(times) {
            phases.push(Phase {
                name,
                ms: ms(d, reps),
            });
        }
        side /= 2;
    }
    phases
}

/// Stopwatch that adds each lap to a total when recording.
struct Lap {
    last: Instant,
    record: bool,
}

impl Lap {
    fn new(record: bool) -> Self {
        Self {
            last: Instant::now(),
            record,
        }
    }

    fn add(&mut self, total: &mut Duration) {
        let now = Instant::now();
        if self.record {
            *total += now - self.last;
        }
        self.last = now;
    }

    fn skip(&mut self) {
        self.last = Instant::now();
    }
}
