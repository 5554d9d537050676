//! Linear CKA and Gram matrices as single operations on flex, beside the
//! tensor forms of [`crate::linear_cka`] that they compute faster; each
//! returns `None` where it does not apply, and the caller falls back.

mod cka;
mod gram;

pub use cka::{
    linear_cka_against, unit_centred_blocks, unit_centred_grams, unit_centred_of_uncentred,
};
pub use gram::{fixed_gram, gram_without_grad};

/// A tensor's values as `f64`, for comparisons in tests.
#[cfg(test)]
fn values<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("a float tensor converts to f64")
}
