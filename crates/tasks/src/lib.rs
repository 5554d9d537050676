//! Data for the experiments, as plain Rust values: real image sets read from
//! their standard files, and seeded orderings for splitting and batching.
//! Turning them into tensors is the training crate's job, so this crate
//! does not depend on burn.

pub mod batches;
pub mod error;
pub mod fashion_mnist;
pub mod idx;

pub use batches::epoch_batches;
pub use error::{DataError, SETUP_COMMAND, SearchedPlace};
pub use fashion_mnist::{FashionMnist, ImageSet, split_train_val};
