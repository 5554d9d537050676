//! FitNets' hint (Romero et al. 2015), the second baseline to guidance: a
//! linear regressor, trained together with the target, maps one target tap
//! onto the guide's tap of the same pair, and the loss adds the mean squared
//! error between the two. Unlike guidance, the hint asks for the guide's
//! activations themselves (up to a learned linear map), not for their
//! similarity structure.

use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use untrainable_core::Tap;

use crate::mapping::Pair;

/// A hint arm's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HintConfig {
    /// The weight of the hint term (≥ 0).
    pub weight: f64,
    /// Index into the arm's pairs of the pair whose taps are regressed;
    /// absent: the middle pair, as FitNets hint a middle layer.
    #[serde(default)]
    pub pair: Option<usize>,
    /// Average a guide conv map `(B, C, H, W)` over its spatial positions
    /// first, so the regressor predicts channels only: the map of a large
    /// image would otherwise need a regressor of billions of weights.
    #[serde(default)]
    pub pool_guide: bool,
}

impl HintConfig {
    pub fn validate(&self, arm: &str) -> Result<(), String> {
        if !(self.weight >= 0.0) {
            return Err(format!(
                "arm `{arm}`: hint.weight must be at least 0, got {}",
                self.weight
            ));
        }
        Ok(())
    }

    /// The pair this hint regresses, checked against the arm's pairs.
    pub(crate) fn resolve(&self, arm: &str, pairs: &[Pair]) -> Result<Hint, String> {
        if pairs.is_empty() {
            return Err(format!(
                "arm `{arm}` has a hint but the experiment pairs no taps; a hint needs one pair"
            ));
        }
        let index = self.pair.unwrap_or(pairs.len() / 2);
        let pair = pairs.get(index).ok_or_else(|| {
            format!(
                "arm `{arm}`: hint.pair = {index}, but there are only {} pairs (0..{}); \
                 leave it out for the middle pair",
                pairs.len(),
                pairs.len()
            )
        })?;
        Ok(Hint {
            target: pair.target,
            guide: pair.guide,
            pool_guide: self.pool_guide,
        })
    }
}

/// A resolved hint: which taps (its weight is the objective's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hint {
    target: usize,
    guide: usize,
    pool_guide: bool,
}

/// A tap as regression rows: one per position for a sequence `(B, T, D)`,
/// whose length varies from batch to batch, else one per example.
fn rows(tap: &Tap) -> Tensor<2> {
    match tap.shape.as_slice() {
        &[b, t, d] => tap.value.clone().reshape([b * t, d]),
        _ => tap.value.clone(),
    }
}

impl Hint {
    /// What the regressor predicts: the guide tap's rows, pooled if asked.
    fn goal(&self, guide: &[Tap]) -> Tensor<2> {
        let tap = &guide[self.guide];
        match tap.shape.as_slice() {
            &[b, c, h, w] if self.pool_guide => tap
                .value
                .clone()
                .reshape([b, c, h * w])
                .mean_dim(2)
                .reshape([b, c]),
            _ => rows(tap),
        }
    }

    /// A fresh regressor from the target tap to the (pooled) guide tap,
    /// sized from one forward pass of each network.
    ///
    /// # Errors
    /// Taps that do not both give one row per example, or per position.
    pub fn regressor(
        &self,
        target: &[Tap],
        guide: &[Tap],
        device: &Device,
    ) -> Result<Linear, String> {
        let [target_rows, inputs] = rows(&target[self.target]).dims();
        let [guide_rows, outputs] = self.goal(guide).dims();
        if target_rows != guide_rows {
            let (t, g) = (&target[self.target], &guide[self.guide]);
            return Err(format!(
                "a hint cannot regress target tap `{}` {:?} onto guide tap `{}` {:?}: one has a \
                 row per position, the other per example; choose another pair with hint.pair",
                t.name, t.shape, g.name, g.shape
            ));
        }
        Ok(LinearConfig::new(inputs, outputs).init(device))
    }

    /// Mean squared error between the regressed target tap and the guide's,
    /// over rows and features; differentiable in the target and the
    /// regressor, the guide a constant.
    pub fn loss(&self, regressor: &Linear, target: &[Tap], guide: &[Tap]) -> Tensor<1> {
        let predicted = regressor.forward(rows(&target[self.target]));
        (predicted - self.goal(guide)).square().mean()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn tap(values: Vec<f32>, shape: Vec<usize>) -> Tap {
        let device = Device::flex();
        let rows = shape[0];
        let cols = values.len() / rows;
        Tap {
            name: "x".into(),
            value: Tensor::from_data(TensorData::new(values, [rows, cols]), &device),
            shape,
        }
    }

    #[test]
    fn the_loss_is_the_mean_squared_error_and_pooling_averages_positions() {
        // The regressor's initialisation draws from the global generator.
        let _drawing = crate::generator();
        let device = Device::flex();
        // Target: 2 examples of 3 features; guide: a (2, 2, 1, 2) conv map.
        let target = vec![tap(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], vec![2, 3])];
        let guide = vec![tap(
            vec![1.0, 3.0, 2.0, 2.0, -1.0, 1.0, 4.0, 0.0],
            vec![2, 2, 1, 2],
        )];
        let pairs = [Pair::of_indices(0, 0)];
        for (pool, goal) in [
            (false, vec![1.0, 3.0, 2.0, 2.0, -1.0, 1.0, 4.0, 0.0]),
            (true, vec![2.0, 2.0, 0.0, 2.0]),
        ] {
            let hint = HintConfig {
                weight: 1.0,
                pair: None,
                pool_guide: pool,
            }
            .resolve("a", &pairs)
            .unwrap();
            let mut regressor = hint.regressor(&target, &guide, &device).unwrap();
            assert_eq!(regressor.weight.dims(), [3, goal.len() / 2]);
            // A zero regressor predicts 0, so the loss is the mean square of the goal.
            regressor.weight = regressor.weight.map(|w| w.zeros_like());
            regressor.bias = regressor.bias.map(|b| b.map(|b| b.zeros_like()));
            let expected = goal.iter().map(|g| (g * g) as f64).sum::<f64>() / goal.len() as f64;
            let loss = hint.loss(&regressor, &target, &guide).into_scalar::<f64>();
            assert!(
                (loss - expected).abs() < 1e-6,
                "pool {pool}: {loss} vs {expected}"
            );
        }
    }

    #[test]
    fn the_middle_pair_by_default_and_a_missing_pair_named() {
        let pairs: Vec<Pair> = (0..5).map(|i| Pair::of_indices(i, 4 - i)).collect();
        let config = HintConfig {
            weight: 0.5,
            pair: None,
            pool_guide: false,
        };
        let hint = config.resolve("a", &pairs).unwrap();
        assert_eq!((hint.target, hint.guide), (2, 2));
        let hint = HintConfig {
            pair: Some(4),
            ..config
        }
        .resolve("a", &pairs)
        .unwrap();
        assert_eq!((hint.target, hint.guide), (4, 0));
        let err = HintConfig {
            pair: Some(5),
            ..config
        }
        .resolve("fitnet", &pairs)
        .unwrap_err();
        assert!(
            err.contains("hint.pair = 5") && err.contains("`fitnet`"),
            "{err}"
        );
        assert!(
            config
                .resolve("a", &[])
                .unwrap_err()
                .contains("needs one pair")
        );
        let negative = HintConfig {
            weight: -1.0,
            ..config
        };
        assert!(negative.validate("a").unwrap_err().contains("hint.weight"));
    }
}
