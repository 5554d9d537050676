//! `exp-copy-paste`: the paper's copy-paste experiment (docs/paper.md §2.2, Table 2).
//!
//! A 4-layer tanh RNN language model reads `L` digits and a COPY token and
//! must write the digits back. Three arms from the same initial RNN for each
//! seed: `base` (cross-entropy only), `trained-guide` (aligned with a
//! 4-layer Transformer decoder trained alone on the task first, logged as
//! arm `guide`) and `untrained-guide` (aligned with that Transformer as
//! initialised). Accuracy counts the copied tokens.

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use untrainable_arch_rnn::{RnnLmConfig, tap_name};
use untrainable_arch_transformer::CausalLmConfig;
use untrainable_guidance::{ArmConfig, CopyPasteTask, PairsConfig, TrainConfig, resolve_pairs};
use untrainable_results::{Gate, MetricRow};
use untrainable_runner::{
    CommonArgs, Context, Experiment, GuidedExperiment, NoArgs, Preset, RunResults,
};
use untrainable_tasks::CopyPaste;

struct CopyPasteExperiment;

impl Experiment for CopyPasteExperiment {
    const NAME: &'static str = "copy-paste";
    const ABOUT: &'static str = "Copy-paste: a 4-layer tanh RNN alone, guided by a trained \
4-layer Transformer decoder, and guided by an untrained one; the Transformer alone is trained and \
logged as arm `guide`. Writes OUT/copy-paste/{metrics,summary}.parquet and config.toml, then \
draws <figures>/copy-paste.{png,svg}.";
    const PRESETS: &'static [(Preset, &'static str)] = &[
        (Preset::Smoke, include_str!("../presets/smoke.toml")),
        (Preset::Cpu, include_str!("../presets/cpu.toml")),
        (Preset::Paper, include_str!("../presets/paper.toml")),
    ];
    type Config = Config;
    type Args = NoArgs;
    type Data = CopyPasteTask;

    fn seeds(config: &Config) -> u64 {
        config.seeds
    }

    fn gates(config: &Config) -> &[Gate] {
        &config.gates
    }

    fn validate(config: &Config) -> Result<(), String> {
        config.validate()
    }

    fn load(config: &Config, _: &NoArgs, _: &CommonArgs) -> Result<CopyPasteTask, String> {
        Ok(config.task.task())
    }

    fn run(config: &Config, task: &CopyPasteTask, context: &Context) -> Result<RunResults, String> {
        let recipe = toml::to_string(&GuideRecipe {
            guide: &config.guide,
            task: &config.task,
            guide_train: &config.guide_train,
        })
        .map_err(|e| e.to_string())?;
        tracing::info!(
            "copy-paste: L in {}..={}, {} training / {} validation sequences, RNN {} params, \
             Transformer {} params, {} arms × {} seeds → {}",
            config.task.copy_paste.min_len,
            config.task.copy_paste.max_len,
            task.sizes.train,
            task.sizes.val,
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
        Ok(paper_figures::draw_copy_paste(rows, stem)?)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Number of seeds (0..seeds) unless --seed/--seeds say otherwise.
    seeds: u64,
    task: TaskConfig,
    /// The RNN being trained.
    target: RnnLmConfig,
    /// The Transformer decoder that guides it.
    guide: CausalLmConfig,
    #[serde(default)]
    pairs: PairsConfig,
    /// How every RNN arm trains.
    train: TrainConfig,
    /// How the Transformer is trained alone for `guide = "trained"` arms.
    guide_train: Option<TrainConfig>,
    arms: Vec<ArmConfig>,
    /// Regime gates (docs/regimes.md), measured after the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    gates: Vec<Gate>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskConfig {
    copy_paste: CopyPaste,
    /// Generated examples in all, split 80 % train, 20 % validation
    /// (`CopyPaste::splits`; the paper: 100 000).
    samples: usize,
    /// Seed of the generated examples, fixed across training seeds.
    data_seed: u64,
}

impl TaskConfig {
    fn task(&self) -> CopyPasteTask {
        CopyPasteTask {
            task: self.copy_paste,
            sizes: CopyPaste::splits(self.samples),
            data_seed: self.data_seed,
        }
    }
}

/// Everything besides the seed that decides the trained guide's weights:
/// the key under which it is stored and found again.
#[derive(Serialize)]
struct GuideRecipe<'a> {
    guide: &'a CausalLmConfig,
    task: &'a TaskConfig,
    guide_train: &'a Option<TrainConfig>,
}

impl Config {
    fn validate(&self) -> Result<(), String> {
        let task = &self.task.copy_paste;
        task.validate().map_err(|e| format!("task.{e}"))?;
        self.target.validate().map_err(|e| format!("target: {e}"))?;
        self.guide.validate().map_err(|e| format!("guide: {e}"))?;
        self.train.validate()?;
        let vocab = task.vocab_size();
        for (field, value) in [
            ("target.vocab", self.target.vocab),
            ("guide.vocab", self.guide.vocab),
        ] {
            if value != vocab {
                return Err(format!(
                    "{field} is {value} but the copy-paste task has {vocab} token ids; set {field} = {vocab}"
                ));
            }
        }
        let longest = task.max_sequence_len();
        if self.guide.max_positions < longest {
            return Err(format!(
                "guide.max_positions is {} but task.copy_paste.max_len = {} makes sequences of up to \
                 {longest} tokens; set guide.max_positions ≥ {longest}",
                self.guide.max_positions, task.max_len
            ));
        }
        let sizes = CopyPaste::splits(self.task.samples);
        let mut batch_sizes = vec![("train.batch_size", self.train.batch_size)];
        if let Some(guide_train) = &self.guide_train {
            guide_train
                .validate()
                .map_err(|e| e.replace("train.", "guide_train."))?;
            batch_sizes.push(("guide_train.batch_size", guide_train.batch_size));
        }
        for (field, batch) in batch_sizes {
            if sizes.train < batch || sizes.val == 0 {
                return Err(format!(
                    "task.samples = {} gives {} training and {} validation examples: too few for \
                     {field} = {batch}",
                    self.task.samples, sizes.train, sizes.val
                ));
            }
        }
        untrainable_runner::validate_arms(&self.arms, &self.train, self.guide_train.is_some())?;
        // Pair names are checked now, before any training.
        let target_taps: Vec<String> = (0..self.target.layers).map(tap_name).collect();
        resolve_pairs(&self.pairs, &target_taps, &self.guide.tap_names())?;
        Ok(())
    }
}

untrainable_runner::huge_page_allocator!();

fn main() -> ExitCode {
    untrainable_runner::main::<CopyPasteExperiment>()
}
