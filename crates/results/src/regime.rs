//! Regime gates: checks, measured on a run's own results, that the run is
//! in the regime where a claim of the paper can show at all: the guide far
//! better than the target, the target failing the way the paper's does,
//! the compared arms past their best epoch (docs/regimes.md).
//! A preset lists its gates; the experiment writes one row per gate to
//! `regime.parquet`. A claim counts only where the gates of the regime
//! hold; a failed convergence gate ([`Gate::PastBest`]) is reported beside
//! the verdict instead, since an unfinished run still says which way an
//! effect goes.
//!
//! Every value is a mean over the seeds that have the rows it needs; a gate
//! whose arms have no rows gets the value NaN and does not hold.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{MetricRow, Split, SummaryRow};

/// One check of a regime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Gate {
    /// `arm`'s test `metric` exceeds `other`'s by at least `min`.
    Beats {
        arm: String,
        other: String,
        metric: String,
        min: f64,
    },
    /// `arm`'s test `metric` is at most `max` times `other`'s (for metrics
    /// where lower is better, such as perplexity).
    RatioAtMost {
        arm: String,
        other: String,
        metric: String,
        max: f64,
    },
    /// `arm`'s test `metric` is at most `max`: the target alone fails.
    AtMost {
        arm: String,
        metric: String,
        max: f64,
    },
    /// `arm`'s test `metric` is at least `min`: the guide does the task.
    AtLeast {
        arm: String,
        metric: String,
        min: f64,
    },
    /// `arm`'s lowest validation loss comes within the first `fraction`
    /// of its epochs.
    BestEpochWithin { arm: String, fraction: f64 },
    /// `arm`'s final validation loss lies at least `min` above its lowest.
    ValLossRises { arm: String, min: f64 },
    /// `arm`'s training loss, averaged over an epoch, is lower in the last
    /// epoch than in the selected one: it still fits the training set.
    TrainLossFalling { arm: String },
    /// `arm`'s final training loss exceeds `other`'s by at least `min`.
    TrainLossAbove {
        arm: String,
        other: String,
        min: f64,
    },
    /// Every run of these arms selected an epoch before its last, so its
    /// test metric is not that of a network still improving.
    PastBest { arms: Vec<String> },
}

/// One row of `regime.parquet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegimeRow {
    pub experiment: String,
    pub gate: String,
    pub value: f64,
    pub threshold: f64,
    pub holds: bool,
}

/// The start of a [`Gate::PastBest`] row's `gate`.
const PAST_BEST: &str = "runs past their best epoch";

impl RegimeRow {
    /// Whether this row is the convergence gate ([`Gate::PastBest`]).
    pub fn is_convergence(&self) -> bool {
        self.gate.starts_with(PAST_BEST)
    }
}

/// How a gate's value is compared with its threshold.
enum Bound {
    Above(f64),
    AtLeast(f64),
    AtMost(f64),
}

impl Gate {
    /// The arms this gate reads, for checking a preset before its run.
    pub fn arms(&self) -> Vec<&str> {
        match self {
            Gate::Beats { arm, other, .. }
            | Gate::RatioAtMost { arm, other, .. }
            | Gate::TrainLossAbove { arm, other, .. } => vec![arm, other],
            Gate::AtMost { arm, .. }
            | Gate::AtLeast { arm, .. }
            | Gate::BestEpochWithin { arm, .. }
            | Gate::ValLossRises { arm, .. }
            | Gate::TrainLossFalling { arm } => vec![arm],
            Gate::PastBest { arms } => arms.iter().map(String::as_str).collect(),
        }
    }

    /// What the gate measures, as written in `regime.parquet`.
    pub fn label(&self) -> String {
        match self {
            Gate::Beats {
                arm, other, metric, ..
            } => {
                format!("test {metric}: {arm} − {other}")
            }
            Gate::RatioAtMost {
                arm, other, metric, ..
            } => {
                format!("test {metric}: {arm} / {other}")
            }
            Gate::AtMost { arm, metric, .. } | Gate::AtLeast { arm, metric, .. } => {
                format!("test {metric}: {arm}")
            }
            Gate::BestEpochWithin { arm, .. } => {
                format!("best epoch / epochs: {arm}")
            }
            Gate::ValLossRises { arm, .. } => format!("final − best val loss: {arm}"),
            Gate::TrainLossFalling { arm } => {
                format!("train loss, best epoch − last epoch: {arm}")
            }
            Gate::TrainLossAbove { arm, other, .. } => {
                format!("final train loss: {arm} − {other}")
            }
            Gate::PastBest { arms } => format!("{PAST_BEST}: {}", arms.join(", ")),
        }
    }

    fn measure(&self, runs: &Runs) -> (f64, Bound) {
        match self {
            Gate::Beats {
                arm,
                other,
                metric,
                min,
            } => (
                runs.test(arm, metric) - runs.test(other, metric),
                Bound::AtLeast(*min),
            ),
            Gate::RatioAtMost {
                arm,
                other,
                metric,
                max,
            } => (
                runs.test(arm, metric) / runs.test(other, metric),
                Bound::AtMost(*max),
            ),
            Gate::AtMost { arm, metric, max } => (runs.test(arm, metric), Bound::AtMost(*max)),
            Gate::AtLeast { arm, metric, min } => (runs.test(arm, metric), Bound::AtLeast(*min)),
            Gate::BestEpochWithin { arm, fraction } => (
                runs.mean_over_seeds(arm, Runs::best_epoch_fraction),
                Bound::AtMost(*fraction),
            ),
            Gate::ValLossRises { arm, min } => (
                runs.summary_mean(arm, |s| s.final_val_loss - s.best_val_loss),
                Bound::AtLeast(*min),
            ),
            Gate::TrainLossFalling { arm } => (
                runs.mean_over_seeds(arm, Runs::train_loss_drop_after_best),
                Bound::Above(0.0),
            ),
            Gate::TrainLossAbove { arm, other, min } => (
                runs.summary_mean(arm, |s| s.final_train_loss)
                    - runs.summary_mean(other, |s| s.final_train_loss),
                Bound::AtLeast(*min),
            ),
            Gate::PastBest { arms } => (runs.fraction_past_best(arms), Bound::AtLeast(1.0)),
        }
    }
}

/// Measures every gate on a run's rows.
pub fn evaluate(
    experiment: &str,
    gates: &[Gate],
    metrics: &[MetricRow],
    summaries: &[SummaryRow],
) -> Vec<RegimeRow> {
    let runs = Runs::new(metrics, summaries);
    gates
        .iter()
        .map(|gate| {
            let (value, bound) = gate.measure(&runs);
            let (threshold, holds) = match bound {
                Bound::Above(t) => (t, value > t),
                Bound::AtLeast(t) => (t, value >= t),
                Bound::AtMost(t) => (t, value <= t),
            };
            RegimeRow {
                experiment: experiment.to_string(),
                gate: gate.label(),
                value,
                threshold,
                holds,
            }
        })
        .collect()
}

/// A plain-text table of the gates, for the end of a run.
pub fn regime_table(rows: &[RegimeRow]) -> String {
    let mut out = String::from("regime gates:\n");
    for row in rows {
        out.push_str(&format!(
            "  {:<5} {:<64} {:>10.4} (threshold {})\n",
            if row.holds { "holds" } else { "FAILS" },
            row.gate,
            row.value,
            row.threshold
        ));
    }
    out
}

/// The rows of one run, by (arm, seed).
struct Runs<'a> {
    metrics: BTreeMap<(String, u64), Vec<&'a MetricRow>>,
    summaries: BTreeMap<(&'a str, u64), &'a SummaryRow>,
}

impl<'a> Runs<'a> {
    fn new(metrics: &'a [MetricRow], summaries: &'a [SummaryRow]) -> Self {
        let mut by_run: BTreeMap<(String, u64), Vec<&MetricRow>> = BTreeMap::new();
        for row in metrics {
            by_run
                .entry((row.arm.clone(), row.seed))
                .or_default()
                .push(row);
        }
        Runs {
            metrics: by_run,
            summaries: summaries
                .iter()
                .map(|s| ((s.arm.as_str(), s.seed), s))
                .collect(),
        }
    }

    /// The mean over seeds of `f` of each run of `arm` where it is defined.
    fn mean_over_seeds(&self, arm: &str, f: fn(&Self, &SummaryRow) -> Option<f64>) -> f64 {
        let values: Vec<f64> = self
            .summaries
            .iter()
            .filter(|((a, _), _)| *a == arm)
            .filter_map(|(_, s)| f(self, s))
            .collect();
        mean(&values)
    }

    fn summary_mean(&self, arm: &str, f: impl Fn(&SummaryRow) -> f64) -> f64 {
        let values: Vec<f64> = self
            .summaries
            .iter()
            .filter(|((a, _), _)| *a == arm)
            .map(|(_, s)| f(s))
            .collect();
        mean(&values)
    }

    /// The mean over seeds of `arm`'s last test measurement of `metric`.
    fn test(&self, arm: &str, metric: &str) -> f64 {
        let values: Vec<f64> = self
            .metrics
            .iter()
            .filter(|((a, _), _)| a == arm)
            .filter_map(|(_, rows)| {
                rows.iter()
                    .rev()
                    .find(|r| r.split == Split::Test && r.metric == metric)
                    .map(|r| r.value)
            })
            .collect();
        mean(&values)
    }

    fn rows(&self, run: &SummaryRow) -> &[&'a MetricRow] {
        self.metrics
            .get(&(run.arm.clone(), run.seed))
            .map_or(&[], Vec::as_slice)
    }

    /// The step at which each validated epoch ended.
    fn epoch_ends(&self, run: &SummaryRow) -> BTreeMap<u32, u64> {
        self.rows(run)
            .iter()
            .filter(|r| r.split == Split::Val && r.metric == "loss")
            .filter_map(|r| Some((r.epoch?, r.step)))
            .collect()
    }

    /// The last epoch that was validated.
    fn last_epoch(&self, run: &SummaryRow) -> Option<u32> {
        self.epoch_ends(run).keys().next_back().copied()
    }

    fn best_epoch_fraction(&self, run: &SummaryRow) -> Option<f64> {
        let last = self.last_epoch(run)?;
        Some(f64::from(run.best_epoch) / f64::from(last))
    }

    /// Mean training loss of the selected epoch minus that of the last.
    /// Training rows carry steps only: epoch `e` holds the steps from the
    /// end of epoch `e − 1` up to, not including, the end of `e`.
    fn train_loss_drop_after_best(&self, run: &SummaryRow) -> Option<f64> {
        let ends = self.epoch_ends(run);
        let epoch_mean = |epoch: u32| {
            let end = *ends.get(&epoch)?;
            let start = ends.range(..epoch).next_back().map_or(0, |(_, &s)| s);
            let losses: Vec<f64> = self
                .rows(run)
                .iter()
                .filter(|r| r.split == Split::Train && r.metric == "loss")
                .filter(|r| (start..end).contains(&r.step))
                .map(|r| r.value)
                .collect();
            (!losses.is_empty()).then(|| mean(&losses))
        };
        Some(epoch_mean(run.best_epoch)? - epoch_mean(*ends.keys().next_back()?)?)
    }

    fn fraction_past_best(&self, arms: &[String]) -> f64 {
        let past: Vec<f64> = self
            .summaries
            .values()
            .filter(|s| arms.contains(&s.arm))
            .filter_map(|s| Some(f64::from(u8::from(s.best_epoch < self.last_epoch(s)?))))
            .collect();
        mean(&past)
    }
}

/// The mean of `values`; NaN for none, so that a gate without data fails.
fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    fn metric(arm: &str, seed: u64, epoch: u32, split: Split, name: &str, value: f64) -> MetricRow {
        MetricRow {
            experiment: "e".into(),
            arm: arm.into(),
            seed,
            step: u64::from(epoch) * 10,
            epoch: Some(epoch),
            split,
            metric: name.into(),
            value,
        }
    }

    fn summary(arm: &str, seed: u64, best_epoch: u32, final_val: f64, best_val: f64) -> SummaryRow {
        SummaryRow {
            experiment: "e".into(),
            arm: arm.into(),
            seed,
            status: Status::Ok,
            status_step: None,
            steps: 100,
            final_train_loss: 0.1 * (seed + 1) as f64,
            final_val_loss: final_val,
            best_val_loss: best_val,
            best_epoch,
            final_val_accuracy: 0.5,
            best_val_accuracy: 0.6,
            wall_seconds: 1.0,
        }
    }

    /// Two seeds of a target that overfits (best epoch 2 of 10, training
    /// loss falling) and of a guide that is better on test by 0.2 and 0.3.
    fn run() -> (Vec<MetricRow>, Vec<SummaryRow>) {
        let mut metrics = Vec::new();
        for seed in 0..2 {
            for epoch in 1..=10 {
                // Training rows carry steps only, two per epoch of 10 steps;
                // the validation row of epoch e comes at step 10 e.
                let train = 2.0 / f64::from(epoch);
                for (offset, loss) in [(0, train), (9, train + 0.1)] {
                    let mut row = metric("target", seed, epoch, Split::Train, "loss", loss);
                    (row.step, row.epoch) = (u64::from(epoch - 1) * 10 + offset, None);
                    metrics.push(row);
                }
                metrics.push(metric("target", seed, epoch, Split::Val, "loss", 1.0));
                metrics.push(metric("guide", seed, epoch, Split::Val, "loss", 1.0));
            }
            let target_accuracy = 0.5 + 0.1 * seed as f64;
            metrics.push(metric(
                "target",
                seed,
                10,
                Split::Test,
                "accuracy",
                target_accuracy,
            ));
            metrics.push(metric(
                "guide",
                seed,
                10,
                Split::Test,
                "accuracy",
                0.7 + 0.2 * seed as f64,
            ));
        }
        let summaries = (0..2)
            .flat_map(|seed| {
                [
                    summary("target", seed, 2, 1.6, 1.0),
                    summary("guide", seed, 10, 0.5, 0.5),
                ]
            })
            .collect();
        (metrics, summaries)
    }

    fn one(gate: Gate) -> RegimeRow {
        let (metrics, summaries) = run();
        evaluate("e", &[gate], &metrics, &summaries).remove(0)
    }

    #[test]
    fn beats_compares_means_over_seeds() {
        let gate = |min| Gate::Beats {
            arm: "guide".into(),
            other: "target".into(),
            metric: "accuracy".into(),
            min,
        };
        let row = one(gate(0.15));
        assert!((row.value - 0.25).abs() < 1e-12, "{}", row.value);
        assert!(row.holds);
        assert!(!one(gate(0.3)).holds);
    }

    #[test]
    fn ratio_and_at_most_bound_from_above() {
        let ratio = one(Gate::RatioAtMost {
            arm: "target".into(),
            other: "guide".into(),
            metric: "accuracy".into(),
            max: 0.75,
        });
        assert!((ratio.value - 0.55 / 0.8).abs() < 1e-12);
        assert!(ratio.holds);
        let at_most = |max| Gate::AtMost {
            arm: "target".into(),
            metric: "accuracy".into(),
            max,
        };
        assert!(one(at_most(0.55)).holds);
        assert!(!one(at_most(0.54)).holds);
        let at_least = |min| Gate::AtLeast {
            arm: "guide".into(),
            metric: "accuracy".into(),
            min,
        };
        assert!((one(at_least(0.8)).value - 0.8).abs() < 1e-12);
        assert!(one(at_least(0.79)).holds);
        assert!(!one(at_least(0.81)).holds);
    }

    #[test]
    fn an_overfitting_target_passes_the_three_overfitting_gates() {
        let early = one(Gate::BestEpochWithin {
            arm: "target".into(),
            fraction: 0.5,
        });
        assert!((early.value - 0.2).abs() < 1e-12 && early.holds);
        let rise = one(Gate::ValLossRises {
            arm: "target".into(),
            min: 0.3,
        });
        assert!((rise.value - 0.6).abs() < 1e-12 && rise.holds);
        let falling = one(Gate::TrainLossFalling {
            arm: "target".into(),
        });
        // Epoch 2's mean (1.05) minus epoch 10's (0.25).
        assert!((falling.value - 0.8).abs() < 1e-12 && falling.holds);
        let guide_falling = one(Gate::TrainLossFalling {
            arm: "guide".into(),
        });
        assert!(guide_falling.value.is_nan() && !guide_falling.holds);
    }

    #[test]
    fn past_best_needs_every_run_selected_before_its_last_epoch() {
        let target = one(Gate::PastBest {
            arms: vec!["target".into()],
        });
        assert!(target.holds);
        let both = one(Gate::PastBest {
            arms: vec!["target".into(), "guide".into()],
        });
        assert_eq!(both.value, 0.5);
        assert!(!both.holds);
    }

    #[test]
    fn train_loss_above_and_a_missing_arm_fails() {
        let row = one(Gate::TrainLossAbove {
            arm: "target".into(),
            other: "guide".into(),
            min: 0.0,
        });
        assert_eq!(row.value, 0.0);
        assert!(row.holds);
        let gates = [Gate::AtMost {
            arm: "nobody".into(),
            metric: "accuracy".into(),
            max: 1.0,
        }];
        let (metrics, summaries) = run();
        let row = evaluate("e", &gates, &metrics, &summaries).remove(0);
        assert!(row.value.is_nan() && !row.holds);
    }

    #[test]
    fn regime_rows_survive_the_parquet_file() {
        let (metrics, summaries) = run();
        let gates = [
            Gate::PastBest {
                arms: vec!["target".into()],
            },
            Gate::TrainLossFalling {
                arm: "guide".into(),
            },
        ];
        let rows = evaluate("e", &gates, &metrics, &summaries);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("regime.parquet");
        crate::write_regime(&path, &rows).unwrap();
        let back = crate::read_regime(&path).unwrap();
        assert_eq!(back[0], rows[0]);
        assert!(back[1].value.is_nan() && !back[1].holds && back[1].gate == rows[1].gate);
    }

    #[test]
    fn gates_read_from_toml_refuse_unknown_fields() {
        #[derive(Deserialize)]
        struct Preset {
            gates: Vec<Gate>,
        }
        let text = r#"
            [[gates]]
            kind = "beats"
            arm = "guide"
            other = "target"
            metric = "accuracy"
            min = 0.15
        "#;
        let preset: Preset = toml::from_str(text).unwrap();
        assert_eq!(preset.gates[0].arms(), ["guide", "target"]);
        let typo = text.replace("min =", "minimum =");
        assert!(toml::from_str::<Preset>(&typo).is_err());
    }
}
