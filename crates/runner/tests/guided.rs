//! The arms-by-seeds loop with a trained guide: trained once, reused by the
//! next run with the same recipe.

use burn::tensor::Device;
use untrainable_arch_rnn::RnnLmConfig;
use untrainable_guidance::{
    ArmConfig, CopyPasteTask, GuideState, PairsConfig, Progress, Reduction, TrainConfig,
    TrainedStore,
};
use untrainable_repsim::Distance;
use untrainable_runner::{GUIDE_ARM, GuidedExperiment, RunDir};
use untrainable_tasks::copy_paste::CopyPaste;
use untrainable_tasks::sequence::SplitSizes;

#[test]
fn a_trained_guide_is_trained_once_and_reused_by_the_next_run() {
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
    };
    let arms = [ArmConfig {
        guided: true,
        guide: GuideState::Trained,
        ..ArmConfig::plain("trained-guide")
    }];
    let store_dir = tempfile::tempdir().unwrap();
    let store = TrainedStore::new(store_dir.path());
    let run = |out: &std::path::Path| {
        let run_dir = RunDir::prepare(out, "config", false).unwrap();
        let experiment = GuidedExperiment {
            name: "copy-paste",
            task: &task,
            target: &|d| target.init(d),
            guide: &|d| guide.init(d),
            pairs: &PairsConfig::default(),
            train: &train,
            guide_train: Some(&train),
            guide_recipe: "[guide]\nhidden = 16\n",
            arms: &arms,
            store: &store,
            run_dir: &run_dir,
            resume: false,
            device: &device,
            progress: Progress::Quiet,
        };
        experiment.run(&[0]).unwrap()
    };
    let (first_out, second_out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first_rows, first_summaries) = run(first_out.path());
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

    let (second_rows, second_summaries) = run(second_out.path());
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
    assert_eq!(second_summaries.len(), 2);
    assert_eq!(second_summaries[0].arm, GUIDE_ARM);
    assert_eq!(
        second_summaries[0].best_val_loss,
        first_summaries[0].best_val_loss
    );
    let values = |rows: &[untrainable_results::MetricRow]| {
        rows.iter().map(|r| r.value.to_bits()).collect::<Vec<_>>()
    };
    assert_eq!(values(&second_rows), values(&first_rows));
}
