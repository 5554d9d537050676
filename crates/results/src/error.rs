//! One error type for every results file, whose messages say which file,
//! what was expected there and what to do about it.

use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

use polars::prelude::PolarsError;

use crate::schema::FileKind;

/// Why a results file could not be written or read.
#[derive(Debug)]
#[non_exhaustive]
pub enum ResultsError {
    /// The file does not exist.
    Missing { path: PathBuf, kind: FileKind },
    /// The operating system refused an operation on the file.
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// The file exists but is not parquet.
    NotParquet {
        path: PathBuf,
        kind: FileKind,
        detail: String,
    },
    /// A column the schema requires is absent.
    MissingColumn {
        path: PathBuf,
        kind: FileKind,
        column: String,
    },
    /// A column has a type that cannot stand for the schema's.
    WrongType {
        path: PathBuf,
        kind: FileKind,
        column: String,
        expected: &'static str,
        found: String,
    },
    /// A null in a column the schema requires to be filled.
    Null {
        path: PathBuf,
        kind: FileKind,
        column: String,
        row: usize,
    },
    /// A string column holds a value outside its fixed set.
    BadValue {
        path: PathBuf,
        column: String,
        row: usize,
        value: String,
        allowed: &'static str,
    },
    /// polars failed to encode or decode the file.
    Polars {
        path: PathBuf,
        action: &'static str,
        source: PolarsError,
    },
}

impl ResultsError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Missing { path, .. }
            | Self::Io { path, .. }
            | Self::NotParquet { path, .. }
            | Self::MissingColumn { path, .. }
            | Self::WrongType { path, .. }
            | Self::Null { path, .. }
            | Self::BadValue { path, .. }
            | Self::Polars { path, .. } => path,
        }
    }
}

/// The experiment a results path belongs to: the directory holding the file,
/// or the one holding `runs/` for the per-run files of the runner.
fn experiment_of(path: &Path) -> Option<String> {
    let dirs: Vec<&str> = path
        .parent()?
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    let at = dirs
        .iter()
        .rposition(|d| *d == "runs")
        .unwrap_or(dirs.len());
    at.checked_sub(1).map(|i| dirs[i].to_string())
}

/// The command that writes `path`, for messages about a missing or bad file.
fn producer(path: &Path) -> String {
    match experiment_of(path) {
        Some(name) => format!("`cargo run -p exp-{name}`"),
        None => "the experiment binary (`cargo run -p exp-<experiment>`)".to_string(),
    }
}

impl fmt::Display for ResultsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { path, kind } => write!(
                f,
                "{} does not exist; expected the {} file that {} writes (into `--out`, by default results/<experiment>/); run it first",
                path.display(),
                kind.name(),
                producer(path),
            ),
            Self::Io {
                path,
                action,
                source,
            } => write!(
                f,
                "cannot {action} {}: {source}; check that the path is right and its directory is writable",
                path.display()
            ),
            Self::NotParquet { path, kind, detail } => write!(
                f,
                "{} is not a parquet file ({detail}); expected the {} file that {} writes; delete it and run the experiment again",
                path.display(),
                kind.name(),
                producer(path),
            ),
            Self::MissingColumn { path, kind, column } => write!(
                f,
                "missing column `{column}` in {}: expected the {} schema ({}); was it written by an experiment binary?",
                path.display(),
                kind.name(),
                kind.column_list(),
            ),
            Self::WrongType {
                path,
                kind,
                column,
                expected,
                found,
            } => write!(
                f,
                "column `{column}` in {} has type {found}, expected {expected} (the {} schema: {}); was it written by an experiment binary?",
                path.display(),
                kind.name(),
                kind.column_list(),
            ),
            Self::Null {
                path,
                kind,
                column,
                row,
            } => write!(
                f,
                "column `{column}` in {} is null at row {row}; in the {} schema only {} may be null; write the file again with the experiment binary",
                path.display(),
                kind.name(),
                kind.nullable_list(),
            ),
            Self::BadValue {
                path,
                column,
                row,
                value,
                allowed,
            } => write!(
                f,
                "column `{column}` in {} holds {value:?} at row {row}, expected one of {allowed}; write the file again with the experiment binary",
                path.display()
            ),
            Self::Polars {
                path,
                action,
                source,
            } => write!(
                f,
                "cannot {action} {}: {source}; if the file is damaged, delete it and run the experiment again",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ResultsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Polars { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiment_is_found_from_top_level_and_per_run_paths() {
        assert_eq!(
            experiment_of(Path::new("results/fcn-warmup/metrics.parquet")).as_deref(),
            Some("fcn-warmup")
        );
        assert_eq!(
            experiment_of(Path::new(
                "results/fcn-warmup/runs/base-seed0/metrics.parquet"
            ))
            .as_deref(),
            Some("fcn-warmup")
        );
        assert_eq!(experiment_of(Path::new("metrics.parquet")), None);
    }
}
