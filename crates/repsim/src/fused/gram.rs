//! The Gram matrix `X Xᵀ` of a representation that no gradient flows
//! through (a frozen guide's taps, the widest that guidance compares): it is
//! symmetric, so [`gram_without_grad`] multiplies each pair of row blocks
//! once and mirrors it, about half the products of a general matrix product.

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;
use std::ops::Range;

use untrainable_kernels::flex::{Destination, f32_values, flex_tensor, multiply, vec_written_by};
use untrainable_kernels::transpose::transpose;

/// Rows of a block: half the product kernel's 64, so that the blocks on
/// the diagonal, computed whole, are a smaller part of the products (a
/// batch of 64 computes 3/4 of its Gram matrix instead of all of it; the
/// guidance terms of the Deep ConvNet took 17 % less time, the Deep FCN's
/// 3 % less).
const BLOCK_ROWS: usize = 32;

/// Rows from which [`gram_without_grad`] takes this path: for fewer, repsim's
/// Gram matrix from burn's batched products measured faster.
const FEWEST_ROWS: usize = 65;

/// Features per partial product: a fixed split, so that the sum over them
/// is added up in the same order on any number of threads.
const BLOCK_COLUMNS: usize = 1024;

/// `x xᵀ` (n × n) for `x` (n × d) that takes part in no gradient (a frozen
/// guide's taps, any tap in evaluation), from the products of each block
/// of rows with its own and the later rows; on flex (`f32`) only, for at
/// least [`FEWEST_ROWS`] rows; `None` elsewhere or for a tracked `x`.
pub fn gram_without_grad(x: &Tensor<2>) -> Option<Tensor<2>> {
    let device = x.device();
    let flex_f32 = device.clone().inner() == Device::flex() && x.dtype() == DType::F32;
    if x.is_tracked() || !flex_f32 || x.dims()[0] < FEWEST_ROWS {
        return None;
    }
    let inner = x.clone().inner().into_dispatch();
    let k = Tensor::<2>::from_dispatch(<Dispatch as SymmetricGram>::symmetric_gram(inner));
    Some(if device.is_autodiff() {
        Tensor::from_inner(k)
    } else {
        k
    })
}

/// `x xᵀ` of a representation that takes no gradient, from any number of
/// rows: on flex (`f32`) the products of [`gram_without_grad`], which are
/// those that [`unit_centred_grams`](crate::unit_centred_grams) computes for
/// a batch, so that a batch's block of a table over a whole data set is its
/// Gram matrix bit for bit; `x xᵀ` of the tensors elsewhere.
pub fn fixed_gram(x: &Tensor<2>) -> Tensor<2> {
    let flex_f32 = x.device().inner() == Device::flex() && x.dtype() == DType::F32;
    if x.is_tracked() || !flex_f32 {
        let x = x.clone().detach();
        return x.clone().matmul(x.transpose());
    }
    let k = Tensor::<2>::from_dispatch(<Dispatch as SymmetricGram>::symmetric_gram(
        x.clone().inner().into_dispatch(),
    ));
    if x.device().is_autodiff() {
        Tensor::from_inner(k)
    } else {
        k
    }
}

#[backend_extension(Flex)]
trait SymmetricGram: Backend {
    /// `x xᵀ` for `x` of n × d.
    fn symmetric_gram(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl SymmetricGram for Flex {
    fn symmetric_gram(x: FlexTensor) -> FlexTensor {
        let x = x.to_contiguous();
        let [n, d] = x.layout().shape()[..] else {
            unreachable!("a tensor of rank 2")
        };
        flex_tensor(gram(f32_values(&x), n, d), vec![n, n])
    }
}

/// `x xᵀ` of the n × d row-major `x`, by blocks of rows `i`: the products
/// `x[i] x[i..]ᵀ` (the rows of block `i` against its own and every later
/// row) over every block of columns, one task each; a block's partial
/// products summed in column order, written into its rows from its diagonal
/// on and mirrored below it. Each row block is the left factor of one product
/// per block of columns, handed to the product kernel by columns, as it reads
/// it: transposed here by tiles of 16 × 16 in registers, where the kernel
/// repacked it from rows one value at a time (a fifth of the Deep FCN's
/// guidance terms under `perf`, against a twentieth for the tiles).
pub(crate) fn gram(x: &[f32], n: usize, d: usize) -> Vec<f32> {
    let rows = ranges(n, BLOCK_ROWS);
    let columns = ranges(d, BLOCK_COLUMNS);
    let partials: Vec<Vec<f32>> = rows
        .par_iter()
        .flat_map_iter(|a| columns.iter().map(move |c| (a.clone(), c.clone())))
        .map(|(a, c)| {
            let later = n - a.start;
            let start = &x[a.start * d + c.start..];
            // x[a, c] by columns (x[a.start + r, c.start + f] at f · a + r).
            // SAFETY: the transposition writes every value.
            let left = unsafe {
                vec_written_by(a.len() * c.len(), |left| transpose(start, d, a.len(), left))
            };
            let product = |out: &mut [_]| {
                // out (a × later, by columns) = x[a, c] · x[a.start.., c]ᵀ
                multiply(
                    [a.len(), later, c.len()],
                    (Destination::Fresh(out), [1, a.len()]),
                    (&left, [1, a.len()]),
                    (start, [1, d]),
                );
            };
            // SAFETY: the product writes every value of the block.
            unsafe { vec_written_by(a.len() * later, product) }
        })
        .collect();
    let mut k = vec![0.0f32; n * n];
    for (a, partials) in rows.iter().zip(partials.chunks(columns.len().max(1))) {
        let mut block = vec![0.0f32; a.len() * (n - a.start)];
        for partial in partials {
            block.iter_mut().zip(partial).for_each(|(s, p)| *s += p);
        }
        // `block` holds row `a.start + r`, column `a.start + j` at `j · a.len() + r`.
        for (j, values) in block.chunks_exact(a.len()).enumerate() {
            let col = a.start + j;
            k[col * n + a.start..][..a.len()].copy_from_slice(values);
            for (r, &v) in a.clone().zip(values) {
                k[r * n + col] = v;
            }
        }
    }
    k
}

/// `0..len` cut into consecutive ranges of `size` (the last may be shorter).
pub(crate) fn ranges(len: usize, size: usize) -> Vec<Range<usize>> {
    (0..len)
        .step_by(size)
        .map(|s| s..(s + size).min(len))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// Values that differ in every row and column, exactly representable.
    fn input(n: usize, d: usize) -> Vec<f32> {
        (0..n * d)
            .map(|i| ((i * 7919 % 101) as f32 - 50.0) / 16.0)
            .collect()
    }

    #[test]
    fn the_gram_matrix_is_the_product_by_definition() {
        // One block, a short last block of rows, several blocks of columns
        // with a short last one, a single column.
        for (n, d) in [(5, 3), (64, 7), (150, 2500), (130, 1), (256, 1024)] {
            let x = input(n, d);
            let k = gram(&x, n, d);
            for r in 0..n {
                for c in 0..n {
                    let expected: f64 = (0..d)
                        .map(|f| x[r * d + f] as f64 * x[c * d + f] as f64)
                        .sum();
                    let got = k[r * n + c] as f64;
                    assert!(
                        (got - expected).abs() <= 1e-5 * (1.0 + expected.abs()),
                        "({n}, {d}) at ({r}, {c}): {got} against {expected}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_fixed_gram_matrix_has_the_kernels_products_from_any_number_of_rows() {
        let device = Device::flex();
        for (n, d) in [(20, 30), (64, 1100), (100, 7)] {
            let values = input(n, d);
            let x = Tensor::<2>::from_data(TensorData::new(values.clone(), [n, d]), &device);
            let got = crate::fused::values(fixed_gram(&x));
            let expected: Vec<f64> = gram(&values, n, d).iter().map(|&v| v as f64).collect();
            assert_eq!(got, expected, "({n}, {d})");
        }
    }

    #[test]
    fn only_untracked_flex_tensors_take_this_path() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::from_data(TensorData::new(input(150, 30), [150, 30]), &device);
        assert!(gram_without_grad(&x.clone().require_grad()).is_none());
        let k = gram_without_grad(&x).expect("an untracked f32 tensor on flex");
        assert!(k.is_autodiff(), "the result stays on the autodiff device");
        let expected = crate::fused::values(x.clone().matmul(x.transpose()));
        let got = crate::fused::values(k);
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() <= 1e-4 * (1.0 + e.abs()), "{g} against {e}");
        }
    }
}
