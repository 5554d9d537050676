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
fn draws_from_a_results_directory_and_names_the_files() {
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
    untrainable_results::write_metrics(results.join("fcn-warmup/metrics.parquet"), &rows).unwrap();
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
