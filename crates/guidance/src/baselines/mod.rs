//! The two baselines that guidance is compared with: logit distillation
//! and a FitNets hint, each taking the arm's guide as the teacher.

pub mod distill;
pub mod hint;

pub use distill::{DistillConfig, distillation_loss};
pub use hint::HintConfig;
