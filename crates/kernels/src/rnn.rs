//! The recurrence of a tanh (Elman) RNN layer as one operation on burn's CPU
//! backend, with its own backward pass through time.
//!
//! All time steps of a layer run at once: each run of examples carries its
//! state through the steps on one thread (runs in parallel), one product and
//! one vectorised tanh per step; the backward pass walks the steps back the
//! same way and computes the recurrent weights' gradient as one product.
//! As burn operations, every step would be several recorded operations, each
//! writing a new tensor, with a scalar tanh.

use burn::backend::autodiff::NodeId;
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

use crate::flex::{Destination, f32_values, flex_tensor, multiply};
use crate::vector_math::tanh_in_place;

/// Examples whose recurrence one task runs. The batch is split into runs of
/// this many whatever the number of threads, so that the weights' gradient
/// is summed in the same order on every machine.
const EXAMPLES: usize = 32;

/// Every state `h_t = tanh(p_t + h_{t−1} W)` of one tanh RNN layer, for the
/// projected inputs `p` (`projected`, `(batch, time, hidden)`, both biases
/// included) and the recurrent weights `W` (`weight`, `(hidden, hidden)`,
/// burn's `Linear` layout, so that the term is `h W`), from `h_{−1} = 0`.
/// Returns `(batch, time, hidden)`. A layer that starts from a state `h_0`
/// adds `h_0 W` to `p_0` first.
///
/// On flex (`f32`) one operation with its own backward pass; elsewhere a loop
/// of burn's operations.
pub fn tanh_recurrence(projected: Tensor<3>, weight: Tensor<2>) -> Tensor<3> {
    let [_, time, hidden] = projected.dims();
    let fused = projected.device().inner() == Device::flex()
        && time > 0
        && weight.dims() == [hidden, hidden]
        && projected.dtype() == DType::F32
        && weight.dtype() == DType::F32;
    if !fused {
        return by_steps(projected, weight);
    }
    Tensor::from_dispatch(<Dispatch as TanhRecurrence>::tanh_recurrence(
        projected.into_dispatch(),
        weight.into_dispatch(),
    ))
}

/// [`tanh_recurrence`] as burn operations. Steps are cut out in two levels
/// (√time chunks, then steps) because the gradient of each cut is as large
/// as the tensor it is cut from: one level costs `time` full-size gradients,
/// two about `2√time`.
fn by_steps(projected: Tensor<3>, weight: Tensor<2>) -> Tensor<3> {
    let [batch, time, hidden] = projected.dims();
    let chunk = ((time as f64).sqrt().ceil() as usize).max(1);
    let mut state: Option<Tensor<2>> = None;
    let mut outputs = Vec::with_capacity(time);
    let steps = projected
        .split(chunk, 1)
        .into_iter()
        .flat_map(|c| c.iter_dim(1));
    for step in steps {
        let step: Tensor<2> = step.reshape([batch, hidden]);
        // A zero state contributes nothing: its product is skipped.
        let pre = match state {
            Some(h) => step + h.matmul(weight.clone()),
            None => step,
        };
        let h = activation::tanh(pre);
        outputs.push(h.clone());
        state = Some(h);
    }
    Tensor::stack(outputs, 1)
}

/// The recurrence of [`tanh_recurrence`] as a backend operation, so that
/// autodiff records it with its own backward pass.
#[backend_extension(Flex, Autodiff)]
trait TanhRecurrence: Backend {
    fn tanh_recurrence(
        projected: FloatTensor<Self>,
        weight: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

impl TanhRecurrence for Flex {
    fn tanh_recurrence(projected: FlexTensor, weight: FlexTensor) -> FlexTensor {
        let (projected, weight) = (projected.to_contiguous(), weight.to_contiguous());
        let dims = projected.layout().shape().to_vec();
        let states = forward(
            f32_values(&projected),
            f32_values(&weight),
            [dims[1], dims[2]],
        );
        flex_tensor(states, dims)
    }
}

impl<C: CheckpointStrategy> TanhRecurrence for Autodiff<Flex, C> {
    fn tanh_recurrence(
        projected: FloatTensor<Self>,
        weight: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match TanhRecurrenceBackward
            .prepare::<C>([projected.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let weight_state = prep.checkpoint(&weight);
                let states =
                    Flex::tanh_recurrence(projected.into_primitive(), weight.into_primitive());
                prep.finish((weight_state, states.clone()), states)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::tanh_recurrence(
                projected.into_primitive(),
                weight.into_primitive(),
            )),
        }
    }
}

#[derive(Debug)]
struct TanhRecurrenceBackward;

impl Backward<Flex, 2> for TanhRecurrenceBackward {
    /// The recurrent weights and the states the forward pass computed.
    type State = (NodeId, FlexTensor);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_projected, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (weight, states) = ops.state;
        let weight: FlexTensor = checkpointer.retrieve_node_output(weight);
        let weight = weight.to_contiguous();
        let dims = states.layout().shape().to_vec();
        let hidden = dims[2];
        let (grad_projected, grad_weight) = backward(
            f32_values(&states),
            f32_values(&weight),
            f32_values(&grad),
            [dims[1], hidden],
        );
        if let Some(node) = node_projected {
            grads.register::<Flex>(node.id, flex_tensor(grad_projected, dims));
        }
        if let Some(node) = node_weight {
            grads.register::<Flex>(node.id, flex_tensor(grad_weight, vec![hidden, hidden]));
        }
    }
}

/// The rows of step `t` in `(examples, time, hidden)` values, one per example.
fn step_rows(values: &[f32], t: usize, [time, hidden]: [usize; 2]) -> impl Iterator<Item = &[f32]> {
    values
        .chunks_exact(time * hidden)
        .map(move |example| &example[t * hidden..][..hidden])
}

/// Copies the rows of step `t` into `to` (`examples × hidden`).
fn gather(values: &[f32], t: usize, sizes: [usize; 2], to: &mut [f32]) {
    for (to, from) in to
        .chunks_exact_mut(sizes[1])
        .zip(step_rows(values, t, sizes))
    {
        to.copy_from_slice(from);
    }
}

/// Copies `from` (`examples × hidden`) into the rows of step `t`.
fn scatter(from: &[f32], t: usize, [time, hidden]: [usize; 2], values: &mut [f32]) {
    for (example, from) in values
        .chunks_exact_mut(time * hidden)
        .zip(from.chunks_exact(hidden))
    {
        example[t * hidden..][..hidden].copy_from_slice(from);
    }
}

/// The states of [`tanh_recurrence`] for `projected` `(batch, time, hidden)`.
fn forward(projected: &[f32], weight: &[f32], [time, hidden]: [usize; 2]) -> Vec<f32> {
    let example = time * hidden;
    let mut states = vec![0.0f32; projected.len()];
    states
        .par_chunks_mut(EXAMPLES * example)
        .zip(projected.par_chunks(EXAMPLES * example))
        .for_each(|(states, projected)| {
            let n = states.len() / example;
            let (mut previous, mut current) = (vec![0.0f32; n * hidden], vec![0.0f32; n * hidden]);
            for t in 0..time {
                gather(projected, t, [time, hidden], &mut current);
                if t > 0 {
                    multiply(
                        [n, hidden, hidden],
                        (Destination::Onto(&mut current), [hidden, 1]),
                        (&previous, [hidden, 1]),
                        (weight, [hidden, 1]),
                    );
                }
                tanh_in_place(&mut current);
                scatter(&current, t, [time, hidden], states);
                std::mem::swap(&mut previous, &mut current);
            }
        });
    states
}

/// The gradients of `projected` and of the weights from the `states` of the
/// forward pass and their gradient `grad`: with `g_t = dL/dp_t`,
/// `g_t = (grad_t + g_{t+1} Wᵀ) ⊙ (1 − h_t²)` from the last step back, and
/// `dW = Σ_t h_{t−1}ᵀ g_t`.
fn backward(
    states: &[f32],
    weight: &[f32],
    grad: &[f32],
    [time, hidden]: [usize; 2],
) -> (Vec<f32>, Vec<f32>) {
    let example = time * hidden;
    let mut grad_projected = vec![0.0f32; states.len()];
    let parts: Vec<Vec<f32>> = grad_projected
        .par_chunks_mut(EXAMPLES * example)
        .zip(states.par_chunks(EXAMPLES * example))
        .zip(grad.par_chunks(EXAMPLES * example))
        .map(|((grad_projected, states), grad)| {
            let n = states.len() / example;
            let (mut later, mut current) = (vec![0.0f32; n * hidden], vec![0.0f32; n * hidden]);
            for t in (0..time).rev() {
                gather(grad, t, [time, hidden], &mut current);
                if t + 1 < time {
                    multiply(
                        [n, hidden, hidden],
                        (Destination::Onto(&mut current), [hidden, 1]),
                        (&later, [hidden, 1]),
                        (weight, [1, hidden]),
                    );
                }
                let rows = current.chunks_exact_mut(hidden);
                for (g, h) in rows.zip(step_rows(states, t, [time, hidden])) {
                    g.iter_mut().zip(h).for_each(|(g, h)| *g *= 1.0 - h * h);
                }
                scatter(&current, t, [time, hidden], grad_projected);
                std::mem::swap(&mut later, &mut current);
            }
            // The states one step later in time, zero at the first step, so
            // that the sum over steps is one product.
            let mut previous = vec![0.0f32; states.len()];
            for (previous, states) in previous
                .chunks_exact_mut(example)
                .zip(states.chunks_exact(example))
            {
                previous[hidden..].copy_from_slice(&states[..example - hidden]);
            }
            // dW (hidden × hidden) = previousᵀ (hidden × n·time) · g (n·time × hidden)
            let mut part = vec![0.0f32; hidden * hidden];
            multiply(
                [hidden, hidden, n * time],
                (Destination::Over(&mut part), [hidden, 1]),
                (&previous, [1, hidden]),
                (&*grad_projected, [hidden, 1]),
            );
            part
        })
        .collect();
    let mut grad_weight = vec![0.0f32; hidden * hidden];
    for part in parts {
        grad_weight
            .iter_mut()
            .zip(part)
            .for_each(|(sum, v)| *sum += v);
    }
    (grad_projected, grad_weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values;
    use burn::tensor::TensorData;

    /// Values spread over `[-scale, scale]` in a fixed pseudo-random order.
    fn input<const D: usize>(dims: [usize; D], scale: f32, device: &Device) -> Tensor<D> {
        let len: usize = dims.iter().product();
        let values: Vec<f32> = (0..len)
            .map(|i| ((i * 7919 + 13) % 1009) as f32 / 504.0 - 1.0)
            .map(|v| v * scale)
            .collect();
        Tensor::from_data(TensorData::new(values, dims), device)
    }

    /// The states by the definition, in `f64`.
    fn states_by_definition(p: &[f64], w: &[f64], [batch, time, hidden]: [usize; 3]) -> Vec<f64> {
        let mut h = vec![0.0; p.len()];
        for b in 0..batch {
            for t in 0..time {
                for j in 0..hidden {
                    let at = (b * time + t) * hidden;
                    let mut pre = p[at + j];
                    if t > 0 {
                        let before = at - hidden;
                        pre += (0..hidden)
                            .map(|i| h[before + i] * w[i * hidden + j])
                            .sum::<f64>();
                    }
                    h[at + j] = pre.tanh();
                }
            }
        }
        h
    }

    #[test]
    fn states_follow_the_definition() {
        let device = Device::flex();
        // One run of examples and two, the second short; one step and several.
        for dims in [[3, 1, 5], [3, 6, 5], [EXAMPLES + 5, 4, 17]] {
            let p = input(dims, 1.5, &device);
            let w = input([dims[2], dims[2]], 0.6, &device).flip([0]);
            let expected = states_by_definition(&values(p.clone()), &values(w.clone()), dims);
            let got = values(tanh_recurrence(p.clone(), w.clone()));
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert!((g - e).abs() < 1e-5, "{dims:?} [{i}]: {g} ≠ {e}");
            }
            // The burn operations used elsewhere agree.
            let stepped = values(by_steps(p, w));
            for (g, e) in stepped.iter().zip(&expected) {
                assert!((g - e).abs() < 1e-5, "{dims:?} by steps: {g} ≠ {e}");
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences_of_the_definition() {
        let device = Device::flex().autodiff();
        for dims in [[3, 5, 4], [EXAMPLES + 2, 3, 3]] {
            let [_, _, hidden] = dims;
            let p = input(dims, 1.2, &device).require_grad();
            let w = input([hidden, hidden], 0.7, &device)
                .flip([1])
                .require_grad();
            // L = Σ r ⊙ h for a fixed r.
            let r = input(dims, 1.0, &device).flip([0, 2]);
            let grads = (tanh_recurrence(p.clone(), w.clone()) * r.clone())
                .sum()
                .backward();
            let got_p = values(p.grad(&grads).unwrap());
            let got_w = values(w.grad(&grads).unwrap());
            let (p, w, r) = (values(p), values(w), values(r));
            let loss = |p: &[f64], w: &[f64]| -> f64 {
                let h = states_by_definition(p, w, dims);
                h.iter().zip(&r).map(|(h, r)| h * r).sum()
            };
            let step = 1e-6;
            let central = |i: usize, of_weight: bool| {
                let (mut p, mut w) = (p.clone(), w.clone());
                let x = if of_weight { &mut w[i] } else { &mut p[i] };
                *x += step;
                let up = loss(&p, &w);
                let x = if of_weight { &mut w[i] } else { &mut p[i] };
                *x -= 2.0 * step;
                (up - loss(&p, &w)) / (2.0 * step)
            };
            for (i, g) in got_p.iter().enumerate() {
                let e = central(i, false);
                assert!(
                    (g - e).abs() < 1e-5 * (1.0 + e.abs()),
                    "{dims:?} dp[{i}]: {g} ≠ {e}"
                );
            }
            for (i, g) in got_w.iter().enumerate() {
                let e = central(i, true);
                assert!(
                    (g - e).abs() < 1e-4 * (1.0 + e.abs()),
                    "{dims:?} dW[{i}]: {g} ≠ {e}"
                );
            }
        }
    }

    #[test]
    fn weight_gradient_does_not_depend_on_the_number_of_threads() {
        let device = Device::flex().autodiff();
        // Three runs of examples.
        let p = input([3 * EXAMPLES, 5, 8], 1.0, &device).require_grad();
        let w = input([8, 8], 0.5, &device).require_grad();
        let r = input([3 * EXAMPLES, 5, 8], 1.0, &device).flip([1]);
        let weight_gradient = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let grads = (tanh_recurrence(p.clone(), w.clone()) * r.clone())
                    .sum()
                    .backward();
                values(w.grad(&grads).unwrap())
            })
        };
        let one = weight_gradient(1);
        assert_eq!(one, weight_gradient(2));
        assert_eq!(one, weight_gradient(3));
    }
}
