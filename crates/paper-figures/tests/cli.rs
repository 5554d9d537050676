//! The `paper-figures` binary as a user runs it.

use std::process::Command;

#[test]
fn no_results_exits_non_zero_naming_the_paths_and_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let out = dir.path().join("figures");
    let output = Command::new(env!("CARGO_BIN_EXE_paper-figures"))
        .arg("--results")
        .arg(&results)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = results.join("fcn-warmup").join("metrics.parquet");
    assert!(stderr.contains(&expected.display().to_string()), "{stderr}");
    assert!(stderr.contains("cargo run -p exp-fcn-warmup"), "{stderr}");
    assert!(
        !out.exists(),
        "nothing to draw, yet {} was created",
        out.display()
    );
}

#[test]
fn draws_from_a_results_directory_and_names_the_files_and_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let out = dir.path().join("figures");
    let rows: Vec<untrainable_results::MetricRow> = (0..20u64)
        .flat_map(|step| {
            [0u64, 1].map(|seed| untrainable_results::MetricRow {
                experiment: "fcn-warmup".into(),
                arm: "base".into(),
                seed,
                step,
                epoch: None,
                split: untrainable_results::Split::Train,
                metric: "loss".into(),
                value: 2.0 / (step as f64 + 1.0) + seed as f64 * 0.1,
            })
        })
        .collect();
    let mut rows = rows;
    // Each seed's accuracy at its selected epoch and on the test split.
    for (seed, val, test) in [(0u64, 0.5, 0.6), (1, 0.7, 0.8)] {
        let row = |split, value| untrainable_results::MetricRow {
            experiment: "fcn-warmup".into(),
            arm: "base".into(),
            seed,
            step: 20,
            epoch: Some(1),
            split,
            metric: "accuracy".into(),
            value,
        };
        rows.push(row(untrainable_results::Split::Val, val));
        rows.push(row(untrainable_results::Split::Test, test));
    }
    untrainable_results::write_metrics(results.join("fcn-warmup/metrics.parquet"), &rows).unwrap();
    let summaries: Vec<_> = [0u64, 1]
        .map(|seed| untrainable_results::SummaryRow {
            experiment: "fcn-warmup".into(),
            arm: "base".into(),
            seed,
            status: untrainable_results::Status::Ok,
            status_step: None,
            steps: 20,
            final_train_loss: 0.1,
            final_val_loss: 0.2,
            best_val_loss: 0.2,
            best_epoch: 1,
            final_val_accuracy: 0.5,
            best_val_accuracy: 0.5,
            wall_seconds: 1.0,
        })
        .into();
    untrainable_results::write_summary(results.join("fcn-warmup/summary.parquet"), &summaries)
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_paper-figures"))
        .arg("--results")
        .arg(&results)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for ext in ["png", "svg"] {
        let path = out.join(format!("fcn-warmup.{ext}"));
        assert!(path.exists());
        assert!(stdout.contains(&path.display().to_string()), "{stdout}");
    }
    let tables = std::fs::read_to_string(results.join("TABLES.md")).unwrap();
    // Test 60 and 80 %, selected epoch 50 and 70 %: means 70 and 60, sd √200.
    assert!(
        tables.contains("| base | 2 | 70.00 ± 14.14 | 60.00 ± 14.14 | – |"),
        "{tables}"
    );
}

#[test]
fn a_damaged_results_file_fails_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("fcn-warmup/metrics.parquet");
    std::fs::create_dir_all(metrics.parent().unwrap()).unwrap();
    std::fs::write(&metrics, "not parquet").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_paper-figures"))
        .arg("--results")
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("figures"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&metrics.display().to_string()), "{stderr}");
}

#[test]
fn help_explains_every_option() {
    let output = Command::new(env!("CARGO_BIN_EXE_paper-figures"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for text in [
        "--results",
        "--out",
        "metrics.parquet",
        "[default: results]",
        "[default: paper-figures]",
    ] {
        assert!(help.contains(text), "--help lacks {text:?}:\n{help}");
    }
}
