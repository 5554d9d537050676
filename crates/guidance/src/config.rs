//! The hyper-parameters of one training run, shared by every arm of an
//! experiment.

use serde::{Deserialize, Serialize};
use untrainable_repsim::Distance;

use crate::loss::Reduction;

/// Hyper-parameters of one training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: u32,
    pub batch_size: usize,
    /// Learning rate of Adam, or AdamW when `weight_decay` > 0 (default
    /// betas; docs/paper.md §3).
    pub learning_rate: f64,
    /// Weight of the guidance term (the paper: 1).
    pub alpha: f64,
    /// The per-pair distance of the guidance term.
    #[serde(default)]
    pub distance: Distance,
    #[serde(default)]
    pub reduction: Reduction,
    /// Stop after this many training steps, 0 for no limit (to check that a
    /// large preset starts); the run is then evaluated where it stopped.
    #[serde(default)]
    pub max_steps: u64,
    /// Examples per evaluation batch.
    pub eval_batch_size: usize,
    /// AdamW's decoupled weight decay; 0 trains with Adam (the image
    /// experiments), the sequence tasks use 0.01 (PyTorch's AdamW default,
    /// docs/paper.md §3).
    #[serde(default)]
    pub weight_decay: f64,
    /// Clip the gradient's global L2 norm to this (0.25 for language
    /// modelling, docs/paper.md §3); absent: no clipping.
    #[serde(default)]
    pub grad_clip_norm: Option<f64>,
    /// Step decay of the learning rate (the image experiments: ×0.1 every
    /// 30 epochs, docs/paper.md §3); absent: constant.
    #[serde(default)]
    pub lr_decay: Option<StepDecay>,
    /// Also measure validation loss and accuracy every this-many steps
    /// (rows without an epoch), for curves finer than one point per epoch;
    /// model selection stays per epoch. Absent: per epoch only.
    #[serde(default)]
    pub eval_every_steps: Option<u64>,
    /// At every epoch also log the TwoNN intrinsic dimension of each target
    /// tap on the first `eval_batch_size` validation examples
    /// (`twonn/<tap>`, the NeurIPS version's analysis, docs/paper.md §2.6).
    #[serde(default)]
    pub intrinsic_dimension: bool,
    /// Memory in bytes that a guided arm may spend on tables of the guide's
    /// Gram matrices over the training set (`examples² × 4` bytes per guide
    /// tap in a pair), which take the guide out of the training step where
    /// its inputs are fixed per example; 0 turns them off. Default 2 GiB.
    #[serde(
        default = "default_gram_table_bytes",
        skip_serializing_if = "is_default_gram_table_bytes"
    )]
    pub gram_table_bytes: u64,
    /// Read the steps' losses back from the device (and check them for
    /// divergence) once every this-many training steps, and before every
    /// checkpoint and evaluation: each read waits for the device. Default 50.
    #[serde(
        default = "default_log_every_steps",
        skip_serializing_if = "is_default_log_every_steps"
    )]
    pub log_every_steps: u64,
}

fn default_gram_table_bytes() -> u64 {
    crate::gram_table::DEFAULT_GRAM_TABLE_BYTES
}

fn default_log_every_steps() -> u64 {
    DEFAULT_LOG_EVERY_STEPS
}

// Defaults are left out of a resolved config, so that the configs of results
// made before these settings existed still equal their presets'.
fn is_default_gram_table_bytes(bytes: &u64) -> bool {
    *bytes == default_gram_table_bytes()
}

fn is_default_log_every_steps(steps: &u64) -> bool {
    *steps == DEFAULT_LOG_EVERY_STEPS
}

/// The default of `train.log_every_steps`.
pub const DEFAULT_LOG_EVERY_STEPS: u64 = 50;

/// The largest `train.gram_table_bytes` accepted: 1 TiB.
const MAX_GRAM_TABLE_BYTES: u64 = 1 << 40;

/// `lr · factor^(epoch / every_epochs)` (integer division).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDecay {
    pub every_epochs: u32,
    pub factor: f64,
}

impl TrainConfig {
    /// The learning rate of `epoch` (from 0).
    pub fn learning_rate_at(&self, epoch: u32) -> f64 {
        match self.lr_decay {
            Some(d) => self.learning_rate * d.factor.powi((epoch / d.every_epochs.max(1)) as i32),
            None => self.learning_rate,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.epochs == 0 {
            return Err("train.epochs must be at least 1".into());
        }
        if self.batch_size < 2 || self.eval_batch_size < 2 {
            return Err(format!(
                "train.batch_size and train.eval_batch_size must be at least 2 (CKA compares examples \
                 within a batch); got {} and {}",
                self.batch_size, self.eval_batch_size
            ));
        }
        if self.batch_size < self.distance.min_batch() {
            return Err(format!(
                "train.distance = \"{}\" needs batches of at least {} examples, but train.batch_size is {}",
                self.distance.name(),
                self.distance.min_batch(),
                self.batch_size
            ));
        }
        if !(self.learning_rate > 0.0) {
            return Err(format!(
                "train.learning_rate must be positive, got {}",
                self.learning_rate
            ));
        }
        if !(self.alpha >= 0.0) {
            return Err(format!(
                "train.alpha must be at least 0, got {}",
                self.alpha
            ));
        }
        if !(self.weight_decay >= 0.0) {
            return Err(format!(
                "train.weight_decay must be at least 0 (0 = Adam), got {}",
                self.weight_decay
            ));
        }
        if let Some(d) = self.lr_decay
            && !(d.every_epochs >= 1 && d.factor > 0.0 && d.factor <= 1.0)
        {
            return Err(format!(
                "train.lr_decay needs every_epochs ≥ 1 and factor in (0, 1]; got {} and {}",
                d.every_epochs, d.factor
            ));
        }
        if self.gram_table_bytes > MAX_GRAM_TABLE_BYTES {
            return Err(format!(
                "train.gram_table_bytes = {} is above 1 TiB ({MAX_GRAM_TABLE_BYTES}); it is the memory \
                 in bytes for the guide's Gram tables (0 turns them off, the default is {})",
                self.gram_table_bytes,
                default_gram_table_bytes()
            ));
        }
        if self.log_every_steps == 0 {
            return Err(format!(
                "train.log_every_steps must be at least 1 (read the losses every this-many steps), \
                 got 0; the default is {DEFAULT_LOG_EVERY_STEPS}"
            ));
        }
        if let Some(clip) = self.grad_clip_norm
            && !(clip > 0.0)
        {
            return Err(format!(
                "train.grad_clip_norm must be positive, got {clip}; remove it to train without clipping"
            ));
        }
        Ok(())
    }
}
