//! The differentiable distances a guidance loss can use, chosen by name in
//! an experiment's config.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::host::DEFAULT_RIDGE_LAMBDA;
use crate::{
    debiased_linear_cka, linear_cka, procrustes_similarity, rbf_cka, ridge_similarity,
    rsa_similarity,
};

/// `1 − similarity` for one of the differentiable similarities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distance {
    /// `1 −` [`linear_cka`]: the paper's choice.
    #[default]
    LinearCka,
    /// `1 −` [`debiased_linear_cka`]: unbiased at small batches; needs
    /// batches of at least 4 examples.
    LinearCkaDebiased,
    /// `1 −` [`rbf_cka`] with the bandwidth at half the median pairwise
    /// distance of each batch.
    RbfCka,
    /// `1 −` [`rsa_similarity`] (correlation RDMs compared by Pearson
    /// correlation), in [0, 2]; needs batches of at least 3 examples.
    Rsa,
    /// `1 −` [`ridge_similarity`] of predicting the guide's representation
    /// from the target's (the second argument from the first), at the
    /// default ridge strength.
    Ridge,
    /// `1 −` [`procrustes_similarity`]: half the squared orthogonal
    /// Procrustes distance.
    Procrustes,
}

impl Distance {
    pub const ALL: &[Distance] = &[
        Self::LinearCka,
        Self::LinearCkaDebiased,
        Self::RbfCka,
        Self::Rsa,
        Self::Ridge,
        Self::Procrustes,
    ];
}

/// The RBF bandwidth of [`Distance::RbfCka`], as a fraction of the median
/// pairwise distance (the value of Kornblith et al.'s notebook).
pub const RBF_BANDWIDTH_FRACTION: f64 = 0.5;

impl Distance {
    /// The distance between representations `x: (n, p)` and `y: (n, q)` of
    /// the same `n` examples, differentiable in both.
    pub fn between(self, x: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
        let similarity = match self {
            Self::LinearCka => linear_cka(x, y),
            Self::LinearCkaDebiased => debiased_linear_cka(x, y),
            Self::RbfCka => rbf_cka(x, y, RBF_BANDWIDTH_FRACTION),
            Self::Rsa => rsa_similarity(x, y),
            Self::Ridge => ridge_similarity(x, y, DEFAULT_RIDGE_LAMBDA),
            Self::Procrustes => procrustes_similarity(x, y),
        };
        similarity.neg().add_scalar(1.0)
    }

    /// The name a config uses for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::LinearCka => "linear-cka",
            Self::LinearCkaDebiased => "linear-cka-debiased",
            Self::RbfCka => "rbf-cka",
            Self::Rsa => "rsa",
            Self::Ridge => "ridge",
            Self::Procrustes => "procrustes",
        }
    }

    /// The fewest examples per batch the distance is defined for.
    pub fn min_batch(self) -> usize {
        match self {
            Self::LinearCkaDebiased => 4,
            Self::Rsa => 3,
            Self::LinearCka | Self::RbfCka | Self::Ridge | Self::Procrustes => 2,
        }
    }
}
