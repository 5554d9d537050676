//! Training with guidance (Subramaniam et al., NeurIPS 2025): the target is
//! trained on `task loss + α · Σ over pairs (1 − CKA(target tap, guide tap))`
//! while the guide stays frozen (docs/paper.md §1).

pub mod arm;
pub mod baselines;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod gram_table;
pub mod guide_store;
pub mod guide_table;
pub mod imagenet;
pub mod lm;
pub mod loss;
pub mod mapping;
mod run_log;
pub mod sequence;
mod step_values;
pub mod task;
pub mod train;

pub use arm::{ArmConfig, Guidance, GuideState, NoiseFor, NoiseWarmup, Objective, StepWindow};
pub use baselines::{DistillConfig, HintConfig, distillation_loss};
pub use checkpoint::Checkpointing;
pub use config::{StepDecay, TrainConfig};
pub use data::InputSpec;
pub use gram_table::GuideGramTable;
pub use guide_store::{Stored, TrainedStore};
pub use guide_table::GuideTapTable;
pub use imagenet::{ImageDataset, ImageNetData};
pub use lm::{KNESER_NEY_ARM, LmTask, TOKEN_PPL, WORD_PPL, WindowCounts};
pub use loss::{GuideBatch, Reduction, guidance_loss, guidance_loss_from_grams, guidance_loss_of};
pub use mapping::{Pair, PairSubset, PairsConfig, resolve_pairs, uniform_pairs};
pub use sequence::{
    CopyPasteTask, LONG_ACCURACY, ParityTargets, ParityTask, SHORT_ACCURACY, TokenTargets,
    data_split, masked_cross_entropy,
};
pub use task::{ImageData, Prediction, Score, TOP5_ACCURACY, Tally, Task, evaluate, score_split};
pub use train::{ArmRun, GUIDED_PAIRS, Progress, RunSpec, Runtime, Terms, objective, train_arm};
/// The split of the data a loop reads or a row was measured on.
pub use untrainable_results::Split;

/// The backend's random generator is one per process: a test that seeds it,
/// or draws from it, holds this lock, so that tests running alongside do not
/// draw from the same stream in between.
#[cfg(test)]
pub(crate) fn generator() -> std::sync::MutexGuard<'static, ()> {
    untrainable_core::random_stream_lock()
}
