//! Trained networks are stored under their recipe and come back exactly.

use burn::tensor::Device;
use untrainable_arch_fcn::FcnConfig;
use untrainable_core::{parameter_values, seed};
use untrainable_guidance::TrainedStore;
use untrainable_results::{MetricRow, Split, Status, SummaryRow};

fn log() -> (Vec<MetricRow>, SummaryRow) {
    let row = MetricRow {
        experiment: "parity".into(),
        arm: "guide".into(),
        seed: 1,
        step: 7,
        epoch: Some(1),
        split: Split::Val,
        metric: "loss".into(),
        value: 0.25,
    };
    let summary = SummaryRow {
        experiment: "parity".into(),
        arm: "guide".into(),
        seed: 1,
        status: Status::Ok,
        status_step: None,
        steps: 7,
        final_train_loss: 0.5,
        final_val_loss: 0.25,
        best_val_loss: 0.25,
        best_epoch: 1,
        final_val_accuracy: 0.75,
        best_val_accuracy: 0.75,
        wall_seconds: 1.5,
    };
    (vec![row], summary)
}

fn config() -> FcnConfig {
    FcnConfig {
        input_features: 12,
        first_width: 6,
        width: 5,
        hidden_layers: 2,
        classes: 3,
        dropout: 0.0,
        batch_norm: true,
    }
}

#[test]
fn a_stored_network_loads_back_exactly_under_its_recipe_only() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let store = TrainedStore::new(dir.path());
    seed(&device, 1);
    let trained = config().init(&device);
    let recipe = "[guide]\nwidth = 5\nseed = 1\n";
    assert!(
        store
            .load("guide", recipe, config().init(&device))
            .unwrap()
            .is_none()
    );
    let (rows, summary) = log();
    let path = store
        .save("guide", recipe, trained.clone(), &rows, &summary)
        .unwrap();
    assert!(path.starts_with(dir.path()));
    assert_eq!(
        std::fs::read_to_string(path.with_extension("toml")).unwrap(),
        recipe
    );
    // The record, its recipe and its training log, and no temporary file.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);

    seed(&device, 2);
    let fresh = config().init(&device);
    assert_ne!(parameter_values(&fresh), parameter_values(&trained));
    let loaded = store.load("guide", recipe, fresh).unwrap().expect("stored");
    assert_eq!(
        parameter_values(&loaded.network),
        parameter_values(&trained)
    );
    assert_eq!((loaded.rows, loaded.summary), (rows, summary));

    let other = "[guide]\nwidth = 5\nseed = 2\n";
    assert_ne!(store.path("guide", other), path);
    assert!(
        store
            .load("guide", other, config().init(&device))
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_damaged_record_is_an_error_that_names_the_file() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let store = TrainedStore::new(dir.path());
    let path = store.path("guide", "recipe");
    std::fs::write(&path, b"not a record").unwrap();
    // Without its training log the record does not count as stored.
    assert!(
        store
            .load("guide", "recipe", config().init(&device))
            .unwrap()
            .is_none()
    );
    let (rows, summary) = log();
    untrainable_results::write_metrics(path.with_extension("metrics.parquet"), &rows).unwrap();
    untrainable_results::write_summary(path.with_extension("summary.parquet"), &[summary]).unwrap();
    let message = store
        .load("guide", "recipe", config().init(&device))
        .unwrap_err();
    assert!(
        message.contains(&path.display().to_string()) && message.contains("to train it again"),
        "{message}"
    );
}
