//! The validation pass runs the conv layers a few images at a time
//! (`health::Gather::forward_chunked`): its logits and unit health must be exactly those of
//! the whole batch at once (`Gather::forward`), and the logits those of the fused forward pass.

use burn::module::Module as _;
use burn::tensor::{Device, Distribution, Tensor};
use convscope::config::Config;
use convscope::model::health::Gather;
use convscope::model::{Net, read_f32, summary};

fn net(device: &Device) -> (Net, Vec<String>) {
    let mut cfg = Config::default();
    cfg.data.image_size = [40, 40];
    let net = Net::new(&cfg, 3, 7, device).expect("a valid network");
    let names = summary::summarize(&cfg, 3)
        .expect("summary")
        .into_iter()
        .map(|r| r.name)
        .collect();
    (net.valid(), names)
}

#[test]
fn chunked_validation_gives_the_whole_batch_s_logits_and_health_bit_for_bit() {
    let device = Device::flex();
    let (net, names) = net(&device);
    // Two batches, 11 and 5 images: chunks of 4 leave a short last chunk, and a batch no
    // larger than a chunk runs whole.
    let batches: Vec<Tensor<4>> = [11, 5]
        .iter()
        .map(|&n| Tensor::<4>::random([n, 3, 40, 40], Distribution::Default, &device))
        .collect();
    let mut whole = Gather::new(&net, &names);
    let mut chunked = Gather::new(&net, &names);
    let mut seen = 0;
    for x in &batches {
        let n = x.dims()[0];
        // The validation indices (counted backwards, so that they are not the order seen) and
        // the classes, for the strongest activations and the class-conditional means.
        let indices: Vec<usize> = (seen..seen + n).map(|i| 100 - i).collect();
        let labels: Vec<usize> = (seen..seen + n).map(|i| i % 3).collect();
        seen += n;
        for g in [&mut whole, &mut chunked] {
            g.set_images(&indices);
            g.set_labels(&labels);
        }
        let a = read_f32(whole.forward(&net, x.clone()).expect("forward"), "l").expect("l");
        let b = read_f32(
            chunked
                .forward_chunked(&net, x.clone(), 4)
                .expect("forward_chunked"),
            "l",
        )
        .expect("l");
        let fused = read_f32(net.forward(x.clone(), false, false).logits, "l").expect("l");
        assert_eq!(a.len(), x.dims()[0] * 3);
        assert_eq!(a, b, "chunked logits differ from the whole batch's");
        assert_eq!(
            a, fused,
            "validation logits differ from the fused forward's"
        );
        whole.add_logits(&a);
        chunked.add_logits(&b);
    }
    let a = whole.finish(&net, 1, 1.0).expect("finish");
    let b = chunked.finish(&net, 1, 1.0).expect("finish");
    assert_eq!(a.images, 16);
    assert!(a.layers.len() >= 4, "{:?}", a.layers.len());
    // Some unit is on somewhere: the comparison is not between two empty records.
    assert!(
        a.layers
            .iter()
            .any(|l| l.channels.iter().any(|c| c.on_rate > 0.0))
    );
    // The strongest activations and the class means are there, on the indices given.
    let conv = &a.layers[0];
    assert_eq!(conv.top.len(), conv.channels.len());
    assert!(conv.top.iter().flatten().all(|t| t.image > 100 - 16));
    assert_eq!(conv.class_means.len(), 3);
    assert_eq!(a, b, "chunked unit health differs from the whole batch's");
}
