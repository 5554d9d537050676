//! Convolutions without autodiff as one matrix product per group of examples
//! on burn's CPU backend.
//!
//! flex convolves in tiles of 512 output positions: it first moves the whole
//! input to channels-last order on one thread, then for each tile gathers the
//! patches, multiplies them by the weights (with the output channels as the
//! rows, 16 to 128 here, too few for the product's kernel) and scatters the
//! result back. Under `perf`, a frozen ResNet-18 guide's forward pass spent
//! half its time outside the products. [`conv2d`] unrolls each example's
//! patches into a matrix that stays in cache, multiplies it with the output
//! positions as the rows (grouping examples whose maps are small), and writes
//! the product into the output maps; groups run in parallel.
//!
//! Only forward passes without autodiff take this path (a frozen guide, an
//! evaluation); training keeps burn's convolution and its backward pass.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Device, Tensor, TensorData};
use rayon::prelude::*;

/// Fewest rows (output positions) of one product.
const ROWS: usize = 256;

/// `layer.forward(x)`, computed as one product per group of examples on flex
/// without autodiff (`f32`, one group of channels, explicit or no padding);
/// elsewhere, and for input burn would reject, burn's.
pub fn conv2d(layer: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    let padding = match layer.padding {
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [top, left, bottom, right],
        PaddingConfig2d::Same => return layer.forward(x),
    };
    let [batch, channels, height, width] = x.dims();
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
    let (Some([out_h, out_w]), false, true, 1, true, DType::F32) = (
        geometry.output_size(),
        device.is_autodiff(),
        device.clone().inner() == Device::flex(),
        layer.groups,
        weight.dims()[1] == channels,
        x.dtype(),
    ) else {
        return layer.forward(x);
    };
    let out_channels = weight.dims()[0];
    let bias = layer.bias.as_ref().map(|b| floats(b.val()));
    let (x, weight) = (floats(x), floats(weight));
    let positions = out_h * out_w;
    let example_len = channels * height * width;
    // Examples are multiplied in groups of at least `ROWS` positions, so that
    // the small maps of late stages still fill the product's kernel.
    let group = ROWS.div_ceil(positions).min(batch).max(1);
    let mut out = vec![0.0f32; batch * out_channels * positions];
    out.par_chunks_mut(group * out_channels * positions)
        .zip(x.par_chunks(group * example_len))
        .for_each_init(
            || (Vec::new(), Vec::new()),
            |(patches, product), (out, x)| {
                let rows = x.len() / example_len * positions;
                let patches: &[f32] = if geometry.is_pointwise() && rows == positions {
                    x
                } else {
                    patches.resize(geometry.patch_len() * rows, 0.0);
                    for (b, x) in x.chunks_exact(example_len).enumerate() {
                        geometry.unroll(x, [out_h, out_w], &mut patches[b * positions..], rows);
                    }
                    patches
                };
                if rows == positions {
                    // One example: the product is laid out as its output maps.
                    if let Some(bias) = &bias {
                        for (maps, &b) in out.chunks_exact_mut(positions).zip(bias) {
                            maps.fill(b);
                        }
                    }
                    multiply(patches, &weight, out, rows, bias.is_some());
                    return;
                }
                product.resize(out_channels * rows, 0.0);
                multiply(patches, &weight, product, rows, false);
                // `product` is O × (examples · P); `out` examples × O × P.
                for (b, out) in out.chunks_exact_mut(out_channels * positions).enumerate() {
                    for (o, maps) in out.chunks_exact_mut(positions).enumerate() {
                        let from = &product[o * rows + b * positions..][..positions];
                        let b = bias.as_ref().map_or(0.0, |bias| bias[o]);
                        for (to, from) in maps.iter_mut().zip(from) {
                            *to = from + b;
                        }
                    }
                }
            },
        );
    Tensor::from_data(
        TensorData::new(out, [batch, out_channels, out_h, out_w]),
        (&device, DType::F32),
    )
}

/// A tensor's `f32` values, in row-major order.
fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec::<f32>()
        .expect("an f32 tensor holds f32 values")
}

/// `out (O × P) (+)= weight (O × K) · patches (K × P)`, all row-major, where
/// `P` is `positions`: computed as `outᵀ = patchesᵀ · weightᵀ`, so that the
/// many positions are the rows of the product's kernel and the few output
/// channels its columns.
fn multiply(patches: &[f32], weight: &[f32], out: &mut [f32], positions: usize, accumulate: bool) {
    let k = patches.len() / positions;
    let out_channels = out.len() / positions;
    assert_eq!(weight.len(), out_channels * k, "weights of O × K");
    let p = positions as isize;
    // SAFETY: every matrix lies within its slice: `out` and `patches` are
    // read with row stride 1 and column stride P over P rows and O (resp. K)
    // columns; `weight` with row stride 1 and column stride K over K rows and
    // O columns. `out` is the only one written and is borrowed mutably.
    unsafe {
        gemm::gemm(
            positions,
            out_channels,
            k,
            out.as_mut_ptr(),
            p,
            1,
            accumulate,
            patches.as_ptr(),
            p,
            1,
            weight.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
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
    use burn::nn::conv::Conv2dConfig;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .unwrap()
    }

    /// The definition, in `f64`: `out[b, o, y, x] = bias[o] + Σ_{c, i, j}
    /// w[o, c, i, j] · in[b, c, y·sh + i·dh − top, x·sw + j·dw − left]`,
    /// zero outside the input.
    fn by_definition(layer: &Conv2d, x: &Tensor<4>, [top, left]: [usize; 2]) -> Vec<f64> {
        let [batch, channels, h, w] = x.dims();
        let [o_n, _, kh, kw] = layer.weight.val().dims();
        let (input, weight) = (values(x.clone()), values(layer.weight.val()));
        let bias = layer.bias.as_ref().map(|b| values(b.val()));
        let out_dims = conv2d(layer, x.clone()).dims();
        let (oh_n, ow_n) = (out_dims[2], out_dims[3]);
        let mut out = Vec::new();
        for b in 0..batch {
            for o in 0..o_n {
                for oy in 0..oh_n {
                    for ox in 0..ow_n {
                        let mut sum = bias.as_ref().map_or(0.0, |bias| bias[o]);
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
                                        sum += weight[((o * channels + c) * kh + i) * kw + j]
                                            * input[at];
                                    }
                                }
                            }
                        }
                        out.push(sum);
                    }
                }
            }
        }
        out
    }

    fn input(dims: [usize; 4], device: &Device) -> Tensor<4> {
        let n = dims.iter().product::<usize>();
        let data: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 211) as f32 / 105.0 - 1.0)
            .collect();
        Tensor::from_data(TensorData::new(data, dims), device)
    }

    #[test]
    fn examples_unrolled_and_multiplied_in_groups_are_the_convolution_by_definition() {
        let _generator = crate::generator();
        let device = Device::flex();
        device.seed(11);
        // Maps of 7 × 9 are multiplied 5 examples at a time (the last group
        // of 7 holds 2), maps of 17 × 16 one at a time.
        let (small, large) = ([7, 3, 7, 9], [2, 3, 17, 16]);
        // (input, kernel, stride, dilation, padding top-left-bottom-right, bias)
        let cases = [
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
        for (dims, kernel, stride, dilation, [top, left, bottom, right], bias) in cases {
            let layer = Conv2dConfig::new([3, 5], kernel)
                .with_stride(stride)
                .with_dilation(dilation)
                .with_padding(PaddingConfig2d::Explicit(top, left, bottom, right))
                .with_bias(bias)
                .init(&device);
            let x = input(dims, &device);
            let ours = conv2d(&layer, x.clone());
            let case =
                format!("{dims:?} kernel {kernel:?} stride {stride:?} dilation {dilation:?}");
            assert_eq!(ours.dims(), layer.forward(x.clone()).dims(), "{case}");
            let expected = by_definition(&layer, &x, [top, left]);
            let got = values(ours);
            assert_eq!(got.len(), expected.len(), "{case}");
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert!(
                    (g - e).abs() < 1e-5 * (1.0 + e.abs()),
                    "{case}: [{i}] {g} ≠ {e}"
                );
            }
        }
    }

    #[test]
    fn training_keeps_burns_convolution_and_its_gradient() {
        let _generator = crate::generator();
        let device = Device::flex().autodiff();
        device.seed(5);
        let layer = Conv2dConfig::new([2, 3], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let x = input([2, 2, 5, 5], &device).require_grad();
        let grads = conv2d(&layer, x.clone()).square().sum().backward();
        let ours = values(x.grad(&grads).expect("a gradient reaches the input"));
        let grads = layer.forward(x.clone()).square().sum().backward();
        assert_eq!(ours, values(x.grad(&grads).unwrap()));
    }
}
