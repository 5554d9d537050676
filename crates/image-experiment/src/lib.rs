//! Image classification on Fashion-MNIST with FCN and plain-CNN targets and
//! ResNet guides: the paper's Table 1 (docs/paper.md §2.1), run by `exp-image-guidance`,
//! and the same machinery with other arms for `exp-kd-vs-guidance` (docs/paper.md §2.5),
//! `exp-ablations` and `exp-error-consistency`. An [`ImageSpec`] names the
//! experiment, its presets and its figure; [`Image`] makes it an
//! [`Experiment`] and does the rest.
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
//! With `data.dataset = "imagenet"` (the `paper` preset) the images are
//! ILSVRC-2012's instead, read from `--data` ([`ImageNetData`]).

use std::error::Error;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor};
use clap::Args;
use serde::{Deserialize, Serialize};
use untrainable_arch_cnn::ResNetConfig;
use untrainable_arch_fcn::FcnConfig;
use untrainable_arch_transformer::VitConfig;
use untrainable_core::Network;
use untrainable_guidance::{
    ArmConfig, ImageData, ImageDataset, ImageNetData, InputSpec, PairsConfig, TOP5_ACCURACY, Task,
    TrainConfig, resolve_pairs,
};
use untrainable_results::{Gate, MetricRow, Split, SummaryRow, mean_sd};
use untrainable_runner::{
    CommonArgs, Context, Experiment, GUIDE_ARM, GuidedExperiment, Preset, RunResults,
};
use untrainable_tasks::fashion_mnist::{FashionMnist, ImageSet, split_train_val};
use untrainable_tasks::image_folder::ImageNet;
use untrainable_tasks::{Augment, Canvas};

/// One experiment built on this crate: what sets it apart from the others.
pub trait ImageSpec {
    /// Results directory and `experiment` column.
    const NAME: &'static str;
    /// The `--help` text.
    const ABOUT: &'static str;
    const PRESETS: &'static [(Preset, &'static str)];
    /// Arms that are a Table 1 arm under another name, `(arm, Table 1
    /// arm)`: the closing table shows the paper's number beside them too.
    const TABLE_1_ARMS: &'static [(&'static str, &'static str)] = &[];

    /// Draws the experiment's figure from its rows.
    fn draw(rows: &[MetricRow], stem: &Path) -> Result<(), paper_figures::FigureError>;

    /// Rows computed from every run's results (e.g. agreement between the
    /// arms' test predictions), added before the results are written.
    fn analyse(_results: &RunResults) -> Result<Vec<MetricRow>, String> {
        Ok(Vec::new())
    }
}

/// The image experiment `E`, as the runner runs it.
pub struct Image<E>(PhantomData<E>);

impl<E: ImageSpec> Experiment for Image<E> {
    const NAME: &'static str = E::NAME;
    const ABOUT: &'static str = E::ABOUT;
    const PRESETS: &'static [(Preset, &'static str)] = E::PRESETS;
    type Config = Config;
    type Args = FashionArgs;
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
        ImageRunData::load(config, args)
    }

    fn run(config: &Config, data: &ImageRunData, context: &Context) -> Result<RunResults, String> {
        let mut results = run(config, data, context)?;
        let rows = E::analyse(&results)?;
        results.rows.extend(rows);
        Ok(results)
    }

    fn tables(results: &RunResults) -> Vec<String> {
        vec![accuracy_table(results, E::TABLE_1_ARMS)]
    }

    fn draw(rows: &[MetricRow], stem: &Path) -> Result<(), Box<dyn Error>> {
        Ok(E::draw(rows, stem)?)
    }
}

/// Where the images are read from.
#[derive(Debug, Args)]
pub struct FashionArgs {
    /// Directory with the Fashion-MNIST .gz files (default: $UNTRAINABLE_FASHION_MNIST,
    /// $UNTRAINABLE_DATA/fashion-mnist, /usr/share/datasets/fashion-mnist, ./data/fashion-mnist);
    /// for `--preset paper`, the ImageNet root holding train/ and val/ (default:
    /// $UNTRAINABLE_IMAGENET).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Threads decoding ImageNet's JPEGs for each batch (default: every core).
    #[arg(long, value_name = "N")]
    pub data_workers: Option<usize>,
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
    /// The Deep FCN (config `[deep_fcn]`) guided by a vision transformer
    /// (`[vit]`), the attention-based guide of the error-consistency figure.
    DeepFcnVit,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::DeepFcn => "deep-fcn",
            Target::WideFcn => "wide-fcn",
            Target::Conv => "conv",
            Target::DeepFcnVit => "deep-fcn-vit",
        }
    }

    /// Its config section.
    fn section(self) -> &'static str {
        match self {
            Target::DeepFcn | Target::DeepFcnVit => "deep_fcn",
            Target::WideFcn => "wide_fcn",
            Target::Conv => "conv",
        }
    }

    /// Its guide's config section, which also names the guide's arm.
    fn guide(self) -> &'static str {
        match self {
            Target::DeepFcn | Target::WideFcn => "resnet18",
            Target::Conv => "resnet50",
            Target::DeepFcnVit => "vit",
        }
    }
}

/// An image experiment's config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Number of seeds (0..seeds) unless --seed/--seeds say otherwise.
    seeds: u64,
    /// The targets to run, in order: any of "deep-fcn", "wide-fcn", "conv",
    /// "deep-fcn-vit";
    /// each needs its section and its guide's.
    targets: Vec<Target>,
    data: DataConfig,
    input: InputSpec,
    /// The Deep FCN (paper: 150,528 → 2048 → 47 × 1024 → 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deep_fcn: Option<FcnConfig>,
    /// The Wide FCN (paper: 150,528 → 3 × 8192 → 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wide_fcn: Option<FcnConfig>,
    /// The Deep ConvNet: the ResNet-50 layout with `residual = false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conv: Option<ResNetConfig>,
    /// The guide of both FCNs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resnet18: Option<ResNetConfig>,
    /// The guide of the Deep ConvNet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resnet50: Option<ResNetConfig>,
    /// The guide of `deep-fcn-vit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vit: Option<VitConfig>,
    /// How target taps are paired with guide taps, for every target; an
    /// explicit list names taps, so it fits one target at a time.
    #[serde(default)]
    pairs: PairsConfig,
    /// How every target arm trains.
    train: TrainConfig,
    /// How the guides are trained alone for `guide = "trained"` arms.
    guide_train: Option<TrainConfig>,
    /// Augmentation of the guides' own training batches only (Fashion-MNIST):
    /// a convolutional guide trained on a few thousand translated images
    /// overfits within a few epochs without it. The targets' batches and
    /// the guide's inputs in every guided arm stay as `input` says.
    #[serde(default, skip_serializing_if = "Augment::is_identity")]
    guide_augment: Augment,
    /// Arms run for each target, logged as `<target>/<name>`.
    arms: Vec<ArmConfig>,
    /// Regime gates (docs/regimes.md), measured after the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    gates: Vec<Gate>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataConfig {
    /// The images: Fashion-MNIST (the default) or ImageNet (the paper preset).
    #[serde(default, skip_serializing_if = "ImageDataset::is_fashion_mnist")]
    dataset: ImageDataset,
    /// Validation examples, held out from the 60k training images.
    val_size: usize,
    /// Training examples used, 0 for all the rest of the 60k.
    train_size: usize,
    /// Test examples (the first ones of the 10k test set), 0 for all.
    test_size: usize,
    /// Seed of the train/validation split (fixed across training seeds).
    split_seed: u64,
    /// Every image pasted at an offset fixed per example by `split_seed`
    /// on a larger zero canvas (translated Fashion-MNIST); absent: as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    canvas: Option<Canvas>,
}

/// Everything besides the seed that decides a trained guide's weights:
/// the key under which it is stored and found again, so experiments that
/// share a guide recipe share the trained guide.
#[derive(Serialize)]
struct GuideRecipe<'a, C> {
    guide: &'a C,
    data: &'a DataConfig,
    input: &'a InputSpec,
    guide_train: &'a Option<TrainConfig>,
    #[serde(skip_serializing_if = "Augment::is_identity")]
    guide_augment: &'a Augment,
}

/// A target's network config.
enum TargetNet<'a> {
    Fcn(&'a FcnConfig),
    Conv(&'a ResNetConfig),
}

/// A guide's network config.
#[derive(Clone, Copy)]
enum GuideNet<'a> {
    ResNet(&'a ResNetConfig),
    Vit(&'a VitConfig),
}

impl GuideNet<'_> {
    fn num_params(self) -> usize {
        match self {
            GuideNet::ResNet(net) => net.num_params(),
            GuideNet::Vit(net) => net.num_params(),
        }
    }

    fn tap_names(self) -> Vec<String> {
        match self {
            GuideNet::ResNet(net) => net.tap_names(),
            GuideNet::Vit(net) => net.tap_names(),
        }
    }
}

impl Config {
    fn missing(section: &str, target: Target) -> String {
        format!(
            "targets lists \"{}\" but the config has no [{section}] section; add it or drop the target",
            target.name()
        )
    }

    /// The target's network; validation made sure its section is there.
    fn net(&self, target: Target) -> Result<TargetNet<'_>, String> {
        let net = match target {
            Target::DeepFcn | Target::DeepFcnVit => self.deep_fcn.as_ref().map(TargetNet::Fcn),
            Target::WideFcn => self.wide_fcn.as_ref().map(TargetNet::Fcn),
            Target::Conv => self.conv.as_ref().map(TargetNet::Conv),
        };
        net.ok_or_else(|| Self::missing(target.section(), target))
    }

    fn guide(&self, target: Target) -> Result<GuideNet<'_>, String> {
        let guide = match target {
            Target::DeepFcn | Target::WideFcn => self.resnet18.as_ref().map(GuideNet::ResNet),
            Target::Conv => self.resnet50.as_ref().map(GuideNet::ResNet),
            Target::DeepFcnVit => self.vit.as_ref().map(GuideNet::Vit),
        };
        guide.ok_or_else(|| Self::missing(target.guide(), target))
    }

    /// Checks every field; the networks' class counts against Fashion-MNIST's
    /// 10 (ImageNet's are checked once its folder is read, by
    /// [`Config::validate_classes`]).
    pub fn validate(&self) -> Result<(), String> {
        match self.data.dataset {
            ImageDataset::FashionMnist => self.validate_classes(Some(10)),
            ImageDataset::Imagenet if self.data.canvas.is_some() => Err(
                "data.canvas places Fashion-MNIST images on a larger canvas; remove it for \
                 data.dataset = \"imagenet\""
                    .into(),
            ),
            ImageDataset::Imagenet => self.validate_classes(None),
        }
    }

    /// [`Config::validate`], with every network's output counting
    /// `classes` where given.
    fn validate_classes(&self, classes: Option<usize>) -> Result<(), String> {
        if self.targets.is_empty() {
            return Err(
                "targets is empty; list at least one of \"deep-fcn\", \"wide-fcn\", \"conv\", \"deep-fcn-vit\""
                    .into(),
            );
        }
        for (i, target) in self.targets.iter().enumerate() {
            if self.targets[..i].contains(target) {
                return Err(format!("targets lists \"{}\" twice", target.name()));
            }
        }
        self.input.validate()?;
        self.data.dataset.validate_input(&self.input)?;
        let features = self.input.features();
        let check_classes = |section: &str, outputs: usize| match classes {
            Some(n) if outputs != n => Err(format!(
                "{section}.classes is {outputs} but the images have {n} classes; set {section}.classes = {n}"
            )),
            _ => Ok(()),
        };
        let check_resnet = |section: &str, net: &ResNetConfig| {
            net.validate()
                .map_err(|e| e.replace("resnet.", &format!("{section}.")))?;
            if net.in_channels != self.input.channels {
                return Err(format!(
                    "{section}.in_channels is {} but input.channels is {}; set {section}.in_channels = {}",
                    net.in_channels, self.input.channels, self.input.channels
                ));
            }
            check_classes(section, net.classes)
        };
        for &target in &self.targets {
            let section = target.section();
            let taps = match self.net(target)? {
                TargetNet::Fcn(fcn) => {
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
                    check_classes(section, fcn.classes)?;
                    fcn_taps(fcn)
                }
                TargetNet::Conv(conv) => {
                    check_resnet(section, conv)?;
                    conv.tap_names()
                }
            };
            let guide = self.guide(target)?;
            match guide {
                GuideNet::ResNet(net) => check_resnet(target.guide(), net)?,
                GuideNet::Vit(vit) => {
                    vit.validate()?;
                    let size = self.input.image_size;
                    let channels = self.input.channels;
                    if (vit.image_size, vit.in_channels) != (size, channels) {
                        return Err(format!(
                            "vit takes {}×{} images of {} channels but the input is {size}×{size} \
                             of {channels}; set vit.image_size = {size} and vit.in_channels = {channels}",
                            vit.image_size, vit.image_size, vit.in_channels
                        ));
                    }
                    check_classes("vit", vit.classes)?;
                }
            }
            // Pair names are checked now, before any training.
            resolve_pairs(&self.pairs, &taps, &guide.tap_names())
                .map_err(|e| format!("target \"{}\": {e}", target.name()))?;
        }
        self.train.validate()?;
        let mut batch_sizes = vec![("train.batch_size", self.train.batch_size)];
        if let Some(guide_train) = &self.guide_train {
            guide_train
                .validate()
                .map_err(|e| e.replace("train.", "guide_train."))?;
            batch_sizes.push(("guide_train.batch_size", guide_train.batch_size));
        }
        if self.data.dataset != ImageDataset::FashionMnist && !self.guide_augment.is_identity() {
            return Err(
                "guide_augment applies to Fashion-MNIST; ImageNet's training batches are \
                 augmented by its own transform: remove guide_augment"
                    .into(),
            );
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
        untrainable_runner::validate_arms(&self.arms, &self.train, self.guide_train.is_some())
    }
}

/// An FCN's tap names, from its config (the hidden Linear outputs).
fn fcn_taps(config: &FcnConfig) -> Vec<String> {
    (0..config.hidden_layers)
        .map(|i| format!("linear{i}"))
        .collect()
}

/// The training, validation and test images of a run.
pub struct FashionData {
    pub train: ImageSet,
    pub val: ImageSet,
    pub test: ImageSet,
}

impl FashionData {
    /// Reads Fashion-MNIST, places it on `canvas` if one is given, and holds
    /// `val_size` of its training images out for validation (split by
    /// `split_seed`); of the rest, `train_size` are kept, 0 for all.
    pub fn read(
        args: &FashionArgs,
        canvas: Option<Canvas>,
        val_size: usize,
        train_size: usize,
        split_seed: u64,
    ) -> Result<Self, String> {
        let mut data = FashionMnist::load(args.data.as_deref()).map_err(|e| e.to_string())?;
        if let Some(canvas) = canvas {
            // The test file draws its offsets from another seed than the training file.
            data.train = canvas.place(&data.train, split_seed)?;
            data.test = canvas.place(&data.test, !split_seed)?;
        }
        let train_size = (train_size > 0).then_some(train_size);
        let (train, val) = split_train_val(&data.train, val_size, train_size, split_seed)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            train,
            val,
            test: data.test,
        })
    }

    /// The images as `config.data` says, the test set cut to `test_size`.
    fn load(config: &Config, args: &FashionArgs) -> Result<Self, String> {
        let data = &config.data;
        let read = Self::read(
            args,
            data.canvas,
            data.val_size,
            data.train_size,
            data.split_seed,
        )?;
        let test = match data.test_size {
            0 => read.test,
            n if n <= read.test.len() => read.test.subset(&(0..n).collect::<Vec<_>>()),
            n => {
                return Err(format!(
                    "data.test_size = {n} but the test set has {} images; lower it (0 takes them all)",
                    read.test.len()
                ));
            }
        };
        Ok(Self { test, ..read })
    }
}

/// The images of a run: Fashion-MNIST in memory, or ImageNet decoded from
/// its folder batch by batch.
pub enum ImageRunData {
    Fashion(FashionData),
    ImageNet(ImageNetData),
}

impl ImageRunData {
    /// The images `config.data.dataset` names; ImageNet's class count is
    /// checked against the networks' once its folder is read.
    fn load(config: &Config, args: &FashionArgs) -> Result<Self, String> {
        let d = &config.data;
        match d.dataset {
            ImageDataset::FashionMnist => FashionData::load(config, args).map(Self::Fashion),
            ImageDataset::Imagenet => {
                let task = read_imagenet(args, d.val_size, d.train_size, d.split_seed)?;
                config.validate_classes(Some(task.classes()))?;
                Ok(Self::ImageNet(task))
            }
        }
    }
}

/// ImageNet from `--data` (or its default place), `val_size` training
/// images held out for validation (split by `split_seed`), `train_size` of
/// the rest kept (0 for all), decoded by `--data-workers` threads.
pub fn read_imagenet(
    args: &FashionArgs,
    val_size: usize,
    train_size: usize,
    split_seed: u64,
) -> Result<ImageNetData, String> {
    let net = ImageNet::find(args.data.as_deref()).map_err(|e| e.to_string())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = args.data_workers.unwrap_or(cores);
    ImageNetData::new(net, val_size, train_size, split_seed, workers)
}

/// What every target's runs share.
struct Shared<'a, K> {
    config: &'a Config,
    task: &'a K,
    /// Where the guides' own training differs from `task`.
    guide_task: Option<&'a K>,
    context: &'a Context,
}

/// Trains every target's arms for every seed on the images of `data`.
fn run(config: &Config, data: &ImageRunData, context: &Context) -> Result<RunResults, String> {
    match data {
        ImageRunData::Fashion(data) => {
            let task = ImageData {
                train: &data.train,
                val: &data.val,
                test: Some(&data.test),
                input: &config.input,
            };
            let guide_input = InputSpec {
                augment: config.guide_augment,
                ..config.input.clone()
            };
            let guide_task = ImageData {
                input: &guide_input,
                ..task
            };
            let augmented = !config.guide_augment.is_identity();
            run_task(config, &task, augmented.then_some(&guide_task), context)
        }
        ImageRunData::ImageNet(task) => run_task(config, task, None, context),
    }
}

/// Trains every target's arms for every seed on `task`; the guides trained
/// alone are kept once.
fn run_task<K: Task<Input = Tensor<4>, Targets = Tensor<1, Int>>>(
    config: &Config,
    task: &K,
    guide_task: Option<&K>,
    context: &Context,
) -> Result<RunResults, String> {
    let names: Vec<&str> = config.targets.iter().map(|t| t.name()).collect();
    tracing::info!(
        "{}: {} training / {} validation / {} test images, targets {}, {} arms × {} seeds → {}",
        context.experiment,
        task.len(Split::Train),
        task.len(Split::Val),
        task.len(Split::Test),
        names.join(", "),
        config.arms.len(),
        context.seeds.len(),
        context.run_dir.path().display()
    );
    let shared = Shared {
        config,
        task,
        guide_task,
        context,
    };
    let mut results = RunResults::default();
    for &target in &config.targets {
        let net = config.net(target)?;
        tracing::info!(
            "{}: {} parameters, guided by {} ({} parameters)",
            target.name(),
            match net {
                TargetNet::Fcn(fcn) => fcn.num_params(),
                TargetNet::Conv(conv) => conv.num_params(),
            },
            target.guide(),
            config.guide(target)?.num_params()
        );
        let target = match net {
            TargetNet::Fcn(fcn) => run_target(&shared, target, &|d| fcn.init(d))?,
            TargetNet::Conv(conv) => run_target(&shared, target, &|d| conv.init(d))?,
        };
        // Both FCNs read the same trained ResNet-18: its rows are kept once.
        let before: Vec<String> = results.summaries.iter().map(|s| s.arm.clone()).collect();
        let new = |arm: &str| !before.iter().any(|a| a == arm);
        results.extend(RunResults {
            rows: target.rows.into_iter().filter(|r| new(&r.arm)).collect(),
            summaries: target
                .summaries
                .into_iter()
                .filter(|s| new(&s.arm))
                .collect(),
            predictions: target
                .predictions
                .into_iter()
                .filter(|p| new(&p.arm))
                .collect(),
        });
    }
    Ok(results)
}

/// Every arm of one target for every seed (after its guide, trained alone
/// where an arm needs it); arms are renamed `<target>/<arm>` and the guide's
/// own training `<guide>/guide`.
fn run_target<K: Task<Input = Tensor<4>>, T: Network<Input = Tensor<4>>>(
    shared: &Shared<'_, K>,
    target: Target,
    build: &dyn Fn(&Device) -> T,
) -> Result<RunResults, String> {
    match shared.config.guide(target)? {
        GuideNet::ResNet(guide) => {
            run_target_with(shared, target, build, guide, &|d| guide.init(d))
        }
        GuideNet::Vit(guide) => run_target_with(shared, target, build, guide, &|d| guide.init(d)),
    }
}

/// [`run_target`] with the guide's config (part of the trained guide's
/// recipe) and constructor.
fn run_target_with<K, T, G, C>(
    shared: &Shared<'_, K>,
    target: Target,
    build: &dyn Fn(&Device) -> T,
    guide: &C,
    build_guide: &dyn Fn(&Device) -> G,
) -> Result<RunResults, String>
where
    K: Task<Input = Tensor<4>>,
    T: Network<Input = Tensor<4>>,
    G: Network<Input = Tensor<4>>,
    C: Serialize,
{
    let config = shared.config;
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
        guide_augment: &config.guide_augment,
    })
    .map_err(|e| e.to_string())?;
    let experiment = GuidedExperiment {
        task: shared.task,
        target: build,
        guide: build_guide,
        pairs: &config.pairs,
        train: &config.train,
        guide_train: config.guide_train.as_ref(),
        guide_task: shared.guide_task,
        guide_recipe: &recipe,
        arms: &arms,
        context: shared.context,
    };
    let mut results = experiment
        .run()
        .map_err(|e| format!("{} ([{}]): {e}", target.name(), target.section()))?;
    results.rename_arm(GUIDE_ARM, &format!("{}/{GUIDE_ARM}", target.guide()));
    Ok(results)
}

/// Per arm, in %: top-1 and top-5 accuracy of the selected network on the
/// test split and on validation at its selected epoch (mean ± sd over
/// seeds), beside the paper's ImageNet top-5 validation accuracy.
fn accuracy_table(results: &RunResults, table_1_arms: &[(&str, &str)]) -> String {
    let (rows, summaries) = (&results.rows, &results.summaries);
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
        let table_1_arm = table_1_arms
            .iter()
            .find(|(a, _)| *a == arm)
            .map_or(arm, |(_, t)| t);
        let paper =
            paper_figures::tables::paper_value("image-guidance", TOP5_ACCURACY, table_1_arm)
                .unwrap_or("–");
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
