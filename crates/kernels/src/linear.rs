//! A linear layer on burn's CPU backend whose input gradient `dy Wᵀ` reads
//! the weights transposed once, by tiles; flex's product kernel would
//! otherwise repack the transposed view value by value on one thread.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::nn::Linear;
use burn::tensor::{DType, Device, Tensor};

use crate::flex::{f32_values, flex_tensor};
use crate::transpose::transposed;

/// `layer.forward(x)`: on flex with autodiff (`f32`) its product as one
/// operation with the backward pass above, burn's module elsewhere.
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let weight = layer.weight.val();
    let [d_input, d_output] = weight.dims();
    if !(device.is_autodiff()
        && device.clone().inner() == Device::flex()
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && x.dims()[D - 1] == d_input
        && d_input * d_output > 0)
    {
        return layer.forward(x);
    }
    let mut dims = x.dims();
    let rows = dims[..D - 1].iter().product();
    let x: Tensor<2> = x.reshape([rows, d_input]);
    let y = Tensor::<2>::from_dispatch(<Dispatch as LinearProduct>::linear_product(
        x.into_dispatch(),
        weight.into_dispatch(),
    ));
    let y = match &layer.bias {
        Some(bias) => y + bias.val().unsqueeze(),
        None => y,
    };
    dims[D - 1] = d_output;
    y.reshape(dims)
}

#[backend_extension(Flex, Autodiff)]
trait LinearProduct: Backend {
    /// `x W` for `x` of `rows × d_input` and `W` of `d_input × d_output`.
    fn linear_product(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl LinearProduct for Flex {
    fn linear_product(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        Flex::float_matmul(x, weight)
    }
}

impl<C: CheckpointStrategy> LinearProduct for Autodiff<Flex, C> {
    fn linear_product(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        match ProductBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight));
                let y = Flex::linear_product(x.into_primitive(), weight.into_primitive());
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::linear_product(
                x.into_primitive(),
                weight.into_primitive(),
            )),
        }
    }
}

#[derive(Debug)]
struct ProductBackward;

impl Backward<Flex, 2> for ProductBackward {
    /// The input and the weights.
    type State = (NodeId, NodeId);

    /// `dx = dy Wᵀ`, `dW = xᵀ dy`.
    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight) = ops.state;
        if let Some(node) = node_weight {
            let x: FlexTensor = checkpointer.retrieve_node_output(x);
            let d_weight = Flex::float_matmul(Flex::float_transpose(x), grad.clone());
            grads.register::<Flex>(node.id, d_weight);
        }
        if let Some(node) = node_x {
            let weight: FlexTensor = checkpointer.retrieve_node_output(weight);
            let weight = weight.to_contiguous();
            let [d_input, d_output] = weight.layout().shape()[..] else {
                unreachable!("weights of rank 2")
            };
            let weight_t = flex_tensor(
                transposed(f32_values(&weight), d_input, d_output),
                vec![d_output, d_input],
            );
            grads.register::<Flex>(node.id, Flex::float_matmul(grad, weight_t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values;
    use burn::nn::LinearConfig;
    use burn::tensor::TensorData;

    /// A loss that weighs every output differently.
    fn loss<const D: usize>(y: Tensor<D>) -> Tensor<1> {
        let n = y.shape().num_elements();
        let weights: Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) / 4.0).collect();
        let weights = Tensor::<1>::from_data(TensorData::new(weights, [n]), &y.device());
        (y.flatten::<1>(0, D - 1) * weights).sum()
    }

    #[test]
    fn output_and_gradients_are_burns_linear() {
        let device = Device::flex().autodiff();
        let _seeded = untrainable_core::random_stream_lock();
        untrainable_core::seed(&device, 3);
        // 70 inputs and 33 outputs: partial tiles, two tasks of columns.
        for bias in [true, false] {
            let layer = LinearConfig::new(70, 33).with_bias(bias).init(&device);
            let x = Tensor::<3>::random([4, 5, 70], burn::tensor::Distribution::Default, &device);
            let run = |ours: bool| {
                let x = x.clone().require_grad();
                let y = if ours {
                    linear(&layer, x.clone())
                } else {
                    layer.forward(x.clone())
                };
                let grads = loss(y.clone()).backward();
                let weight = layer.weight.val().grad(&grads).unwrap();
                let bias = layer
                    .bias
                    .as_ref()
                    .map(|b| values(b.val().grad(&grads).unwrap()));
                (
                    values(y),
                    values(x.grad(&grads).unwrap()),
                    values(weight),
                    bias,
                )
            };
            let (ours, burns) = (run(true), run(false));
            let close = |a: &[f64], b: &[f64], what: &str| {
                assert_eq!(a.len(), b.len());
                for (a, b) in a.iter().zip(b) {
                    assert!(
                        (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                        "{what}: {a} against {b}"
                    );
                }
            };
            close(&ours.0, &burns.0, "output");
            close(&ours.1, &burns.1, "input gradient");
            close(&ours.2, &burns.2, "weight gradient");
            assert_eq!(ours.3.is_some(), bias);
            if let (Some(a), Some(b)) = (&ours.3, &burns.3) {
                close(a, b, "bias gradient");
            }
        }
    }
}
