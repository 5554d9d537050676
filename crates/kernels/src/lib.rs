//! CPU kernels for burn's pure-Rust backend, flex: convolution, batch norm,
//! dropout, linear layers, the tanh RNN recurrence, softmax and Adam, each
//! with the semantics of the burn module or optimiser it replaces and, where
//! training needs one, its own backward pass. The architectures call these in
//! place of `forward` on burn's modules; on other backends each calls the
//! module (on LibTorch, convolution and batch norm are LibTorch's own).
//!
//! Why: a guided step is dominated by these operations, and burn's generic
//! versions of them were several times slower than PyTorch's on two cores
//! (`docs/performance.md` has the measurements).
//!
//! Also here: [`flex`], the reading and writing of flex tensors and the
//! matrix product that these kernels and repsim's fused CKA share, and
//! [`huge_pages`], the allocator that every binary installs with
//! [`huge_page_allocator!`].

pub use burn;

mod adam;
mod batch_norm;
mod conv;
mod dropout;
pub mod flex;
pub mod huge_pages;
#[cfg(feature = "tch")]
mod libtorch;
mod linear;
mod rnn;
mod softmax;
pub mod transpose;
mod vector_math;

pub use adam::adam;
pub use batch_norm::{batch_norm, batch_norm_relu};
pub use conv::conv2d;
pub use dropout::dropout;
pub use linear::linear;
pub use rnn::tanh_recurrence;
pub use softmax::softmax;

use burn::tensor::Device;

/// Declares [`huge_pages::HugePageAllocator`] as the program's global
/// allocator. A binary calls it once at its top level; a library never does,
/// so that a program keeps the choice of its allocator.
#[macro_export]
macro_rules! huge_page_allocator {
    () => {
        #[global_allocator]
        static HUGE_PAGE_ALLOCATOR: $crate::huge_pages::HugePageAllocator =
            $crate::huge_pages::HugePageAllocator;
    };
}

// This crate's unit tests check the allocator as installed.
#[cfg(test)]
huge_page_allocator!();

/// Whether `device` is burn's LibTorch backend (CPU or GPU, feature `tch`),
/// with or without autodiff.
fn is_libtorch(device: &Device) -> bool {
    match device.clone().inner().as_dispatch() {
        #[cfg(feature = "tch")]
        burn::backend::DispatchDevice::LibTorch(_) => true,
        _ => false,
    }
}

/// A tensor's values as `f64`, for comparisons in tests.
#[cfg(test)]
fn values<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("a float tensor converts to f64")
}
