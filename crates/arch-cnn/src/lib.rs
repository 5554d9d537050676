//! Residual convolutional networks (He et al., 2016), built as torchvision
//! builds ResNet-18: basic blocks, batch norm, convolutions without bias,
//! Kaiming-normal (fan-out) initialisation. An untrained network of this crate
//! is the paper's "untrained ResNet-18" guide (NOTES §1.1).
//!
//! Taps follow the released code's hooks (NOTES §1.3): every convolution's
//! output before batch norm, in forward order (a block's downsample conv comes
//! after its second conv), then the global average pool. ResNet-18 has 21.

use burn::module::{Initializer, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use untrainable_core::{Forward, Network, Tap};

/// The first layers, which set how much the image is downsampled early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stem {
    /// 7×7 stride-2 conv and 3×3 stride-2 max pool, for 224×224 images.
    Imagenet,
    /// One 3×3 stride-1 conv and no pooling, for 28×28 or 32×32 images.
    Small,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetConfig {
    /// Basic blocks per stage (ResNet-18: [2, 2, 2, 2]).
    pub blocks: Vec<usize>,
    /// Channels of the stem and first stage; doubled at every later stage
    /// (torchvision: 64).
    pub base_width: usize,
    pub in_channels: usize,
    pub classes: usize,
    pub stem: Stem,
}

impl ResNetConfig {
    /// torchvision's ResNet-18 for ImageNet (11.7 M parameters).
    pub fn resnet18_imagenet() -> Self {
        Self {
            blocks: vec![2, 2, 2, 2],
            base_width: 64,
            in_channels: 3,
            classes: 1000,
            stem: Stem::Imagenet,
        }
    }

    fn stage_widths(&self) -> Vec<usize> {
        (0..self.blocks.len()).map(|s| self.base_width << s).collect()
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

    /// Parameter count from the config alone (nothing allocated).
    pub fn num_params(&self) -> usize {
        let conv = |cin: usize, cout: usize, k: usize| cin * cout * k * k;
        let bn = |c: usize| 2 * c;
        let stem_k = match self.stem {
            Stem::Imagenet => 7,
            Stem::Small => 3,
        };
        let mut total = conv(self.in_channels, self.base_width, stem_k) + bn(self.base_width);
        let mut cin = self.base_width;
        for (stage, (&n, cout)) in self.blocks.iter().zip(self.stage_widths()).enumerate() {
            for b in 0..n {
                total += conv(cin, cout, 3) + bn(cout) + conv(cout, cout, 3) + bn(cout);
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                if stride != 1 || cin != cout {
                    total += conv(cin, cout, 1) + bn(cout);
                }
                cin = cout;
            }
        }
        total + cin * self.classes + self.classes
    }

    pub fn init(&self, device: &Device) -> ResNet {
        let (stem_conv, stem_pool) = match self.stem {
            Stem::Imagenet => (
                conv(self.in_channels, self.base_width, 7, 2, 3, device),
                Some(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(),
                ),
            ),
            Stem::Small => (conv(self.in_channels, self.base_width, 3, 1, 1, device), None),
        };
        let mut cin = self.base_width;
        let mut blocks = Vec::new();
        for (stage, (&n, cout)) in self.blocks.iter().zip(self.stage_widths()).enumerate() {
            for b in 0..n {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                blocks.push(BasicBlock::new(cin, cout, stride, device));
                cin = cout;
            }
        }
        ResNet {
            stem_conv,
            stem_norm: BatchNormConfig::new(self.base_width).init(device),
            stem_pool,
            blocks,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: LinearConfig::new(cin, self.classes).init(device),
        }
    }
}

/// torchvision's initialisation of ResNet convolutions.
fn conv(cin: usize, cout: usize, k: usize, stride: usize, pad: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal {
            gain: 2f64.sqrt(),
            fan_out_only: true,
        })
        .init(device)
}

#[derive(Module, Debug)]
struct Downsample {
    conv: Conv2d,
    norm: BatchNorm,
}

#[derive(Module, Debug)]
struct BasicBlock {
    conv1: Conv2d,
    norm1: BatchNorm,
    conv2: Conv2d,
    norm2: BatchNorm,
    downsample: Option<Downsample>,
}

impl BasicBlock {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv1: conv(cin, cout, 3, stride, 1, device),
            norm1: BatchNormConfig::new(cout).init(device),
            conv2: conv(cout, cout, 3, 1, 1, device),
            norm2: BatchNormConfig::new(cout).init(device),
            downsample: (stride != 1 || cin != cout).then(|| Downsample {
                conv: conv(cin, cout, 1, stride, 0, device),
                norm: BatchNormConfig::new(cout).init(device),
            }),
        }
    }

    fn forward(&self, x: Tensor<4>, taps: &mut Vec<Tap>, name: &str) -> Tensor<4> {
        let h = self.conv1.forward(x.clone());
        taps.push(Tap::new(format!("{name}.conv1"), h.clone()));
        let h = self.conv2.forward(relu(self.norm1.forward(h)));
        taps.push(Tap::new(format!("{name}.conv2"), h.clone()));
        let h = self.norm2.forward(h);
        let identity = match &self.downsample {
            Some(down) => {
                let d = down.conv.forward(x);
                taps.push(Tap::new(format!("{name}.downsample"), d.clone()));
                down.norm.forward(d)
            }
            None => x,
        };
        relu(h + identity)
    }
}

/// A residual network classifier.
#[derive(Module, Debug)]
pub struct ResNet {
    stem_conv: Conv2d,
    stem_norm: BatchNorm,
    stem_pool: Option<MaxPool2d>,
    blocks: Vec<BasicBlock>,
    pool: AdaptiveAvgPool2d,
    head: Linear,
}

impl ResNet {
    /// Block names as `layer{stage}.{index}`, torchvision's naming.
    fn block_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        let (mut stage, mut index) = (1, 0);
        for (i, block) in self.blocks.iter().enumerate() {
            // A block with a downsample branch opens a new stage (after the first).
            if i > 0 && block.downsample.is_some() {
                stage += 1;
                index = 0;
            }
            names.push(format!("layer{stage}.{index}"));
            index += 1;
        }
        names
    }
}

impl Network for ResNet {
    /// Images `(batch, channels, height, width)`.
    type Input = Tensor<4>;

    fn forward(&self, input: Tensor<4>) -> Forward {
        let mut taps = Vec::new();
        let h = self.stem_conv.forward(input);
        taps.push(Tap::new("conv1", h.clone()));
        let mut h = relu(self.stem_norm.forward(h));
        if let Some(pool) = &self.stem_pool {
            h = pool.forward(h);
        }
        for (block, name) in self.blocks.iter().zip(self.block_names()) {
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
        for (block, name) in self.blocks.iter().zip(self.block_names()) {
            names.push(format!("{name}.conv1"));
            names.push(format!("{name}.conv2"));
            if block.downsample.is_some() {
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

    fn small(width: usize) -> ResNetConfig {
        ResNetConfig {
            blocks: vec![2, 2, 2, 2],
            base_width: width,
            in_channels: 1,
            classes: 10,
            stem: Stem::Small,
        }
    }

    #[test]
    fn resnet18_has_21_taps_in_torchvision_forward_order() {
        let device = Device::flex();
        let net = small(4).init(&device);
        let out = net.forward(Tensor::ones([2, 1, 28, 28], &device));
        assert_eq!(out.output.dims(), [2, 10]);
        let names: Vec<_> = out.taps.iter().map(|t| t.name.clone()).collect();
        assert_eq!(names.len(), 21);
        assert_eq!(names, net.tap_names());
        assert_eq!(names[0], "conv1");
        assert_eq!(names[5..8], ["layer2.0.conv1", "layer2.0.conv2", "layer2.0.downsample"]);
        assert_eq!(names[20], "avgpool");
        // Small stem: 28×28 stays 28×28 in stage 1, then halves at each stage.
        assert_eq!(out.taps[0].shape, vec![2, 4, 28, 28]);
        assert_eq!(out.taps[19].shape, vec![2, 32, 4, 4]);
        assert_eq!(out.taps[20].shape, vec![2, 32]);
    }

    #[test]
    fn imagenet_resnet18_has_the_papers_parameter_count() {
        // NOTES §3: torchvision ResNet-18, 11.7 M (11,689,512) parameters.
        assert_eq!(ResNetConfig::resnet18_imagenet().num_params(), 11_689_512);
    }

    #[test]
    fn parameter_count_from_the_config_matches_the_built_network() {
        let config = small(4);
        // burn also counts batch norm's running mean and variance. Channels
        // under batch norm at width 4: stem 4, stage 1 2·2·4, stage 2 2·2·8 + 8,
        // stage 3 2·2·16 + 16, stage 4 2·2·32 + 32: 300 in all, 2 statistics each.
        let running_stats = 2 * 300;
        assert_eq!(config.init(&Device::flex()).num_params(), config.num_params() + running_stats);
    }

    #[test]
    fn imagenet_stem_downsamples_by_four() {
        let device = Device::flex();
        let mut config = small(2);
        config.stem = Stem::Imagenet;
        let out = config.init(&device).forward(Tensor::ones([1, 1, 64, 64], &device));
        assert_eq!(out.taps[0].shape, vec![1, 2, 32, 32]);
        assert_eq!(out.taps[1].shape, vec![1, 2, 16, 16]);
    }
}
