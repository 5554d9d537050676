//! image-guidance (docs/paper.md §2.1, Table 1): the image panels of the paper's
//! training-curve figure, for each target that has rows.

use std::path::Path;

use untrainable_results::{MetricRow, Split};

use crate::plot::{self, Curve, Figure, Panel, role_color};
use crate::stats::{self, StepBins, arms_in_order, binned_mean_sd, mean_sd_by_x, seeds_per_arm};
use crate::{FigureError, STEP_BINS, seed_phrase, train_metric};

/// The targets in the paper's order: arm prefix and what the panel calls it.
const TARGETS: [(&str, &str); 3] = [
    ("deep-fcn", "Deep FCN"),
    ("wide-fcn", "Wide FCN"),
    ("conv", "Deep ConvNet"),
];

/// The arms of each target, one colour each in every panel.
const ROLES: [&str; 3] = ["base", "trained-guide", "untrained-guide"];

/// For each target with rows (`<target>/<arm>`): (a) the training task loss
/// per step, binned, and (b) the validation loss per epoch of its arms
/// `base`, `trained-guide` and `untrained-guide`; line = mean over seeds,
/// band = ±1 sd. Writes `<out_stem>.png` and `<out_stem>.svg`.
pub fn draw_image_guidance(metrics: &[MetricRow], out_stem: &Path) -> Result<(), FigureError> {
    let train = train_metric(metrics);
    let is_train =
        |r: &MetricRow| r.split == Split::Train && r.epoch.is_none() && r.metric == train;
    let is_val = |r: &MetricRow| r.split == Split::Val && r.epoch.is_some() && r.metric == "loss";
    let arms = arms_in_order(metrics);
    let of_target = |target: &str| -> Vec<(usize, String)> {
        ROLES
            .iter()
            .enumerate()
            .map(|(i, role)| (i, format!("{target}/{role}")))
            .filter(|(_, arm)| arms.contains(arm))
            .collect()
    };
    let targets: Vec<(&str, &str)> = TARGETS
        .into_iter()
        .filter(|(t, _)| !of_target(t).is_empty())
        .collect();
    if targets.is_empty() || !metrics.iter().any(|r| is_train(r) || is_val(r)) {
        return Err(FigureError::NoData {
            experiment: "image-guidance".into(),
            expected: "per-step training `task_loss` or per-epoch validation `loss` rows of arms \
                       named deep-fcn/…, wide-fcn/… or conv/…"
                .into(),
        });
    }
    let epoch = |r: &MetricRow| r.epoch.map(u64::from);
    let mut panels = Vec::new();
    let mut shown = Vec::new();
    for (t, (target, title)) in targets.iter().enumerate() {
        let target_arms = of_target(target);
        let prefix = format!("{target}/");
        // Each target's steps are binned on their own: the runs differ in length.
        let in_target = |r: &MetricRow| r.arm.starts_with(&prefix) && is_train(r);
        let bins = StepBins::spanning(metrics, in_target, STEP_BINS);
        let bin_note = match bins {
            Some(b) if b.width > 1 => format!(" (means of {} steps)", b.width),
            _ => String::new(),
        };
        let curves = |bands: &dyn Fn(&str) -> Vec<stats::Band>| -> Vec<Curve> {
            target_arms
                .iter()
                .map(|(role, arm)| Curve {
                    label: arm.clone(),
                    color: role_color(arm, *role),
                    bands: bands(arm),
                    paper: None,
                })
                .collect()
        };
        let letter = |k: usize| char::from(b'a' + (2 * t + k) as u8);
        panels.push(Panel {
            title: format!("({}) {title}: training loss{bin_note}", letter(0)),
            x_label: "step".into(),
            y_label: "task loss".into(),
            curves: curves(&|arm| {
                bins.map(|b| binned_mean_sd(metrics, arm, is_train, &b))
                    .unwrap_or_default()
            }),
            y_bounds: (0.0, f64::INFINITY),
            empty_note: "no per-step training loss rows".into(),
        });
        panels.push(Panel {
            title: format!("({}) {title}: validation loss", letter(1)),
            x_label: "epoch".into(),
            y_label: "task loss".into(),
            curves: curves(&|arm| mean_sd_by_x(metrics, arm, is_val, epoch)),
            y_bounds: (0.0, f64::INFINITY),
            empty_note: "no validation loss rows".into(),
        });
        shown.extend(target_arms.into_iter().map(|(_, arm)| arm));
    }
    let figure = Figure {
        caption: format!(
            "image-guidance: targets alone and guided by a trained or an untrained ResNet, \
             mean over {}, band = ±1 sd",
            seed_phrase(&seeds_per_arm(metrics, &shown))
        ),
        legend: ROLES
            .iter()
            .enumerate()
            .map(|(i, role)| (role.to_string(), role_color(role, i)))
            .collect(),
        size: crate::plot::grid_size(panels.len(), (600, 620)),
        panels,
    };
    plot::render(&figure, out_stem)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(arm: &str, seed: u64, step: u64, epoch: Option<u32>, metric: &str, v: f64) -> MetricRow {
        MetricRow {
            experiment: "image-guidance".into(),
            arm: arm.into(),
            seed,
            step,
            epoch,
            split: if epoch.is_some() {
                Split::Val
            } else {
                Split::Train
            },
            metric: metric.into(),
            value: v,
        }
    }

    fn rows(targets: &[&str]) -> Vec<MetricRow> {
        let mut rows = Vec::new();
        for seed in 0..2 {
            rows.push(row("resnet18/guide", seed, 0, None, "task_loss", 2.0));
            for target in targets {
                for (k, role) in ROLES.iter().enumerate() {
                    let arm = format!("{target}/{role}");
                    for step in 0..30 {
                        let v = 2.0 / (1.0 + step as f64 * (k + 1) as f64) + seed as f64 * 0.1;
                        rows.push(row(&arm, seed, step, None, "task_loss", v));
                    }
                    for epoch in 1..=3 {
                        let v = 1.5 - 0.1 * epoch as f64 + seed as f64 * 0.05;
                        rows.push(row(&arm, seed, 10 * epoch as u64, Some(epoch), "loss", v));
                    }
                }
            }
        }
        rows
    }

    fn png_width(path: &Path) -> u32 {
        let bytes = std::fs::read(path).unwrap();
        u32::from_be_bytes(bytes[16..20].try_into().unwrap())
    }

    #[test]
    fn two_panels_per_target_present() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("image-guidance");
        draw_image_guidance(&rows(&["deep-fcn", "wide-fcn", "conv"]), &stem).unwrap();
        // Six panels in two rows of three.
        let png = std::fs::read(dir.path().join("image-guidance.png")).unwrap();
        let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        assert_eq!((size(16), size(20)), (1800, 1240));
        let svg = std::fs::read_to_string(dir.path().join("image-guidance.svg")).unwrap();
        for title in [
            "(a) Deep FCN: training loss",
            "(d) Wide FCN: validation loss",
            "(f) Deep ConvNet: validation loss",
        ] {
            assert!(svg.contains(title), "no panel titled {title}");
        }

        // The Deep FCN alone (the paper preset's test) draws its two panels.
        draw_image_guidance(&rows(&["deep-fcn"]), &stem).unwrap();
        assert_eq!(png_width(&dir.path().join("image-guidance.png")), 1200);
    }

    #[test]
    fn rows_of_no_target_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let only_guide = vec![row("resnet18/guide", 0, 0, None, "task_loss", 2.0)];
        let err = draw_image_guidance(&only_guide, &dir.path().join("x")).unwrap_err();
        assert!(err.to_string().contains("deep-fcn/"), "{err}");
    }
}
