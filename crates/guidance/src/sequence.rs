//! The generated sequence tasks (docs/paper.md §2.2) as trainer [`Task`]s: examples
//! become right-padded [`TokenBatch`]es, and losses and scores count only
//! what the task scores.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use untrainable_core::TokenBatch;
use untrainable_results::Split;
use untrainable_tasks::copy_paste::CopyPaste;
use untrainable_tasks::parity::Parity;
use untrainable_tasks::sequence::{Split as DataSplit, SplitSizes};

use crate::task::{Score, Tally, Task};

/// The generated data's split of the loop's split (the tasks crate names
/// its own).
pub fn data_split(split: Split) -> DataSplit {
    match split {
        Split::Train => DataSplit::Train,
        Split::Val => DataSplit::Val,
        Split::Test => DataSplit::Test,
    }
}

/// Targets of a per-position task, aligned with the `(batch · time, vocab)`
/// output: one id and one weight (1 where scored, 0 elsewhere, padding
/// included) per row.
#[derive(Debug, Clone)]
pub struct TokenTargets {
    pub ids: Tensor<1, Int>,
    pub weights: Tensor<1>,
}

/// Negative log-likelihood of each row's target, `(rows,)`.
fn token_nll(output: Tensor<2>, ids: &Tensor<1, Int>) -> Tensor<1> {
    let rows = output.dims()[0];
    let log_p = log_softmax(output, 1);
    log_p
        .gather(1, ids.clone().reshape([rows, 1]))
        .reshape([rows])
        .neg()
}

/// Mean cross-entropy over the scored rows.
pub fn masked_cross_entropy(output: Tensor<2>, targets: &TokenTargets) -> Tensor<1> {
    let nll = token_nll(output, &targets.ids) * targets.weights.clone();
    nll.sum() / targets.weights.clone().sum().clamp_min(1.0)
}

/// Summed cross-entropy, correct argmax predictions and count of the scored rows.
pub fn masked_score(output: Tensor<2>, targets: &TokenTargets) -> Score {
    let predicted: Tensor<1, Int> = output.clone().argmax(1).flatten(0, 1);
    let hits = predicted.equal(targets.ids.clone()).float() * targets.weights.clone();
    let nll = token_nll(output, &targets.ids) * targets.weights.clone();
    Score {
        loss_sum: nll.sum().into_scalar::<f64>(),
        correct: hits.sum().into_scalar::<f64>(),
        counted: targets.weights.clone().sum().into_scalar::<f64>(),
        extra: Vec::new(),
        predictions: Vec::new(),
    }
}

/// Token ids drawn uniformly from `[0, vocab)`, `batch` sequences of `time`
/// tokens: the released code's noise for token inputs (docs/paper.md §2.4).
fn noise_tokens(batch: usize, time: usize, vocab: usize, device: &Device) -> TokenBatch {
    let ids = Tensor::<2>::random(
        [batch, time],
        Distribution::Uniform(0.0, vocab as f64),
        device,
    )
    .floor()
    .clamp(0.0, (vocab - 1) as f64)
    .int();
    TokenBatch {
        ids,
        lengths: vec![time; batch],
    }
}

/// Copy-paste: predict the copied digits; scored on the copied positions.
pub struct CopyPasteTask {
    pub task: CopyPaste,
    pub sizes: SplitSizes,
    /// Seed of the generated examples (not of the training run).
    pub data_seed: u64,
}

impl Task for CopyPasteTask {
    type Input = TokenBatch;
    type Targets = TokenTargets;

    fn len(&self, split: Split) -> usize {
        self.sizes.len(data_split(split))
    }

    fn batch(
        &self,
        split: Split,
        indices: &[usize],
        device: &Device,
    ) -> (TokenBatch, TokenTargets) {
        let start = self.sizes.indices(data_split(split)).start;
        let examples: Vec<_> = indices
            .iter()
            .map(|&i| self.task.example(self.data_seed, start + i as u64))
            .collect();
        let pad = self.task.pad_id();
        let rows: Vec<Vec<i64>> = examples.iter().map(|e| e.input.clone()).collect();
        let input = TokenBatch::from_rows(&rows, pad, device);
        let time = input.time();
        let (mut ids, mut weights) = (
            Vec::with_capacity(rows.len() * time),
            Vec::with_capacity(rows.len() * time),
        );
        for e in &examples {
            for t in 0..time {
                ids.push(e.target.get(t).copied().unwrap_or(pad));
                weights.push(if e.scored.get(t).copied().unwrap_or(false) {
                    1.0f32
                } else {
                    0.0
                });
            }
        }
        let n = ids.len();
        let targets = TokenTargets {
            ids: Tensor::from_data(TensorData::new(ids, [n]), device),
            weights: Tensor::from_data(TensorData::new(weights, [n]), device),
        };
        (input, targets)
    }

    fn noise(&self, batch_size: usize, device: &Device) -> TokenBatch {
        noise_tokens(
            batch_size,
            self.task.max_sequence_len(),
            self.task.vocab_size(),
            device,
        )
    }

    fn loss(&self, output: Tensor<2>, targets: &TokenTargets) -> Tensor<1> {
        masked_cross_entropy(output, targets)
    }

    fn score(&self, output: Tensor<2>, targets: &TokenTargets) -> Score {
        masked_score(output, targets)
    }
}

/// Metric names of parity accuracy on the strings of at most, and of more
/// than, the middle of the length range: a Transformer classifies short
/// strings well and fails on long ones (docs/regimes.md).
pub const SHORT_ACCURACY: &str = "accuracy_short";
pub const LONG_ACCURACY: &str = "accuracy_long";

/// Parity: classify a bit string by the parity of its ones. The loss is the
/// released code's binary cross-entropy on both logits against the one-hot
/// label; the score, argmax accuracy, over all strings and by length
/// ([`SHORT_ACCURACY`], [`LONG_ACCURACY`]).
pub struct ParityTask {
    pub task: Parity,
    pub sizes: SplitSizes,
    pub data_seed: u64,
}

/// The labels of a batch of bit strings, and each string's length.
#[derive(Debug, Clone)]
pub struct ParityTargets {
    pub labels: Tensor<1, Int>,
    pub lengths: Vec<usize>,
}

impl ParityTask {
    fn one_hot(labels: &Tensor<1, Int>, classes: usize) -> Tensor<2> {
        labels.clone().one_hot(classes).float()
    }

    /// Whether a string of `length` bits counts among the long ones.
    fn is_long(&self, length: usize) -> bool {
        2 * length > self.task.min_len + self.task.max_len
    }
}

impl Task for ParityTask {
    type Input = TokenBatch;
    type Targets = ParityTargets;

    fn len(&self, split: Split) -> usize {
        self.sizes.len(data_split(split))
    }

    fn batch(
        &self,
        split: Split,
        indices: &[usize],
        device: &Device,
    ) -> (TokenBatch, ParityTargets) {
        let start = self.sizes.indices(data_split(split)).start;
        let examples: Vec<_> = indices
            .iter()
            .map(|&i| self.task.example(self.data_seed, start + i as u64))
            .collect();
        let rows: Vec<Vec<i64>> = examples.iter().map(|e| e.bits.clone()).collect();
        let labels: Vec<i64> = examples.iter().map(|e| e.label as i64).collect();
        let n = labels.len();
        let targets = ParityTargets {
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
            lengths: rows.iter().map(Vec::len).collect(),
        };
        (
            TokenBatch::from_rows(&rows, self.task.pad_id(), device),
            targets,
        )
    }

    fn noise(&self, batch_size: usize, device: &Device) -> TokenBatch {
        noise_tokens(
            batch_size,
            self.task.max_len,
            self.task.vocab_size(),
            device,
        )
    }

    fn loss(&self, output: Tensor<2>, targets: &ParityTargets) -> Tensor<1> {
        let target = Self::one_hot(&targets.labels, output.dims()[1]);
        // BCE with logits, stable form: max(z, 0) − z·y + log(1 + e^−|z|).
        let per_logit = output.clone().clamp_min(0.0) - output.clone() * target
            + output.abs().neg().exp().log1p();
        per_logit.mean()
    }

    fn score(&self, output: Tensor<2>, targets: &ParityTargets) -> Score {
        let n = targets.lengths.len() as f64;
        let predicted: Tensor<1, Int> = output.clone().argmax(1).flatten(0, 1);
        let hits = predicted.equal(targets.labels.clone()).int().into_data();
        let hits = hits
            .convert::<i64>()
            .try_into_vec::<i64>()
            .expect("hits convert to i64");
        let mut by_length = [Tally::default(); 2];
        for (&length, &hit) in targets.lengths.iter().zip(&hits) {
            let tally = &mut by_length[usize::from(self.is_long(length))];
            tally.sum += hit as f64;
            tally.counted += 1.0;
        }
        Score {
            loss_sum: self.loss(output, targets).into_scalar::<f64>() * n,
            correct: hits.iter().sum::<i64>() as f64,
            counted: n,
            extra: by_length.to_vec(),
            predictions: Vec::new(),
        }
    }

    fn extra_metrics(&self) -> &'static [&'static str] {
        &[SHORT_ACCURACY, LONG_ACCURACY]
    }
}
