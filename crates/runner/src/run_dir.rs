//! `OUT/<experiment>/`: `config.toml`, `metrics.parquet`, `summary.parquet`,
//! and `runs/<arm>-seed<S>/` with each finished (arm, seed) run, so that an
//! interrupted invocation resumes where it stopped.

use std::path::{Path, PathBuf};

use untrainable_results::{
    MetricRow, SummaryRow, read_metrics, read_summary, write_metrics, write_summary,
};

pub struct RunDir {
    dir: PathBuf,
    checkpoint_every: u64,
}

/// Training steps between checkpoints unless `--checkpoint-every` says
/// otherwise.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 200;

impl RunDir {
    /// Opens the experiment directory for a run with `resolved_config`.
    ///
    /// Without `resume`, finished runs of an earlier invocation are removed.
    /// With `resume`, the saved `config.toml` must equal `resolved_config`,
    /// since reusing runs made with another config would mix results.
    pub fn prepare(dir: &Path, resolved_config: &str, resume: bool) -> Result<Self, String> {
        let config_path = dir.join("config.toml");
        if resume {
            match std::fs::read_to_string(&config_path) {
                Ok(saved) if saved == resolved_config => {}
                Ok(_) => {
                    return Err(format!(
                        "--resume: {} was written by a different config; rerun without --resume \
                         to start over, or with the same preset, --config and --set options",
                        config_path.display()
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "--resume: nothing to resume in {} (no config.toml); run without --resume",
                        dir.display()
                    ));
                }
            }
        } else {
            let runs = dir.join("runs");
            if runs.exists() {
                std::fs::remove_dir_all(&runs)
                    .map_err(|e| format!("cannot clear {}: {e}", runs.display()))?;
            }
            crate::write_text(&config_path, resolved_config)?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Checkpoint every `steps` training steps (at least 1).
    pub fn with_checkpoint_every(mut self, steps: u64) -> Self {
        self.checkpoint_every = steps.max(1);
        self
    }

    /// Where the unfinished (arm, seed) run keeps its checkpoints, and how
    /// often; removed with the run's part when a run starts over.
    pub fn checkpointing(&self, arm: &str, seed: u64) -> untrainable_guidance::Checkpointing {
        untrainable_guidance::Checkpointing {
            dir: self.part(arm, seed).join("checkpoint"),
            every_steps: self.checkpoint_every,
        }
    }

    fn part(&self, arm: &str, seed: u64) -> PathBuf {
        self.dir.join("runs").join(format!("{arm}-seed{seed}"))
    }

    /// The rows of a run an earlier invocation finished, if any.
    pub fn finished(
        &self,
        arm: &str,
        seed: u64,
    ) -> Result<Option<(Vec<MetricRow>, SummaryRow)>, String> {
        let part = self.part(arm, seed);
        let summary_path = part.join("summary.parquet");
        if !summary_path.exists() {
            return Ok(None);
        }
        let rows = read_metrics(&part.join("metrics.parquet")).map_err(|e| e.to_string())?;
        let summary = read_summary(&summary_path)
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .ok_or_else(|| {
                format!(
                    "{} has no row; delete it and resume",
                    summary_path.display()
                )
            })?;
        Ok(Some((rows, summary)))
    }

    /// Saves one finished run. The summary is written last, so a run counts
    /// as finished only when both files are complete.
    pub fn save(&self, rows: &[MetricRow], summary: &SummaryRow) -> Result<(), String> {
        let part = self.part(&summary.arm, summary.seed);
        write_metrics(&part.join("metrics.parquet"), rows).map_err(|e| e.to_string())?;
        write_summary(&part.join("summary.parquet"), std::slice::from_ref(summary))
            .map_err(|e| e.to_string())?;
        // The finished run supersedes its checkpoints.
        let checkpoints = part.join("checkpoint");
        if checkpoints.exists() {
            std::fs::remove_dir_all(&checkpoints)
                .map_err(|e| format!("cannot remove {}: {e}", checkpoints.display()))?;
        }
        Ok(())
    }

    /// Writes `metrics.parquet` and `summary.parquet` for all runs.
    pub fn write_results(
        &self,
        rows: &[MetricRow],
        summaries: &[SummaryRow],
    ) -> Result<(), String> {
        write_metrics(&self.dir.join("metrics.parquet"), rows).map_err(|e| e.to_string())?;
        write_summary(&self.dir.join("summary.parquet"), summaries).map_err(|e| e.to_string())
    }
}
