//! What every experiment binary shares: the command line of docs/design.md §4,
//! presets and overrides,
//! and the results directory with per-run parts that make `--resume` work.

pub mod experiment;
pub mod guided;
pub mod merge;
pub mod overrides;
pub mod run_dir;
pub mod shard;

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::level_filters::LevelFilter;
use untrainable_core::Backend;
use untrainable_guidance::Progress;

pub use experiment::{Context, Experiment, NoArgs, main};
pub use guided::{GUIDE_ARM, GuidedExperiment, guide_seed, validate_arms};
pub use run_dir::{RunDir, RunResults, prediction_rows};
pub use shard::{OnlySpec, Selection, ShardSpec};
pub use untrainable_kernels::huge_page_allocator;

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
    /// Run seeds 0..N (overrides the config's `seeds`; at least 1).
    #[arg(long, value_name = "N", conflicts_with = "seed",
          value_parser = clap::value_parser!(u64).range(1..))]
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
    /// Run only the I-th of N slices of the (arm, seed) runs (0 ≤ I < N),
    /// into OUT/<experiment>/shards/I-of-N/; `merge` joins the slices.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<ShardSpec>,
    /// Run only the runs of this arm and/or seed (repeatable), into a
    /// directory under OUT/<experiment>/shards/.
    #[arg(long, value_name = "arm=NAME,seed=S")]
    pub only: Vec<OnlySpec>,
    /// Only train the trained guides that the selected runs need, into the
    /// store OUT/trained (a cluster's job before the runs that read them).
    #[arg(long)]
    pub guides_only: bool,
    /// Print the (arm, seed) runs of the config in order, one
    /// `arm=NAME,seed=S` a line, and train nothing.
    #[arg(long)]
    pub list_runs: bool,
    /// Train nothing: every run must be finished in OUT/<experiment>/runs,
    /// where `merge` put the slices' runs.
    #[arg(long, hide = true)]
    pub from_shards: bool,
    /// No progress bars (for CI and logs).
    #[arg(long)]
    pub quiet: bool,
}

impl CommonArgs {
    /// The seeds to run: `--seed`, else `--seeds`, else the config's count.
    ///
    /// # Errors
    /// No seed at all (a config with `seeds = 0`): the run would train
    /// nothing and write empty results.
    pub fn seeds(&self, configured: u64) -> Result<Vec<u64>, String> {
        let seeds: Vec<u64> = match (self.seed, self.seeds) {
            (Some(s), _) => vec![s],
            (None, Some(n)) => (0..n).collect(),
            (None, None) => (0..configured).collect(),
        };
        if seeds.is_empty() {
            return Err(
                "seeds = 0 runs nothing; set seeds to at least 1 (or pass --seeds N or --seed S)"
                    .into(),
            );
        }
        Ok(seeds)
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
        // A results directory's config.toml runs again as `--config`: the
        // version of the code that wrote it is not part of the config.
        value.remove(run_dir::CODE_VERSION_KEY);
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
    /// A slice of the grid (`--shard`, `--only`, `--guides-only`) goes to
    /// its own directory under `shards/`; `--list-runs` writes nothing.
    pub fn run_dir(&self, experiment: &str, resolved_config: &str) -> Result<RunDir, String> {
        let selection = self.selection();
        if self.from_shards && !selection.is_whole() {
            return Err(
                "--from-shards (merge's replay) runs the whole grid; drop --shard, \
                        --only, --guides-only and --list-runs"
                    .into(),
            );
        }
        let whole = self.experiment_dir(experiment);
        let shard = shard::ShardRun::new(experiment, selection.clone(), &whole);
        if selection.list {
            return RunDir::at(&whole).with_shard(shard);
        }
        if selection.is_whole() {
            let dir = RunDir::prepare(&whole, resolved_config, self.resume)?;
            return Ok(dir
                .with_checkpoint_every(self.checkpoint_every)
                .with_from_shards(self.from_shards));
        }
        let dir = whole.join("shards").join(selection.dir_name());
        RunDir::prepare(&dir, resolved_config, self.resume)?
            .with_checkpoint_every(self.checkpoint_every)
            .with_shard(shard)
    }

    /// The slice of the grid these options select.
    pub fn selection(&self) -> Selection {
        Selection {
            shard: self.shard,
            only: self.only.clone(),
            guides_only: self.guides_only,
            list: self.list_runs,
        }
    }

    /// Draws the figure with `draw` at [`Self::figure_stem`], unless this
    /// invocation runs a slice of the grid: `merge` draws it from them all.
    pub fn draw_figure<E: std::fmt::Display>(
        &self,
        experiment: &str,
        draw: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(), String> {
        if !self.selection().is_whole() {
            return Ok(());
        }
        let stem = self.figure_stem(experiment);
        draw(&stem).map_err(|e| format!("drawing {}: {e}", stem.display()))?;
        println!("drew {}.png and .svg", stem.display());
        Ok(())
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    fn parse(args: &[&str]) -> Result<CommonArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("exp").chain(args.iter().copied())).map(|c| c.common)
    }

    #[test]
    fn seeds_zero_is_refused_on_the_command_line_and_in_the_config() {
        let err = parse(&["--seeds", "0"]).unwrap_err().to_string();
        assert!(err.contains("--seeds") && err.contains("0"), "{err}");
        let args = parse(&[]).unwrap();
        let err = args.seeds(0).unwrap_err();
        assert!(
            err.contains("seeds = 0") && err.contains("at least 1"),
            "{err}"
        );
    }

    #[derive(Debug, serde::Deserialize, serde::Serialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        seeds: u64,
    }

    #[test]
    fn a_results_config_toml_runs_again_as_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "code_version = \"abc-dirty\"\nseeds = 4\n").unwrap();
        let args = parse(&["--config", path.to_str().unwrap()]).unwrap();
        let (config, resolved): (Config, String) = args.resolve(&[]).unwrap();
        assert_eq!((config.seeds, resolved.as_str()), (4, "seeds = 4\n"));
    }

    #[test]
    fn seeds_come_from_seed_then_seeds_then_the_config() {
        assert_eq!(parse(&["--seeds", "2"]).unwrap().seeds(5).unwrap(), [0, 1]);
        assert_eq!(parse(&["--seed", "7"]).unwrap().seeds(5).unwrap(), [7]);
        assert_eq!(parse(&[]).unwrap().seeds(3).unwrap(), [0, 1, 2]);
    }
}
