//! What the experiment binaries' end-to-end tests share: running a binary
//! as a user would, and reading the parquet files it writes.

use std::path::Path;
use std::process::{Command, Output};

use polars::prelude::{DataFrame, ParquetReader, SerReader};

/// Runs the experiment binary at `path` with `args`, its run notes logged
/// at info level (the tests read them, and `--quiet` alone would hide
/// them); figures go to a temporary directory unless `args` name one.
pub fn run_experiment(path: &str, args: &[&str]) -> Output {
    let figures = tempfile::tempdir().expect("a temporary directory");
    let mut command = Command::new(path);
    command.args(args);
    command.env("UNTRAINABLE_LOG", "info");
    if !args.contains(&"--figures") {
        command.arg("--figures").arg(figures.path());
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {path}: {e}"))
}

/// Runs an image experiment at its `paper-fmnist` preset (the paper's
/// sizes on Fashion-MNIST) for one training step of
/// every guide and arm, on batches of `batch` examples and validation and
/// test sets of `2 · batch`, writing into `out`: a check that the paper's
/// networks build and train, short enough for two cores.
pub fn run_paper_start(path: &str, out: &Path, batch: usize) -> Output {
    let sets = [
        "train.max_steps=1".to_string(),
        "guide_train.max_steps=1".to_string(),
        format!("train.batch_size={batch}"),
        format!("guide_train.batch_size={batch}"),
        format!("train.eval_batch_size={batch}"),
        format!("guide_train.eval_batch_size={batch}"),
        format!("data.val_size={}", 2 * batch),
        format!("data.test_size={}", 2 * batch),
    ];
    let out = out.to_str().expect("a UTF-8 path");
    let mut args = vec![
        "--preset",
        "paper-fmnist",
        "--seed",
        "0",
        "--quiet",
        "--out",
        out,
    ];
    for set in &sets {
        args.extend(["--set", set.as_str()]);
    }
    run_experiment(path, &args)
}

/// A process's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn read_parquet(path: &Path) -> DataFrame {
    let file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    ParquetReader::new(file)
        .finish()
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The values of a string column without nulls.
pub fn strings(frame: &DataFrame, column: &str) -> Vec<String> {
    frame
        .column(column)
        .unwrap_or_else(|e| panic!("no column {column}: {e}"))
        .str()
        .unwrap_or_else(|e| panic!("column {column} is not text: {e}"))
        .iter()
        .map(|v| v.expect("no null").to_string())
        .collect()
}
