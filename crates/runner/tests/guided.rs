//! The arms-by-seeds loop with a trained guide: trained once, reused by the
//! next run with the same recipe.

use std::sync::MutexGuard;

use burn::tensor::Device;
use untrainable_arch_rnn::RnnLmConfig;
use untrainable_guidance::{
    ArmConfig, CopyPasteTask, GuideState, PairsConfig, Progress, Reduction, TrainConfig,
    TrainedStore,
};
use untrainable_repsim::Distance;
use untrainable_runner::{Context, GUIDE_ARM, GuidedExperiment, RunDir};
use untrainable_tasks::copy_paste::CopyPaste;
use untrainable_tasks::sequence::SplitSizes;

/// The backend's random stream is one per process: tests that seed it hold
/// this lock, so that no other test draws in between.
fn seeded() -> MutexGuard<'static, ()> {
    untrainable_core::random_stream_lock()
}

#[test]
fn a_trained_guide_is_trained_once_and_reused_by_the_next_run() {
    let _seeded = seeded();
    let device = Device::flex();
    let task = CopyPasteTask {
        task: CopyPaste {
            min_len: 3,
            max_len: 5,
            ..CopyPaste::paper()
        },
        sizes: SplitSizes {
            train: 32,
            val: 8,
            test: 8,
        },
        data_seed: 2,
    };
    let target = RnnLmConfig {
        embedding: 8,
        hidden: 12,
        layers: 2,
        ..RnnLmConfig::copy_paste_cpu()
    };
    let guide = RnnLmConfig {
        hidden: 16,
        ..target.clone()
    };
    let train = TrainConfig {
        epochs: 1,
        batch_size: 8,
        learning_rate: 1e-2,
        alpha: 1.0,
        distance: Distance::LinearCka,
        reduction: Reduction::Sum,
        max_steps: 0,
        eval_batch_size: 8,
        weight_decay: 0.01,
        grad_clip_norm: None,
        lr_decay: None,
        eval_every_steps: None,
        intrinsic_dimension: false,
        gram_table_bytes: untrainable_guidance::gram_table::DEFAULT_GRAM_TABLE_BYTES,
        log_every_steps: untrainable_guidance::config::DEFAULT_LOG_EVERY_STEPS,
    };
    let arms = [ArmConfig {
        guide: GuideState::Trained,
        ..ArmConfig::guided("trained-guide")
    }];
    let store_dir = tempfile::tempdir().unwrap();
    let run = |out: &std::path::Path| {
        let context = Context {
            experiment: "copy-paste",
            seeds: vec![0],
            run_dir: RunDir::prepare(out, "config", false).unwrap(),
            store: TrainedStore::new(store_dir.path()),
            resume: false,
            device: device.clone(),
            progress: Progress::Quiet,
        };
        let experiment = GuidedExperiment {
            task: &task,
            target: &|d| target.init(d),
            guide: &|d| guide.init(d),
            pairs: &PairsConfig::default(),
            train: &train,
            guide_train: Some(&train),
            guide_task: None,
            guide_recipe: "[guide]\nhidden = 16\n",
            arms: &arms,
            context: &context,
        };
        experiment.run().unwrap()
    };
    let (first_out, second_out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = run(first_out.path());
    let record = std::fs::read_dir(store_dir.path())
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "bpk"))
        .expect("the trained guide is stored")
        .path();
    let written = std::fs::metadata(&record).unwrap().modified().unwrap();
    assert!(
        first_out
            .path()
            .join("runs")
            .join(format!("{GUIDE_ARM}-seed0"))
            .exists(),
        "trained in the first run"
    );

    let second = run(second_out.path());
    assert!(
        !second_out
            .path()
            .join("runs")
            .join(format!("{GUIDE_ARM}-seed0"))
            .exists(),
        "not retrained"
    );
    assert_eq!(
        std::fs::metadata(&record).unwrap().modified().unwrap(),
        written
    );
    // The reused guide's log and the guided arm's numbers are those of the first run.
    assert_eq!(second.summaries.len(), 2);
    assert_eq!(second.summaries[0].arm, GUIDE_ARM);
    assert_eq!(
        second.summaries[0].best_val_loss,
        first.summaries[0].best_val_loss
    );
    let values = |rows: &[untrainable_results::MetricRow]| {
        rows.iter().map(|r| r.value.to_bits()).collect::<Vec<_>>()
    };
    assert_eq!(values(&second.rows), values(&first.rows));
    // Sequence tasks predict no whole-example classes.
    assert!(first.predictions.is_empty() && second.predictions.is_empty());
}

/// Ten classes of 4×4 images: a bright pixel at the label's position plus
/// deterministic speckle.
fn images(n: usize, offset: usize) -> untrainable_tasks::fashion_mnist::ImageSet {
    let mut pixels = Vec::with_capacity(n * 16);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let label = (i * 7 + offset) % 10;
        for p in 0..16 {
            let speckle = ((i * 31 + p * 13) % 17) as f32 / 60.0;
            pixels.push(if p == label { 0.9 } else { 0.0 } + speckle);
        }
        labels.push(label as u8);
    }
    untrainable_tasks::fashion_mnist::ImageSet {
        images: pixels,
        labels,
        rows: 4,
        cols: 4,
    }
}

#[test]
fn test_predictions_are_kept_per_run_resumed_and_recomputed_for_a_stored_guide() {
    let _seeded = seeded();
    use untrainable_arch_fcn::FcnConfig;
    use untrainable_guidance::{ImageData, InputSpec};
    use untrainable_results::Split;

    let device = Device::flex();
    let (train_set, val_set, test_set) = (images(40, 0), images(12, 3), images(15, 5));
    let input = InputSpec {
        image_size: 4,
        channels: 1,
        mean: 0.2,
        std: 0.3,
        augment: Default::default(),
    };
    let task = ImageData {
        train: &train_set,
        val: &val_set,
        test: Some(&test_set),
        input: &input,
    };
    let fcn = |width| FcnConfig {
        input_features: 16,
        first_width: width,
        width,
        hidden_layers: 2,
        classes: 10,
        dropout: 0.0,
        batch_norm: false,
    };
    let train = TrainConfig {
        epochs: 2,
        batch_size: 10,
        learning_rate: 1e-2,
        alpha: 1.0,
        distance: Distance::LinearCka,
        reduction: Reduction::Sum,
        max_steps: 0,
        eval_batch_size: 7,
        weight_decay: 0.0,
        grad_clip_norm: None,
        lr_decay: None,
        eval_every_steps: None,
        intrinsic_dimension: false,
        gram_table_bytes: untrainable_guidance::gram_table::DEFAULT_GRAM_TABLE_BYTES,
        log_every_steps: untrainable_guidance::config::DEFAULT_LOG_EVERY_STEPS,
    };
    let arms = [
        ArmConfig::plain("base"),
        ArmConfig {
            guide: GuideState::Trained,
            ..ArmConfig::guided("trained-guide")
        },
    ];
    let store_dir = tempfile::tempdir().unwrap();
    let run = |out: &std::path::Path, resume: bool| {
        let context = Context {
            experiment: "images",
            seeds: vec![0, 1],
            run_dir: RunDir::prepare(out, "config", resume).unwrap(),
            store: TrainedStore::new(store_dir.path()),
            resume,
            device: device.clone(),
            progress: Progress::Quiet,
        };
        let experiment = GuidedExperiment {
            task: &task,
            target: &|d| fcn(12).init(d),
            guide: &|d| fcn(20).init(d),
            pairs: &PairsConfig::default(),
            train: &train,
            guide_train: Some(&train),
            guide_task: None,
            guide_recipe: "[guide]\nwidth = 20\n",
            arms: &arms,
            context: &context,
        };
        let results = experiment.run().unwrap();
        context.run_dir.write_results(&results).unwrap();
        results
    };
    let out = tempfile::tempdir().unwrap();
    let first = run(out.path(), false);

    // Every run (the guide's too) predicts every test example once, in order,
    // and those predictions give the test accuracy the loop logged.
    for summary in &first.summaries {
        let (arm, seed) = (&summary.arm, summary.seed);
        let own: Vec<_> = first
            .predictions
            .iter()
            .filter(|p| &p.arm == arm && p.seed == seed)
            .collect();
        let examples: Vec<u64> = own.iter().map(|p| p.example).collect();
        assert_eq!(examples, (0..15).collect::<Vec<u64>>(), "{arm} seed {seed}");
        let labels: Vec<u8> = own.iter().map(|p| p.label as u8).collect();
        assert_eq!(labels, test_set.labels, "{arm} seed {seed}");
        let hits = own.iter().filter(|p| p.label == p.predicted).count();
        let logged = first
            .rows
            .iter()
            .find(|r| {
                &r.arm == arm && r.seed == seed && r.split == Split::Test && r.metric == "accuracy"
            })
            .unwrap()
            .value;
        assert_eq!(hits as f64 / 15.0, logged, "{arm} seed {seed}");
    }
    assert_eq!(first.predictions.len(), 2 * 3 * 15);
    let written =
        untrainable_results::read_predictions(out.path().join("predictions.parquet")).unwrap();
    assert_eq!(written, first.predictions);

    // Resuming keeps every run with its predictions.
    assert_eq!(run(out.path(), true), first);
    // A new directory reads the guide from the store and predicts again.
    let other = tempfile::tempdir().unwrap();
    assert_eq!(run(other.path(), false).predictions, first.predictions);
}
