//! What the slice and cluster tests share: the workspace's binaries, the
//! data check, and the comparison of two results directories.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use untrainable_tasks::{fashion_mnist, sotu};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory of the workspace's binaries, which `cargo test --workspace`
/// builds next to this test's own executable (`target/<profile>/deps/`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The path of a workspace binary, which must be built.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built; run the tests with `cargo test --workspace` (or `cargo build --workspace` first)",
        path.display()
    );
    path
}

/// Whether the data sets are installed; a skip note when not, or a failure
/// where `UNTRAINABLE_REQUIRE_DATA` is set.
pub fn data_present() -> bool {
    let root = root();
    let present = [fashion_mnist::SOURCE, sotu::SOURCE].iter().all(|source| {
        source.find(None).is_ok() || source.find(Some(&root.join(source.local_dir()))).is_ok()
    });
    if !present {
        assert!(
            std::env::var_os("UNTRAINABLE_REQUIRE_DATA").is_none(),
            "the data sets are missing; run `bash scripts/setup-data.sh`"
        );
        eprintln!("SKIPPED: data sets not installed (bash scripts/setup-data.sh)");
    }
    present
}

/// Runs an experiment binary, its run notes at info level.
pub fn run(binary: &Path, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .env("UNTRAINABLE_LOG", "info")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
}

pub fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The rows of a results directory as text (NaN equals NaN), the summaries'
/// wall time left out: what a merge must reproduce.
fn rows(dir: &Path) -> [(&'static str, Vec<String>); 3] {
    let metrics = untrainable_results::read_metrics(dir.join("metrics.parquet")).unwrap();
    let mut summaries = untrainable_results::read_summary(dir.join("summary.parquet")).unwrap();
    for summary in &mut summaries {
        summary.wall_seconds = 0.0;
    }
    let predictions_path = dir.join("predictions.parquet");
    let predictions = match predictions_path.exists() {
        true => untrainable_results::read_predictions(&predictions_path).unwrap(),
        false => Vec::new(),
    };
    [
        ("metrics", shown(&metrics)),
        ("summary", shown(&summaries)),
        ("predictions", shown(&predictions)),
    ]
}

fn shown<T: std::fmt::Debug>(rows: &[T]) -> Vec<String> {
    rows.iter().map(|row| format!("{row:?}")).collect()
}

/// Asserts that `merged` holds the rows of `reference`, in the same order,
/// equal in every column but the summaries' wall time.
pub fn assert_same_results(merged: &Path, reference: &Path) {
    for ((file, got), (_, want)) in rows(merged).into_iter().zip(rows(reference)) {
        if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
            panic!(
                "{file} row {i} differs:\n merged:    {}\n reference: {}",
                got[i], want[i]
            );
        }
        assert_eq!(
            got.len(),
            want.len(),
            "{file}: {} rows merged, {} in the single-process run",
            got.len(),
            want.len()
        );
        assert!(
            !want.is_empty() || file == "predictions",
            "{file} has no rows"
        );
    }
}
