//! Reading and writing the values of flex tensors, for this crate's kernels.

use std::mem::MaybeUninit;

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;

/// A contiguous `f32` tensor's values.
pub fn f32_values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("a contiguous f32 tensor (checked by the public function)")
}

/// A contiguous tensor of `dims` holding `values`.
pub fn flex_tensor(values: Vec<f32>, dims: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, dims))
}

/// `len` values set by `write`, which is handed them uninitialised: zeroing a
/// fresh output before overwriting it cost a tenth of a guide's forward pass
/// under `perf`.
///
/// # Safety
///
/// `write` must initialise every one of the `len` values.
pub unsafe fn vec_written_by(len: usize, write: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut values = Vec::with_capacity(len);
    write(&mut values.spare_capacity_mut()[..len]);
    // SAFETY: the capacity is at least `len`, and the caller guarantees that
    // `write` initialised the first `len` values.
    unsafe { values.set_len(len) };
    values
}

/// A matrix: its values and its (row, column) strides.
pub type Matrix<'a> = (&'a [f32], [usize; 2]);

/// Where [`multiply`] puts its product.
pub enum Destination<'a> {
    /// Written into values not yet initialised.
    Fresh(&'a mut [MaybeUninit<f32>]),
    /// Written over the values.
    Over(&'a mut [f32]),
    /// Added onto the values.
    Onto(&'a mut [f32]),
}

/// `dst (m × n) = lhs (m × k) · rhs (k × n)`, or `dst += …` for
/// [`Destination::Onto`], on one thread (the callers run products in
/// parallel).
pub fn multiply(
    [m, n, k]: [usize; 3],
    (dst, [dst_rs, dst_cs]): (Destination, [usize; 2]),
    (lhs, [lhs_rs, lhs_cs]): Matrix,
    (rhs, [rhs_rs, rhs_cs]): Matrix,
) {
    let (dst, dst_len, accumulate) = match dst {
        Destination::Fresh(d) => (d.as_mut_ptr().cast::<f32>(), d.len(), false),
        Destination::Over(d) => (d.as_mut_ptr(), d.len(), false),
        Destination::Onto(d) => (d.as_mut_ptr(), d.len(), true),
    };
    let spans = |len: usize, rows: usize, cols: usize, rs: usize, cs: usize| {
        rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
    };
    assert!(
        spans(dst_len, m, n, dst_rs, dst_cs)
            && spans(lhs.len(), m, k, lhs_rs, lhs_cs)
            && spans(rhs.len(), k, n, rhs_rs, rhs_cs),
        "matrices of {m} × {k} and {k} × {n} within their slices"
    );
    // SAFETY: every element read or written lies within its slice (checked
    // above); `dst` is the only one written and is borrowed mutably; it is
    // read only where `accumulate`, that is, from initialised values.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `to.copy_from_slice(from)` for the short rows of feature maps (7 to 28
/// values here): in copies of 16, 8 or 4 values, the last overlapping the
/// one before, which the compiler writes as vector moves instead of a call
/// to `memcpy` per row (those calls were a twentieth of a guide's forward
/// pass under `perf`; the change was not timed apart from the direct
/// convolutions that copy with it).
pub fn copy_row<T: Copy>(to: &mut [T], from: &[T]) {
    fn chunks<T: Copy, const N: usize>(to: &mut [T], from: &[T]) {
        let last = to.len() - N;
        for start in (0..last).step_by(N).chain([last]) {
            let to: &mut [T; N] = (&mut to[start..start + N]).try_into().expect("N values");
            *to = from[start..start + N].try_into().expect("N values");
        }
    }
    assert_eq!(to.len(), from.len(), "rows of one length");
    match to.len() {
        16.. => chunks::<T, 16>(to, from),
        8..16 => chunks::<T, 8>(to, from),
        4..8 => chunks::<T, 4>(to, from),
        _ => to.copy_from_slice(from),
    }
}

/// `values` read as values that may be uninitialised, to be copied into
/// memory that is.
pub fn as_uninit(values: &[f32]) -> &[MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and initialised
    // values are valid `MaybeUninit` ones.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast(), values.len()) }
}
