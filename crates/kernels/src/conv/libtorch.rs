//! Convolutions on LibTorch with LibTorch's own backward pass (cuDNN's on a
//! GPU): burn's generic backward computes the weights' gradient as a
//! convolution whose kernel is the output's whole map, which cuDNN runs
//! slowly.

// burn marks its LibTorch backend deprecated; this module exists for it.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::libtorch::TchTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, LibTorch, backend_extension};
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

use crate::libtorch::TorchGraph;

/// `layer.forward(x)` through LibTorch's convolution, for symmetric
/// `padding` (top, left, bottom, right); other paddings go through burn's.
pub(super) fn conv2d(layer: &Conv2d, x: Tensor<4>, padding: [usize; 4]) -> Tensor<4> {
    let [top, left, bottom, right] = padding;
    if top != bottom || left != right {
        return layer.forward(x);
    }
    let long = |[a, b]: [usize; 2]| [a as i64, b as i64];
    let spec = ConvSpec {
        stride: long(layer.stride),
        padding: long([top, left]),
        dilation: long(layer.dilation),
        groups: layer.groups as i64,
    };
    let weight = layer.weight.val();
    let out_channels = weight.dims()[0];
    let out = Tensor::from_dispatch(<Dispatch as TorchConv>::conv2d_torch(
        x.into_dispatch(),
        weight.into_dispatch(),
        spec,
    ));
    match &layer.bias {
        Some(bias) => out + bias.val().reshape([1, out_channels, 1, 1]),
        None => out,
    }
}

/// Strides, padding (height, width), dilation and groups, as LibTorch takes them.
#[derive(Debug, Clone, Copy)]
struct ConvSpec {
    stride: [i64; 2],
    padding: [i64; 2],
    dilation: [i64; 2],
    groups: i64,
}

impl ConvSpec {
    fn apply(&self, x: &tch::Tensor, weight: &tch::Tensor) -> tch::Tensor {
        x.conv2d(
            weight,
            None::<tch::Tensor>,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )
    }
}

/// The convolution of [`conv2d`] as a backend operation, so that autodiff
/// records it with LibTorch's backward pass.
#[backend_extension(LibTorch, Autodiff)]
trait TorchConv: Backend {
    /// `x` (B × C × H × W) convolved with `weight` (O × C/groups × kh × kw), no bias.
    fn conv2d_torch(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self>;
}

impl TorchConv for LibTorch {
    fn conv2d_torch(x: TchTensor, weight: TchTensor, spec: ConvSpec) -> TchTensor {
        TchTensor::new(spec.apply(&x.tensor, &weight.tensor))
    }
}

impl<C: CheckpointStrategy> TorchConv for Autodiff<LibTorch, C> {
    fn conv2d_torch(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self> {
        match TorchConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let inputs = [x.into_primitive(), weight.into_primitive()];
                let (graph, [out]) =
                    TorchGraph::record(inputs, |[x, weight]| [spec.apply(x, weight)]);
                prep.finish(graph, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(LibTorch::conv2d_torch(
                x.into_primitive(),
                weight.into_primitive(),
                spec,
            )),
        }
    }
}

#[derive(Debug)]
struct TorchConvBackward;

impl Backward<LibTorch, 2> for TorchConvBackward {
    type State = TorchGraph<2>;

    fn backward(self, ops: Ops<TorchGraph<2>, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let nodes = ops.parents.map(|node| node.map(|node| node.id));
        ops.state.backward(grad, nodes, grads);
    }
}
