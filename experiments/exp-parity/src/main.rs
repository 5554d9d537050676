//! `exp-parity`: parity of bit strings (docs/paper.md §2.2, Table 2).
//!
//! A one-layer Transformer encoder (the "untrainable" target on parity) in
//! three arms from the same initial weights for each seed: `base` (task loss
//! only), `trained-guide` (aligned with a one-layer RNN trained alone on
//! parity) and `untrained-guide` (aligned with the same RNN as initialised).
//! The RNN's own training is logged as the arm `guide`.
//!
//! The validation split selects each run's best epoch; the selected network
//! is measured once on the held-out test split of the same 80/10/10
//! generation, as the paper reports it (docs/paper.md §3).

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use untrainable_arch_rnn::ParityRnnConfig;
use untrainable_arch_transformer::EncoderClassifierConfig;
use untrainable_guidance::{ArmConfig, PairsConfig, ParityTask, TrainConfig};
use untrainable_results::{Gate, MetricRow};
use untrainable_runner::{
    CommonArgs, Context, Experiment, GuidedExperiment, NoArgs, Preset, RunResults,
};
use untrainable_tasks::parity::{self, Parity};

struct ParityExperiment;

impl Experiment for ParityExperiment {
    const NAME: &'static str = "parity";
    const ABOUT: &'static str = "Parity: a 1-layer Transformer encoder alone, guided by a trained 1-layer RNN, and \
guided by an untrained one (the RNN alone is the arm `guide`). Writes \
OUT/parity/{metrics,summary}.parquet and config.toml, then draws <figures>/parity.{png,svg}.";
    const PRESETS: &'static [(Preset, &'static str)] = &[
        (Preset::Smoke, include_str!("../presets/smoke.toml")),
        (Preset::Cpu, include_str!("../presets/cpu.toml")),
        (Preset::Paper, include_str!("../presets/paper.toml")),
    ];
    type Config = Config;
    type Args = NoArgs;
    type Data = ParityTask;

    fn seeds(config: &Config) -> u64 {
        config.seeds
    }

    fn gates(config: &Config) -> &[Gate] {
        &config.gates
    }

    fn validate(config: &Config) -> Result<(), String> {
        config.validate()
    }

    fn load(config: &Config, _: &NoArgs, _: &CommonArgs) -> Result<ParityTask, String> {
        Ok(ParityTask {
            task: config.task.parity(),
            sizes: Parity::splits(config.task.samples),
            data_seed: config.task.data_seed,
        })
    }

    fn run(config: &Config, task: &ParityTask, context: &Context) -> Result<RunResults, String> {
        let recipe = config.guide_recipe()?;
        tracing::info!(
            "parity: {} training / {} validation bit strings of length {}..={} (pad {}), target {} \
             parameters, guide {} parameters, {} arms × {} seeds → {}",
            task.sizes.train,
            task.sizes.val,
            config.task.min_len,
            config.task.max_len,
            parity::PAD,
            config.target.num_params(),
            config.guide.num_params(),
            config.arms.len(),
            context.seeds.len(),
            context.run_dir.path().display()
        );
        GuidedExperiment {
            task,
            target: &|device| config.target.init(device),
            guide: &|device| config.guide.init(device),
            pairs: &config.pairs,
            train: &config.train,
            guide_train: config.guide_train.as_ref(),
            guide_task: None,
            guide_recipe: &recipe,
            arms: &config.arms,
            context,
        }
        .run()
    }

    fn draw(rows: &[MetricRow], stem: &Path) -> Result<(), Box<dyn Error>> {
        Ok(paper_figures::draw_parity(rows, stem)?)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Number of seeds (0..seeds) unless --seed/--seeds say otherwise.
    seeds: u64,
    task: TaskConfig,
    /// The Transformer encoder classifier being trained.
    target: EncoderClassifierConfig,
    /// The RNN classifier that guides it.
    guide: ParityRnnConfig,
    #[serde(default)]
    pairs: PairsConfig,
    /// How the target is trained, in every arm.
    train: TrainConfig,
    /// How the guide is trained alone for `guide = "trained"` arms.
    guide_train: Option<TrainConfig>,
    arms: Vec<ArmConfig>,
    /// Regime gates (docs/regimes.md), measured after the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    gates: Vec<Gate>,
}

/// The generated data: which bit strings, how many, and from which seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskConfig {
    /// Shortest and longest bit string (paper: 2 and 50).
    min_len: usize,
    max_len: usize,
    /// Examples generated, split 80/10/10 into train/validation/test as the
    /// released code does (paper: 100 000).
    samples: usize,
    /// Seed of the examples, fixed across training seeds so that every run
    /// sees the same data.
    data_seed: u64,
}

impl TaskConfig {
    fn parity(&self) -> Parity {
        Parity {
            min_len: self.min_len,
            max_len: self.max_len,
        }
    }
}

/// Everything besides the seed that decides the trained guide's weights; its
/// TOML is the guide's key in the store, so a change to any part retrains it.
#[derive(Serialize)]
struct GuideRecipe<'a> {
    experiment: &'a str,
    guide: &'a ParityRnnConfig,
    task: &'a TaskConfig,
    guide_train: &'a TrainConfig,
}

impl Config {
    fn validate(&self) -> Result<(), String> {
        let parity = self.task.parity();
        parity
            .validate()
            .map_err(|e| e.replace("parity.", "task."))?;
        // The architecture crates name their own sections; here they are these.
        self.target
            .validate()
            .map_err(|e| e.replace("encoder.", "target."))?;
        self.guide
            .validate()
            .map_err(|e| e.replace("parity_rnn.", "guide."))?;
        self.train.validate()?;
        if let Some(guide_train) = &self.guide_train {
            guide_train
                .validate()
                .map_err(|e| e.replace("train.", "guide_train."))?;
        }

        let vocab = parity.vocab_size();
        for (field, value) in [
            ("target.vocab", self.target.vocab),
            ("guide.vocab", self.guide.vocab),
        ] {
            if value != vocab {
                return Err(format!(
                    "{field} is {value} but parity has {vocab} token ids (bits 0 and 1, pad {}); set {field} = {vocab}",
                    parity.pad_id()
                ));
            }
        }
        let classes = parity.classes();
        for (field, value) in [
            ("target.classes", self.target.classes),
            ("guide.classes", self.guide.classes),
        ] {
            if value != classes {
                return Err(format!(
                    "{field} is {value} but parity has {classes} classes (even, odd); set {field} = {classes}"
                ));
            }
        }
        if self.target.max_positions < self.task.max_len {
            return Err(format!(
                "target.max_positions ({}) is shorter than task.max_len ({}); raise target.max_positions",
                self.target.max_positions, self.task.max_len
            ));
        }

        let sizes = Parity::splits(self.task.samples);
        let mut batch_sizes = vec![("train.batch_size", self.train.batch_size)];
        if let Some(guide_train) = &self.guide_train {
            batch_sizes.push(("guide_train.batch_size", guide_train.batch_size));
        }
        for (field, batch) in batch_sizes {
            if sizes.train < batch {
                return Err(format!(
                    "task.samples = {} leaves {} training examples (80 %), fewer than {field} = {batch}; \
                     raise task.samples or lower {field}",
                    self.task.samples, sizes.train
                ));
            }
        }
        if sizes.val < 2 {
            return Err(format!(
                "task.samples = {} leaves {} validation examples (10 %); at least 2 are needed",
                self.task.samples, sizes.val
            ));
        }

        untrainable_runner::validate_arms(&self.arms, &self.train, self.guide_train.is_some())?;
        Ok(())
    }

    fn guide_recipe(&self) -> Result<String, String> {
        let Some(guide_train) = &self.guide_train else {
            return Ok(String::new());
        };
        toml::to_string(&GuideRecipe {
            experiment: ParityExperiment::NAME,
            guide: &self.guide,
            task: &self.task,
            guide_train,
        })
        .map_err(|e| e.to_string())
    }
}

untrainable_runner::huge_page_allocator!();

fn main() -> ExitCode {
    untrainable_runner::main::<ParityExperiment>()
}
