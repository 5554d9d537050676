//! Fully connected networks: the paper's Deep FCN (many narrow layers) and
//! Wide FCN (few wide layers), as one configurable family.
//!
//! Each hidden layer is `Linear → BatchNorm → ReLU → Dropout` (NOTES §2.1,
//! `ImageNetNarrowMLP` / `ImageNetShallowMLP` of the released code). The taps
//! are the hidden Linear outputs *before* batch norm, in order, as the
//! released code's hooks see them; the classifier output is not a tap.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use untrainable_core::{Forward, Network, Tap};

/// The shape of a fully connected network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcnConfig {
    /// Features of one flattened input example (C·H·W).
    pub input_features: usize,
    /// Width of the first hidden layer (the paper's Deep FCN: 2048).
    pub first_width: usize,
    /// Width of every later hidden layer (Deep FCN: 1024).
    pub width: usize,
    /// Number of hidden Linear layers, the first included (Deep FCN: 48).
    pub hidden_layers: usize,
    pub classes: usize,
    /// Dropout after each ReLU; 0 disables it (Wide FCN).
    pub dropout: f64,
    /// Batch norm after each hidden Linear.
    pub batch_norm: bool,
}

impl FcnConfig {
    /// The paper's Deep FCN for ImageNet: 150,528 → 2048 → 47 × 1024 → 1000.
    pub fn deep_imagenet() -> Self {
        Self {
            input_features: 3 * 224 * 224,
            first_width: 2048,
            width: 1024,
            hidden_layers: 48,
            classes: 1000,
            dropout: 0.1,
            batch_norm: true,
        }
    }

    /// Widths of the hidden layers, in order.
    pub fn widths(&self) -> Vec<usize> {
        (0..self.hidden_layers)
            .map(|i| if i == 0 { self.first_width } else { self.width })
            .collect()
    }

    /// Parameter count, computed from the config alone (nothing allocated).
    pub fn num_params(&self) -> usize {
        let mut fan_in = self.input_features;
        let mut total = 0;
        for w in self.widths() {
            total += fan_in * w + w;
            if self.batch_norm {
                total += 2 * w;
            }
            fan_in = w;
        }
        total + fan_in * self.classes + self.classes
    }

    /// Checks the config and says what is wrong in terms of its fields.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("input_features", self.input_features),
            ("first_width", self.first_width),
            ("width", self.width),
            ("hidden_layers", self.hidden_layers),
            ("classes", self.classes),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("fcn.{name} must be at least 1, got 0"));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("fcn.dropout must be in [0, 1), got {}", self.dropout));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> Fcn {
        let mut fan_in = self.input_features;
        let blocks = self
            .widths()
            .into_iter()
            .map(|w| {
                let block = FcnBlock {
                    linear: LinearConfig::new(fan_in, w).init(device),
                    norm: self
                        .batch_norm
                        .then(|| BatchNormConfig::new(w).init(device)),
                    dropout: DropoutConfig::new(self.dropout).init(),
                };
                fan_in = w;
                block
            })
            .collect();
        Fcn {
            blocks,
            head: LinearConfig::new(fan_in, self.classes).init(device),
        }
    }
}

#[derive(Module, Debug)]
struct FcnBlock {
    linear: Linear,
    norm: Option<BatchNorm>,
    dropout: Dropout,
}

/// A fully connected classifier over flattened images.
#[derive(Module, Debug)]
pub struct Fcn {
    blocks: Vec<FcnBlock>,
    head: Linear,
}

impl Network for Fcn {
    /// Images `(batch, channels, height, width)`, flattened inside.
    type Input = Tensor<4>;

    fn forward(&self, input: Tensor<4>) -> Forward {
        let mut x: Tensor<2> = input.flatten(1, 3);
        let mut taps = Vec::with_capacity(self.blocks.len());
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.linear.forward(x);
            taps.push(Tap::new(format!("linear{i}"), x.clone()));
            if let Some(norm) = &block.norm {
                x = norm.forward(x);
            }
            x = block.dropout.forward(relu(x));
        }
        Forward {
            output: self.head.forward(x),
            taps,
        }
    }

    fn tap_names(&self) -> Vec<String> {
        (0..self.blocks.len()).map(|i| format!("linear{i}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> FcnConfig {
        FcnConfig {
            input_features: 2 * 3 * 3,
            first_width: 16,
            width: 8,
            hidden_layers: 5,
            classes: 4,
            dropout: 0.1,
            batch_norm: true,
        }
    }

    #[test]
    fn forward_gives_logits_and_one_pre_norm_tap_per_hidden_layer() {
        let device = Device::flex();
        let config = small();
        let net = config.init(&device);
        let out = net.forward(Tensor::ones([6, 2, 3, 3], &device));
        assert_eq!(out.output.dims(), [6, 4]);
        let widths: Vec<_> = out.taps.iter().map(|t| t.value.dims()[1]).collect();
        assert_eq!(widths, config.widths());
        let names: Vec<_> = out.taps.iter().map(|t| t.name.clone()).collect();
        assert_eq!(names, net.tap_names());
    }

    #[test]
    fn parameter_count_from_the_config_matches_the_built_network() {
        let config = small();
        // burn also counts batch norm's running mean and variance: 2 per unit.
        let running_stats = 2 * config.widths().iter().sum::<usize>();
        assert_eq!(config.init(&Device::flex()).num_params(), config.num_params() + running_stats);
    }

    #[test]
    fn paper_deep_fcn_has_the_papers_parameter_count() {
        // NOTES §3: 359.8 M parameters.
        let millions = FcnConfig::deep_imagenet().num_params() as f64 / 1e6;
        assert!((millions - 359.8).abs() < 0.05, "{millions}");
    }

    #[test]
    fn invalid_configs_are_refused_with_the_field_name() {
        let mut config = small();
        config.width = 0;
        assert!(config.validate().unwrap_err().contains("fcn.width"));
        let mut config = small();
        config.dropout = 1.5;
        assert!(config.validate().unwrap_err().contains("fcn.dropout"));
    }
}
