//! The claims table: each claim of the paper that an experiment tests, the
//! paper's effect, this project's effect (paired by seed, with its 95 %
//! interval), whether the experiment's regime gates hold (docs/regimes.md),
//! and a verdict. README shows it between [`START`] and [`END`]; it is
//! rewritten from the results by `paper-figures --readme README.md`.

use std::collections::BTreeMap;
use std::path::Path;

use untrainable_results::{
    MetricRow, PairedDifference, RegimeRow, SummaryRow, read_metrics, read_regime, read_summary,
    test_values_by_seed,
};

use crate::FigureError;

/// The lines around the claims table in README.
pub const START: &str = "<!-- claims: written by paper-figures --readme; do not edit -->";
pub const END: &str = "<!-- /claims -->";

/// What a claim compares per seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// The selected network's value of a metric on the test split.
    Test(&'static str),
    /// The validation loss at the last epoch (overfitting shows there).
    FinalValLoss,
}

impl Measure {
    pub fn name(self) -> &'static str {
        match self {
            Measure::Test(metric) => metric,
            Measure::FinalValLoss => "final val loss",
        }
    }

    fn by_seed(self, run: &Results, arm: &str) -> BTreeMap<u64, f64> {
        match self {
            Measure::Test(metric) => test_values_by_seed(&run.metrics, arm, metric),
            Measure::FinalValLoss => run
                .summaries
                .iter()
                .filter(|s| s.arm == arm)
                .map(|s| (s.seed, s.final_val_loss))
                .collect(),
        }
    }
}

/// An experiment's results files.
#[derive(Debug, Default)]
pub struct Results {
    pub metrics: Vec<MetricRow>,
    pub summaries: Vec<SummaryRow>,
    /// `None` without `regime.parquet`.
    pub regime: Option<Vec<RegimeRow>>,
}

impl Results {
    /// What `dir` holds of the three files; absent files give no rows.
    pub fn read(dir: &Path) -> Result<Self, FigureError> {
        let existing = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
        Ok(Results {
            metrics: existing("metrics.parquet").map_or(Ok(Vec::new()), read_metrics)?,
            summaries: existing("summary.parquet").map_or(Ok(Vec::new()), read_summary)?,
            regime: existing("regime.parquet").map(read_regime).transpose()?,
        })
    }
}

impl Claim {
    /// What the claim's differences measure.
    pub fn measure_name(&self) -> &'static str {
        self.measure.name()
    }
}

/// One claim: `arm` differs from `baseline` in `measure` in the direction
/// of the paper's effect.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    pub claim: &'static str,
    pub experiment: &'static str,
    pub arm: &'static str,
    pub baseline: &'static str,
    pub measure: Measure,
    /// Factor applied before display (100 for a fraction shown in points).
    pub scale: f64,
    /// The sign of the paper's effect, `arm − baseline` (+1 or −1).
    pub direction: f64,
    /// The paper's effect as it reports it.
    pub paper: &'static str,
    /// That effect as a number, where the paper gives one.
    pub paper_effect: Option<f64>,
}

/// The claims, in README's order (docs/paper.md §2).
pub const CLAIMS: &[Claim] = &[
    Claim {
        claim: "A trained ResNet-18 guide improves the Deep FCN (Table 1)",
        experiment: "image-guidance",
        arm: "deep-fcn/trained-guide",
        baseline: "deep-fcn/base",
        measure: Measure::Test("accuracy"),
        scale: 100.0,
        direction: 1.0,
        paper: "+5.85 top-5 (1.65 → 7.50)",
        paper_effect: Some(5.85),
    },
    Claim {
        claim: "An untrained ResNet-18 guide improves the Deep FCN (Table 1)",
        experiment: "image-guidance",
        arm: "deep-fcn/untrained-guide",
        baseline: "deep-fcn/base",
        measure: Measure::Test("accuracy"),
        scale: 100.0,
        direction: 1.0,
        paper: "+11.45 top-5 (1.65 → 13.10)",
        paper_effect: Some(11.45),
    },
    Claim {
        claim: "A trained ResNet-18 guide improves the Wide FCN (Table 1)",
        experiment: "image-guidance",
        arm: "wide-fcn/trained-guide",
        baseline: "wide-fcn/base",
        measure: Measure::Test("accuracy"),
        scale: 100.0,
        direction: 1.0,
        paper: "+8.92 top-5 (34.09 → 43.01)",
        paper_effect: Some(8.92),
    },
    Claim {
        claim: "A trained ResNet-50 guide improves the Deep ConvNet (Table 1)",
        experiment: "image-guidance",
        arm: "conv/trained-guide",
        baseline: "conv/base",
        measure: Measure::Test("accuracy"),
        scale: 100.0,
        direction: 1.0,
        paper: "+8.89 top-5 (70.02 → 78.91)",
        paper_effect: Some(8.89),
    },
    Claim {
        claim: "Guidance from an untrained network beats distillation from it (§2.5)",
        experiment: "kd-vs-guidance",
        arm: "deep-fcn/untrained-guide",
        baseline: "deep-fcn/distill-untrained",
        measure: Measure::Test("accuracy"),
        scale: 100.0,
        direction: 1.0,
        paper: "in words",
        paper_effect: None,
    },
    Claim {
        claim: "Every pair guides better than the last pair alone (§2.6)",
        experiment: "ablations",
        arm: "deep-fcn/all-pairs",
        baseline: "deep-fcn/last-pair",
        measure: Measure::Test("accuracy"),
        scale: 100.0,
        direction: 1.0,
        paper: "in words",
        paper_effect: None,
    },
    Claim {
        claim: "Guidance for the first steps only keeps the Deep FCN from overfitting (§2.4)",
        experiment: "fcn-warmup",
        arm: "early-disconnect",
        baseline: "base",
        measure: Measure::FinalValLoss,
        scale: 1.0,
        direction: -1.0,
        paper: "≈ −3.2 near epoch 96 (9.3 → 6.07, from a figure)",
        paper_effect: Some(-3.23),
    },
    Claim {
        claim: "A trained Transformer guide improves the copy-paste RNN (Table 2)",
        experiment: "copy-paste",
        arm: "trained-guide",
        baseline: "base",
        measure: Measure::Test("accuracy"),
        scale: 100.0,
        direction: 1.0,
        paper: "+8.92 (14.35 → 23.27)",
        paper_effect: Some(8.92),
    },
    Claim {
        claim: "An untrained Transformer guide improves the copy-paste RNN (Table 2)",
        experiment: "copy-paste",
        arm: "untrained-guide",
        baseline: "base",
        measure: Measure::Test("accuracy"),
        scale: 100.0,
        direction: 1.0,
        paper: "+28.21 (14.35 → 42.56)",
        paper_effect: Some(28.21),
    },
    Claim {
        claim: "A trained RNN guide improves the parity Transformer (Table 2)",
        experiment: "parity",
        arm: "trained-guide",
        baseline: "base",
        measure: Measure::Test("accuracy"),
        scale: 100.0,
        direction: 1.0,
        paper: "+6.51 (71.98 → 78.49)",
        paper_effect: Some(6.51),
    },
    Claim {
        claim: "A trained Transformer guide lowers the small RNN's perplexity (Table 2)",
        experiment: "lm",
        arm: "small/trained-guide",
        baseline: "small/base",
        measure: Measure::Test("word_ppl"),
        scale: 1.0,
        direction: -1.0,
        paper: "−29.18 (69.19 → 40.01)",
        paper_effect: Some(-29.18),
    },
    Claim {
        claim: "A trained Transformer guide lowers the large RNN's perplexity (Table 2)",
        experiment: "lm",
        arm: "large/trained-guide",
        baseline: "large/base",
        measure: Measure::Test("word_ppl"),
        scale: 1.0,
        direction: -1.0,
        paper: "−52.22 (89.13 → 36.91)",
        paper_effect: Some(-52.22),
    },
];

/// What a claim's results say.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub difference: Option<PairedDifference>,
    /// Gates that hold, and all gates; `None` without `regime.parquet`.
    pub gates: Option<(usize, usize)>,
    /// Every gate but the convergence gate holds.
    pub regime_holds: bool,
    /// The convergence gate holds (or the preset has none).
    pub converged: bool,
}

impl Finding {
    pub fn of(claim: &Claim, results: &Results) -> Self {
        Finding {
            difference: PairedDifference::of(
                &claim.measure.by_seed(results, claim.arm),
                &claim.measure.by_seed(results, claim.baseline),
            ),
            gates: results
                .regime
                .as_ref()
                .map(|rows| (rows.iter().filter(|r| r.holds).count(), rows.len())),
            regime_holds: results
                .regime
                .as_ref()
                .is_some_and(|rows| rows.iter().filter(|r| !r.is_convergence()).all(|r| r.holds)),
            converged: (results.regime.iter().flatten()).all(|r| r.holds || !r.is_convergence()),
        }
    }

    /// `reproduces` (the interval excludes 0 on the paper's side), `partly`
    /// (the mean on the paper's side, the interval across 0), `does not`;
    /// `not testable here` where a regime gate fails or was not measured,
    /// since the regime cannot show the effect (docs/regimes.md); with
    /// `(not converged)` after it where the compared runs were still
    /// improving.
    pub fn verdict(&self, claim: &Claim) -> String {
        let verdict = match self.difference {
            None => "not run",
            Some(_) if !self.regime_holds => "not testable here",
            Some(d) if f64::from(d.sign()) == claim.direction => "reproduces",
            Some(d) if d.mean * claim.direction > 0.0 => "partly",
            Some(_) => "does not",
        };
        let tested = self.difference.is_some() && self.regime_holds;
        match tested && !self.converged {
            true => format!("{verdict} (not converged)"),
            false => verdict.to_string(),
        }
    }
}

/// The claims table as Markdown, from `results` (each experiment's
/// `metrics.parquet`, `summary.parquet` and `regime.parquet`).
pub fn claims_table(results: &Path) -> Result<String, FigureError> {
    let mut out = String::from(
        "| claim | paper | here: arm − baseline, paired 95 % interval | seeds | gates hold | verdict |\n\
         |---|---|---|---|---|---|\n",
    );
    for (claim, finding) in findings(results)? {
        let (here, seeds) = match finding.difference {
            Some(d) => (d.shown(claim.scale), d.pairs.to_string()),
            None => ("–".to_string(), "–".to_string()),
        };
        let gates = match finding.gates {
            Some((holding, all)) => format!("{holding} of {all}"),
            None => "not measured".to_string(),
        };
        out += &format!(
            "| {} | {} | {here} ({}) | {seeds} | {gates} | {} |\n",
            claim.claim,
            claim.paper,
            claim.measure.name(),
            finding.verdict(&claim)
        );
    }
    Ok(out)
}

/// Every claim's finding, read from `results`.
pub fn findings(results: &Path) -> Result<Vec<(Claim, Finding)>, FigureError> {
    CLAIMS
        .iter()
        .map(|claim| {
            let found = Results::read(&results.join(claim.experiment))?;
            Ok((*claim, Finding::of(claim, &found)))
        })
        .collect()
}

/// `readme` with the text between [`START`] and [`END`] replaced by `table`.
pub fn with_claims(readme: &str, table: &str) -> Result<String, String> {
    let start = readme
        .find(START)
        .ok_or_else(|| format!("README has no line `{START}` to put the claims table after"))?;
    let end = readme
        .find(END)
        .filter(|&end| end > start)
        .ok_or_else(|| format!("README has no line `{END}` after `{START}`"))?;
    Ok(format!(
        "{}{START}\n{table}{}",
        &readme[..start],
        &readme[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use untrainable_results::Split;

    fn test_row(arm: &str, seed: u64, value: f64) -> MetricRow {
        MetricRow {
            experiment: "parity".into(),
            arm: arm.into(),
            seed,
            step: 0,
            epoch: None,
            split: Split::Test,
            metric: "accuracy".into(),
            value,
        }
    }

    fn gate(holds: bool) -> RegimeRow {
        RegimeRow {
            experiment: "parity".into(),
            gate: "g".into(),
            value: 0.0,
            threshold: 0.0,
            holds,
        }
    }

    fn verdict(guided: [f64; 3], gates: Option<&[RegimeRow]>) -> String {
        let claim = CLAIMS.iter().find(|c| c.experiment == "parity").unwrap();
        let mut results = Results {
            regime: gates.map(<[RegimeRow]>::to_vec),
            ..Results::default()
        };
        for (seed, (base, guided)) in [0.5, 0.6, 0.7].iter().zip(guided).enumerate() {
            results.metrics.push(test_row("base", seed as u64, *base));
            results
                .metrics
                .push(test_row("trained-guide", seed as u64, guided));
        }
        Finding::of(claim, &results).verdict(claim)
    }

    #[test]
    fn the_verdict_follows_the_interval_and_the_gates() {
        let hold = [gate(true), gate(true)];
        assert_eq!(verdict([0.6, 0.71, 0.79], Some(&hold)), "reproduces");
        assert_eq!(verdict([0.6, 0.55, 0.8], Some(&hold)), "partly");
        assert_eq!(verdict([0.45, 0.5, 0.66], Some(&hold)), "does not");
        assert_eq!(
            verdict([0.6, 0.71, 0.79], Some(&[gate(true), gate(false)])),
            "not testable here"
        );
        assert_eq!(verdict([0.6, 0.71, 0.79], None), "not testable here");
        let unconverged = RegimeRow {
            gate: "runs past their best epoch: base".into(),
            ..gate(false)
        };
        assert_eq!(
            verdict([0.6, 0.71, 0.79], Some(&[gate(true), unconverged.clone()])),
            "reproduces (not converged)"
        );
        assert_eq!(
            verdict([0.6, 0.71, 0.79], Some(&[gate(false), unconverged])),
            "not testable here"
        );
    }

    #[test]
    fn the_readme_block_is_replaced_and_the_rest_kept() {
        let readme = format!("# T\n\nintro\n{START}\nold\n{END}\n\n## Next\n");
        let new = with_claims(&readme, "| new |\n").unwrap();
        assert_eq!(
            new,
            format!("# T\n\nintro\n{START}\n| new |\n{END}\n\n## Next\n")
        );
        assert!(with_claims("# T\n", "x").unwrap_err().contains("claims"));
    }
}
