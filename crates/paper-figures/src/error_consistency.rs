//! error-consistency (docs/paper.md §2.3): the matrix of Cohen's κ between the
//! test-set correctness of the base Deep FCN, the FCN guided by ResNet-18
//! and by a ViT, and the two guides, beside the paper's matrix; drawn as two
//! heat maps and written as a Markdown table.

use std::path::Path;

use untrainable_results::{MetricRow, Split, mean_sd};

use crate::FigureError;
use crate::plot::{self, HeatMaps, Matrix};

/// The compared networks in the paper's order: arm and short name.
pub const NETWORKS: [(&str, &str); 5] = [
    ("deep-fcn/base", "FCN alone"),
    ("deep-fcn/trained-guide", "FCN ← ResNet-18"),
    ("deep-fcn-vit/trained-guide", "FCN ← ViT"),
    ("resnet18/guide", "ResNet-18"),
    ("vit/guide", "ViT"),
];

/// The metric prefix the experiment logs κ under: `error_consistency/<other arm>`.
const METRIC: &str = "error_consistency/";

/// The paper's κ (docs/paper.md §2.3) between networks `i < j` of [`NETWORKS`].
const PAPER: [((usize, usize), f64); 10] = [
    ((0, 1), 0.036),
    ((0, 2), 0.039),
    ((0, 3), 0.0029),
    ((0, 4), 0.0013),
    ((1, 2), 0.49),
    ((1, 3), 0.047),
    ((1, 4), 0.027),
    ((2, 3), 0.035),
    ((2, 4), 0.02),
    ((3, 4), 0.53),
];

fn paper_kappa(i: usize, j: usize) -> Option<f64> {
    let key = (i.min(j), i.max(j));
    PAPER.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// κ of networks `i` and `j` per seed, from the rows of `i` (test split).
fn kappas(metrics: &[MetricRow], i: usize, j: usize) -> Vec<f64> {
    let metric = format!("{METRIC}{}", NETWORKS[j].0);
    metrics
        .iter()
        .filter(|r| r.arm == NETWORKS[i].0 && r.split == Split::Test && r.metric == metric)
        .map(|r| r.value)
        .collect()
}

/// This run's matrix (mean ± sd over seeds) and the paper's, the diagonal
/// left empty (κ of a network with itself is 1 by definition).
fn matrices(metrics: &[MetricRow]) -> (Matrix, Matrix, usize) {
    let n = NETWORKS.len();
    let mut seeds = 0;
    let run = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    let values = if i == j {
                        Vec::new()
                    } else {
                        kappas(metrics, i, j)
                    };
                    seeds = seeds.max(values.len());
                    (!values.is_empty()).then(|| {
                        let (mean, sd) = mean_sd(&values);
                        (mean, format!("± {sd:.3}"))
                    })
                })
                .collect()
        })
        .collect();
    let paper = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| paper_kappa(i, j).map(|v| (v, String::new())))
                .collect()
        })
        .collect();
    (
        Matrix {
            title: "(a) this run: Fashion-MNIST test set".into(),
            cells: run,
        },
        Matrix {
            title: "(b) paper: ImageNet validation set".into(),
            cells: paper,
        },
        seeds,
    )
}

fn no_data() -> FigureError {
    FigureError::NoData {
        experiment: "error-consistency".into(),
        expected: format!(
            "test rows `{METRIC}<arm>` of the arms {}",
            NETWORKS.map(|(a, _)| a).join(", ")
        ),
    }
}

/// Two heat maps, this run's κ (mean ± sd over seeds) and the paper's.
/// Writes `<out_stem>.png` and `<out_stem>.svg`.
pub fn draw_error_consistency(metrics: &[MetricRow], out_stem: &Path) -> Result<(), FigureError> {
    let (run, paper, seeds) = matrices(metrics);
    if seeds == 0 {
        return Err(no_data());
    }
    let maps = HeatMaps {
        caption: format!(
            "error-consistency: Cohen's κ of per-example correctness, mean ± sd over {} \
             (0 = chance agreement, 1 = identical errors)",
            crate::seed_phrase(&[seeds])
        ),
        labels: NETWORKS.iter().map(|(_, name)| name.to_string()).collect(),
        matrices: vec![run, paper],
        scale: (0.0, 1.0),
        size: (1900, 860),
    };
    plot::render(&maps, out_stem)?;
    Ok(())
}

/// The κ matrix as Markdown: each pair once, this run's mean ± sd over
/// seeds beside the paper's value.
pub fn error_consistency_table(metrics: &[MetricRow]) -> String {
    let mut out = String::from(
        "## Error consistency: Cohen's κ of per-example test correctness (docs/paper.md §2.3; the \
         paper's values on ImageNet in parentheses)\n\n| |",
    );
    for (_, name) in &NETWORKS[1..] {
        out += &format!(" {name} |");
    }
    out += "\n|---|";
    out += &"---|".repeat(NETWORKS.len() - 1);
    out += "\n";
    for i in 0..NETWORKS.len() - 1 {
        out += &format!("| {} |", NETWORKS[i].1);
        for j in 1..NETWORKS.len() {
            if j <= i {
                out += " |";
                continue;
            }
            let values = kappas(metrics, i, j);
            let run = if values.is_empty() {
                "–".to_string()
            } else {
                let (mean, sd) = mean_sd(&values);
                format!("{mean:.3} ± {sd:.3}")
            };
            let paper = paper_kappa(i, j).map_or("–".to_string(), |v| v.to_string());
            out += &format!(" {run} ({paper}) |");
        }
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kappa_row(arm: &str, other: &str, seed: u64, value: f64) -> MetricRow {
        MetricRow {
            experiment: "error-consistency".into(),
            arm: arm.into(),
            seed,
            step: 250,
            epoch: Some(25),
            split: Split::Test,
            metric: format!("{METRIC}{other}"),
            value,
        }
    }

    /// κ of every pair for two seeds: 0.1·(i + j) + 0.01·seed.
    fn rows() -> Vec<MetricRow> {
        let mut rows = Vec::new();
        for seed in 0..2 {
            for (i, (a, _)) in NETWORKS.iter().enumerate() {
                for (j, (b, _)) in NETWORKS.iter().enumerate() {
                    if i != j {
                        let v = 0.1 * (i + j) as f64 + 0.01 * seed as f64;
                        rows.push(kappa_row(a, b, seed, v));
                    }
                }
            }
        }
        rows
    }

    #[test]
    fn every_pair_once_with_mean_sd_and_the_paper() {
        let table = error_consistency_table(&rows());
        // Networks 1 and 2: 0.30 and 0.31, mean 0.305, sd 0.00707.
        assert!(
            table.contains("| FCN ← ResNet-18 | | 0.305 ± 0.007 (0.49) |"),
            "{table}"
        );
        // ResNet-18 against ViT (3, 4): 0.70 and 0.71 against the paper's 0.53.
        assert!(
            table.contains("| ResNet-18 | | | | 0.705 ± 0.007 (0.53) |"),
            "{table}"
        );
        assert_eq!(table.lines().filter(|l| l.starts_with("| ")).count(), 5);
        let empty = error_consistency_table(&[]);
        assert!(empty.contains("| FCN alone | – (0.036) |"), "{empty}");
    }

    #[test]
    fn the_figure_shows_both_matrices_and_needs_kappa_rows() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("error-consistency");
        draw_error_consistency(&rows(), &stem).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("error-consistency.svg")).unwrap();
        for text in [
            "(a) this run",
            "(b) paper",
            "FCN ← ViT",
            "± 0.007",
            "0.49",
            "0.036",
            "2 seeds",
        ] {
            assert!(svg.contains(text), "no `{text}` in the figure");
        }
        let err = draw_error_consistency(&[], &stem).unwrap_err();
        assert!(err.to_string().contains("error_consistency/"), "{err}");
    }
}
