//! The binary end to end at the smoke preset, on the real Fashion-MNIST files
//! (installed by `scripts/setup-data.sh`, which CI runs first).

use std::path::Path;
use std::process::{Command, Output};

use polars::prelude::*;
use untrainable_test_support::{
    assert_results_schema, fashion_mnist_installed, read_parquet, regime_gates, run_experiment,
    text,
};

fn exp(args: &[&str]) -> Output {
    run_experiment(env!("CARGO_BIN_EXE_exp-fcn-warmup"), args)
}

#[test]
fn smoke_preset_writes_results_in_the_design_schema_and_resumes() {
    if !fashion_mnist_installed() {
        return;
    }
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
        let figure = figures.join(format!("fcn-warmup.{ext}"));
        assert!(
            std::fs::metadata(&figure).is_ok_and(|m| m.len() > 1000),
            "no figure at {}",
            figure.display()
        );
    }

    let dir = out.path().join("fcn-warmup");
    assert_eq!(
        regime_gates(&dir).len(),
        4,
        "one row per gate of the preset"
    );
    assert_results_schema(&dir);
    let metrics = read_parquet(&dir.join("metrics.parquet"));
    let arms: Vec<String> = metrics
        .column("arm")
        .unwrap()
        .str()
        .unwrap()
        .unique()
        .unwrap()
        .sort(Default::default())
        .iter()
        .map(|a| a.unwrap().to_string())
        .collect();
    assert_eq!(arms, ["base", "early-disconnect", "guided", "noise-warmup"]);
    let metric_names: Vec<String> = metrics
        .column("metric")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|m| m.unwrap().to_string())
        .collect();
    for name in [
        "loss",
        "task_loss",
        "guidance_loss",
        "warmup_guidance_loss",
        "accuracy",
        "cka/linear0/conv1",
    ] {
        assert!(metric_names.iter().any(|m| m == name), "no `{name}` rows");
    }

    let summary = read_parquet(&dir.join("summary.parquet"));
    assert_eq!(summary.height(), 4);
    let status: Vec<_> = summary
        .column("status")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .collect();
    assert!(status.iter().all(|s| *s == Some("ok")), "{status:?}");
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(config.contains("hidden_layers = 6"));

    // Every run is finished, so --resume reuses all of them and trains nothing.
    let resumed = exp(&["--preset", "smoke", "--quiet", "--out", out_dir, "--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert_eq!(
        text(&resumed.stderr)
            .matches("kept from the earlier run")
            .count(),
        4
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
fn every_preset_resolves_and_validates() {
    for preset in ["smoke", "cpu", "paper", "paper-fmnist"] {
        let run = exp(&["--preset", preset, "--dry-run"]);
        assert!(run.status.success(), "{preset}: {}", text(&run.stderr));
    }
}

#[test]
fn bad_input_gets_an_error_that_names_it() {
    let unknown = exp(&["--preset", "smoke", "--dry-run", "--set", "train.epoch=3"]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("train.epoch"),
        "{}",
        text(&unknown.stderr)
    );

    let mismatch = exp(&[
        "--preset",
        "smoke",
        "--dry-run",
        "--set",
        "input.image_size=32",
    ]);
    assert!(!mismatch.status.success());
    assert!(
        text(&mismatch.stderr).contains("target.input_features = 1024"),
        "{}",
        text(&mismatch.stderr)
    );

    let negative = exp(&[
        "--preset",
        "smoke",
        "--dry-run",
        "--set",
        "train.alpha=-1.0",
    ]);
    assert!(!negative.status.success());
    assert!(
        text(&negative.stderr).contains("train.alpha"),
        "{}",
        text(&negative.stderr)
    );

    let missing = exp(&[
        "--preset",
        "smoke",
        "--quiet",
        "--data",
        "/nonexistent/fmnist",
        "--out",
        "/tmp/unused",
    ]);
    assert!(!missing.status.success());
    let err = text(&missing.stderr);
    assert!(
        err.contains("/nonexistent/fmnist") && err.contains("setup-data.sh"),
        "{err}"
    );
}

/// No seed at all is refused before anything is read or written, whether it
/// comes from the command line or from the config.
#[test]
fn zero_seeds_are_refused_at_once() {
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    for zero in [&["--seeds", "0"][..], &["--set", "seeds=0"][..]] {
        let run = exp(&[
            &["--preset", "smoke", "--quiet", "--out", out_dir][..],
            zero,
        ]
        .concat());
        assert!(!run.status.success(), "{zero:?} ran");
        let err = text(&run.stderr);
        assert!(
            err.contains("seeds") && err.contains('0'),
            "{zero:?}: {err}"
        );
        assert!(
            !out.path().join("fcn-warmup").exists(),
            "{zero:?} wrote results"
        );
    }
}

/// The newest checkpoint of any run under `dir`: its run part and step.
fn newest_checkpoint(dir: &Path) -> Option<(String, String)> {
    let runs = std::fs::read_dir(dir.join("runs")).ok()?;
    runs.flatten()
        .filter_map(|part| {
            let step =
                std::fs::read_to_string(part.path().join("checkpoint").join("LATEST")).ok()?;
            Some((part.file_name().to_string_lossy().into_owned(), step))
        })
        .max()
}

/// Killed (SIGKILL) at three points while training (in three different
/// arms) and resumed each time, the run ends with the rows of an
/// uninterrupted one, bit for bit.
#[test]
fn a_killed_run_resumes_from_its_checkpoints_to_the_same_numbers() {
    if !fashion_mnist_installed() {
        return;
    }
    let whole = tempfile::tempdir().unwrap();
    let common = ["--preset", "smoke", "--quiet", "--checkpoint-every", "1"];
    let run = exp(&[&common[..], &["--out", whole.path().to_str().unwrap()]].concat());
    assert!(run.status.success(), "{}", text(&run.stderr));

    let broken = tempfile::tempdir().unwrap();
    let figures = tempfile::tempdir().unwrap();
    let dir = broken.path().join("fcn-warmup");
    let mut args: Vec<&str> = [&common[..], &["--out", broken.path().to_str().unwrap()]].concat();
    args.extend(["--figures", figures.path().to_str().unwrap()]);
    let mut killed_at = Vec::new();
    for kill in 0..3 {
        let mut command = Command::new(env!("CARGO_BIN_EXE_exp-fcn-warmup"));
        command
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if kill > 0 {
            command.arg("--resume");
        }
        let mut child = command.spawn().unwrap();
        // Kill as soon as a checkpoint appears that was not there before.
        loop {
            // in a run other than the ones killed before, so that each resume
            // also keeps finished runs.
            if let Some(point) =
                newest_checkpoint(&dir).filter(|p| killed_at.iter().all(|(part, _)| part != &p.0))
            {
                child.kill().unwrap();
                killed_at.push(point);
                break;
            }
            if child.try_wait().unwrap().is_some() {
                panic!(
                    "the run finished before a new checkpoint was seen; killed at {killed_at:?}"
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        child.wait().unwrap();
    }
    let resumed = exp(&[&args[..], &["--resume"]].concat());
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));

    let rows = |root: &Path| {
        let rows =
            untrainable_results::read_metrics(root.join("fcn-warmup").join("metrics.parquet"))
                .unwrap();
        rows.into_iter()
            .map(|r| (r.arm, r.seed, r.step, r.epoch, r.metric, r.value.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        rows(broken.path()),
        rows(whole.path()),
        "killed at {killed_at:?}"
    );
}

/// Without --data and $UNTRAINABLE_IMAGENET the paper preset stops at once,
/// saying what to download and where to point.
#[test]
fn paper_preset_without_imagenet_says_what_to_download() {
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_exp-fcn-warmup"))
        .args(["--preset", "paper", "--seed", "0"])
        .env_remove("UNTRAINABLE_IMAGENET")
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("ILSVRC-2012") && err.contains("--data"),
        "{err}"
    );
}
