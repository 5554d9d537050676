//! The fcn-warmup figure drawn from synthetic rows.

use std::path::Path;

use paper_figures::draw_fcn_warmup;
use untrainable_results::{MetricRow, Split};

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

fn row(
    arm: &str,
    seed: u64,
    step: u64,
    epoch: Option<u32>,
    split: Split,
    metric: &str,
    value: f64,
) -> MetricRow {
    MetricRow {
        experiment: "fcn-warmup".into(),
        arm: arm.into(),
        seed,
        step,
        epoch,
        split,
        metric: metric.into(),
        value,
    }
}

/// Two arms × two seeds: a noisy per-step loss and five epochs of
/// validation loss and accuracy, the seeds apart so that bands have width.
fn synthetic() -> Vec<MetricRow> {
    let mut rows = Vec::new();
    for (a, arm) in ["base", "guided"].into_iter().enumerate() {
        for seed in 0..2u64 {
            let offset = 0.1 * seed as f64 + 0.4 * a as f64;
            for step in 0..500u64 {
                let wiggle = 0.3 * (((step * 7919 + seed * 104_729) % 97) as f64 / 97.0 - 0.5);
                let value = 2.3 * (-(step as f64) / 200.0).exp() + 0.3 + offset + wiggle;
                rows.push(row(arm, seed, step, None, Split::Train, "loss", value));
            }
            for epoch in 0..5u32 {
                let step = 100 * (epoch as u64 + 1);
                rows.push(row(
                    arm,
                    seed,
                    step,
                    Some(epoch),
                    Split::Val,
                    "loss",
                    1.5 / (epoch as f64 + 1.0) + offset,
                ));
                rows.push(row(
                    arm,
                    seed,
                    step,
                    Some(epoch),
                    Split::Val,
                    "accuracy",
                    0.5 + 0.08 * epoch as f64 - offset / 4.0,
                ));
            }
        }
    }
    rows
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (be(16), be(20))
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn fcn_warmup_figure_writes_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figures");
    draw_fcn_warmup(&synthetic(), &out.join("fcn-warmup")).unwrap();

    let png = std::fs::read(out.join("fcn-warmup.png")).unwrap();
    assert!(
        png.len() > 10_000,
        "suspiciously small PNG: {} bytes",
        png.len()
    );
    assert_eq!(png[..8], PNG_SIGNATURE);
    assert_eq!(png_size(&png), (1800, 600));

    let svg = std::fs::read_to_string(out.join("fcn-warmup.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{}",
        &svg[..svg.len().min(80)]
    );
    for text in [
        "base",
        "guided",
        "fcn-warmup: mean over 2 seeds",
        "validation accuracy",
        "epoch",
        "step",
    ] {
        assert!(svg.contains(text), "SVG lacks {text:?}");
    }
    assert_eq!(
        file_names(&out),
        ["fcn-warmup.png", "fcn-warmup.svg"],
        "temporary files left behind"
    );
}

#[test]
fn redrawing_replaces_the_figure() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("fcn-warmup");
    let rows = synthetic();
    draw_fcn_warmup(&rows, &stem).unwrap();
    let one_arm: Vec<MetricRow> = rows.into_iter().filter(|r| r.arm == "base").collect();
    draw_fcn_warmup(&one_arm, &stem).unwrap();
    let svg = std::fs::read_to_string(dir.path().join("fcn-warmup.svg")).unwrap();
    assert!(svg.contains("base") && !svg.contains("guided"));
    assert_eq!(file_names(dir.path()), ["fcn-warmup.png", "fcn-warmup.svg"]);
}

#[test]
fn rows_without_the_figure_metrics_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![row("base", 0, 1, None, Split::Train, "guidance_loss", 1.0)];
    let err = draw_fcn_warmup(&rows, &dir.path().join("fcn-warmup")).unwrap_err();
    assert!(
        err.to_string().contains("cargo run -p exp-fcn-warmup"),
        "{err}"
    );
    assert!(draw_fcn_warmup(&[], &dir.path().join("fcn-warmup")).is_err());
}

#[test]
fn a_single_seed_and_a_single_epoch_still_draw() {
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![
        row("base", 0, 0, None, Split::Train, "loss", 2.0),
        row("base", 0, 1, None, Split::Train, "loss", f64::NAN),
        row("base", 0, 1, Some(0), Split::Val, "loss", 1.0),
        row("base", 0, 1, Some(0), Split::Val, "accuracy", 0.5),
    ];
    draw_fcn_warmup(&rows, &dir.path().join("one")).unwrap();
    let svg = std::fs::read_to_string(dir.path().join("one.svg")).unwrap();
    assert!(svg.contains("mean over 1 seed,"));
}
