//! `exp-error-consistency`: whether guidance makes a network err like its
//! guide (the paper's error-consistency figure, docs/paper.md §2.3). The Deep FCN
//! alone, guided by a trained ResNet-18 and guided by a trained vision
//! transformer, and the two guides alone, all measured on the same test
//! images; error consistency (Geirhos et al. 2020) is Cohen's κ of two
//! networks' per-example correctness. The paper's claim: the two guided FCNs
//! agree with each other (0.49) about as much as their guides do (0.53),
//! far more than the base FCN agrees with anything (≤ 0.04).
//!
//! The image-guidance library runs the targets `deep-fcn` (ResNet-18 guide)
//! and `deep-fcn-vit` (ViT guide), each with the arms of the config; κ is
//! computed per seed between the arms of [`MATRIX_ARMS`] and logged as
//! `error_consistency/<other arm>` test rows of each arm.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use untrainable_image_experiment::{Image, ImageSpec};
use untrainable_repsim::host::error_consistency;
use untrainable_results::{MetricRow, Split};
use untrainable_runner::{Preset, RunResults};

/// The networks compared, in the paper's order (its `deep-fcn-vit/base` is
/// the same run as `deep-fcn/base`: both targets start from the seed's
/// initial weights and train alone).
const MATRIX_ARMS: [&str; 5] = [
    "deep-fcn/base",
    "deep-fcn/trained-guide",
    "deep-fcn-vit/trained-guide",
    "resnet18/guide",
    "vit/guide",
];

/// The metric prefix of κ rows: `error_consistency/<other arm>`.
const METRIC: &str = "error_consistency";

struct ErrorConsistency;

impl ImageSpec for ErrorConsistency {
    const NAME: &'static str = "error-consistency";
    const ABOUT: &'static str = "Error consistency on Fashion-MNIST: the Deep FCN alone, guided by a trained \
ResNet-18 and by a trained ViT, and the two guides; Cohen's kappa of per-example test \
correctness between every two of them, per seed. Writes OUT/error-consistency/\
{metrics,summary,predictions}.parquet and config.toml, then draws \
<figures>/error-consistency.{png,svg}.";
    const PRESETS: &'static [(Preset, &'static str)] = &[
        (Preset::Smoke, include_str!("../presets/smoke.toml")),
        (Preset::Cpu, include_str!("../presets/cpu.toml")),
        (Preset::Paper, include_str!("../presets/paper.toml")),
        (
            Preset::PaperFmnist,
            include_str!("../presets/paper-fmnist.toml"),
        ),
    ];

    fn draw(rows: &[MetricRow], stem: &Path) -> Result<(), paper_figures::FigureError> {
        paper_figures::draw_error_consistency(rows, stem)
    }

    fn analyse(results: &RunResults) -> Result<Vec<MetricRow>, String> {
        error_consistency_rows(results)
    }
}

untrainable_runner::huge_page_allocator!();

fn main() -> ExitCode {
    untrainable_runner::main::<Image<ErrorConsistency>>()
}

/// κ between every two arms of [`MATRIX_ARMS`] that have test predictions
/// for the same seed, as rows of each arm (both orders), at the step and
/// epoch of the arm's own test rows.
fn error_consistency_rows(results: &RunResults) -> Result<Vec<MetricRow>, String> {
    // (seed, arm) → per-example correctness, in example order.
    let mut correct: BTreeMap<(u64, &str), Vec<(u64, bool)>> = BTreeMap::new();
    for p in &results.predictions {
        if let Some(arm) = MATRIX_ARMS.iter().find(|a| **a == p.arm) {
            correct
                .entry((p.seed, arm))
                .or_default()
                .push((p.example, p.label == p.predicted));
        }
    }
    let correct: BTreeMap<(u64, &str), Vec<bool>> = correct
        .into_iter()
        .map(|(key, mut hits)| {
            hits.sort_by_key(|(example, _)| *example);
            (key, hits.into_iter().map(|(_, hit)| hit).collect())
        })
        .collect();
    let test_row = |arm: &str, seed: u64| {
        results
            .rows
            .iter()
            .find(|r| r.arm == arm && r.seed == seed && r.split == Split::Test)
    };
    let mut rows = Vec::new();
    for (&(seed, a), hits_a) in &correct {
        for (&(seed_b, b), hits_b) in &correct {
            if seed_b != seed || a == b {
                continue;
            }
            let kappa = match error_consistency(hits_a, hits_b) {
                Ok(kappa) => kappa,
                Err(e) => {
                    tracing::warn!("no error consistency of {a} and {b} for seed {seed}: {e}");
                    continue;
                }
            };
            let at = test_row(a, seed)
                .ok_or_else(|| format!("{a} seed {seed} has test predictions but no test rows"))?;
            rows.push(MetricRow {
                metric: format!("{METRIC}/{b}"),
                value: kappa,
                ..at.clone()
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use untrainable_results::PredictionRow;

    fn predictions(arm: &str, seed: u64, hits: &[bool]) -> Vec<PredictionRow> {
        // Listed backwards: the analysis must order examples itself.
        (0..hits.len())
            .rev()
            .map(|i| PredictionRow {
                experiment: "error-consistency".into(),
                arm: arm.into(),
                seed,
                example: i as u64,
                label: 3,
                predicted: if hits[i] { 3 } else { 1 },
            })
            .collect()
    }

    fn test_row(arm: &str, seed: u64) -> MetricRow {
        MetricRow {
            experiment: "error-consistency".into(),
            arm: arm.into(),
            seed,
            step: 40,
            epoch: Some(4),
            split: Split::Test,
            metric: "accuracy".into(),
            value: 0.5,
        }
    }

    #[test]
    fn kappa_rows_by_hand_for_both_orders_per_seed_and_only_for_matrix_arms() {
        let (base, guided, guide) = (MATRIX_ARMS[0], MATRIX_ARMS[1], MATRIX_ARMS[3]);
        // base and guided: observed agreement 6/8, accuracies 1/2 and 1/2,
        // chance agreement 1/2: κ = (3/4 − 1/2) / (1 − 1/2) = 1/2.
        let a = [true, true, true, true, false, false, false, false];
        let b = [true, true, true, false, true, false, false, false];
        // guide errs exactly where base is right: κ = −1.
        let c = a.map(|x| !x);
        let mut results = RunResults::default();
        for (arm, hits) in [(base, a), (guided, b), (guide, c)] {
            results.predictions.extend(predictions(arm, 0, &hits));
            results.rows.push(test_row(arm, 0));
        }
        // Another seed with only one matrix arm, and an arm outside the matrix.
        results.predictions.extend(predictions(base, 1, &a));
        results.rows.push(test_row(base, 1));
        results
            .predictions
            .extend(predictions("deep-fcn-vit/base", 0, &a));
        results.rows.push(test_row("deep-fcn-vit/base", 0));

        let rows = error_consistency_rows(&results).unwrap();
        let mut got: Vec<(String, String, f64)> = rows
            .iter()
            .map(|r| (r.arm.clone(), r.metric.clone(), r.value))
            .collect();
        got.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
        let m = |other: &str| format!("{METRIC}/{other}");
        let mut expected = vec![
            (base.to_string(), m(guided), 0.5),
            (guided.to_string(), m(base), 0.5),
            (base.to_string(), m(guide), -1.0),
            (guide.to_string(), m(base), -1.0),
            (guided.to_string(), m(guide), -0.5),
            (guide.to_string(), m(guided), -0.5),
        ];
        expected.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
        assert_eq!(got.len(), expected.len());
        for ((arm, metric, value), (e_arm, e_metric, e_value)) in got.iter().zip(&expected) {
            assert_eq!((arm, metric), (e_arm, e_metric));
            assert!((value - e_value).abs() < 1e-12, "{arm} {metric}: {value}");
        }
        assert!(
            rows.iter()
                .all(|r| r.split == Split::Test && r.step == 40 && r.seed == 0)
        );
    }
}
