//! End-to-end properties of the guided training loop on tiny networks and
//! generated images.

#[allow(dead_code)]
mod common;

use common::input;
use std::sync::MutexGuard;

use burn::tensor::Device;
use untrainable_arch_cnn::ResNetConfig;
use untrainable_arch_fcn::FcnConfig;
use untrainable_core::{Guide, Network, parameter_values, seed, to_vec};
use untrainable_guidance::task::top_k_correct;
use untrainable_guidance::{
    ArmConfig, GUIDED_PAIRS, Guidance, GuideTapTable, ImageData, InputSpec, NoiseFor, NoiseWarmup,
    Objective, PairSubset, PairsConfig, Progress, RunSpec, Runtime, Split, StepWindow, Task,
    TrainConfig, resolve_pairs, train_arm,
};
use untrainable_repsim::host::{DEFAULT_TWONN_DISCARD, twonn_dimension};
use untrainable_repsim::{Distance, host_matrix};
use untrainable_tasks::Augment;
use untrainable_tasks::fashion_mnist::ImageSet;

/// Ten classes of 8×8 images, each class a bright horizontal band at its own
/// row plus deterministic speckle, so there is something to learn.
fn images(n: usize, offset: usize) -> ImageSet {
    let (rows, cols) = (8, 8);
    let mut pixels = Vec::with_capacity(n * rows * cols);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let label = (i + offset) % 10;
        for r in 0..rows {
            for c in 0..cols {
                let band = if r == label % rows { 0.8 } else { 0.1 };
                let speckle = (((i * 31 + r * 7 + c * 13) % 17) as f32) / 170.0;
                pixels.push(band + speckle + if label >= 8 && c < 4 { 0.3 } else { 0.0 });
            }
        }
        labels.push(label as u8);
    }
    ImageSet {
        images: pixels,
        labels,
        rows,
        cols,
    }
}

fn target_config() -> FcnConfig {
    FcnConfig {
        input_features: 64,
        first_width: 24,
        width: 16,
        hidden_layers: 6,
        classes: 10,
        dropout: 0.1,
        batch_norm: true,
    }
}

fn guide_config() -> ResNetConfig {
    ResNetConfig {
        blocks: vec![1, 1],
        ..ResNetConfig::resnet18_small(2)
    }
}

fn train_config(epochs: u32) -> TrainConfig {
    TrainConfig {
        learning_rate: 1e-3,
        ..common::train_config(epochs, 16)
    }
}

fn arm(name: &str, guided: bool, warmup: u64) -> ArmConfig {
    let arm = if guided {
        ArmConfig::guided(name)
    } else {
        ArmConfig::plain(name)
    };
    ArmConfig {
        warmup: (warmup > 0).then_some(NoiseWarmup {
            steps: warmup,
            noise_for: NoiseFor::Both,
        }),
        ..arm
    }
}

struct Setup {
    _seeded: MutexGuard<'static, ()>,
    train: ImageSet,
    val: ImageSet,
    input: InputSpec,
    device: Device,
}

impl Setup {
    fn new() -> Self {
        let seeded = untrainable_core::random_stream_lock();
        Self {
            _seeded: seeded,
            train: images(64, 0),
            val: images(32, 3),
            input: input(),
            device: Device::flex(),
        }
    }

    fn run(
        &self,
        arm: &ArmConfig,
        guide: &Guide<untrainable_arch_cnn::ResNet>,
        epochs: u32,
    ) -> untrainable_guidance::ArmRun<untrainable_arch_fcn::Fcn> {
        self.run_with(arm, guide, &PairsConfig::default(), &train_config(epochs))
    }

    fn data(&self) -> ImageData<'_> {
        ImageData {
            train: &self.train,
            val: &self.val,
            test: None,
            input: &self.input,
        }
    }

    fn run_with(
        &self,
        arm: &ArmConfig,
        guide: &Guide<untrainable_arch_cnn::ResNet>,
        pairs: &PairsConfig,
        config: &TrainConfig,
    ) -> untrainable_guidance::ArmRun<untrainable_arch_fcn::Fcn> {
        seed(&self.device, 7);
        let target = target_config().init(&self.device);
        let pairs =
            resolve_pairs(pairs, &target.tap_names(), &guide.network().tap_names()).unwrap();
        train_arm(
            &RunSpec {
                experiment: "test",
                arm,
                seed: 7,
                guide,
                pairs: &pairs,
                task: &self.data(),
                config,
            },
            target,
            &Runtime {
                device: &self.device,
                progress: Progress::Quiet,
                checkpoint: None,
            },
        )
        .unwrap()
    }

    fn guide(&self) -> Guide<untrainable_arch_cnn::ResNet> {
        seed(&self.device, 99);
        Guide::new(guide_config().init(&self.device))
    }
}

#[test]
fn a_guided_run_leaves_every_guide_parameter_bit_identical() {
    let setup = Setup::new();
    let guide = setup.guide();
    let before = parameter_values(guide.network());
    let run = setup.run(&arm("guided", true, 4), &guide, 2);
    assert_eq!(run.summary.status.to_string(), "ok");
    let after = parameter_values(guide.network());
    assert_eq!(before.len(), after.len());
    assert!(
        before
            .iter()
            .zip(&after)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
}

#[test]
fn the_same_seed_gives_the_same_initial_target_and_the_same_metrics() {
    let setup = Setup::new();
    let device = &setup.device;
    seed(device, 5);
    let a = parameter_values(&target_config().init(device));
    seed(device, 5);
    let b = parameter_values(&target_config().init(device));
    seed(device, 6);
    let c = parameter_values(&target_config().init(device));
    assert_eq!(a, b);
    assert_ne!(a, c);

    let guide = setup.guide();
    let first = setup.run(&arm("guided", true, 2), &guide, 1);
    let second = setup.run(&arm("guided", true, 2), &guide, 1);
    let values = |r: &untrainable_guidance::ArmRun<untrainable_arch_fcn::Fcn>| {
        r.rows.iter().map(|m| m.value).collect::<Vec<_>>()
    };
    assert_eq!(values(&first), values(&second));
}

#[test]
fn guided_training_raises_the_cka_of_the_aligned_pairs() {
    let setup = Setup::new();
    let guide = setup.guide();
    let mean_cka = |run: &untrainable_guidance::ArmRun<untrainable_arch_fcn::Fcn>| {
        let last_epoch = run.rows.iter().filter_map(|r| r.epoch).max().unwrap();
        let v: Vec<f64> = run
            .rows
            .iter()
            .filter(|r| r.epoch == Some(last_epoch) && r.metric.starts_with("cka/"))
            .map(|r| r.value)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let base = setup.run(&arm("base", false, 0), &guide, 3);
    let guided = setup.run(&arm("guided", true, 0), &guide, 3);
    assert!(
        mean_cka(&guided) > mean_cka(&base) + 0.05,
        "guided {} vs base {}",
        mean_cka(&guided),
        mean_cka(&base)
    );
}

#[test]
fn noise_warmup_lowers_the_guidance_term_on_noise() {
    let setup = Setup::new();
    let guide = setup.guide();
    let data = ImageData {
        train: &setup.train,
        val: &setup.val,
        test: None,
        input: &setup.input,
    };
    seed(&setup.device, 7);
    let target = target_config().init(&setup.device);
    let pairs = resolve_pairs(
        &PairsConfig::default(),
        &target.tap_names(),
        &guide.network().tap_names(),
    )
    .unwrap();
    // Each warm-up step draws fresh noise, so single steps are noisy: compare
    // the means of the first and last twenty.
    let config = TrainConfig {
        learning_rate: 1e-2,
        ..train_config(1)
    };
    let run = train_arm(
        &RunSpec {
            experiment: "test",
            arm: &arm("noise-warmup", false, 120),
            seed: 7,
            guide: &guide,
            pairs: &pairs,
            task: &data,
            config: &config,
        },
        target,
        &Runtime {
            device: &setup.device,
            progress: Progress::Quiet,
            checkpoint: None,
        },
    )
    .unwrap();
    let warmup: Vec<f64> = run
        .rows
        .iter()
        .filter(|r| r.metric == "warmup_guidance_loss")
        .map(|r| r.value)
        .collect();
    assert_eq!(warmup.len(), 120);
    let head = warmup[..20].iter().sum::<f64>() / 20.0;
    let tail = warmup[100..].iter().sum::<f64>() / 20.0;
    assert!(
        tail < head - 0.2,
        "warm-up did not reduce Σ(1 − CKA): {head} → {tail}"
    );
    // Warm-up steps are not training steps: the task loss starts after them.
    assert!(
        run.rows
            .iter()
            .any(|r| r.metric == "task_loss" && r.step == 0)
    );
}

#[test]
fn early_disconnect_guides_only_its_first_steps_then_trains_plainly() {
    let setup = Setup::new();
    let guide = setup.guide();
    let mut early = arm("early-disconnect", true, 0);
    early.objective = Objective::Guidance(Guidance {
        window: StepWindow {
            from: 0,
            until: Some(3),
        },
        guide_on_noise: false,
    });
    let run = setup.run(&early, &guide, 2);
    let guided_steps: Vec<u64> = run
        .rows
        .iter()
        .filter(|r| r.metric == "guidance_loss")
        .map(|r| r.step)
        .collect();
    assert_eq!(guided_steps, [0, 1, 2]);
    assert_eq!(run.summary.steps, 8);
    // After the disconnect the loss is plain training's: the task loss alone.
    let of = |metric: &str| -> Vec<f64> {
        let rows = (run.rows.iter()).filter(|r| r.metric == metric && r.split == Split::Train);
        rows.map(|r| r.value).collect()
    };
    let (loss, task) = (of("loss"), of("task_loss"));
    assert_eq!(loss.len(), 8);
    for step in 0..8 {
        if step < 3 {
            assert!(
                loss[step] > task[step],
                "step {step}: guided, {loss:?} {task:?}"
            );
        } else {
            assert_eq!(loss[step], task[step], "step {step}: disconnected");
        }
    }
}

#[test]
fn a_non_finite_loss_stops_the_arm_as_diverged() {
    let setup = Setup::new();
    let guide = setup.guide();
    // One corrupt pixel makes every batch that holds it produce a NaN loss.
    let mut train = setup.train.clone();
    train.images[100] = f32::NAN;
    let data = ImageData {
        train: &train,
        val: &setup.val,
        test: None,
        input: &setup.input,
    };
    seed(&setup.device, 7);
    let target = target_config().init(&setup.device);
    let pairs = resolve_pairs(
        &PairsConfig::default(),
        &target.tap_names(),
        &guide.network().tap_names(),
    )
    .unwrap();
    let run = train_arm(
        &RunSpec {
            experiment: "test",
            arm: &arm("base", false, 0),
            seed: 7,
            guide: &guide,
            pairs: &pairs,
            task: &data,
            config: &train_config(2),
        },
        target,
        &Runtime {
            device: &setup.device,
            progress: Progress::Quiet,
            checkpoint: None,
        },
    )
    .unwrap();
    assert_eq!(run.summary.status.to_string(), "diverged");
    assert!(run.summary.status_step.is_some());
}

#[test]
fn the_guide_table_returns_the_taps_of_a_forward_pass_on_the_batch() {
    let setup = Setup::new();
    let guide = setup.guide();
    // Built in batches of 10, read back in another order and batch size.
    let table =
        GuideTapTable::build(&guide, &setup.train, &setup.input, 10, &setup.device).unwrap();
    let indices = [5, 63, 0, 17, 17, 40];
    let gathered = table.gather(&indices, &setup.device);
    let direct = guide
        .forward(setup.input.batch(&setup.train, &indices, &setup.device).0)
        .taps;
    assert_eq!(gathered.len(), direct.len());
    for (g, d) in gathered.iter().zip(&direct) {
        assert_eq!((&g.name, &g.shape), (&d.name, &d.shape));
        let (gv, dv) = (to_vec(g.value.clone()), to_vec(d.value.clone()));
        let scale = dv.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        assert!(
            gv.iter()
                .zip(&dv)
                .all(|(a, b)| (a - b).abs() <= 1e-5 * scale),
            "tap {} differs",
            g.name
        );
    }
}

#[test]
fn a_distance_that_needs_larger_batches_is_refused_by_name() {
    let config = TrainConfig {
        batch_size: 3,
        distance: Distance::LinearCkaDebiased,
        ..train_config(1)
    };
    let message = config.validate().unwrap_err();
    assert!(
        message.contains("linear-cka-debiased") && message.contains("train.batch_size is 3"),
        "{message}"
    );
    assert!(
        TrainConfig {
            batch_size: 4,
            ..config
        }
        .validate()
        .is_ok()
    );
}

/// The rows of a run other than the per-pair CKA, as (metric, step, value bits).
fn rows_but_cka(
    run: &untrainable_guidance::ArmRun<untrainable_arch_fcn::Fcn>,
) -> Vec<(String, u64, u64)> {
    run.rows
        .iter()
        .filter(|r| !r.metric.starts_with("cka/"))
        .map(|r| (r.metric.clone(), r.step, r.value.to_bits()))
        .collect()
}

#[test]
fn an_arm_guides_its_subset_of_pairs_as_explicit_pairs_would_and_logs_every_pair() {
    let setup = Setup::new();
    let guide = setup.guide();
    let config = train_config(1);
    let all = setup.run(&arm("guided", true, 0), &guide, 1);
    let subset = ArmConfig {
        pairs: Some(PairSubset::SecondHalf),
        ..arm("guided", true, 0)
    };
    let by_subset = setup.run_with(&subset, &guide, &PairsConfig::default(), &config);

    // The same pairs spelled out as the experiment's explicit pairs.
    seed(&setup.device, 7);
    let target = target_config().init(&setup.device);
    let every = resolve_pairs(
        &PairsConfig::default(),
        &target.tap_names(),
        &guide.network().tap_names(),
    )
    .unwrap();
    let second_half = PairSubset::SecondHalf.select(&every).unwrap();
    assert!(second_half.len() < every.len());
    let explicit = PairsConfig {
        explicit: second_half
            .iter()
            .map(|p| [p.target_name.clone(), p.guide_name.clone()])
            .collect(),
        last_guide_wins: false,
    };
    let by_explicit = setup.run_with(&arm("guided", true, 0), &guide, &explicit, &config);
    assert_eq!(rows_but_cka(&by_subset), rows_but_cka(&by_explicit));
    assert_ne!(rows_but_cka(&by_subset), rows_but_cka(&all));

    // CKA is still logged for every pair of the experiment.
    let cka_rows = |run: &untrainable_guidance::ArmRun<untrainable_arch_fcn::Fcn>| {
        run.rows
            .iter()
            .filter(|r| r.metric.starts_with("cka/"))
            .count()
    };
    assert_eq!(cka_rows(&by_subset), cka_rows(&all));
    assert_eq!(cka_rows(&by_explicit), second_half.len());
    let guided_pairs = |run: &untrainable_guidance::ArmRun<untrainable_arch_fcn::Fcn>| {
        let rows: Vec<f64> = run
            .rows
            .iter()
            .filter(|r| r.metric == GUIDED_PAIRS)
            .map(|r| r.value)
            .collect();
        rows
    };
    assert_eq!(guided_pairs(&by_subset), [second_half.len() as f64]);
    assert_eq!(guided_pairs(&all), [every.len() as f64]);
}

#[test]
fn an_arm_distance_trains_as_the_same_train_distance_and_is_checked_against_the_batch() {
    let setup = Setup::new();
    let guide = setup.guide();
    let by_arm = ArmConfig {
        distance: Some(Distance::Rsa),
        ..arm("guided", true, 0)
    };
    let config = train_config(1);
    let rsa = TrainConfig {
        distance: Distance::Rsa,
        ..config.clone()
    };
    let a = setup.run_with(&by_arm, &guide, &PairsConfig::default(), &config);
    let b = setup.run_with(
        &arm("guided", true, 0),
        &guide,
        &PairsConfig::default(),
        &rsa,
    );
    let linear = setup.run(&arm("guided", true, 0), &guide, 1);
    assert_eq!(rows_but_cka(&a), rows_but_cka(&b));
    assert_ne!(rows_but_cka(&a), rows_but_cka(&linear));

    let small = TrainConfig {
        batch_size: 3,
        ..config
    };
    let debiased = ArmConfig {
        distance: Some(Distance::LinearCkaDebiased),
        ..arm("small-batch", true, 0)
    };
    let message = debiased.validate_with(&small).unwrap_err();
    assert!(
        message.contains("small-batch") && message.contains("linear-cka-debiased"),
        "{message}"
    );
    assert!(arm("plain", false, 0).validate_with(&small).is_ok());
    let unguided = ArmConfig {
        pairs: Some(PairSubset::Last),
        ..arm("plain", false, 0)
    };
    assert!(unguided.validate().unwrap_err().contains("guided = true"));
}

#[test]
fn the_intrinsic_dimension_of_every_target_tap_is_logged_per_epoch_as_recomputed() {
    let setup = Setup::new();
    let guide = setup.guide();
    let config = TrainConfig {
        intrinsic_dimension: true,
        ..train_config(1)
    };
    let run = setup.run_with(
        &arm("base", false, 0),
        &guide,
        &PairsConfig::default(),
        &config,
    );
    let logged: Vec<(String, f64)> = run
        .rows
        .iter()
        .filter_map(|r| {
            let tap = r.metric.strip_prefix("twonn/")?;
            assert_eq!((r.split, r.epoch), (Split::Val, Some(1)));
            Some((tap.to_string(), r.value))
        })
        .collect();
    // One epoch: the selected network is the one measured then.
    let best = run.best.unwrap();
    let n = config.eval_batch_size.min(setup.val.labels.len());
    let idx: Vec<usize> = (0..n).collect();
    let taps = best
        .forward(setup.data().batch(Split::Val, &idx, &setup.device).0)
        .taps;
    assert_eq!(logged.len(), taps.len());
    for ((name, value), tap) in logged.iter().zip(&taps) {
        assert_eq!(*name, tap.name);
        let expected = twonn_dimension(&host_matrix(&tap.value), DEFAULT_TWONN_DISCARD).unwrap();
        assert!(
            (value - expected).abs() < 1e-9,
            "{name}: {value} vs {expected}"
        );
        assert!(*value > 0.0 && *value < 64.0, "{name}: {value}");
    }
    // Off by default.
    let plain = setup.run(&arm("base", false, 0), &guide, 1);
    assert!(!plain.rows.iter().any(|r| r.metric.starts_with("twonn/")));
}

#[test]
fn guided_training_lowers_the_guidance_term_with_every_distance() {
    let setup = Setup::new();
    let guide = setup.guide();
    for &distance in Distance::ALL {
        let data = ImageData {
            train: &setup.train,
            val: &setup.val,
            test: None,
            input: &setup.input,
        };
        seed(&setup.device, 7);
        let target = target_config().init(&setup.device);
        let pairs = resolve_pairs(
            &PairsConfig::default(),
            &target.tap_names(),
            &guide.network().tap_names(),
        )
        .unwrap();
        let config = TrainConfig {
            distance,
            learning_rate: 1e-2,
            ..train_config(8)
        };
        let run = train_arm(
            &RunSpec {
                experiment: "test",
                arm: &arm("guided", true, 0),
                seed: 7,
                guide: &guide,
                pairs: &pairs,
                task: &data,
                config: &config,
            },
            target,
            &Runtime {
                device: &setup.device,
                progress: Progress::Quiet,
                checkpoint: None,
            },
        )
        .unwrap();
        let term: Vec<f64> = run
            .rows
            .iter()
            .filter(|r| r.metric == "guidance_loss")
            .map(|r| r.value)
            .collect();
        assert_eq!(term.len(), 32, "{distance:?}");
        let head = term[..4].iter().sum::<f64>() / 4.0;
        let tail = term[28..].iter().sum::<f64>() / 4.0;
        assert!(tail < head - 0.1, "{distance:?}: {head} → {tail}");
    }
}

#[test]
fn the_loop_logs_top5_beside_every_accuracy_and_tests_the_selected_network_once() {
    let setup = Setup::new();
    let guide = setup.guide();
    let test = images(24, 5);
    let data = ImageData {
        train: &setup.train,
        val: &setup.val,
        test: Some(&test),
        input: &setup.input,
    };
    seed(&setup.device, 7);
    let target = target_config().init(&setup.device);
    let run = train_arm(
        &RunSpec {
            experiment: "test",
            arm: &arm("base", false, 0),
            seed: 7,
            guide: &guide,
            pairs: &[],
            task: &data,
            config: &train_config(3),
        },
        target,
        &Runtime {
            device: &setup.device,
            progress: Progress::Quiet,
            checkpoint: None,
        },
    )
    .unwrap();
    let evaluations: Vec<(Split, &str)> = run
        .rows
        .iter()
        .filter(|r| r.split != Split::Train)
        .map(|r| (r.split, r.metric.as_str()))
        .collect();
    let one = |split| {
        [
            (split, "loss"),
            (split, "accuracy"),
            (split, "top5_accuracy"),
        ]
    };
    let mut expected: Vec<(Split, &str)> = (0..3).flat_map(|_| one(Split::Val)).collect();
    expected.extend(one(Split::Test));
    assert_eq!(evaluations, expected);

    // The test rows are the selected network's, recomputed here in one batch.
    let best = run.best.expect("a best network");
    let all: Vec<usize> = (0..test.len()).collect();
    let (x, y) = setup.input.batch(&test, &all, &setup.device);
    let top5 = top_k_correct(best.forward(x).output, &y, 5) / test.len() as f64;
    let logged = |metric: &str| {
        run.rows
            .iter()
            .find(|r| r.split == Split::Test && r.metric == metric)
            .unwrap()
            .value
    };
    assert!((logged("top5_accuracy") - top5).abs() < 1e-12);
    assert!(logged("top5_accuracy") >= logged("accuracy"));
}

#[test]
fn image_training_batches_are_augmented_and_evaluation_batches_and_guide_tables_never() {
    let setup = Setup::new();
    let guide = setup.guide();
    let shifted = InputSpec {
        augment: Augment {
            max_shift: 2,
            flip: true,
        },
        ..input()
    };
    for (spec, augmented) in [(&setup.input, false), (&shifted, true)] {
        let data = ImageData {
            train: &setup.train,
            val: &setup.val,
            test: Some(&setup.val),
            input: spec,
        };
        let idx: Vec<usize> = (0..16).collect();
        seed(&setup.device, 3);
        let train = to_vec(data.batch(Split::Train, &idx, &setup.device).0);
        seed(&setup.device, 3);
        let drawn = to_vec(spec.training_batch(&setup.train, &idx, &setup.device).0);
        assert_eq!(
            train, drawn,
            "the training batch is InputSpec's training batch"
        );
        let stored = to_vec(spec.batch(&setup.train, &idx, &setup.device).0);
        assert_eq!(train != stored, augmented);
        for part in [Split::Val, Split::Test] {
            assert_eq!(
                to_vec(data.batch(part, &idx, &setup.device).0),
                to_vec(spec.batch(&setup.val, &idx, &setup.device).0),
                "{part:?} batches are never augmented"
            );
        }
        // Stored taps would hold the unaugmented images the loop never trains on.
        assert_eq!(
            data.guide_table(&guide, 16, &setup.device).is_some(),
            !augmented
        );
    }
}
