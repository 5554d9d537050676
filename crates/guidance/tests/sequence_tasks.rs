//! The sequence tasks as the trainer sees them: batches, masked losses with
//! hand-computed values, and guided training of one RNN by another.

use std::sync::MutexGuard;

use burn::tensor::{Device, Int, Tensor, TensorData};
use untrainable_arch_rnn::RnnLmConfig;
use untrainable_core::{Guide, Network, seed, to_vec};
use untrainable_guidance::{
    ArmConfig, Checkpointing, CopyPasteTask, DistillConfig, Guidance, HintConfig, LONG_ACCURACY,
    NoiseFor, NoiseWarmup, Objective, PairsConfig, ParityTargets, ParityTask, Progress, Reduction,
    RunSpec, Runtime, SHORT_ACCURACY, Split, StepDecay, StepWindow, Task, TokenTargets,
    TrainConfig, distillation_loss, evaluate, masked_cross_entropy, resolve_pairs, train_arm,
};
use untrainable_repsim::Distance;
use untrainable_tasks::copy_paste::CopyPaste;
use untrainable_tasks::parity::Parity;
use untrainable_tasks::sequence::SplitSizes;

/// The backend's random stream is one per process: tests that seed it hold
/// this lock, so that no other test draws in between.
fn seeded() -> MutexGuard<'static, ()> {
    untrainable_core::random_stream_lock()
}

fn copy_paste(min_len: usize, max_len: usize) -> CopyPasteTask {
    CopyPasteTask {
        task: CopyPaste {
            min_len,
            max_len,
            ..CopyPaste::paper()
        },
        sizes: SplitSizes {
            train: 64,
            val: 16,
            test: 16,
        },
        data_seed: 5,
    }
}

#[test]
fn copy_paste_batches_score_exactly_the_copied_positions() {
    let device = Device::flex();
    let task = copy_paste(3, 6);
    let (input, targets) = task.batch(Split::Train, &[0, 1, 2, 3], &device);
    let time = input.time();
    assert_eq!(targets.ids.dims(), [4 * time]);
    let weights = to_vec(targets.weights.clone());
    let ids: Vec<i64> = targets
        .ids
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    for (b, &len) in input.lengths.iter().enumerate() {
        // Input length 2L + 2: L digits, COPY, L pads, EOS.
        let l = (len - 2) / 2;
        let example = task.task.example(5, b as u64);
        for t in 0..time {
            let scored = (l + 1..=2 * l).contains(&t);
            assert_eq!(
                weights[b * time + t],
                if scored { 1.0 } else { 0.0 },
                "example {b}, position {t}"
            );
            if scored {
                assert_eq!(
                    ids[b * time + t],
                    example.input[t - l - 1],
                    "the target is the copied digit"
                );
            }
        }
    }
    let val = task.batch(Split::Val, &[0], &device).0;
    assert_ne!(
        val.ids
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap(),
        task.batch(Split::Train, &[0], &device)
            .0
            .ids
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap(),
        "validation example 0 is not training example 0"
    );
}

/// Uniform logits give ln V on every scored row; unscored rows, however
/// wrong, do not count.
#[test]
fn masked_cross_entropy_of_uniform_logits_is_log_vocab_on_scored_rows() {
    let device = Device::flex();
    let vocab = 13;
    let mut logits = vec![0.0f32; 4 * vocab];
    logits[3 * vocab] = 50.0; // row 3 confidently predicts 0 ...
    let output = Tensor::<2>::from_data(TensorData::new(logits, [4, vocab]), &device);
    let targets = TokenTargets {
        ids: Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 2, 3, 4], [4]), &device),
        // ... but is not scored.
        weights: Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 1.0, 1.0, 0.0], [4]), &device),
    };
    let loss = masked_cross_entropy(output, &targets).into_scalar::<f64>();
    assert!((loss - (vocab as f64).ln()).abs() < 1e-5, "{loss}");
}

#[test]
fn parity_loss_is_binary_cross_entropy_on_both_logits() {
    let device = Device::flex();
    let task = ParityTask {
        task: Parity::paper(),
        sizes: SplitSizes {
            train: 8,
            val: 2,
            test: 2,
        },
        data_seed: 1,
    };
    let output = Tensor::<2>::from_data(
        TensorData::new(vec![0.0f32, 0.0, 2.0, -1.0], [2, 2]),
        &device,
    );
    let labels = ParityTargets {
        labels: Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 0], [2]), &device),
        lengths: vec![2, 50],
    };
    // Row 1: both logits 0 → ln 2 each. Row 2, label 0: −ln σ(2) and −ln(1 − σ(−1)).
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    let want = (2.0 * 2f64.ln() - sigmoid(2.0).ln() - (1.0 - sigmoid(-1.0)).ln()) / 4.0;
    let got = task.loss(output.clone(), &labels).into_scalar::<f64>();
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    let score = task.score(output, &labels);
    assert_eq!((score.correct, score.counted), (1.0, 2.0));
    // The short string (2 bits) is wrong, the long one (50 of 2..=50) right.
    assert_eq!(task.extra_metrics(), [SHORT_ACCURACY, LONG_ACCURACY]);
    assert_eq!(score.extra_means().collect::<Vec<_>>(), [0.0, 1.0]);
}

#[test]
fn parity_batches_carry_the_labels_of_their_bits() {
    let device = Device::flex();
    let task = ParityTask {
        task: Parity::paper(),
        sizes: SplitSizes {
            train: 32,
            val: 4,
            test: 4,
        },
        data_seed: 9,
    };
    let indices: Vec<usize> = (0..32).collect();
    let (input, targets) = task.batch(Split::Train, &indices, &device);
    assert_eq!(targets.lengths, input.lengths);
    let ids: Vec<i64> = input
        .ids
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    let labels: Vec<i64> = targets
        .labels
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    let time = ids.len() / 32;
    for (b, &len) in input.lengths.iter().enumerate() {
        let ones = ids[b * time..b * time + len]
            .iter()
            .filter(|&&v| v == 1)
            .count() as i64;
        assert_eq!(labels[b], ones % 2);
        assert!(
            ids[b * time + len..(b + 1) * time].iter().all(|&v| v == 2),
            "padding is the pad id"
        );
    }
}

/// The one training loop trains a sequence model: a tiny RNN guided by a
/// frozen, differently shaped RNN on copy-paste lowers the guidance term.
#[test]
fn guided_training_runs_on_copy_paste() {
    let _seeded = seeded();
    let device = Device::flex();
    seed(&device, 4);
    let small = RnnLmConfig {
        embedding: 8,
        hidden: 16,
        layers: 2,
        ..RnnLmConfig::copy_paste_cpu()
    };
    let guide = Guide::new(
        RnnLmConfig {
            hidden: 24,
            layers: 3,
            ..small.clone()
        }
        .init(&device),
    );
    let target = small.init(&device);
    let pairs = resolve_pairs(
        &PairsConfig::default(),
        &target.tap_names(),
        &guide.network().tap_names(),
    )
    .unwrap();
    let arm = ArmConfig {
        warmup: Some(NoiseWarmup {
            steps: 2,
            noise_for: NoiseFor::Both,
        }),
        ..ArmConfig::guided("guided")
    };
    let config = TrainConfig {
        epochs: 4,
        batch_size: 8,
        learning_rate: 1e-2,
        alpha: 1.0,
        distance: Distance::LinearCka,
        reduction: Reduction::Sum,
        max_steps: 0,
        eval_batch_size: 16,
        weight_decay: 0.0,
        grad_clip_norm: None,
        lr_decay: None,
        eval_every_steps: None,
        intrinsic_dimension: false,
        gram_table_bytes: untrainable_guidance::gram_table::DEFAULT_GRAM_TABLE_BYTES,
        log_every_steps: untrainable_guidance::config::DEFAULT_LOG_EVERY_STEPS,
    };
    let run = train_arm(
        &RunSpec {
            experiment: "test",
            arm: &arm,
            seed: 1,
            guide: &guide,
            pairs: &pairs,
            task: &copy_paste(3, 6),
            config: &config,
        },
        target,
        &Runtime {
            device: &device,
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
    assert_eq!(term.len(), 32);
    assert_eq!(
        run.rows
            .iter()
            .filter(|r| r.metric == "warmup_guidance_loss")
            .count(),
        2
    );
    let head = term[..4].iter().sum::<f64>() / 4.0;
    let tail = term[28..].iter().sum::<f64>() / 4.0;
    assert!(tail < head - 0.05, "{head} → {tail}");
    assert!(run.summary.final_val_accuracy.is_finite() && run.summary.final_val_loss.is_finite());
    // The kept network is the one at the lowest validation loss.
    let best = run.best.expect("an epoch finished");
    let (loss, accuracy) = evaluate(&best, &copy_paste(3, 6), Split::Val, 16, &device);
    assert!(
        (loss - run.summary.best_val_loss).abs() < 1e-5,
        "{loss} vs {}",
        run.summary.best_val_loss
    );
    assert!((accuracy - run.summary.best_val_accuracy).abs() < 1e-9);
    // The same network is reported once on the held-out test split.
    let test: Vec<_> = run
        .rows
        .iter()
        .filter(|r| r.split == untrainable_results::Split::Test)
        .collect();
    assert_eq!(test.len(), 2);
    let (test_loss, test_accuracy) = evaluate(&best, &copy_paste(3, 6), Split::Test, 16, &device);
    assert_eq!(
        (test[0].metric.as_str(), test[0].value),
        ("loss", test_loss)
    );
    assert_eq!(
        (test[1].metric.as_str(), test[1].value),
        ("accuracy", test_accuracy)
    );
    assert_eq!(test[0].epoch, Some(run.summary.best_epoch));
}

/// AdamW's decoupled decay pulls the weights towards zero: the same run with
/// a large decay ends with a smaller parameter norm; and bad values are
/// refused by name.
#[test]
fn weight_decay_shrinks_the_weights_and_bad_optimiser_settings_are_refused() {
    let _seeded = seeded();
    let device = Device::flex();
    let config = RnnLmConfig {
        embedding: 8,
        hidden: 16,
        layers: 2,
        ..RnnLmConfig::copy_paste_cpu()
    };
    let train = |weight_decay: f64| {
        seed(&device, 6);
        let guide = Guide::new(config.init(&device));
        let target = config.init(&device);
        let arm = ArmConfig::plain("base");
        let train_config = TrainConfig {
            epochs: 2,
            batch_size: 8,
            learning_rate: 1e-2,
            alpha: 0.0,
            distance: Distance::LinearCka,
            reduction: Reduction::Sum,
            max_steps: 0,
            eval_batch_size: 16,
            weight_decay,
            grad_clip_norm: Some(1.0),
            lr_decay: None,
            eval_every_steps: None,
            intrinsic_dimension: false,
            gram_table_bytes: untrainable_guidance::gram_table::DEFAULT_GRAM_TABLE_BYTES,
            log_every_steps: untrainable_guidance::config::DEFAULT_LOG_EVERY_STEPS,
        };
        assert!(train_config.validate().is_ok());
        let run = train_arm(
            &RunSpec {
                experiment: "test",
                arm: &arm,
                seed: 2,
                guide: &guide,
                pairs: &[],
                task: &copy_paste(3, 6),
                config: &train_config,
            },
            target,
            &Runtime {
                device: &device,
                progress: Progress::Quiet,
                checkpoint: None,
            },
        )
        .unwrap();
        let values = untrainable_core::parameter_values(&run.best.expect("trained"));
        values
            .iter()
            .map(|v| (*v as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let (plain, decayed) = (train(0.0), train(5.0));
    assert!(
        decayed < 0.9 * plain,
        "norm with decay {decayed}, without {plain}"
    );

    let base = TrainConfig {
        epochs: 1,
        batch_size: 8,
        learning_rate: 1e-3,
        alpha: 1.0,
        distance: Distance::LinearCka,
        reduction: Reduction::Sum,
        max_steps: 0,
        eval_batch_size: 8,
        weight_decay: 0.0,
        grad_clip_norm: None,
        lr_decay: None,
        eval_every_steps: None,
        intrinsic_dimension: false,
        gram_table_bytes: untrainable_guidance::gram_table::DEFAULT_GRAM_TABLE_BYTES,
        log_every_steps: untrainable_guidance::config::DEFAULT_LOG_EVERY_STEPS,
    };
    let message = TrainConfig {
        weight_decay: -0.1,
        ..base.clone()
    }
    .validate()
    .unwrap_err();
    assert!(message.contains("train.weight_decay"), "{message}");
    let message = TrainConfig {
        grad_clip_norm: Some(0.0),
        lr_decay: None,
        eval_every_steps: None,
        intrinsic_dimension: false,
        ..base
    }
    .validate()
    .unwrap_err();
    assert!(message.contains("train.grad_clip_norm"), "{message}");
}

/// `T² · KL(p ‖ q)` worked by hand for one row, and zero for a student that
/// equals its teacher.
#[test]
fn distillation_loss_by_hand() {
    let device = Device::flex();
    let row = |values: [f32; 2]| {
        Tensor::<2>::from_data(TensorData::new(values.to_vec(), [1, 2]), &device)
    };
    let teacher = row([0.0, 3f32.ln()]);
    let at_one = distillation_loss(row([0.0, 0.0]), teacher.clone(), 1.0).into_scalar::<f64>();
    let want = 0.25 * (0.25f64 / 0.5).ln() + 0.75 * (0.75f64 / 0.5).ln();
    assert!((at_one - want).abs() < 1e-6, "{at_one} vs {want}");
    // At T = 2 the teacher's probabilities are 1 : √3, and the KL is scaled by 4.
    let at_two = distillation_loss(row([0.0, 0.0]), teacher.clone(), 2.0).into_scalar::<f64>();
    let (p0, p1) = (1.0 / (1.0 + 3f64.sqrt()), 3f64.sqrt() / (1.0 + 3f64.sqrt()));
    let want = 4.0 * (p0 * (p0 / 0.5).ln() + p1 * (p1 / 0.5).ln());
    assert!((at_two - want).abs() < 1e-6, "{at_two} vs {want}");
    assert!(
        distillation_loss(teacher.clone(), teacher, 3.0)
            .into_scalar::<f64>()
            .abs()
            < 1e-7
    );
}

/// A 2-layer RNN of width 16, small enough to train in a test.
fn tiny_rnn() -> RnnLmConfig {
    RnnLmConfig {
        embedding: 8,
        hidden: 16,
        layers: 2,
        ..RnnLmConfig::copy_paste_cpu()
    }
}

/// Four epochs of 8 steps, Adam at 10⁻², no guidance weight.
fn four_short_epochs() -> TrainConfig {
    TrainConfig {
        epochs: 4,
        batch_size: 8,
        learning_rate: 1e-2,
        alpha: 0.0,
        distance: Distance::LinearCka,
        reduction: Reduction::Sum,
        max_steps: 0,
        eval_batch_size: 16,
        weight_decay: 0.0,
        grad_clip_norm: None,
        lr_decay: None,
        eval_every_steps: None,
        intrinsic_dimension: false,
        gram_table_bytes: untrainable_guidance::gram_table::DEFAULT_GRAM_TABLE_BYTES,
        log_every_steps: untrainable_guidance::config::DEFAULT_LOG_EVERY_STEPS,
    }
}

/// A distillation arm pulls the student's outputs towards the teacher's.
#[test]
fn a_distillation_arm_lowers_its_term_and_bad_settings_are_refused() {
    let _seeded = seeded();
    let device = Device::flex();
    seed(&device, 8);
    let config = tiny_rnn();
    let teacher = Guide::new(config.init(&device));
    let distill = DistillConfig {
        temperature: 2.0,
        weight: 1.0,
    };
    let arm = ArmConfig {
        objective: Objective::Distillation(distill),
        ..ArmConfig::plain("distill")
    };
    assert!(arm.validate().is_ok());
    let train_config = four_short_epochs();
    let run = train_arm(
        &RunSpec {
            experiment: "test",
            arm: &arm,
            seed: 3,
            guide: &teacher,
            pairs: &[],
            task: &copy_paste(3, 6),
            config: &train_config,
        },
        config.init(&device),
        &Runtime {
            device: &device,
            progress: Progress::Quiet,
            checkpoint: None,
        },
    )
    .unwrap();
    let term: Vec<f64> = run
        .rows
        .iter()
        .filter(|r| r.metric == "distill_loss")
        .map(|r| r.value)
        .collect();
    assert_eq!(term.len(), 32);
    let head = term[..4].iter().sum::<f64>() / 4.0;
    let tail = term[28..].iter().sum::<f64>() / 4.0;
    assert!(tail < 0.5 * head, "{head} → {tail}");
    let bad = ArmConfig {
        objective: Objective::Distillation(DistillConfig {
            temperature: 0.0,
            weight: 0.5,
        }),
        ..ArmConfig::plain("kd")
    };
    let message = bad.validate().unwrap_err();
    assert!(
        message.contains("distill.temperature") && message.contains("`kd`"),
        "{message}"
    );
}

/// A hinted arm learns to predict the guide's middle tap: its hint term
/// falls, and an arm that is both guided and hinted is refused.
#[test]
fn a_hinted_arm_lowers_its_term_and_cannot_also_be_guided() {
    let _seeded = seeded();
    let device = Device::flex();
    seed(&device, 8);
    let config = tiny_rnn();
    let teacher = Guide::new(config.init(&device));
    let target = config.init(&device);
    let pairs = resolve_pairs(
        &PairsConfig::default(),
        &target.tap_names(),
        &teacher.network().tap_names(),
    )
    .unwrap();
    let hint = HintConfig {
        weight: 1.0,
        pair: None,
        pool_guide: false,
    };
    let arm = ArmConfig {
        objective: Objective::Hint(hint),
        ..ArmConfig::plain("fitnet")
    };
    assert!(arm.validate().is_ok());
    let train_config = four_short_epochs();
    let run = train_arm(
        &RunSpec {
            experiment: "test",
            arm: &arm,
            seed: 3,
            guide: &teacher,
            pairs: &pairs,
            task: &copy_paste(3, 6),
            config: &train_config,
        },
        target,
        &Runtime {
            device: &device,
            progress: Progress::Quiet,
            checkpoint: None,
        },
    )
    .unwrap();
    let term: Vec<f64> = run
        .rows
        .iter()
        .filter(|r| r.metric == "hint_loss")
        .map(|r| r.value)
        .collect();
    assert_eq!(term.len(), 32);
    let head = term[..4].iter().sum::<f64>() / 4.0;
    let tail = term[28..].iter().sum::<f64>() / 4.0;
    assert!(tail < 0.5 * head, "{head} → {tail}");
    let both = "name = \"fitnet\"\nguided = true\nhint = { weight = 1.0 }";
    let message = toml::from_str::<ArmConfig>(both).unwrap_err().to_string();
    assert!(
        message.contains("`fitnet`") && message.contains("hint"),
        "{message}"
    );
}

/// A run continued from a checkpoint ends with exactly the rows of the
/// uninterrupted run (same seed, CPU backend): dropout masks, batch order,
/// optimiser state and the best network all carry over. The last
/// checkpoint of a run with checkpoints every 7 or every 11 of its 32 steps
/// stands in for a process killed there. A hinted arm carries its
/// regressor over too.
#[test]
fn a_run_resumed_from_a_checkpoint_ends_with_the_uninterrupted_numbers() {
    let _seeded = seeded();
    let device = Device::flex();
    // Dropout on, so that the random stream matters.
    let config = RnnLmConfig {
        embedding: 8,
        hidden: 16,
        layers: 2,
        ..RnnLmConfig::copy_paste_cpu()
    };
    let guide_config = RnnLmConfig {
        hidden: 12,
        ..config.clone()
    };
    let task = copy_paste(3, 6);
    let guided = ArmConfig {
        warmup: Some(NoiseWarmup {
            steps: 3,
            noise_for: NoiseFor::Both,
        }),
        ..ArmConfig::guided("guided")
    };
    let hinted = ArmConfig {
        objective: Objective::Hint(HintConfig {
            weight: 1.0,
            pair: None,
            pool_guide: false,
        }),
        ..ArmConfig::plain("hinted")
    };
    let train_config = TrainConfig {
        epochs: 4,
        batch_size: 8,
        learning_rate: 1e-2,
        alpha: 1.0,
        distance: Distance::LinearCka,
        reduction: Reduction::Sum,
        max_steps: 0,
        eval_batch_size: 16,
        weight_decay: 0.01,
        grad_clip_norm: Some(1.0),
        lr_decay: None,
        eval_every_steps: None,
        intrinsic_dimension: false,
        gram_table_bytes: untrainable_guidance::gram_table::DEFAULT_GRAM_TABLE_BYTES,
        log_every_steps: untrainable_guidance::config::DEFAULT_LOG_EVERY_STEPS,
    };
    let run = |arm: &ArmConfig, checkpoint: Option<&Checkpointing>| {
        seed(&device, 21);
        let guide = Guide::new(guide_config.init(&device));
        seed(&device, 22);
        let target = config.init(&device);
        let pairs = resolve_pairs(
            &PairsConfig::default(),
            &target.tap_names(),
            &guide.network().tap_names(),
        )
        .unwrap();
        train_arm(
            &RunSpec {
                experiment: "test",
                arm,
                seed: 5,
                guide: &guide,
                pairs: &pairs,
                task: &task,
                config: &train_config,
            },
            target,
            &Runtime {
                device: &device,
                progress: Progress::Quiet,
                checkpoint,
            },
        )
        .unwrap()
    };
    let values = |rows: &[untrainable_results::MetricRow]| {
        rows.iter()
            .map(|r| (r.step, r.epoch, r.metric.clone(), r.value.to_bits()))
            .collect::<Vec<_>>()
    };
    for (arm, every) in [(&guided, 7), (&guided, 11), (&hinted, 7)] {
        let whole = run(arm, None);
        let dir = tempfile::tempdir().unwrap();
        let checkpointing = Checkpointing {
            dir: dir.path().to_path_buf(),
            every_steps: every,
        };
        let first = run(arm, Some(&checkpointing));
        assert_eq!(
            values(&first.rows),
            values(&whole.rows),
            "checkpointing itself changes nothing"
        );
        let latest = std::fs::read_to_string(dir.path().join("LATEST")).unwrap();
        assert_eq!(latest, format!("step-{}", 32 / every * every));
        let resumed = run(arm, Some(&checkpointing));
        assert_eq!(
            values(&resumed.rows),
            values(&whole.rows),
            "resumed at step {latest}"
        );
        assert_eq!(
            resumed.summary.best_val_loss.to_bits(),
            whole.summary.best_val_loss.to_bits()
        );
        let (a, b) = (resumed.best.unwrap(), whole.best.as_ref().unwrap().clone());
        assert_eq!(
            untrainable_core::parameter_values(&a),
            untrainable_core::parameter_values(&b)
        );
    }
}

/// The image experiments' schedule, ×0.1 every 30 epochs, by hand.
#[test]
fn step_decay_of_the_learning_rate() {
    let config = TrainConfig {
        epochs: 100,
        batch_size: 8,
        learning_rate: 1e-3,
        alpha: 1.0,
        distance: Distance::LinearCka,
        reduction: Reduction::Sum,
        max_steps: 0,
        eval_batch_size: 8,
        weight_decay: 0.0,
        grad_clip_norm: None,
        lr_decay: Some(StepDecay {
            every_epochs: 30,
            factor: 0.1,
        }),
        eval_every_steps: None,
        intrinsic_dimension: false,
        gram_table_bytes: untrainable_guidance::gram_table::DEFAULT_GRAM_TABLE_BYTES,
        log_every_steps: untrainable_guidance::config::DEFAULT_LOG_EVERY_STEPS,
    };
    let rates: Vec<f64> = [0, 29, 30, 59, 60, 99]
        .iter()
        .map(|&e| config.learning_rate_at(e))
        .collect();
    let want = [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-6];
    for (got, want) in rates.iter().zip(want) {
        assert!((got - want).abs() < 1e-15, "{rates:?}");
    }
    assert_eq!(
        TrainConfig {
            lr_decay: None,
            eval_every_steps: None,
            intrinsic_dimension: false,
            ..config.clone()
        }
        .learning_rate_at(99),
        1e-3
    );
    let message = TrainConfig {
        lr_decay: Some(StepDecay {
            every_epochs: 0,
            factor: 0.1,
        }),
        ..config
    }
    .validate()
    .unwrap_err();
    assert!(message.contains("train.lr_decay"), "{message}");
}

/// Guidance active on steps 2 and 3 only (`guided_from = 2`,
/// `guided_steps = 4`); a guide fed noise gives a different term from the
/// same start; inconsistent settings are refused by name.
#[test]
fn guidance_window_and_noise_fed_guide() {
    let _seeded = seeded();
    let device = Device::flex();
    let config = RnnLmConfig {
        embedding: 8,
        hidden: 16,
        layers: 2,
        ..RnnLmConfig::copy_paste_cpu()
    };
    let train_config = TrainConfig {
        epochs: 1,
        batch_size: 8,
        learning_rate: 1e-2,
        alpha: 1.0,
        distance: Distance::LinearCka,
        reduction: Reduction::Sum,
        max_steps: 0,
        eval_batch_size: 16,
        weight_decay: 0.0,
        grad_clip_norm: None,
        lr_decay: None,
        eval_every_steps: None,
        intrinsic_dimension: false,
        gram_table_bytes: untrainable_guidance::gram_table::DEFAULT_GRAM_TABLE_BYTES,
        log_every_steps: untrainable_guidance::config::DEFAULT_LOG_EVERY_STEPS,
    };
    let run = |arm: &ArmConfig| {
        seed(&device, 30);
        let guide = Guide::new(
            RnnLmConfig {
                hidden: 12,
                ..config.clone()
            }
            .init(&device),
        );
        let target = config.init(&device);
        let pairs = resolve_pairs(
            &PairsConfig::default(),
            &target.tap_names(),
            &guide.network().tap_names(),
        )
        .unwrap();
        train_arm(
            &RunSpec {
                experiment: "test",
                arm,
                seed: 4,
                guide: &guide,
                pairs: &pairs,
                task: &copy_paste(3, 6),
                config: &train_config,
            },
            target,
            &Runtime {
                device: &device,
                progress: Progress::Quiet,
                checkpoint: None,
            },
        )
        .unwrap()
    };
    let steps = |run: &untrainable_guidance::ArmRun<_>| -> Vec<(u64, f64)> {
        run.rows
            .iter()
            .filter(|r| r.metric == "guidance_loss")
            .map(|r| (r.step, r.value))
            .collect()
    };
    let window = ArmConfig {
        objective: Objective::Guidance(Guidance {
            window: StepWindow {
                from: 2,
                until: Some(4),
            },
            guide_on_noise: false,
        }),
        ..ArmConfig::plain("window")
    };
    assert!(window.validate().is_ok());
    let windowed_run = run(&window);
    let windowed = steps(&windowed_run);
    assert_eq!(windowed.iter().map(|s| s.0).collect::<Vec<_>>(), [2, 3]);
    // Outside the window the loss is the task loss alone, as in plain training.
    let logged = |metric: &str, step: u64| {
        windowed_run
            .rows
            .iter()
            .find(|r| r.metric == metric && r.step == step && r.epoch.is_none())
            .map(|r| r.value)
    };
    for step in [0, 1, 4, 5, 6, 7] {
        assert_eq!(
            logged("loss", step),
            logged("task_loss", step),
            "step {step}"
        );
    }
    assert!(logged("loss", 2).unwrap() > logged("task_loss", 2).unwrap());

    let on_batch = steps(&run(&ArmConfig::guided("batch")));
    let on_noise = steps(&run(&ArmConfig {
        objective: Objective::Guidance(Guidance {
            window: StepWindow {
                from: 0,
                until: None,
            },
            guide_on_noise: true,
        }),
        ..ArmConfig::plain("noise")
    }));
    assert_eq!(on_noise.len(), on_batch.len());
    assert!(
        (on_noise[0].1 - on_batch[0].1).abs() > 1e-3,
        "{} vs {}",
        on_noise[0].1,
        on_batch[0].1
    );

    // Evaluations between epochs add rows and change nothing else.
    let config_every = TrainConfig {
        eval_every_steps: Some(3),
        ..train_config.clone()
    };
    seed(&device, 30);
    let guide = Guide::new(
        RnnLmConfig {
            hidden: 12,
            ..config.clone()
        }
        .init(&device),
    );
    let target = config.init(&device);
    let pairs = resolve_pairs(
        &PairsConfig::default(),
        &target.tap_names(),
        &guide.network().tap_names(),
    )
    .unwrap();
    let every = train_arm(
        &RunSpec {
            experiment: "test",
            arm: &window,
            seed: 4,
            guide: &guide,
            pairs: &pairs,
            task: &copy_paste(3, 6),
            config: &config_every,
        },
        target,
        &Runtime {
            device: &device,
            progress: Progress::Quiet,
            checkpoint: None,
        },
    )
    .unwrap();
    let between: Vec<_> = every
        .rows
        .iter()
        .filter(|r| r.split == untrainable_results::Split::Val && r.epoch.is_none())
        .collect();
    assert_eq!(
        between
            .iter()
            .map(|r| (r.step, r.metric.as_str()))
            .collect::<Vec<_>>(),
        [(3, "loss"), (3, "accuracy"), (6, "loss"), (6, "accuracy")]
    );
    let others = |rows: &[untrainable_results::MetricRow]| {
        rows.iter()
            .filter(|r| !(r.split == untrainable_results::Split::Val && r.epoch.is_none()))
            .map(|r| r.value.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(others(&every.rows), others(&windowed_run.rows));

    let message = ArmConfig {
        objective: Objective::Guidance(Guidance {
            window: StepWindow {
                from: 5,
                until: Some(4),
            },
            guide_on_noise: false,
        }),
        ..window
    }
    .validate()
    .unwrap_err();
    assert!(
        message.contains("guided_from = 5") && message.contains("`window`"),
        "{message}"
    );
    let message = toml::from_str::<ArmConfig>("name = \"p\"\nguide_on_noise = true")
        .unwrap_err()
        .to_string();
    assert!(message.contains("guided = true"), "{message}");
}
