//! The committed results against the code: the committed config must be
//! the cpu preset's, and the first training steps of seed 0, rerun now,
//! must give the training losses `results/<experiment>/metrics.parquet`
//! holds for them, so that a changed preset, default, initialisation or
//! data order cannot leave the committed numbers describing code that no
//! longer exists.

use std::path::Path;

use untrainable_results::{MetricRow, Split, read_metrics};

use crate::{run_experiment, run_experiment_in};

/// Training steps of each arm rerun.
pub const FIRST_STEPS: u64 = 3;

/// Largest relative difference allowed: summation order on another
/// processor moves a loss by about 1e-6 over a few steps; a changed
/// learning rate, initialisation or batch moves it by 1e-3 or more.
pub const TOLERANCE: f64 = 1e-4;

/// Reruns the first [`FIRST_STEPS`] steps of every arm of seed 0 of the cpu
/// preset with `binary` (each `step_limits` key, e.g. `train.max_steps`,
/// set to that count) and compares every per-step training row with the
/// committed one. Arms that read a trained guide are compared at step 0
/// only, since the guide trained for a few steps is not the committed one.
/// Results without a `code_version` predate this check and are skipped,
/// with a note.
pub fn first_steps_match_committed(binary: &str, experiment: &str, step_limits: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let committed_dir = root.join("results").join(experiment);
    let config = std::fs::read_to_string(committed_dir.join("config.toml"))
        .unwrap_or_else(|e| panic!("results/{experiment}/config.toml: {e}"));
    if !config.starts_with("code_version = ") {
        eprintln!("results/{experiment} records no code_version: made before this check, skipped");
        return;
    }
    let preset = run_experiment(binary, &["--preset", "cpu", "--dry-run"]);
    let resolved = String::from_utf8_lossy(&preset.stdout);
    let (_, committed_config) = config
        .split_once('\n')
        .expect("code_version, then the config");
    assert!(
        resolved.starts_with(committed_config),
        "results/{experiment}/config.toml is not the cpu preset's resolved config: rerun the \
         experiment, or restore the preset it was made with"
    );
    let out = tempfile::tempdir().expect("a temporary directory");
    let mut args = vec![
        "--preset".to_string(),
        "cpu".into(),
        "--seed".into(),
        "0".into(),
        "--quiet".into(),
        "--out".into(),
        out.path().display().to_string(),
    ];
    for key in step_limits {
        args.extend(["--set".to_string(), format!("{key}={FIRST_STEPS}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // From the repository root, where ./data holds the corpora of setup-data.sh.
    let run = run_experiment_in(binary, &args, Some(&root));
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let trained_guide_arms = arms_reading_a_trained_guide(&config);
    let compared = |rows: Vec<MetricRow>| -> Vec<MetricRow> {
        rows.into_iter()
            .filter(|r| r.seed == 0 && r.split == Split::Train && r.epoch.is_none())
            .filter(|r| {
                let reads_trained = trained_guide_arms
                    .iter()
                    .any(|a| r.arm == *a || r.arm.ends_with(&format!("/{a}")));
                match reads_trained {
                    true => r.step == 0 && r.metric == "task_loss",
                    false => r.step < FIRST_STEPS,
                }
            })
            .collect()
    };
    let rerun =
        compared(read_metrics(out.path().join(experiment).join("metrics.parquet")).unwrap());
    let committed = compared(read_metrics(committed_dir.join("metrics.parquet")).unwrap());
    assert!(
        !committed.is_empty(),
        "results/{experiment} has no training rows of seed 0"
    );
    for row in &committed {
        let now = rerun
            .iter()
            .find(|r| r.arm == row.arm && r.step == row.step && r.metric == row.metric)
            .unwrap_or_else(|| {
                panic!(
                    "the rerun has no {} {} at step {}",
                    row.arm, row.metric, row.step
                )
            });
        let difference = (now.value - row.value).abs() / row.value.abs().max(1e-12);
        assert!(
            difference <= TOLERANCE,
            "results/{experiment}: {} {} at step {} is {} committed, {} now (relative {difference:.1e}); \
             rerun the experiment or find what changed",
            row.arm,
            row.metric,
            row.step,
            row.value,
            now.value
        );
    }
}

/// The names of the `[[arms]]` of a resolved config with `guide = "trained"`.
fn arms_reading_a_trained_guide(config: &str) -> Vec<String> {
    let table: toml::Table = toml::from_str(config).expect("a resolved config is TOML");
    let arms = table
        .get("arms")
        .and_then(|a| a.as_array())
        .cloned()
        .unwrap_or_default();
    arms.iter()
        .filter(|arm| arm.get("guide").and_then(|g| g.as_str()) == Some("trained"))
        .filter_map(|arm| arm.get("name").and_then(|n| n.as_str()).map(str::to_string))
        .collect()
}

/// The test of an experiment crate that runs [`first_steps_match_committed`]
/// with its binary, skipped where `requires` (data installed) is false.
#[macro_export]
macro_rules! committed_results_test {
    ($binary:literal, $experiment:literal, [$($key:literal),*] $(, requires $data:expr)?) => {
        #[test]
        #[ignore = "slow: reruns the first steps of every arm of the cpu preset"]
        fn committed_results_are_those_of_this_code() {
            $(if !$data {
                return;
            })?
            $crate::committed::first_steps_match_committed(
                env!(concat!("CARGO_BIN_EXE_", $binary)),
                $experiment,
                &[$($key),*],
            );
        }
    };
}
