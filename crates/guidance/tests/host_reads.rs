//! How often the training loop reads values back from the device: once per
//! `train.log_every_steps` steps (and before a validation or the end of an
//! epoch), through `untrainable_core::read_to_host`, which counts; the loop's
//! source reads nothing any other way. A run that diverges between reads
//! stops where a read after every step would have stopped it.

mod common;

use common::{fcn, image_guide, images, input, seeded, train_config};

use std::collections::BTreeSet;

use burn::tensor::Device;
use untrainable_core::{Network, host_reads};
use untrainable_guidance::{
    ArmConfig, ImageData, NoiseFor, NoiseWarmup, PairsConfig, Progress, RunSpec, Runtime, Split,
    TrainConfig, resolve_pairs, train_arm,
};
use untrainable_results::MetricRow;
use untrainable_tasks::fashion_mnist::ImageSet;

fn config(epochs: u32, log_every_steps: u64, eval_every_steps: Option<u64>) -> TrainConfig {
    TrainConfig {
        eval_every_steps,
        log_every_steps,
        ..train_config(epochs, 16)
    }
}

/// A run of `arm` on `train`, and the reads it made.
fn counted_run(
    train: &ImageSet,
    arm: &ArmConfig,
    config: &TrainConfig,
) -> (untrainable_guidance::ArmRun<untrainable_arch_fcn::Fcn>, u64) {
    let device = Device::flex();
    let (val, input) = (images(32, 3), input());
    let task = ImageData {
        train,
        val: &val,
        test: None,
        input: &input,
    };
    let guide = image_guide(&device);
    let target = fcn(&device);
    let pairs = resolve_pairs(
        &PairsConfig::default(),
        &target.tap_names(),
        &guide.network().tap_names(),
    )
    .unwrap();
    let spec = RunSpec {
        experiment: "test",
        arm,
        seed: 3,
        guide: &guide,
        pairs: &pairs,
        task: &task,
        config,
    };
    let runtime = Runtime {
        device: &device,
        progress: Progress::Quiet,
        checkpoint: None,
    };
    let before = host_reads();
    let run = train_arm(&spec, target, &runtime).unwrap();
    (run, host_reads() - before)
}

#[test]
fn the_loop_reads_back_once_per_interval_validation_and_epoch() {
    let _seeded = seeded();
    let train = images(80, 0);
    // 80 examples in batches of 16: 5 steps per epoch.
    let (epochs, per_epoch) = (2u64, 5u64);
    let steps = epochs * per_epoch;
    for (every, validation, warmup) in [(1, None, 0), (3, None, 0), (4, Some(3), 0), (100, None, 5)]
    {
        let arm = ArmConfig {
            warmup: (warmup > 0).then_some(NoiseWarmup {
                steps: warmup,
                noise_for: NoiseFor::Both,
            }),
            ..ArmConfig::guided("guided")
        };
        let config = config(epochs as u32, every, validation);
        let (run, reads) = counted_run(&train, &arm, &config);
        assert_eq!(run.summary.status.to_string(), "ok");
        // Reads after the steps that end an interval, a validation or an
        // epoch; the warm-up's once per interval and at its end; the CKA of
        // the pairs once per epoch.
        let ends: BTreeSet<u64> = (1..=steps)
            .filter(|s| {
                s % every == 0 || validation.is_some_and(|v| s % v == 0) || s % per_epoch == 0
            })
            .collect();
        let expected = ends.len() as u64 + warmup.div_ceil(every) + epochs;
        assert_eq!(
            reads, expected,
            "every {every}, validation {validation:?}, warm-up {warmup}"
        );
        let logged = |metric: &str| {
            let of_steps = |r: &&MetricRow| r.split == Split::Train && r.metric == metric;
            run.rows.iter().filter(of_steps).count()
        };
        assert_eq!(logged("loss") as u64, steps, "every step's loss is logged");
        assert_eq!(logged("warmup_guidance_loss") as u64, warmup);
    }
}

#[test]
fn a_run_diverging_between_reads_stops_where_reading_every_step_stops_it() {
    let _seeded = seeded();
    // One corrupt pixel makes the first batch that holds it produce a NaN
    // loss; reads every 50 steps find it at the epoch's end.
    let mut train = images(80, 0);
    train.images[70 * 64 + 5] = f32::NAN;
    let arm = ArmConfig::guided("guided");
    let rows = |rows: &[MetricRow]| {
        rows.iter()
            .map(|r| (r.step, r.epoch, r.metric.clone(), r.value.to_bits()))
            .collect::<Vec<_>>()
    };
    let (every_step, _) = counted_run(&train, &arm, &config(2, 1, None));
    let (at_the_end, _) = counted_run(&train, &arm, &config(2, 50, None));
    assert_eq!(every_step.summary.status.to_string(), "diverged");
    let stopped = every_step
        .summary
        .status_step
        .expect("the step it stopped at");
    assert!(stopped < 5, "stopped at {stopped}, after the first epoch");
    assert_eq!(at_the_end.summary.status, every_step.summary.status);
    assert_eq!(at_the_end.summary.status_step, Some(stopped));
    assert_eq!(at_the_end.summary.steps, every_step.summary.steps);
    assert_eq!(rows(&at_the_end.rows), rows(&every_step.rows));
    assert_eq!(at_the_end.rows.last().map(|r| r.step), Some(stopped));
}

#[test]
fn the_training_loop_reads_from_the_device_only_through_the_counted_read() {
    for (file, source) in [
        ("train.rs", include_str!("../src/train.rs")),
        ("step_values.rs", include_str!("../src/step_values.rs")),
    ] {
        for read in [
            ".into_scalar",
            ".into_data",
            ".to_data",
            "host_matrix",
            "core::to_vec",
            ".into_primitive",
        ] {
            assert!(!source.contains(read), "{file} reads with {read}");
        }
    }
}
