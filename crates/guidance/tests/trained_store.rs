//! Trained networks are stored under their recipe and come back exactly.

use burn::tensor::Device;
use untrainable_arch_fcn::FcnConfig;
use untrainable_core::{parameter_values, seed};
use untrainable_guidance::TrainedStore;

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
    let path = store.save("guide", recipe, trained.clone()).unwrap();
    assert!(path.starts_with(dir.path()));
    assert_eq!(
        std::fs::read_to_string(path.with_extension("toml")).unwrap(),
        recipe
    );
    // Nothing but the record and its recipe is left in the directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);

    seed(&device, 2);
    let fresh = config().init(&device);
    assert_ne!(parameter_values(&fresh), parameter_values(&trained));
    let loaded = store.load("guide", recipe, fresh).unwrap().expect("stored");
    assert_eq!(parameter_values(&loaded), parameter_values(&trained));

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
    let message = store
        .load("guide", "recipe", config().init(&device))
        .unwrap_err();
    assert!(
        message.contains(&path.display().to_string()) && message.contains("delete the file"),
        "{message}"
    );
}
