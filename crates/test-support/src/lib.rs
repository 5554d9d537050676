//! What the workspace's tests share: running an experiment binary as a user
//! would, reading and checking the parquet files it writes, and the one way a
//! test treats a real data set that is not installed.

pub mod committed;

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use polars::prelude::{DataFrame, DataType, ParquetReader, SerReader};
use untrainable_results::FileKind;
use untrainable_tasks::locate::DataSource;

/// Set (to anything) where the data sets are installed, as CI does: a test
/// that needs a missing one then fails instead of being skipped.
pub const REQUIRE_DATA: &str = "UNTRAINABLE_REQUIRE_DATA";

/// The one way a test treats a real data set that is missing: a note that
/// the test is skipped, naming the set, the command that installs it and
/// `why` (the loader's message); or, where [`REQUIRE_DATA`] is set, a
/// failure. The caller returns after this.
pub fn skip_missing_data(what: &str, why: impl Display) {
    assert!(
        std::env::var_os(REQUIRE_DATA).is_none(),
        "{REQUIRE_DATA} is set but {what} is missing; run `bash scripts/setup-data.sh`:\n{why}"
    );
    eprintln!("SKIPPED: {what} is not installed (bash scripts/setup-data.sh):\n{why}");
}

/// The directory holding `source`'s files: where the loaders look (its
/// environment variables, `./data`), else the workspace's `data/` (tests run
/// in their crate's directory). `None` after [`skip_missing_data`] when it
/// is in neither.
pub fn real_data_dir(source: &DataSource) -> Option<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(source.local_dir());
    match source.find(None).or_else(|_| source.find(Some(&workspace))) {
        Ok(dir) => Some(dir),
        Err(e) => {
            skip_missing_data(source.name, e);
            None
        }
    }
}

/// Whether Fashion-MNIST, which the image experiments train on, is
/// installed; `false` after [`skip_missing_data`].
pub fn fashion_mnist_installed() -> bool {
    real_data_dir(&untrainable_tasks::fashion_mnist::SOURCE).is_some()
}

/// Checks that the results files in `dir` hold every column of the schema
/// (`docs/design.md` §3) with exactly its type as written, no cast:
/// `metrics.parquet`, `summary.parquet`, and `predictions.parquet` where
/// the experiment writes one. A nullable column may be all null.
pub fn assert_results_schema(dir: &Path) {
    for kind in [FileKind::Metrics, FileKind::Summary, FileKind::Predictions] {
        let path = dir.join(format!("{}.parquet", kind.name()));
        if kind == FileKind::Predictions && !path.exists() {
            continue;
        }
        let frame = read_parquet(&path);
        let schema = frame.schema();
        for spec in kind.schema() {
            let found = schema.get(spec.name);
            let all_null = spec.nullable && found == Some(&DataType::Null);
            assert!(
                found == Some(&spec.dtype.polars()) || all_null,
                "{}: column {} is {found:?}, the schema says {}",
                path.display(),
                spec.name,
                spec.dtype.label()
            );
        }
    }
}

/// Runs the experiment binary at `path` with `args`, its run notes logged
/// at info level (the tests read them, and `--quiet` alone would hide
/// them); figures go to a temporary directory unless `args` name one.
pub fn run_experiment(path: &str, args: &[&str]) -> Output {
    run_experiment_in(path, args, None)
}

/// [`run_experiment`] from the directory `dir` where given (the repository
/// root, where `./data` holds what `scripts/setup-data.sh` installed).
pub fn run_experiment_in(path: &str, args: &[&str], dir: Option<&Path>) -> Output {
    let figures = tempfile::tempdir().expect("a temporary directory");
    let mut command = Command::new(path);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
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

/// The gates of `dir/regime.parquet`, after checking that each has a finite
/// value, that is, every arm it names has run.
pub fn regime_gates(dir: &Path) -> Vec<String> {
    let regime = read_parquet(&dir.join("regime.parquet"));
    let gates = strings(&regime, "gate");
    let values = regime.column("value").unwrap().f64().unwrap();
    for (gate, value) in gates.iter().zip(values.iter()) {
        assert!(
            value.is_some_and(f64::is_finite),
            "gate `{gate}` has no value: an arm it names did not run"
        );
    }
    gates
}
