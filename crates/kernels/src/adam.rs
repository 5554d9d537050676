//! burn's Adam with each parameter's update in one pass on flex: the same
//! `f32` operations in the same order, value by value, in place, instead of
//! a dozen tensor operations that each write a tensor the size of the
//! parameter. burn's optimiser, its state and its checkpoints are kept.

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, ExtensionType, Flex, backend_extension};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{
    AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
};
use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;

use crate::flex::{f32_values, flex_tensor};

/// Adam with burn's defaults (`AdamConfig::new()`: β₁ 0.9, β₂ 0.999,
/// ε 1e-5) and the given gradient clipping; its state and checkpoints are
/// burn's Adam's.
pub fn adam(grad_clipping: Option<GradientClippingConfig>) -> ModuleOptimizer {
    let optim = ModuleOptimizer::from(FusedAdam {
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-5,
        burns: AdamConfig::new().build(),
    });
    match grad_clipping {
        Some(clipping) => optim.with_grad_clipping(clipping.init()),
        None => optim,
    }
}

#[derive(Clone)]
struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    /// The same optimiser as burn writes it, for other backends and types.
    burns: burn::optim::Adam,
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
        let device = tensor.device();
        if !(device.clone().inner() == Device::flex()
            && !device.is_autodiff()
            && tensor.dtype() == DType::F32
            && grad.dtype() == DType::F32)
        {
            return self.burns.step(lr, tensor, grad, state);
        }
        let (time, moment_1, moment_2) = match state {
            Some(AdamState { momentum }) => (momentum.time, momentum.moment_1, momentum.moment_2),
            // burn's first step starts from moments of zero.
            None => (
                0,
                Tensor::zeros(tensor.shape(), (&device, DType::F32)),
                Tensor::zeros(tensor.shape(), (&device, DType::F32)),
            ),
        };
        let time = time + 1;
        // The factors exactly as burn computes them, in `f32`.
        let powi = |beta: f32| beta.powi(time as i32);
        let correction_2 = (1.0 - powi(self.beta_2)).sqrt();
        let constants = Constants {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            factor: correction_2 / (1.0 - powi(self.beta_1)),
            epsilon: self.epsilon * correction_2,
            lr: lr as f32,
        };
        let updated = <Dispatch as AdamUpdate>::adam_update(
            tensor.into_dispatch(),
            grad.into_dispatch(),
            moment_1.into_dispatch(),
            moment_2.into_dispatch(),
            constants,
        );
        let momentum = AdaptiveMomentumState::new(
            time,
            Tensor::from_dispatch(updated.moment_1),
            Tensor::from_dispatch(updated.moment_2),
        );
        (
            Tensor::from_dispatch(updated.tensor),
            Some(AdamState::new(momentum)),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <burn::optim::Adam as Optimizer>::to_device(state, device)
    }
}

/// One step's scalars: burn's `combined_factor`, its `ε · √(1 − β₂ᵗ)` and
/// the learning rate.
#[derive(Debug, Clone, Copy)]
struct Constants {
    beta_1: f32,
    beta_2: f32,
    factor: f32,
    epsilon: f32,
    lr: f32,
}

/// A parameter and its two moments after one step.
#[derive(ExtensionType)]
struct Updated<B: Backend> {
    tensor: FloatTensor<B>,
    moment_1: FloatTensor<B>,
    moment_2: FloatTensor<B>,
}

#[backend_extension(Flex)]
trait AdamUpdate: Backend {
    /// One Adam step of `tensor` with `grad` from the moments of the last.
    fn adam_update(
        tensor: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        constants: Constants,
    ) -> Updated<Self>;
}

/// Values per parallel task.
const CHUNK: usize = 1 << 14;

impl AdamUpdate for Flex {
    fn adam_update(
        tensor: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        k: Constants,
    ) -> Updated<Flex> {
        let grad = grad.to_contiguous();
        let (mut tensor, mut moment_1, mut moment_2) =
            (owned(tensor), owned(moment_1), owned(moment_2));
        let (p, m, v) = (
            tensor.storage_mut::<f32>(),
            moment_1.storage_mut::<f32>(),
            moment_2.storage_mut::<f32>(),
        );
        let (factor_1, factor_2) = (1.0 - k.beta_1, 1.0 - k.beta_2);
        p.par_chunks_mut(CHUNK)
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .zip(f32_values(&grad).par_chunks(CHUNK))
            .for_each(|(((p, m), v), g)| {
                for (((p, m), v), &g) in p.iter_mut().zip(m).zip(v).zip(g) {
                    *m = *m * k.beta_1 + g * factor_1;
                    *v = *v * k.beta_2 + g * g * factor_2;
                    let update = *m * k.factor / (v.sqrt() + k.epsilon);
                    *p -= update * k.lr;
                }
            });
        Updated {
            tensor,
            moment_1,
            moment_2,
        }
    }
}

/// `t` as a tensor whose storage holds exactly its values in order, so that
/// they can be written in place (`storage_mut` copies them first only where
/// another tensor shares them).
fn owned(t: FlexTensor) -> FlexTensor {
    let whole = t.layout().contiguous_offsets() == Some((0, t.storage::<f32>().len()));
    if whole {
        t
    } else {
        let shape = t.layout().shape().to_vec();
        flex_tensor(f32_values(&t.to_contiguous()).to_vec(), shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;

    use untrainable_core::parameter_values;

    /// A few steps of a small linear layer on a fixed loss.
    fn train(mut optim: ModuleOptimizer, steps: usize) -> Vec<f32> {
        let device = Device::flex().autodiff();
        let _seeded = untrainable_core::random_stream_lock();
        untrainable_core::seed(&device, 7);
        let mut layer: Linear = LinearConfig::new(5, 3).init(&device);
        let x = Tensor::<2>::random([8, 5], burn::tensor::Distribution::Default, &device);
        for step in 0..steps {
            let out = layer.forward(x.clone());
            let loss = (out.clone() * out).sum().mul_scalar(1.0 + step as f64);
            let grads = GradientsParams::from_grads(loss.backward(), &layer);
            layer = optim.step(1e-2, layer, grads);
        }
        parameter_values(&layer.valid())
    }

    #[test]
    fn the_fused_step_is_burns_adam_to_the_last_bit() {
        let ours = train(adam(None), 4);
        let burns = train(AdamConfig::new().init(), 4);
        let untrained = train(adam(None), 0);
        assert_ne!(ours, untrained, "the steps moved the parameters");
        assert_eq!(
            ours.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            burns.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
}
