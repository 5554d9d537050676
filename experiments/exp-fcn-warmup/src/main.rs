//! `exp-fcn-warmup`: is guidance only an initialisation? (paper NOTES §2.4)
//!
//! A deep plain FCN on Fashion-MNIST, four arms from the same initial weights
//! for each seed: `base` (cross-entropy only), `noise-warmup` (first K steps
//! align with an untrained ResNet-18 on noise, then plain training),
//! `early-disconnect` (guided for the first K steps) and `guided` (guided
//! throughout).

use std::path::PathBuf;
use std::process::ExitCode;

use burn::tensor::Tensor;
use clap::Parser;
use serde::{Deserialize, Serialize};
use untrainable_arch_cnn::ResNetConfig;
use untrainable_arch_fcn::FcnConfig;
use untrainable_guidance::{
    ArmConfig, ImageData, ImageDataset, ImageNetData, InputSpec, PairsConfig, Part, Task,
    TrainConfig, TrainedStore,
};
use untrainable_runner::{CommonArgs, GuidedExperiment, Preset};
use untrainable_tasks::fashion_mnist::{FashionMnist, split_train_val};
use untrainable_tasks::image_folder::ImageNet;

const EXPERIMENT: &str = "fcn-warmup";

const PRESETS: &[(Preset, &str)] = &[
    (Preset::Smoke, include_str!("../presets/smoke.toml")),
    (Preset::Cpu, include_str!("../presets/cpu.toml")),
    (Preset::Paper, include_str!("../presets/paper.toml")),
    (
        Preset::PaperFmnist,
        include_str!("../presets/paper-fmnist.toml"),
    ),
];

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Deep FCN on Fashion-MNIST: base vs noise warm-up vs early disconnect vs guided \
(untrained ResNet-18 guide). Writes OUT/fcn-warmup/{metrics,summary}.parquet and config.toml, \
then draws <figures>/fcn-warmup.{png,svg}."
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// Directory with the Fashion-MNIST .gz files (default: $UNTRAINABLE_FASHION_MNIST,
    /// $UNTRAINABLE_DATA/fashion-mnist, /usr/share/datasets/fashion-mnist, ./data/fashion-mnist);
    /// for `--preset paper`, the ImageNet root holding train/ and val/ (default:
    /// $UNTRAINABLE_IMAGENET).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Threads decoding ImageNet's JPEGs for each batch (default: every core).
    #[arg(long, value_name = "N")]
    data_workers: Option<usize>,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("exp-fcn-warmup: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let args = &cli.common;
    args.init_logging();
    let (config, resolved): (Config, String) = args.resolve(PRESETS)?;
    config.validate()?;
    let seeds = args.seeds(config.seeds);
    if args.dry_run {
        print!("{resolved}");
        println!("# seeds to run: {seeds:?}");
        return Ok(());
    }

    if config.data.dataset == ImageDataset::Imagenet {
        let net = ImageNet::find(cli.data.as_deref()).map_err(|e| e.to_string())?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = cli.data_workers.unwrap_or(cores);
        let d = &config.data;
        let task = ImageNetData::new(net, d.val_size, d.train_size, d.split_seed, workers)?;
        config.validate_classes(task.classes())?;
        return train_all(args, &config, &resolved, &seeds, &task);
    }
    let data = FashionMnist::load(cli.data.as_deref()).map_err(|e| e.to_string())?;
    let (train, val) = split_train_val(
        &data.train,
        config.data.val_size,
        (config.data.train_size > 0).then_some(config.data.train_size),
        config.data.split_seed,
    )
    .map_err(|e| e.to_string())?;
    let images = ImageData {
        train: &train,
        val: &val,
        test: None,
        input: &config.input,
    };
    train_all(args, &config, &resolved, &seeds, &images)
}

/// Trains every arm for every seed on `task`, writes the results and
/// prints and draws them.
fn train_all<K: Task<Input = Tensor<4>>>(
    args: &CommonArgs,
    config: &Config,
    resolved: &str,
    seeds: &[u64],
    task: &K,
) -> Result<(), String> {
    let device = args.backend.device();
    let progress = args.progress();
    let run_dir = args.run_dir(EXPERIMENT, resolved)?;
    tracing::info!(
        "fcn-warmup: {} training / {} validation images, {} arms × {} seeds → {}",
        task.len(Part::Train),
        task.len(Part::Val),
        config.arms.len(),
        seeds.len(),
        run_dir.path().display()
    );

    let experiment = GuidedExperiment {
        name: EXPERIMENT,
        task,
        target: &|device| config.target.init(device),
        guide: &|device| config.guide.init(device),
        pairs: &config.pairs,
        train: &config.train,
        guide_train: None,
        guide_recipe: "",
        arms: &config.arms,
        store: &TrainedStore::new(args.out.join("trained")),
        run_dir: &run_dir,
        resume: args.resume,
        device: &device,
        progress,
    };
    let results = experiment.run(seeds)?;
    run_dir.write_results(&results)?;
    println!(
        "{}\n",
        untrainable_results::summary_table(&results.summaries)
    );
    println!("{}\n", untrainable_results::arm_table(&results.summaries));
    println!("wrote {}", run_dir.path().display());
    let stem = args.figure_stem(EXPERIMENT);
    paper_figures::draw_fcn_warmup(&results.rows, &stem)
        .map_err(|e| format!("drawing {}: {e}", stem.display()))?;
    println!("drew {}.png and .svg", stem.display());
    Ok(())
}
