//! The results files of every experiment, in `DIR/<experiment>/`:
//!
//! - `metrics.parquet`: tidy long format, one row per measurement
//!   ([`MetricRow`], columns in [`METRICS_SCHEMA`]);
//! - `summary.parquet`: one row per (arm, seed) ([`SummaryRow`], columns in
//!   [`SUMMARY_SCHEMA`]);
//! - `predictions.parquet`, where an experiment keeps them: the selected
//!   network's prediction for every test example ([`PredictionRow`],
//!   columns in [`PREDICTIONS_SCHEMA`]);
//! - `config.toml`: the resolved config, written with [`write_atomic`].
//!
//! Plain column types (str, u32, u64, f64) keep the files readable by polars
//! and pandas with no custom code. Every write goes through a temporary file
//! and a rename, so a killed run leaves either the old file or the new one.

mod atomic;
mod error;
mod interval;
pub mod regime;
mod schema;
mod table;

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::str::FromStr;

use polars::prelude::{Column, DataFrame, ParquetReader, ParquetWriter, SerReader};
use serde::{Deserialize, Serialize};

pub use atomic::write_atomic;
pub use error::ResultsError;
pub use interval::{PairedDifference, test_values_by_seed};
pub use regime::{Gate, RegimeRow};
pub use schema::{
    ColumnSpec, Dtype, FileKind, METRICS_SCHEMA, PREDICTIONS_SCHEMA, REGIME_SCHEMA, SUMMARY_SCHEMA,
};
pub use table::{arm_table, mean_sd, summary_table};

/// Which data a measurement was taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// The string stored in the `split` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Split::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown split {s:?}, expected one of train, val, test"))
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// The loss became non-finite; `status_step` says when.
    Diverged,
    /// Stopped before its schedule ended.
    Interrupted,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Ok, Status::Diverged, Status::Interrupted];

    /// The string stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Diverged => "diverged",
            Status::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("unknown status {s:?}, expected one of ok, diverged, interrupted")
            })
    }
}

/// One measurement: a row of `metrics.parquet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    pub experiment: String,
    pub arm: String,
    pub seed: u64,
    /// Optimiser steps taken when the value was measured.
    pub step: u64,
    /// `None` for per-step rows; the epoch just finished for per-epoch rows.
    pub epoch: Option<u32>,
    pub split: Split,
    /// `loss`, `task_loss`, `guidance_loss`, `accuracy`, `cka/<target tap>/<guide tap>`, ...
    pub metric: String,
    pub value: f64,
}

/// One (arm, seed) run: a row of `summary.parquet`. Values that do not exist
/// (e.g. the validation loss of a run that diverged before its first
/// epoch) are NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub experiment: String,
    pub arm: String,
    pub seed: u64,
    pub status: Status,
    /// The step at which the run diverged or stopped.
    pub status_step: Option<u64>,
    pub steps: u64,
    pub final_train_loss: f64,
    pub final_val_loss: f64,
    pub best_val_loss: f64,
    pub best_epoch: u32,
    pub final_val_accuracy: f64,
    /// Accuracy at the epoch of the best validation loss.
    pub best_val_accuracy: f64,
    pub wall_seconds: f64,
}

/// One test example as one run's selected network classified it: a row of
/// `predictions.parquet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionRow {
    pub experiment: String,
    pub arm: String,
    pub seed: u64,
    /// The example's index in the test split.
    pub example: u64,
    pub label: u32,
    pub predicted: u32,
}

fn frame_error<'p>(
    path: &'p Path,
    action: &'static str,
) -> impl Fn(polars::prelude::PolarsError) -> ResultsError + 'p {
    move |source| ResultsError::Polars {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// Writes `df` as parquet to `path` through a temporary file.
fn write_frame(path: &Path, mut df: DataFrame) -> Result<(), ResultsError> {
    atomic::write_with(path, |file| {
        ParquetWriter::new(file)
            .finish(&mut df)
            .map(|_| ())
            .map_err(frame_error(path, "write"))
    })
}

/// Opens `path` and checks the parquet magic bytes at both ends, so that a
/// stray or truncated file gets a plain message instead of a decoder error.
fn open_parquet(path: &Path, kind: FileKind) -> Result<File, ResultsError> {
    let io_error = |action: &'static str| {
        move |source: std::io::Error| ResultsError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let mut file = File::open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ResultsError::Missing {
                path: path.to_path_buf(),
                kind,
            }
        } else {
            ResultsError::Io {
                path: path.to_path_buf(),
                action: "open",
                source,
            }
        }
    })?;
    let len = file.metadata().map_err(io_error("read"))?.len();
    let not_parquet = |detail: String| ResultsError::NotParquet {
        path: path.to_path_buf(),
        kind,
        detail,
    };
    if len < 12 {
        return Err(not_parquet(format!("only {len} bytes long")));
    }
    let mut head = [0u8; 4];
    let mut tail = [0u8; 4];
    file.read_exact(&mut head).map_err(io_error("read"))?;
    file.seek(SeekFrom::End(-4)).map_err(io_error("read"))?;
    file.read_exact(&mut tail).map_err(io_error("read"))?;
    if &head != b"PAR1" || &tail != b"PAR1" {
        return Err(not_parquet(
            "no PAR1 magic bytes at its start and end".to_string(),
        ));
    }
    file.seek(SeekFrom::Start(0)).map_err(io_error("read"))?;
    Ok(file)
}

/// Reads a results file and checks it against the schema of `kind`.
fn read_frame(path: &Path, kind: FileKind) -> Result<DataFrame, ResultsError> {
    let file = open_parquet(path, kind)?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| ResultsError::NotParquet {
            path: path.to_path_buf(),
            kind,
            detail: format!("the parquet decoder failed: {e}"),
        })?;
    schema::conform(df, path, kind)
}

/// Writes `rows` to `path` (normally `DIR/<experiment>/metrics.parquet`),
/// creating its directory.
pub fn write_metrics(path: impl AsRef<Path>, rows: &[MetricRow]) -> Result<(), ResultsError> {
    let path = path.as_ref();
    let str_col = |name: &str, f: fn(&MetricRow) -> &str| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<&str>>())
    };
    let columns = vec![
        str_col("experiment", |r| &r.experiment),
        str_col("arm", |r| &r.arm),
        Column::new(
            "seed".into(),
            rows.iter().map(|r| r.seed).collect::<Vec<u64>>(),
        ),
        Column::new(
            "step".into(),
            rows.iter().map(|r| r.step).collect::<Vec<u64>>(),
        ),
        Column::new(
            "epoch".into(),
            rows.iter().map(|r| r.epoch).collect::<Vec<Option<u32>>>(),
        ),
        str_col("split", |r| r.split.as_str()),
        str_col("metric", |r| &r.metric),
        Column::new(
            "value".into(),
            rows.iter().map(|r| r.value).collect::<Vec<f64>>(),
        ),
    ];
    let df =
        DataFrame::new(rows.len(), columns).map_err(frame_error(path, "build the frame for"))?;
    write_frame(path, df)
}

/// Writes `rows` to `path` (normally `DIR/<experiment>/summary.parquet`),
/// creating its directory.
pub fn write_summary(path: impl AsRef<Path>, rows: &[SummaryRow]) -> Result<(), ResultsError> {
    let path = path.as_ref();
    let str_col = |name: &str, f: fn(&SummaryRow) -> &str| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<&str>>())
    };
    let f64_col = |name: &str, f: fn(&SummaryRow) -> f64| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<f64>>())
    };
    let columns = vec![
        str_col("experiment", |r| &r.experiment),
        str_col("arm", |r| &r.arm),
        Column::new(
            "seed".into(),
            rows.iter().map(|r| r.seed).collect::<Vec<u64>>(),
        ),
        str_col("status", |r| r.status.as_str()),
        Column::new(
            "status_step".into(),
            rows.iter()
                .map(|r| r.status_step)
                .collect::<Vec<Option<u64>>>(),
        ),
        Column::new(
            "steps".into(),
            rows.iter().map(|r| r.steps).collect::<Vec<u64>>(),
        ),
        f64_col("final_train_loss", |r| r.final_train_loss),
        f64_col("final_val_loss", |r| r.final_val_loss),
        f64_col("best_val_loss", |r| r.best_val_loss),
        Column::new(
            "best_epoch".into(),
            rows.iter().map(|r| r.best_epoch).collect::<Vec<u32>>(),
        ),
        f64_col("final_val_accuracy", |r| r.final_val_accuracy),
        f64_col("best_val_accuracy", |r| r.best_val_accuracy),
        f64_col("wall_seconds", |r| r.wall_seconds),
    ];
    let df =
        DataFrame::new(rows.len(), columns).map_err(frame_error(path, "build the frame for"))?;
    write_frame(path, df)
}

/// Writes `rows` to `path` (normally `DIR/<experiment>/regime.parquet`),
/// creating its directory.
pub fn write_regime(path: impl AsRef<Path>, rows: &[RegimeRow]) -> Result<(), ResultsError> {
    let path = path.as_ref();
    let str_col = |name: &str, f: fn(&RegimeRow) -> &str| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<&str>>())
    };
    let f64_col = |name: &str, f: fn(&RegimeRow) -> f64| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<f64>>())
    };
    let columns = vec![
        str_col("experiment", |r| &r.experiment),
        str_col("gate", |r| &r.gate),
        f64_col("value", |r| r.value),
        f64_col("threshold", |r| r.threshold),
        Column::new(
            "holds".into(),
            rows.iter().map(|r| r.holds).collect::<Vec<bool>>(),
        ),
    ];
    let df =
        DataFrame::new(rows.len(), columns).map_err(frame_error(path, "build the frame for"))?;
    write_frame(path, df)
}

/// Reads every row of a `regime.parquet` file.
pub fn read_regime(path: impl AsRef<Path>) -> Result<Vec<RegimeRow>, ResultsError> {
    let path = path.as_ref();
    let df = read_frame(path, FileKind::Regime)?;
    let c = Columns { df: &df, path };
    let experiment = c.str("experiment")?;
    let gate = c.str("gate")?;
    let value = c.f64("value")?;
    let threshold = c.f64("threshold")?;
    let holds = c.bool("holds")?;
    Ok((0..df.height())
        .map(|i| RegimeRow {
            experiment: experiment[i].to_string(),
            gate: gate[i].to_string(),
            value: value[i],
            threshold: threshold[i],
            holds: holds[i],
        })
        .collect())
}

/// Writes `rows` to `path` (normally `DIR/<experiment>/predictions.parquet`),
/// creating its directory.
pub fn write_predictions(
    path: impl AsRef<Path>,
    rows: &[PredictionRow],
) -> Result<(), ResultsError> {
    let path = path.as_ref();
    let str_col = |name: &str, f: fn(&PredictionRow) -> &str| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<&str>>())
    };
    let u64_col = |name: &str, f: fn(&PredictionRow) -> u64| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<u64>>())
    };
    let u32_col = |name: &str, f: fn(&PredictionRow) -> u32| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<u32>>())
    };
    let columns = vec![
        str_col("experiment", |r| &r.experiment),
        str_col("arm", |r| &r.arm),
        u64_col("seed", |r| r.seed),
        u64_col("example", |r| r.example),
        u32_col("label", |r| r.label),
        u32_col("predicted", |r| r.predicted),
    ];
    let df =
        DataFrame::new(rows.len(), columns).map_err(frame_error(path, "build the frame for"))?;
    write_frame(path, df)
}

/// `metrics.parquet` as a polars frame, checked against [`METRICS_SCHEMA`]
/// and with its columns cast to the schema's types, for analysis code.
pub fn metrics_frame(path: impl AsRef<Path>) -> Result<DataFrame, ResultsError> {
    read_frame(path.as_ref(), FileKind::Metrics)
}

/// `summary.parquet` as a polars frame, checked like [`metrics_frame`].
pub fn summary_frame(path: impl AsRef<Path>) -> Result<DataFrame, ResultsError> {
    read_frame(path.as_ref(), FileKind::Summary)
}

/// `predictions.parquet` as a polars frame, checked like [`metrics_frame`].
pub fn predictions_frame(path: impl AsRef<Path>) -> Result<DataFrame, ResultsError> {
    read_frame(path.as_ref(), FileKind::Predictions)
}

/// Typed access to the columns of a conformed frame.
struct Columns<'a> {
    df: &'a DataFrame,
    path: &'a Path,
}

impl<'a> Columns<'a> {
    fn get(&self, name: &str) -> Result<&'a Column, ResultsError> {
        self.df.column(name).map_err(frame_error(self.path, "read"))
    }

    fn str(&self, name: &str) -> Result<Vec<&'a str>, ResultsError> {
        let ca = self
            .get(name)?
            .str()
            .map_err(frame_error(self.path, "read"))?;
        Ok(ca.iter().map(Option::unwrap_or_default).collect())
    }

    fn u64(&self, name: &str) -> Result<Vec<Option<u64>>, ResultsError> {
        let ca = self
            .get(name)?
            .u64()
            .map_err(frame_error(self.path, "read"))?;
        Ok(ca.iter().collect())
    }

    fn u32(&self, name: &str) -> Result<Vec<Option<u32>>, ResultsError> {
        let ca = self
            .get(name)?
            .u32()
            .map_err(frame_error(self.path, "read"))?;
        Ok(ca.iter().collect())
    }

    fn f64(&self, name: &str) -> Result<Vec<f64>, ResultsError> {
        let ca = self
            .get(name)?
            .f64()
            .map_err(frame_error(self.path, "read"))?;
        Ok(ca.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }

    fn bool(&self, name: &str) -> Result<Vec<bool>, ResultsError> {
        let ca = self
            .get(name)?
            .bool()
            .map_err(frame_error(self.path, "read"))?;
        Ok(ca.iter().map(Option::unwrap_or_default).collect())
    }

    /// Parses a fixed-set string column, naming the first bad row.
    fn parse<T: FromStr>(&self, name: &str, allowed: &'static str) -> Result<Vec<T>, ResultsError> {
        self.str(name)?
            .into_iter()
            .enumerate()
            .map(|(row, s)| {
                s.parse().map_err(|_| ResultsError::BadValue {
                    path: self.path.to_path_buf(),
                    column: name.to_string(),
                    row,
                    value: s.to_string(),
                    allowed,
                })
            })
            .collect()
    }
}

/// Reads every row of a `metrics.parquet` file.
pub fn read_metrics(path: impl AsRef<Path>) -> Result<Vec<MetricRow>, ResultsError> {
    let path = path.as_ref();
    let df = metrics_frame(path)?;
    let c = Columns { df: &df, path };
    let experiment = c.str("experiment")?;
    let arm = c.str("arm")?;
    let seed = c.u64("seed")?;
    let step = c.u64("step")?;
    let epoch = c.u32("epoch")?;
    let split: Vec<Split> = c.parse("split", "train, val, test")?;
    let metric = c.str("metric")?;
    let value = c.f64("value")?;
    Ok((0..df.height())
        .map(|i| MetricRow {
            experiment: experiment[i].to_string(),
            arm: arm[i].to_string(),
            seed: seed[i].unwrap_or_default(),
            step: step[i].unwrap_or_default(),
            epoch: epoch[i],
            split: split[i],
            metric: metric[i].to_string(),
            value: value[i],
        })
        .collect())
}

/// Reads every row of a `predictions.parquet` file.
pub fn read_predictions(path: impl AsRef<Path>) -> Result<Vec<PredictionRow>, ResultsError> {
    let path = path.as_ref();
    let df = predictions_frame(path)?;
    let c = Columns { df: &df, path };
    let experiment = c.str("experiment")?;
    let arm = c.str("arm")?;
    let seed = c.u64("seed")?;
    let example = c.u64("example")?;
    let label = c.u32("label")?;
    let predicted = c.u32("predicted")?;
    Ok((0..df.height())
        .map(|i| PredictionRow {
            experiment: experiment[i].to_string(),
            arm: arm[i].to_string(),
            seed: seed[i].unwrap_or_default(),
            example: example[i].unwrap_or_default(),
            label: label[i].unwrap_or_default(),
            predicted: predicted[i].unwrap_or_default(),
        })
        .collect())
}

/// Reads every row of a `summary.parquet` file.
pub fn read_summary(path: impl AsRef<Path>) -> Result<Vec<SummaryRow>, ResultsError> {
    let path = path.as_ref();
    let df = summary_frame(path)?;
    let c = Columns { df: &df, path };
    let experiment = c.str("experiment")?;
    let arm = c.str("arm")?;
    let seed = c.u64("seed")?;
    let status: Vec<Status> = c.parse("status", "ok, diverged, interrupted")?;
    let status_step = c.u64("status_step")?;
    let steps = c.u64("steps")?;
    let final_train_loss = c.f64("final_train_loss")?;
    let final_val_loss = c.f64("final_val_loss")?;
    let best_val_loss = c.f64("best_val_loss")?;
    let best_epoch = c.u32("best_epoch")?;
    let final_val_accuracy = c.f64("final_val_accuracy")?;
    let best_val_accuracy = c.f64("best_val_accuracy")?;
    let wall_seconds = c.f64("wall_seconds")?;
    Ok((0..df.height())
        .map(|i| SummaryRow {
            experiment: experiment[i].to_string(),
            arm: arm[i].to_string(),
            seed: seed[i].unwrap_or_default(),
            status: status[i],
            status_step: status_step[i],
            steps: steps[i].unwrap_or_default(),
            final_train_loss: final_train_loss[i],
            final_val_loss: final_val_loss[i],
            best_val_loss: best_val_loss[i],
            best_epoch: best_epoch[i].unwrap_or_default(),
            final_val_accuracy: final_val_accuracy[i],
            best_val_accuracy: best_val_accuracy[i],
            wall_seconds: wall_seconds[i],
        })
        .collect())
}
