//! `exp-fcn-warmup`: is guidance only an initialisation? (paper NOTES §2.4)
//!
//! A deep plain FCN on Fashion-MNIST, four arms from the same initial weights
//! for each seed: `base` (cross-entropy only), `noise-warmup` (first K steps
//! align with an untrained ResNet-18 on noise, then plain training),
//! `early-disconnect` (guided for the first K steps) and `guided` (guided
//! throughout).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use serde::{Deserialize, Serialize};
use untrainable_arch_cnn::ResNetConfig;
use untrainable_arch_fcn::FcnConfig;
use untrainable_guidance::{
    ArmConfig, ImageData, InputSpec, PairsConfig, TrainConfig, TrainedStore,
};
use untrainable_runner::{CommonArgs, GuidedExperiment, Preset};
use untrainable_tasks::fashion_mnist::{FashionMnist, split_train_val};

const EXPERIMENT: &str = "fcn-warmup";

const PRESETS: &[(Preset, &str)] = &[
    (Preset::Smoke, include_str!("../presets/smoke.toml")),
    (Preset::Cpu, include_str!("../presets/cpu.toml")),
    (Preset::Paper, include_str!("../presets/paper.toml")),
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
    /// $UNTRAINABLE_DATA/fashion-mnist, /usr/share/datasets/fashion-mnist, ./data/fashion-mnist).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
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
    let device = args.backend.device();
    let progress = args.progress();
    let run_dir = args.run_dir(EXPERIMENT, &resolved)?;
    tracing::info!(
        "fcn-warmup: {} training / {} validation images, {} arms × {} seeds → {}",
        train.len(),
        val.len(),
        config.arms.len(),
        seeds.len(),
        run_dir.path().display()
    );

    let experiment = GuidedExperiment {
        name: EXPERIMENT,
        task: &images,
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
    let results = experiment.run(&seeds)?;
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
