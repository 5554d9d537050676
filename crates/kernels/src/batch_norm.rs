//! Batch normalisation on burn's CPU backend: one pass for the statistics and
//! one for the output `x · scale + shift` per channel, reading each channel's
//! values where they lie, with its own backward pass. burn's version copies
//! the activation to swap the batch and channel axes and normalises in
//! several broadcast operations, forward and backward.

// burn marks its LibTorch backend, which `BatchNormTrain` also serves,
// deprecated.
#![cfg_attr(feature = "tch", allow(deprecated))]

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, ExtensionType, Flex, backend_extension};
use burn::nn::BatchNorm;
use burn::tensor::activation::relu;
use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;

use crate::flex::{f32_values, flex_tensor, vec_written_by};

#[cfg(feature = "tch")]
mod libtorch;

/// `norm.forward(x)` for `x` of `[batch, channels, ...]`: in training (an
/// autodiff device and a layer not frozen) the batch's statistics normalise
/// and update the running ones as burn's module does; otherwise the running
/// statistics normalise. Computed in two passes on flex (`f32`); on LibTorch
/// (feature `tch`) by LibTorch's batch norm and its backward pass for maps in
/// training, as one multiply-add without autodiff; by burn's module
/// elsewhere.
pub fn batch_norm<const D: usize>(norm: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let [channels] = norm.gamma.dims();
    let training = device.is_autodiff() && norm.training.is_enabled();
    let flex = device.clone().inner() == Device::flex();
    if !(D >= 2
        && x.dims()[1] == channels
        && (flex || crate::is_libtorch(&device))
        && x.dtype() == DType::F32
        && norm.gamma.val().dtype() == DType::F32)
    {
        return norm.forward(x);
    }
    if !training {
        if device.is_autodiff() {
            return norm.forward(x);
        }
        let (scale, shift) = running_affine(norm, &device);
        return Tensor::from_dispatch(<Dispatch as ChannelAffine>::channel_affine(
            x.into_dispatch(),
            scale.into_dispatch(),
            shift.into_dispatch(),
        ));
    }
    // Vectors stay with burn's operations on LibTorch: through LibTorch's
    // graph the Deep FCN's forward + backward was no faster (H200, paper
    // sizes: 40.6 ms, against 40.0 ms through burn's on another machine).
    if !(flex || D > 2) {
        return norm.forward(x);
    }
    let normalised = <Dispatch as BatchNormTrain>::batch_norm_train(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        norm.epsilon,
    );
    let mean = Tensor::<1>::from_dispatch(normalised.mean);
    let variance = Tensor::<1>::from_dispatch(normalised.variance);
    let momentum = norm.momentum;
    let running_mean = norm.running_mean.value_sync().to_device(&device);
    let running_var = norm.running_var.value_sync().to_device(&device);
    norm.running_mean
        .update((running_mean * (1.0 - momentum) + mean * momentum).detach());
    norm.running_var
        .update((running_var * (1.0 - momentum) + variance * momentum).detach());
    Tensor::from_dispatch(normalised.output)
}

/// `relu(batch_norm(norm, x) + residual)`, or `relu(batch_norm(norm, x))`
/// without a residual. For a network that is not trained (a frozen guide, on
/// flex or LibTorch without autodiff) this is one pass over the values on
/// flex and three kernels on LibTorch, where the three
/// operations take three: in a ResNet-18 guide's forward pass the batch
/// norm, the ReLU and the sum with the skip connection each read and wrote
/// every activation.
pub fn batch_norm_relu<const D: usize>(
    norm: &BatchNorm,
    x: Tensor<D>,
    residual: Option<Tensor<D>>,
) -> Tensor<D> {
    let device = x.device();
    let [channels] = norm.gamma.dims();
    let residual_fits = residual
        .as_ref()
        .is_none_or(|r| r.dims() == x.dims() && r.dtype() == DType::F32 && r.device() == device);
    if !(D >= 2
        && x.dims()[1] == channels
        && !device.is_autodiff()
        && (device.clone().inner() == Device::flex() || crate::is_libtorch(&device))
        && x.dtype() == DType::F32
        && norm.gamma.val().dtype() == DType::F32
        && residual_fits)
    {
        let y = batch_norm(norm, x);
        return relu(match residual {
            Some(residual) => y + residual,
            None => y,
        });
    }
    let (scale, shift) = running_affine(norm, &device);
    let (x, scale, shift) = (
        x.into_dispatch(),
        scale.into_dispatch(),
        shift.into_dispatch(),
    );
    Tensor::from_dispatch(match residual {
        Some(r) => {
            <Dispatch as ChannelAffine>::channel_affine_add_relu(x, scale, shift, r.into_dispatch())
        }
        None => <Dispatch as ChannelAffine>::channel_affine_relu(x, scale, shift),
    })
}

/// The running statistics as `x · scale + shift` per channel: `scale = γ /
/// √(running var + ε)`, `shift = β − running mean · scale`.
fn running_affine(norm: &BatchNorm, device: &Device) -> (Tensor<1>, Tensor<1>) {
    let mean = norm.running_mean.value().to_device(device);
    let variance = norm.running_var.value().to_device(device);
    let scale = norm.gamma.val() / (variance + norm.epsilon).sqrt();
    let shift = norm.beta.val() - mean * scale.clone();
    (scale, shift)
}

/// A normalised batch with the statistics that normalised it.
#[derive(ExtensionType)]
struct Normalised<B: Backend> {
    output: FloatTensor<B>,
    /// Mean per channel.
    mean: FloatTensor<B>,
    /// Biased variance per channel.
    variance: FloatTensor<B>,
}

#[backend_extension(Flex, LibTorch: cfg(feature = "tch"), Autodiff)]
trait BatchNormTrain: Backend {
    /// `x` normalised per channel with the batch's statistics, times `gamma`
    /// plus `beta`.
    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> Normalised<Self>;
}

#[backend_extension(Flex, LibTorch: cfg(feature = "tch"))]
trait ChannelAffine: Backend {
    /// `x · scale + shift`, per channel.
    fn channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `max(x · scale + shift, 0)`, per channel.
    fn channel_affine_relu(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `max(x · scale + shift + residual, 0)`, per channel.
    fn channel_affine_add_relu(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        residual: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

impl ChannelAffine for Flex {
    fn channel_affine(x: FlexTensor, scale: FlexTensor, shift: FlexTensor) -> FlexTensor {
        let shape = x.layout().shape().to_vec();
        let (x, scale, shift) = (
            x.to_contiguous(),
            scale.to_contiguous(),
            shift.to_contiguous(),
        );
        let out = affine(
            f32_values(&x),
            f32_values(&scale),
            f32_values(&shift),
            spatial(&shape),
        );
        flex_tensor(out, shape)
    }

    fn channel_affine_relu(x: FlexTensor, scale: FlexTensor, shift: FlexTensor) -> FlexTensor {
        affine_relu(x, [scale, shift], None)
    }

    fn channel_affine_add_relu(
        x: FlexTensor,
        scale: FlexTensor,
        shift: FlexTensor,
        residual: FlexTensor,
    ) -> FlexTensor {
        affine_relu(x, [scale, shift], Some(residual))
    }
}

/// `max(x · scale + shift (+ residual), 0)`, per channel.
fn affine_relu(
    x: FlexTensor,
    [scale, shift]: [FlexTensor; 2],
    residual: Option<FlexTensor>,
) -> FlexTensor {
    let shape = x.layout().shape().to_vec();
    let (x, scale, shift) = (
        x.to_contiguous(),
        scale.to_contiguous(),
        shift.to_contiguous(),
    );
    let constants = affine_constants(f32_values(&scale), f32_values(&shift));
    let spatial = spatial(&shape);
    let out = match residual.map(|r| r.to_contiguous()) {
        Some(r) => each_value(
            f32_values(&x),
            f32_values(&r),
            &constants,
            spatial,
            |[s, t], x, r| (x * s + t + r).max(0.0),
        ),
        None => each_value(
            f32_values(&x),
            f32_values(&x),
            &constants,
            spatial,
            |[s, t], x, _| (x * s + t).max(0.0),
        ),
    };
    flex_tensor(out, shape)
}

impl BatchNormTrain for Flex {
    fn batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> Normalised<Self> {
        train(x, gamma, beta, epsilon).0
    }
}

/// The normalised batch, and the mean and `1 / √(variance + ε)` per channel
/// that the backward pass needs.
fn train(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> (Normalised<Flex>, Vec<f32>, Vec<f32>) {
    let shape = x.layout().shape().to_vec();
    let (x, gamma, beta) = (
        x.to_contiguous(),
        gamma.to_contiguous(),
        beta.to_contiguous(),
    );
    let (x, gamma, beta) = (f32_values(&x), f32_values(&gamma), f32_values(&beta));
    let channels = gamma.len();
    let spatial = spatial(&shape);
    let (mean, variance) = statistics(x, channels, spatial);
    let inv_std: Vec<f32> = variance
        .iter()
        .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
        .collect();
    let scale: Vec<f32> = gamma.iter().zip(&inv_std).map(|(g, s)| g * s).collect();
    let shift: Vec<f32> = (0..channels)
        .map(|c| beta[c] - mean[c] * scale[c])
        .collect();
    let normalised = Normalised {
        output: flex_tensor(affine(x, &scale, &shift, spatial), shape),
        mean: flex_tensor(mean.clone(), vec![channels]),
        variance: flex_tensor(variance, vec![channels]),
    };
    (normalised, mean, inv_std)
}

impl<C: CheckpointStrategy> BatchNormTrain for Autodiff<Flex, C> {
    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> Normalised<Self> {
        let constant = <FloatTensor<Self>>::new;
        match BatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let (x_state, gamma_state) = (prep.checkpoint(&x), prep.checkpoint(&gamma));
                let (result, mean, inv_std) = train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                );
                let state = (x_state, gamma_state, mean, inv_std);
                Normalised {
                    output: prep.finish(state, result.output),
                    mean: constant(result.mean),
                    variance: constant(result.variance),
                }
            }
            OpsKind::UnTracked(prep) => {
                let (result, ..) = train(
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
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    /// The input, γ, and the mean and `1 / √(variance + ε)` per channel.
    type State = (NodeId, NodeId, Vec<f32>, Vec<f32>);

    /// With `x̂ = (x − mean) / σ` and `N` values per channel: `dβ = Σ dy`,
    /// `dγ = Σ dy · x̂`, `dx = γ / σ · (dy − dβ / N − x̂ · dγ / N)`.
    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x, gamma, mean, inv_std) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x);
        let gamma: FlexTensor = checkpointer.retrieve_node_output(gamma);
        let shape = x.layout().shape().to_vec();
        let (x, gamma) = (x.to_contiguous(), gamma.to_contiguous());
        let (x, gamma, dy) = (f32_values(&x), f32_values(&gamma), f32_values(&grad));
        let channels = gamma.len();
        let spatial = spatial(&shape);
        let sum_dy = channel_sums(dy, dy, &vec![0.0; channels], spatial, |_, dy, _| dy);
        let sum_dy_centred = channel_sums(x, dy, &mean, spatial, |m, x, dy| (x - m) * dy);
        let n = (x.len() / channels) as f64;
        if let Some(node) = node_x {
            // dx = a · dy + b · x + k per channel.
            let coefficients: Vec<[f32; 3]> = (0..channels)
                .map(|c| {
                    let s = inv_std[c] as f64;
                    let (m1, m2) = (sum_dy[c] / n, sum_dy_centred[c] * s / n);
                    let p = gamma[c] as f64 * s;
                    let (b, k) = (-p * m2 * s, p * (m2 * s * mean[c] as f64 - m1));
                    [p as f32, b as f32, k as f32]
                })
                .collect();
            let dx = each_value(x, dy, &coefficients, spatial, |[a, b, k], x, dy| {
                a * dy + b * x + k
            });
            grads.register::<Flex>(node.id, flex_tensor(dx, shape));
        }
        if let Some(node) = node_gamma {
            let d_gamma = (0..channels)
                .map(|c| (sum_dy_centred[c] * inv_std[c] as f64) as f32)
                .collect();
            grads.register::<Flex>(node.id, flex_tensor(d_gamma, vec![channels]));
        }
        if let Some(node) = node_beta {
            let d_beta = sum_dy.iter().map(|&s| s as f32).collect();
            grads.register::<Flex>(node.id, flex_tensor(d_beta, vec![channels]));
        }
    }
}

/// Mean and biased variance per channel of `x` (`[batch, channels,
/// spatial]`), the variance from the centred values.
fn statistics(x: &[f32], channels: usize, spatial: usize) -> (Vec<f32>, Vec<f32>) {
    let n = (x.len() / channels) as f64;
    let sums = channel_sums(x, x, &vec![0.0; channels], spatial, |_, x, _| x);
    let mean: Vec<f32> = sums.iter().map(|s| (s / n) as f32).collect();
    let squares = channel_sums(x, x, &mean, spatial, |m, x, _| (x - m) * (x - m));
    (mean, squares.iter().map(|s| (s / n) as f32).collect())
}

/// `Σ f(centres[c], a, b)` per channel `c` over the examples and positions of
/// `a` and `b` (both `[batch, channels, spatial]`). Wide maps are summed in
/// parallel over channels, in 16 lanes; narrow ones (fewer than 16 values,
/// one after a linear layer) value by value along each example's row, in parallel over
/// fixed runs of [`ROWS_PER_PART`] examples, so that the order of the sum
/// does not depend on the number of threads.
fn channel_sums(
    a: &[f32],
    b: &[f32],
    centres: &[f32],
    spatial: usize,
    f: impl Fn(f32, f32, f32) -> f32 + Sync,
) -> Vec<f64> {
    let channels = centres.len();
    if spatial >= 16 {
        return (0..channels)
            .into_par_iter()
            .map(|c| {
                let m = centres[c];
                let pairs = blocks(a, channels, spatial, c).zip(blocks(b, channels, spatial, c));
                pairs.map(|(a, b)| lane_sum(a, b, |x, y| f(m, x, y))).sum()
            })
            .collect();
    }
    let row = channels * spatial;
    let centres = per_value(centres, spatial);
    let parts: Vec<Vec<f64>> = a
        .par_chunks(ROWS_PER_PART * row)
        .zip(b.par_chunks(ROWS_PER_PART * row))
        .map(|(a, b)| {
            let mut sums = vec![0.0f64; row];
            for (a, b) in a.chunks_exact(row).zip(b.chunks_exact(row)) {
                for ((sum, &m), (&x, &y)) in sums.iter_mut().zip(&centres).zip(a.iter().zip(b)) {
                    *sum += f(m, x, y) as f64;
                }
            }
            sums
        })
        .collect();
    let mut sums = vec![0.0f64; row];
    for part in parts {
        sums.iter_mut().zip(part).for_each(|(s, p)| *s += p);
    }
    sums.chunks_exact(spatial).map(|s| s.iter().sum()).collect()
}

/// Examples per partial sum of [`channel_sums`] over narrow maps.
const ROWS_PER_PART: usize = 32;

/// Channel `c`'s values in each example of `x` (`[batch, channels, spatial]`).
fn blocks(x: &[f32], channels: usize, spatial: usize, c: usize) -> impl Iterator<Item = &[f32]> {
    x.chunks_exact(channels * spatial)
        .map(move |example| &example[c * spatial..][..spatial])
}

/// `Σ f(a[i], b[i])`, in 16 `f32` lanes (kept in vector registers) added
/// up in `f64`.
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut lanes = [0.0f32; 16];
    let ((a_chunks, a_tail), (b_chunks, b_tail)) = (a.as_chunks::<16>(), b.as_chunks::<16>());
    for (a, b) in a_chunks.iter().zip(b_chunks) {
        for i in 0..16 {
            lanes[i] += f(a[i], b[i]);
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(&a, &b)| f(a, b)).sum();
    lanes.iter().map(|&l| l as f64).sum::<f64>() + tail as f64
}

/// `x · scale[c] + shift[c]` for `x` of `[batch, channels, spatial]`.
fn affine(x: &[f32], scale: &[f32], shift: &[f32], spatial: usize) -> Vec<f32> {
    let constants = affine_constants(scale, shift);
    each_value(x, x, &constants, spatial, |[s, t], x, _| x * s + t)
}

/// Each channel's scale and shift side by side, for [`each_value`].
fn affine_constants(scale: &[f32], shift: &[f32]) -> Vec<[f32; 2]> {
    scale.iter().zip(shift).map(|(&s, &t)| [s, t]).collect()
}

/// `f(constants[c], x, y)` for every value of `x` and `y` (both `[batch,
/// channels, spatial]`, `c` the value's channel), in parallel over examples:
/// along each channel's map where maps are wide, along each example's row
/// where they are narrow (so that the loop runs over many values either way).
fn each_value<C: Copy + Send + Sync>(
    x: &[f32],
    y: &[f32],
    constants: &[C],
    spatial: usize,
    f: impl Fn(C, f32, f32) -> f32 + Sync,
) -> Vec<f32> {
    let row = constants.len() * spatial;
    let narrow = (spatial < 16).then(|| per_value(constants, spatial));
    let write = |out: &mut [MaybeUninit<f32>]| {
        out.par_chunks_mut(row)
            .zip(x.par_chunks(row).zip(y.par_chunks(row)))
            .for_each(|(out, (x, y))| match &narrow {
                Some(constants) => {
                    let values = out.iter_mut().zip(x.iter().zip(y));
                    for ((o, (&x, &y)), &c) in values.zip(constants) {
                        o.write(f(c, x, y));
                    }
                }
                None => {
                    let maps = out.chunks_exact_mut(spatial).zip(x.chunks_exact(spatial));
                    for ((out, x), (y, &c)) in maps.zip(y.chunks_exact(spatial).zip(constants)) {
                        for (o, (&x, &y)) in out.iter_mut().zip(x.iter().zip(y)) {
                            o.write(f(c, x, y));
                        }
                    }
                }
            });
    };
    // SAFETY: `out` is cut into whole rows, each written value by value.
    unsafe { vec_written_by(x.len(), write) }
}

/// Each channel's value repeated for the `spatial` values of its map.
fn per_value<C: Copy>(per_channel: &[C], spatial: usize) -> Vec<C> {
    per_channel
        .iter()
        .flat_map(|&c| std::iter::repeat_n(c, spatial))
        .collect()
}

/// Values per channel of one example: the product of the dimensions after
/// the channels'.
fn spatial(shape: &[usize]) -> usize {
    shape[2..].iter().product()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values;
    use burn::module::{Module, Param};
    use burn::nn::BatchNormConfig;
    use burn::tensor::TensorData;

    /// Values spread over a few units around an offset, so that the mean
    /// matters.
    fn input<const D: usize>(dims: [usize; D], offset: f32, device: &Device) -> Tensor<D> {
        let n = dims.iter().product::<usize>();
        let data: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 211) as f32 / 35.0 + offset)
            .collect();
        Tensor::from_data(TensorData::new(data, dims), device)
    }

    /// A batch norm of `channels` with γ and β away from 1 and 0.
    fn layer(channels: usize, device: &Device) -> BatchNorm {
        let mut norm = BatchNormConfig::new(channels).init(device);
        let gamma: Vec<f32> = (0..channels).map(|c| 0.5 + c as f32 * 0.25).collect();
        let beta: Vec<f32> = (0..channels).map(|c| c as f32 * 0.5 - 1.0).collect();
        norm.gamma = Param::from_tensor(Tensor::from_data(
            TensorData::new(gamma, [channels]),
            device,
        ));
        norm.beta =
            Param::from_tensor(Tensor::from_data(TensorData::new(beta, [channels]), device));
        norm
    }

    fn assert_close(got: &[f64], expected: &[f64], tolerance: f64, what: &str) {
        assert_eq!(got.len(), expected.len(), "{what}");
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            assert!(
                (g - e).abs() < tolerance * (1.0 + e.abs()),
                "{what}: [{i}] {g} ≠ {e}"
            );
        }
    }

    /// `(x − mean) / √(variance + ε) · γ + β` per channel in `f64`, with the
    /// batch's mean and biased variance; and those statistics.
    fn by_definition<const D: usize>(
        norm: &BatchNorm,
        x: &Tensor<D>,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let dims = x.dims();
        let (channels, spatial) = (dims[1], dims[2..].iter().product::<usize>());
        let (x, gamma, beta) = (
            values(x.clone()),
            values(norm.gamma.val()),
            values(norm.beta.val()),
        );
        let channel = |i: usize| i / spatial % channels;
        let n = (x.len() / channels) as f64;
        let mut mean = vec![0.0; channels];
        x.iter()
            .enumerate()
            .for_each(|(i, v)| mean[channel(i)] += v / n);
        let mut variance = vec![0.0; channels];
        x.iter()
            .enumerate()
            .for_each(|(i, v)| variance[channel(i)] += (v - mean[channel(i)]).powi(2) / n);
        let out = x
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let c = channel(i);
                (v - mean[c]) / (variance[c] + norm.epsilon).sqrt() * gamma[c] + beta[c]
            })
            .collect();
        (out, mean, variance)
    }

    /// The backends whose training batch norm is computed here: flex, and
    /// LibTorch (its CPU kernels) where the build has it; with autodiff.
    fn training_devices() -> Vec<Device> {
        vec![
            Device::flex().autodiff(),
            #[cfg(feature = "tch")]
            untrainable_core::Backend::TchCpu.device().autodiff(),
        ]
    }

    #[test]
    fn training_normalises_with_the_batch_statistics_and_updates_the_running_ones() {
        for device in training_devices() {
            normalises_with_the_batch_statistics(&device);
        }
    }

    fn normalises_with_the_batch_statistics(device: &Device) {
        for (dims, offset) in [([6, 3, 5, 4], 40.0), ([9, 4, 1, 1], -3.0)] {
            let norm = layer(dims[1], device);
            let x = input(dims, offset, device);
            let (expected, mean, variance) = by_definition(&norm, &x);
            let what = format!("{device:?}, {dims:?}");
            assert_close(
                &values(batch_norm(&norm, x.clone())),
                &expected,
                1e-5,
                &what,
            );
            // momentum 0.1 from a running mean of 0 and variance of 1
            let running_mean: Vec<f64> = mean.iter().map(|m| 0.1 * m).collect();
            let running_var: Vec<f64> = variance.iter().map(|v| 0.9 + 0.1 * v).collect();
            assert_close(
                &values(norm.running_mean.value_sync()),
                &running_mean,
                1e-6,
                &what,
            );
            assert_close(
                &values(norm.running_var.value_sync()),
                &running_var,
                1e-6,
                &what,
            );
        }
        // Matrices of [batch, features], as after a linear layer: within
        // one run of examples summed together, and over three, the last short.
        for batch in [12, 2 * ROWS_PER_PART + 7] {
            let norm = layer(5, device);
            let x = input([batch, 5], 2.0, device);
            let (expected, ..) = by_definition(&norm, &x);
            let what = format!("{device:?}, [{batch}, 5]");
            assert_close(&values(batch_norm(&norm, x)), &expected, 1e-5, &what);
        }
    }

    /// Each value within `tolerance · (1 + scale)` of the expected one.
    fn assert_close_to_scale(
        got: &[f64],
        expected: &[f64],
        scale: &[f64],
        tolerance: f64,
        what: &str,
    ) {
        assert_eq!(got.len(), expected.len(), "{what}");
        for (i, ((g, e), s)) in got.iter().zip(expected).zip(scale).enumerate() {
            assert!(
                (g - e).abs() < tolerance * (1.0 + s),
                "{what}: [{i}] {g} ≠ {e}"
            );
        }
    }

    /// The gradients of `Σ r ⊙ batch_norm(x)` by their closed form in `f64`,
    /// per channel of `n` values with `x̂ = (x − mean) / σ`: `dβ = Σ r`,
    /// `dγ = Σ r x̂`, `dx = γ / σ · (r − Σ r / n − x̂ · Σ r x̂ / n)`, each with
    /// the sum of its terms' magnitudes, the scale of an `f32` sum's rounding
    /// (these sums cancel: `r` and `x̂` take both signs).
    fn gradients_by_definition<const D: usize>(
        norm: &BatchNorm,
        x: &Tensor<D>,
        r: &Tensor<D>,
    ) -> [(Vec<f64>, Vec<f64>); 3] {
        let dims = x.dims();
        let (channels, spatial) = (dims[1], dims[2..].iter().product::<usize>());
        let (_, mean, variance) = by_definition(norm, x);
        let (x, r, gamma) = (
            values(x.clone()),
            values(r.clone()),
            values(norm.gamma.val()),
        );
        let channel = |i: usize| i / spatial % channels;
        let sigma: Vec<f64> = variance.iter().map(|v| (v + norm.epsilon).sqrt()).collect();
        let normalised: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| (v - mean[channel(i)]) / sigma[channel(i)])
            .collect();
        let n = (x.len() / channels) as f64;
        let per_channel = |term: &dyn Fn(usize) -> f64| {
            let mut sums = (vec![0.0; channels], vec![0.0; channels]);
            for i in 0..x.len() {
                sums.0[channel(i)] += term(i);
                sums.1[channel(i)] += term(i).abs();
            }
            sums
        };
        let dbeta = per_channel(&|i| r[i]);
        let dgamma = per_channel(&|i| r[i] * normalised[i]);
        let (dx, dx_scale) = (0..x.len())
            .map(|i| {
                let c = channel(i);
                let terms = [r[i], -dbeta.0[c] / n, -normalised[i] * dgamma.0[c] / n];
                let scale = gamma[c] / sigma[c];
                (
                    scale * terms.iter().sum::<f64>(),
                    scale * (terms.iter().map(|t| t.abs()).sum::<f64>() + dgamma.1[c] / n),
                )
            })
            .unzip();
        [(dx, dx_scale), dgamma, dbeta]
    }

    fn assert_gradients_by_definition<const D: usize>(
        device: &Device,
        dims: [usize; D],
        offset: f32,
    ) {
        let norm = layer(dims[1], device);
        let x = input(dims, offset, device).require_grad();
        let r = input(dims, -1.0, device).flip([0, D - 1]);
        let grads = (batch_norm(&norm, x.clone()) * r.clone()).sum().backward();
        let [(dx, dx_scale), (dgamma, dgamma_scale), (dbeta, dbeta_scale)] =
            gradients_by_definition(&norm, &x, &r);
        let what = |part: &str| format!("{part} of {dims:?}, {device:?}");
        let got = values(x.grad(&grads).expect("a gradient reaches the input"));
        assert_close_to_scale(&got, &dx, &dx_scale, 1e-5, &what("input"));
        let param = |p: &Param<Tensor<1>>| values(p.grad(&grads).expect("a gradient reaches γ, β"));
        assert_close_to_scale(
            &param(&norm.gamma),
            &dgamma,
            &dgamma_scale,
            1e-5,
            &what("γ"),
        );
        assert_close_to_scale(&param(&norm.beta), &dbeta, &dbeta_scale, 1e-5, &what("β"));
    }

    #[test]
    fn the_backward_pass_gives_the_gradients_by_definition() {
        // Wide maps, narrow maps, and a batch of vectors over three runs.
        for device in training_devices() {
            assert_gradients_by_definition(&device, [6, 3, 5, 4], 40.0);
            assert_gradients_by_definition(&device, [7, 3, 2, 3], -5.0);
            assert_gradients_by_definition(&device, [2 * ROWS_PER_PART + 7, 6], 3.0);
        }
    }

    /// A layer of 4 channels after one training pass, which moves the
    /// running statistics away from 0 and 1, made a layer in evaluation.
    fn frozen_layer() -> BatchNorm {
        let device = Device::flex().autodiff();
        let norm = layer(4, &device);
        batch_norm(&norm, input([5, 4, 3, 3], 7.0, &device));
        norm.valid()
    }

    #[test]
    fn the_fused_relu_is_relu_of_the_batch_norm_plus_the_residual() {
        for device in frozen_devices() {
            fused_relu_is_relu_of_the_batch_norm_plus_the_residual(&device);
        }
    }

    /// The backends whose frozen batch norm is computed here: flex, and
    /// LibTorch where the build has it; without autodiff.
    fn frozen_devices() -> Vec<Device> {
        training_devices().into_iter().map(Device::inner).collect()
    }

    fn fused_relu_is_relu_of_the_batch_norm_plus_the_residual(device: &Device) {
        let norm = frozen_layer().to_device(device);
        // Wide and narrow maps; values on both sides of zero after the norm.
        for dims in [[5, 4, 6, 5], [5, 4, 3, 3]] {
            let x = input(dims, 6.0, device);
            let residual = input(dims, -4.0, device).flip([0]);
            let unfused = relu(batch_norm(&norm, x.clone()) + residual.clone());
            let fused = batch_norm_relu(&norm, x.clone(), Some(residual));
            assert_eq!(values(fused), values(unfused.clone()), "{dims:?}");
            assert!(values(unfused).contains(&0.0), "{dims:?}");
            let fused = batch_norm_relu(&norm, x.clone(), None);
            assert_eq!(
                values(fused),
                values(relu(batch_norm(&norm, x))),
                "{dims:?}"
            );
        }
    }

    #[test]
    fn evaluation_normalises_with_the_running_statistics() {
        for device in frozen_devices() {
            let norm = frozen_layer().to_device(&device);
            let x = input([5, 4, 3, 3], 6.0, &device);
            let expected = values(norm.forward(x.clone()));
            let what = format!("{device:?}");
            assert_close(&values(batch_norm(&norm, x)), &expected, 1e-5, &what);
        }
    }
}
