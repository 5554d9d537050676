//! Training with guidance (Subramaniam et al., NeurIPS 2025): the target is
//! trained on `task loss + α · Σ over pairs (1 − CKA(target tap, guide tap))`
//! while the guide stays frozen (NOTES §1).

pub mod checkpoint;
pub mod data;
pub mod guide_store;
pub mod guide_table;
pub mod hint;
pub mod imagenet;
pub mod lm;
pub mod loss;
pub mod mapping;
pub mod sequence;
pub mod task;
pub mod train;

pub use checkpoint::Checkpointing;
pub use data::InputSpec;
pub use guide_store::{Stored, TrainedStore};
pub use guide_table::GuideTapTable;
pub use hint::HintConfig;
pub use imagenet::{ImageDataset, ImageNetData};
pub use lm::{LmTask, TOKEN_PPL, WORD_PPL, WindowCounts};
pub use loss::{Reduction, guidance_loss};
pub use mapping::{Pair, PairSubset, PairsConfig, resolve_pairs, uniform_pairs};
pub use sequence::{CopyPasteTask, ParityTask, TokenTargets, masked_cross_entropy};
pub use task::{ImageData, Part, Score, TOP5_ACCURACY, Task, evaluate, score_part};
pub use train::{
    ArmConfig, ArmRun, DistillConfig, GUIDED_PAIRS, GuideState, NoiseFor, Progress, StepDecay,
    TrainConfig, distillation_loss, train_arm, train_arm_checkpointed,
};

/// The backend's random generator is one per process: a test that seeds it,
/// or draws from it, holds this lock, so that tests running alongside do not
/// draw from the same stream in between.
#[cfg(test)]
pub(crate) fn generator() -> std::sync::MutexGuard<'static, ()> {
    static GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());
    GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
