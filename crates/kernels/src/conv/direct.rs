//! The product kernel of [`Geometry::forward_direct`](super::Geometry):
//! output tiles summed straight from shifted views of the padded input,
//! with AVX-512 where the processor has it.

/// Output positions of one tile: three vectors of 16.
pub(super) const POSITIONS: usize = 48;

/// Output channels of one tile.
pub(super) const CHANNELS: usize = 8;

/// Whether [`tile`] runs on this processor.
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `out[c · ld + p] = Σ_k x[offsets[k] + p] · weights[k · CHANNELS + c]` for
/// the tile's `POSITIONS` positions `p` and `CHANNELS` channels `c`.
///
/// # Panics
///
/// Where a value read or written lies outside its slice, or [`available`]
/// is false.
pub(super) fn tile(x: &[f32], offsets: &[usize], weights: &[f32], out: &mut [f32], ld: usize) {
    let furthest = offsets.iter().max().map_or(0, |o| o + POSITIONS);
    assert!(
        available()
            && furthest <= x.len()
            && weights.len() >= offsets.len() * CHANNELS
            && out.len() >= (CHANNELS - 1) * ld + POSITIONS,
        "a tile of {POSITIONS} × {CHANNELS} within its slices, on AVX-512"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the processor has AVX-512 and every index lies within its
    // slice (both checked above).
    unsafe {
        avx512::tile(x, offsets, weights, out, ld)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{CHANNELS, POSITIONS};
    use std::arch::x86_64::*;

    const VECTORS: usize = POSITIONS / 16;

    /// Every lane of a vector.
    const ALL: __mmask16 = 0xffff;

    /// 16 values from `from`. The masked load, unlike `_mm512_loadu_ps`, has
    /// no copy whose debug check (on in this crate's test builds) kept the
    /// accumulators out of registers.
    ///
    /// # Safety
    ///
    /// AVX-512F is available and the 16 values are readable.
    #[target_feature(enable = "avx512f")]
    unsafe fn load(from: *const f32) -> __m512 {
        // SAFETY: the caller's promise.
        unsafe { _mm512_maskz_loadu_ps(ALL, from) }
    }

    /// [`super::tile`] without its checks: 24 accumulators (three vectors
    /// of positions for each of eight channels) stay in registers while the
    /// sum runs over `k`, each step loading three vectors of input and
    /// broadcasting eight weights.
    ///
    /// # Safety
    ///
    /// AVX-512F is available and every index lies within its slice.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile(
        x: &[f32],
        offsets: &[usize],
        weights: &[f32],
        out: &mut [f32],
        ld: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); VECTORS]; CHANNELS];
        let (x, weights) = (x.as_ptr(), weights.as_ptr());
        for (k, &offset) in offsets.iter().enumerate() {
            // SAFETY: `offset + POSITIONS` and `(k + 1) · CHANNELS` are
            // within the slices (the caller's promise).
            unsafe {
                let from = x.wrapping_add(offset);
                let input = [
                    load(from),
                    load(from.wrapping_add(16)),
                    load(from.wrapping_add(32)),
                ];
                let w = weights.wrapping_add(k * CHANNELS);
                for (c, acc) in acc.iter_mut().enumerate() {
                    let weight = _mm512_set1_ps(*w.wrapping_add(c));
                    for (acc, input) in acc.iter_mut().zip(input) {
                        *acc = _mm512_fmadd_ps(input, weight, *acc);
                    }
                }
            }
        }
        for (c, acc) in acc.iter().enumerate() {
            for (v, acc) in acc.iter().enumerate() {
                let to = out.as_mut_ptr().wrapping_add(c * ld + 16 * v);
                // SAFETY: `(CHANNELS − 1) · ld + POSITIONS` is within `out`.
                unsafe { _mm512_mask_storeu_ps(to, ALL, *acc) };
            }
        }
    }
}
