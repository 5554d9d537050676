//! `exp-fcn-warmup`: is guidance only an initialisation? (docs/paper.md §2.4)
//!
//! A deep plain FCN on Fashion-MNIST, four arms from the same initial weights
//! for each seed: `base` (cross-entropy only), `noise-warmup` (first K steps
//! align with an untrained ResNet-18 on noise, then plain training),
//! `early-disconnect` (guided for the first K steps) and `guided` (guided
//! throughout).

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use untrainable_arch_cnn::ResNetConfig;
use untrainable_arch_fcn::FcnConfig;
use untrainable_guidance::{ArmConfig, ImageData, InputSpec, PairsConfig, TrainConfig};
use untrainable_image_experiment::{FashionArgs, FashionData};
use untrainable_results::{Gate, MetricRow};
use untrainable_runner::{CommonArgs, Context, Experiment, GuidedExperiment, Preset, RunResults};

struct FcnWarmup;

impl Experiment for FcnWarmup {
    const NAME: &'static str = "fcn-warmup";
    const ABOUT: &'static str = "Deep FCN on Fashion-MNIST: base vs noise warm-up vs early \
disconnect vs guided (untrained ResNet-18 guide). Writes OUT/fcn-warmup/{metrics,summary}.parquet \
and config.toml, then draws <figures>/fcn-warmup.{png,svg}.";
    const PRESETS: &'static [(Preset, &'static str)] = &[
        (Preset::Smoke, include_str!("../presets/smoke.toml")),
        (Preset::Cpu, include_str!("../presets/cpu.toml")),
        (Preset::Paper, include_str!("../presets/paper.toml")),
    ];
    type Config = Config;
    type Args = FashionArgs;
    /// The training and validation images (the test images go unused).
    type Data = FashionData;

    fn seeds(config: &Config) -> u64 {
        config.seeds
    }

    fn gates(config: &Config) -> &[Gate] {
        &config.gates
    }

    fn validate(config: &Config) -> Result<(), String> {
        config.validate()
    }

    fn load(config: &Config, args: &FashionArgs, _: &CommonArgs) -> Result<FashionData, String> {
        let data = &config.data;
        FashionData::read(args, None, data.val_size, data.train_size, data.split_seed)
    }

    fn run(config: &Config, data: &FashionData, context: &Context) -> Result<RunResults, String> {
        let (train, val) = (&data.train, &data.val);
        let images = ImageData {
            train,
            val,
            test: None,
            input: &config.input,
        };
        tracing::info!(
            "fcn-warmup: {} training / {} validation images, {} arms × {} seeds → {}",
            train.len(),
            val.len(),
            config.arms.len(),
            context.seeds.len(),
            context.run_dir.path().display()
        );
        GuidedExperiment {
            task: &images,
            target: &|device| config.target.init(device),
            guide: &|device| config.guide.init(device),
            pairs: &config.pairs,
            train: &config.train,
            guide_train: None,
            guide_recipe: "",
            arms: &config.arms,
            context,
        }
        .run()
    }

    fn draw(rows: &[MetricRow], stem: &Path) -> Result<(), Box<dyn Error>> {
        Ok(paper_figures::draw_fcn_warmup(rows, stem)?)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Number of seeds (0..seeds) unless --seed/--seeds say otherwise.
    seeds: u64,
    data: DataConfig,
    input: InputSpec,
    target: FcnConfig,
    guide: ResNetConfig,
    #[serde(default)]
    pairs: PairsConfig,
    train: TrainConfig,
    arms: Vec<ArmConfig>,
    /// Regime gates (docs/regimes.md), measured after the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    gates: Vec<Gate>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataConfig {
    /// Validation examples, held out from the 60k training images.
    val_size: usize,
    /// Training examples used, 0 for all the rest of the 60k; a small
    /// training set is what makes the deep FCN overfit.
    train_size: usize,
    /// Seed of the train/validation split (fixed across training seeds).
    split_seed: u64,
}

impl Config {
    fn validate(&self) -> Result<(), String> {
        self.input.validate()?;
        self.target.validate()?;
        self.guide.validate()?;
        self.train.validate()?;
        if self.target.input_features != self.input.features() {
            return Err(format!(
                "target.input_features is {} but the input is {}×{}×{} = {}; set target.input_features = {}",
                self.target.input_features,
                self.input.channels,
                self.input.image_size,
                self.input.image_size,
                self.input.features(),
                self.input.features()
            ));
        }
        if self.guide.in_channels != self.input.channels {
            return Err(format!(
                "guide.in_channels is {} but input.channels is {}; make them equal",
                self.guide.in_channels, self.input.channels
            ));
        }
        if self.target.classes != 10 || self.guide.classes != 10 {
            return Err("target.classes and guide.classes must be 10 for Fashion-MNIST".into());
        }
        untrainable_runner::validate_arms(&self.arms, &self.train, false)?;
        Ok(())
    }
}

untrainable_runner::huge_page_allocator!();

fn main() -> ExitCode {
    untrainable_runner::main::<FcnWarmup>()
}
