//! The files as other tools see them: round trips, on-disk types, and the
//! errors a damaged or foreign file gives.

use std::fs::File;
use std::path::Path;

use polars::prelude::{Column, DataFrame, DataType, ParquetReader, ParquetWriter, SerReader};
use untrainable_results::{
    MetricRow, PredictionRow, ResultsError, Split, Status, SummaryRow, metrics_frame,
    predictions_frame, read_metrics, read_predictions, read_summary, write_atomic, write_metrics,
    write_predictions, write_summary,
};

fn metric(
    arm: &str,
    seed: u64,
    step: u64,
    epoch: Option<u32>,
    split: Split,
    metric: &str,
    value: f64,
) -> MetricRow {
    MetricRow {
        experiment: "fcn-warmup".into(),
        arm: arm.into(),
        seed,
        step,
        epoch,
        split,
        metric: metric.into(),
        value,
    }
}

fn sample_metrics() -> Vec<MetricRow> {
    vec![
        metric("base", 0, 1, None, Split::Train, "loss", 2.25),
        metric("base", 0, 2, None, Split::Train, "loss", f64::NAN),
        metric(
            "guided",
            u64::MAX,
            10,
            Some(1),
            Split::Val,
            "accuracy",
            0.125,
        ),
        metric("guided", 3, 10, Some(0), Split::Test, "cka/layer.3", -0.5),
    ]
}

fn summary(arm: &str, status: Status, status_step: Option<u64>, val_loss: f64) -> SummaryRow {
    SummaryRow {
        experiment: "fcn-warmup".into(),
        arm: arm.into(),
        seed: 7,
        status,
        status_step,
        steps: 1234,
        final_train_loss: 0.5,
        final_val_loss: val_loss,
        best_val_loss: val_loss,
        best_epoch: 3,
        final_val_accuracy: 0.75,
        best_val_accuracy: 0.8,
        wall_seconds: 12.5,
    }
}

/// Rows compared field by field, with NaN equal to NaN.
fn same_metrics(a: &MetricRow, b: &MetricRow) -> bool {
    MetricRow {
        value: 0.0,
        ..a.clone()
    } == MetricRow {
        value: 0.0,
        ..b.clone()
    } && a.value.to_bits() == b.value.to_bits()
}

fn read_raw(path: &Path) -> DataFrame {
    ParquetReader::new(File::open(path).unwrap())
        .finish()
        .unwrap()
}

fn write_raw(path: &Path, columns: Vec<Column>) {
    let height = columns[0].len();
    let mut df = DataFrame::new(height, columns).unwrap();
    ParquetWriter::new(File::create(path).unwrap())
        .finish(&mut df)
        .unwrap();
}

/// A metrics frame with `value` left out and `seed` given as `seed`.
fn metrics_columns(seed: Column, with_value: bool) -> Vec<Column> {
    let mut columns = vec![
        Column::new("experiment".into(), vec!["x"]),
        Column::new("arm".into(), vec!["base"]),
        seed,
        Column::new("step".into(), vec![1u64]),
        Column::new("epoch".into(), vec![None::<u32>]),
        Column::new("split".into(), vec!["train"]),
        Column::new("metric".into(), vec!["loss"]),
    ];
    if with_value {
        columns.push(Column::new("value".into(), vec![1.5f64]));
    }
    columns
}

#[test]
fn metrics_round_trip_keeps_null_epochs_every_split_and_nan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results/fcn-warmup/metrics.parquet");
    let rows = sample_metrics();
    write_metrics(&path, &rows).unwrap();
    let back = read_metrics(&path).unwrap();
    assert_eq!(back.len(), rows.len());
    for (a, b) in rows.iter().zip(&back) {
        assert!(same_metrics(a, b), "{a:?} came back as {b:?}");
    }
    let splits: Vec<Split> = back.iter().map(|r| r.split).collect();
    for split in Split::ALL {
        assert!(splits.contains(&split), "{split} lost");
    }
}

#[test]
fn summary_round_trip_keeps_status_and_missing_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.parquet");
    let rows = vec![
        summary("base", Status::Ok, None, 0.5),
        summary("guided", Status::Diverged, Some(99), f64::NAN),
        summary("noise-warmup", Status::Interrupted, Some(5), 1.0),
    ];
    write_summary(&path, &rows).unwrap();
    let back = read_summary(&path).unwrap();
    assert_eq!(back.len(), 3);
    assert_eq!(back[0], rows[0]);
    assert_eq!(back[2], rows[2]);
    assert_eq!(back[1].status, Status::Diverged);
    assert_eq!(back[1].status_step, Some(99));
    assert!(back[1].final_val_loss.is_nan());
    assert_eq!(
        SummaryRow {
            final_val_loss: 0.0,
            best_val_loss: 0.0,
            ..back[1].clone()
        },
        SummaryRow {
            final_val_loss: 0.0,
            best_val_loss: 0.0,
            ..rows[1].clone()
        }
    );
}

#[test]
fn predictions_round_trip_with_their_column_types_and_a_missing_column_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("predictions.parquet");
    let rows: Vec<PredictionRow> = (0..5u64)
        .map(|i| PredictionRow {
            experiment: "x".into(),
            arm: if i < 3 { "base" } else { "guided" }.into(),
            seed: i % 2,
            example: i,
            label: (i * 3 % 10) as u32,
            predicted: u32::MAX - i as u32,
        })
        .collect();
    write_predictions(&path, &rows).unwrap();
    assert_eq!(read_predictions(&path).unwrap(), rows);
    let frame = predictions_frame(&path).unwrap();
    let types: Vec<(String, DataType)> = frame
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.dtype().clone()))
        .collect();
    let expected = [
        ("experiment", DataType::String),
        ("arm", DataType::String),
        ("seed", DataType::UInt64),
        ("example", DataType::UInt64),
        ("label", DataType::UInt32),
        ("predicted", DataType::UInt32),
    ];
    assert_eq!(types, expected.map(|(n, t)| (n.to_string(), t)).to_vec());

    // A metrics file is not a predictions file: the first missing column is named.
    write_metrics(&path, &sample_metrics()).unwrap();
    let message = read_predictions(&path).unwrap_err().to_string();
    assert!(message.contains("`example`"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn written_files_have_the_design_column_types() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("metrics.parquet");
    write_metrics(&metrics, &sample_metrics()).unwrap();
    let df = read_raw(&metrics);
    let expected = [
        ("experiment", DataType::String),
        ("arm", DataType::String),
        ("seed", DataType::UInt64),
        ("step", DataType::UInt64),
        ("epoch", DataType::UInt32),
        ("split", DataType::String),
        ("metric", DataType::String),
        ("value", DataType::Float64),
    ];
    let got: Vec<(String, DataType)> = df
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.dtype().clone()))
        .collect();
    let want: Vec<(String, DataType)> = expected
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(df.column("epoch").unwrap().null_count(), 2);
    let splits: Vec<&str> = df
        .column("split")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(splits, ["train", "train", "val", "test"]);

    let summary_path = dir.path().join("summary.parquet");
    write_summary(
        &summary_path,
        &[summary("base", Status::Diverged, Some(4), 1.0)],
    )
    .unwrap();
    let df = read_raw(&summary_path);
    let expected = [
        ("experiment", DataType::String),
        ("arm", DataType::String),
        ("seed", DataType::UInt64),
        ("status", DataType::String),
        ("status_step", DataType::UInt64),
        ("steps", DataType::UInt64),
        ("final_train_loss", DataType::Float64),
        ("final_val_loss", DataType::Float64),
        ("best_val_loss", DataType::Float64),
        ("best_epoch", DataType::UInt32),
        ("final_val_accuracy", DataType::Float64),
        ("best_val_accuracy", DataType::Float64),
        ("wall_seconds", DataType::Float64),
    ];
    let got: Vec<(String, DataType)> = df
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.dtype().clone()))
        .collect();
    let want: Vec<(String, DataType)> = expected
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    assert_eq!(got, want);
    let status: Vec<&str> = df
        .column("status")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(status, ["diverged"]);
}

#[test]
fn missing_column_error_names_the_column_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.parquet");
    write_raw(
        &path,
        metrics_columns(Column::new("seed".into(), vec![0u64]), false),
    );
    let err = read_metrics(&path).unwrap_err();
    assert!(
        matches!(&err, ResultsError::MissingColumn { column, .. } if column == "value"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("`value`"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("experiment, arm, seed"), "{message}");
    assert!(metrics_frame(&path).is_err());
}

#[test]
fn wrong_column_type_is_an_error_but_other_integer_widths_are_cast() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.parquet");
    write_raw(
        &path,
        metrics_columns(Column::new("seed".into(), vec!["zero"]), true),
    );
    let err = read_metrics(&path).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ResultsError::WrongType { .. }), "{message}");
    assert!(
        message.contains("`seed`") && message.contains("u64"),
        "{message}"
    );

    // pandas writes int64: accepted while every value fits.
    write_raw(
        &path,
        metrics_columns(Column::new("seed".into(), vec![4i64]), true),
    );
    assert_eq!(read_metrics(&path).unwrap()[0].seed, 4);
    assert_eq!(
        metrics_frame(&path)
            .unwrap()
            .column("seed")
            .unwrap()
            .dtype(),
        &DataType::UInt64
    );
    write_raw(
        &path,
        metrics_columns(Column::new("seed".into(), vec![-1i64]), true),
    );
    assert!(matches!(
        read_metrics(&path).unwrap_err(),
        ResultsError::WrongType { .. }
    ));
}

#[test]
fn unknown_split_and_stray_null_name_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.parquet");
    let mut columns = metrics_columns(Column::new("seed".into(), vec![0u64]), true);
    columns[5] = Column::new("split".into(), vec!["validation"]);
    write_raw(&path, columns);
    let message = read_metrics(&path).unwrap_err().to_string();
    assert!(
        message.contains("\"validation\"") && message.contains("train, val, test"),
        "{message}"
    );

    let mut columns = metrics_columns(Column::new("seed".into(), vec![0u64]), true);
    columns[1] = Column::new("arm".into(), vec![None::<&str>]);
    write_raw(&path, columns);
    let message = read_metrics(&path).unwrap_err().to_string();
    assert!(
        message.contains("`arm`") && message.contains("row 0") && message.contains("`epoch`"),
        "{message}"
    );
}

#[test]
fn non_parquet_file_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.parquet");
    std::fs::write(&path, "experiment,arm,seed\nx,base,0\n").unwrap();
    let err = read_metrics(&path).unwrap_err();
    assert!(matches!(err, ResultsError::NotParquet { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );

    // Right magic bytes, garbage inside: still an error, not a panic.
    std::fs::write(&path, b"PAR1 not really a parquet file at all PAR1").unwrap();
    let err = read_summary(&path).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );

    std::fs::write(&path, b"").unwrap();
    assert!(matches!(
        read_metrics(&path).unwrap_err(),
        ResultsError::NotParquet { .. }
    ));
}

#[test]
fn missing_file_error_says_which_command_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results/fcn-warmup/metrics.parquet");
    let err = read_metrics(&path).unwrap_err();
    assert!(matches!(err, ResultsError::Missing { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("cargo run -p exp-fcn-warmup"), "{message}");
}

#[test]
fn atomic_write_replaces_the_file_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("a/b");
    let path = sub.join("config.toml");
    write_atomic(&path, b"first = 1\n").unwrap();
    write_atomic(&path, b"second = 2\n").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "second = 2\n");

    let parquet = sub.join("metrics.parquet");
    write_metrics(&parquet, &sample_metrics()).unwrap();
    write_metrics(&parquet, &sample_metrics()[..1]).unwrap();
    assert_eq!(read_metrics(&parquet).unwrap().len(), 1);

    let mut names: Vec<String> = std::fs::read_dir(&sub)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["config.toml", "metrics.parquet"]);
}

#[test]
fn failed_write_reports_the_path_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    write_atomic(&path, b"old").unwrap();
    // A directory where the file should go makes the rename fail.
    let blocked = dir.path().join("blocked");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("inner"), b"x").unwrap();
    let err = write_atomic(&blocked, b"new").unwrap_err();
    assert!(
        err.to_string().contains(&blocked.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
    let leftovers = std::fs::read_dir(dir.path()).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")
    });
    assert_eq!(leftovers.count(), 0);
}
