//! `OUT/<experiment>/`: `config.toml`, `metrics.parquet`, `summary.parquet`,
//! `predictions.parquet` where the runs made test predictions, and
//! `runs/<arm>-seed<S>/` with each finished (arm, seed) run, so that an
//! interrupted invocation resumes where it stopped.

use std::path::{Path, PathBuf};

use crate::shard::{RECORD_FILE, ShardRun};
use untrainable_guidance::Prediction;
use untrainable_results::{
    MetricRow, PredictionRow, SummaryRow, read_metrics, read_predictions, read_summary,
    write_metrics, write_predictions, write_summary,
};

/// What runs produced: the rows of the three results files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunResults {
    pub rows: Vec<MetricRow>,
    pub summaries: Vec<SummaryRow>,
    pub predictions: Vec<PredictionRow>,
}

impl RunResults {
    pub fn extend(&mut self, other: RunResults) {
        self.rows.extend(other.rows);
        self.summaries.extend(other.summaries);
        self.predictions.extend(other.predictions);
    }

    /// Renames every row of `arm` (metrics, summary, predictions) to `to`.
    pub fn rename_arm(&mut self, arm: &str, to: &str) {
        for row in self.rows.iter_mut().filter(|r| r.arm == arm) {
            row.arm = to.to_string();
        }
        for summary in self.summaries.iter_mut().filter(|s| s.arm == arm) {
            summary.arm = to.to_string();
        }
        for prediction in self.predictions.iter_mut().filter(|p| p.arm == arm) {
            prediction.arm = to.to_string();
        }
    }
}

/// One run's test predictions as rows.
pub fn prediction_rows(
    experiment: &str,
    arm: &str,
    seed: u64,
    predictions: &[Prediction],
) -> Vec<PredictionRow> {
    predictions
        .iter()
        .enumerate()
        .map(
            |(example, &Prediction { label, predicted })| PredictionRow {
                experiment: experiment.to_string(),
                arm: arm.to_string(),
                seed,
                example: example as u64,
                label,
                predicted,
            },
        )
        .collect()
}

/// Where the experiment directory `dir` keeps the finished (arm, seed) run.
pub fn part_path(dir: &Path, arm: &str, seed: u64) -> PathBuf {
    dir.join("runs").join(format!("{arm}-seed{seed}"))
}

/// The key of `config.toml` that names the code which wrote the results.
pub const CODE_VERSION_KEY: &str = "code_version";

/// The commit of the checkout this binary was built from, with `-dirty`
/// when its code (`crates/`, `experiments/`, `Cargo.toml`, `Cargo.lock`)
/// differed from that commit; `unknown` where no git checkout was there
/// (recorded at build time by `build.rs`).
pub fn source_version() -> &'static str {
    env!("UNTRAINABLE_SOURCE_VERSION")
}

/// The text of `config.toml`: the code version, then the resolved config.
fn with_code_version(resolved_config: &str) -> String {
    format!(
        "{CODE_VERSION_KEY} = \"{}\"\n{resolved_config}",
        source_version()
    )
}

/// The code version of a saved `config.toml` (if it has one) and the
/// resolved config after it.
fn split_code_version(saved: &str) -> (Option<&str>, &str) {
    let prefix = format!("{CODE_VERSION_KEY} = \"");
    match saved
        .strip_prefix(&prefix)
        .and_then(|rest| rest.split_once("\"\n"))
    {
        Some((version, config)) => (Some(version), config),
        None => (None, saved),
    }
}

pub struct RunDir {
    dir: PathBuf,
    checkpoint_every: u64,
    /// The slice of the grid this invocation runs; `None` for all of it.
    shard: Option<ShardRun>,
    /// Every run must be found finished (put there by `merge`): nothing is
    /// trained.
    from_shards: bool,
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
        let written = with_code_version(resolved_config);
        if resume {
            match std::fs::read_to_string(&config_path) {
                Ok(saved) if saved == written => {}
                Ok(saved) if split_code_version(&saved).1 == resolved_config => {
                    return Err(format!(
                        "--resume: {} was written by code {}, this binary is {}; a results \
                         directory comes from one version of the code: rerun without --resume",
                        config_path.display(),
                        split_code_version(&saved)
                            .0
                            .unwrap_or("of no recorded version"),
                        source_version()
                    ));
                }
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
            crate::write_text(&config_path, &written)?;
        }
        Ok(Self::at(dir))
    }

    /// The directory, untouched (for `--list-runs`, which writes nothing).
    pub fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            shard: None,
            from_shards: false,
        }
    }

    /// Runs only the slice `shard` of the grid. A `shard.toml` left by an
    /// earlier invocation is removed first: it marks a finished slice.
    pub fn with_shard(mut self, shard: ShardRun) -> Result<Self, String> {
        let record = self.dir.join(RECORD_FILE);
        match std::fs::remove_file(&record) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot remove {}: {e}", record.display()));
            }
            _ => {}
        }
        self.shard = Some(shard);
        Ok(self)
    }

    /// Trains nothing: every run must be finished already (`merge`).
    pub fn with_from_shards(mut self, from_shards: bool) -> Self {
        self.from_shards = from_shards;
        self
    }

    pub fn from_shards(&self) -> bool {
        self.from_shards
    }

    /// Meets (arm, seed), the next run of the grid: whether this invocation
    /// needs it (to run it, or its guide).
    pub fn wants(&self, arm: &untrainable_guidance::ArmConfig, seed: u64) -> bool {
        let trained = arm.guide == untrainable_guidance::GuideState::Trained;
        (self.shard.as_ref()).is_none_or(|s| s.wants(&arm.name, seed, trained))
    }

    /// Whether the runs wanted are trained (not `--guides-only`).
    pub fn trains_runs(&self) -> bool {
        self.shard.as_ref().is_none_or(ShardRun::trains_runs)
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
        part_path(&self.dir, arm, seed)
    }

    /// The rows of a run an earlier invocation finished, if any.
    pub fn finished(&self, arm: &str, seed: u64) -> Result<Option<RunResults>, String> {
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
        let predictions_path = part.join("predictions.parquet");
        let predictions = if predictions_path.exists() {
            read_predictions(&predictions_path).map_err(|e| e.to_string())?
        } else {
            Vec::new()
        };
        Ok(Some(RunResults {
            rows,
            summaries: vec![summary],
            predictions,
        }))
    }

    /// Saves one finished run. The summary is written last, so a run counts
    /// as finished only when every file is complete.
    pub fn save(
        &self,
        rows: &[MetricRow],
        summary: &SummaryRow,
        predictions: &[PredictionRow],
    ) -> Result<(), String> {
        let part = self.part(&summary.arm, summary.seed);
        write_metrics(&part.join("metrics.parquet"), rows).map_err(|e| e.to_string())?;
        write_or_remove_predictions(&part.join("predictions.parquet"), predictions)?;
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

    /// Writes `metrics.parquet`, `summary.parquet` and, where there are
    /// predictions, `predictions.parquet` for all runs.
    /// A slice of the grid writes its `shard.toml` last; `--list-runs`
    /// prints the grid instead and writes nothing.
    pub fn write_results(&self, results: &RunResults) -> Result<(), String> {
        if let Some(shard) = &self.shard {
            if shard.selection().list {
                print!("{}", shard.grid_lines());
                return Ok(());
            }
            let record = shard.record()?;
            self.write_files(results)?;
            let text = toml::to_string(&record).map_err(|e| e.to_string())?;
            return crate::write_text(&self.dir.join(RECORD_FILE), &text);
        }
        self.write_files(results)
    }

    fn write_files(&self, results: &RunResults) -> Result<(), String> {
        write_metrics(&self.dir.join("metrics.parquet"), &results.rows)
            .map_err(|e| e.to_string())?;
        write_or_remove_predictions(&self.dir.join("predictions.parquet"), &results.predictions)?;
        write_summary(&self.dir.join("summary.parquet"), &results.summaries)
            .map_err(|e| e.to_string())
    }
}

/// Writes `predictions` to `path`; none removes a file left by an earlier
/// invocation, which would describe other runs.
fn write_or_remove_predictions(path: &Path, predictions: &[PredictionRow]) -> Result<(), String> {
    if !predictions.is_empty() {
        return write_predictions(path, predictions).map_err(|e| e.to_string());
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_toml_names_the_commit_and_resume_refuses_other_code() {
        let head = std::process::Command::new("git")
            .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
            .output()
            .expect("git runs");
        let head = String::from_utf8(head.stdout).unwrap();
        let version = source_version();
        assert!(
            version.starts_with(head.trim()) && version.len() >= 40,
            "{version} is not HEAD ({head}), clean or -dirty"
        );

        let dir = tempfile::tempdir().unwrap();
        let config = "seeds = 1\n";
        RunDir::prepare(dir.path(), config, false).unwrap();
        let path = dir.path().join("config.toml");
        let saved = std::fs::read_to_string(&path).unwrap();
        assert_eq!(saved, format!("code_version = \"{version}\"\n{config}"));
        assert_eq!(split_code_version(&saved), (Some(version), config));
        RunDir::prepare(dir.path(), config, true).expect("the same code resumes");

        std::fs::write(&path, format!("code_version = \"0000000\"\n{config}")).unwrap();
        let err = RunDir::prepare(dir.path(), config, true).err().unwrap();
        assert!(err.contains("written by code 0000000"), "{err}");
        let err = RunDir::prepare(dir.path(), "seeds = 2\n", true)
            .err()
            .unwrap();
        assert!(err.contains("different config"), "{err}");
    }
}
