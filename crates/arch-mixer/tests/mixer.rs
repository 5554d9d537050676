//! The Mixer as a network, as a guide of an FCN, and as a target guided by a
//! ResNet: the contract of `untrainable-core` is all the trainer needs.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use untrainable_arch_cnn::ResNetConfig;
use untrainable_arch_fcn::FcnConfig;
use untrainable_arch_mixer::MixerConfig;
use untrainable_core::{Guide, Network, check_taps, parameter_values, seed};
use untrainable_guidance::{
    ArmConfig, ArmRun, ImageData, InputSpec, PairsConfig, Progress, Reduction, RunSpec, Runtime,
    TrainConfig, resolve_pairs, train_arm,
};
use untrainable_repsim::Distance;
use untrainable_tasks::fashion_mnist::ImageSet;

fn tiny() -> MixerConfig {
    MixerConfig {
        image_size: 8,
        in_channels: 1,
        patch_size: 2,
        channels: 8,
        token_hidden: 6,
        channel_hidden: 12,
        layers: 2,
        classes: 10,
    }
}

#[test]
fn outputs_and_taps_have_the_documented_shapes_and_names() {
    let device = Device::flex();
    let mixer = tiny().init(&device);
    let out = mixer.forward(Tensor::random([3, 1, 8, 8], Distribution::Default, &device));
    assert_eq!(out.output.dims(), [3, 10]);
    let names: Vec<_> = out.taps.iter().map(|t| t.name.clone()).collect();
    check_taps(&mixer, &out, 3).unwrap();
    assert_eq!(
        names,
        [
            "embed",
            "layer0.token_mixing",
            "layer0.channel_mixing",
            "layer1.token_mixing",
            "layer1.channel_mixing"
        ]
    );
    assert!(out.taps.iter().all(|t| t.shape == [3, 16, 8]));
}

#[test]
fn parameter_count_from_the_config_matches_the_built_network() {
    for config in [tiny(), MixerConfig::small_28()] {
        assert_eq!(
            config.init(&Device::flex()).num_params(),
            config.num_params()
        );
    }
    // small_28 by hand: embed 49·64+64; per layer 2 norms (4·64), token MLP
    // 16·32+32 + 32·16+16, channel MLP 64·128+128 + 128·64+64; final norm
    // 2·64; head 64·10+10.
    let layer = 4 * 64 + (16 * 32 + 32) + (32 * 16 + 16) + (64 * 128 + 128) + (128 * 64 + 64);
    assert_eq!(
        MixerConfig::small_28().num_params(),
        49 * 64 + 64 + 4 * layer + 2 * 64 + 64 * 10 + 10
    );
}

#[test]
fn a_patch_size_that_does_not_divide_the_image_is_refused_by_name() {
    let config = MixerConfig {
        patch_size: 3,
        ..tiny()
    };
    let message = config.validate().unwrap_err();
    assert!(
        message.contains("mixer.patch_size = 3") && message.contains("mixer.image_size = 8"),
        "{message}"
    );
    assert!(tiny().validate().is_ok());
}

/// Eight-pixel images with a class-dependent band, as in the guidance tests.
fn images(n: usize) -> ImageSet {
    let mut pixels = Vec::with_capacity(n * 64);
    for i in 0..n {
        let label = i % 10;
        for r in 0..8 {
            for c in 0..8 {
                let speckle = (((i * 31 + r * 7 + c * 13) % 17) as f32) / 170.0;
                pixels.push(
                    if r == label % 8 { 0.8 } else { 0.1 }
                        + speckle
                        + if label >= 8 && c < 4 { 0.3 } else { 0.0 },
                );
            }
        }
    }
    ImageSet {
        images: pixels,
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
        rows: 8,
        cols: 8,
    }
}

/// Trains `target` guided by `guide` for 4 epochs and returns the guidance
/// term at every step.
fn guidance_terms<T, G>(target: T, guide: &Guide<G>, device: &Device) -> Vec<f64>
where
    T: Network<Input = Tensor<4>>,
    G: Network<Input = Tensor<4>>,
{
    let (train, val) = (images(64), images(32));
    let input = InputSpec {
        image_size: 8,
        channels: 1,
        mean: 0.3,
        std: 0.3,
        augment: Default::default(),
    };
    let data = ImageData {
        train: &train,
        val: &val,
        test: None,
        input: &input,
    };
    let pairs = resolve_pairs(
        &PairsConfig::default(),
        &target.tap_names(),
        &guide.network().tap_names(),
    )
    .unwrap();
    let arm = ArmConfig::guided("guided");
    let config = TrainConfig {
        epochs: 4,
        batch_size: 16,
        learning_rate: 1e-2,
        alpha: 1.0,
        distance: Distance::LinearCka,
        reduction: Reduction::Sum,
        max_steps: 0,
        eval_batch_size: 32,
        weight_decay: 0.0,
        grad_clip_norm: None,
        lr_decay: None,
        eval_every_steps: None,
        intrinsic_dimension: false,
        gram_table_bytes: untrainable_guidance::gram_table::DEFAULT_GRAM_TABLE_BYTES,
        log_every_steps: untrainable_guidance::config::DEFAULT_LOG_EVERY_STEPS,
    };
    let run: ArmRun<T> = train_arm(
        &RunSpec {
            experiment: "test",
            arm: &arm,
            seed: 3,
            guide,
            pairs: &pairs,
            task: &data,
            config: &config,
        },
        target,
        &Runtime {
            device,
            progress: Progress::Quiet,
            checkpoint: None,
        },
    )
    .unwrap();
    run.rows
        .iter()
        .filter(|r| r.metric == "guidance_loss")
        .map(|r| r.value)
        .collect()
}

fn falls(terms: &[f64]) -> bool {
    let head = terms[..4].iter().sum::<f64>() / 4.0;
    let tail = terms[terms.len() - 4..].iter().sum::<f64>() / 4.0;
    tail < head - 0.1
}

#[test]
fn a_resnet_guides_a_mixer() {
    let _seeded = untrainable_core::random_stream_lock();
    let device = Device::flex();
    seed(&device, 1);
    let guide = Guide::new(
        ResNetConfig {
            blocks: vec![1, 1],
            ..ResNetConfig::resnet18_small(2)
        }
        .init(&device),
    );
    let terms = guidance_terms(tiny().init(&device), &guide, &device);
    assert_eq!(terms.len(), 16);
    assert!(falls(&terms), "{terms:?}");
}

#[test]
fn a_frozen_mixer_guides_an_fcn_and_stays_unchanged() {
    let _seeded = untrainable_core::random_stream_lock();
    let device = Device::flex();
    seed(&device, 2);
    let guide = Guide::new(tiny().init(&device));
    let before = parameter_values(guide.network());
    let target = FcnConfig {
        input_features: 64,
        first_width: 24,
        width: 16,
        hidden_layers: 4,
        classes: 10,
        dropout: 0.0,
        batch_norm: true,
    }
    .init(&device);
    let terms = guidance_terms(target, &guide, &device);
    assert!(falls(&terms), "{terms:?}");
    assert_eq!(parameter_values(guide.network()), before);
}
