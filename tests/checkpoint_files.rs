//! The trainer's checkpoint files (`train::snapshot`: copied into reused file images, hashed
//! there, written unbuffered where the file system allows) are byte for byte what burn's own
//! `Module::save_file` and `ModuleOptimizer::save` write, and load back as such.

use burn::module::Module as _;
use burn::optim::{GradientsParams, ModuleOptimizer};
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
    // One optimizer step of `net` on `x` with these labels.
    let step = |optim: &mut ModuleOptimizer, net: Net, labels: &[usize]| {
        let loss = model::loss(net.forward(x.clone(), true, false).logits, labels, &device);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        optim.step(cfg.optimizer.lr, net, grads)
    };
    let mut net = net;
    for _ in 0..2 {
        net = step(&mut optim, net, &[0, 1, 1]);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // One set of snapshot images for every checkpoint of a run: the second is written over the
    // first's images, after one more step changed every weight and moment.
    let snapshots = convscope::train::snapshot::Snapshots::default();
    for round in 0..2 {
        if round == 1 {
            net = step(&mut optim, net, &[1, 0, 1]);
        }
        let (ours, burns) = (
            dir.path().join(format!("ours-{round}")),
            dir.path().join(format!("burns-{round}")),
        );
        std::fs::create_dir_all(&ours).expect("mkdir");
        std::fs::create_dir_all(&burns).expect("mkdir");
        let files = snapshots.take(&net, &optim).expect("laid out");
        // What the snapshot holds is a copy: a step taken before the files are written
        // changes nothing in them.
        let (net_after, optim_after) = {
            let mut o = optim.clone();
            (step(&mut o, net.clone(), &[0, 0, 1]), o)
        };
        let hashes = files(&ours).expect("written").expect("hashed as written");
        drop((net_after, optim_after));
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
            assert!(
                a == b,
                "round {round}, {file}: the bytes differ from burn's own"
            );
        }
        assert_ne!(hashes.model, hashes.files);
    }
    let ours = dir.path().join("ours-1");
    // The one-off writer gives the same files.
    let once = dir.path().join("once");
    std::fs::create_dir_all(&once).expect("mkdir");
    convscope::train::files_writer(&net, &optim).expect("laid out")(&once).expect("written");
    for file in [MODEL_FILE, OPTIM_FILE] {
        assert!(
            std::fs::read(ours.join(file)).expect("read")
                == std::fs::read(once.join(file)).expect("read"),
            "{file}"
        );
    }
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
