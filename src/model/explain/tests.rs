use super::*;
use crate::config::Config;
use burn::tensor::Distribution;
use rand::Rng as _;

fn small_net(classes: usize, seed: u64) -> (Net, Config) {
    let mut c = Config::default();
    c.data.image_size = [16, 16];
    let net = Net::new(&c, classes, seed, &Device::flex()).expect("valid");
    (net, c)
}

fn image(seed: u64) -> Tensor<4> {
    let device = Device::flex();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f32> = (0..3 * 16 * 16).map(|_| rng.random::<f32>()).collect();
    Tensor::from_data(TensorData::new(v, [1, 3, 16, 16]), &device)
}

/// The target (as `grad_cam_parts` differentiates it) from the activation at `layer`.
fn target_from(net: &Net, layer: usize, a: Vec<f32>, dims: [usize; 4], class: usize) -> f32 {
    let t = Tensor::<4>::from_data(TensorData::new(a, dims), &Device::flex());
    let logits = forward_from(net, layer + 1, Flow::Map(t));
    target(logits, class).into_scalar()
}

fn target_of(net: &Net, x: Vec<f32>, class: usize) -> f32 {
    let t = Tensor::<4>::from_data(TensorData::new(x, [1, 3, 16, 16]), &Device::flex());
    target(net.forward(t, false, false).logits, class).into_scalar()
}

#[test]
fn default_layer_is_the_last_conv_before_its_pool() {
    let (net, _) = small_net(2, 1);
    assert_eq!(conv_layers(&net), [0, 3, 5]);
    assert_eq!(default_layer(&net), Some(5));
    assert_eq!(class_count(&net), 2);
    assert_eq!(class_count(&small_net(5, 1).0), 5);
}

#[test]
fn channel_weights_match_finite_differences() {
    for (classes, class) in [(2, 1), (2, 0), (4, 2)] {
        let (net, _) = small_net(classes, 3);
        let layer = 3;
        let parts = grad_cam_parts(&net, image(5), layer, class).expect("cam");
        let dims = [1, parts.channels, parts.height, parts.width];
        let plane = parts.height * parts.width;
        // Shifting a whole channel by h changes the target by h * Σ_p dT/dA[c,p]
        // = h * plane * weight[c] (the spatial mean times the plane).
        let h = 2e-3f32;
        let scale = parts.weights.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        assert!(
            scale > 0.0,
            "all weights zero: the test would prove nothing"
        );
        let mut wrong = Vec::new();
        for c in 0..parts.channels {
            let shifted = |d: f32| {
                let mut a = parts.activation.clone();
                for v in &mut a[c * plane..(c + 1) * plane] {
                    *v += d;
                }
                target_from(&net, layer, a, dims, class)
            };
            let fd = (shifted(h) - shifted(-h)) / (2.0 * h) / plane as f32;
            let w = parts.weights[c];
            if (fd - w).abs() > 0.03 * scale + 1e-6 {
                wrong.push((c, w, fd));
            }
        }
        // A ReLU further on crossed by the step may spoil one channel, not more.
        assert!(
            wrong.len() <= 1,
            "classes {classes} class {class}: (channel, weight, finite difference) {wrong:?}"
        );
        // The raw map is ReLU(Σ w·A), computed here independently.
        for p in [0, plane / 2, plane - 1] {
            let s: f32 = (0..parts.channels)
                .map(|c| parts.weights[c] * parts.activation[c * plane + p])
                .sum();
            assert!((parts.raw.values[p] - s.max(0.0)).abs() < 1e-4);
        }
    }
}

#[test]
fn binary_head_class_zero_is_minus_class_one() {
    let (net, _) = small_net(2, 4);
    let one = grad_cam_parts(&net, image(6), 5, 1).expect("cam");
    let zero = grad_cam_parts(&net, image(6), 5, 0).expect("cam");
    for (a, b) in one.weights.iter().zip(&zero.weights) {
        assert!((a + b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn saliency_matches_finite_differences() {
    for (classes, class) in [(2, 1), (3, 0)] {
        let (net, _) = small_net(classes, 7);
        let x = image(8);
        let pixels = read_f32(x.clone(), "x").expect("read");
        let g = input_gradient(&net, x, class).expect("gradient");
        let scale = g.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.0);
        // The 30 pixels with the largest gradient, and 10 spread over the image.
        let mut order: Vec<usize> = (0..g.len()).collect();
        order.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
        let picks: Vec<usize> = order[..30]
            .iter()
            .copied()
            .chain((0..10).map(|k| k * 73 % g.len()))
            .collect();
        let h = 1e-2f32;
        let mut agree = 0;
        for &i in &picks {
            let at = |d: f32| {
                let mut x = pixels.clone();
                x[i] += d;
                target_of(&net, x, class)
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            if (fd - g[i]).abs() <= 0.03 * scale + 1e-5 {
                agree += 1;
            }
        }
        // A ReLU or a max-pool switch crossed by the step may spoil one or two.
        assert!(
            agree >= picks.len() - 2,
            "{agree} of {} pixels agree",
            picks.len()
        );
    }
}

#[test]
fn saliency_map_is_the_channel_max_of_the_gradient() {
    let (net, _) = small_net(2, 7);
    let g = input_gradient(&net, image(9), 1).expect("gradient");
    let Evidence::Map(map) = saliency(&net, image(9), 1).expect("saliency") else {
        panic!("no evidence")
    };
    assert_eq!((map.width, map.height), (16, 16));
    let raw = channel_max_abs(&g, 16, 16);
    let best = raw.values.iter().copied().fold(0.0, f32::max);
    let p = raw.values.iter().position(|&v| v >= best).expect("max");
    assert!((map.values[p] - 1.0).abs() < 1e-5);
}

#[test]
fn smooth_grad_is_seeded_and_differs_from_saliency() {
    let (net, _) = small_net(2, 2);
    let a = smooth_grad(&net, image(3), 1, 11).expect("smoothgrad");
    let b = smooth_grad(&net, image(3), 1, 11).expect("smoothgrad");
    let c = smooth_grad(&net, image(3), 1, 12).expect("smoothgrad");
    let s = saliency(&net, image(3), 1).expect("saliency");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, s);
    assert_eq!(a.size(), (16, 16));
}

#[test]
fn explain_classifies_in_the_pass_it_differentiates() {
    let (net, _) = small_net(3, 5);
    let (predicted, p) = classify(&net, image(4)).expect("classify");
    for method in Method::ALL {
        for layer in [CamLayer::Step(3), CamLayer::AllConv] {
            let e = explain(&net, image(4), method, layer, None).expect("explain");
            assert_eq!(e.class, predicted, "{method:?}");
            for (a, b) in e.probabilities.iter().zip(&p) {
                assert!((a - b).abs() < 1e-5, "{method:?}: {a} vs {b}");
            }
            let other = (predicted + 1) % 3;
            let e = explain(&net, image(4), method, layer, Some(other)).expect("explain");
            assert_eq!(e.class, other);
        }
    }
    assert!(explain(&net, image(4), Method::GradCam, CamLayer::AllConv, Some(3)).is_err());
}

#[test]
fn all_layers_average_at_the_largest_resolution() {
    let (net, _) = small_net(2, 1);
    let all = grad_cam(&net, image(2), CamLayer::AllConv, 1).expect("cam");
    assert_eq!(all.size(), (16, 16));
    let one = grad_cam(&net, image(2), CamLayer::Step(5), 1).expect("cam");
    assert_eq!(one.size(), (4, 4));
}

#[test]
fn bad_layer_and_class_are_refused() {
    let (net, _) = small_net(2, 1);
    let e = grad_cam(&net, image(1), CamLayer::Step(1), 0).expect_err("pool");
    assert!(e.to_string().contains("[0, 3, 5]"), "{e}");
    let e = grad_cam(&net, image(1), CamLayer::Step(5), 2).expect_err("class");
    assert!(e.to_string().contains("2 classes"), "{e}");
    let batch = Tensor::<4>::random([2, 3, 16, 16], Distribution::Default, &Device::flex());
    assert!(saliency(&net, batch, 0).is_err());
}

#[test]
fn normalisation_and_no_positive_evidence() {
    let h = Heat {
        width: 2,
        height: 1,
        values: vec![1.0, 3.0],
    };
    let n = h.normalised().expect("positive");
    assert!(n.values[0].abs() < 1e-6 && (n.values[1] - 1.0).abs() < 1e-6);
    let flat = Heat {
        width: 2,
        height: 1,
        values: vec![0.0, 0.0],
    };
    assert_eq!(
        Evidence::of(&flat),
        Evidence::NoPositiveEvidence {
            width: 2,
            height: 1
        }
    );
    // All weights negative on a non-negative activation: ReLU leaves nothing.
    let m = weighted_map(&[-1.0, -0.5], &[1.0, 2.0, 3.0, 4.0], 2, 1);
    assert!(m.normalised().is_none());
}

#[test]
fn bilinear_resize_keeps_corners_and_interpolates() {
    let h = Heat {
        width: 2,
        height: 1,
        values: vec![0.0, 1.0],
    };
    let r = h.resized(4, 1);
    assert_eq!(r.values, [0.0, 0.25, 0.75, 1.0]);
    let r = h.resized(2, 3);
    assert_eq!(r.values, [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
}
