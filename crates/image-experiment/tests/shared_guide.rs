//! The image experiments' cpu presets that guide the Deep FCN with the
//! trained ResNet-18 of Table 1 use its recipe exactly (data, input, guide,
//! guide training), so the guide is trained once per seed and read back from
//! the trained-guide store by the others, and their Deep FCN and training
//! are Table 1's, so their base arms are the same runs.

use std::path::Path;

fn preset(experiment: &str) -> toml::Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments")
        .join(format!("exp-{experiment}/presets/cpu.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn kd_and_error_consistency_share_table_1s_guide_and_target() {
    let table_1 = preset("image-guidance");
    for experiment in ["kd-vs-guidance", "error-consistency"] {
        let other = preset(experiment);
        for section in [
            "data",
            "input",
            "resnet18",
            "guide_train",
            "guide_augment",
            "deep_fcn",
            "pairs",
            "train",
        ] {
            assert_eq!(
                other.get(section),
                table_1.get(section),
                "[{section}] of {experiment}'s cpu preset differs from image-guidance's"
            );
        }
    }
}
