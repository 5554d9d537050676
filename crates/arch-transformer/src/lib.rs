//! Transformers for the paper's sequence experiments and a small vision
//! transformer, each exposing its sub-layer outputs as taps.
//!
//! - [`CausalLm`]: a causal decoder over a [`TokenBatch`], predicting a token
//!   at every position. Two presets mirror the released code's guides: the
//!   copy-paste `Transformer` (one `nn.TransformerDecoderLayer` repeated four
//!   times, cross-attending to its own input) and the language-model
//!   `TransformerLM` (docs/paper.md §2.2, §3).
//! - [`EncoderClassifier`]: an encoder with a padding mask and mean pooling
//!   over the real tokens, the paper's parity target (`TransEnc`).
//! - [`Vit`]: a pre-norm vision transformer for small images, a second image
//!   guide next to the ResNets of `untrainable-arch-cnn`.
//!
//! Taps follow the released code's hooks (docs/paper.md §1.3): every attention output,
//! every layer norm output and both feed-forward Linear outputs (the first one
//! before its activation), in forward order; a decoder layer's own output too,
//! where the hooked PyTorch module is a whole `nn.TransformerDecoderLayer`.
//! The output head is never a tap.
//!
//! [`TokenBatch`]: untrainable_core::TokenBatch

mod block;
mod decoder;
mod encoder;
#[cfg(test)]
mod testing;
mod vit;

pub use block::{Activation, CrossAttention, Init, NormPlacement};
pub use decoder::{BERT_CASED_VOCAB, CausalLm, CausalLmConfig, Positions};
pub use encoder::{EncoderClassifier, EncoderClassifierConfig};
pub use vit::{Pool, Vit, VitConfig};
