//! ablations (docs/paper.md §2.6): the Deep FCN guided by ResNet-18 on subsets of
//! its layer pairs and with each distance, and the intrinsic dimension of
//! its layers over training.

use std::path::Path;

use untrainable_results::{MetricRow, Split, mean_sd};

use crate::plot::{self, Curve, Figure, Panel, role_color};
use crate::stats::{Band, arms_in_order, mean_sd_by_x, seeds_per_arm};
use crate::{FigureError, seed_phrase};

/// The arms of each panel (after `deep-fcn/`) and their labels.
const LAYERS: [(&str, &str); 6] = [
    ("base", "base"),
    ("all-pairs", "all pairs"),
    ("first-half", "first half"),
    ("second-half", "second half"),
    ("every-other", "every other"),
    ("last-pair", "last pair"),
];
const COUNTS: [&str; 5] = [
    "last-pair",
    "evenly-2",
    "evenly-5",
    "every-other",
    "all-pairs",
];
const DISTANCES: [(&str, &str); 7] = [
    ("base", "base"),
    ("all-pairs", "linear CKA"),
    ("linear-cka-debiased", "debiased CKA"),
    ("rbf-cka", "RBF CKA"),
    ("rsa", "RSA"),
    ("ridge", "ridge"),
    ("procrustes", "Procrustes"),
];
const DIMENSION: [(&str, &str); 3] = [
    ("base", "base"),
    ("all-pairs", "trained ResNet-18"),
    ("untrained-guide", "untrained ResNet-18"),
];

/// The metric prefix of the intrinsic dimension rows: `twonn/<tap>`.
const TWONN: &str = "twonn/";
/// Logged once by a guided arm: how many pairs its term sums.
const GUIDED_PAIRS: &str = "guided_pairs";

fn arm(name: &str) -> String {
    format!("deep-fcn/{name}")
}

/// Curves of the listed arms that have rows, coloured by their place in the list.
fn curves(arms: &[(&str, &str)], bands: impl Fn(&str) -> Vec<Band>) -> Vec<Curve> {
    arms.iter()
        .enumerate()
        .map(|(i, (name, label))| Curve {
            label: label.to_string(),
            color: role_color(name, i),
            bands: bands(&arm(name)),
            paper: None,
        })
        .filter(|c| !c.bands.is_empty())
        .collect()
}

/// Test accuracy against the number of guided pairs: one point per arm of
/// [`COUNTS`] that logged its count, mean ± sd over seeds.
fn accuracy_by_pairs(metrics: &[MetricRow]) -> Vec<Band> {
    let mut bands: Vec<Band> = COUNTS
        .iter()
        .filter_map(|name| {
            let arm = arm(name);
            let values = |metric: &str, split: Split| -> Vec<f64> {
                metrics
                    .iter()
                    .filter(|r| r.arm == arm && r.metric == metric && r.split == split)
                    .map(|r| r.value)
                    .collect()
            };
            let pairs = *values(GUIDED_PAIRS, Split::Train).first()?;
            let accuracy = values("accuracy", Split::Test);
            if accuracy.is_empty() {
                return None;
            }
            let (mean, sd) = mean_sd(&accuracy);
            Some(Band {
                x: pairs,
                mean,
                sd,
                seeds: accuracy.len(),
            })
        })
        .collect();
    bands.sort_by(|a, b| a.x.total_cmp(&b.x));
    bands
}

/// (a) validation loss per epoch by which layers are guided; (b) test
/// accuracy by the number of guided pairs, the base at 0; (c) validation
/// accuracy per epoch by guidance distance; (d) the TwoNN intrinsic
/// dimension averaged over the FCN's layers per epoch and (e) per layer at
/// the last epoch, base against guided. Line = mean over seeds, band = ±1 sd.
/// Writes `<out_stem>.png` and `<out_stem>.svg`.
pub fn draw_ablations(metrics: &[MetricRow], out_stem: &Path) -> Result<(), FigureError> {
    let is_val = |metric: &'static str| {
        move |r: &MetricRow| r.split == Split::Val && r.epoch.is_some() && r.metric == metric
    };
    let is_twonn = |r: &MetricRow| r.split == Split::Val && r.metric.starts_with(TWONN);
    if !metrics
        .iter()
        .any(|r| is_val("loss")(r) && r.arm.starts_with("deep-fcn/"))
    {
        return Err(FigureError::NoData {
            experiment: "ablations".into(),
            expected: "per-epoch validation `loss` rows of arms named deep-fcn/…".into(),
        });
    }
    let epoch = |r: &MetricRow| r.epoch.map(u64::from);
    // Layers in the order the FCN logs them.
    let mut taps: Vec<&str> = Vec::new();
    for r in metrics.iter().filter(|r| is_twonn(r)) {
        if !taps.contains(&&r.metric[TWONN.len()..]) {
            taps.push(&r.metric[TWONN.len()..]);
        }
    }
    let last_epoch = metrics
        .iter()
        .filter(|r| is_twonn(r))
        .filter_map(|r| r.epoch)
        .max();
    let layer = |r: &MetricRow| {
        let tap = r.metric.strip_prefix(TWONN)?;
        if r.epoch != last_epoch {
            return None;
        }
        taps.iter().position(|t| *t == tap).map(|i| i as u64)
    };

    let base_accuracy: Vec<f64> = metrics
        .iter()
        .filter(|r| r.arm == arm("base") && r.split == Split::Test && r.metric == "accuracy")
        .map(|r| r.value)
        .collect();
    let mut count_curves = vec![Curve {
        label: "guided by the trained ResNet-18".into(),
        color: role_color("trained-guide", 1),
        bands: accuracy_by_pairs(metrics),
        paper: None,
    }];
    if !base_accuracy.is_empty() {
        let (mean, sd) = mean_sd(&base_accuracy);
        count_curves.push(Curve {
            label: "base (no pairs)".into(),
            color: role_color("base", 0),
            bands: vec![Band {
                x: 0.0,
                mean,
                sd,
                seeds: base_accuracy.len(),
            }],
            paper: None,
        });
    }

    let panels = vec![
        Panel {
            title: "(a) layers guided: validation loss".into(),
            x_label: "epoch".into(),
            y_label: "task loss".into(),
            curves: curves(&LAYERS, |a| mean_sd_by_x(metrics, a, is_val("loss"), epoch)),
            y_bounds: (0.0, f64::INFINITY),
            empty_note: "no validation loss rows".into(),
        },
        Panel {
            title: "(b) number of guided pairs: test accuracy".into(),
            x_label: "guided pairs".into(),
            y_label: "test top-1 accuracy".into(),
            curves: count_curves,
            y_bounds: (0.0, 1.0),
            empty_note: "no test accuracy or guided_pairs rows".into(),
        },
        Panel {
            title: "(c) guidance distance: validation accuracy".into(),
            x_label: "epoch".into(),
            y_label: "accuracy".into(),
            curves: curves(&DISTANCES, |a| {
                mean_sd_by_x(metrics, a, is_val("accuracy"), epoch)
            }),
            y_bounds: (0.0, 1.0),
            empty_note: "no validation accuracy rows".into(),
        },
        Panel {
            title: "(d) intrinsic dimension, mean over layers".into(),
            x_label: "epoch".into(),
            y_label: "TwoNN dimension".into(),
            curves: curves(&DIMENSION, |a| mean_sd_by_x(metrics, a, is_twonn, epoch)),
            y_bounds: (0.0, f64::INFINITY),
            empty_note: "no twonn/<layer> rows (train.intrinsic_dimension = true)".into(),
        },
        Panel {
            title: "(e) intrinsic dimension per layer, last epoch".into(),
            x_label: "layer (input side first)".into(),
            y_label: "TwoNN dimension".into(),
            curves: curves(&DIMENSION, |a| mean_sd_by_x(metrics, a, is_twonn, layer)),
            y_bounds: (0.0, f64::INFINITY),
            empty_note: "no twonn/<layer> rows (train.intrinsic_dimension = true)".into(),
        },
    ];
    let arms = arms_in_order(metrics);
    let figure = Figure {
        caption: format!(
            "ablations: Deep FCN guided by ResNet-18 on Fashion-MNIST, mean over {}, band = ±1 sd",
            seed_phrase(&seeds_per_arm(metrics, &arms))
        ),
        // Each panel labels its own curves.
        legend: Vec::new(),
        size: crate::plot::grid_size(panels.len(), (600, 640)),
        panels,
    };
    plot::render(&figure, out_stem)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        arm: &str,
        seed: u64,
        epoch: Option<u32>,
        split: Split,
        metric: &str,
        v: f64,
    ) -> MetricRow {
        MetricRow {
            experiment: "ablations".into(),
            arm: format!("deep-fcn/{arm}"),
            seed,
            step: 10 * u64::from(epoch.unwrap_or(0)),
            epoch,
            split,
            metric: metric.into(),
            value: v,
        }
    }

    fn rows() -> Vec<MetricRow> {
        let mut rows = Vec::new();
        for seed in 0..2 {
            let s = seed as f64 * 0.01;
            for (k, name) in [
                "base",
                "all-pairs",
                "evenly-2",
                "last-pair",
                "ridge",
                "untrained-guide",
            ]
            .iter()
            .enumerate()
            {
                let pairs = match *name {
                    "all-pairs" | "ridge" | "untrained-guide" => Some(21.0),
                    "evenly-2" => Some(2.0),
                    "last-pair" => Some(1.0),
                    _ => None,
                };
                if let Some(p) = pairs {
                    rows.push(row(name, seed, None, Split::Train, GUIDED_PAIRS, p));
                }
                for epoch in 1..=3 {
                    let e = Some(epoch);
                    let v = 1.0 - 0.1 * f64::from(epoch) + 0.02 * k as f64 + s;
                    rows.push(row(name, seed, e, Split::Val, "loss", v));
                    rows.push(row(name, seed, e, Split::Val, "accuracy", 1.0 - v));
                    for layer in 0..4 {
                        let d = 10.0 - f64::from(epoch) - layer as f64 + k as f64 + s;
                        rows.push(row(
                            name,
                            seed,
                            e,
                            Split::Val,
                            &format!("twonn/fc{layer}"),
                            d,
                        ));
                    }
                }
                rows.push(row(
                    name,
                    seed,
                    Some(3),
                    Split::Test,
                    "accuracy",
                    0.5 + 0.01 * k as f64 + s,
                ));
            }
        }
        rows
    }

    #[test]
    fn accuracy_against_the_number_of_pairs_by_hand() {
        let bands = accuracy_by_pairs(&rows());
        let got: Vec<(f64, f64, usize)> = bands.iter().map(|b| (b.x, b.mean, b.seeds)).collect();
        // last-pair (k = 3), evenly-2 (k = 2), all-pairs (k = 1): 0.5 + 0.01 k + 0.005.
        let expected = [(1.0, 0.535, 2), (2.0, 0.525, 2), (21.0, 0.515, 2)];
        assert_eq!(got.len(), expected.len());
        for ((x, mean, seeds), (ex, emean, eseeds)) in got.iter().zip(expected) {
            assert_eq!((*x, *seeds), (ex, eseeds));
            assert!((mean - emean).abs() < 1e-12, "{x}: {mean}");
        }
    }

    #[test]
    fn five_panels_with_their_own_legends() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("ablations");
        draw_ablations(&rows(), &stem).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("ablations.svg")).unwrap();
        for text in [
            "(a) layers guided",
            "(b) number of guided pairs",
            "(e) intrinsic dimension per layer",
            "untrained ResNet-18",
            "base (no pairs)",
            "ridge",
            "2 seeds",
        ] {
            assert!(svg.contains(text), "no `{text}` in the figure");
        }
        let err = draw_ablations(&[], &stem).unwrap_err();
        assert!(err.to_string().contains("deep-fcn/"), "{err}");
    }
}
