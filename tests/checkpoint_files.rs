//! The trainer's checkpoint files (`train::files_writer`: serialised in memory, hashed there,
//! written unbuffered where the file system allows) are byte for byte what burn's own
//! `Module::save_file` and `ModuleOptimizer::save` write, and load back as such.

use burn::module::Module as _;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use convscope::config::Config;
use convscope::model::{self, Net};
use convscope::run::checkpoint::{MODEL_FILE, OPTIM_FILE};

#[test]
fn checkpoint_files_are_burns_own_bytes_and_load_back() {
    let mut cfg = Config::default();
    cfg.data.image_size = [32, 32];
    let device = Device::flex().autodiff();
    let net = Net::new(&cfg, 2, 5, &device).expect("a valid network");
    let mut optim = model::ops::adam::adam(&cfg.optimizer);
    // Two steps, so that the optimizer has moments and a step count to save.
    let n = 3;
    let x = Tensor::<4>::from_data(
        TensorData::new(
            (0..n * 3 * 32 * 32)
                .map(|i| (i % 29) as f32 / 29.0)
                .collect::<Vec<f32>>(),
            [n, 3, 32, 32],
        ),
        &device,
    );
    let mut net = net;
    for _ in 0..2 {
        let loss = model::loss(
            net.forward(x.clone(), true, false).logits,
            &[0, 1, 1],
            &device,
        );
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(cfg.optimizer.lr, net, grads);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (ours, burns) = (dir.path().join("ours"), dir.path().join("burns"));
    std::fs::create_dir_all(&ours).expect("mkdir");
    std::fs::create_dir_all(&burns).expect("mkdir");
    let hashes = convscope::train::files_writer(net.clone(), optim.clone())(&ours)
        .expect("written")
        .expect("hashed as written");
    net.clone()
        .save_file(burns.join(MODEL_FILE))
        .expect("save_file");
    optim.save(burns.join(OPTIM_FILE)).expect("save");
    for file in [MODEL_FILE, OPTIM_FILE] {
        let (a, b) = (
            std::fs::read(ours.join(file)).expect("read"),
            std::fs::read(burns.join(file)).expect("read"),
        );
        assert!(a.len() > 1000, "{file}: {} bytes", a.len());
        assert!(a == b, "{file}: the bytes differ from burn's own");
    }
    assert_ne!(hashes.model, hashes.files);
    // They load back: the same weights, and an optimizer that steps on from them.
    let loaded = Net::new(&cfg, 2, 99, &device)
        .expect("a valid network")
        .load_file(ours.join(MODEL_FILE));
    let (w0, w1) = (
        model::read_f32(net.convs[0].weight.val(), "w").expect("read"),
        model::read_f32(loaded.convs[0].weight.val(), "w").expect("read"),
    );
    assert_eq!(w0, w1);
    model::ops::adam::adam(&cfg.optimizer)
        .load(ours.join(OPTIM_FILE))
        .expect("the optimizer state loads");
}
