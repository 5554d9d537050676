//! The guidance term: `Σ over pairs (1 − CKA(target tap, guide tap))`
//! (NOTES §1.1–1.2).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use untrainable_core::Tap;
use untrainable_repsim::{Distance, linear_cka};

use crate::mapping::Pair;

/// How the per-pair distances are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reduction {
    /// The paper's choice (`torch.sum`): the term lies in [0, #pairs].
    #[default]
    Sum,
    /// Divides the sum by the number of pairs: the term lies in [0, 1].
    Mean,
}

/// `Σ distance(target tap, guide tap)` over `pairs` (or its mean),
/// differentiable in the target taps; with [`Distance::LinearCka`] the
/// paper's `Σ (1 − CKA)`. Guide taps enter as constants.
pub fn guidance_loss(
    target: &[Tap],
    guide: &[Tap],
    pairs: &[Pair],
    distance: Distance,
    reduction: Reduction,
) -> Tensor<1> {
    assert!(
        !pairs.is_empty(),
        "guidance needs at least one pair of taps"
    );
    let sum = pairs
        .iter()
        .map(|p| distance.between(target[p.target].value.clone(), guide[p.guide].value.clone()))
        .reduce(|a, b| a + b)
        .expect("at least one pair");
    match reduction {
        Reduction::Sum => sum,
        Reduction::Mean => sum.div_scalar(pairs.len() as f64),
    }
}

/// The linear CKA of every pair, for evaluation and logging (whatever
/// distance the loss uses, so that arms compare on one scale).
pub fn pair_cka(target: &[Tap], guide: &[Tap], pairs: &[Pair]) -> Vec<f64> {
    pairs
        .iter()
        .map(|p| {
            let cka = linear_cka(target[p.target].value.clone(), guide[p.guide].value.clone());
            cka.into_scalar::<f64>()
        })
        .collect()
}
