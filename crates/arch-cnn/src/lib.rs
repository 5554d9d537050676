//! Convolutional image classifiers in torchvision's ResNet layout (He et al.,
//! 2016), as one configurable family:
//!
//! - **ResNet-18**: basic blocks (3×3 → 3×3), stages [2, 2, 2, 2]; the paper's
//!   guide for the FCNs (docs/paper.md §2.1; untrained, it is the "untrained
//!   ResNet-18" guide of §1.1);
//! - **ResNet-50**: bottleneck blocks (1×1 → 3×3 → 1×1, expansion 4, stride
//!   on the 3×3 as in torchvision's "v1.5"), stages [3, 4, 6, 3]; the guide of
//!   the Deep ConvNet;
//! - **Deep ConvNet**: the ResNet-50 layout with every skip connection and
//!   downsample branch removed (the released code's `ModifiedResNet50`), the
//!   paper's "untrainable" convolutional target.
//!
//! Batch norm follows every convolution; convolutions have no bias. Taps
//! follow the released code's hooks (docs/paper.md §1.3): every convolution's output
//! before batch norm, in forward order (a block's downsample conv comes after
//! its last conv, as torchvision's `Bottleneck.forward` runs it), then the
//! global average pool. ResNet-18 has 21 taps, ResNet-50 54, the Deep
//! ConvNet 50.

use burn::module::{Initializer, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use untrainable_core::{Forward, Network, Tap};
use untrainable_kernels::{batch_norm, batch_norm_relu, conv2d};

/// The first layers, which set how much the image is downsampled early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stem {
    /// 7×7 stride-2 conv and 3×3 stride-2 max pool, for 224×224 images.
    Imagenet,
    /// One 3×3 stride-1 conv and no pooling, for 28×28 or 32×32 images.
    Small,
}

/// The residual block of every stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockKind {
    /// 3×3 → 3×3 at the stage's width (ResNet-18/34).
    #[default]
    Basic,
    /// 1×1 → 3×3 → 1×1, the last conv widening ×4 (ResNet-50/101/152).
    Bottleneck,
}

impl BlockKind {
    /// Output channels per unit of stage width (torchvision's `expansion`).
    pub fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }

    /// Convolutions on the block's main path.
    pub fn convs(self) -> usize {
        match self {
            BlockKind::Basic => 2,
            BlockKind::Bottleneck => 3,
        }
    }
}

/// How the convolution weights are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConvInit {
    /// torchvision's ResNet: Kaiming normal, fan-out, gain √2.
    #[default]
    Torchvision,
    /// PyTorch's `nn.Conv2d` default, Kaiming uniform with a = √5 (bound
    /// 1/√fan_in): what the released `ModifiedResNet50` gets, since it sets
    /// no initialisation of its own.
    PytorchDefault,
}

impl ConvInit {
    fn initializer(self) -> Initializer {
        match self {
            ConvInit::Torchvision => Initializer::KaimingNormal {
                gain: 2f64.sqrt(),
                fan_out_only: true,
            },
            ConvInit::PytorchDefault => Initializer::KaimingUniform {
                gain: 1.0 / 3f64.sqrt(),
                fan_out_only: false,
            },
        }
    }
}

fn default_residual() -> bool {
    true
}

/// The shape of a ResNet-style classifier. Fields added after ResNet-18
/// (`block`, `residual`, `conv_init`) default to ResNet-18's values, so that
/// older config files still parse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetConfig {
    /// Blocks per stage (ResNet-18: [2, 2, 2, 2]; ResNet-50: [3, 4, 6, 3]).
    pub blocks: Vec<usize>,
    /// Basic or bottleneck blocks.
    #[serde(default)]
    pub block: BlockKind,
    /// Channels of the stem and the width of the first stage; doubled at
    /// every later stage (torchvision: 64). A bottleneck block's output has
    /// four times its stage's width.
    pub base_width: usize,
    pub in_channels: usize,
    pub classes: usize,
    pub stem: Stem,
    /// Skip connections (with their downsample branches where shapes change).
    /// Off, the network is a plain deep ConvNet.
    #[serde(default = "default_residual")]
    pub residual: bool,
    #[serde(default)]
    pub conv_init: ConvInit,
}

/// Where one block sits and what shapes it maps between; the single source
/// for building, counting and naming.
#[derive(Debug, Clone, Copy)]
struct BlockPlan {
    stage: usize,
    index: usize,
    in_channels: usize,
    width: usize,
    out_channels: usize,
    stride: usize,
    downsample: bool,
}

impl ResNetConfig {
    /// torchvision's ResNet-18 for ImageNet (11,689,512 parameters).
    pub fn resnet18_imagenet() -> Self {
        Self {
            blocks: vec![2, 2, 2, 2],
            block: BlockKind::Basic,
            base_width: 64,
            in_channels: 3,
            classes: 1000,
            stem: Stem::Imagenet,
            residual: true,
            conv_init: ConvInit::Torchvision,
        }
    }

    /// torchvision's ResNet-50 for ImageNet (25,557,032 parameters).
    pub fn resnet50_imagenet() -> Self {
        Self {
            blocks: vec![3, 4, 6, 3],
            block: BlockKind::Bottleneck,
            ..Self::resnet18_imagenet()
        }
    }

    /// The paper's Deep ConvNet (released code: `ModifiedResNet50`): ResNet-50
    /// without skip connections or downsample branches (22,780,456 parameters),
    /// with PyTorch's default conv initialisation as in that code.
    pub fn deep_convnet_imagenet() -> Self {
        Self {
            residual: false,
            conv_init: ConvInit::PytorchDefault,
            ..Self::resnet50_imagenet()
        }
    }

    /// ResNet-18 for 28×28 grayscale images in 10 classes (Fashion-MNIST);
    /// `base_width` 8 or 16 trains on a CPU.
    pub fn resnet18_small(base_width: usize) -> Self {
        Self {
            base_width,
            in_channels: 1,
            classes: 10,
            stem: Stem::Small,
            ..Self::resnet18_imagenet()
        }
    }

    /// ResNet-50 for 28×28 grayscale images in 10 classes.
    pub fn resnet50_small(base_width: usize) -> Self {
        Self {
            base_width,
            in_channels: 1,
            classes: 10,
            stem: Stem::Small,
            ..Self::resnet50_imagenet()
        }
    }

    /// The Deep ConvNet for 28×28 grayscale images in 10 classes.
    pub fn deep_convnet_small(base_width: usize) -> Self {
        Self {
            base_width,
            in_channels: 1,
            classes: 10,
            stem: Stem::Small,
            ..Self::deep_convnet_imagenet()
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.blocks.is_empty() || self.blocks.contains(&0) {
            return Err(format!(
                "resnet.blocks must list at least one stage, each with at least one block; got {:?}",
                self.blocks
            ));
        }
        for (name, value) in [
            ("base_width", self.base_width),
            ("in_channels", self.in_channels),
            ("classes", self.classes),
        ] {
            if value == 0 {
                return Err(format!("resnet.{name} must be at least 1, got 0"));
            }
        }
        Ok(())
    }

    /// Every block in forward order. A stage after the first halves the
    /// resolution in its first block; with skips on, a block whose shape
    /// changes gets a 1×1 downsample conv on its skip path (torchvision's
    /// rule, which gives ResNet-50's first block one too: 64 → 256 channels).
    fn plan(&self) -> Vec<BlockPlan> {
        let expansion = self.block.expansion();
        let mut in_channels = self.base_width;
        let mut plans = Vec::new();
        for (stage, &n) in self.blocks.iter().enumerate() {
            let width = self.base_width << stage;
            let out_channels = width * expansion;
            for index in 0..n {
                let stride = if stage > 0 && index == 0 { 2 } else { 1 };
                plans.push(BlockPlan {
                    stage,
                    index,
                    in_channels,
                    width,
                    out_channels,
                    stride,
                    downsample: self.residual && (stride != 1 || in_channels != out_channels),
                });
                in_channels = out_channels;
            }
        }
        plans
    }

    fn stem_kernel(&self) -> usize {
        match self.stem {
            Stem::Imagenet => 7,
            Stem::Small => 3,
        }
    }

    /// Parameter count from the config alone (nothing allocated); batch norm
    /// counts its scale and shift, not its running statistics.
    pub fn num_params(&self) -> usize {
        let conv = |cin: usize, cout: usize, k: usize| cin * cout * k * k;
        let bn = |c: usize| 2 * c;
        let k = self.stem_kernel();
        let mut total = conv(self.in_channels, self.base_width, k) + bn(self.base_width);
        let mut features = self.base_width;
        for p in self.plan() {
            total += match self.block {
                BlockKind::Basic => {
                    conv(p.in_channels, p.width, 3)
                        + bn(p.width)
                        + conv(p.width, p.width, 3)
                        + bn(p.width)
                }
                BlockKind::Bottleneck => {
                    conv(p.in_channels, p.width, 1)
                        + bn(p.width)
                        + conv(p.width, p.width, 3)
                        + bn(p.width)
                        + conv(p.width, p.out_channels, 1)
                        + bn(p.out_channels)
                }
            };
            if p.downsample {
                total += conv(p.in_channels, p.out_channels, 1) + bn(p.out_channels);
            }
            features = p.out_channels;
        }
        total + features * self.classes + self.classes
    }

    /// Names of the taps, in forward order, from the config alone.
    pub fn tap_names(&self) -> Vec<String> {
        let mut names = vec!["conv1".to_string()];
        for p in self.plan() {
            let block = block_name(p.stage, p.index);
            names.extend((1..=self.block.convs()).map(|c| format!("{block}.conv{c}")));
            if p.downsample {
                names.push(format!("{block}.downsample"));
            }
        }
        names.push("avgpool".to_string());
        names
    }

    pub fn init(&self, device: &Device) -> ResNet {
        let init = self.conv_init;
        let k = self.stem_kernel();
        let (stem_conv, stem_pool) = match self.stem {
            Stem::Imagenet => (
                conv(self.in_channels, self.base_width, k, 2, init, device),
                Some(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(),
                ),
            ),
            Stem::Small => (
                conv(self.in_channels, self.base_width, k, 1, init, device),
                None,
            ),
        };
        let mut stages: Vec<Vec<Block>> =
            self.blocks.iter().map(|&n| Vec::with_capacity(n)).collect();
        let mut features = self.base_width;
        for p in self.plan() {
            stages[p.stage].push(Block::new(self.block, p, self.residual, init, device));
            features = p.out_channels;
        }
        ResNet {
            stem_conv,
            stem_norm: BatchNormConfig::new(self.base_width).init(device),
            stem_pool,
            stages,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: LinearConfig::new(features, self.classes).init(device),
        }
    }
}

/// torchvision's naming: stages are `layer1`, `layer2`, ...
fn block_name(stage: usize, index: usize) -> String {
    format!("layer{}.{index}", stage + 1)
}

/// A bias-free convolution with "same" padding for odd kernels.
fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    init: ConvInit,
    device: &Device,
) -> Conv2d {
    let pad = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(init.initializer())
        .init(device)
}

/// A convolution and the batch norm after it.
#[derive(Module, Debug)]
struct ConvNorm {
    conv: Conv2d,
    norm: BatchNorm,
}

impl ConvNorm {
    fn new(
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        init: ConvInit,
        device: &Device,
    ) -> Self {
        Self {
            conv: conv(cin, cout, k, stride, init, device),
            norm: BatchNormConfig::new(cout).init(device),
        }
    }
}

/// A basic block (conv1, conv2) or a bottleneck block (conv1, conv2, conv3),
/// with or without its skip connection.
#[derive(Module, Debug)]
struct Block {
    conv1: Conv2d,
    norm1: BatchNorm,
    conv2: Conv2d,
    norm2: BatchNorm,
    /// The bottleneck's widening 1×1 conv.
    conv3: Option<ConvNorm>,
    downsample: Option<ConvNorm>,
    residual: bool,
}

impl Block {
    fn new(kind: BlockKind, p: BlockPlan, residual: bool, init: ConvInit, device: &Device) -> Self {
        let (conv1, conv2, conv3) = match kind {
            BlockKind::Basic => (
                conv(p.in_channels, p.width, 3, p.stride, init, device),
                conv(p.width, p.width, 3, 1, init, device),
                None,
            ),
            BlockKind::Bottleneck => (
                conv(p.in_channels, p.width, 1, 1, init, device),
                conv(p.width, p.width, 3, p.stride, init, device),
                Some(ConvNorm::new(p.width, p.out_channels, 1, 1, init, device)),
            ),
        };
        Self {
            conv1,
            norm1: BatchNormConfig::new(p.width).init(device),
            conv2,
            norm2: BatchNormConfig::new(p.width).init(device),
            conv3,
            downsample: p
                .downsample
                .then(|| ConvNorm::new(p.in_channels, p.out_channels, 1, p.stride, init, device)),
            residual,
        }
    }

    fn forward(&self, x: Tensor<4>, taps: &mut Vec<Tap>, name: &str) -> Tensor<4> {
        let h = conv2d(&self.conv1, x.clone());
        taps.push(Tap::new(format!("{name}.conv1"), h.clone()));
        let h = conv2d(&self.conv2, batch_norm_relu(&self.norm1, h, None));
        taps.push(Tap::new(format!("{name}.conv2"), h.clone()));
        // The last convolution's output and its norm.
        let (mut h, mut norm) = (h, &self.norm2);
        if let Some(conv3) = &self.conv3 {
            let c = conv2d(&conv3.conv, batch_norm_relu(norm, h, None));
            taps.push(Tap::new(format!("{name}.conv3"), c.clone()));
            (h, norm) = (c, &conv3.norm);
        }
        if !self.residual {
            return batch_norm_relu(norm, h, None);
        }
        let identity = match &self.downsample {
            Some(down) => {
                let d = conv2d(&down.conv, x);
                taps.push(Tap::new(format!("{name}.downsample"), d.clone()));
                batch_norm(&down.norm, d)
            }
            None => x,
        };
        batch_norm_relu(norm, h, Some(identity))
    }
}

/// A ResNet-style classifier (with or without skip connections).
#[derive(Module, Debug)]
pub struct ResNet {
    stem_conv: Conv2d,
    stem_norm: BatchNorm,
    stem_pool: Option<MaxPool2d>,
    stages: Vec<Vec<Block>>,
    pool: AdaptiveAvgPool2d,
    head: Linear,
}

impl ResNet {
    fn named_blocks(&self) -> impl Iterator<Item = (String, &Block)> {
        self.stages.iter().enumerate().flat_map(|(s, blocks)| {
            blocks
                .iter()
                .enumerate()
                .map(move |(i, b)| (block_name(s, i), b))
        })
    }
}

impl Network for ResNet {
    /// Images `(batch, channels, height, width)`.
    type Input = Tensor<4>;

    fn forward(&self, input: Tensor<4>) -> Forward {
        let mut taps = Vec::new();
        let h = conv2d(&self.stem_conv, input);
        taps.push(Tap::new("conv1", h.clone()));
        let mut h = batch_norm_relu(&self.stem_norm, h, None);
        if let Some(pool) = &self.stem_pool {
            h = pool.forward(h);
        }
        for (name, block) in self.named_blocks() {
            h = block.forward(h, &mut taps, &name);
        }
        let pooled: Tensor<2> = self.pool.forward(h).flatten(1, 3);
        taps.push(Tap::new("avgpool", pooled.clone()));
        Forward {
            output: self.head.forward(pooled),
            taps,
        }
    }

    fn tap_names(&self) -> Vec<String> {
        let mut names = vec!["conv1".to_string()];
        for (name, block) in self.named_blocks() {
            names.push(format!("{name}.conv1"));
            names.push(format!("{name}.conv2"));
            if block.conv3.is_some() {
                names.push(format!("{name}.conv3"));
            }
            if block.residual && block.downsample.is_some() {
                names.push(format!("{name}.downsample"));
            }
        }
        names.push("avgpool".to_string());
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use untrainable_core::random_stream_lock as generator;
    use untrainable_core::{Guide, check_taps, parameter_values, seed, to_vec};

    fn small(width: usize) -> ResNetConfig {
        ResNetConfig {
            blocks: vec![2, 2, 2, 2],
            block: BlockKind::Basic,
            base_width: width,
            in_channels: 1,
            classes: 10,
            stem: Stem::Small,
            residual: true,
            conv_init: ConvInit::Torchvision,
        }
    }

    /// An input whose examples differ, so that batch statistics are not
    /// degenerate and outputs can be told apart.
    fn images(batch: usize, size: usize, device: &Device) -> Tensor<4> {
        let n = batch * size * size;
        let values: Vec<f32> = (0..n).map(|i| ((i * 7919) % 101) as f32 / 101.0).collect();
        Tensor::<1>::from_floats(values.as_slice(), device).reshape([batch, 1, size, size])
    }

    /// Batch norm channels of a config, each with a running mean and variance
    /// that burn counts as parameters but `num_params` does not.
    fn batch_norm_channels(config: &ResNetConfig) -> usize {
        let plans = config.plan();
        let convs: usize = plans
            .iter()
            .map(|p| match config.block {
                BlockKind::Basic => 2 * p.width,
                BlockKind::Bottleneck => 2 * p.width + p.out_channels,
            })
            .sum();
        let downsample: usize = plans
            .iter()
            .filter(|p| p.downsample)
            .map(|p| p.out_channels)
            .sum();
        config.base_width + convs + downsample
    }

    #[test]
    fn resnet18_has_21_taps_in_torchvision_forward_order() {
        let _g = generator();
        let device = Device::flex();
        let net = small(4).init(&device);
        let out = net.forward(Tensor::ones([2, 1, 28, 28], &device));
        assert_eq!(out.output.dims(), [2, 10]);
        let names: Vec<_> = out.taps.iter().map(|t| t.name.clone()).collect();
        assert_eq!(names.len(), 21);
        check_taps(&net, &out, 2).unwrap();
        assert_eq!(names, small(4).tap_names());
        assert_eq!(names[0], "conv1");
        assert_eq!(
            names[5..8],
            ["layer2.0.conv1", "layer2.0.conv2", "layer2.0.downsample"]
        );
        assert_eq!(names[20], "avgpool");
        // Small stem: 28×28 stays 28×28 in stage 1, then halves at each stage.
        assert_eq!(out.taps[0].shape, vec![2, 4, 28, 28]);
        assert_eq!(out.taps[19].shape, vec![2, 32, 4, 4]);
        assert_eq!(out.taps[20].shape, vec![2, 32]);
    }

    #[test]
    fn resnet50_has_54_taps_with_the_stride_on_the_3x3_conv() {
        let _g = generator();
        let device = Device::flex();
        let config = ResNetConfig::resnet50_small(2);
        let net = config.init(&device);
        let out = net.forward(images(2, 28, &device));
        assert_eq!(out.output.dims(), [2, 10]);
        let names: Vec<_> = out.taps.iter().map(|t| t.name.clone()).collect();
        // 1 stem conv + 16 blocks × 3 convs + 4 downsample convs + avgpool.
        assert_eq!(names.len(), 54);
        check_taps(&net, &out, 2).unwrap();
        assert_eq!(names, config.tap_names());
        // Stage 1 widens 2 → 8 channels, so its first block has a downsample too.
        assert_eq!(
            names[1..5],
            [
                "layer1.0.conv1",
                "layer1.0.conv2",
                "layer1.0.conv3",
                "layer1.0.downsample"
            ]
        );
        assert_eq!(
            names.iter().filter(|n| n.ends_with("downsample")).count(),
            4
        );
        let shape = |name: &str| {
            out.taps
                .iter()
                .find(|t| t.name == name)
                .unwrap()
                .shape
                .clone()
        };
        assert_eq!(shape("conv1"), vec![2, 2, 28, 28]);
        assert_eq!(shape("layer1.0.conv3"), vec![2, 8, 28, 28]);
        // v1.5: the 1×1 conv1 keeps the resolution, the 3×3 conv2 halves it.
        assert_eq!(shape("layer2.0.conv1"), vec![2, 4, 28, 28]);
        assert_eq!(shape("layer2.0.conv2"), vec![2, 4, 14, 14]);
        assert_eq!(shape("layer2.0.downsample"), vec![2, 16, 14, 14]);
        assert_eq!(shape("layer4.2.conv3"), vec![2, 64, 4, 4]);
        assert_eq!(shape("avgpool"), vec![2, 64]);
    }

    #[test]
    fn deep_convnet_has_50_taps_and_no_downsample_branch() {
        let _g = generator();
        let device = Device::flex();
        let config = ResNetConfig::deep_convnet_small(2);
        let net = config.init(&device);
        let out = net.forward(images(2, 28, &device));
        assert_eq!(out.output.dims(), [2, 10]);
        let names: Vec<_> = out.taps.iter().map(|t| t.name.clone()).collect();
        // 49 convs + avgpool (docs/paper.md §1.4).
        assert_eq!(names.len(), 50);
        check_taps(&net, &out, 2).unwrap();
        assert_eq!(names, config.tap_names());
        assert!(names.iter().all(|n| !n.contains("downsample")));
        let shape = |name: &str| {
            out.taps
                .iter()
                .find(|t| t.name == name)
                .unwrap()
                .shape
                .clone()
        };
        // Without the skip path a stage's first conv1 reads the previous
        // stage's widened output directly.
        assert_eq!(shape("layer2.0.conv1"), vec![2, 4, 28, 28]);
        assert_eq!(shape("layer2.0.conv2"), vec![2, 4, 14, 14]);
        assert_eq!(shape("avgpool"), vec![2, 64]);
    }

    #[test]
    fn imagenet_configs_have_the_papers_parameter_counts() {
        // docs/paper.md §3: torchvision ResNet-18 11.7 M and ResNet-50 25.6 M; these
        // are torchvision's exact counts.
        assert_eq!(ResNetConfig::resnet18_imagenet().num_params(), 11_689_512);
        assert_eq!(ResNetConfig::resnet50_imagenet().num_params(), 25_557_032);
        // docs/paper.md §2.1: the Deep ConvNet has 22.8 M. Removing the four
        // downsample branches (1×1 conv + batch norm) takes away
        // (64·256 + 512) + (256·512 + 1024) + (512·1024 + 2048)
        // + (1024·2048 + 4096) = 2,776,576 of ResNet-50's parameters.
        let deep = ResNetConfig::deep_convnet_imagenet().num_params();
        assert_eq!(deep, 25_557_032 - 2_776_576);
        assert_eq!(deep, 22_780_456);
        assert_eq!((deep as f64 / 1e5).round() / 10.0, 22.8);
    }

    #[test]
    fn imagenet_tap_counts_follow_the_released_hooks() {
        // docs/paper.md §1.4: 21 guide taps for ResNet-18, 54 for ResNet-50, 50 for
        // the Deep ConvNet, computed without building the networks.
        assert_eq!(ResNetConfig::resnet18_imagenet().tap_names().len(), 21);
        assert_eq!(ResNetConfig::resnet50_imagenet().tap_names().len(), 54);
        assert_eq!(ResNetConfig::deep_convnet_imagenet().tap_names().len(), 50);
    }

    #[test]
    fn parameter_count_from_the_config_matches_the_built_network() {
        let _g = generator();
        let device = Device::flex();
        // The hand count of the original test: at width 4, the channels under
        // batch norm are stem 4, stage 1 2·2·4, stage 2 2·2·8 + 8, stage 3
        // 2·2·16 + 16, stage 4 2·2·32 + 32: 300 in all.
        assert_eq!(batch_norm_channels(&small(4)), 300);
        for config in [
            small(4),
            ResNetConfig::resnet50_small(2),
            ResNetConfig::deep_convnet_small(2),
            ResNetConfig {
                residual: false,
                ..small(3)
            },
        ] {
            // burn also counts batch norm's running mean and variance.
            let running_stats = 2 * batch_norm_channels(&config);
            assert_eq!(
                config.init(&device).num_params(),
                config.num_params() + running_stats,
                "{config:?}"
            );
        }
    }

    #[test]
    fn imagenet_stem_downsamples_by_four() {
        let _g = generator();
        let device = Device::flex();
        for mut config in [small(2), ResNetConfig::deep_convnet_small(2)] {
            config.stem = Stem::Imagenet;
            let out = config
                .init(&device)
                .forward(Tensor::ones([1, 1, 64, 64], &device));
            assert_eq!(out.taps[0].shape, vec![1, 2, 32, 32]);
            assert_eq!(out.taps[1].shape, vec![1, 2, 16, 16]);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_weights() {
        let _g = generator();
        let device = Device::flex();
        let config = ResNetConfig::resnet50_small(2);
        let draw = |s| {
            seed(&device, s);
            parameter_values(&config.init(&device))
        };
        let first = draw(3);
        assert_eq!(first, draw(3));
        assert_ne!(first, draw(4));
    }

    #[test]
    fn a_frozen_guide_runs_without_autodiff_and_keeps_its_weights() {
        let _g = generator();
        let device = Device::flex().autodiff();
        let net = ResNetConfig::resnet50_small(2).init(&device);
        let before = parameter_values(&net);
        let guide = Guide::new(net);
        let out = guide.forward(images(4, 28, &device));
        assert_eq!(out.output.dims(), [4, 10]);
        assert_eq!(out.taps.len(), 54);
        assert!(!out.output.device().is_autodiff());
        // Batch norm uses its running statistics: they did not move.
        assert_eq!(parameter_values(guide.network()), before);
    }

    #[test]
    fn saved_weights_load_back_exactly() {
        let _g = generator();
        let dir = tempfile::tempdir().unwrap();
        let train = Device::flex().autodiff();
        let device = Device::flex();
        for config in [
            small(2),
            ResNetConfig::resnet50_small(2),
            ResNetConfig::deep_convnet_small(2),
        ] {
            seed(&train, 1);
            let net = config.init(&train);
            // A training-mode forward moves the running statistics away from
            // their initial values, so that the check covers them too.
            net.forward(images(3, 28, &train));
            let net = net.valid();
            let path = dir.path().join("net.bpk");
            net.clone().save_file(&path).unwrap();
            seed(&device, 2);
            let loaded = config.init(&device).load_file(&path);
            assert_eq!(parameter_values(&loaded), parameter_values(&net));
            let x = images(2, 28, &device);
            assert_eq!(
                to_vec(loaded.forward(x.clone()).output),
                to_vec(net.forward(x).output)
            );
        }
    }

    /// Zeroes the weights of a block's last conv. Its batch norm then outputs
    /// its shift (0 at initialisation), so the block's main path is all zeros.
    fn zero_last_conv(net: &mut ResNet, stage: usize, index: usize) {
        let block = &mut net.stages[stage][index];
        let conv = &mut block.conv3.as_mut().expect("a bottleneck block").conv;
        conv.weight = Param::from_tensor(conv.weight.val().zeros_like());
    }

    #[test]
    fn without_skips_a_dead_block_silences_the_network() {
        let _g = generator();
        let device = Device::flex();
        let x = images(3, 28, &device);
        let pooled = |net: &ResNet| {
            let out = net.forward(x.clone());
            (
                to_vec(out.taps.last().unwrap().value.clone()),
                to_vec(out.output),
            )
        };

        // Deep ConvNet: nothing bypasses the block, so everything after it
        // is zero and the output no longer depends on the input.
        let mut plain = ResNetConfig::deep_convnet_small(2).init(&device);
        zero_last_conv(&mut plain, 1, 0);
        let (avgpool, output) = pooled(&plain);
        assert!(avgpool.iter().all(|&v| v == 0.0));
        assert_eq!(output[0..10], output[10..20]);

        // ResNet-50: the skip path carries the signal past the dead block.
        let mut residual = ResNetConfig::resnet50_small(2).init(&device);
        zero_last_conv(&mut residual, 1, 0);
        let (avgpool, output) = pooled(&residual);
        assert!(avgpool.iter().any(|&v| v != 0.0));
        assert_ne!(output[0..10], output[10..20]);
    }

    #[test]
    fn older_config_files_parse_as_resnet18_and_unknown_keys_are_refused() {
        let old = "blocks = [2, 2, 2, 2]\nbase_width = 8\nin_channels = 1\nclasses = 10\nstem = \"small\"\n";
        let config: ResNetConfig = toml::from_str(old).unwrap();
        assert_eq!(config, ResNetConfig::resnet18_small(8));
        let deep = toml::to_string(&ResNetConfig::deep_convnet_small(8)).unwrap();
        assert!(
            deep.contains("block = \"bottleneck\"")
                && deep.contains("conv_init = \"pytorch-default\"")
        );
        assert_eq!(
            toml::from_str::<ResNetConfig>(&deep).unwrap(),
            ResNetConfig::deep_convnet_small(8)
        );
        let typo = format!("{old}residuals = false\n");
        assert!(
            toml::from_str::<ResNetConfig>(&typo)
                .unwrap_err()
                .to_string()
                .contains("residuals")
        );
    }

    #[test]
    fn invalid_configs_are_refused_with_the_field_name() {
        let mut config = ResNetConfig::resnet50_small(8);
        config.blocks = vec![3, 0];
        assert!(config.validate().unwrap_err().contains("resnet.blocks"));
        let mut config = ResNetConfig::deep_convnet_small(8);
        config.base_width = 0;
        assert!(config.validate().unwrap_err().contains("resnet.base_width"));
    }
}
