//! The binary end to end at the smoke preset, on the real Fashion-MNIST files
//! (installed by `scripts/setup-data.sh`, which CI runs first).

use std::process::Output;

use untrainable_results::{Split, read_metrics, read_predictions};
use untrainable_test_support::{
    fashion_mnist_installed, read_parquet, regime_gates, run_experiment, run_paper_start, strings,
    text,
};

fn exp(args: &[&str]) -> Output {
    run_experiment(env!("CARGO_BIN_EXE_exp-error-consistency"), args)
}

const MATRIX: [&str; 5] = [
    "deep-fcn/base",
    "deep-fcn/trained-guide",
    "deep-fcn-vit/trained-guide",
    "resnet18/guide",
    "vit/guide",
];

#[test]
fn smoke_preset_logs_kappa_between_every_two_networks_from_their_predictions() {
    if !fashion_mnist_installed() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let figures = out.path().join("figures");
    let smoke = ["--preset", "smoke", "--quiet", "--out", out_dir];
    let run = exp(&[&smoke[..], &["--figures", figures.to_str().unwrap()]].concat());
    assert!(run.status.success(), "{}", text(&run.stderr));
    for ext in ["png", "svg"] {
        let figure = figures.join(format!("error-consistency.{ext}"));
        assert!(
            std::fs::metadata(&figure).is_ok_and(|m| m.len() > 1000),
            "no figure at {}",
            figure.display()
        );
    }
    let dir = out.path().join("error-consistency");
    assert_eq!(
        regime_gates(&dir).len(),
        2,
        "one row per gate of the preset"
    );
    let summary = read_parquet(&dir.join("summary.parquet"));
    assert_eq!(
        strings(&summary, "arm"),
        [
            "resnet18/guide",
            "deep-fcn/base",
            "deep-fcn/trained-guide",
            "vit/guide",
            "deep-fcn-vit/base",
            "deep-fcn-vit/trained-guide"
        ]
    );

    // Every network predicted the same 64 test images.
    let predictions = read_predictions(dir.join("predictions.parquet")).unwrap();
    let hits = |arm: &str| -> Vec<bool> {
        let mut own: Vec<_> = predictions.iter().filter(|p| p.arm == arm).collect();
        own.sort_by_key(|p| p.example);
        assert_eq!(own.len(), 64, "{arm}");
        own.iter().map(|p| p.label == p.predicted).collect()
    };
    // The two base runs are the same run.
    assert_eq!(hits("deep-fcn/base"), hits("deep-fcn-vit/base"));

    // κ recomputed here from the predictions, by its definition.
    let kappa = |a: &[bool], b: &[bool]| {
        let n = a.len() as f64;
        let (pa, pb) = (
            a.iter().filter(|&&x| x).count() as f64 / n,
            b.iter().filter(|&&x| x).count() as f64 / n,
        );
        let expected = pa * pb + (1.0 - pa) * (1.0 - pb);
        let observed = a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / n;
        (observed - expected) / (1.0 - expected)
    };
    let metrics = read_metrics(dir.join("metrics.parquet")).unwrap();
    let mut pairs = 0;
    for a in MATRIX {
        for b in MATRIX.iter().filter(|b| **b != a) {
            let row = metrics
                .iter()
                .find(|r| r.arm == a && r.metric == format!("error_consistency/{b}"));
            let expected = kappa(&hits(a), &hits(b));
            if expected.is_nan() {
                assert!(row.is_none(), "{a} vs {b}: undefined κ logged");
                continue;
            }
            let row = row.unwrap_or_else(|| panic!("no κ of {a} and {b}"));
            assert_eq!(row.split, Split::Test);
            assert!((row.value - expected).abs() < 1e-12, "{a} vs {b}");
            pairs += 1;
        }
    }
    assert!(pairs >= 10, "only {pairs} defined pairs");
    assert!(
        !metrics
            .iter()
            .any(|r| r.arm == "deep-fcn-vit/base" && r.metric.starts_with("error_consistency")),
        "the repeated base run is not in the matrix"
    );

    // --resume keeps every run and their predictions: the same κ rows.
    let resumed = exp(&[&smoke[..], &["--resume"]].concat());
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert_eq!(read_metrics(dir.join("metrics.parquet")).unwrap(), metrics);
}

#[test]
fn every_preset_resolves_with_both_guides() {
    for preset in ["smoke", "cpu", "paper", "paper-fmnist"] {
        let run = exp(&["--preset", preset, "--dry-run"]);
        assert!(run.status.success(), "{preset}: {}", text(&run.stderr));
        let stdout = text(&run.stdout);
        let targets: String = stdout
            .split("targets = [")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(
            targets, "\"deep-fcn\",\"deep-fcn-vit\",",
            "{preset}: {stdout}"
        );
        for section in ["[deep_fcn]", "[resnet18]", "[vit]"] {
            assert!(stdout.contains(section), "{preset}: no {section}");
        }
    }
}

/// The paper preset builds the ImageNet Deep FCN, ResNet-18 and ViT-B/16 at
/// 3×224×224 and trains one step of each guide and arm.
#[test]
#[ignore = "slow: builds the paper-sized networks and trains one step of each (minutes)"]
fn paper_preset_starts() {
    if !fashion_mnist_installed() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let run = run_paper_start(env!("CARGO_BIN_EXE_exp-error-consistency"), out.path(), 4);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let summary = read_parquet(&out.path().join("error-consistency").join("summary.parquet"));
    assert!(
        strings(&summary, "status").iter().all(|s| s == "ok"),
        "{summary}"
    );
    assert_eq!(summary.height(), 6);
}

#[test]
fn bad_input_gets_an_error_that_names_it() {
    let expect_error = |args: &[&str], needle: &str| {
        let run = exp(args);
        assert!(!run.status.success(), "{args:?} succeeded");
        let err = text(&run.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    let dry = ["--preset", "smoke", "--dry-run", "--set"];
    expect_error(
        &[
            &dry[..],
            &["vit.image_size=14", "--set", "vit.patch_size=7"],
        ]
        .concat(),
        "set vit.image_size = 28",
    );
    expect_error(
        &[&dry[..], &["vit.patch_size=5"]].concat(),
        "vit.patch_size",
    );
    expect_error(&[&dry[..], &["vit.classes=4"]].concat(), "vit.classes = 10");
}
