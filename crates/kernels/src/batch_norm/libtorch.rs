//! Batch norm on LibTorch: in training LibTorch's own with its backward pass
//! (cuDNN's on a GPU), where burn's module normalises and differentiates in
//! separate broadcast operations over the whole activation; a frozen layer as
//! one multiply-add per value.

// burn marks its LibTorch backend deprecated; this module exists for it.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::libtorch::TchTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, LibTorch};

use super::{BatchNormTrain, ChannelAffine, Normalised};
use crate::libtorch::TorchGraph;

/// The batch normalised with its own statistics, and its mean and biased
/// variance per channel. LibTorch writes the statistics only into running
/// buffers, hence fresh buffers and momentum 1; it keeps the unbiased
/// variance there.
fn normalise(
    x: &tch::Tensor,
    gamma: &tch::Tensor,
    beta: &tch::Tensor,
    epsilon: f64,
) -> [tch::Tensor; 3] {
    let (mean, variance) = (gamma.zeros_like(), gamma.ones_like());
    let output = x.batch_norm(
        Some(gamma),
        Some(beta),
        Some(&mean),
        Some(&variance),
        true,
        1.0,
        epsilon,
        true,
    );
    let n = (x.numel() / gamma.numel()) as f64;
    [output, mean, variance * ((n - 1.0) / n)]
}

impl BatchNormTrain for LibTorch {
    fn batch_norm_train(
        x: TchTensor,
        gamma: TchTensor,
        beta: TchTensor,
        epsilon: f64,
    ) -> Normalised<Self> {
        let [output, mean, variance] =
            normalise(&x.tensor, &gamma.tensor, &beta.tensor, epsilon).map(TchTensor::new);
        Normalised {
            output,
            mean,
            variance,
        }
    }
}

impl<C: CheckpointStrategy> BatchNormTrain for Autodiff<LibTorch, C> {
    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> Normalised<Self> {
        let constant = <FloatTensor<Self>>::new;
        match TorchBatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let inputs = [x, gamma, beta].map(|t| t.into_primitive());
                let (graph, [output, mean, variance]) =
                    TorchGraph::record(inputs, |[x, gamma, beta]| {
                        normalise(x, gamma, beta, epsilon)
                    });
                Normalised {
                    output: prep.finish(graph, output),
                    mean: constant(mean),
                    variance: constant(variance),
                }
            }
            OpsKind::UnTracked(prep) => {
                let result = LibTorch::batch_norm_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                );
                Normalised {
                    output: prep.finish(result.output),
                    mean: constant(result.mean),
                    variance: constant(result.variance),
                }
            }
        }
    }
}

#[derive(Debug)]
struct TorchBatchNormBackward;

impl Backward<LibTorch, 3> for TorchBatchNormBackward {
    type State = TorchGraph<3>;

    fn backward(self, ops: Ops<TorchGraph<3>, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let nodes = ops.parents.map(|node| node.map(|node| node.id));
        ops.state.backward(grad, nodes, grads);
    }
}

/// One value per channel shaped to broadcast over `x`'s channel axis.
fn per_channel(values: &tch::Tensor, x: &tch::Tensor) -> tch::Tensor {
    let mut shape = vec![1; x.dim()];
    shape[1] = -1;
    values.view(shape.as_slice())
}

impl ChannelAffine for LibTorch {
    fn channel_affine(x: TchTensor, scale: TchTensor, shift: TchTensor) -> TchTensor {
        let (scale, shift) = (
            per_channel(&scale.tensor, &x.tensor),
            per_channel(&shift.tensor, &x.tensor),
        );
        TchTensor::new(shift.addcmul(&x.tensor, &scale))
    }

    fn channel_affine_relu(x: TchTensor, scale: TchTensor, shift: TchTensor) -> TchTensor {
        let mut out = Self::channel_affine(x, scale, shift).tensor;
        TchTensor::new(out.relu_())
    }

    fn channel_affine_add_relu(
        x: TchTensor,
        scale: TchTensor,
        shift: TchTensor,
        residual: TchTensor,
    ) -> TchTensor {
        let mut out = Self::channel_affine(x, scale, shift).tensor;
        out += &residual.tensor;
        TchTensor::new(out.relu_())
    }
}
