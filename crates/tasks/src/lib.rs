//! Data for the experiments, as plain Rust values: real image sets read from
//! their standard files, generated sequence tasks (copy-paste, parity), the
//! State of the Union corpus with its subword tokenizer for language
//! modelling, and seeded orderings for splitting and batching.
//! Turning them into tensors is the training crate's job, so this crate
//! does not depend on burn.

pub mod augment;
pub mod batches;
pub mod canvas;
pub mod check;
pub mod copy_paste;
pub mod error;
pub mod fashion_mnist;
pub mod idx;
pub mod image_folder;
pub mod image_pipeline;
pub mod image_transform;
pub mod locate;
pub mod mnist;
pub mod ngram;
pub mod parity;
pub mod sequence;
pub mod sotu;
pub mod tokenizer;
pub mod wikitext;

pub use augment::Augment;
pub use batches::epoch_batches;
pub use canvas::Canvas;
pub use copy_paste::CopyPaste;
pub use error::{DataError, SETUP_COMMAND, SearchedPlace};
pub use fashion_mnist::{FashionMnist, ImageSet, split_train_val};
pub use locate::DataSource;
pub use mnist::Mnist;
pub use parity::Parity;
pub use sequence::{SequenceExample, Split, SplitSizes};
pub use sotu::{LmStream, LmWindows, Perplexity, Sotu, SotuLm};
pub use tokenizer::SubwordTokenizer;
