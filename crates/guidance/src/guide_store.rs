//! Trained networks on disk, keyed by everything that made them, so that a
//! "trained guide" arm reuses a guide trained once instead of retraining it
//! in every run and experiment.

use std::path::{Path, PathBuf};

use burn::module::Module;
use sha2::{Digest, Sha256};
use untrainable_results::{
    MetricRow, SummaryRow, read_metrics, read_summary, write_metrics, write_summary,
};

/// A stored network and the log of its training.
#[derive(Debug)]
pub struct Stored<N> {
    pub network: N,
    pub rows: Vec<MetricRow>,
    pub summary: SummaryRow,
}

/// The training log's files beside a record.
fn log_paths(record: &Path) -> (PathBuf, PathBuf) {
    (
        record.with_extension("metrics.parquet"),
        record.with_extension("summary.parquet"),
    )
}

/// A directory of trained networks. Each is stored as
/// `<name>-<key>.bpk` (a burn record) beside `<name>-<key>.toml`, the recipe
/// it was trained from, and the rows and summary its training logged
/// (`.metrics.parquet`, `.summary.parquet`), so that a run reusing it still
/// reports how it was trained; the key is the first 16 hex digits of the
/// recipe's sha256.
#[derive(Debug, Clone)]
pub struct TrainedStore {
    dir: PathBuf,
}

impl TrainedStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record's path for `name` trained from `recipe`: the recipe is the
    /// TOML of everything that decides the weights (architecture, task,
    /// training config, seed), so a change to any of them is a new key.
    pub fn path(&self, name: &str, recipe: &str) -> PathBuf {
        let digest = Sha256::digest(recipe.as_bytes());
        let key: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}-{key}.bpk"))
    }

    /// Waits for and holds (until the file is dropped) the lock on `name`
    /// trained from `recipe`, so that of several processes sharing the store
    /// (slices of one grid on a cluster) one trains it while the others wait
    /// and then read it. The lock is the operating system's, on
    /// `<name>-<key>.lock`: a killed holder releases it.
    pub fn lock(&self, name: &str, recipe: &str) -> Result<std::fs::File, String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create the directory {}: {e}", self.dir.display()))?;
        let path = self.path(name, recipe).with_extension("lock");
        let fail = |e: std::io::Error| format!("cannot lock {}: {e}", path.display());
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(fail)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::info!(
                    "waiting for another process to train the {name} of {}",
                    path.display()
                );
                file.lock().map_err(fail)?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(fail(e)),
        }
        Ok(file)
    }

    /// The stored network for `recipe`, loaded into `fresh` (a network of the
    /// same architecture), with the log of its training; `None` when none is
    /// stored.
    ///
    /// # Errors
    /// A stored file that cannot be read or does not fit `fresh`, with the
    /// path and the way out.
    pub fn load<N: Module>(
        &self,
        name: &str,
        recipe: &str,
        fresh: N,
    ) -> Result<Option<Stored<N>>, String> {
        let path = self.path(name, recipe);
        let (metrics, summary) = log_paths(&path);
        // A record without its training log is incomplete (or from a version
        // that kept no log): it is trained again and replaced.
        if !(path.exists() && metrics.exists() && summary.exists()) {
            return Ok(None);
        }
        let fail = |what: &Path, e: &dyn std::fmt::Display| {
            format!(
                "cannot load the trained {name} from {}: {e}; delete {} to train it again",
                what.display(),
                path.display()
            )
        };
        let network = fresh.try_load_file(&path).map_err(|e| fail(&path, &e))?;
        let rows = read_metrics(&metrics).map_err(|e| fail(&metrics, &e))?;
        let summary = read_summary(&summary)
            .map_err(|e| fail(&summary, &e))?
            .into_iter()
            .next()
            .ok_or_else(|| fail(&summary, &"no row"))?;
        Ok(Some(Stored {
            network,
            rows,
            summary,
        }))
    }

    /// Stores `network` under `recipe`: the record is written to a temporary
    /// file and renamed, so a killed process never leaves half a record; the
    /// recipe is written beside it for people to read.
    pub fn save<N: Module>(
        &self,
        name: &str,
        recipe: &str,
        network: N,
        rows: &[MetricRow],
        summary: &SummaryRow,
    ) -> Result<PathBuf, String> {
        let path = self.path(name, recipe);
        // The log first: the record's presence is what marks a stored network.
        let (metrics, summary_path) = log_paths(&path);
        write_metrics(&metrics, rows).map_err(|e| e.to_string())?;
        write_summary(&summary_path, std::slice::from_ref(summary)).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create the directory {}: {e}", self.dir.display()))?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = self
            .dir
            .join(format!(".{file_name}.{}.tmp.bpk", std::process::id()));
        network
            .save_file(&tmp)
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot move {} to {}: {e}", tmp.display(), path.display())
        })?;
        untrainable_results::write_atomic(path.with_extension("toml"), recipe.as_bytes())
            .map_err(|e| e.to_string())?;
        Ok(path)
    }
}
