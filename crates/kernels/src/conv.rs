//! 2-D convolutions on burn's CPU backend, computed per group of examples
//! (groups in parallel, one thread each) with their own backward pass.
//!
//! Forward: on AVX-512, directly from a zero-padded copy of the input (the
//! `direct` module's tiles); otherwise by unrolling each example's patches
//! into a matrix that stays in cache and multiplying it with the output
//! positions as the rows. Backward: the weights' gradient is the same
//! unrolled patches times the output's gradient; the input's gradient is the
//! output's gradient convolved with the flipped weights (unit strides) or
//! the product of the weights and that gradient folded back onto the input
//! maps. flex's generic convolution moves whole activations between layouts
//! around its products, forward and backward, which dominated the image
//! networks' steps.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;

use crate::flex::{
    Destination, as_uninit, copy_row, f32_values, flex_tensor, multiply, vec_written_by,
};

mod direct;
#[cfg(feature = "tch")]
mod libtorch;

/// Fewest rows (output positions) of one product.
const ROWS: usize = 256;

/// Most partial sums of the weights' gradient: the groups of examples are
/// split into this many runs of consecutive groups, whatever the number of
/// threads, so that the sum is added up in the same order on every machine.
const WEIGHT_PARTS: usize = 16;

/// `layer.forward(x)`, computed as one product per group of examples on flex
/// (`f32`, one group of channels, explicit or no padding), with or without
/// autodiff; elsewhere, and for input burn would reject, burn's.
pub fn conv2d(layer: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    let padding = match layer.padding {
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [top, left, bottom, right],
        PaddingConfig2d::Same => return layer.forward(x),
    };
    #[cfg(feature = "tch")]
    if crate::is_libtorch(&device) {
        return libtorch::conv2d(layer, x, padding);
    }
    let [_, channels, height, width] = x.dims();
    let weight = layer.weight.val();
    let geometry = Geometry {
        channels,
        height,
        width,
        kernel: layer.kernel_size,
        stride: layer.stride,
        dilation: layer.dilation,
        padding,
    };
    let (Some(_), true, 1, true, DType::F32, DType::F32) = (
        geometry.output_size(),
        device.clone().inner() == Device::flex(),
        layer.groups,
        weight.dims()[1] == channels,
        x.dtype(),
        weight.dtype(),
    ) else {
        return layer.forward(x);
    };
    let out_channels = weight.dims()[0];
    let out = Tensor::from_dispatch(<Dispatch as UnrolledConv>::conv2d_unrolled(
        x.into_dispatch(),
        weight.into_dispatch(),
        geometry,
    ));
    match &layer.bias {
        Some(bias) => out + bias.val().reshape([1, out_channels, 1, 1]),
        None => out,
    }
}

/// The convolution of [`conv2d`] as a backend operation, so that autodiff
/// records it with its own backward pass.
#[backend_extension(Flex, Autodiff)]
trait UnrolledConv: Backend {
    /// `x` (B × C × H × W) convolved with `weight` (O × C × kh × kw), no bias.
    fn conv2d_unrolled(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self>;
}

impl UnrolledConv for Flex {
    fn conv2d_unrolled(x: FlexTensor, weight: FlexTensor, geometry: Geometry) -> FlexTensor {
        let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
        let out_channels = weight.layout().shape()[0];
        let (out, dims) = geometry.forward(f32_values(&x), f32_values(&weight), out_channels);
        flex_tensor(out, dims)
    }
}

impl<C: CheckpointStrategy> UnrolledConv for Autodiff<Flex, C> {
    fn conv2d_unrolled(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self> {
        match UnrolledConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), geometry);
                let out =
                    Flex::conv2d_unrolled(x.into_primitive(), weight.into_primitive(), geometry);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::conv2d_unrolled(
                x.into_primitive(),
                weight.into_primitive(),
                geometry,
            )),
        }
    }
}

#[derive(Debug)]
struct UnrolledConvBackward;

impl Backward<Flex, 2> for UnrolledConvBackward {
    type State = (NodeId, NodeId, Geometry);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x, weight, geometry) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x);
        let weight: FlexTensor = checkpointer.retrieve_node_output(weight);
        let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
        let grad_out = f32_values(&grad);
        if let Some(node) = node_x {
            let grad_x = geometry.input_gradient(grad_out, f32_values(&weight));
            grads.register::<Flex>(node.id, flex_tensor(grad_x, x.layout().shape().to_vec()));
        }
        if let Some(node) = node_weight {
            let grad_w =
                geometry.weight_gradient(f32_values(&x), grad_out, weight.layout().shape()[0]);
            grads.register::<Flex>(
                node.id,
                flex_tensor(grad_w, weight.layout().shape().to_vec()),
            );
        }
    }
}

/// The shape of a 2-D convolution over one example.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    channels: usize,
    height: usize,
    width: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    /// Top, left, bottom, right.
    padding: [usize; 4],
}

impl Geometry {
    /// Output height and width; `None` where the kernel does not fit.
    fn output_size(&self) -> Option<[usize; 2]> {
        let [top, left, bottom, right] = self.padding;
        let size = |input: usize, before: usize, after: usize, axis: usize| {
            let span = self.dilation[axis] * (self.kernel[axis].checked_sub(1)?) + 1;
            let padded = input + before + after;
            (self.stride[axis] > 0 && padded >= span)
                .then(|| (padded - span) / self.stride[axis] + 1)
        };
        Some([
            size(self.height, top, bottom, 0)?,
            size(self.width, left, right, 1)?,
        ])
    }

    /// Values in one patch: channels × kernel height × kernel width.
    fn patch_len(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    /// A 1 × 1 kernel with unit stride and no padding reads the input maps
    /// as they are.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0; 4]
    }

    /// Values in one input example: channels × height × width.
    fn example_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Output height and width of a geometry `conv2d` accepted.
    fn output(&self) -> [usize; 2] {
        self.output_size()
            .expect("the kernel fits the input (checked by `conv2d`)")
    }

    /// Examples multiplied together: enough for `ROWS` output positions, so
    /// that the small maps of late stages still fill the product's kernel.
    fn group(&self, batch: usize) -> usize {
        let [out_h, out_w] = self.output();
        ROWS.div_ceil(out_h * out_w).min(batch).max(1)
    }

    /// The convolution of `x` (B × C × H × W) with `weight` (O × K): the
    /// output's values and its dimensions.
    fn forward(&self, x: &[f32], weight: &[f32], out_channels: usize) -> (Vec<f32>, Vec<usize>) {
        let [out_h, out_w] = self.output();
        let (positions, k) = (out_h * out_w, self.patch_len());
        let batch = x.len() / self.example_len();
        let group = self.group(batch);
        let direct = self
            .direct_layout(out_channels)
            .map(|layout| (layout, self.weights_by_block(weight)));
        let write = |out: &mut [MaybeUninit<f32>]| {
            out.par_chunks_mut(group * out_channels * positions)
                .zip(x.par_chunks(group * self.example_len()))
                .for_each_init(
                    || (Vec::new(), Vec::new()),
                    |(patches, product), (out, x)| {
                        if let Some((layout, weights)) = &direct {
                            self.forward_direct(x, weights, *layout, out, (patches, product));
                            return;
                        }
                        let patches = self.unrolled(x, patches);
                        let rows = patches.len() / k;
                        // outᵀ (rows × O) = patchesᵀ (rows × K) · weightᵀ (K × O):
                        // the many positions are the rows of the product's kernel.
                        let one_example = rows == positions;
                        let to = if one_example {
                            // The product is laid out as the example's maps.
                            Destination::Fresh(&mut out[..])
                        } else {
                            product.resize(out_channels * rows, 0.0);
                            Destination::Over(&mut product[..])
                        };
                        multiply(
                            [rows, out_channels, k],
                            (to, [1, rows]),
                            (patches, [1, rows]),
                            (weight, [1, k]),
                        );
                        if !one_example {
                            scatter(product, out, [out_channels, positions]);
                        }
                    },
                );
        };
        // SAFETY: every group of examples writes all its output maps, through
        // the product or `scatter`.
        let out = unsafe { vec_written_by(batch * out_channels * positions, write) };
        (out, vec![batch, out_channels, out_h, out_w])
    }

    /// Where [`Geometry::forward_direct`] computes the output: the width of
    /// a row and the length of an example's map (one channel, one phase) in
    /// its padded input. With unit strides the padding one row or map needs
    /// on one side is the padding of its neighbour on the other, so each row
    /// is followed by the larger of the left and right padding and each map
    /// by the larger of the top and bottom one. With larger strides the
    /// padded maps are split into phases, the values at the same offset
    /// modulo the stride, each of which the kernel reads with unit strides.
    /// Either way the output's rows and maps, laid out the same way, do not
    /// overlap.
    fn direct_layout(&self, out_channels: usize) -> Option<[usize; 2]> {
        let [top, left, bottom, right] = self.padding;
        let [out_h, out_w] = self.output();
        let [sh, sw] = self.stride;
        let (row, rows) = if self.stride == [1, 1] {
            (self.width + left.max(right), self.height + top.max(bottom))
        } else {
            let padded = [self.height + top + bottom, self.width + left + right];
            (padded[1].div_ceil(sw), padded[0].div_ceil(sh))
        };
        let fits = out_w <= row && out_h <= rows;
        // Small maps are mostly padding: 4 × 4 ones have 25 positions to
        // compute for 16 outputs, and ran slower than unrolled. A 1 × 1
        // kernel reads each input value once: unrolled it is the input
        // itself or a strided selection of it, and with a stride of 2 the
        // product of that selection took 1.2 ms where splitting the whole
        // input into phases took 2.9 (16 channels of 28 × 28).
        let mostly_output = rows * row * 10 <= out_h * out_w * 14;
        (direct::available()
            && self.kernel != [1, 1]
            && out_channels.is_multiple_of(direct::CHANNELS)
            && fits
            && mostly_output)
            .then_some([row, rows * row])
    }

    /// The weights (`O × K`) in blocks of [`direct::CHANNELS`] output
    /// channels, each `K × CHANNELS`, for [`direct::tile`].
    fn weights_by_block(&self, weight: &[f32]) -> Vec<f32> {
        let k = self.patch_len();
        let mut blocks = Vec::with_capacity(weight.len());
        for block in weight.chunks_exact(direct::CHANNELS * k) {
            for i in 0..k {
                blocks.extend((0..direct::CHANNELS).map(|c| block[c * k + i]));
            }
        }
        blocks
    }

    /// The convolution of the examples in `x` (`G × C × H × W`) into `out`
    /// (`G × O × P`) without unrolling the patches. The input is copied once
    /// into zero-padded maps ([`Geometry::direct_layout`]), in which the
    /// output at position `m` reads `m + i·dh·row + j·dw` for kernel offset
    /// `(i, j)`: each tile of output positions is a sum of products of
    /// shifted views of those maps ([`direct::tile`]). Positions in the
    /// padding are computed too and dropped. Unrolling the patches instead
    /// writes each input value `kh · kw` times: a third of a ResNet-18
    /// guide's forward pass under `perf`.
    fn forward_direct(
        &self,
        x: &[f32],
        weights: &[f32],
        [row, plane]: [usize; 2],
        out: &mut [MaybeUninit<f32>],
        (padded, product): (&mut Vec<f32>, &mut Vec<f32>),
    ) {
        let [out_h, out_w] = self.output();
        let [kh, kw] = self.kernel;
        let [dh, dw] = self.dilation;
        let [sh, sw] = self.stride;
        let [top, left, ..] = self.padding;
        let (h, w) = (self.height, self.width);
        let examples = x.len() / self.example_len();
        let out_channels = out.len() / (examples * out_h * out_w);
        let used = (examples - 1) * plane + (out_h - 1) * row + out_w;
        let rows = used.next_multiple_of(direct::POSITIONS);
        // Each channel's and phase's maps, followed by the zeros the largest
        // shift reads.
        let phases = sh * sw;
        let largest_shift = (kh - 1) * dh / sh * row + (kw - 1) * dw / sw;
        let len = (rows + largest_shift).max(examples * plane);
        padded.clear();
        padded.resize(self.channels * phases * len, 0.0);
        // Padded position (y, x) of example b lies in phase (y mod sh,
        // x mod sw) at b · plane + (y / sh) · row + x / sw.
        for (b, x) in x.chunks_exact(self.example_len()).enumerate() {
            for (c, map) in x.chunks_exact(h * w).enumerate() {
                let maps = &mut padded[c * phases * len + b * plane..];
                for (y, values) in (top..).zip(map.chunks_exact(w)) {
                    let to = &mut maps[(y % sh * sw) * len + y / sh * row..];
                    if phases == 1 {
                        copy_row(&mut to[left..][..w], values);
                        continue;
                    }
                    for first in 0..sw.min(w) {
                        let x = left + first;
                        let to = &mut to[(x % sw) * len + x / sw..];
                        let from = values[first..].iter().step_by(sw);
                        to.iter_mut().zip(from).for_each(|(t, v)| *t = *v);
                    }
                }
            }
        }
        let offsets: Vec<usize> = (0..self.channels)
            .flat_map(|c| (0..kh).flat_map(move |i| (0..kw).map(move |j| (c, i * dh, j * dw))))
            .map(|(c, y, x)| (c * phases + y % sh * sw + x % sw) * len + y / sh * row + x / sw)
            .collect();
        product.resize(out_channels * rows, 0.0);
        let block_len = offsets.len() * direct::CHANNELS;
        for t in (0..rows).step_by(direct::POSITIONS) {
            for (o, block) in weights.chunks_exact(block_len).enumerate() {
                let to = &mut product[o * direct::CHANNELS * rows + t..];
                direct::tile(&padded[t..], &offsets, block, to, rows);
            }
        }
        let positions = out_h * out_w;
        for (b, maps) in out.chunks_exact_mut(out_channels * positions).enumerate() {
            for (o, map) in maps.chunks_exact_mut(positions).enumerate() {
                let from = as_uninit(&product[o * rows + b * plane..]);
                for (y, values) in map.chunks_exact_mut(out_w).enumerate() {
                    copy_row(values, &from[y * row..][..out_w]);
                }
            }
        }
    }

    /// With unit strides, the gradient with respect to the input is the
    /// convolution of the output's gradient (`O` channels) with the weights
    /// flipped in space and transposed in channels, padded so that its
    /// output has the input's size: `dx(y, x) = Σ grad(y + i'·dh − top',
    /// x + j'·dw − left') · w(kh − 1 − i', kw − 1 − j')` with `top' = (kh −
    /// 1)·dh − top`. Where [`Geometry::forward_direct`] computes that
    /// convolution, this is its geometry.
    fn transposed(&self, out_channels: usize) -> Option<Geometry> {
        let [out_h, out_w] = self.output();
        let [top, left, bottom, right] = self.padding;
        let span = |axis: usize| (self.kernel[axis] - 1) * self.dilation[axis];
        let transposed = Geometry {
            channels: out_channels,
            height: out_h,
            width: out_w,
            padding: [
                span(0).checked_sub(top)?,
                span(1).checked_sub(left)?,
                span(0).checked_sub(bottom)?,
                span(1).checked_sub(right)?,
            ],
            ..*self
        };
        (self.stride == [1, 1] && transposed.direct_layout(self.channels).is_some())
            .then_some(transposed)
    }

    /// The weights (`O × C × kh × kw`) flipped in space and transposed in
    /// channels (`C × O × kh × kw`), for [`Geometry::transposed`].
    fn flipped_weights(&self, weight: &[f32], out_channels: usize) -> Vec<f32> {
        let taps = self.kernel[0] * self.kernel[1];
        let mut flipped = Vec::with_capacity(weight.len());
        for c in 0..self.channels {
            for o in 0..out_channels {
                let kernel = &weight[(o * self.channels + c) * taps..][..taps];
                flipped.extend(kernel.iter().rev());
            }
        }
        flipped
    }

    /// The gradient with respect to the input of the loss whose gradient
    /// with respect to the output is `grad` (B × O × P).
    fn input_gradient(&self, grad: &[f32], weight: &[f32]) -> Vec<f32> {
        let [out_h, out_w] = self.output();
        let (positions, k) = (out_h * out_w, self.patch_len());
        let out_channels = weight.len() / k;
        if let Some(transposed) = self.transposed(out_channels) {
            let flipped = self.flipped_weights(weight, out_channels);
            return transposed.forward(grad, &flipped, self.channels).0;
        }
        let batch = grad.len() / (out_channels * positions);
        let group = self.group(batch);
        let mut dx = vec![0.0f32; batch * self.example_len()];
        dx.par_chunks_mut(group * self.example_len())
            .zip(grad.par_chunks(group * out_channels * positions))
            .for_each_init(
                || (Vec::new(), Vec::new()),
                |(gathered, patches), (dx, grad)| {
                    let grad = gather(grad, [out_channels, positions], gathered);
                    let rows = grad.len() / out_channels;
                    let pointwise = self.is_pointwise() && rows == positions;
                    let to = if pointwise {
                        // The patches are the input maps themselves.
                        &mut dx[..]
                    } else {
                        patches.resize(k * rows, 0.0);
                        &mut patches[..]
                    };
                    // d patchesᵀ (rows × K) = gradᵀ (rows × O) · weight (O × K)
                    multiply(
                        [rows, k, out_channels],
                        (Destination::Over(to), [1, rows]),
                        (grad, [1, rows]),
                        (weight, [k, 1]),
                    );
                    if !pointwise {
                        for (b, dx) in dx.chunks_exact_mut(self.example_len()).enumerate() {
                            self.fold(&patches[b * positions..], [out_h, out_w], dx, rows);
                        }
                    }
                },
            );
        dx
    }

    /// The gradient with respect to the weights (O × K) of the loss whose
    /// gradient with respect to the output of `x` is `grad`. Summed over the
    /// groups of examples in runs of consecutive groups ([`WEIGHT_PARTS`]),
    /// then over the runs in order.
    fn weight_gradient(&self, x: &[f32], grad: &[f32], out_channels: usize) -> Vec<f32> {
        let [out_h, out_w] = self.output();
        let (positions, k) = (out_h * out_w, self.patch_len());
        let batch = x.len() / self.example_len();
        let group = self.group(batch);
        let groups_per_part = batch.div_ceil(group).div_ceil(WEIGHT_PARTS);
        let examples_per_part = groups_per_part * group;
        let parts: Vec<Vec<f32>> = x
            .par_chunks(examples_per_part * self.example_len())
            .zip(grad.par_chunks(examples_per_part * out_channels * positions))
            .map(|(x, grad)| {
                let mut sum = vec![0.0f32; out_channels * k];
                let (mut patches, mut gathered) = (Vec::new(), Vec::new());
                let groups = x
                    .chunks(group * self.example_len())
                    .zip(grad.chunks(group * out_channels * positions));
                for (x, grad) in groups {
                    let patches = self.unrolled(x, &mut patches);
                    let grad = gather(grad, [out_channels, positions], &mut gathered);
                    let rows = grad.len() / out_channels;
                    // d weightᵀ (K × O) += patches (K × rows) · gradᵀ (rows × O)
                    multiply(
                        [k, out_channels, rows],
                        (Destination::Onto(&mut sum), [1, k]),
                        (patches, [rows, 1]),
                        (grad, [1, rows]),
                    );
                }
                sum
            })
            .collect();
        let mut parts = parts.into_iter();
        let mut total = parts.next().unwrap_or_else(|| vec![0.0; out_channels * k]);
        for part in parts {
            total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
        }
        total
    }

    /// The patches of the examples in `x` side by side (K × examples · P),
    /// unrolled into `buffer`, or `x` itself where a pointwise kernel reads
    /// one example's maps as they are.
    fn unrolled<'a>(&self, x: &'a [f32], buffer: &'a mut Vec<f32>) -> &'a [f32] {
        let [out_h, out_w] = self.output();
        let positions = out_h * out_w;
        let rows = x.len() / self.example_len() * positions;
        if self.is_pointwise() && rows == positions {
            return x;
        }
        buffer.resize(self.patch_len() * rows, 0.0);
        for (b, x) in x.chunks_exact(self.example_len()).enumerate() {
            self.unroll(x, [out_h, out_w], &mut buffer[b * positions..], rows);
        }
        buffer
    }

    /// Writes the patches of one example `x` (`C × H × W`) into the first
    /// `P` columns of `K` rows spaced `ld` apart: row `(c, i, j)` holds input
    /// `(c, oh·s + i·d − top, ow·s + j·d − left)` for every output position
    /// `(oh, ow)`, zero where that falls in the padding.
    fn unroll(&self, x: &[f32], [out_h, out_w]: [usize; 2], patches: &mut [f32], ld: usize) {
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let [dh, dw] = self.dilation;
        let [top, left, ..] = self.padding;
        let (h, w) = (self.height, self.width);
        let positions = out_h * out_w;
        let mut r = 0;
        for plane in x.chunks_exact(h * w) {
            for i in 0..kh {
                let row_shift = (i * dh) as isize - top as isize;
                let (first_row, end_row) = inside(row_shift, sh, h, out_h);
                for j in 0..kw {
                    let row = &mut patches[r * ld..][..positions];
                    r += 1;
                    let shift = (j * dw) as isize - left as isize;
                    let (first, end) = inside(shift, sw, w, out_w);
                    row[..first_row * out_w].fill(0.0);
                    row[end_row * out_w..].fill(0.0);
                    let block = &mut row[first_row * out_w..end_row * out_w];
                    if sh == 1 && sw == 1 && out_w == w {
                        // Consecutive output rows read consecutive input
                        // rows: one copy, then the columns that wrapped
                        // around from the neighbouring rows are cleared.
                        let start = (first_row as isize + row_shift) * w as isize + shift;
                        let lo = (-start).max(0) as usize;
                        let hi = (block.len() as isize).min((h * w) as isize - start) as usize;
                        if lo < hi {
                            let from = (start + lo as isize) as usize;
                            block[lo..hi].copy_from_slice(&plane[from..from + (hi - lo)]);
                        }
                        for out in block.chunks_exact_mut(w) {
                            out[..first].fill(0.0);
                            out[end..].fill(0.0);
                        }
                        continue;
                    }
                    for (oh, out) in (first_row..end_row).zip(block.chunks_exact_mut(out_w)) {
                        let ih = (oh * sh) as isize + row_shift;
                        let input = &plane[ih as usize * w..][..w];
                        out[..first].fill(0.0);
                        out[end..].fill(0.0);
                        let start = ((first * sw) as isize + shift) as usize;
                        for (k, o) in out[first..end].iter_mut().enumerate() {
                            *o = input[start + k * sw];
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`Geometry::unroll`]: adds each value of the `K` rows
    /// spaced `ld` apart in `patches` onto the input value it was read from.
    fn fold(&self, patches: &[f32], [out_h, out_w]: [usize; 2], dx: &mut [f32], ld: usize) {
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let [dh, dw] = self.dilation;
        let [top, left, ..] = self.padding;
        let (h, w) = (self.height, self.width);
        let mut r = 0;
        for plane in dx.chunks_exact_mut(h * w) {
            for i in 0..kh {
                let row_shift = (i * dh) as isize - top as isize;
                let (first_row, end_row) = inside(row_shift, sh, h, out_h);
                for j in 0..kw {
                    let row = &patches[r * ld..][..out_h * out_w];
                    r += 1;
                    let shift = (j * dw) as isize - left as isize;
                    let (first, end) = inside(shift, sw, w, out_w);
                    if first == end {
                        continue;
                    }
                    let start = ((first * sw) as isize + shift) as usize;
                    for oh in first_row..end_row {
                        let ih = ((oh * sh) as isize + row_shift) as usize;
                        let to = &mut plane[ih * w..][..w];
                        let from = &row[oh * out_w..][first..end];
                        if sw == 1 {
                            let to = &mut to[start..start + from.len()];
                            to.iter_mut().zip(from).for_each(|(t, f)| *t += f);
                        } else {
                            for (n, f) in from.iter().enumerate() {
                                to[start + n * sw] += f;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// O × P maps of consecutive examples (`grad`) as one O × (examples · P)
/// matrix, gathered into `buffer`; one example's maps are that matrix
/// already.
fn gather<'a>(
    grad: &'a [f32],
    [out_channels, positions]: [usize; 2],
    buffer: &'a mut Vec<f32>,
) -> &'a [f32] {
    let rows = grad.len() / out_channels;
    if rows == positions {
        return grad;
    }
    buffer.resize(grad.len(), 0.0);
    for (b, maps) in grad.chunks_exact(out_channels * positions).enumerate() {
        for (o, map) in maps.chunks_exact(positions).enumerate() {
            buffer[o * rows + b * positions..][..positions].copy_from_slice(map);
        }
    }
    buffer
}

/// The inverse of [`gather`]: an O × (examples · P) `product` written into
/// the O × P maps of each example of `out`.
fn scatter(product: &[f32], out: &mut [MaybeUninit<f32>], [out_channels, positions]: [usize; 2]) {
    let rows = product.len() / out_channels;
    for (b, maps) in out.chunks_exact_mut(out_channels * positions).enumerate() {
        for (o, map) in maps.chunks_exact_mut(positions).enumerate() {
            map.write_copy_of_slice(&product[o * rows + b * positions..][..positions]);
        }
    }
}

/// The outputs `first..end` of `0..count` whose input `o · stride + shift`
/// lies in `0..len`.
fn inside(shift: isize, stride: usize, len: usize, count: usize) -> (usize, usize) {
    let first = if shift < 0 {
        ((-shift) as usize).div_ceil(stride).min(count)
    } else {
        0
    };
    let end = if (len as isize) > shift {
        ((len as isize - shift) as usize)
            .div_ceil(stride)
            .min(count)
    } else {
        0
    };
    (first, end.max(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::TensorData;

    /// Calls `visit(out, input, weight)` with the flat indices of every
    /// output value, input value and weight that the definition multiplies
    /// together: `out[b, o, y, x]` reads `w[o, c, i, j] · in[b, c, y·sh +
    /// i·dh − top, x·sw + j·dw − left]` wherever that lies inside the input.
    fn each_product(
        layer: &Conv2d,
        input: [usize; 4],
        [out_h, out_w]: [usize; 2],
        [top, left]: [usize; 2],
        mut visit: impl FnMut(usize, usize, usize),
    ) {
        let [batch, channels, h, w] = input;
        let [o_n, _, kh, kw] = layer.weight.val().dims();
        for b in 0..batch {
            for o in 0..o_n {
                for oy in 0..out_h {
                    for ox in 0..out_w {
                        let out = ((b * o_n + o) * out_h + oy) * out_w + ox;
                        for c in 0..channels {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let y = (oy * layer.stride[0] + i * layer.dilation[0]) as isize
                                        - top as isize;
                                    let x = (ox * layer.stride[1] + j * layer.dilation[1]) as isize
                                        - left as isize;
                                    if (0..h as isize).contains(&y) && (0..w as isize).contains(&x)
                                    {
                                        let at =
                                            ((b * channels + c) * h + y as usize) * w + x as usize;
                                        let weight = ((o * channels + c) * kh + i) * kw + j;
                                        visit(out, at, weight);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The convolution by definition, in `f64`, with its bias.
    fn by_definition(layer: &Conv2d, x: &Tensor<4>, top_left: [usize; 2]) -> Vec<f64> {
        let (input, weight) = (values(x.clone()), values(layer.weight.val()));
        let bias = layer.bias.as_ref().map(|b| values(b.val()));
        let [.., out_h, out_w] = conv2d(layer, x.clone()).dims();
        let [o_n, ..] = layer.weight.val().dims();
        let mut out = vec![0.0; x.dims()[0] * o_n * out_h * out_w];
        if let Some(bias) = &bias {
            for (maps, b) in out.chunks_exact_mut(out_h * out_w).zip(bias.iter().cycle()) {
                maps.fill(*b);
            }
        }
        each_product(layer, x.dims(), [out_h, out_w], top_left, |o, i, w| {
            out[o] += weight[w] * input[i];
        });
        out
    }

    /// The gradients of `Σ r ⊙ conv(x)` by definition, in `f64`: each
    /// product `w · in` in the output's value `o` adds `r[o] · w` to the
    /// input's gradient and `r[o] · in` to the weight's. Each weight's
    /// gradient comes with the sum of its terms' magnitudes, the scale of
    /// the rounding error of an `f32` sum of them.
    fn gradients_by_definition(
        layer: &Conv2d,
        x: &Tensor<4>,
        r: &Tensor<4>,
        top_left: [usize; 2],
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let [.., out_h, out_w] = r.dims();
        let (input, weight) = (values(x.clone()), values(layer.weight.val()));
        let r = values(r.clone());
        let (mut dx, mut dw) = (vec![0.0; input.len()], vec![0.0; weight.len()]);
        let mut dw_scale = vec![0.0; weight.len()];
        each_product(layer, x.dims(), [out_h, out_w], top_left, |o, i, w| {
            dx[i] += r[o] * weight[w];
            dw[w] += r[o] * input[i];
            dw_scale[w] += (r[o] * input[i]).abs();
        });
        (dx, dw, dw_scale)
    }

    fn input(dims: [usize; 4], device: &Device) -> Tensor<4> {
        let n = dims.iter().product::<usize>();
        let data: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 211) as f32 / 105.0 - 1.0)
            .collect();
        Tensor::from_data(TensorData::new(data, dims), device)
    }

    fn assert_close(got: &[f64], expected: &[f64], case: &str) {
        assert_close_to_scale(got, expected, expected, case);
    }

    /// Each value within `1e-5 · (1 + scale)` of the expected one.
    fn assert_close_to_scale(got: &[f64], expected: &[f64], scale: &[f64], case: &str) {
        assert_eq!(got.len(), expected.len(), "{case}");
        for (i, ((g, e), s)) in got.iter().zip(expected).zip(scale).enumerate() {
            assert!(
                (g - e).abs() < 1e-5 * (1.0 + s.abs()),
                "{case}: [{i}] {g} ≠ {e}"
            );
        }
    }

    /// One convolution of each shape the products, the unrolling and the
    /// direct tiles treat differently, as (input, kernel, stride, dilation,
    /// padding top-left-bottom-right, bias). Maps of 7 × 9 are multiplied 5
    /// examples at a time (the last group of 7 holds 2), maps of 17 × 16 one
    /// at a time. Inputs of 3 channels go to 5 output channels, always
    /// unrolled; inputs of 16 channels to 16, two blocks of direct tiles (and
    /// input gradients of two blocks of 8) where the
    /// kernel is larger than 1 × 1 and the padded maps (split into phases
    /// for strides above 1) are not much larger than the output.
    fn cases(device: &Device) -> Vec<(Conv2d, Tensor<4>, [usize; 2], String)> {
        let (small, large) = ([7, 3, 7, 9], [2, 3, 17, 16]);
        let (small_wide, large_wide) = ([7, 16, 7, 9], [2, 16, 17, 16]);
        let cases = [
            (small_wide, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], true),
            (small_wide, [3, 3], [2, 2], [1, 1], [1, 1, 1, 1], false),
            (small_wide, [5, 5], [1, 1], [1, 1], [2, 2, 2, 2], false),
            (large_wide, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], false),
            (large_wide, [3, 2], [1, 1], [1, 2], [2, 0, 0, 2], true),
            (large_wide, [3, 3], [1, 1], [2, 1], [2, 1, 2, 1], false),
            (large_wide, [1, 1], [1, 1], [1, 1], [0, 0, 0, 0], false),
            (large_wide, [3, 3], [2, 2], [1, 1], [1, 1, 1, 1], true),
            (large_wide, [1, 1], [2, 2], [1, 1], [0, 0, 0, 0], false),
            (large_wide, [3, 3], [2, 1], [1, 2], [1, 2, 1, 2], false),
            (small, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], true),
            (small, [1, 1], [1, 1], [1, 1], [0, 0, 0, 0], false),
            (small, [1, 1], [2, 2], [1, 1], [0, 0, 0, 0], false),
            (small, [3, 3], [2, 2], [1, 1], [1, 1, 1, 1], false),
            (small, [3, 2], [2, 1], [1, 2], [2, 0, 1, 3], true),
            (small, [5, 5], [2, 3], [1, 1], [2, 2, 2, 2], true),
            (large, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], true),
            (large, [1, 1], [1, 1], [1, 1], [0, 0, 0, 0], true),
            (large, [3, 3], [1, 1], [2, 1], [0, 2, 3, 0], false),
        ];
        cases
            .into_iter()
            .map(
                |(dims, kernel, stride, dilation, [top, left, bottom, right], bias)| {
                    let out_channels = if dims[1] == 3 { 5 } else { 16 };
                    let layer = Conv2dConfig::new([dims[1], out_channels], kernel)
                        .with_stride(stride)
                        .with_dilation(dilation)
                        .with_padding(PaddingConfig2d::Explicit(top, left, bottom, right))
                        .with_bias(bias)
                        .init(device);
                    let case = format!(
                        "{dims:?} kernel {kernel:?} stride {stride:?} dilation {dilation:?}"
                    );
                    (layer, input(dims, device), [top, left], case)
                },
            )
            .collect()
    }

    /// The backends with a convolution of their own: flex, and LibTorch
    /// (its CPU kernels) where the build has it.
    fn devices() -> Vec<Device> {
        vec![
            Device::flex(),
            #[cfg(feature = "tch")]
            untrainable_core::Backend::TchCpu.device(),
        ]
    }

    #[test]
    fn examples_unrolled_and_multiplied_in_groups_are_the_convolution_by_definition() {
        let _generator = untrainable_core::random_stream_lock();
        for device in devices() {
            device.seed(11);
            for (layer, x, top_left, case) in cases(&device) {
                let ours = conv2d(&layer, x.clone());
                assert_eq!(ours.dims(), layer.forward(x.clone()).dims(), "{case}");
                let case = format!("{device:?}, {case}");
                assert_close(&values(ours), &by_definition(&layer, &x, top_left), &case);
            }
        }
    }

    #[test]
    fn the_backward_pass_gives_the_gradients_by_definition() {
        let _generator = untrainable_core::random_stream_lock();
        for device in devices() {
            backward_by_definition(&device.autodiff());
        }
    }

    fn backward_by_definition(device: &Device) {
        device.seed(12);
        for (layer, x, top_left, case) in cases(device) {
            let case = format!("{device:?}, {case}");
            let x = x.require_grad();
            let out = conv2d(&layer, x.clone());
            let r = input(out.dims(), device).flip([3]);
            let grads = (out * r.clone()).sum().backward();
            let (dx, dw, dw_scale) = gradients_by_definition(&layer, &x, &r, top_left);
            let got_dx = values(x.grad(&grads).expect("a gradient reaches the input"));
            assert_close(&got_dx, &dx, &format!("input gradient, {case}"));
            let got_dw = values(layer.weight.grad(&grads).expect("the weights' gradient"));
            let case_dw = format!("weight gradient, {case}");
            assert_close_to_scale(&got_dw, &dw, &dw_scale, &case_dw);
            // A constant input (a batch of images) still trains the weights.
            let grads = (conv2d(&layer, x.detach()) * r).sum().backward();
            assert_eq!(values(layer.weight.grad(&grads).unwrap()), got_dw, "{case}");
        }
    }

    #[test]
    fn the_weights_gradient_is_the_same_on_any_number_of_threads() {
        let _generator = untrainable_core::random_stream_lock();
        let device = Device::flex().autodiff();
        device.seed(13);
        let layer = Conv2dConfig::new([3, 4], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        // 64 examples of 6 × 6 maps: 8 per group, 8 groups.
        let x = input([64, 3, 6, 6], &device);
        let r = input([64, 4, 6, 6], &device).flip([0]);
        let weight_gradient = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let grads = (conv2d(&layer, x.clone()) * r.clone()).sum().backward();
                values(layer.weight.grad(&grads).unwrap())
            })
        };
        let one = weight_gradient(1);
        assert_eq!(one, weight_gradient(3));
        assert_eq!(one, weight_gradient(5));
    }
}
