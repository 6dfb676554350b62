use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::Param;
use burn::tensor::{Device, Distribution, Tensor};

use super::*;
use crate::config::{Activation, Config, LayerSpec, Padding, Units};

/// A small network: two convs (8 filters each) with pooling, at `side` pixels.
fn small_net(side: usize, fast: bool) -> (Net, Config) {
    let mut cfg = Config::default();
    cfg.data.image_size = [side as u32, side as u32];
    let conv = |filters| LayerSpec::Conv {
        filters,
        kernel: 3,
        padding: Padding::Same,
        activation: Activation::Relu,
        stride: 1,
    };
    cfg.model.layers = vec![
        conv(8),
        LayerSpec::Maxpool { size: 2 },
        conv(8),
        LayerSpec::Maxpool { size: 2 },
        LayerSpec::Flatten,
        LayerSpec::Dense {
            units: Units::Classes(crate::config::ClassesMarker::Classes),
            activation: Activation::None,
        },
    ];
    cfg.model.conv_impl = if fast {
        crate::config::ConvImpl::Fast
    } else {
        crate::config::ConvImpl::Reference
    };
    let mut net = Net::new(&cfg, 2, 3, &Device::flex()).expect("valid config");
    // Zero-sum filters and no bias answer flat grey with 0: the random start's activation is
    // its noise alone, as for a trained filter that looks for a pattern.
    for conv in &mut net.convs {
        let w = conv.weight.val();
        let mean = w.clone().mean_dim(1).mean_dim(2).mean_dim(3);
        conv.weight = Param::from_tensor(w - mean);
    }
    (net, cfg)
}

fn run(
    net: &Net,
    step: usize,
    side: usize,
    filters: &[usize],
    settings: &Settings,
) -> Vec<Maximized> {
    let never = AtomicBool::new(false);
    maximize(
        net,
        step,
        [3, side, side],
        filters,
        settings,
        &never,
        &mut |_, _| {},
    )
    .expect("maximised")
}

#[test]
fn quick_images_raise_every_filter_far_above_the_random_start() {
    let (net, _) = small_net(24, true);
    let all: Vec<usize> = (0..8).collect();
    // The first layer is linear in the image up to its ReLU, and the deprocessing sets the
    // image's contrast to twice the start's: there 3x is what the shown picture keeps.
    for (step, shown) in [(0, 3.0), (2, 5.0)] {
        let out = run(&net, step, 24, &all, &Settings::new(Tier::Quick, 5));
        assert_eq!(out.len(), 8);
        for m in &out {
            assert!(
                m.activation > 0.0
                    && m.activation >= 5.0 * m.seed_activation
                    && m.shown_activation >= shown * m.seed_activation,
                "step {step} filter {}: {} (shown {}) from {}",
                m.filter,
                m.activation,
                m.shown_activation,
                m.seed_activation
            );
            assert!(m.image.iter().all(|v| (0.0..=1.0).contains(v)));
            let mean = m.image.iter().sum::<f32>() / m.image.len() as f32;
            assert!((mean - 0.5).abs() < 0.05, "deprocessed mean {mean}");
        }
    }
}

#[test]
fn regularised_images_raise_every_filter_far_above_the_start() {
    let (net, _) = small_net(24, true);
    let all: Vec<usize> = (0..8).collect();
    let mut settings = Settings::new(Tier::Regularised, 5);
    settings.steps = 64;
    settings.tv_weight = 0.01;
    let out = run(&net, 2, 24, &all, &settings);
    for m in &out {
        assert!(
            m.activation > 0.0 && m.activation >= 5.0 * m.seed_activation,
            "filter {}: {} from {}",
            m.filter,
            m.activation,
            m.seed_activation
        );
        assert!(m.image.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

#[test]
fn the_same_seed_gives_the_same_images_whatever_the_batch() {
    let (net, _) = small_net(20, true);
    for tier in [Tier::Quick, Tier::Regularised] {
        let mut settings = Settings::new(tier, 11);
        settings.steps = 6;
        let a = run(&net, 2, 20, &[0, 1, 2, 3], &settings);
        let b = run(&net, 2, 20, &[0, 1, 2, 3], &settings);
        assert_eq!(a, b, "{tier:?}: one seed, two results");
        // Filter 2 alone is the same image as filter 2 among others.
        let alone = run(&net, 2, 20, &[2], &settings);
        assert_eq!(alone[0], a[2], "{tier:?}: the batch changed filter 2");
        settings.seed = 12;
        let c = run(&net, 2, 20, &[0, 1, 2, 3], &settings);
        assert_ne!(
            a[0].image, c[0].image,
            "{tier:?}: another seed, the same image"
        );
    }
}

#[test]
fn cancel_stops_between_steps() {
    let (net, _) = small_net(16, true);
    for tier in [Tier::Quick, Tier::Regularised] {
        let cancel = AtomicBool::new(false);
        let mut seen = Vec::new();
        let result = maximize(
            &net,
            0,
            [3, 16, 16],
            &[0, 1],
            &Settings::new(tier, 1),
            &cancel,
            &mut |done, steps| {
                seen.push((done, steps));
                if done == 3 {
                    cancel.store(true, Ordering::Relaxed);
                }
            },
        );
        let steps = tier.default_steps();
        assert!(
            matches!(result, Err(MaximizeError::Cancelled { done: 3, steps: s }) if s == steps),
            "{tier:?}: {result:?}"
        );
        assert_eq!(seen, [(1, steps), (2, steps), (3, steps)]);
    }
}

#[test]
fn refuses_a_layer_that_is_not_a_conv_and_a_filter_it_lacks() {
    let (net, _) = small_net(16, true);
    let never = AtomicBool::new(false);
    let s = Settings::new(Tier::Quick, 1);
    let r = maximize(&net, 1, [3, 16, 16], &[0], &s, &never, &mut |_, _| {});
    assert!(
        matches!(r, Err(MaximizeError::NotConv { step: 1 })),
        "{r:?}"
    );
    let r = maximize(&net, 0, [3, 16, 16], &[8], &s, &never, &mut |_, _| {});
    assert!(
        matches!(
            r,
            Err(MaximizeError::NoSuchFilter {
                filter: 8,
                filters: 8
            })
        ),
        "{r:?}"
    );
}

/// The frozen network's input gradient, fast kernels against burn's, and no weight gradient.
#[test]
fn frozen_fast_convolution_gives_burns_input_gradient_and_no_weight_gradient() {
    let (fast, _) = small_net(16, true);
    let (mut reference, _) = small_net(16, false);
    // The same weights in both.
    for (r, f) in reference.convs.iter_mut().zip(&fast.convs) {
        r.weight = Param::from_tensor(f.weight.val());
        r.bias = Param::from_tensor(f.bias.val() + 0.05);
    }
    let fast = Net {
        convs: fast
            .convs
            .iter()
            .map(|c| crate::model::ConvParams {
                weight: Param::from_tensor(c.weight.val()),
                bias: Param::from_tensor(c.bias.val() + 0.05),
            })
            .collect(),
        ..fast
    };
    let x = Tensor::<4>::random([2, 3, 16, 16], Distribution::Default, &Device::flex());
    let filters = [1, 6];
    let grad = |net: &Net| {
        let frozen = net.clone().train().no_grad();
        let target = Target {
            net: &frozen,
            step: 2,
            filters: &filters,
        };
        let leaf = x.clone().autodiff().require_grad();
        let grads = target.objective(leaf.clone()).sum().backward();
        for conv in &frozen.convs {
            assert!(
                conv.weight.val().grad(&grads).is_none(),
                "a weight gradient"
            );
            assert!(conv.bias.val().grad(&grads).is_none(), "a bias gradient");
        }
        read_f32(leaf.grad(&grads).expect("input gradient"), "grad").expect("f32")
    };
    let (a, b) = (grad(&fast), grad(&reference));
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "no gradient reached the input");
    let diff = a
        .iter()
        .zip(&b)
        .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
    assert!(
        diff <= 1e-4 * scale,
        "input gradients differ by {diff} (scale {scale})"
    );
}

#[test]
fn a_zero_spectrum_is_grey_and_the_warp_keeps_grey_grey() {
    let device = Device::flex();
    let f = Fourier::new(3, 10, 9, &device);
    let zero = Tensor::<4>::zeros([2, 3, 10, 5], &device);
    let image = read_f32(f.image(&zero, &zero), "image").expect("f32");
    assert_eq!(image.len(), 2 * 3 * 10 * 9);
    assert!(image.iter().all(|v| (v - 0.5).abs() < 1e-6));
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for _ in 0..5 {
        let warp = Warp::draw(&mut rng, 10, 9);
        let grey = Tensor::<4>::full([2, 3, 10, 9], 0.5, &device);
        let out = read_f32(warp.apply(grey, 6, &device), "warped").expect("f32");
        assert!(out.iter().all(|v| (v - 0.5).abs() < 1e-5), "{out:?}");
        let white = Tensor::<4>::ones([2, 3, 10, 9], &device);
        let out = read_f32(warp.apply(white, 6, &device), "warped").expect("f32");
        // The middle of the image is white, the rim grey or mixed.
        let [h, w] = warp.out;
        assert!((out[(h / 2) * w + w / 2] - 1.0).abs() < 1e-5);
        assert!(out.iter().all(|v| (0.5 - 1e-5..=1.0 + 1e-5).contains(v)));
    }
}

#[test]
fn one_frequency_is_one_cosine() {
    // A single real coefficient at (ky, kx) = (1, 0) gives a cosine down the rows.
    let device = Device::flex();
    let (h, w) = (8, 6);
    let f = Fourier::new(1, h, w, &device);
    let mut re = vec![0.0; h * (w / 2 + 1)];
    re[w / 2 + 1] = 1.0;
    let re = tensor(re, &[1, 1, h, w / 2 + 1], &device);
    let im = Tensor::<4>::zeros([1, 1, h, w / 2 + 1], &device);
    let image = read_f32(f.image(&re, &im), "image").expect("f32");
    // scale = sqrt(h w) / max(1/h, 1/max(h, w)); value = scale cos(2 pi y / h) / (h w) / 4.
    let scale = ((h * w) as f32).sqrt() / (1.0 / h as f32);
    for y in 0..h {
        let z = scale * (std::f32::consts::TAU * y as f32 / h as f32).cos() / (h * w) as f32 / 4.0;
        let expected = 1.0 / (1.0 + (-z).exp());
        for x in 0..w {
            let got = image[y * w + x];
            assert!(
                (got - expected).abs() < 1e-5,
                "({y}, {x}): {got} vs {expected}"
            );
        }
    }
}
