//! Matrices transposed by tiles of 16 × 16, for the product kernel: it reads
//! its left factor by columns, and repacks one given by rows one value at a
//! time.

use rayon::prelude::*;
use std::mem::MaybeUninit;

use crate::flex::vec_written_by;

/// Columns of the source one task transposes.
const COLUMNS_PER_TASK: usize = 64;

/// The `rows × columns` row-major `values` transposed (`columns × rows`,
/// row-major), blocks of columns in parallel.
pub fn transposed(values: &[f32], rows: usize, columns: usize) -> Vec<f32> {
    let fill = |to: &mut [MaybeUninit<f32>]| {
        to.par_chunks_mut(COLUMNS_PER_TASK * rows)
            .enumerate()
            .for_each(|(block, to)| {
                transpose(&values[block * COLUMNS_PER_TASK..], columns, rows, to)
            });
    };
    // SAFETY: each block of rows of the result is written whole.
    unsafe { vec_written_by(rows * columns, fill) }
}

/// Side of the square tiles [`transpose`] moves at a time: 16 cache lines
/// read and 16 written.
const TILE: usize = 16;

/// `to[f · rows + r] = from[r · stride + f]` for `r < rows` and every
/// column `f` that `to` holds: a block of rows written by columns. By
/// stripes of [`TILE`] rows read in order, tile by tile.
pub fn transpose(from: &[f32], stride: usize, rows: usize, to: &mut [MaybeUninit<f32>]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Values that differ in every row and column, exactly representable.
    fn input(n: usize, d: usize) -> Vec<f32> {
        (0..n * d).map(|i| i as f32).collect()
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
            let xt = unsafe { vec_written_by(n * columns, |to| transpose(&x, d, n, to)) };
            for r in 0..n {
                for f in 0..columns {
                    assert_eq!(xt[f * n + r], x[r * d + f], "({n}, {d}) at ({r}, {f})");
                }
            }
        }
    }

    #[test]
    fn the_parallel_transposition_moves_every_value() {
        for (rows, columns) in [(3, 5), (512, 512), (70, 200)] {
            let x = input(rows, columns);
            let xt = transposed(&x, rows, columns);
            for r in 0..rows {
                for c in 0..columns {
                    assert_eq!(
                        xt[c * rows + r],
                        x[r * columns + c],
                        "({rows}, {columns}) at ({r}, {c})"
                    );
                }
            }
        }
    }
}
