//! The Gram matrix of a representation that no gradient flows through, as
//! half the products of a general matrix product.
//!
//! A frozen guide's taps are the widest representations guidance compares
//! (up to 12 544 features per example for a ResNet-18 at 28 × 28), and their
//! Gram matrices were most of the Deep FCN's guidance terms. `X Xᵀ` is
//! symmetric: [`untracked_gram`] multiplies each pair of row blocks once and
//! mirrors it.

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::ops::Range;

use crate::flex::{Destination, floats, multiply, tensor, written};

/// Rows of a block: a whole number of the product kernel's 64 rows.
const BLOCK_ROWS: usize = 64;

/// Features per partial product: a fixed split, so that the sum over them
/// is added up in the same order on any number of threads.
const BLOCK_COLUMNS: usize = 1024;

/// `x xᵀ` (n × n) for `x` (n × d) that takes part in no gradient (a frozen
/// guide's taps, any tap in evaluation), from the products of each block
/// of rows with its own and the later rows; on flex (`f32`) only, for more
/// than one block of rows; `None` elsewhere or for a tracked `x`.
pub fn untracked_gram(x: &Tensor<2>) -> Option<Tensor<2>> {
    let device = x.device();
    let flex_f32 = device.clone().inner() == Device::flex() && x.dtype() == DType::F32;
    if x.is_tracked() || !flex_f32 || x.dims()[0] <= BLOCK_ROWS {
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
        tensor(gram(floats(&x), n, d), vec![n, n])
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
fn gram(x: &[f32], n: usize, d: usize) -> Vec<f32> {
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
            let left =
                unsafe { written(a.len() * c.len(), |left| transpose(start, d, a.len(), left)) };
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
            unsafe { written(a.len() * later, product) }
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

/// Side of the square tiles [`transpose`] moves at a time: 16 cache lines
/// read and 16 written.
const TILE: usize = 16;

/// `to[f · rows + r] = from[r · stride + f]` for `r < rows` and every
/// column `f` that `to` holds: a block of rows written by columns. By
/// stripes of [`TILE`] rows read in order, tile by tile.
fn transpose(from: &[f32], stride: usize, rows: usize, to: &mut [MaybeUninit<f32>]) {
    let columns = to.len() / rows;
    for top in (0..rows).step_by(TILE) {
        let height = TILE.min(rows - top);
        for left in (0..columns).step_by(TILE) {
            let width = TILE.min(columns - left);
            let from = &from[top * stride + left..];
            let to = &mut to[left * rows + top..];
            if width == TILE && height == TILE {
                transpose_tile(from, stride, to, rows);
            } else {
                for r in 0..height {
                    for f in 0..width {
                        to[f * rows + r].write(from[r * stride + f]);
                    }
                }
            }
        }
    }
}

/// `to[f · to_stride + r] = from[r · from_stride + f]` for `r, f < 16`,
/// with AVX-512 shuffles where the processor has it (the compiler turned the
/// plain loops into scatters, a tenth of the Gram matrices' time).
#[inline(always)]
fn transpose_tile(from: &[f32], from_stride: usize, to: &mut [MaybeUninit<f32>], to_stride: usize) {
    // Every row read and written lies within its slice.
    let (_, _) = (
        &from[(TILE - 1) * from_stride..][..TILE],
        &to[(TILE - 1) * to_stride..][..TILE],
    );
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the processor has AVX-512F (checked above) and the 16
        // rows lie within the slices (checked above).
        return unsafe {
            transpose_tile_avx512(
                from.as_ptr(),
                from_stride,
                to.as_mut_ptr().cast(),
                to_stride,
            )
        };
    }
    for r in 0..TILE {
        for f in 0..TILE {
            to[f * to_stride + r].write(from[r * from_stride + f]);
        }
    }
}

/// The 16 × 16 transposition in four rounds of shuffles: pairs of rows
/// interleaved by values, then by pairs of values, which leaves each
/// 128-bit lane of row group `g` (rows `4g..4g + 4`) holding one column of
/// those rows; then the lanes moved across the four groups.
///
/// # Safety
///
/// The processor has AVX-512F; `from` and `to` can be read and written at 16
/// values from each multiple of their strides below 16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_tile_avx512(
    from: *const f32,
    from_stride: usize,
    to: *mut f32,
    to_stride: usize,
) {
    use std::arch::x86_64::*;
    // SAFETY (all loads and stores): within the caller's rows.
    let rows: [__m512; TILE] =
        std::array::from_fn(|r| unsafe { _mm512_loadu_ps(from.add(r * from_stride)) });
    // Lane l of pairs[2i] holds (r₂ᵢ[4l], r₂ᵢ₊₁[4l], r₂ᵢ[4l + 1], r₂ᵢ₊₁[4l + 1]),
    // of pairs[2i + 1] the same for values 4l + 2 and 4l + 3.
    let mut pairs = [_mm512_setzero_ps(); TILE];
    for i in 0..TILE / 2 {
        pairs[2 * i] = _mm512_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
        pairs[2 * i + 1] = _mm512_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
    }
    // Lane l of columns[4g + j] holds value 4l + j of rows 4g..4g + 4.
    let mut columns = [_mm512_setzero_ps(); TILE];
    for g in 0..TILE / 4 {
        let [a, b, c, d] = [0, 1, 2, 3].map(|k| _mm512_castps_pd(pairs[4 * g + k]));
        columns[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        columns[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        columns[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        columns[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    // Row 4l + j of the result: lane l of columns[j], [4 + j], [8 + j],
    // [12 + j], in that order.
    for j in 0..4 {
        let [a, b, c, d] = [0, 4, 8, 12].map(|g| columns[g + j]);
        let (ab_even, ab_odd) = (
            _mm512_shuffle_f32x4::<0x88>(a, b),
            _mm512_shuffle_f32x4::<0xDD>(a, b),
        );
        let (cd_even, cd_odd) = (
            _mm512_shuffle_f32x4::<0x88>(c, d),
            _mm512_shuffle_f32x4::<0xDD>(c, d),
        );
        let out = [
            _mm512_shuffle_f32x4::<0x88>(ab_even, cd_even),
            _mm512_shuffle_f32x4::<0x88>(ab_odd, cd_odd),
            _mm512_shuffle_f32x4::<0xDD>(ab_even, cd_even),
            _mm512_shuffle_f32x4::<0xDD>(ab_odd, cd_odd),
        ];
        for (l, v) in out.into_iter().enumerate() {
            // SAFETY: row 4l + j < 16 of the caller's rows.
            unsafe { _mm512_storeu_ps(to.add((4 * l + j) * to_stride), v) };
        }
    }
}

/// `0..len` cut into consecutive ranges of `size` (the last may be shorter).
fn ranges(len: usize, size: usize) -> Vec<Range<usize>> {
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
    fn the_transposition_moves_every_value() {
        // Partial tiles in either direction, one row, one column, a block
        // narrower than its stride.
        for (n, d, columns) in [
            (5, 3, 3),
            (17, 33, 33),
            (1, 40, 40),
            (40, 1, 1),
            (64, 1100, 1024),
        ] {
            let x = input(n, d);
            // SAFETY: the transposition writes every value.
            let xt = unsafe { written(n * columns, |to| transpose(&x, d, n, to)) };
            for r in 0..n {
                for f in 0..columns {
                    assert_eq!(xt[f * n + r], x[r * d + f], "({n}, {d}) at ({r}, {f})");
                }
            }
        }
    }

    #[test]
    fn only_untracked_flex_tensors_take_this_path() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::from_data(TensorData::new(input(150, 30), [150, 30]), &device);
        assert!(untracked_gram(&x.clone().require_grad()).is_none());
        let k = untracked_gram(&x).expect("an untracked f32 tensor on flex");
        assert!(k.is_autodiff(), "the result stays on the autodiff device");
        let expected = crate::values(x.clone().matmul(x.transpose()));
        let got = crate::values(k);
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() <= 1e-4 * (1.0 + e.abs()), "{g} against {e}");
        }
    }
}
