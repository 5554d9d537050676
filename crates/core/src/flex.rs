//! Reading and writing the values of flex tensors, for this crate's kernels.

use std::mem::MaybeUninit;

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;

/// A contiguous `f32` tensor's values.
pub(crate) fn floats(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("a contiguous f32 tensor (checked by the public function)")
}

/// A contiguous tensor of `dims` holding `values`.
pub(crate) fn tensor(values: Vec<f32>, dims: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, dims))
}

/// `len` values set by `write`, which is handed them uninitialised: zeroing a
/// fresh output before overwriting it cost a tenth of a guide's forward pass
/// under `perf`.
///
/// # Safety
///
/// `write` must initialise every one of the `len` values.
pub(crate) unsafe fn written(len: usize, write: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut values = Vec::with_capacity(len);
    write(&mut values.spare_capacity_mut()[..len]);
    // SAFETY: the capacity is at least `len`, and the caller guarantees that
    // `write` initialised the first `len` values.
    unsafe { values.set_len(len) };
    values
}
