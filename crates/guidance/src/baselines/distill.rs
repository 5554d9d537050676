//! Logit distillation (Hinton, Vinyals & Dean 2015) from the arm's guide as
//! the teacher: the training loss becomes
//! `(1 − weight) · task loss + weight · T² · KL(softmax(teacher / T) ‖ softmax(student / T))`,
//! the KL averaged over output rows.

use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

/// A distilled arm's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillConfig {
    /// The softmax temperature `T` (> 0).
    pub temperature: f64,
    /// The weight of the distillation term, in [0, 1].
    pub weight: f64,
}

impl DistillConfig {
    pub fn validate(&self, arm: &str) -> Result<(), String> {
        if !(self.temperature > 0.0 && (0.0..=1.0).contains(&self.weight)) {
            return Err(format!(
                "arm `{arm}`: distill.temperature must be > 0 and distill.weight in [0, 1]; got {} and {}",
                self.temperature, self.weight
            ));
        }
        Ok(())
    }
}

/// `T² · KL(softmax(teacher / T) ‖ softmax(student / T))`, mean over rows;
/// differentiable in `student`, the teacher a constant.
pub fn distillation_loss(student: Tensor<2>, teacher: Tensor<2>, temperature: f64) -> Tensor<1> {
    let rows = student.dims()[0] as f64;
    let log_q = log_softmax(student.div_scalar(temperature), 1);
    let log_p = log_softmax(teacher.div_scalar(temperature), 1);
    let kl = (log_p.clone().exp() * (log_p - log_q)).sum();
    kl.mul_scalar(temperature * temperature / rows)
}
