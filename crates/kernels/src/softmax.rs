//! Softmax over the last axis on burn's CPU backend with vectorised
//! exponentials (flex computes each with the scalar `expf`), with its own
//! backward pass: each row's `max − x`, `e^{−y}` of a run of rows at once
//! (`vector_math`), each row divided by its sum.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::activation;
use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;

use crate::flex::{f32_values, flex_tensor};
use crate::vector_math::exp_minus_in_place;

/// Values one task normalises (whole rows of them).
const VALUES_PER_TASK: usize = 8192;

/// `activation::softmax(x, D − 1)`: on flex (`f32`) one operation with its
/// own backward pass, elsewhere burn's.
pub fn softmax<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let flex = x.device().inner() == Device::flex();
    if !(flex && x.dtype() == DType::F32 && x.dims()[D - 1] > 0) {
        return activation::softmax(x, D - 1);
    }
    Tensor::from_dispatch(<Dispatch as LastAxisSoftmax>::softmax_last(
        x.into_dispatch(),
    ))
}

#[backend_extension(Flex, Autodiff)]
trait LastAxisSoftmax: Backend {
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl LastAxisSoftmax for Flex {
    fn softmax_last(x: FlexTensor) -> FlexTensor {
        let x = x.to_contiguous();
        let dims = x.layout().shape().to_vec();
        flex_tensor(forward(f32_values(&x), dims[dims.len() - 1]), dims)
    }
}

impl<C: CheckpointStrategy> LastAxisSoftmax for Autodiff<Flex, C> {
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match SoftmaxBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = Flex::softmax_last(x.into_primitive());
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::softmax_last(x.into_primitive())),
        }
    }
}

#[derive(Debug)]
struct SoftmaxBackward;

impl Backward<Flex, 1> for SoftmaxBackward {
    /// The softmax's output.
    type State = FlexTensor;

    /// `dx = y ⊙ (dy − Σ dy ⊙ y)` per row.
    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let Some(node) = node else { return };
        let y = ops.state;
        let dims = y.layout().shape().to_vec();
        let len = dims[dims.len() - 1];
        let (y, dy) = (f32_values(&y), f32_values(&grad));
        let mut dx = vec![0.0f32; y.len()];
        let per_task = len * VALUES_PER_TASK.div_ceil(len);
        dx.par_chunks_mut(per_task)
            .zip(y.par_chunks(per_task).zip(dy.par_chunks(per_task)))
            .for_each(|(dx, (y, dy))| {
                let rows = dx.chunks_exact_mut(len).zip(y.chunks_exact(len));
                for ((dx, y), dy) in rows.zip(dy.chunks_exact(len)) {
                    let dot: f32 = y.iter().zip(dy).map(|(y, dy)| y * dy).sum();
                    for ((dx, y), dy) in dx.iter_mut().zip(y).zip(dy) {
                        *dx = y * (dy - dot);
                    }
                }
            });
        grads.register::<Flex>(node.id, flex_tensor(dx, dims));
    }
}

/// The softmax of every row of `len` values of `x`.
fn forward(x: &[f32], len: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    let per_task = len * VALUES_PER_TASK.div_ceil(len);
    y.par_chunks_mut(per_task)
        .zip(x.par_chunks(per_task))
        .for_each(|(y, x)| {
            for (y, x) in y.chunks_exact_mut(len).zip(x.chunks_exact(len)) {
                let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                y.iter_mut().zip(x).for_each(|(y, x)| *y = max - x);
            }
            exp_minus_in_place(y);
            for y in y.chunks_exact_mut(len) {
                let inverse = 1.0 / y.iter().sum::<f32>();
                y.iter_mut().for_each(|y| *y *= inverse);
            }
        });
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values;
    use burn::tensor::TensorData;

    /// Rows of scores, some with masked entries at burn's attention fill of
    /// −10⁴, one all masked.
    fn scores(device: &Device) -> Tensor<3> {
        let [a, b, len] = [3, 5, 7];
        let values: Vec<f32> = (0..a * b * len)
            .map(|i| {
                let (row, col) = (i / len, i % len);
                if (row % 4 == 1 && col > row % len) || row == 6 {
                    -1.0e4
                } else {
                    ((i * 7919 + 13) % 1009) as f32 / 100.0 - 5.0
                }
            })
            .collect();
        Tensor::from_data(TensorData::new(values, [a, b, len]), device)
    }

    fn by_definition(x: &[f64], len: usize) -> Vec<f64> {
        x.chunks(len)
            .flat_map(|row| {
                let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
                row.iter()
                    .map(move |v| (v - max).exp() / sum)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn softmax_follows_the_definition() {
        let x = scores(&Device::flex());
        let expected = by_definition(&values(x.clone()), 7);
        let got = values(softmax(x));
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!(
                (g - e).abs() <= 1e-6 * e.max(1e-30) + 1e-30,
                "[{i}] {g} ≠ {e}"
            );
        }
    }

    #[test]
    fn gradient_follows_the_jacobian() {
        let device = Device::flex().autodiff();
        let x = scores(&device).require_grad();
        let r = scores(&device).flip([2]) * 0.01;
        let grads = (softmax(x.clone()) * r.clone()).sum().backward();
        let got = values(x.grad(&grads).unwrap());
        let (y, r) = (by_definition(&values(x), 7), values(r));
        // ∂L/∂x_i = Σ_j r_j ∂y_j/∂x_i = Σ_j r_j y_j (δ_ij − y_i), row by row.
        for (start, row) in y.chunks(7).enumerate().map(|(k, row)| (7 * k, row)) {
            for i in 0..7 {
                let expected: f64 = (0..7)
                    .map(|j| r[start + j] * row[j] * (f64::from(i == j) - row[i]))
                    .sum();
                let g = got[start + i];
                assert!(
                    (g - expected).abs() < 1e-6 * (1.0 + expected.abs()),
                    "[{}] {g} ≠ {expected}",
                    start + i
                );
            }
        }
    }
}
