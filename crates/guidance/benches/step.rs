//! One training step, plain and guided, and the parts of a guided step (the
//! target's forward + backward, the optimiser by difference, the guide's
//! forward, the guidance terms), so that the cost of guidance beyond the
//! guide's own forward pass is visible; where the guide's inputs are fixed
//! per example (the image cases, on a training set of four batches), the
//! guided step and the guidance terms again with the guide's Gram matrices
//! gathered from tables over the training set, as the trainer runs them.
//! Measure with `cargo test --workspace --bench step -- --bench`;
//! `cargo test --workspace` runs each benchmark once. Another backend of
//! the build: `UNTRAINABLE_BACKEND=ndarray` (see untrainable-core's features).
//!
//! Sizes: the Deep FCN 784 → 20 × 512 → 10 at batch 256, guided by an
//! untrained ResNet-18 of base width 16 on 28 × 28 images over the uniform
//! pairs (the sizes of benches/reference/step.py); the Deep ConvNet
//! of width 8 guided by a ResNet-50 of width 8 at batch 64; the copy-paste
//! RNN guided by the Transformer of its cpu preset at batch 64. With
//! `UNTRAINABLE_BENCH_SIZES=paper`, the paper presets' networks and batch
//! (for a GPU backend): the ImageNet Deep FCN and Deep ConvNet guided by the
//! ImageNet ResNet-18 and ResNet-50 on 3 × 224 × 224 inputs, the paper's
//! copy-paste RNN and Transformer on sequences of 20 to 40 digits, batch 256.

use std::hint::black_box;
use std::time::Duration;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use untrainable_arch_cnn::ResNetConfig;
use untrainable_arch_fcn::FcnConfig;
use untrainable_arch_rnn::RnnLmConfig;
use untrainable_arch_transformer::CausalLmConfig;
use untrainable_core::{Backend, Guide, Network, WithoutAutodiff, seed};
use untrainable_guidance::{
    CopyPasteTask, GuideBatch, GuideGramTable, ImageData, InputSpec, Pair, PairsConfig, Reduction,
    Split, Task, guidance_loss_of, resolve_pairs,
};
use untrainable_repsim::Distance;
use untrainable_tasks::copy_paste::CopyPaste;
use untrainable_tasks::fashion_mnist::ImageSet;
use untrainable_tasks::sequence::SplitSizes;

/// The sizes under measurement (see the crate's doc).
#[derive(Clone, Copy, PartialEq)]
enum Sizes {
    Cpu,
    Paper,
}

fn sizes() -> Sizes {
    match std::env::var("UNTRAINABLE_BENCH_SIZES").as_deref() {
        Err(_) | Ok("cpu") => Sizes::Cpu,
        Ok("paper") => Sizes::Paper,
        Ok(other) => panic!("UNTRAINABLE_BENCH_SIZES={other}: expected cpu or paper"),
    }
}

/// A network in training with its optimiser, stepped in place.
struct Trainer<T: Network> {
    model: Option<T>,
    optim: ModuleOptimizer,
}

impl<T: Network> Trainer<T> {
    fn new(model: T, train: &Device) -> Self {
        Self {
            model: Some(model.fork(train).train()),
            optim: untrainable_kernels::adam(None),
        }
    }

    /// Task loss (+ the guidance term over `pairs` when the guide's side
    /// is given), backward and an Adam step; returns the loss.
    fn step<K: Task<Input = T::Input>>(
        &mut self,
        task: &K,
        batch: &(K::Input, K::Targets),
        guide: Option<(&GuideBatch, &[Pair])>,
    ) -> f64 {
        let model = self.model.take().expect("a model between steps");
        let out = model.forward(batch.0.clone());
        let mut loss = task.loss(out.output, &batch.1);
        if let Some((guide, pairs)) = guide {
            loss = loss + guidance(&out.taps, guide, pairs);
        }
        let value = loss.clone().into_scalar::<f64>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(self.optim.step(1e-3, model, grads));
        value
    }
}

/// The trainer's guidance term: `Σ (1 − linear CKA)` over `pairs`.
fn guidance(target: &[untrainable_core::Tap], guide: &GuideBatch, pairs: &[Pair]) -> Tensor<1> {
    guidance_loss_of(target, guide, pairs, Distance::LinearCka, Reduction::Sum)
}

/// The backend under measurement: `UNTRAINABLE_BACKEND` (a `--backend`
/// name of this build), flex by default.
fn device() -> Device {
    Backend::from_env()
        .unwrap_or_else(|e| panic!("{e}"))
        .device()
}

/// `value` once the device has finished the work queued so far: a GPU
/// backend returns before its kernels run.
fn synced<T>(device: &Device, value: T) -> T {
    device.sync().expect("the device runs the queued work");
    value
}

fn random_images(n: usize) -> ImageSet {
    let device = device();
    let pixels: Tensor<1> = Tensor::random([n * 784], Distribution::Uniform(0.0, 1.0), &device);
    ImageSet {
        images: untrainable_core::to_vec(pixels),
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
        rows: 28,
        cols: 28,
    }
}

fn bench_group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    match sizes() {
        Sizes::Cpu => group.measurement_time(Duration::from_secs(15)),
        // A GPU lent for minutes: ten samples of equal iteration counts take
        // ten iterations at least, where linear sampling takes 55.
        Sizes::Paper => group
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(4))
            .sampling_mode(SamplingMode::Flat),
    };
    group
}

/// One target guided by one guide on the task's first `batch_size` training
/// examples: building the batch, plain step, its forward + backward without
/// the optimiser, guided step, the guide's forward alone, and the guidance
/// terms alone (forward + backward from fixed taps).
fn step_group<K: Task, T: Network<Input = K::Input>, G: Network<Input = K::Input>>(
    c: &mut Criterion,
    name: &str,
    task: &K,
    batch_size: usize,
    target: impl Fn(&Device) -> T,
    guide: G,
) {
    let device = device();
    let train = device.clone().autodiff();
    let idx: Vec<usize> = (0..batch_size).collect();
    let batch = &task.batch(Split::Train, &idx, &train);
    let plain_input = batch.0.clone().without_autodiff();
    let guide = Guide::new(guide);
    let mut plain = Trainer::new(target(&device), &train);
    let mut guided = Trainer::new(target(&device), &train);
    let pairs = resolve_pairs(
        &PairsConfig::default(),
        &target(&device).tap_names(),
        &guide.network().tap_names(),
    )
    .expect("uniform pairs");

    let mut group = bench_group(c, name);
    group.bench_function("load_batch", |b| {
        b.iter(|| black_box(synced(&device, task.batch(Split::Train, &idx, &train))))
    });
    group.bench_function("plain_step", |b| {
        b.iter(|| black_box(synced(&device, plain.step(task, batch, None))))
    });
    group.bench_function("target_forward_backward", |b| {
        let model = plain.model.as_ref().expect("a model");
        b.iter(|| {
            let out = model.forward(batch.0.clone());
            let loss = task.loss(out.output, &batch.1);
            let grads = GradientsParams::from_grads(loss.backward(), model);
            black_box(synced(&device, grads))
        })
    });
    group.bench_function("guided_step", |b| {
        b.iter(|| {
            let taps = GuideBatch::Taps(guide.forward(plain_input.clone()).taps);
            black_box(synced(
                &device,
                guided.step(task, batch, Some((&taps, &pairs))),
            ))
        })
    });
    group.bench_function("guide_forward", |b| {
        b.iter(|| black_box(guide.forward(plain_input.clone()).output.into_data()))
    });
    let guide_taps = GuideBatch::Taps(guide.forward(plain_input.clone()).taps);
    let model = guided.model.as_ref().expect("a model");
    let target_taps: Vec<_> = model
        .forward(batch.0.clone())
        .taps
        .into_iter()
        .map(|mut t| {
            t.value = t.value.detach().require_grad();
            t
        })
        .collect();
    group.bench_function("guidance_terms_forward_backward", |b| {
        b.iter(|| {
            let grads = guidance(&target_taps, &guide_taps, &pairs).backward();
            black_box(target_taps[0].value.grad(&grads).map(|g| g.into_data()))
        })
    });
    // Where the task's guide inputs are fixed per example: the guide's Gram
    // matrices gathered from tables over the training set, as the trainer
    // reads them (the table built once, outside the measurement).
    if let Some(table) = task.guide_table(&guide, batch_size, &device) {
        let used: Vec<usize> = (0..guide.network().tap_names().len()).collect();
        let grams = GuideGramTable::from_taps(&table, &used, batch_size);
        drop(table);
        // The batch's examples spread over the training set.
        let spread: Vec<usize> = (0..batch_size)
            .map(|i| i * task.len(Split::Train) / batch_size)
            .collect();
        let table_batch = &task.batch(Split::Train, &spread, &train);
        group.bench_function("guided_step_gram_table", |b| {
            b.iter(|| {
                let grams = GuideBatch::Grams(grams.gather(&spread, &device));
                black_box(synced(
                    &device,
                    guided.step(task, table_batch, Some((&grams, &pairs))),
                ))
            })
        });
        group.bench_function("gram_table_gather_and_centre", |b| {
            b.iter(|| {
                let batch = grams.gather(&spread, &device);
                black_box(
                    batch
                        .grams
                        .into_iter()
                        .flatten()
                        .map(|k| k.into_data())
                        .count(),
                )
            })
        });
        group.bench_function("guidance_terms_gram_table_forward_backward", |b| {
            b.iter(|| {
                let guide_grams = GuideBatch::Grams(grams.gather(&spread, &device));
                let grads = guidance(&target_taps, &guide_grams, &pairs).backward();
                black_box(target_taps[0].value.grad(&grads).map(|g| g.into_data()))
            })
        });
    }
    group.finish();
}

/// Image targets guided by a conv guide on random 28 × 28 images, resized to
/// `channels × size × size` as the image task does.
fn image_steps<T: Network<Input = Tensor<4>>, G: Network<Input = Tensor<4>>>(
    c: &mut Criterion,
    name: &str,
    (size, channels): (usize, usize),
    target: impl Fn(&Device) -> T,
    guide: impl Fn(&Device) -> G,
    batch: usize,
) {
    let device = device();
    seed(&device, 0);
    // Four batches at the cpu sizes, so that the Gram tables' batch is a
    // block of a larger table.
    let examples = match sizes() {
        Sizes::Cpu => 4 * batch,
        Sizes::Paper => batch,
    };
    let (set, val) = (random_images(examples), random_images(2));
    let input = InputSpec {
        image_size: size,
        channels,
        mean: 0.3,
        std: 0.3,
        augment: Default::default(),
    };
    let task = ImageData {
        train: &set,
        val: &val,
        test: None,
        input: &input,
    };
    step_group(c, name, &task, batch, target, guide(&device));
}

fn deep_fcn(c: &mut Criterion) {
    let (fcn, resnet18, input, batch) = match sizes() {
        Sizes::Cpu => (
            FcnConfig {
                first_width: 512,
                width: 512,
                ..FcnConfig::deep_small()
            },
            ResNetConfig::resnet18_small(16),
            (28, 1),
            256,
        ),
        Sizes::Paper => (
            FcnConfig {
                classes: 10,
                ..FcnConfig::deep_imagenet()
            },
            ResNetConfig {
                classes: 10,
                ..ResNetConfig::resnet18_imagenet()
            },
            (224, 3),
            256,
        ),
    };
    image_steps(
        c,
        "deep_fcn_resnet18",
        input,
        |d| fcn.init(d),
        |d| resnet18.init(d),
        batch,
    );
}

fn deep_convnet(c: &mut Criterion) {
    let (convnet, resnet50, input, batch) = match sizes() {
        Sizes::Cpu => (
            ResNetConfig::deep_convnet_small(8),
            ResNetConfig::resnet50_small(8),
            (28, 1),
            64,
        ),
        Sizes::Paper => (
            ResNetConfig {
                classes: 10,
                ..ResNetConfig::deep_convnet_imagenet()
            },
            ResNetConfig {
                classes: 10,
                ..ResNetConfig::resnet50_imagenet()
            },
            (224, 3),
            256,
        ),
    };
    image_steps(
        c,
        "deep_convnet_resnet50",
        input,
        |d| convnet.init(d),
        |d| resnet50.init(d),
        batch,
    );
}

fn copy_paste(c: &mut Criterion) {
    let device = device();
    seed(&device, 0);
    let (lengths, rnn, transformer, batch) = match sizes() {
        Sizes::Cpu => (
            (5, 10),
            RnnLmConfig::copy_paste_cpu(),
            CausalLmConfig {
                d_model: 64,
                heads: 4,
                ff: 64,
                ..CausalLmConfig::copy_paste_small()
            },
            64,
        ),
        Sizes::Paper => (
            (20, 40),
            RnnLmConfig::copy_paste_paper(),
            CausalLmConfig::copy_paste_paper(),
            256,
        ),
    };
    let task = CopyPasteTask {
        task: CopyPaste {
            min_len: lengths.0,
            max_len: lengths.1,
            ..CopyPaste::paper()
        },
        sizes: SplitSizes {
            train: batch,
            val: 2,
            test: 2,
        },
        data_seed: 0,
    };
    let guide = CausalLmConfig {
        dropout: 0.0,
        ..transformer
    }
    .init(&device);
    step_group(
        c,
        "copy_paste_rnn_transformer",
        &task,
        batch,
        |d| rnn.init(d),
        guide,
    );
}

criterion_group!(steps, deep_fcn, deep_convnet, copy_paste);
untrainable_kernels::huge_page_allocator!();

criterion_main!(steps);
