//! `results/TABLES.md`: one Markdown table per experiment, read from its
//! parquet results, with the paper's number beside each arm (docs/paper.md §2), so
//! that a reader compares the reproduction and the paper line by line.

use untrainable_results::{
    MetricRow, PairedDifference, Split, SummaryRow, mean_sd, test_values_by_seed,
};

use crate::stats::arms_in_order;

/// What an experiment's table reports.
#[derive(Debug, Clone, Copy)]
pub struct ExperimentTable {
    pub experiment: &'static str,
    pub title: &'static str,
    /// The metric reported per arm, as logged (e.g. `accuracy`).
    pub metric: &'static str,
    /// How the metric is shown in the header, e.g. "accuracy on copied tokens (%)".
    pub label: &'static str,
    /// Factor applied before display (100 for a fraction shown in %).
    pub scale: f64,
    /// The paper's value for an arm, as printed there, where it reports one.
    pub paper: &'static [(&'static str, &'static str)],
    /// A further section drawn from the same rows, after the table.
    pub appendix: Option<fn(&[MetricRow]) -> String>,
}

/// The paper's value of `metric` for `arm` of `experiment`, as printed
/// there, where it reports one: the one place the experiments' closing
/// tables read the paper's numbers from.
pub fn paper_value(experiment: &str, metric: &str, arm: &str) -> Option<&'static str> {
    TABLES
        .iter()
        .filter(|t| t.experiment == experiment && t.metric == metric)
        .flat_map(|t| t.paper)
        .find(|(a, _)| *a == arm)
        .map(|(_, value)| *value)
}

/// The tables `paper-figures` writes, in this order.
pub const TABLES: &[ExperimentTable] = &[
    ExperimentTable {
        experiment: "fcn-warmup",
        title: "Deep FCN on Fashion-MNIST: noise warm-up and early disconnect (docs/paper.md §2.4)",
        metric: "accuracy",
        label: "accuracy (%)",
        scale: 100.0,
        // The paper gives curves only for this experiment.
        paper: &[],
        appendix: None,
    },
    ExperimentTable {
        experiment: "copy-paste",
        title: "Copy-paste: 4-layer RNN guided by a 4-layer Transformer (docs/paper.md §2.2)",
        metric: "accuracy",
        label: "accuracy on copied tokens (%)",
        scale: 100.0,
        paper: &[
            ("base", "14.35 ± 0.01"),
            ("trained-guide", "23.27 ± 1.02"),
            ("untrained-guide", "42.56 ± 1.51"),
            ("guide", "96.98"),
        ],
        appendix: None,
    },
    ExperimentTable {
        experiment: "parity",
        title: "Parity: 1-layer Transformer encoder guided by a 1-layer RNN (docs/paper.md §2.2)",
        metric: "accuracy",
        label: "accuracy (%)",
        scale: 100.0,
        paper: &[
            ("base", "71.98 ± 3.16"),
            ("trained-guide", "78.49 ± 2.16"),
            ("untrained-guide", "70.38 ± 4.17"),
            ("guide", "100"),
        ],
        appendix: None,
    },
    ExperimentTable {
        experiment: "lm",
        title: "Language modelling: 4-layer (small) and 6-layer (large) RNN guided by a 4-layer \
                Transformer (docs/paper.md §2.2; State of the Union here, WikiText-103 in the paper)",
        metric: "word_ppl",
        label: "word-level perplexity",
        scale: 1.0,
        paper: &[
            ("small/base", "69.19 ± 1.89"),
            ("small/trained-guide", "40.01 ± 1.54"),
            ("small/untrained-guide", "59.61 ± 2.33"),
            ("large/base", "89.13 ± 2.00"),
            ("large/trained-guide", "36.91 ± 1.04"),
            ("large/untrained-guide", "47.17 ± 2.50"),
            ("guide", "34.15 (small table), 33.10 (large)"),
        ],
        appendix: None,
    },
    ExperimentTable {
        experiment: "image-guidance",
        title: "Image classification, top-5: Deep FCN and Wide FCN guided by ResNet-18, Deep \
                ConvNet guided by ResNet-50 (docs/paper.md §2.1, Table 1; Fashion-MNIST here, 10 classes, \
                ImageNet-1k in the paper)",
        metric: "top5_accuracy",
        label: "top-5 accuracy (%)",
        scale: 100.0,
        paper: &[
            ("resnet18/guide", "89.24"),
            ("resnet50/guide", "92.99"),
            ("deep-fcn/base", "1.65 ± 0.51"),
            ("deep-fcn/trained-guide", "7.50 ± 1.51"),
            ("deep-fcn/untrained-guide", "13.10 ± 0.72"),
            ("wide-fcn/base", "34.09 ± 1.21"),
            ("wide-fcn/trained-guide", "43.01 ± 0.92"),
            ("wide-fcn/untrained-guide", "39.47 ± 0.31"),
            ("conv/base", "70.02 ± 1.52"),
            ("conv/trained-guide", "78.91 ± 2.16"),
            ("conv/untrained-guide", "68.17 ± 2.54"),
        ],
        appendix: None,
    },
    ExperimentTable {
        experiment: "image-guidance",
        title: "Image classification, top-1 (the informative measure on 10 classes; the paper \
                reports top-5 only)",
        metric: "accuracy",
        label: "top-1 accuracy (%)",
        scale: 100.0,
        paper: &[],
        appendix: None,
    },
    ExperimentTable {
        experiment: "kd-vs-guidance",
        title: "Guidance against logit distillation and a FitNets hint: Deep FCN from a trained \
                and an untrained ResNet-18 (docs/paper.md §2.5; the paper reports this comparison in \
                words only: distillation from an untrained teacher fails, guidance still helps)",
        metric: "accuracy",
        label: "top-1 accuracy (%)",
        scale: 100.0,
        paper: &[],
        appendix: None,
    },
    ExperimentTable {
        experiment: "error-consistency",
        title: "Error consistency: the Deep FCN alone and guided by a trained ResNet-18 or ViT, \
                and the guides (docs/paper.md §2.3; the paper reports ImageNet top-5 for some of these \
                arms in Table 1)",
        metric: "accuracy",
        label: "top-1 accuracy (%)",
        scale: 100.0,
        paper: &[],
        appendix: Some(crate::error_consistency::error_consistency_table),
    },
    ExperimentTable {
        experiment: "ablations",
        title: "Ablations: the Deep FCN guided by ResNet-18 on subsets of its pairs and with each \
                distance (docs/paper.md §2.6; the paper reports these in words only: more pairs give a \
                stronger signal, ridge regression is the best distance)",
        metric: "accuracy",
        label: "top-1 accuracy (%)",
        scale: 100.0,
        paper: &[],
        appendix: None,
    },
];

/// One Markdown section: per arm, the number of seeds, the metric on the
/// test split and at the epoch selected by validation loss (mean ± sd over
/// seeds), its test difference from the base arm of the same target (paired
/// by seed, with its 95 % interval), and the paper's value.
pub fn experiment_table(
    table: &ExperimentTable,
    metrics: &[MetricRow],
    summaries: &[SummaryRow],
) -> String {
    let shown = |values: &[f64]| match values {
        [] => "–".to_string(),
        values => {
            let (mean, sd) = mean_sd(values);
            format!("{:.2} ± {:.2}", mean * table.scale, sd * table.scale)
        }
    };
    let mut out = format!(
        "## {}\n\n| arm | seeds | test {label} | validation {label}, selected epoch | test − base, paired 95 % interval | paper |\n|---|---|---|---|---|---|\n",
        table.title,
        label = table.label
    );
    for arm in arms_in_order(metrics) {
        let runs: Vec<&SummaryRow> = summaries.iter().filter(|s| s.arm == arm).collect();
        let of_arm = |split: Split, seed: u64, epoch: Option<u32>| {
            metrics
                .iter()
                .filter(|r| r.arm == arm && r.seed == seed && r.split == split)
                .filter(|r| r.metric == table.metric)
                .filter(|r| epoch.is_none() || r.epoch == epoch)
                .map(|r| r.value)
                .last()
        };
        let test: Vec<f64> = runs
            .iter()
            .filter_map(|s| of_arm(Split::Test, s.seed, None))
            .collect();
        let val: Vec<f64> = runs
            .iter()
            .filter_map(|s| of_arm(Split::Val, s.seed, Some(s.best_epoch)))
            .collect();
        let paper = table
            .paper
            .iter()
            .find(|(a, _)| *a == arm)
            .map_or("–", |(_, v)| v);
        let versus_base = base_arm(&arm)
            .filter(|base| *base != arm)
            .and_then(|base| {
                PairedDifference::of(
                    &test_values_by_seed(metrics, &arm, table.metric),
                    &test_values_by_seed(metrics, &base, table.metric),
                )
            })
            .map_or("–".to_string(), |d| d.shown(table.scale));
        out += &format!(
            "| {arm} | {} | {} | {} | {versus_base} | {paper} |\n",
            runs.len(),
            shown(&test),
            shown(&val)
        );
    }
    if let Some(appendix) = table.appendix {
        out += "\n";
        out += &appendix(metrics);
    }
    out
}

/// The arm an arm is compared with: `base` of the same target
/// (`deep-fcn/base` for `deep-fcn/trained-guide`); none for a guide alone.
pub fn base_arm(arm: &str) -> Option<String> {
    match arm.rsplit_once('/') {
        Some((_, "guide")) => None,
        Some((target, _)) => Some(format!("{target}/base")),
        None if arm == "guide" => None,
        None => Some("base".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use untrainable_results::Status;

    fn row(arm: &str, seed: u64, epoch: Option<u32>, split: Split, value: f64) -> MetricRow {
        MetricRow {
            experiment: "x".into(),
            arm: arm.into(),
            seed,
            step: 0,
            epoch,
            split,
            metric: "accuracy".into(),
            value,
        }
    }

    fn summary(arm: &str, seed: u64, best_epoch: u32) -> SummaryRow {
        SummaryRow {
            experiment: "x".into(),
            arm: arm.into(),
            seed,
            status: Status::Ok,
            status_step: None,
            steps: 10,
            final_train_loss: 0.0,
            final_val_loss: 0.0,
            best_val_loss: 0.0,
            best_epoch,
            final_val_accuracy: 0.0,
            best_val_accuracy: 0.0,
            wall_seconds: 1.0,
        }
    }

    #[test]
    fn test_and_selected_epoch_values_over_seeds_beside_the_paper() {
        let table = ExperimentTable {
            experiment: "x",
            title: "X",
            metric: "accuracy",
            label: "accuracy (%)",
            scale: 100.0,
            paper: &[("base", "14.35")],
            appendix: None,
        };
        let metrics = vec![
            row("base", 0, Some(1), Split::Val, 0.1),
            row("base", 0, Some(2), Split::Val, 0.3),
            row("base", 0, Some(2), Split::Test, 0.2),
            row("base", 1, Some(1), Split::Val, 0.5),
            row("base", 1, Some(2), Split::Val, 0.9),
            row("base", 1, Some(1), Split::Test, 0.4),
            // An arm without test rows shows a dash there.
            row("guided", 0, Some(1), Split::Val, 0.7),
        ];
        let summaries = vec![
            summary("base", 0, 2),
            summary("base", 1, 1),
            summary("guided", 0, 1),
        ];
        let text = experiment_table(&table, &metrics, &summaries);
        // Test: 20 and 40, mean 30, sd √200 = 14.14. Selected epochs: 30 and 50.
        assert!(
            text.contains("| base | 2 | 30.00 ± 14.14 | 40.00 ± 14.14 | – | 14.35 |"),
            "{text}"
        );
        assert!(
            text.contains("| guided | 1 | – | 70.00 ± 0.00 | – | – |"),
            "{text}"
        );
        assert!(text.starts_with("## X\n"), "{text}");
    }

    #[test]
    fn arms_are_compared_with_their_targets_base_paired_by_seed() {
        assert_eq!(
            base_arm("deep-fcn/trained-guide").as_deref(),
            Some("deep-fcn/base")
        );
        assert_eq!(base_arm("trained-guide").as_deref(), Some("base"));
        assert_eq!(base_arm("resnet18/guide"), None);
        assert_eq!(base_arm("guide"), None);
        let table = ExperimentTable {
            experiment: "x",
            title: "X",
            metric: "accuracy",
            label: "accuracy (%)",
            scale: 100.0,
            paper: &[],
            appendix: None,
        };
        // Guided − base: 0.05, 0.07, 0.09 (mean 7, sd 2 points, half-width
        // 4.303 · 2 / √3 = 4.97).
        let mut metrics = Vec::new();
        let mut summaries = Vec::new();
        for (seed, base, guided) in [(0, 0.5, 0.55), (1, 0.2, 0.27), (2, 0.8, 0.89)] {
            for (arm, value) in [("t/base", base), ("t/guided", guided)] {
                metrics.push(row(arm, seed, Some(1), Split::Val, value));
                metrics.push(row(arm, seed, Some(1), Split::Test, value));
                summaries.push(summary(arm, seed, 1));
            }
        }
        let text = experiment_table(&table, &metrics, &summaries);
        assert!(
            text.contains(
                "| t/guided | 3 | 57.00 ± 31.05 | 57.00 ± 31.05 | +7.00 [2.03, 11.97] | – |"
            ),
            "{text}"
        );
    }
}
