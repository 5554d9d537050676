//! Fully connected networks: the paper's Deep FCN (many narrow layers) and
//! Wide FCN (few wide layers), as one configurable family.
//!
//! Each hidden layer is `Linear → BatchNorm → ReLU → Dropout` (docs/paper.md §2.1,
//! `ImageNetNarrowMLP` / `ImageNetShallowMLP` of the released code). The taps
//! are the hidden Linear outputs *before* batch norm, in order, as the
//! released code's hooks see them; the classifier output is not a tap.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use untrainable_core::{Forward, Network, Tap};
use untrainable_kernels::{batch_norm, dropout, linear};

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

    /// The paper's Wide FCN for ImageNet: 150,528 → 3 × 8192 → 1000, batch
    /// norm after each hidden Linear and no dropout (the released code's
    /// `ImageNetShallowMLP`).
    pub fn wide_imagenet() -> Self {
        Self {
            first_width: 8192,
            width: 8192,
            hidden_layers: 3,
            dropout: 0.0,
            ..Self::deep_imagenet()
        }
    }

    /// A Deep FCN for 28×28 grayscale images in 10 classes (Fashion-MNIST):
    /// 784 → 20 × 256 → 10, the scale the fcn-warmup cpu preset trains on two
    /// CPU cores.
    pub fn deep_small() -> Self {
        Self {
            input_features: 28 * 28,
            first_width: 256,
            width: 256,
            hidden_layers: 20,
            classes: 10,
            dropout: 0.1,
            batch_norm: true,
        }
    }

    /// A Wide FCN for 28×28 grayscale images in 10 classes: 784 → 3 × 2048 →
    /// 10, eight times as wide as [`deep_small`](Self::deep_small), the
    /// paper's ratio of the Wide to the Deep FCN's width (8192 / 1024).
    pub fn wide_small() -> Self {
        Self {
            first_width: 2048,
            width: 2048,
            hidden_layers: 3,
            dropout: 0.0,
            ..Self::deep_small()
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
            return Err(format!(
                "fcn.dropout must be in [0, 1), got {}",
                self.dropout
            ));
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
            x = linear(&block.linear, x);
            taps.push(Tap::new(format!("linear{i}"), x.clone()));
            if let Some(norm) = &block.norm {
                x = batch_norm(norm, x);
            }
            x = dropout(&block.dropout, relu(x));
        }
        Forward {
            output: linear(&self.head, x),
            taps,
        }
    }

    fn tap_names(&self) -> Vec<String> {
        (0..self.blocks.len())
            .map(|i| format!("linear{i}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use untrainable_core::random_stream_lock as generator;
    use untrainable_core::{check_taps, parameter_values, seed, to_vec};

    /// Inputs of the small config whose examples differ.
    fn inputs(batch: usize, device: &Device) -> Tensor<4> {
        let values: Vec<f32> = (0..batch * 18)
            .map(|i| ((i * 37) % 11) as f32 / 11.0)
            .collect();
        Tensor::<1>::from_floats(values.as_slice(), device).reshape([batch, 2, 3, 3])
    }

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
        let _g = generator();
        let device = Device::flex();
        let config = small();
        let net = config.init(&device);
        let out = net.forward(Tensor::ones([6, 2, 3, 3], &device));
        assert_eq!(out.output.dims(), [6, 4]);
        let widths: Vec<_> = out.taps.iter().map(|t| t.value.dims()[1]).collect();
        assert_eq!(widths, config.widths());
        check_taps(&net, &out, 6).unwrap();
    }

    #[test]
    fn parameter_count_from_the_config_matches_the_built_network() {
        let _g = generator();
        let config = small();
        // burn also counts batch norm's running mean and variance: 2 per unit.
        let running_stats = 2 * config.widths().iter().sum::<usize>();
        assert_eq!(
            config.init(&Device::flex()).num_params(),
            config.num_params() + running_stats
        );
    }

    #[test]
    fn paper_deep_fcn_has_the_papers_parameter_count() {
        // docs/paper.md §2.1 and §3: 359.8 M parameters. Exactly: 150,528·2048 + 2048
        // + 2·2048 (first layer and its batch norm), 1024·(2048 + 3) (second),
        // 46 · 1024·(1024 + 3) (the rest), 1024·1000 + 1000 (classifier).
        let config = FcnConfig::deep_imagenet();
        assert_eq!(config.num_params(), 359_788_520);
        assert_eq!(config.hidden_layers + 1, 49, "49 Linear layers in all");
    }

    #[test]
    fn paper_wide_fcn_has_the_papers_parameter_count() {
        // docs/paper.md §2.1 and §3: ≈ 1.376 B, with batch norm after each hidden
        // Linear (the released `ImageNetShallowMLP` has `BatchNorm1d` there).
        // Exactly: 150,528·8192 + 8192 + 2·8192, then 2 · 8192·(8192 + 3),
        // then 8192·1000 + 1000. The batch norms add 49,152: without them
        // the count would be 1,375,560,680.
        let config = FcnConfig::wide_imagenet();
        assert_eq!(config.num_params(), 1_375_609_832);
        assert_eq!(config.dropout, 0.0);
        let without_norm = FcnConfig {
            batch_norm: false,
            ..config
        };
        assert_eq!(without_norm.num_params(), 1_375_609_832 - 6 * 8192);
    }

    #[test]
    fn small_configs_are_valid_and_keep_the_papers_shapes() {
        for config in [FcnConfig::deep_small(), FcnConfig::wide_small()] {
            config.validate().unwrap();
            assert_eq!(config.input_features, 784);
            assert_eq!(config.classes, 10);
        }
        assert_eq!(
            FcnConfig::wide_small().width,
            8 * FcnConfig::deep_small().width
        );
        // Each hidden layer: weights, bias and batch norm's scale and shift.
        assert_eq!(
            FcnConfig::deep_small().num_params(),
            256 * (784 + 3) + 19 * 256 * (256 + 3) + 256 * 10 + 10
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_weights() {
        let _g = generator();
        let device = Device::flex();
        let draw = |s| {
            seed(&device, s);
            parameter_values(&small().init(&device))
        };
        let first = draw(5);
        assert_eq!(first, draw(5));
        assert_ne!(first, draw(6));
    }

    #[test]
    fn saved_weights_load_back_exactly() {
        let _g = generator();
        let dir = tempfile::tempdir().unwrap();
        let train = Device::flex().autodiff();
        let device = Device::flex();
        let config = small();
        seed(&train, 1);
        let net = config.init(&train);
        // A training-mode forward moves batch norm's running statistics, so
        // that the check covers them too.
        net.forward(inputs(6, &train));
        let net = net.valid();
        let path = dir.path().join("fcn.bpk");
        net.clone().save_file(&path).unwrap();
        seed(&device, 2);
        let loaded = config.init(&device).load_file(&path);
        assert_eq!(parameter_values(&loaded), parameter_values(&net));
        let x = inputs(4, &device);
        assert_eq!(
            to_vec(loaded.forward(x.clone()).output),
            to_vec(net.forward(x).output)
        );
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
