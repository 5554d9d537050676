//! Vanilla (Elman) tanh recurrent networks: the paper's "untrainable" RNN
//! language model for copy-paste and language modelling, and the RNN parity
//! classifier that guides a Transformer (docs/paper.md §2.2).
//!
//! One recurrent layer computes, as PyTorch's `nn.RNN(nonlinearity='tanh')`
//! does, `h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`, with both biases
//! and PyTorch's initialisation `U(-1/√hidden, 1/√hidden)`, so parameter
//! counts and starting scales match the released code (`RNNLM('RNN')`,
//! `ParityRNN`).
//!
//! Taps follow the released code's hooks (docs/paper.md §1.3): the full output
//! sequence `(batch, time, hidden)` of every recurrent layer, in order
//! (`rnn0`, `rnn1`, ...); final hidden states and the head are not taps.

use burn::module::{Initializer, Module};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use untrainable_core::{Forward, Network, Tap, TokenBatch};
use untrainable_kernels::{linear, tanh_recurrence};

/// The copy-paste vocabulary of the paper: digits 0–9, an unused id, COPY
/// and EOS (docs/paper.md §2.2).
pub const COPY_PASTE_VOCAB: usize = 13;
/// `bert-base-cased` WordPiece, the paper's language-modelling vocabulary.
pub const BERT_CASED_VOCAB: usize = 28_996;

/// The name of the tap of recurrent layer `i`.
pub fn tap_name(i: usize) -> String {
    format!("rnn{i}")
}

// ---------------------------------------------------------------------------
// One recurrent layer

/// One single-layer tanh RNN, `input` features in, `hidden` out.
#[derive(Module, Debug)]
pub struct TanhRnn {
    /// `W_ih` stored as burn stores Linear weights, `(input, hidden)`, and `b_ih`.
    input: Linear,
    /// `W_hh` as `(hidden, hidden)` and `b_hh`.
    recurrent: Linear,
}

impl TanhRnn {
    /// A layer initialised as `nn.RNN` is: every weight and bias drawn from
    /// `U(-1/√hidden, 1/√hidden)`, whatever the input width.
    pub fn new(input: usize, hidden: usize, device: &Device) -> Self {
        let bound = 1.0 / (hidden as f64).sqrt();
        let init = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        Self {
            input: LinearConfig::new(input, hidden)
                .with_initializer(init.clone())
                .init(device),
            recurrent: LinearConfig::new(hidden, hidden)
                .with_initializer(init)
                .init(device),
        }
    }

    /// Parameters of a layer of this shape, both biases included.
    pub fn num_params_of(input: usize, hidden: usize) -> usize {
        input * hidden + hidden * hidden + 2 * hidden
    }

    pub fn hidden_size(&self) -> usize {
        self.recurrent.weight.dims()[1]
    }

    /// `W_ih` as `(input, hidden)`, so that `x W_ih` is the input projection.
    pub fn input_weight(&self) -> Tensor<2> {
        self.input.weight.val()
    }

    /// `W_hh` as `(hidden, hidden)`, so that `h W_hh` is the recurrent term.
    pub fn recurrent_weight(&self) -> Tensor<2> {
        self.recurrent.weight.val()
    }

    /// `(b_ih, b_hh)`.
    pub fn biases(&self) -> (Tensor<1>, Tensor<1>) {
        let bias = |l: &Linear| l.bias.as_ref().expect("RNN linears have a bias").val();
        (bias(&self.input), bias(&self.recurrent))
    }

    /// Runs the layer over `x` `(batch, time, input)` from `initial`
    /// `(batch, hidden)`, or from zeros when `None`. Returns every output
    /// `(batch, time, hidden)` and the state after the last step.
    ///
    /// The input projection of all steps is one matmul, with both biases
    /// folded in; the recurrence is `untrainable_kernels::tanh_recurrence`, an
    /// initial state entering as `h_0 W_hh` added to the first step's
    /// projection.
    pub fn forward(&self, x: Tensor<3>, initial: Option<Tensor<2>>) -> (Tensor<3>, Tensor<2>) {
        let [batch, time, _] = x.dims();
        let hidden = self.hidden_size();
        let (_, recurrent_bias) = self.biases();
        let mut projected = linear(&self.input, x) + recurrent_bias.reshape([1, 1, hidden]);
        let weight = self.recurrent.weight.val();
        if let Some(initial) = initial {
            let first = projected.clone().slice([0..batch, 0..1, 0..hidden])
                + initial.matmul(weight.clone()).reshape([batch, 1, hidden]);
            projected = projected.slice_assign([0..batch, 0..1, 0..hidden], first);
        }
        let outputs = tanh_recurrence(projected, weight);
        let last = outputs
            .clone()
            .slice([0..batch, time - 1..time, 0..hidden])
            .reshape([batch, hidden]);
        (outputs, last)
    }
}

// ---------------------------------------------------------------------------
// Stacked RNN language model

/// Where each stacked layer starts its recurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitialState {
    /// Every layer starts from zeros: a standard stacked RNN, causal at every
    /// position. The default, and what the paper presets use, since the
    /// paper describes a plain stacked RNN.
    #[default]
    Zeros,
    /// The released code's behaviour (`RNNLM.forward`): layer `i + 1` starts
    /// from layer `i`'s state after the *last* padded step. Higher layers then
    /// see the whole input from their first step on, so the model is no longer
    /// causal (in language modelling the next tokens leak into earlier
    /// predictions).
    PreviousFinal,
}

/// The shape of a stacked tanh RNN language model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RnnLmConfig {
    pub vocab: usize,
    /// Width of the token embedding (paper: 256).
    pub embedding: usize,
    /// Width of every recurrent layer (paper: 512).
    pub hidden: usize,
    /// Stacked single-layer RNNs (paper: 4; the large LM: 6).
    pub layers: usize,
    #[serde(default)]
    pub initial_state: InitialState,
}

impl RnnLmConfig {
    /// The copy-paste target (docs/paper.md §3: 2.0 M parameters).
    pub fn copy_paste_paper() -> Self {
        Self {
            vocab: COPY_PASTE_VOCAB,
            embedding: 256,
            hidden: 512,
            layers: 4,
            initial_state: InitialState::Zeros,
        }
    }

    /// A copy-paste RNN that trains in minutes on two CPU cores; four layers,
    /// like the paper's, so that layer mappings keep their shape.
    pub fn copy_paste_cpu() -> Self {
        Self {
            embedding: 64,
            hidden: 128,
            ..Self::copy_paste_paper()
        }
    }

    /// The language-modelling target: 4 layers ("small", 24.3 M with the
    /// BERT vocabulary) or 6 ("large", 25.3 M) (docs/paper.md §2.2, §3).
    pub fn lm_paper(vocab: usize, layers: usize) -> Self {
        Self {
            vocab,
            embedding: 256,
            hidden: 512,
            layers,
            initial_state: InitialState::Zeros,
        }
    }

    /// A language model for a small character or word vocabulary on CPU.
    pub fn lm_cpu(vocab: usize) -> Self {
        Self {
            vocab,
            embedding: 64,
            hidden: 128,
            layers: 4,
            initial_state: InitialState::Zeros,
        }
    }

    /// Parameter count from the config alone (nothing allocated).
    pub fn num_params(&self) -> usize {
        let mut total = self.vocab * self.embedding;
        let mut width = self.embedding;
        for _ in 0..self.layers {
            total += TanhRnn::num_params_of(width, self.hidden);
            width = self.hidden;
        }
        total + width * self.vocab + self.vocab
    }

    /// Checks the config and says what is wrong in terms of its fields.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("vocab", self.vocab),
            ("embedding", self.embedding),
            ("hidden", self.hidden),
            ("layers", self.layers),
        ] {
            if value == 0 {
                return Err(format!("rnn.{name} must be at least 1, got 0"));
            }
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> RnnLm {
        let layers = (0..self.layers)
            .map(|i| {
                let width = if i == 0 { self.embedding } else { self.hidden };
                TanhRnn::new(width, self.hidden, device)
            })
            .collect();
        RnnLm {
            embedding: EmbeddingConfig::new(self.vocab, self.embedding).init(device),
            layers,
            head: LinearConfig::new(self.hidden, self.vocab).init(device),
            initial_state: self.initial_state,
        }
    }
}

/// Embedding → stacked tanh RNNs → linear head, predicting a token at every
/// position.
#[derive(Module, Debug)]
pub struct RnnLm {
    embedding: Embedding,
    layers: Vec<TanhRnn>,
    head: Linear,
    #[module(skip)]
    initial_state: InitialState,
}

impl RnnLm {
    pub fn layers(&self) -> &[TanhRnn] {
        &self.layers
    }

    pub fn initial_state(&self) -> InitialState {
        self.initial_state
    }
}

impl Network for RnnLm {
    type Input = TokenBatch;

    /// Output `(batch · time, vocab)`, row `b · time + t`; padded positions
    /// are computed from the pad id like any other token, and the task's mask
    /// decides which rows count.
    fn forward(&self, input: TokenBatch) -> Forward {
        let [batch, time] = input.ids.dims();
        let mut x = self.embedding.forward(input.ids);
        let mut taps = Vec::with_capacity(self.layers.len());
        let mut previous_final = None;
        for (i, layer) in self.layers.iter().enumerate() {
            let initial = match self.initial_state {
                InitialState::Zeros => None,
                InitialState::PreviousFinal => previous_final.take(),
            };
            let (outputs, last) = layer.forward(x, initial);
            taps.push(Tap::new(tap_name(i), outputs.clone()));
            previous_final = Some(last);
            x = outputs;
        }
        let logits = linear(&self.head, x);
        let vocab = logits.dims()[2];
        Forward {
            output: logits.reshape([batch * time, vocab]),
            taps,
        }
    }

    fn tap_names(&self) -> Vec<String> {
        (0..self.layers.len()).map(tap_name).collect()
    }
}

// ---------------------------------------------------------------------------
// Parity classifier

/// The RNN parity classifier (`ParityRNN` of the released code).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParityRnnConfig {
    /// Bits 0, 1 and the pad id 2.
    pub vocab: usize,
    /// A learned embedding as wide as the vocabulary (the released code's
    /// `nn.Embedding(3, 3)`), not a fixed one-hot code.
    pub embedding: usize,
    pub hidden: usize,
    pub classes: usize,
}

impl ParityRnnConfig {
    /// The paper's parity guide (docs/paper.md §3: 0.27 M parameters).
    pub fn parity_paper() -> Self {
        Self {
            vocab: 3,
            embedding: 3,
            hidden: 512,
            classes: 2,
        }
    }

    /// A narrower parity RNN for CPU runs.
    pub fn parity_cpu() -> Self {
        Self {
            hidden: 128,
            ..Self::parity_paper()
        }
    }

    pub fn num_params(&self) -> usize {
        self.vocab * self.embedding
            + TanhRnn::num_params_of(self.embedding, self.hidden)
            + self.hidden * self.classes
            + self.classes
    }

    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("vocab", self.vocab),
            ("embedding", self.embedding),
            ("hidden", self.hidden),
            ("classes", self.classes),
        ] {
            if value == 0 {
                return Err(format!("parity_rnn.{name} must be at least 1, got 0"));
            }
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> ParityRnn {
        ParityRnn {
            embedding: EmbeddingConfig::new(self.vocab, self.embedding).init(device),
            rnn: TanhRnn::new(self.embedding, self.hidden, device),
            head: LinearConfig::new(self.hidden, self.classes).init(device),
        }
    }
}

/// Embedding → one tanh RNN → state at each sequence's last real token →
/// ReLU → linear to the classes.
#[derive(Module, Debug)]
pub struct ParityRnn {
    embedding: Embedding,
    rnn: TanhRnn,
    head: Linear,
}

impl ParityRnn {
    pub fn rnn(&self) -> &TanhRnn {
        &self.rnn
    }
}

impl Network for ParityRnn {
    type Input = TokenBatch;

    /// Output `(batch, classes)`. The tap is the RNN output sequence with the
    /// positions past each length set to zero, as the released code's packed
    /// sequences come back padded; neither output nor tap depends on what the
    /// padding holds.
    fn forward(&self, input: TokenBatch) -> Forward {
        let [batch, time] = input.ids.dims();
        for &len in &input.lengths {
            assert!(
                (1..=time).contains(&len),
                "parity rnn: every length must be in 1..={time}, got {len}"
            );
        }
        let hidden = self.rnn.hidden_size();
        let device = input.ids.device();
        let padding = input.padding_mask();
        let (outputs, _) = self.rnn.forward(self.embedding.forward(input.ids), None);

        let last: Vec<i64> = input
            .lengths
            .iter()
            .flat_map(|&len| std::iter::repeat_n(len as i64 - 1, hidden))
            .collect();
        let last = Tensor::<3, Int>::from_data(TensorData::new(last, [batch, 1, hidden]), &device);
        let read: Tensor<2> = outputs.clone().gather(1, last).reshape([batch, hidden]);

        let padding = padding.unsqueeze_dim::<3>(2).expand([batch, time, hidden]);
        let tap = outputs.mask_fill(padding, 0.0);
        Forward {
            output: linear(&self.head, relu(read)),
            taps: vec![Tap::new(tap_name(0), tap)],
        }
    }

    fn tap_names(&self) -> Vec<String> {
        vec![tap_name(0)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use untrainable_core::{Guide, check_taps, parameter_values, seed, to_vec};

    use untrainable_core::random_stream_lock as rng_lock;

    fn device() -> Device {
        Device::flex()
    }

    fn tiny_lm(layers: usize, initial_state: InitialState) -> RnnLmConfig {
        RnnLmConfig {
            vocab: 7,
            embedding: 3,
            hidden: 4,
            layers,
            initial_state,
        }
    }

    fn tiny_parity() -> ParityRnnConfig {
        ParityRnnConfig {
            hidden: 6,
            ..ParityRnnConfig::parity_paper()
        }
    }

    fn host(t: Tensor<2>) -> Vec<Vec<f32>> {
        let cols = t.dims()[1];
        to_vec(t).chunks(cols).map(<[f32]>::to_vec).collect()
    }

    fn host1(t: Tensor<1>) -> Vec<f32> {
        to_vec(t)
    }

    fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn lm_output_is_one_row_per_position_and_one_tap_per_layer() {
        let _rng = rng_lock();
        let device = device();
        let config = tiny_lm(3, InitialState::Zeros);
        let net = config.init(&device);
        let batch = TokenBatch::from_rows(&[vec![1, 2, 3, 4, 5], vec![6, 1]], 0, &device);
        let out = net.forward(batch);
        assert_eq!(out.output.dims(), [2 * 5, 7]);
        assert_eq!(out.taps.len(), 3);
        for tap in &out.taps {
            assert_eq!(tap.shape, vec![2, 5, 4]);
            assert_eq!(tap.value.dims(), [2, 5 * 4]);
        }
        let names: Vec<_> = out.taps.iter().map(|t| t.name.clone()).collect();
        assert_eq!(names, ["rnn0", "rnn1", "rnn2"]);
        check_taps(&net, &out, 2).unwrap();
    }

    #[test]
    fn parity_output_is_one_row_per_sequence_with_the_rnn_sequence_as_tap() {
        let _rng = rng_lock();
        let device = device();
        let net = tiny_parity().init(&device);
        let batch = TokenBatch::from_rows(&[vec![1, 0, 1], vec![0]], 2, &device);
        let out = net.forward(batch);
        assert_eq!(out.output.dims(), [2, 2]);
        assert_eq!(out.taps.len(), 1);
        assert_eq!(out.taps[0].name, "rnn0");
        assert_eq!(out.taps[0].shape, vec![2, 3, 6]);
        assert_eq!(net.tap_names(), ["rnn0"]);
    }

    #[test]
    fn parity_readout_and_tap_ignore_what_the_padding_holds() {
        let _rng = rng_lock();
        let device = device();
        let net = tiny_parity().init(&device);
        let rows_a = [vec![1, 0, 1, 1, 0], vec![0, 1], vec![1, 1, 0]];
        let a = TokenBatch::from_rows(&rows_a, 2, &device);
        // Same sequences, different junk past each length.
        let junk: Vec<i64> = vec![1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0];
        let b = TokenBatch {
            ids: Tensor::from_data(TensorData::new(junk, [3, 5]), &device),
            lengths: a.lengths.clone(),
        };
        let (fa, fb) = (net.forward(a), net.forward(b));
        assert_eq!(to_vec(fa.output.clone()), to_vec(fb.output));
        assert_eq!(
            to_vec(fa.taps[0].value.clone()),
            to_vec(fb.taps[0].value.clone())
        );
        // The readout really uses the last real position: a shorter length
        // with the same ids changes the output.
        let c = TokenBatch {
            ids: TokenBatch::from_rows(&rows_a, 2, &device).ids,
            lengths: vec![4, 2, 3],
        };
        let fc = net.forward(c);
        let (oa, oc) = (host(fa.output), host(fc.output));
        assert_ne!(oa[0], oc[0]);
        assert_eq!(oa[1..], oc[1..]);
    }

    #[test]
    fn lm_output_at_a_position_ignores_later_tokens() {
        let _rng = rng_lock();
        let device = device();
        let net = tiny_lm(3, InitialState::Zeros).init(&device);
        let a = TokenBatch::from_rows(&[vec![1, 2, 3, 4, 5, 6]], 0, &device);
        let b = TokenBatch::from_rows(&[vec![1, 2, 3, 6, 0, 2]], 0, &device);
        let (oa, ob) = (host(net.forward(a).output), host(net.forward(b).output));
        assert_eq!(oa[..3], ob[..3]);
        assert_ne!(oa[3], ob[3]);
    }

    #[test]
    fn released_code_initial_state_lets_later_tokens_reach_earlier_positions() {
        let _rng = rng_lock();
        let device = device();
        let net = tiny_lm(2, InitialState::PreviousFinal).init(&device);
        let a = TokenBatch::from_rows(&[vec![1, 2, 3, 4]], 0, &device);
        let b = TokenBatch::from_rows(&[vec![1, 2, 3, 5]], 0, &device);
        let (fa, fb) = (net.forward(a), net.forward(b));
        // The first layer is still causal; the second starts from the first
        // layer's final state and so already differs at position 0.
        let (a0, b0) = (
            host(fa.taps[0].value.clone()),
            host(fb.taps[0].value.clone()),
        );
        assert_eq!(a0[0][..3 * 4], b0[0][..3 * 4]);
        let (a1, b1) = (
            host(fa.taps[1].value.clone()),
            host(fb.taps[1].value.clone()),
        );
        assert_ne!(a1[0][..4], b1[0][..4]);
    }

    /// The recurrence recomputed on the host from the module's own weights.
    fn host_forward(net: &RnnLm, ids: &[i64]) -> (Vec<Vec<Vec<f32>>>, Vec<Vec<f32>>) {
        let embedding = host(net.embedding.weight.val());
        let mut xs: Vec<Vec<f32>> = ids.iter().map(|&i| embedding[i as usize].clone()).collect();
        let mut taps = Vec::new();
        let mut carried: Option<Vec<f32>> = None;
        for layer in net.layers() {
            let w_ih = host(layer.input_weight());
            let w_hh = host(layer.recurrent_weight());
            let (b_ih, b_hh) = layer.biases();
            let (b_ih, b_hh) = (host1(b_ih), host1(b_hh));
            let hidden = b_ih.len();
            let mut h = match net.initial_state() {
                InitialState::Zeros => vec![0.0; hidden],
                InitialState::PreviousFinal => carried.clone().unwrap_or(vec![0.0; hidden]),
            };
            let mut outs = Vec::new();
            for x in &xs {
                h = (0..hidden)
                    .map(|j| {
                        let from_x: f32 = x.iter().zip(&w_ih).map(|(xi, row)| xi * row[j]).sum();
                        let from_h: f32 = h.iter().zip(&w_hh).map(|(hi, row)| hi * row[j]).sum();
                        (from_x + b_ih[j] + from_h + b_hh[j]).tanh()
                    })
                    .collect();
                outs.push(h.clone());
            }
            carried = Some(h);
            xs = outs.clone();
            taps.push(outs);
        }
        let w = host(net.head.weight.val());
        let b = host1(net.head.bias.as_ref().unwrap().val());
        let logits = xs
            .iter()
            .map(|x| {
                (0..b.len())
                    .map(|v| x.iter().zip(&w).map(|(xi, row)| xi * row[v]).sum::<f32>() + b[v])
                    .collect()
            })
            .collect();
        (taps, logits)
    }

    #[test]
    fn recurrence_matches_a_host_computation_with_both_biases() {
        let _rng = rng_lock();
        let device = device();
        for initial_state in [InitialState::Zeros, InitialState::PreviousFinal] {
            seed(&device, 11);
            let net = tiny_lm(2, initial_state).init(&device);
            let ids = [3i64, 0, 6];
            let out = net.forward(TokenBatch::from_rows(&[ids.to_vec()], 0, &device));
            let (taps, logits) = host_forward(&net, &ids);
            for (tap, expected) in out.taps.iter().zip(&taps) {
                let got = to_vec(tap.value.clone());
                assert!(
                    close(&got, &expected.concat(), 1e-5),
                    "{initial_state:?}: {got:?} vs {expected:?}"
                );
            }
            let got = to_vec(out.output);
            assert!(close(&got, &logits.concat(), 1e-5), "{initial_state:?}");
        }
    }

    #[test]
    fn first_step_from_zeros_is_tanh_of_the_input_projection_plus_both_biases() {
        let _rng = rng_lock();
        let device = device();
        let layer = TanhRnn::new(2, 3, &device);
        let x = [0.5f32, -2.0];
        let (outputs, last) = layer.forward(
            Tensor::from_data(TensorData::new(x.to_vec(), [1, 1, 2]), &device),
            None,
        );
        let w = host(layer.input_weight());
        let (b_ih, b_hh) = layer.biases();
        let (b_ih, b_hh) = (host1(b_ih), host1(b_hh));
        let expected: Vec<f32> = (0..3)
            .map(|j| (x[0] * w[0][j] + x[1] * w[1][j] + b_ih[j] + b_hh[j]).tanh())
            .collect();
        assert!(close(&to_vec(outputs), &expected, 1e-6));
        assert!(close(&to_vec(last), &expected, 1e-6));
    }

    #[test]
    fn weights_start_in_pytorchs_rnn_range() {
        let _rng = rng_lock();
        let device = device();
        let layer = TanhRnn::new(16, 64, &device);
        let bound = 1.0 / 8.0;
        let (b_ih, b_hh) = layer.biases();
        let all = [
            to_vec(layer.input_weight()),
            to_vec(layer.recurrent_weight()),
            host1(b_ih),
            host1(b_hh),
        ]
        .concat();
        assert!(all.iter().all(|v| v.abs() <= bound));
        assert!(all.iter().any(|v| v.abs() > 0.9 * bound));
    }

    #[test]
    fn same_seed_gives_same_weights_and_another_seed_does_not() {
        let _rng = rng_lock();
        let device = device();
        let config = tiny_lm(2, InitialState::Zeros);
        let weights = |s| {
            seed(&device, s);
            parameter_values(&config.init(&device))
        };
        assert_eq!(weights(5), weights(5));
        assert_ne!(weights(5), weights(6));
        let parity = |s| {
            seed(&device, s);
            parameter_values(&tiny_parity().init(&device))
        };
        assert_eq!(parity(5), parity(5));
        assert_ne!(parity(5), parity(6));
    }

    #[test]
    fn parameter_count_from_the_config_matches_the_built_networks() {
        let _rng = rng_lock();
        let device = device();
        for config in [
            tiny_lm(1, InitialState::Zeros),
            tiny_lm(3, InitialState::PreviousFinal),
        ] {
            assert_eq!(config.init(&device).num_params(), config.num_params());
        }
        let config = tiny_parity();
        assert_eq!(config.init(&device).num_params(), config.num_params());
        // The paper's parity guide and copy-paste RNN are small enough to build.
        let config = ParityRnnConfig::parity_paper();
        assert_eq!(config.init(&device).num_params(), config.num_params());
        let config = RnnLmConfig::copy_paste_paper();
        assert_eq!(config.init(&device).num_params(), config.num_params());
    }

    #[test]
    fn paper_configs_have_the_papers_parameter_counts() {
        // docs/paper.md §3, counted as nn.RNN counts (both biases).
        let m = |n: usize| n as f64 / 1e6;
        assert_eq!(RnnLmConfig::copy_paste_paper().num_params(), 1_980_173);
        assert!((m(RnnLmConfig::copy_paste_paper().num_params()) - 2.0).abs() < 0.05);
        let small = RnnLmConfig::lm_paper(BERT_CASED_VOCAB, 4).num_params();
        let large = RnnLmConfig::lm_paper(BERT_CASED_VOCAB, 6).num_params();
        assert!((m(small) - 24.3).abs() < 0.05, "{small}");
        assert!((m(large) - 25.3).abs() < 0.05, "{large}");
        let parity = ParityRnnConfig::parity_paper().num_params();
        assert_eq!(parity, 265_739);
        assert!((m(parity) - 0.27).abs() < 0.005);
    }

    #[test]
    fn invalid_configs_are_refused_with_the_field_name() {
        let mut config = RnnLmConfig::copy_paste_paper();
        config.layers = 0;
        assert!(config.validate().unwrap_err().contains("rnn.layers"));
        let mut config = ParityRnnConfig::parity_paper();
        config.hidden = 0;
        assert!(config.validate().unwrap_err().contains("parity_rnn.hidden"));
        assert!(RnnLmConfig::copy_paste_cpu().validate().is_ok());
        assert!(ParityRnnConfig::parity_cpu().validate().is_ok());
    }

    #[test]
    fn frozen_guides_forward_like_the_networks_they_wrap() {
        let _rng = rng_lock();
        let device = device();
        let net = tiny_lm(2, InitialState::Zeros).init(&device.clone().autodiff());
        let batch = TokenBatch::from_rows(&[vec![1, 2, 3], vec![4]], 0, &device.clone().autodiff());
        let expected = to_vec(net.forward(batch.clone()).output);
        let guide = Guide::new(net);
        let out = guide.forward(batch);
        assert_eq!(out.taps.len(), 2);
        assert_eq!(to_vec(out.output), expected);

        let parity = tiny_parity().init(&device);
        let batch = TokenBatch::from_rows(&[vec![1, 0], vec![1]], 2, &device);
        let out = Guide::new(parity).forward(batch);
        assert_eq!(out.output.dims(), [2, 2]);
    }

    #[test]
    fn gradients_reach_every_recurrent_weight() {
        let _rng = rng_lock();
        let device = device().autodiff();
        let net = tiny_lm(2, InitialState::Zeros).init(&device);
        let batch = TokenBatch::from_rows(&[vec![1, 2, 3, 4]], 0, &device);
        let loss = net.forward(batch).output.powi_scalar(2).sum();
        let grads = loss.backward();
        for layer in net.layers() {
            let grad = layer
                .recurrent
                .weight
                .val()
                .grad(&grads)
                .expect("W_hh has a gradient");
            assert!(to_vec(grad).iter().any(|g| *g != 0.0));
        }
    }

    #[test]
    fn saved_networks_load_back_exactly() {
        let _rng = rng_lock();
        let device = device();
        let dir = tempfile::tempdir().unwrap();

        seed(&device, 1);
        let net = tiny_lm(2, InitialState::Zeros).init(&device);
        let path = dir.path().join("rnn-lm.bpk");
        net.clone().save_file(&path).unwrap();
        seed(&device, 2);
        let fresh = tiny_lm(2, InitialState::Zeros).init(&device);
        assert_ne!(parameter_values(&fresh), parameter_values(&net));
        let loaded = fresh.load_file(&path);
        assert_eq!(parameter_values(&loaded), parameter_values(&net));
        let batch = TokenBatch::from_rows(&[vec![1, 2, 3]], 0, &device);
        assert_eq!(
            to_vec(loaded.forward(batch.clone()).output),
            to_vec(net.forward(batch).output)
        );

        let parity = tiny_parity().init(&device);
        let path = dir.path().join("parity.bpk");
        parity.clone().save_file(&path).unwrap();
        let loaded = tiny_parity().init(&device).load_file(&path);
        assert_eq!(parameter_values(&loaded), parameter_values(&parity));
    }
}
