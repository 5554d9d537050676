//! The binary end to end at the smoke preset (generated data: nothing to
//! install), and the errors a user meets first.

use std::process::Output;

use polars::prelude::*;
use untrainable_test_support::{
    assert_results_schema, read_parquet, regime_gates, run_experiment, text,
};

fn exp(args: &[&str]) -> Output {
    run_experiment(env!("CARGO_BIN_EXE_exp-parity"), args)
}

fn sorted_unique(frame: &DataFrame, column: &str) -> Vec<String> {
    let mut values: Vec<String> = frame
        .column(column)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect();
    values.sort();
    values.dedup();
    values
}

#[test]
fn smoke_preset_writes_every_arm_and_the_guide_and_resumes() {
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let figures = out.path().join("figures");
    let run = exp(&[
        "--preset",
        "smoke",
        "--quiet",
        "--out",
        out_dir,
        "--figures",
        figures.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    for ext in ["png", "svg"] {
        let figure = figures.join(format!("parity.{ext}"));
        assert!(
            std::fs::metadata(&figure).is_ok_and(|m| m.len() > 1000),
            "no figure at {}",
            figure.display()
        );
    }

    let dir = out.path().join("parity");
    assert_eq!(
        regime_gates(&dir).len(),
        4,
        "one row per gate of the preset"
    );
    assert_results_schema(&dir);
    let metrics = read_parquet(&dir.join("metrics.parquet"));
    assert_eq!(
        sorted_unique(&metrics, "arm"),
        ["base", "guide", "trained-guide", "untrained-guide"]
    );
    let metric_names = sorted_unique(&metrics, "metric");
    // The RNN's one tap is aligned with the encoder's attention output.
    for name in [
        "loss",
        "task_loss",
        "guidance_loss",
        "accuracy",
        "accuracy_short",
        "accuracy_long",
        "cka/layer0.self_attn/rnn0",
    ] {
        assert!(
            metric_names.iter().any(|m| m == name),
            "no `{name}` rows in {metric_names:?}"
        );
    }

    let summary = read_parquet(&dir.join("summary.parquet"));
    assert_eq!(summary.height(), 4);
    assert_eq!(
        sorted_unique(&summary, "arm"),
        ["base", "guide", "trained-guide", "untrained-guide"]
    );
    assert_eq!(sorted_unique(&summary, "status"), ["ok"]);
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(config.contains("samples = 400"), "{config}");
    // The trained guide is kept for reuse, outside the experiment's directory.
    let stored = std::fs::read_dir(out.path().join("trained"))
        .unwrap()
        .count();
    assert!(
        stored >= 2,
        "expected a record and its recipe, found {stored} files"
    );

    // Every run is finished, so --resume keeps the three arms and reads the
    // guide back from the store: nothing is trained.
    let resumed = exp(&["--preset", "smoke", "--quiet", "--out", out_dir, "--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    let stderr = text(&resumed.stderr);
    assert_eq!(
        stderr.matches("kept from the earlier run").count(),
        3,
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("guide seed 0: trained before").count(),
        1,
        "{stderr}"
    );
    assert_eq!(read_parquet(&dir.join("metrics.parquet")), metrics);

    // A different config cannot resume these runs.
    let other = exp(&[
        "--preset",
        "smoke",
        "--quiet",
        "--out",
        out_dir,
        "--resume",
        "--set",
        "train.epochs=3",
    ]);
    assert!(!other.status.success());
    assert!(
        text(&other.stderr).contains("different config"),
        "{}",
        text(&other.stderr)
    );
}

#[test]
fn every_preset_resolves_and_validates() {
    for preset in ["smoke", "cpu", "paper"] {
        let run = exp(&["--preset", preset, "--dry-run"]);
        assert!(run.status.success(), "{preset}: {}", text(&run.stderr));
    }
    let paper = text(&exp(&["--preset", "paper", "--dry-run"]).stdout);
    for line in [
        "samples = 100000",
        "d_model = 512",
        "hidden = 512",
        "batch_size = 256",
        "epochs = 100",
    ] {
        assert!(
            paper.contains(line),
            "paper preset lacks `{line}`:\n{paper}"
        );
    }
}

#[test]
fn dry_run_prints_the_resolved_config_with_overrides() {
    let run = exp(&[
        "--preset",
        "smoke",
        "--dry-run",
        "--set",
        "train.epochs=7",
        "--seeds",
        "2",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    assert!(stdout.contains("epochs = 7"), "{stdout}");
    assert!(stdout.contains("seeds to run: [0, 1]"), "{stdout}");
}

#[test]
fn bad_input_gets_an_error_that_names_it() {
    let check = |sets: &[&str], expected: &str| {
        let mut args = vec!["--preset", "smoke", "--dry-run"];
        for set in sets {
            args.extend(["--set", set]);
        }
        let run = exp(&args);
        assert!(!run.status.success(), "{sets:?} was accepted");
        let err = text(&run.stderr);
        assert!(
            err.contains(expected),
            "{sets:?}: expected `{expected}` in: {err}"
        );
    };
    check(&["train.epoch=3"], "train.epoch");
    check(&["target.vocab=4"], "target.vocab = 3");
    check(&["guide.vocab=2"], "guide.vocab = 3");
    check(&["guide.classes=3"], "guide.classes = 2");
    check(&["task.min_len=20"], "task.min_len");
    check(&["target.max_positions=8"], "target.max_positions");
    check(&["task.samples=20"], "task.samples");
    check(&["target.heads=3"], "target.");
    check(
        &["guide_train.learning_rate=0.0"],
        "guide_train.learning_rate",
    );
}
