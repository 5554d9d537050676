//! The two file schemas, and the check that a frame read back follows one.
//!
//! Reading is lenient only where no value can change: an integer column of
//! another width (as pandas writes `int64`) is cast when every value fits.

use std::path::Path;

use polars::prelude::{Column, DataFrame, DataType};

use crate::ResultsError;

/// The logical type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    Str,
    U32,
    U64,
    F64,
    Bool,
}

impl Dtype {
    pub fn polars(self) -> DataType {
        match self {
            Self::Str => DataType::String,
            Self::U32 => DataType::UInt32,
            Self::U64 => DataType::UInt64,
            Self::F64 => DataType::Float64,
            Self::Bool => DataType::Boolean,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Str => "str",
            Self::U32 => "u32",
            Self::U64 => "u64",
            Self::F64 => "f64",
            Self::Bool => "bool",
        }
    }

    /// Whether a column of type `found` can be cast to this type without
    /// changing any value that fits.
    fn accepts_cast_from(self, found: &DataType) -> bool {
        match self {
            Self::Str | Self::Bool => false,
            Self::U32 | Self::U64 => found.is_integer(),
            Self::F64 => found.is_integer() || found.is_float(),
        }
    }
}

/// One column of a schema.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub dtype: Dtype,
    pub nullable: bool,
}

const fn col(name: &'static str, dtype: Dtype) -> ColumnSpec {
    ColumnSpec {
        name,
        dtype,
        nullable: false,
    }
}

const fn nullable(name: &'static str, dtype: Dtype) -> ColumnSpec {
    ColumnSpec {
        name,
        dtype,
        nullable: true,
    }
}

/// `metrics.parquet`: one row per measurement.
pub const METRICS_SCHEMA: &[ColumnSpec] = &[
    col("experiment", Dtype::Str),
    col("arm", Dtype::Str),
    col("seed", Dtype::U64),
    col("step", Dtype::U64),
    nullable("epoch", Dtype::U32),
    col("split", Dtype::Str),
    col("metric", Dtype::Str),
    col("value", Dtype::F64),
];

/// `summary.parquet`: one row per (arm, seed).
pub const SUMMARY_SCHEMA: &[ColumnSpec] = &[
    col("experiment", Dtype::Str),
    col("arm", Dtype::Str),
    col("seed", Dtype::U64),
    col("status", Dtype::Str),
    nullable("status_step", Dtype::U64),
    col("steps", Dtype::U64),
    col("final_train_loss", Dtype::F64),
    col("final_val_loss", Dtype::F64),
    col("best_val_loss", Dtype::F64),
    col("best_epoch", Dtype::U32),
    col("final_val_accuracy", Dtype::F64),
    col("best_val_accuracy", Dtype::F64),
    col("wall_seconds", Dtype::F64),
];

/// `predictions.parquet`: one row per (arm, seed, test example), the
/// selected network's prediction, for analyses of errors (error
/// consistency, confusion matrices).
pub const PREDICTIONS_SCHEMA: &[ColumnSpec] = &[
    col("experiment", Dtype::Str),
    col("arm", Dtype::Str),
    col("seed", Dtype::U64),
    col("example", Dtype::U64),
    col("label", Dtype::U32),
    col("predicted", Dtype::U32),
];

/// `regime.parquet`: one row per regime gate of the run (see [`crate::regime`]).
pub const REGIME_SCHEMA: &[ColumnSpec] = &[
    col("experiment", Dtype::Str),
    col("gate", Dtype::Str),
    col("value", Dtype::F64),
    col("threshold", Dtype::F64),
    col("holds", Dtype::Bool),
];

/// Which of the results files a path should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Metrics,
    Summary,
    Predictions,
    Regime,
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Metrics => "metrics",
            Self::Summary => "summary",
            Self::Predictions => "predictions",
            Self::Regime => "regime",
        }
    }

    pub fn schema(self) -> &'static [ColumnSpec] {
        match self {
            Self::Metrics => METRICS_SCHEMA,
            Self::Summary => SUMMARY_SCHEMA,
            Self::Predictions => PREDICTIONS_SCHEMA,
            Self::Regime => REGIME_SCHEMA,
        }
    }

    /// "experiment, arm, seed, ..." for messages.
    pub(crate) fn column_list(self) -> String {
        self.schema()
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn nullable_list(self) -> String {
        let names: Vec<String> = self
            .schema()
            .iter()
            .filter(|c| c.nullable)
            .map(|c| format!("`{}`", c.name))
            .collect();
        names.join(", ")
    }
}

/// Checks that `df` holds every column of `kind` with a usable type and no
/// stray nulls, casting integer widths to the schema's. Extra columns stay.
pub(crate) fn conform(
    mut df: DataFrame,
    path: &Path,
    kind: FileKind,
) -> Result<DataFrame, ResultsError> {
    for spec in kind.schema() {
        let column = df
            .column(spec.name)
            .map_err(|_| ResultsError::MissingColumn {
                path: path.to_path_buf(),
                kind,
                column: spec.name.to_string(),
            })?;
        let wanted = spec.dtype.polars();
        let found = column.dtype().clone();
        let wrong_type = || ResultsError::WrongType {
            path: path.to_path_buf(),
            kind,
            column: spec.name.to_string(),
            expected: spec.dtype.label(),
            found: found.to_string(),
        };
        let column: Column = if found == wanted {
            column.clone()
        } else if found == DataType::Null && spec.nullable {
            // An all-null column (e.g. no diverged run) may carry no type.
            Column::full_null(spec.name.into(), column.len(), &wanted)
        } else if spec.dtype.accepts_cast_from(&found) {
            column.strict_cast(&wanted).map_err(|_| wrong_type())?
        } else {
            return Err(wrong_type());
        };
        if !spec.nullable && column.null_count() > 0 {
            let row = column
                .is_null()
                .iter()
                .position(|v| v == Some(true))
                .unwrap_or(0);
            return Err(ResultsError::Null {
                path: path.to_path_buf(),
                kind,
                column: spec.name.to_string(),
                row,
            });
        }
        if column.dtype()
            != df
                .column(spec.name)
                .map(|c| c.dtype())
                .unwrap_or(&DataType::Null)
        {
            df.replace(spec.name, column)
                .map_err(|source| ResultsError::Polars {
                    path: path.to_path_buf(),
                    action: "convert a column of",
                    source,
                })?;
        }
    }
    Ok(df)
}
