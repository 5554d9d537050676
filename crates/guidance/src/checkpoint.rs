//! What a run saves every N steps so that a killed process continues where
//! it stopped and ends with the numbers an uninterrupted run gets.
//!
//! A checkpoint is a directory `step-<S>/` holding the target, the
//! optimiser state, the best network so far, a hinted arm's regressor, the rows logged so far and a
//! small TOML state; a file `LATEST` names the newest complete one. `LATEST`
//! is replaced atomically only after its directory is fully written, so a
//! kill at any moment leaves the previous checkpoint usable.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};
use untrainable_results::{MetricRow, read_metrics, write_atomic, write_metrics};

use crate::run_log::{BestEpoch, ValScore};

/// Where and how often a run checkpoints.
#[derive(Debug, Clone)]
pub struct Checkpointing {
    pub dir: PathBuf,
    /// Training steps between checkpoints (at least 1).
    pub every_steps: u64,
}

/// The loop's position and bookkeeping at a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LoopState {
    pub step: u64,
    pub epoch: u32,
    /// Batches of `epoch` already trained on.
    pub batch: usize,
    pub train_loss: f64,
    pub final_val: ValScore,
    pub best: BestEpoch,
    pub has_best_model: bool,
    /// Wall time spent before the checkpoint, added to the final summary.
    pub seconds: f64,
}

/// A checkpoint read back: the state, the rows and the paths of the records.
pub(crate) struct Saved {
    pub state: LoopState,
    pub rows: Vec<MetricRow>,
    dir: PathBuf,
}

impl Saved {
    pub fn model<T: Module>(&self, fresh: T) -> Result<T, String> {
        load(fresh, &self.dir.join("model.bpk"))
    }

    pub fn best<T: Module>(&self, fresh: T) -> Result<Option<T>, String> {
        if self.state.has_best_model {
            load(fresh, &self.dir.join("best.bpk")).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The hint's regressor, for hinted arms.
    pub fn hint<T: Module>(&self, fresh: T) -> Result<T, String> {
        load(fresh, &self.dir.join("hint.bpk"))
    }

    pub fn optimiser(&self, fresh: ModuleOptimizer) -> Result<ModuleOptimizer, String> {
        let path = self.dir.join("optimiser.bpk");
        fresh.load(&path).map_err(|e| broken(&path, e))
    }
}

fn broken(path: &Path, e: impl std::fmt::Display) -> String {
    format!(
        "cannot read the checkpoint file {}: {e}; delete its directory to start the run over",
        path.display()
    )
}

fn load<T: Module>(fresh: T, path: &Path) -> Result<T, String> {
    fresh.try_load_file(path).map_err(|e| broken(path, e))
}

impl Checkpointing {
    /// The newest complete checkpoint, if any.
    pub(crate) fn latest(&self) -> Result<Option<Saved>, String> {
        let pointer = self.dir.join("LATEST");
        let name = match std::fs::read_to_string(&pointer) {
            Ok(name) => name.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(broken(&pointer, e)),
        };
        let dir = self.dir.join(name);
        let state_path = dir.join("state.toml");
        let text = std::fs::read_to_string(&state_path).map_err(|e| broken(&state_path, e))?;
        let state: LoopState = toml::from_str(&text).map_err(|e| broken(&state_path, e))?;
        let rows_path = dir.join("rows.parquet");
        let rows = read_metrics(&rows_path).map_err(|e| broken(&rows_path, e))?;
        Ok(Some(Saved { state, rows, dir }))
    }

    /// Writes a checkpoint, points `LATEST` at it and removes older ones.
    pub(crate) fn save<T: Module>(
        &self,
        state: &LoopState,
        rows: &[MetricRow],
        model: &T,
        best: Option<&T>,
        hint: Option<&impl Module>,
        optimiser: &ModuleOptimizer,
    ) -> Result<(), String> {
        let name = format!("step-{}", state.step);
        let dir = self.dir.join(&name);
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            format!(
                "cannot write the checkpoint {what} in {}: {e}",
                dir.display()
            )
        };
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| failed("directory", &e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| failed("directory", &e))?;
        model
            .clone()
            .save_file(dir.join("model.bpk"))
            .map_err(|e| failed("model", &e))?;
        if let Some(best) = best {
            best.clone()
                .save_file(dir.join("best.bpk"))
                .map_err(|e| failed("best model", &e))?;
        }
        if let Some(hint) = hint {
            hint.clone()
                .save_file(dir.join("hint.bpk"))
                .map_err(|e| failed("hint regressor", &e))?;
        }
        optimiser
            .save(dir.join("optimiser.bpk"))
            .map_err(|e| failed("optimiser state", &e))?;
        write_metrics(dir.join("rows.parquet"), rows).map_err(|e| failed("rows", &e))?;
        let text = toml::to_string(state).map_err(|e| failed("state", &e))?;
        write_atomic(dir.join("state.toml"), text.as_bytes()).map_err(|e| failed("state", &e))?;
        write_atomic(self.dir.join("LATEST"), name.as_bytes())
            .map_err(|e| failed("pointer", &e))?;
        for entry in std::fs::read_dir(&self.dir)
            .map_err(|e| failed("directory", &e))?
            .flatten()
        {
            let other = entry.file_name().to_string_lossy().into_owned();
            if other.starts_with("step-") && other != name {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(())
    }
}
