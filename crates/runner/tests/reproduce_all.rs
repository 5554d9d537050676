//! `scripts/reproduce-all.sh smoke`: every experiment, then the figures and
//! tables; run again, it keeps every finished run and trains nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use untrainable_tasks::{fashion_mnist, sotu};
use untrainable_test_support::real_data_dir;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory of the workspace's binaries, which `cargo test --workspace`
/// builds next to this test's own executable (`target/<profile>/deps/`).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

fn reproduce(out: &Path) -> Output {
    Command::new("bash")
        .arg(root().join("scripts/reproduce-all.sh"))
        .args(["smoke", "--out"])
        .arg(out)
        .env("UNTRAINABLE_BIN_DIR", bin_dir())
        .output()
        .unwrap()
}

#[test]
#[ignore = "slow: runs every experiment's smoke preset through scripts/reproduce-all.sh (minutes)"]
fn reproduce_all_runs_every_experiment_then_resumes_without_training() {
    if real_data_dir(&fashion_mnist::SOURCE).is_none() || real_data_dir(&sotu::SOURCE).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let text = |o: &Output| {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let experiments: Vec<String> = std::fs::read_dir(root().join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("exp-"))
        .collect();
    assert!(experiments.len() >= 3, "{experiments:?}");

    let first = reproduce(&out);
    let first_text = text(&first);
    assert!(first.status.success(), "{first_text}");
    let n = experiments.len();
    for exp in &experiments {
        assert!(
            first_text.contains(&format!("{exp}: done in")),
            "{exp}: {first_text}"
        );
        let name = exp.trim_start_matches("exp-");
        assert!(out.join(name).join("summary.parquet").is_file(), "{exp}");
        assert!(
            out.join("figures").join(format!("{name}.png")).is_file(),
            "{exp}"
        );
    }
    assert!(first_text.contains(&format!("[{n}/{n}]")), "{first_text}");
    assert!(out.join("TABLES.md").is_file(), "{first_text}");

    // Everything finished, so the second run trains no epoch at all.
    let second = reproduce(&out);
    let second_text = text(&second);
    assert!(second.status.success(), "{second_text}");
    for exp in &experiments {
        let log = std::fs::read_to_string(out.join("logs").join(format!("{exp}.log"))).unwrap();
        assert!(log.contains("kept from the earlier run"), "{exp}: {log}");
        assert!(!log.contains(" epoch 1/"), "{exp} trained again: {log}");
    }
}

#[test]
fn an_unknown_argument_is_refused_with_the_choices() {
    let out = Command::new("bash")
        .arg(root().join("scripts/reproduce-all.sh"))
        .arg("fast")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'fast'") && err.contains("smoke, cpu or paper"),
        "{err}"
    );
}
