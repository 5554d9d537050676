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

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use untrainable_arch_cnn::ResNetConfig;
use untrainable_arch_fcn::FcnConfig;
use untrainable_guidance::{
    ArmConfig, ImageData, ImageDataset, InputSpec, PairsConfig, Task, TrainConfig,
};
use untrainable_image_experiment::{FashionArgs, FashionData, ImageRunData, read_imagenet};
use untrainable_results::{Gate, MetricRow, Split};
use untrainable_runner::{CommonArgs, Context, Experiment, GuidedExperiment, Preset, RunResults};
use untrainable_tasks::Canvas;

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
        (
            Preset::PaperFmnist,
            include_str!("../presets/paper-fmnist.toml"),
        ),
    ];
    type Config = Config;
    type Args = FashionArgs;
    /// The training and validation images (Fashion-MNIST's test images go
    /// unused; ImageNet's validation split measures the selected network).
    type Data = ImageRunData;

    fn seeds(config: &Config) -> u64 {
        config.seeds
    }

    fn gates(config: &Config) -> &[Gate] {
        &config.gates
    }

    fn validate(config: &Config) -> Result<(), String> {
        config.validate()
    }

    fn load(config: &Config, args: &FashionArgs, _: &CommonArgs) -> Result<ImageRunData, String> {
        let d = &config.data;
        match d.dataset {
            ImageDataset::FashionMnist => {
                FashionData::read(args, d.canvas, d.val_size, d.train_size, d.split_seed)
                    .map(ImageRunData::Fashion)
            }
            ImageDataset::Imagenet => {
                let task = read_imagenet(args, d.val_size, d.train_size, d.split_seed)?;
                config.validate_classes(task.classes())?;
                Ok(ImageRunData::ImageNet(task))
            }
        }
    }

    fn run(config: &Config, data: &ImageRunData, context: &Context) -> Result<RunResults, String> {
        match data {
            ImageRunData::Fashion(data) => {
                let images = ImageData {
                    train: &data.train,
                    val: &data.val,
                    test: None,
                    input: &config.input,
                };
                run_task(config, &images, context)
            }
            ImageRunData::ImageNet(task) => run_task(config, task, context),
        }
    }

    fn draw(rows: &[MetricRow], stem: &Path) -> Result<(), Box<dyn Error>> {
        Ok(paper_figures::draw_fcn_warmup(rows, stem)?)
    }
}

/// Every arm for every seed on `task`.
fn run_task<K: Task<Input = Tensor<4>>>(
    config: &Config,
    task: &K,
    context: &Context,
) -> Result<RunResults, String> {
    tracing::info!(
        "fcn-warmup: {} training / {} validation images, {} arms × {} seeds → {}",
        task.len(Split::Train),
        task.len(Split::Val),
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
        guide_train: None,
        guide_task: None,
        guide_recipe: "",
        arms: &config.arms,
        context,
    }
    .run()
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
    /// The images: Fashion-MNIST (the default) or ImageNet (the paper preset,
    /// which also measures the selected network on ImageNet's validation split).
    #[serde(default, skip_serializing_if = "ImageDataset::is_fashion_mnist")]
    dataset: ImageDataset,
    /// Validation examples, held out from the 60k training images.
    val_size: usize,
    /// Training examples used, 0 for all the rest of the 60k; a small
    /// training set is what makes the deep FCN overfit.
    train_size: usize,
    /// Seed of the train/validation split (fixed across training seeds).
    split_seed: u64,
    /// Every image pasted at an offset fixed per example by `split_seed`
    /// on a larger zero canvas (translated Fashion-MNIST); absent: as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    canvas: Option<Canvas>,
}

impl Config {
    /// The target's and the guide's outputs against the images' `classes`
    /// (Fashion-MNIST's 10 in [`Config::validate`]; ImageNet's once its
    /// folder is read).
    fn validate_classes(&self, classes: usize) -> Result<(), String> {
        if self.target.classes != classes || self.guide.classes != classes {
            return Err(format!(
                "target.classes is {} and guide.classes {} but the images have {classes} classes; \
                 set both to {classes}",
                self.target.classes, self.guide.classes
            ));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        if self.data.dataset == ImageDataset::Imagenet && self.data.canvas.is_some() {
            return Err(
                "data.canvas places Fashion-MNIST images on a larger canvas; remove it \
                        for data.dataset = \"imagenet\""
                    .into(),
            );
        }
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
        self.data.dataset.validate_input(&self.input)?;
        if self.data.dataset == ImageDataset::FashionMnist {
            self.validate_classes(10)?;
        }
        untrainable_runner::validate_arms(&self.arms, &self.train, false)?;
        Ok(())
    }
}

untrainable_runner::huge_page_allocator!();

fn main() -> ExitCode {
    untrainable_runner::main::<FcnWarmup>()
}
