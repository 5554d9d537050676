//! One training step, plain and guided, and the parts of a guided step (the
//! target's forward + backward, the optimiser by difference, the guide's
//! forward, the guidance terms), so that the cost of guidance beyond the
//! guide's own forward pass is visible.
//! Measure with `cargo test --workspace --bench step -- --bench`;
//! `cargo test --workspace` runs each benchmark once. Another backend of
//! the build: `UNTRAINABLE_BACKEND=ndarray` (see untrainable-core's features).
//!
//! Sizes: the Deep FCN 784 → 20 × 512 → 10 at batch 256, guided by an
//! untrained ResNet-18 of base width 16 on 28 × 28 images over the uniform
//! pairs (the sizes of the PyTorch measurement in issue 9); the Deep ConvNet
//! of width 8 guided by a ResNet-50 of width 8 at batch 64; the copy-paste
//! RNN guided by the Transformer of its cpu preset at batch 64.

use std::hint::black_box;
use std::time::Duration;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use untrainable_arch_cnn::ResNetConfig;
use untrainable_arch_fcn::FcnConfig;
use untrainable_arch_rnn::RnnLmConfig;
use untrainable_arch_transformer::CausalLmConfig;
use untrainable_core::{Backend, Guide, Network, WithoutAutodiff, seed};
use untrainable_guidance::{
    CopyPasteTask, ImageData, InputSpec, Pair, PairsConfig, Part, Reduction, Task, guidance_loss,
    resolve_pairs,
};
use untrainable_repsim::Distance;
use untrainable_tasks::copy_paste::CopyPaste;
use untrainable_tasks::fashion_mnist::ImageSet;
use untrainable_tasks::sequence::SplitSizes;

/// A network in training with its optimiser, stepped in place.
struct Trainer<T: Network> {
    model: Option<T>,
    optim: ModuleOptimizer,
}

impl<T: Network> Trainer<T> {
    fn new(model: T, train: &Device) -> Self {
        Self {
            model: Some(model.fork(train).train()),
            optim: untrainable_core::adam(None),
        }
    }

    /// Task loss (+ the guidance term over `pairs` when guide taps are
    /// given), backward and an Adam step; returns the loss.
    fn step<K: Task<Input = T::Input>>(
        &mut self,
        task: &K,
        batch: &(K::Input, K::Targets),
        guide_taps: Option<(&[untrainable_core::Tap], &[Pair])>,
    ) -> f64 {
        let model = self.model.take().expect("a model between steps");
        let out = model.forward(batch.0.clone());
        let mut loss = task.loss(out.output, &batch.1);
        if let Some((taps, pairs)) = guide_taps {
            loss =
                loss + guidance_loss(&out.taps, taps, pairs, Distance::LinearCka, Reduction::Sum);
        }
        let value = loss.clone().into_scalar::<f64>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(self.optim.step(1e-3, model, grads));
        value
    }
}

/// The backend under measurement: `UNTRAINABLE_BACKEND` (a `--backend`
/// name of this build), flex by default.
fn device() -> Device {
    Backend::from_env()
        .unwrap_or_else(|e| panic!("{e}"))
        .device()
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
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
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
    let batch = &task.batch(Part::Train, &idx, &train);
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
        b.iter(|| black_box(task.batch(Part::Train, &idx, &train)))
    });
    group.bench_function("plain_step", |b| {
        b.iter(|| black_box(plain.step(task, batch, None)))
    });
    group.bench_function("target_forward_backward", |b| {
        let model = plain.model.as_ref().expect("a model");
        b.iter(|| {
            let out = model.forward(batch.0.clone());
            let loss = task.loss(out.output, &batch.1);
            black_box(GradientsParams::from_grads(loss.backward(), model))
        })
    });
    group.bench_function("guided_step", |b| {
        b.iter(|| {
            let taps = guide.forward(plain_input.clone()).taps;
            black_box(guided.step(task, batch, Some((&taps, &pairs))))
        })
    });
    group.bench_function("guide_forward", |b| {
        b.iter(|| black_box(guide.forward(plain_input.clone()).output.into_data()))
    });
    let guide_taps = guide.forward(plain_input.clone()).taps;
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
            let term = guidance_loss(
                &target_taps,
                &guide_taps,
                &pairs,
                Distance::LinearCka,
                Reduction::Sum,
            );
            let grads = term.backward();
            black_box(target_taps[0].value.grad(&grads).map(|g| g.into_data()))
        })
    });
    group.finish();
}

/// Image targets guided by a conv guide on random 28 × 28 images.
fn image_steps<T: Network<Input = Tensor<4>>, G: Network<Input = Tensor<4>>>(
    c: &mut Criterion,
    name: &str,
    target: impl Fn(&Device) -> T,
    guide: impl Fn(&Device) -> G,
    batch: usize,
) {
    let device = device();
    seed(&device, 0);
    let (set, val) = (random_images(batch), random_images(2));
    let input = InputSpec {
        image_size: 28,
        channels: 1,
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
    let fcn = FcnConfig {
        first_width: 512,
        width: 512,
        ..FcnConfig::deep_small()
    };
    image_steps(
        c,
        "deep_fcn_resnet18",
        |d| fcn.init(d),
        |d| ResNetConfig::resnet18_small(16).init(d),
        256,
    );
}

fn deep_convnet(c: &mut Criterion) {
    image_steps(
        c,
        "deep_convnet_resnet50",
        |d| ResNetConfig::deep_convnet_small(8).init(d),
        |d| ResNetConfig::resnet50_small(8).init(d),
        64,
    );
}

fn copy_paste(c: &mut Criterion) {
    let device = device();
    seed(&device, 0);
    let task = CopyPasteTask {
        task: CopyPaste {
            min_len: 5,
            max_len: 10,
            ..CopyPaste::paper()
        },
        sizes: SplitSizes {
            train: 64,
            val: 2,
            test: 2,
        },
        data_seed: 0,
    };
    let guide = CausalLmConfig {
        d_model: 64,
        heads: 4,
        ff: 64,
        dropout: 0.0,
        ..CausalLmConfig::copy_paste_small()
    }
    .init(&device);
    step_group(
        c,
        "copy_paste_rnn_transformer",
        &task,
        64,
        |d| RnnLmConfig::copy_paste_cpu().init(d),
        guide,
    );
}

criterion_group!(steps, deep_fcn, deep_convnet, copy_paste);
criterion_main!(steps);
