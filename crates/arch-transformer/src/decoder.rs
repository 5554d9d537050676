//! A causal transformer language model: the paper's copy-paste and
//! language-model guides (docs/paper.md §2.2, §3).

use burn::module::Module;
use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::{Dropout, DropoutConfig, Embedding, Linear};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};
use untrainable_core::{Forward, Network, Tap, TokenBatch};
use untrainable_kernels::{dropout, linear};

use crate::block::{Block, BlockSpec, Masks, sinusoids, validate_common};
use crate::{Activation, CrossAttention, Init, NormPlacement};

/// BERT `bert-base-cased` WordPiece vocabulary, the paper's LM tokenisation.
pub const BERT_CASED_VOCAB: usize = 28_996;

/// How token positions enter the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Positions {
    /// Fixed sine/cosine features added to the embeddings (no parameters).
    Sinusoidal,
    /// A learned embedding per position, `max_positions` of them.
    Learned,
}

/// The shape of a causal transformer language model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CausalLmConfig {
    pub vocab: usize,
    pub d_model: usize,
    pub heads: usize,
    /// Number of layer applications (with `shared_layers`, of the one layer).
    pub layers: usize,
    /// Width of the feed-forward block's hidden layer.
    pub ff: usize,
    /// Dropout after the embeddings, on attention weights, after every
    /// sub-layer and (except `InPlace` layers) inside the feed-forward block;
    /// active only when training on an autodiff device.
    pub dropout: f64,
    pub positions: Positions,
    /// Longest sequence the model accepts (learned positions: the table's
    /// length, hence parameters).
    pub max_positions: usize,
    /// Multiply the token embeddings by √d_model (the copy-paste guide does).
    pub scale_embedding: bool,
    /// Apply one layer `layers` times, sharing its weights, as the released
    /// copy-paste guide does (a list holding the same layer object 4×).
    pub shared_layers: bool,
    pub norm: NormPlacement,
    pub cross_attention: CrossAttention,
    /// Also tap each layer's output (the released code hooks whole
    /// `nn.TransformerDecoderLayer`s; for post-norm layers it equals the last
    /// norm's output).
    pub layer_output_tap: bool,
    pub layer_norm_eps: f64,
    pub init: Init,
}

impl CausalLmConfig {
    /// The released copy-paste guide: d 512, 16 heads, one
    /// `nn.TransformerDecoderLayer` (post-norm, ff 512, dropout 0.1) applied
    /// 4× with shared weights, cross-attending to its own input without a
    /// mask, sinusoidal positions, embeddings scaled by √d, vocab 13.
    /// 2,642,957 parameters (docs/paper.md §3: 2.6 M); 32 taps.
    pub fn copy_paste_paper() -> Self {
        Self {
            vocab: 13,
            d_model: 512,
            heads: 16,
            layers: 4,
            ff: 512,
            dropout: 0.1,
            positions: Positions::Sinusoidal,
            max_positions: 5000,
            scale_embedding: true,
            shared_layers: true,
            norm: NormPlacement::Post,
            cross_attention: CrossAttention::Unmasked,
            layer_output_tap: true,
            layer_norm_eps: 1e-5,
            init: Init::Torch,
        }
    }

    /// The copy-paste guide's shape at a quarter of the width, for CPU runs.
    pub fn copy_paste_small() -> Self {
        Self {
            d_model: 128,
            heads: 4,
            ff: 128,
            ..Self::copy_paste_paper()
        }
    }

    /// The released `TransformerLM` guide: d 512, 16 heads, 4 layers, ff 2048,
    /// 256 learned positions (the guide's `seq_len`), dropout 0.1, layers that
    /// normalise the residual stream in place, N(0, 0.02) init, layer-norm
    /// eps 1e-12. With [`BERT_CASED_VOCAB`]: 42,461,508 parameters (docs/paper.md §3:
    /// 42.5 M); 20 taps.
    pub fn lm_paper(vocab: usize) -> Self {
        Self {
            vocab,
            d_model: 512,
            heads: 16,
            layers: 4,
            ff: 2048,
            dropout: 0.1,
            positions: Positions::Learned,
            max_positions: 256,
            scale_embedding: false,
            shared_layers: false,
            norm: NormPlacement::InPlace,
            cross_attention: CrossAttention::Off,
            layer_output_tap: false,
            layer_norm_eps: 1e-12,
            init: Init::SmallNormal,
        }
    }

    /// The LM guide's shape at a quarter of the width and a 64-token context,
    /// for CPU runs.
    pub fn lm_small(vocab: usize) -> Self {
        Self {
            d_model: 128,
            heads: 4,
            ff: 512,
            max_positions: 64,
            ..Self::lm_paper(vocab)
        }
    }

    fn block(&self) -> BlockSpec {
        BlockSpec {
            d_model: self.d_model,
            heads: self.heads,
            ff: self.ff,
            dropout: self.dropout,
            layer_norm_eps: self.layer_norm_eps,
            norm: self.norm,
            cross: self.cross_attention,
            activation: Activation::Relu,
            init: self.init,
        }
    }

    /// Parameters of one layer.
    pub fn layer_params(&self) -> usize {
        self.block().num_params()
    }

    /// Parameter count, computed from the config alone (nothing allocated).
    pub fn num_params(&self) -> usize {
        let d = self.d_model;
        let distinct_layers = if self.shared_layers { 1 } else { self.layers };
        let positions = match self.positions {
            Positions::Sinusoidal => 0,
            Positions::Learned => self.max_positions * d,
        };
        self.vocab * d
            + positions
            + distinct_layers * self.layer_params()
            + d * self.vocab
            + self.vocab
    }

    /// Checks the config and says what is wrong in terms of its fields.
    pub fn validate(&self) -> Result<(), String> {
        let what = "causal_lm";
        validate_common(
            what,
            &[
                ("vocab", self.vocab),
                ("d_model", self.d_model),
                ("heads", self.heads),
                ("layers", self.layers),
                ("ff", self.ff),
                ("max_positions", self.max_positions),
            ],
            self.d_model,
            self.heads,
            self.dropout,
        )?;
        if self.positions == Positions::Sinusoidal && self.d_model % 2 != 0 {
            return Err(format!(
                "{what}.d_model must be even for sinusoidal positions, got {}",
                self.d_model
            ));
        }
        if self.layer_norm_eps <= 0.0 {
            return Err(format!(
                "{what}.layer_norm_eps must be positive, got {}",
                self.layer_norm_eps
            ));
        }
        Ok(())
    }

    /// Tap names in forward order: `layer{i}.{sub-layer}`.
    pub fn tap_names(&self) -> Vec<String> {
        let names = self.block().sublayer_names();
        (0..self.layers)
            .flat_map(|i| {
                names
                    .iter()
                    .filter(|n| self.keeps(n))
                    .map(move |n| format!("layer{i}.{n}"))
            })
            .collect()
    }

    fn keeps(&self, sublayer: &str) -> bool {
        sublayer != "out" || self.layer_output_tap
    }

    pub fn init(&self, device: &Device) -> CausalLm {
        let distinct_layers = if self.shared_layers { 1 } else { self.layers };
        CausalLm {
            embedding: self.init.embedding(self.vocab, self.d_model, device),
            positions: (self.positions == Positions::Learned).then(|| {
                self.init
                    .embedding(self.max_positions, self.d_model, device)
            }),
            layers: (0..distinct_layers)
                .map(|_| self.block().init(device))
                .collect(),
            head: self.init.linear(self.d_model, self.vocab, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            config: self.clone(),
        }
    }
}

/// A causal transformer that predicts a token at every position.
#[derive(Module, Debug)]
pub struct CausalLm {
    embedding: Embedding,
    positions: Option<Embedding>,
    /// One layer when shared, else one per application.
    layers: Vec<Block>,
    head: Linear,
    dropout: Dropout,
    #[module(skip)]
    config: CausalLmConfig,
}

impl CausalLm {
    pub fn config(&self) -> &CausalLmConfig {
        &self.config
    }
}

impl Network for CausalLm {
    type Input = TokenBatch;

    /// Output `(batch · time, vocab)`, row `b · time + t` predicting from
    /// tokens `0..=t` of sequence `b`. Positions past a sequence's length are
    /// computed like the others (causality keeps them out of earlier rows).
    fn forward(&self, input: TokenBatch) -> Forward {
        let config = &self.config;
        let [batch, time] = input.ids.dims();
        let d = config.d_model;
        assert!(
            time <= config.max_positions,
            "sequence of {time} tokens is longer than causal_lm.max_positions = {}",
            config.max_positions
        );
        let device = input.ids.device();
        let mut x = self.embedding.forward(input.ids);
        if config.scale_embedding {
            x = x.mul_scalar((d as f64).sqrt());
        }
        let positions = match &self.positions {
            Some(table) => {
                let index = Tensor::<1, Int>::arange(0..time as i64, &device).reshape([1, time]);
                table.forward(index)
            }
            None => sinusoids(time, d, &device),
        };
        x = dropout(&self.dropout, x + positions.expand([batch, time, d]));
        let masks = Masks {
            pad: None,
            causal: Some(generate_autoregressive_mask(batch, time, &device)),
        };
        let mut taps = Vec::new();
        for i in 0..config.layers {
            let layer = &self.layers[if config.shared_layers { 0 } else { i }];
            let mut trace = Vec::new();
            x = layer.forward(x, &masks, &mut trace);
            taps.extend(
                trace
                    .into_iter()
                    .filter(|(name, _)| config.keeps(name))
                    .map(|(name, value)| Tap::new(format!("layer{i}.{name}"), value)),
            );
        }
        Forward {
            output: linear(&self.head, x).reshape([batch * time, config.vocab]),
            taps,
        }
    }

    fn tap_names(&self) -> Vec<String> {
        self.config.tap_names()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{build, build_seeded, hold_random_stream};
    use untrainable_core::{Guide, check_taps, parameter_values, to_vec};

    fn small(cross: CrossAttention, shared: bool) -> CausalLmConfig {
        CausalLmConfig {
            vocab: 11,
            d_model: 16,
            heads: 4,
            layers: 3,
            ff: 24,
            dropout: 0.1,
            max_positions: 32,
            shared_layers: shared,
            cross_attention: cross,
            ..CausalLmConfig::copy_paste_paper()
        }
    }

    fn lm_small() -> CausalLmConfig {
        CausalLmConfig {
            d_model: 16,
            heads: 2,
            layers: 2,
            ff: 32,
            max_positions: 12,
            ..CausalLmConfig::lm_paper(11)
        }
    }

    fn batch(rows: &[Vec<i64>], device: &Device) -> TokenBatch {
        TokenBatch::from_rows(rows, 0, device)
    }

    fn rows() -> Vec<Vec<i64>> {
        vec![vec![1, 2, 3, 4, 5, 6, 7], vec![8, 9, 10, 1, 2]]
    }

    #[test]
    fn output_is_one_row_per_position_and_taps_follow_the_released_decoder_layer() {
        let device = Device::flex();
        let config = small(CrossAttention::Unmasked, true);
        let net = build(|| config.init(&device));
        let out = net.forward(batch(&rows(), &device));
        assert_eq!(out.output.dims(), [2 * 7, 11]);
        let names: Vec<_> = out.taps.iter().map(|t| t.name.clone()).collect();
        check_taps(&net, &out, rows().len()).unwrap();
        assert_eq!(names.len(), 3 * 8);
        assert_eq!(
            names[..8],
            [
                "layer0.self_attn",
                "layer0.norm1",
                "layer0.cross_attn",
                "layer0.norm2",
                "layer0.ff1",
                "layer0.ff2",
                "layer0.norm3",
                "layer0.out",
            ]
        );
        for tap in &out.taps {
            let width = if tap.name.ends_with("ff1") { 24 } else { 16 };
            assert_eq!(tap.shape, vec![2, 7, width], "{}", tap.name);
            assert_eq!(tap.value.dims(), [2, 7 * width]);
        }
    }

    #[test]
    fn lm_layers_tap_norm_then_attention_then_feed_forward() {
        let device = Device::flex();
        let net = build(|| lm_small().init(&device));
        let out = net.forward(batch(&rows(), &device));
        assert_eq!(out.output.dims(), [14, 11]);
        let names: Vec<_> = out.taps.iter().map(|t| t.name.clone()).collect();
        check_taps(&net, &out, rows().len()).unwrap();
        assert_eq!(
            names[..5],
            [
                "layer0.norm1",
                "layer0.self_attn",
                "layer0.norm2",
                "layer0.ff1",
                "layer0.ff2"
            ]
        );
        assert_eq!(names.len(), 2 * 5);
    }

    #[test]
    fn paper_presets_have_the_papers_tap_counts() {
        // docs/paper.md §1.4: 32 copy-paste guide taps, 20 LM guide taps.
        assert_eq!(CausalLmConfig::copy_paste_paper().tap_names().len(), 32);
        assert_eq!(
            CausalLmConfig::lm_paper(BERT_CASED_VOCAB).tap_names().len(),
            20
        );
    }

    /// Rows `b·time + t` for `t < until`, flattened.
    fn rows_before(output: Tensor<2>, time: usize, until: usize) -> Vec<f32> {
        let [n, vocab] = output.dims();
        let per_seq = output.reshape([n / time, time, vocab]);
        to_vec(per_seq.narrow(1, 0, until))
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    fn later_tokens_changed(config: &CausalLmConfig) -> (Vec<f32>, Vec<f32>, f32) {
        let device = Device::flex();
        let net = build_seeded(&device, 3, || config.init(&device));
        let a = vec![vec![1, 2, 3, 4, 5, 6, 7, 8], vec![9, 10, 1, 2, 3, 4, 5, 6]];
        let mut b = a.clone();
        for row in &mut b {
            for id in &mut row[4..] {
                *id = (*id + 3) % 11;
            }
        }
        let out_a = net.forward(batch(&a, &device)).output;
        let out_b = net.forward(batch(&b, &device)).output;
        let all = max_abs_diff(&to_vec(out_a.clone()), &to_vec(out_b.clone()));
        (rows_before(out_a, 8, 4), rows_before(out_b, 8, 4), all)
    }

    #[test]
    fn causal_mask_keeps_later_tokens_out_of_earlier_positions() {
        for config in [
            small(CrossAttention::Off, false),
            small(CrossAttention::Causal, true),
            lm_small(),
        ] {
            let (early_a, early_b, all) = later_tokens_changed(&config);
            assert!(max_abs_diff(&early_a, &early_b) < 1e-6, "{config:?}");
            assert!(all > 1e-3, "later positions must see the change");
        }
    }

    #[test]
    fn unmasked_self_cross_attention_leaks_later_tokens_as_in_the_released_guide() {
        let (early_a, early_b, _) = later_tokens_changed(&small(CrossAttention::Unmasked, true));
        assert!(max_abs_diff(&early_a, &early_b) > 1e-4);
    }

    #[test]
    fn the_same_seed_gives_the_same_weights() {
        let device = Device::flex();
        let config = small(CrossAttention::Causal, false);
        let a = parameter_values(&build_seeded(&device, 5, || config.init(&device)));
        let b = parameter_values(&build_seeded(&device, 5, || config.init(&device)));
        let c = parameter_values(&build_seeded(&device, 6, || config.init(&device)));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn parameter_count_from_the_config_matches_the_built_network() {
        let device = Device::flex();
        for config in [
            small(CrossAttention::Off, false),
            small(CrossAttention::Unmasked, true),
            lm_small(),
        ] {
            assert_eq!(
                build(|| config.init(&device)).num_params(),
                config.num_params(),
                "{config:?}"
            );
        }
    }

    #[test]
    fn shared_layers_save_exactly_the_repeated_layers() {
        let device = Device::flex();
        let shared = small(CrossAttention::Unmasked, true);
        let unshared = small(CrossAttention::Unmasked, false);
        let saved = build(|| unshared.init(&device)).num_params()
            - build(|| shared.init(&device)).num_params();
        assert_eq!(saved, (shared.layers - 1) * shared.layer_params());
    }

    #[test]
    fn paper_decoders_have_the_papers_parameter_counts() {
        // docs/paper.md §3: copy-paste guide 2.6 M, LM guide 42.5 M (BERT vocab).
        let copy_paste = CausalLmConfig::copy_paste_paper().num_params();
        assert_eq!(copy_paste, 2_642_957);
        let lm = CausalLmConfig::lm_paper(BERT_CASED_VOCAB).num_params();
        assert_eq!(lm, 42_461_508);
        assert_eq!((lm as f64 / 1e5).round() / 10.0, 42.5);
        // Without the shared layer or without the self-cross-attention the
        // copy-paste guide would not be 2.6 M.
        let mut unshared = CausalLmConfig::copy_paste_paper();
        unshared.shared_layers = false;
        assert!(unshared.num_params() > 10_000_000);
        let mut plain = CausalLmConfig::copy_paste_paper();
        plain.cross_attention = CrossAttention::Off;
        assert!(plain.num_params() < 1_600_000);
    }

    #[test]
    fn presets_are_valid_and_bad_fields_are_named() {
        for config in [
            CausalLmConfig::copy_paste_paper(),
            CausalLmConfig::copy_paste_small(),
            CausalLmConfig::lm_paper(BERT_CASED_VOCAB),
            CausalLmConfig::lm_small(BERT_CASED_VOCAB),
        ] {
            config.validate().unwrap();
        }
        let mut config = lm_small();
        config.heads = 3;
        assert!(config.validate().unwrap_err().contains("causal_lm.heads"));
        let mut config = lm_small();
        config.dropout = 1.0;
        assert!(config.validate().unwrap_err().contains("causal_lm.dropout"));
        let mut config = small(CrossAttention::Off, false);
        config.d_model = 9;
        config.heads = 1;
        assert!(config.validate().unwrap_err().contains("causal_lm.d_model"));
    }

    #[test]
    #[should_panic(expected = "causal_lm.max_positions")]
    fn sequences_longer_than_the_position_table_are_refused() {
        let device = Device::flex();
        let net = build(|| lm_small().init(&device));
        net.forward(batch(&[vec![1; 13]], &device));
    }

    #[test]
    fn a_frozen_guide_gives_the_same_output_as_the_network_in_eval() {
        let device = Device::flex();
        let net = build(|| small(CrossAttention::Unmasked, true).init(&device));
        let expected = to_vec(net.forward(batch(&rows(), &device)).output);
        let guide = Guide::new(net);
        let out = guide.forward(batch(&rows(), &device));
        assert_eq!(out.taps.len(), 24);
        assert_eq!(to_vec(out.output), expected);
    }

    #[test]
    fn gradients_reach_the_token_embedding_through_the_shared_layer() {
        let _stream = hold_random_stream();
        let device = Device::flex().autodiff();
        // Dropout draws from the random stream too: hold it for the whole test.
        let net = small(CrossAttention::Unmasked, true).init(&device);
        let loss = net.forward(batch(&rows(), &device)).output.sum();
        let grads = loss.backward();
        assert!(net.embedding.weight.val().grad(&grads).is_some());
        assert!(net.layers[0].ff1_weight().grad(&grads).is_some());
    }

    #[test]
    fn saving_and_loading_restores_every_weight_exactly() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lm.bpk");
        for config in [lm_small(), small(CrossAttention::Unmasked, true)] {
            let net = build_seeded(&device, 1, || config.init(&device));
            let before = parameter_values(&net);
            let expected = to_vec(net.forward(batch(&rows(), &device)).output);
            net.save_file(&path).unwrap();
            let loaded = build_seeded(&device, 2, || config.init(&device)).load_file(&path);
            assert_eq!(parameter_values(&loaded), before);
            assert_eq!(
                to_vec(loaded.forward(batch(&rows(), &device)).output),
                expected
            );
        }
    }
}
