//! What every experiment binary shares: the command line of DESIGN
//! ("Conventions every experiment binary follows"), presets and overrides,
//! and the results directory with per-run parts that make `--resume` work.

pub mod guided;
pub mod overrides;
pub mod run_dir;

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::level_filters::LevelFilter;
use untrainable_core::Backend;
use untrainable_guidance::Progress;

pub use guided::{GUIDE_ARM, GuidedExperiment, guide_seed, validate_arms};
pub use run_dir::{RunDir, RunResults, prediction_rows};

/// The scale a run is configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// Seconds, tiny data: for tests and CI.
    Smoke,
    /// Minutes on two CPU cores: the committed reproduction.
    Cpu,
    /// The paper's sizes, schedule and data (ImageNet, WikiText-103, read
    /// from `--data`), for a GPU backend.
    Paper,
    /// The image experiments' paper sizes on Fashion-MNIST resized to
    /// 3×224×224, to check on a small machine that they start.
    PaperFmnist,
    /// The language model's paper sizes on the State of the Union corpus.
    PaperSotu,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Smoke => "smoke",
            Preset::Cpu => "cpu",
            Preset::Paper => "paper",
            Preset::PaperFmnist => "paper-fmnist",
            Preset::PaperSotu => "paper-sotu",
        }
    }
}

/// The options every experiment binary takes.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Built-in configuration to start from.
    #[arg(long, value_enum, default_value = "cpu")]
    pub preset: Preset,
    /// A TOML file used instead of the built-in preset.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override one config value, e.g. `--set train.epochs=5` (repeatable;
    /// values are TOML: numbers, booleans, "strings", [lists]).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Run seeds 0..N (overrides the config's `seeds`).
    #[arg(long, value_name = "N", conflicts_with = "seed")]
    pub seeds: Option<u64>,
    /// Run this one seed only.
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Results directory; the experiment writes into OUT/<experiment>/.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Directory for the experiment's figure, drawn once training ends
    /// (`paper-figures` redraws it alone). Default: `paper-figures` when
    /// the results go to `results`, else the results directory, so a
    /// scratch run never overwrites the committed figures.
    #[arg(long, value_name = "DIR")]
    pub figures: Option<PathBuf>,
    /// Compute backend.
    #[arg(long, default_value = "flex")]
    pub backend: Backend,
    /// Keep the (arm, seed) runs that a previous, interrupted invocation with
    /// the same config finished, continue the one it was in from its last
    /// checkpoint, and run the rest.
    #[arg(long)]
    pub resume: bool,
    /// Save a checkpoint of the running (arm, seed) every N training steps,
    /// from which `--resume` continues a killed run.
    #[arg(long, value_name = "N", default_value_t = run_dir::DEFAULT_CHECKPOINT_EVERY)]
    pub checkpoint_every: u64,
    /// Print the resolved config and exit without training.
    #[arg(long)]
    pub dry_run: bool,
    /// No progress bars (for CI and logs).
    #[arg(long)]
    pub quiet: bool,
}

impl CommonArgs {
    /// The seeds to run: `--seed`, else `--seeds`, else the config's count.
    pub fn seeds(&self, configured: u64) -> Vec<u64> {
        match (self.seed, self.seeds) {
            (Some(s), _) => vec![s],
            (None, Some(n)) => (0..n).collect(),
            (None, None) => (0..configured).collect(),
        }
    }

    /// Reads the preset (or `--config` file), applies every `--set`, and
    /// deserialises into `C`, refusing keys `C` does not have and wrong types. Returns
    /// the config and its resolved TOML text.
    pub fn resolve<C: DeserializeOwned + Serialize>(
        &self,
        presets: &[(Preset, &str)],
    ) -> Result<(C, String), String> {
        let (source, text) = match &self.config {
            Some(path) => (
                path.display().to_string(),
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?,
            ),
            None => {
                let text = presets
                    .iter()
                    .find(|(p, _)| *p == self.preset)
                    .map(|(_, t)| t.to_string())
                    .ok_or_else(|| {
                        format!("this experiment has no `{}` preset", self.preset.name())
                    })?;
                (format!("preset `{}`", self.preset.name()), text)
            }
        };
        let mut value: toml::Table =
            toml::from_str(&text).map_err(|e| format!("{source} is not valid TOML: {e}"))?;
        let mut added = Vec::new();
        for assignment in &self.overrides {
            if overrides::apply(&mut value, assignment)? {
                added.push(assignment.split('=').next().unwrap_or_default().trim());
            }
        }
        let config: C = value.clone().try_into().map_err(|e| {
            let hint = match added.as_slice() {
                [] => String::new(),
                keys => format!(
                    "\n(--set added {}, which {source} does not have: check the spelling)",
                    keys.join(", ")
                ),
            };
            format!("{source} (after --set overrides) does not fit the config: {e}{hint}")
        })?;
        let resolved = toml::to_string_pretty(&config).map_err(|e| e.to_string())?;
        let written_back: toml::Table = toml::from_str(&resolved).map_err(|e| e.to_string())?;
        overrides::check_applied(&written_back, &self.overrides)?;
        Ok((config, resolved))
    }

    /// Progress bars, unless `--quiet`.
    pub fn progress(&self) -> Progress {
        if self.quiet {
            Progress::Quiet
        } else {
            Progress::Bar
        }
    }

    /// Sends the `tracing` events of the run to stderr: progress notes and
    /// above, or with `--quiet` only warnings and errors. The variable
    /// `UNTRAINABLE_LOG` (error, warn, info, debug, trace) overrides both.
    pub fn init_logging(&self) {
        let level = std::env::var("UNTRAINABLE_LOG")
            .ok()
            .and_then(|v| v.parse::<LevelFilter>().ok())
            .unwrap_or(if self.quiet {
                LevelFilter::WARN
            } else {
                LevelFilter::INFO
            });
        // A second call (tests running several binaries' code) keeps the first.
        let _ = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .with_target(false)
            .try_init();
    }

    /// The experiment's results directory, prepared for a run of
    /// `resolved_config` with these options (`--resume`, `--checkpoint-every`).
    pub fn run_dir(&self, experiment: &str, resolved_config: &str) -> Result<RunDir, String> {
        Ok(RunDir::prepare(
            &self.experiment_dir(experiment),
            resolved_config,
            self.resume,
        )?
        .with_checkpoint_every(self.checkpoint_every))
    }

    /// `<figures dir>/<experiment>`, the stem of the `.png` and `.svg`.
    pub fn figure_stem(&self, experiment: &str) -> PathBuf {
        let dir = match &self.figures {
            Some(dir) => dir.clone(),
            None if self.out == Path::new("results") => PathBuf::from("paper-figures"),
            None => self.out.clone(),
        };
        dir.join(experiment)
    }

    pub fn experiment_dir(&self, experiment: &str) -> PathBuf {
        self.out.join(experiment)
    }
}

/// Writes `text` to `path` through a temporary file and a rename.
pub fn write_text(path: &Path, text: &str) -> Result<(), String> {
    untrainable_results::write_atomic(path, text.as_bytes()).map_err(|e| e.to_string())
}
