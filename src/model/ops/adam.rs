//! Adam in one pass over each parameter on flex (`FastOps::fast_adam_step`), instead of burn's
//! dozen element-wise ops (each a pass over memory and a fresh buffer; for the tutorial net's
//! 10.6 M-weight dense layer that is 42 MB a pass). Same update, same formula order, same state
//! type as burn's `Adam`, so checkpoints of either load in the other; anywhere but flex,
//! burn's `Adam` runs.
//!
//! Its state flattens for a record without copying the moments ([`FusedState`]), and
//! [`flatten`] hands what `ModuleOptimizer::to_record` flattened to the checkpoint writer
//! (`train::snapshot`), which writes it into a reused buffer instead of the fresh ones of
//! `OptimizerRecord::into_bytes`.

use std::cell::RefCell;

use burn::backend::Dispatch;
use burn::optim::{
    Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
    RecordState, StateSink, StateSource, join_path,
};
use burn::tensor::{Device, Tensor, TensorData};

use super::flex::FastOps;
use super::{flex_f32, shared_data};

/// Adam with the configured `beta_1`, `beta_2` and `epsilon`, fused on flex.
#[must_use]
pub fn adam(cfg: &crate::config::OptimizerConfig) -> ModuleOptimizer {
    let (beta_1, beta_2, epsilon) = (cfg.beta_1, cfg.beta_2, cfg.epsilon);
    ModuleOptimizer::from(FusedAdam {
        reference: AdamConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .build(),
        beta_1,
        beta_2,
        epsilon,
    })
}

/// The optimizer behind [`adam`].
#[derive(Clone)]
pub struct FusedAdam {
    reference: Adam,
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = FusedState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let state = state.map(|s| s.0);
        let amsgrad = state
            .as_ref()
            .is_some_and(|s| s.momentum.max_moment_2.is_some());
        if !flex_f32(&tensor) || !flex_f32(&grad) || amsgrad {
            let (tensor, state) = self.reference.step(lr, tensor, grad, state);
            return (tensor, state.map(FusedState));
        }
        // A first step is the update from zero moments: b * 0 + (1 - b) * g is (1 - b) * g.
        let (m, v, time) = match state {
            Some(s) => (
                s.momentum.moment_1,
                s.momentum.moment_2,
                s.momentum.time + 1,
            ),
            None => (grad.zeros_like(), grad.zeros_like(), 1),
        };
        let t = time as i32;
        let bias_correction2_sqrt = (1.0 - self.beta_2.powi(t)).sqrt();
        let combined = bias_correction2_sqrt / (1.0 - self.beta_1.powi(t));
        let (updated, m, v) = <Dispatch as FastOps>::fast_adam_step(
            tensor.into_dispatch(),
            grad.into_dispatch(),
            m.into_dispatch(),
            v.into_dispatch(),
            [self.beta_1, self.beta_2],
            [combined, self.epsilon * bias_correction2_sqrt, lr as f32],
        );
        let (updated, m, v) = (
            Tensor::<D>::from_dispatch(updated),
            Tensor::<D>::from_dispatch(m),
            Tensor::<D>::from_dispatch(v),
        );
        let state = AdamState::new(AdaptiveMomentumState::new(time, m, v));
        (updated, Some(FusedState(state)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        FusedState(Adam::to_device(state.0, device))
    }
}

/// [`FusedAdam`]'s state for one parameter: burn's `AdamState`, flattened for a record under
/// the same names (so each optimizer loads the other's files) but with the moments' memory
/// shared, not copied, and handed to [`flatten`] when it is listening.
#[derive(Clone)]
pub struct FusedState<const D: usize>(pub AdamState<D>);

impl<const D: usize> RecordState for FusedState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        let param_id = prefix.parse::<u64>().ok();
        let momentum = &self.0.momentum;
        let prefix = join_path(prefix, "momentum");
        out.push_scalar(&prefix, "time", momentum.time.into());
        let moments = [
            ("moment_1", Some(&momentum.moment_1)),
            ("moment_2", Some(&momentum.moment_2)),
            ("max_moment_2", momentum.max_moment_2.as_ref()),
        ];
        for (leaf, tensor) in moments {
            if let Some(t) = tensor {
                out.push_tensor(&prefix, leaf, shared_data(t));
            }
        }
        FLATTENED.with_borrow_mut(|f| {
            let Some(f) = f else { return };
            let Some(id) = param_id else {
                f.unnamed = true;
                return;
            };
            f.ranks.push((id, D));
            f.scalars
                .push((join_path(&prefix, "time"), momentum.time.into()));
            for (leaf, tensor) in moments {
                if let Some(t) = tensor {
                    f.tensors
                        .push((join_path(&prefix, leaf), id, shared_data(t)));
                }
            }
        });
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        AdamState::state_unflatten(prefix, src, device).map(Self)
    }
}

/// The optimizer state as `ModuleOptimizer::to_record` flattens it, the moments' memory shared
/// with the optimizer: what its record file holds, but for the parameter paths (which the
/// module gives).
#[derive(Debug, Default)]
pub struct Flattened {
    /// `(name, parameter id, values)`, named `{id}.momentum.{leaf}` as in the record.
    pub tensors: Vec<(String, u64, TensorData)>,
    /// `(name, value)`: each parameter's step count.
    pub scalars: Vec<(String, burn_pack::Scalar)>,
    /// `(parameter id, rank)` of each parameter with state.
    pub ranks: Vec<(u64, usize)>,
    /// A state flattened under a prefix that is not a parameter id.
    unnamed: bool,
}

thread_local! {
    /// Where [`FusedState::state_flatten`] also puts what it flattens, while [`flatten`] runs.
    static FLATTENED: RefCell<Option<Flattened>> = const { RefCell::new(None) };
}

/// What `optim.to_record()` flattens, with the moments shared (no copy), or `None` when part
/// of the state is not [`FusedAdam`]'s (another optimizer's record must be written by burn).
#[must_use]
pub fn flatten(optim: &ModuleOptimizer) -> Option<Flattened> {
    FLATTENED.set(Some(Flattened::default()));
    let record = optim.to_record();
    let flattened = FLATTENED.take()?;
    (!flattened.unnamed && flattened.tensors.len() == record.len()).then_some(flattened)
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::optim::GradientsParams;
    use burn::tensor::Distribution;

    use super::*;
    use crate::config::Config;
    use crate::model::Net;

    #[test]
    fn the_fused_path_takes_flex_tensors() {
        // What ModuleOptimizer hands the optimizer: the plain tensor under an autodiff one.
        let t = Tensor::<1>::zeros([3], &Device::flex().autodiff());
        assert!(flex_f32(&t.inner()));
        assert!(flex_f32(&Tensor::<1>::zeros([3], &Device::flex())));
    }

    /// The tutorial net after two steps of `optim`.
    fn stepped(optim: &mut ModuleOptimizer) -> Net {
        let device = Device::flex().autodiff();
        let mut cfg = Config::default();
        cfg.data.image_size = [24, 24];
        let mut net = Net::new(&cfg, 3, 5, &device).expect("net");
        for step in 0..2 {
            let x = Tensor::<4>::random([4, 3, 24, 24], Distribution::Default, &device);
            let loss = crate::model::loss(
                net.forward(x, false, false).logits,
                &[0, 1, 2, step],
                &device,
            );
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(1e-3, net, grads);
        }
        net
    }

    #[test]
    fn fused_state_flattens_like_burns_adam_state() {
        let device = Device::flex();
        let t = |seed: f32| Tensor::<2>::from_data([[seed, 2.0], [3.0, 4.0]], &device);
        for max in [None, Some(t(9.0))] {
            let mut momentum = AdaptiveMomentumState::new(7, t(1.0), t(5.0));
            momentum.max_moment_2 = max;
            let state = AdamState::new(momentum);
            let (mut ours, mut burns) = (StateSink::default(), StateSink::default());
            FusedState(state.clone()).state_flatten("42", &mut ours);
            state.state_flatten("42", &mut burns);
            let names =
                |s: &StateSink| s.tensors.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
            assert_eq!(names(&ours), names(&burns));
            for ((_, a), (_, b)) in ours.tensors.iter().zip(&burns.tensors) {
                assert_eq!(a.shape(), b.shape());
                assert_eq!(a.as_bytes(), b.as_bytes());
            }
            assert_eq!(ours.scalars, burns.scalars);
            // And back.
            let mut source = StateSource::new(ours.scalars.iter().cloned().collect());
            for (name, data) in ours.tensors {
                source.insert_tensor(name, data);
            }
            let back = FusedState::<2>::state_unflatten("42", &mut source, &device).expect("back");
            assert_eq!(back.0.momentum.time, 7);
        }
    }

    #[test]
    fn flatten_gives_what_to_record_holds_for_fused_adam_only() {
        let cfg = Config::default();
        let mut ours = adam(&cfg.optimizer);
        let net = stepped(&mut ours);
        let flat = flatten(&ours).expect("fused Adam's state");
        // Every parameter: two moments, a step count and a rank.
        let params = net.num_params();
        assert!(params > 0);
        assert_eq!(flat.ranks.len(), flat.scalars.len());
        assert_eq!(flat.tensors.len(), 2 * flat.ranks.len());
        assert_eq!(flat.tensors.len(), ours.to_record().len());
        for (name, id, _) in &flat.tensors {
            assert!(
                name.starts_with(&format!("{id}.momentum.moment_")),
                "{name}"
            );
        }
        for (name, value) in &flat.scalars {
            assert!(name.ends_with(".momentum.time"), "{name}");
            assert_eq!(usize::try_from(*value).ok(), Some(2), "{name}");
        }
        // Nothing left listening afterwards.
        assert!(FLATTENED.with_borrow(Option::is_none));
        // burn's own Adam: its record is burn's to write.
        let mut burns = AdamConfig::new().init();
        stepped(&mut burns);
        assert!(flatten(&burns).is_none());
    }

    #[test]
    fn fused_adam_steps_like_burns_adam() {
        let device = Device::flex().autodiff();
        let mut cfg = Config::default();
        cfg.data.image_size = [24, 24];
        let net = Net::new(&cfg, 3, 5, &device).expect("net");
        let mut ours = adam(&cfg.optimizer);
        let mut burns = AdamConfig::new().with_epsilon(cfg.optimizer.epsilon).init();
        let (mut a, mut b) = (net.clone(), net);
        for step in 0..3 {
            let x = Tensor::<4>::random([4, 3, 24, 24], Distribution::Default, &device);
            let labels = [0, 1, 2, step % 3];
            let grads = |n: &Net| {
                let loss =
                    crate::model::loss(n.forward(x.clone(), false, false).logits, &labels, &device);
                GradientsParams::from_grads(loss.backward(), n)
            };
            let (ga, gb) = (grads(&a), grads(&b));
            a = ours.step(1e-3, a, ga);
            b = burns.step(1e-3, b, gb);
        }
        let flat = |n: &Net| -> Vec<f32> {
            n.convs
                .iter()
                .map(|c| c.weight.val().flatten::<1>(0, 3))
                .chain(n.denses.iter().map(|d| d.weight.val().flatten::<1>(0, 1)))
                .flat_map(|t| t.into_data().try_to_vec::<f32>().expect("f32 weights"))
                .collect()
        };
        let (fa, fb) = (flat(&a), flat(&b));
        assert_eq!(fa.len(), fb.len());
        let worst = fa
            .iter()
            .zip(&fb)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-6, "weights differ by {worst} after 3 steps");
        assert_eq!(a.num_params(), b.num_params());
    }
}
