//! The small images, guide and target that the training-loop tests share.

use std::sync::MutexGuard;

use burn::tensor::Device;
use untrainable_arch_cnn::ResNetConfig;
use untrainable_arch_fcn::FcnConfig;
use untrainable_core::{Guide, seed};
use untrainable_guidance::{InputSpec, Reduction, TrainConfig};
use untrainable_repsim::Distance;
use untrainable_tasks::fashion_mnist::ImageSet;

pub fn seeded() -> MutexGuard<'static, ()> {
    untrainable_core::random_stream_lock()
}

/// `n` 8 × 8 images of ten classes, each class a bright row plus speckle;
/// 80 of them, so that the table's Gram products take flex's own path
/// (from 65 rows).
pub fn images(n: usize, offset: usize) -> ImageSet {
    let mut images = Vec::with_capacity(n * 64);
    for i in 0..n {
        let label = (i + offset) % 10;
        for p in 0..64 {
            let band = if p / 8 == label % 8 { 0.8 } else { 0.1 };
            images.push(band + ((i * 31 + p * 7) % 17) as f32 / 170.0);
        }
    }
    ImageSet {
        images,
        labels: (0..n).map(|i| ((i + offset) % 10) as u8).collect(),
        rows: 8,
        cols: 8,
    }
}

pub fn input() -> InputSpec {
    InputSpec {
        image_size: 8,
        channels: 1,
        mean: 0.3,
        std: 0.3,
        augment: Default::default(),
    }
}

pub fn image_guide(device: &Device) -> Guide<untrainable_arch_cnn::ResNet> {
    seed(device, 99);
    let config = ResNetConfig {
        blocks: vec![1, 1],
        ..ResNetConfig::resnet18_small(2)
    };
    Guide::new(config.init(device))
}

pub fn fcn(device: &Device) -> untrainable_arch_fcn::Fcn {
    seed(device, 7);
    FcnConfig {
        input_features: 64,
        first_width: 24,
        width: 16,
        hidden_layers: 4,
        classes: 10,
        dropout: 0.1,
        batch_norm: true,
    }
    .init(device)
}

/// Adam at 1e-2 for `epochs` epochs, α = 1 on the summed 1 − linear CKA.
pub fn train_config(epochs: u32, batch_size: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size,
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
    }
}
