//! Adam in three passes over each parameter on flex, instead of burn's dozen element-wise ops
//! (each a pass over memory and a fresh buffer; for the tutorial net's 19 M-weight dense layer
//! that is 76 MB a pass). Same update, same formula order, same state type as burn's `Adam`,
//! so checkpoints of either load in the other; anywhere but flex, burn's `Adam` runs.

use burn::backend::Dispatch;
use burn::optim::{
    Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
};
use burn::tensor::{Device, Tensor};

use super::flex::FastOps;
use super::flex_f32;

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
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let amsgrad = state
            .as_ref()
            .is_some_and(|s| s.momentum.max_moment_2.is_some());
        if !flex_f32(&tensor) || !flex_f32(&grad) || amsgrad {
            return self.reference.step(lr, tensor, grad, state);
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
        let ema = |prev: Tensor<D>, beta: f32, square: bool| {
            Tensor::<D>::from_dispatch(<Dispatch as FastOps>::fast_ema(
                prev.into_dispatch(),
                grad.clone().into_dispatch(),
                beta,
                square,
            ))
        };
        let m = ema(m, self.beta_1, false);
        let v = ema(v, self.beta_2, true);
        let t = time as i32;
        let bias_correction2_sqrt = (1.0 - self.beta_2.powi(t)).sqrt();
        let combined = bias_correction2_sqrt / (1.0 - self.beta_1.powi(t));
        let updated = Tensor::<D>::from_dispatch(<Dispatch as FastOps>::fast_adam_apply(
            tensor.into_dispatch(),
            m.clone().into_dispatch(),
            v.clone().into_dispatch(),
            [combined, self.epsilon * bias_correction2_sqrt, lr as f32],
        ));
        let state = AdamState::new(AdaptiveMomentumState::new(time, m, v));
        (updated, Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        Adam::to_device(state, device)
    }
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
