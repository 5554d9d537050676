//! The binary end to end at the smoke preset (generated data, seconds).

use std::process::Output;

use untrainable_test_support::{
    assert_results_schema, read_parquet, regime_gates, run_experiment, strings, text,
};

fn exp(args: &[&str]) -> Output {
    run_experiment(env!("CARGO_BIN_EXE_exp-copy-paste"), args)
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
        let figure = figures.join(format!("copy-paste.{ext}"));
        assert!(
            std::fs::metadata(&figure).is_ok_and(|m| m.len() > 1000),
            "no figure at {}",
            figure.display()
        );
    }

    let dir = out.path().join("copy-paste");
    assert_eq!(
        regime_gates(&dir).len(),
        4,
        "one row per gate of the preset"
    );
    assert_results_schema(&dir);
    let metrics = read_parquet(&dir.join("metrics.parquet"));
    let mut arms = strings(&metrics, "arm");
    arms.sort();
    arms.dedup();
    assert_eq!(arms, ["base", "guide", "trained-guide", "untrained-guide"]);
    let metric_names = strings(&metrics, "metric");
    // Uniform pairs: the first guide tap goes to the first RNN layer, the
    // last to the last.
    for name in [
        "loss",
        "task_loss",
        "guidance_loss",
        "accuracy",
        "cka/rnn0/layer0.self_attn",
        "cka/rnn3/layer3.out",
    ] {
        assert!(metric_names.iter().any(|m| m == name), "no `{name}` rows");
    }

    let summary = read_parquet(&dir.join("summary.parquet"));
    assert_eq!(summary.height(), 4);
    let mut summary_arms = strings(&summary, "arm");
    summary_arms.sort();
    assert_eq!(summary_arms, arms);
    assert!(
        strings(&summary, "status").iter().all(|s| s == "ok"),
        "{summary}"
    );
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(config.contains("max_len = 5"), "{config}");
    let stored_guides = || -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
        let mut files: Vec<_> = std::fs::read_dir(out.path().join("trained"))
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.path(), e.metadata().unwrap().modified().unwrap()))
            .collect();
        files.sort();
        files
    };
    let stored = stored_guides();
    assert!(!stored.is_empty(), "no trained guide stored");

    // Every run is finished, so --resume reuses all of them (the trained
    // guide from the store, left as it was) and trains nothing.
    let resumed = exp(&["--preset", "smoke", "--quiet", "--out", out_dir, "--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    let stderr = text(&resumed.stderr);
    for arm in ["base", "trained-guide", "untrained-guide"] {
        assert!(
            stderr.contains(&format!("{arm} seed 0: kept from the earlier run")),
            "{stderr}"
        );
    }
    assert_eq!(
        stored_guides(),
        stored,
        "the stored guide was trained again"
    );
    assert_eq!(read_parquet(&dir.join("metrics.parquet")), metrics);
}

#[test]
fn dry_run_prints_the_resolved_config_with_overrides() {
    let run = exp(&[
        "--preset",
        "smoke",
        "--dry-run",
        "--set",
        "guide_train.epochs=7",
        "--seeds",
        "2",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    assert!(stdout.contains("epochs = 7"), "{stdout}");
    assert!(stdout.contains("seeds to run: [0, 1]"), "{stdout}");
}

#[test]
fn every_preset_resolves_and_validates() {
    for preset in ["smoke", "cpu", "paper"] {
        let run = exp(&["--preset", preset, "--dry-run"]);
        assert!(run.status.success(), "{preset}: {}", text(&run.stderr));
        assert!(
            text(&run.stdout).contains("[guide_train]"),
            "{preset}: {}",
            text(&run.stdout)
        );
    }
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
    expect_error(&[&dry[..], &["train.epoch=3"]].concat(), "train.epoch");
    expect_error(
        &[&dry[..], &["target.vocab=12"]].concat(),
        "target.vocab = 13",
    );
    expect_error(
        &[&dry[..], &["guide.vocab=20"]].concat(),
        "guide.vocab = 13",
    );
    expect_error(
        &[&dry[..], &["task.copy_paste.max_len=40"]].concat(),
        "guide.max_positions ≥ 82",
    );
    expect_error(
        &[&dry[..], &["guide_train.epochs=0"]].concat(),
        "guide_train.epochs",
    );
    expect_error(&[&dry[..], &["task.samples=10"]].concat(), "task.samples");
    expect_error(
        &[&dry[..], &["pairs.explicit=[[\"rnn9\", \"layer0.out\"]]"]].concat(),
        "rnn9",
    );
}

#[test]
fn the_pilot_config_resolves_with_its_gates() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/presets/pilot-20-40.toml");
    let run = exp(&["--config", config, "--dry-run"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    assert!(
        stdout.contains("max_len = 40") && stdout.contains("[[gates]]"),
        "{stdout}"
    );
}
