//! The binary end to end at the smoke preset, on the real Fashion-MNIST files
//! (installed by `scripts/setup-data.sh`, which CI runs first).

use std::process::Output;

use polars::prelude::*;
use untrainable_test_support::{
    fashion_mnist_installed, read_parquet, regime_gates, run_experiment, run_paper_start, strings,
    text,
};

fn exp(args: &[&str]) -> Output {
    run_experiment(env!("CARGO_BIN_EXE_exp-ablations"), args)
}

/// The smoke preset's arms: one of each kind.
const ARMS: [&str; 7] = [
    "resnet18/guide",
    "deep-fcn/base",
    "deep-fcn/all-pairs",
    "deep-fcn/first-half",
    "deep-fcn/evenly-2",
    "deep-fcn/ridge",
    "deep-fcn/untrained-guide",
];

/// The values of `metric` per arm, in row order.
fn values(metrics: &DataFrame, arm: &str, metric: &str) -> Vec<f64> {
    let (arms, names) = (strings(metrics, "arm"), strings(metrics, "metric"));
    let value = metrics.column("value").unwrap().f64().unwrap();
    (0..arms.len())
        .filter(|&i| arms[i] == arm && names[i] == metric)
        .map(|i| value.get(i).unwrap())
        .collect()
}

#[test]
fn smoke_preset_guides_each_subset_with_each_distance_and_logs_the_intrinsic_dimension() {
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
        let figure = figures.join(format!("ablations.{ext}"));
        assert!(
            std::fs::metadata(&figure).is_ok_and(|m| m.len() > 1000),
            "no figure at {}",
            figure.display()
        );
    }

    let dir = out.path().join("ablations");
    assert_eq!(
        regime_gates(&dir).len(),
        5,
        "one row per gate of the preset"
    );
    let summary = read_parquet(&dir.join("summary.parquet"));
    assert_eq!(strings(&summary, "arm"), ARMS);
    assert!(
        strings(&summary, "status").iter().all(|s| s == "ok"),
        "{summary}"
    );
    let metrics = read_parquet(&dir.join("metrics.parquet"));
    // The first half is ⌈n/2⌉ of the n pairs, evenly-2 the first and the last.
    let pairs = |arm: &str| values(&metrics, &format!("deep-fcn/{arm}"), "guided_pairs");
    let all = pairs("all-pairs");
    assert_eq!(all.len(), 1);
    assert_eq!(pairs("first-half"), [all[0].div_euclid(2.0) + all[0] % 2.0]);
    assert_eq!(pairs("evenly-2"), [2.0]);
    assert_eq!(pairs("ridge"), all);
    assert!(pairs("base").is_empty());
    // Every arm logs the intrinsic dimension of every FCN layer at each of the 2 epochs.
    let names = strings(&metrics, "metric");
    let layers = {
        let mut l: Vec<&String> = names.iter().filter(|m| m.starts_with("twonn/")).collect();
        l.sort();
        l.dedup();
        l.len()
    };
    assert!(layers >= 6, "{layers} layers with a TwoNN dimension");
    for arm in &ARMS[1..] {
        let arms = strings(&metrics, "arm");
        let rows = (0..arms.len())
            .filter(|&i| arms[i] == *arm && names[i].starts_with("twonn/"))
            .count();
        assert_eq!(rows, 2 * layers, "{arm}");
    }

    // Every run is finished: --resume keeps all six arms and the stored guide.
    let resumed = exp(&[&smoke[..], &["--resume"]].concat());
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    let notes = text(&resumed.stderr);
    assert_eq!(
        notes.matches("kept from the earlier run").count(),
        6,
        "{notes}"
    );
    assert_eq!(read_parquet(&dir.join("metrics.parquet")), metrics);
}

#[test]
fn every_preset_resolves_with_every_arm() {
    for (preset, arms) in [
        ("smoke", 6),
        ("cpu", 14),
        ("paper", 14),
        ("paper-fmnist", 14),
    ] {
        let run = exp(&["--preset", preset, "--dry-run"]);
        assert!(run.status.success(), "{preset}: {}", text(&run.stderr));
        let stdout = text(&run.stdout);
        assert!(stdout.contains("intrinsic_dimension = true"), "{preset}");
        assert_eq!(stdout.matches("[[arms]]").count(), arms, "{preset}");
        for distance in [
            "rbf-cka",
            "rsa",
            "ridge",
            "procrustes",
            "linear-cka-debiased",
        ] {
            assert!(
                preset == "smoke" || stdout.contains(&format!("distance = \"{distance}\"")),
                "{preset}: no {distance} arm"
            );
        }
    }
}

/// The paper preset builds the ImageNet Deep FCN (359.8 M parameters) and
/// torchvision ResNet-18 at 3×224×224 and trains one step of the guide and
/// of every arm; batches of 8 keep it short on two cores.
#[test]
#[ignore = "slow: builds the paper-sized networks and trains one step of each (minutes)"]
fn paper_preset_starts() {
    if !fashion_mnist_installed() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let run = run_paper_start(env!("CARGO_BIN_EXE_exp-ablations"), out.path(), 8);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let summary = read_parquet(&out.path().join("ablations").join("summary.parquet"));
    assert_eq!(strings(&summary, "arm").len(), 15);
    assert!(
        strings(&summary, "status").iter().all(|s| s == "ok"),
        "{summary}"
    );
}

#[test]
fn bad_arms_get_an_error_that_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let smoke = include_str!("../presets/smoke.toml");
    // Arms are edited in a config file: the smoke preset with one value broken.
    for (from, to, needle, dry) in [
        (
            "pairs = \"first-half\"",
            "pairs = \"middle\"",
            "unknown variant `middle`",
            true,
        ),
        (
            "distance = \"ridge\"",
            "distance = \"cosine\"",
            "unknown variant `cosine`",
            true,
        ),
        (
            "name = \"base\"",
            "name = \"base\"\ndistance = \"rsa\"",
            "arm `base` sets pairs or distance",
            true,
        ),
        // How many pairs there are is known only once the networks are built.
        (
            "pairs = { evenly = 2 }",
            "pairs = { evenly = 99 }",
            "evenly = 99",
            false,
        ),
    ] {
        assert!(smoke.contains(from), "{from}");
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, smoke.replacen(from, to, 1)).unwrap();
        let mut args = vec!["--config", path.to_str().unwrap(), "--quiet", "--out", out];
        if dry {
            args.push("--dry-run");
        }
        let run = exp(&args);
        assert!(!run.status.success(), "{to} was accepted");
        let err = text(&run.stderr);
        assert!(err.contains(needle), "{to}: {err}");
    }
}
