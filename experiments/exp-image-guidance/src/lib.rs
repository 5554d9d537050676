//! `exp-image-guidance`: the paper's image classification experiment
//! (NOTES §2.1, Table 1 and the image panels of its training-curve figure).
//!
//! Three targets, each in three arms that start from the same initial
//! weights for each seed: `base` (cross-entropy only), `trained-guide`
//! (aligned with its guide trained alone first) and `untrained-guide`
//! (aligned with the guide as initialised):
//!
//! - `deep-fcn/…`: a deep plain FCN guided by a ResNet-18;
//! - `wide-fcn/…`: a wide shallow FCN guided by a ResNet-18;
//! - `conv/…`: the Deep ConvNet (ResNet-50 without skips) guided by a ResNet-50.
//!
//! The guides trained alone are logged as `resnet18/guide` and
//! `resnet50/guide`; they are trained once per seed and kept in the
//! trained-guide store, from which the other arms and later runs read them.
//! Fashion-MNIST stands in for ImageNet: the validation split is held out of
//! the 60k training images and selects each run's network (lowest validation
//! loss), which is then measured once on the 10k test images. Top-1 and top-5
//! accuracy are logged for every evaluation (`accuracy`, `top5_accuracy`).

use std::path::PathBuf;
use std::process::ExitCode;

use burn::tensor::{Device, Tensor};
use clap::Parser;
use serde::{Deserialize, Serialize};
use untrainable_arch_cnn::ResNetConfig;
use untrainable_arch_fcn::FcnConfig;
use untrainable_core::Network;
use untrainable_guidance::{
    ArmConfig, ImageData, InputSpec, PairsConfig, TOP5_ACCURACY, TrainConfig, TrainedStore,
    resolve_pairs,
};
use untrainable_results::{MetricRow, Split, SummaryRow, mean_sd};
use untrainable_runner::{CommonArgs, GUIDE_ARM, GuidedExperiment, Preset, RunDir};
use untrainable_tasks::fashion_mnist::{FashionMnist, split_train_val};

const EXPERIMENT: &str = "image-guidance";

const PRESETS: &[(Preset, &str)] = &[
    (Preset::Smoke, include_str!("../presets/smoke.toml")),
    (Preset::Cpu, include_str!("../presets/cpu.toml")),
    (Preset::Paper, include_str!("../presets/paper.toml")),
];

/// The paper's ImageNet top-5 validation accuracy (%) per arm (NOTES §2.1,
/// Table 1), for the closing table.
const PAPER_TOP5: &[(&str, &str)] = &[
    ("resnet18/guide", "89.24"),
    ("resnet50/guide", "92.99"),
    ("deep-fcn/base", "1.65 ± 0.51"),
    ("deep-fcn/trained-guide", "7.50 ± 1.51"),
    ("deep-fcn/untrained-guide", "13.10 ± 0.72"),
    ("wide-fcn/base", "34.09 ± 1.21"),
    ("wide-fcn/trained-guide", "43.01 ± 0.92"),
    ("wide-fcn/untrained-guide", "39.47 ± 0.31"),
    ("conv/base", "70.02 ± 1.52"),
    ("conv/trained-guide", "78.91 ± 2.16"),
    ("conv/untrained-guide", "68.17 ± 2.54"),
];

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Table 1 on Fashion-MNIST: a Deep FCN and a Wide FCN guided by ResNet-18 and a Deep \
ConvNet guided by ResNet-50, each alone, with the trained guide and with the untrained guide; \
the guides alone are logged as resnet18/guide and resnet50/guide. Reports top-1 and top-5 \
accuracy. Writes OUT/image-guidance/{metrics,summary}.parquet and config.toml, then draws \
<figures>/image-guidance.{png,svg}."
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// Directory with the Fashion-MNIST .gz files (default: $UNTRAINABLE_FASHION_MNIST,
    /// $UNTRAINABLE_DATA/fashion-mnist, /usr/share/datasets/fashion-mnist, ./data/fashion-mnist).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

/// A target of Table 1; its arms are logged as `<name>/<arm>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Target {
    /// The Deep FCN (config `[deep_fcn]`), guided by `[resnet18]`.
    DeepFcn,
    /// The Wide FCN (config `[wide_fcn]`), guided by `[resnet18]`.
    WideFcn,
    /// The Deep ConvNet (config `[conv]`), guided by `[resnet50]`.
    Conv,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::DeepFcn => "deep-fcn",
            Target::WideFcn => "wide-fcn",
            Target::Conv => "conv",
        }
    }

    /// Its config section.
    fn section(self) -> &'static str {
        match self {
            Target::DeepFcn => "deep_fcn",
            Target::WideFcn => "wide_fcn",
            Target::Conv => "conv",
        }
    }

    /// Its guide's config section, which also names the guide's arm.
    fn guide(self) -> &'static str {
        match self {
            Target::DeepFcn | Target::WideFcn => "resnet18",
            Target::Conv => "resnet50",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Number of seeds (0..seeds) unless --seed/--seeds say otherwise.
    seeds: u64,
    /// The targets to run, in order: any of "deep-fcn", "wide-fcn", "conv".
    targets: Vec<Target>,
    data: DataConfig,
    input: InputSpec,
    /// The Deep FCN (paper: 150,528 → 2048 → 47 × 1024 → 1000).
    deep_fcn: FcnConfig,
    /// The Wide FCN (paper: 150,528 → 3 × 8192 → 1000).
    wide_fcn: FcnConfig,
    /// The Deep ConvNet: the ResNet-50 layout with `residual = false`.
    conv: ResNetConfig,
    /// The guide of both FCNs.
    resnet18: ResNetConfig,
    /// The guide of the Deep ConvNet.
    resnet50: ResNetConfig,
    /// How target taps are paired with guide taps, for every target; an
    /// explicit list names taps, so it fits one target at a time.
    #[serde(default)]
    pairs: PairsConfig,
    /// How every target arm trains.
    train: TrainConfig,
    /// How the guides are trained alone for `guide = "trained"` arms.
    guide_train: Option<TrainConfig>,
    /// Arms run for each target, logged as `<target>/<name>`.
    arms: Vec<ArmConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataConfig {
    /// Validation examples, held out from the 60k training images.
    val_size: usize,
    /// Training examples used, 0 for all the rest of the 60k.
    train_size: usize,
    /// Test examples (the first ones of the 10k test set), 0 for all.
    test_size: usize,
    /// Seed of the train/validation split (fixed across training seeds).
    split_seed: u64,
}

/// Everything besides the seed that decides a trained guide's weights:
/// the key under which it is stored and found again.
#[derive(Serialize)]
struct GuideRecipe<'a> {
    guide: &'a ResNetConfig,
    data: &'a DataConfig,
    input: &'a InputSpec,
    guide_train: &'a Option<TrainConfig>,
}

impl Config {
    fn guide(&self, target: Target) -> &ResNetConfig {
        match target {
            Target::DeepFcn | Target::WideFcn => &self.resnet18,
            Target::Conv => &self.resnet50,
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.targets.is_empty() {
            return Err(
                "targets is empty; list at least one of \"deep-fcn\", \"wide-fcn\", \"conv\""
                    .into(),
            );
        }
        for (i, target) in self.targets.iter().enumerate() {
            if self.targets[..i].contains(target) {
                return Err(format!("targets lists \"{}\" twice", target.name()));
            }
        }
        self.input.validate()?;
        let features = self.input.features();
        for (section, fcn) in [("deep_fcn", &self.deep_fcn), ("wide_fcn", &self.wide_fcn)] {
            fcn.validate()
                .map_err(|e| e.replace("fcn.", &format!("{section}.")))?;
            if fcn.input_features != features {
                return Err(format!(
                    "{section}.input_features is {} but the input is {}×{}×{} = {features}; \
                     set {section}.input_features = {features}",
                    fcn.input_features,
                    self.input.channels,
                    self.input.image_size,
                    self.input.image_size,
                ));
            }
        }
        for (section, net) in [
            ("conv", &self.conv),
            ("resnet18", &self.resnet18),
            ("resnet50", &self.resnet50),
        ] {
            net.validate()
                .map_err(|e| e.replace("resnet.", &format!("{section}.")))?;
            if net.in_channels != self.input.channels {
                return Err(format!(
                    "{section}.in_channels is {} but input.channels is {}; set {section}.in_channels = {}",
                    net.in_channels, self.input.channels, self.input.channels
                ));
            }
        }
        for (section, classes) in [
            ("deep_fcn", self.deep_fcn.classes),
            ("wide_fcn", self.wide_fcn.classes),
            ("conv", self.conv.classes),
            ("resnet18", self.resnet18.classes),
            ("resnet50", self.resnet50.classes),
        ] {
            if classes != 10 {
                return Err(format!(
                    "{section}.classes is {classes} but Fashion-MNIST has 10 classes; set {section}.classes = 10"
                ));
            }
        }
        self.train.validate()?;
        let mut batch_sizes = vec![("train.batch_size", self.train.batch_size)];
        if let Some(guide_train) = &self.guide_train {
            guide_train
                .validate()
                .map_err(|e| e.replace("train.", "guide_train."))?;
            batch_sizes.push(("guide_train.batch_size", guide_train.batch_size));
        }
        if self.data.val_size < 2 {
            return Err(format!(
                "data.val_size is {}; hold out at least 2 validation images",
                self.data.val_size
            ));
        }
        for (field, batch) in batch_sizes {
            if self.data.train_size != 0 && self.data.train_size < batch {
                return Err(format!(
                    "data.train_size = {} is fewer than {field} = {batch}; raise data.train_size \
                     (0 takes every image not held out)",
                    self.data.train_size
                ));
            }
        }
        untrainable_runner::validate_arms(&self.arms, self.guide_train.is_some())?;
        // Pair names are checked now, before any training.
        for &target in &self.targets {
            let taps = match target {
                Target::DeepFcn => fcn_taps(&self.deep_fcn),
                Target::WideFcn => fcn_taps(&self.wide_fcn),
                Target::Conv => self.conv.tap_names(),
            };
            resolve_pairs(&self.pairs, &taps, &self.guide(target).tap_names())
                .map_err(|e| format!("target \"{}\": {e}", target.name()))?;
        }
        Ok(())
    }
}

/// An FCN's tap names, from its config (the hidden Linear outputs).
fn fcn_taps(config: &FcnConfig) -> Vec<String> {
    (0..config.hidden_layers)
        .map(|i| format!("linear{i}"))
        .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("exp-image-guidance: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What every target's runs share.
struct Context<'a> {
    args: &'a CommonArgs,
    config: &'a Config,
    task: &'a ImageData<'a>,
    store: &'a TrainedStore,
    run_dir: &'a RunDir,
    device: &'a Device,
    seeds: &'a [u64],
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
    let test = match config.data.test_size {
        0 => data.test,
        n if n <= data.test.len() => data.test.subset(&(0..n).collect::<Vec<_>>()),
        n => {
            return Err(format!(
                "data.test_size = {n} but the test set has {} images; lower it (0 takes them all)",
                data.test.len()
            ));
        }
    };
    let task = ImageData {
        train: &train,
        val: &val,
        test: Some(&test),
        input: &config.input,
    };
    let store = TrainedStore::new(args.out.join("trained"));
    let device = args.backend.device();
    let run_dir = args.run_dir(EXPERIMENT, &resolved)?;
    let names: Vec<&str> = config.targets.iter().map(|t| t.name()).collect();
    tracing::info!(
        "image-guidance: {} training / {} validation / {} test images, targets {}, {} arms × {} seeds → {}",
        train.len(),
        val.len(),
        test.len(),
        names.join(", "),
        config.arms.len(),
        seeds.len(),
        run_dir.path().display()
    );
    let context = Context {
        args,
        config: &config,
        task: &task,
        store: &store,
        run_dir: &run_dir,
        device: &device,
        seeds: &seeds,
    };

    let (mut rows, mut summaries) = (Vec::new(), Vec::<SummaryRow>::new());
    for &target in &config.targets {
        tracing::info!(
            "{}: {} parameters, guided by {} ({} parameters)",
            target.name(),
            match target {
                Target::DeepFcn => config.deep_fcn.num_params(),
                Target::WideFcn => config.wide_fcn.num_params(),
                Target::Conv => config.conv.num_params(),
            },
            target.guide(),
            config.guide(target).num_params()
        );
        let (target_rows, target_summaries) = match target {
            Target::DeepFcn => run_target(&context, target, &|d| config.deep_fcn.init(d))?,
            Target::WideFcn => run_target(&context, target, &|d| config.wide_fcn.init(d))?,
            Target::Conv => run_target(&context, target, &|d| config.conv.init(d))?,
        };
        // Both FCNs read the same trained ResNet-18: its rows are kept once.
        let before: Vec<String> = summaries.iter().map(|s| s.arm.clone()).collect();
        let new = |arm: &str| !before.iter().any(|a| a == arm);
        rows.extend(target_rows.into_iter().filter(|r| new(&r.arm)));
        summaries.extend(target_summaries.into_iter().filter(|s| new(&s.arm)));
    }
    run_dir.write_results(&rows, &summaries)?;
    println!("{}\n", untrainable_results::summary_table(&summaries));
    println!("{}\n", untrainable_results::arm_table(&summaries));
    println!("{}", accuracy_table(&rows, &summaries));
    println!("wrote {}", run_dir.path().display());
    let stem = args.figure_stem(EXPERIMENT);
    paper_figures::draw_image_guidance(&rows, &stem)
        .map_err(|e| format!("drawing {}: {e}", stem.display()))?;
    println!("drew {}.png and .svg", stem.display());
    Ok(())
}

/// Every arm of one target for every seed (after its guide, trained alone
/// where an arm needs it); arms are renamed `<target>/<arm>` and the guide's
/// own training `<guide>/guide`.
fn run_target<T: Network<Input = Tensor<4>>>(
    context: &Context<'_>,
    target: Target,
    build: &dyn Fn(&Device) -> T,
) -> Result<(Vec<MetricRow>, Vec<SummaryRow>), String> {
    let config = context.config;
    let guide = config.guide(target);
    let arms: Vec<ArmConfig> = config
        .arms
        .iter()
        .map(|arm| ArmConfig {
            name: format!("{}/{}", target.name(), arm.name),
            ..arm.clone()
        })
        .collect();
    let recipe = toml::to_string(&GuideRecipe {
        guide,
        data: &config.data,
        input: &config.input,
        guide_train: &config.guide_train,
    })
    .map_err(|e| e.to_string())?;
    let experiment = GuidedExperiment {
        name: EXPERIMENT,
        task: context.task,
        target: build,
        guide: &|device| guide.init(device),
        pairs: &config.pairs,
        train: &config.train,
        guide_train: config.guide_train.as_ref(),
        guide_recipe: &recipe,
        arms: &arms,
        store: context.store,
        run_dir: context.run_dir,
        resume: context.args.resume,
        device: context.device,
        progress: context.args.progress(),
    };
    let (mut rows, mut summaries) = experiment
        .run(context.seeds)
        .map_err(|e| format!("{} ([{}]): {e}", target.name(), target.section()))?;
    let guide_arm = format!("{}/{GUIDE_ARM}", target.guide());
    for row in rows.iter_mut().filter(|r| r.arm == GUIDE_ARM) {
        row.arm.clone_from(&guide_arm);
    }
    for summary in summaries.iter_mut().filter(|s| s.arm == GUIDE_ARM) {
        summary.arm.clone_from(&guide_arm);
    }
    Ok((rows, summaries))
}

/// Per arm, in %: top-1 and top-5 accuracy of the selected network on the
/// test split and on validation at its selected epoch (mean ± sd over
/// seeds), beside the paper's ImageNet top-5 validation accuracy.
fn accuracy_table(rows: &[MetricRow], summaries: &[SummaryRow]) -> String {
    let mut arms: Vec<&str> = Vec::new();
    for s in summaries {
        if !arms.contains(&s.arm.as_str()) {
            arms.push(&s.arm);
        }
    }
    let mut out = String::from(
        "| arm | seeds | test top-1 (%) | test top-5 (%) | val top-1 (%), selected epoch | \
         val top-5 (%), selected epoch | paper: ImageNet val top-5 (%) |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for arm in arms {
        let runs: Vec<&SummaryRow> = summaries.iter().filter(|s| s.arm == arm).collect();
        let shown = |split: Split, metric: &str| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|s| {
                    rows.iter()
                        .filter(|r| r.arm == arm && r.seed == s.seed && r.split == split)
                        .filter(|r| r.metric == metric)
                        .filter(|r| split == Split::Test || r.epoch == Some(s.best_epoch))
                        .map(|r| r.value)
                        .last()
                })
                .collect();
            if values.is_empty() {
                return "–".to_string();
            }
            let (mean, sd) = mean_sd(&values);
            format!("{:.2} ± {:.2}", 100.0 * mean, 100.0 * sd)
        };
        let paper = PAPER_TOP5
            .iter()
            .find(|(a, _)| *a == arm)
            .map_or("–", |(_, v)| v);
        out += &format!(
            "| {arm} | {} | {} | {} | {} | {} | {paper} |\n",
            runs.len(),
            shown(Split::Test, "accuracy"),
            shown(Split::Test, TOP5_ACCURACY),
            shown(Split::Val, "accuracy"),
            shown(Split::Val, TOP5_ACCURACY),
        );
    }
    out
}
