//! Language modelling (docs/paper.md §2.2) as a trainer [`Task`]: the windows of a
//! corpus's token streams ([`LmData`], [`LmStream::windows`]) are the
//! examples; every position predicts the next token; the loss is the mean
//! next-token cross-entropy and the score counts every token.
//!
//! # Word-level perplexity
//!
//! The paper reports word-level perplexity, `exp(total token NLL / words)`
//! (docs/paper.md §2.2). The trainer's [`evaluate`](crate::evaluate) gives the mean
//! token NLL over every window of a part, that is `total NLL / tokens` with
//! `tokens = windows · context`. The task knows how many tokens and words
//! its windows of each part score ([`LmTask::tokens`], [`LmTask::words`];
//! a word is counted in the window holding its first token, see
//! [`LmStream`]), so [`LmTask::perplexity`] turns that mean into both
//! perplexities exactly, and [`LmTask::perplexity_rows`] adds them to a
//! run's metric rows (`token_ppl`, `word_ppl`) next to every validation and
//! test `loss`. No change to [`Score`] or the training loop is needed.

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use untrainable_core::{Guide, Network, TokenBatch};
use untrainable_results::{MetricRow, Split};
use untrainable_tasks::ngram::KneserNeyTrigram;
use untrainable_tasks::sequence::Split as DataSplit;
use untrainable_tasks::sotu::{LmData, LmStream, Perplexity};

use crate::guide_table::GuideTapTable;
use crate::sequence::data_split;
use crate::sequence::{TokenTargets, masked_cross_entropy, masked_score};
use crate::task::{Score, Task};

/// Metric name of token-level perplexity, `exp(mean token NLL)`.
pub const TOKEN_PPL: &str = "token_ppl";
/// Metric name of word-level perplexity, `exp(total token NLL / words)`,
/// the paper's measure.
pub const WORD_PPL: &str = "word_ppl";

/// Arm name of the count-based anchor, an interpolated Kneser-Ney trigram
/// fitted on the training windows the networks read (docs/regimes.md).
pub const KNESER_NEY_ARM: &str = "kneser-ney";

/// How many windows of each split a run uses, spread evenly over the
/// split's stream; 0 takes every window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowCounts {
    pub train: usize,
    pub val: usize,
    pub test: usize,
}

impl WindowCounts {
    /// Every window of every split.
    pub fn all() -> Self {
        Self::default()
    }

    fn of(&self, split: DataSplit) -> usize {
        match split {
            DataSplit::Train => self.train,
            DataSplit::Val => self.val,
            DataSplit::Test => self.test,
        }
    }
}

fn index(split: DataSplit) -> usize {
    match split {
        DataSplit::Train => 0,
        DataSplit::Val => 1,
        DataSplit::Test => 2,
    }
}

/// `count` window indices out of `available`, evenly spaced from 0
/// (`⌊k · available / count⌋`), all of them when `count` is 0.
fn spread(count: usize, available: usize) -> Vec<usize> {
    if count == 0 || count >= available {
        return (0..available).collect();
    }
    (0..count).map(|k| k * available / count).collect()
}

/// Next-token prediction over the non-overlapping windows of `context`
/// tokens of each split's stream.
#[derive(Debug, Clone)]
pub struct LmTask {
    /// The token streams of train, validation and test.
    streams: [LmStream; 3],
    /// Token ids the networks read and predict.
    vocab_size: usize,
    pub context: usize,
    /// Window indices (into `streams[i].windows(context)`) of train, val, test.
    chosen: [Vec<usize>; 3],
    /// Words scored by the chosen windows of each split.
    words: [usize; 3],
}

impl LmTask {
    /// The task over `counts` windows of each split of `data`.
    ///
    /// # Errors
    /// As [`LmTask::from_streams`].
    pub fn new(data: LmData, context: usize, counts: WindowCounts) -> Result<Self, String> {
        let vocab_size = data.tokenizer.vocab_size();
        Self::from_streams(
            [data.train, data.val, data.test],
            vocab_size,
            context,
            counts,
        )
    }

    /// The task over `counts` windows of each of the train, validation and
    /// test `streams`, whose ids are below `vocab_size`.
    ///
    /// # Errors
    /// `context` is 0, a split has fewer windows than asked for, or no
    /// window at all.
    pub fn from_streams(
        streams: [LmStream; 3],
        vocab_size: usize,
        context: usize,
        counts: WindowCounts,
    ) -> Result<Self, String> {
        if context == 0 {
            return Err("lm.context must be at least 1".into());
        }
        let mut chosen: [Vec<usize>; 3] = Default::default();
        let mut words = [0; 3];
        for split in DataSplit::ALL {
            let windows = streams[index(split)].windows(context);
            let (asked, available) = (counts.of(split), windows.len());
            if available == 0 {
                return Err(format!(
                    "the {} split has {} tokens: not one window of lm.context = {context}",
                    split.name(),
                    streams[index(split)].tokens.len()
                ));
            }
            if asked > available {
                return Err(format!(
                    "windows.{} = {asked} but the {} split has only {available} windows of \
                     lm.context = {context} tokens; set windows.{} ≤ {available} (0 takes all)",
                    split.name(),
                    split.name(),
                    split.name()
                ));
            }
            let idx = spread(asked, available);
            words[index(split)] = idx.iter().map(|&i| windows.get(i).words).sum();
            chosen[index(split)] = idx;
        }
        Ok(Self {
            streams,
            vocab_size,
            context,
            chosen,
            words,
        })
    }

    /// Token ids the networks read and predict.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Tokens scored over all windows of `part`: `windows · context`.
    pub fn tokens(&self, split: Split) -> usize {
        self.chosen[index(data_split(split))].len() * self.context
    }

    /// Words whose first token is scored by a window of `part`.
    pub fn words(&self, split: Split) -> usize {
        self.words[index(data_split(split))]
    }

    /// The token stream of `split`.
    pub fn stream(&self, split: Split) -> &LmStream {
        &self.streams[index(data_split(split))]
    }

    /// Token- and word-level perplexity of `part` from its mean token NLL
    /// (natural log) over all its windows, as [`evaluate`](crate::evaluate)
    /// returns it.
    pub fn perplexity(&self, split: Split, mean_token_nll: f64) -> Perplexity {
        let tokens = self.tokens(split);
        Perplexity::new(mean_token_nll * tokens as f64, tokens, self.words(split))
    }

    /// Rows of [`TOKEN_PPL`] and [`WORD_PPL`] for every validation and test
    /// `loss` row of `rows` (which must come from this task), with the same
    /// experiment, arm, seed, step, epoch and split.
    pub fn perplexity_rows(&self, rows: &[MetricRow]) -> Vec<MetricRow> {
        let mut out = Vec::new();
        for row in rows.iter().filter(|r| r.metric == "loss") {
            if row.split == Split::Train {
                continue;
            }
            let split = row.split;
            let ppl = self.perplexity(split, row.value);
            for (metric, value) in [(TOKEN_PPL, ppl.token), (WORD_PPL, ppl.word)] {
                out.push(MetricRow {
                    metric: metric.into(),
                    value,
                    ..row.clone()
                });
            }
        }
        out
    }
}

impl LmTask {
    /// An interpolated Kneser-Ney trigram fitted on the chosen training
    /// windows, each read as its input followed by its last target: the
    /// tokens the networks learn from, and no others.
    pub fn kneser_ney(&self) -> KneserNeyTrigram {
        let windows = self.stream(Split::Train).windows(self.context);
        let chosen = &self.chosen[index(DataSplit::Train)];
        let sequences: Vec<Vec<u32>> = chosen
            .iter()
            .map(|&i| {
                let w = windows.get(i);
                let mut tokens = w.input.to_vec();
                tokens.push(w.target[self.context - 1]);
                tokens
            })
            .collect();
        KneserNeyTrigram::fit(self.vocab_size, sequences.iter().map(Vec::as_slice))
    }

    /// The `loss`, [`TOKEN_PPL`] and [`WORD_PPL`] of `model` on the
    /// validation and test windows, as arm [`KNESER_NEY_ARM`] of every seed
    /// in `seeds` (the model has no seed: each seed's arms compare with the
    /// same values).
    pub fn kneser_ney_rows(
        &self,
        model: &KneserNeyTrigram,
        experiment: &str,
        seeds: &[u64],
    ) -> Vec<MetricRow> {
        let mut out = Vec::new();
        for split in [Split::Val, Split::Test] {
            let windows = self.stream(split).windows(self.context);
            let total: f64 = self.chosen[index(data_split(split))]
                .iter()
                .map(|&i| {
                    let w = windows.get(i);
                    model.window_nll(w.input, w.target)
                })
                .sum();
            let mean = total / self.tokens(split) as f64;
            let ppl = self.perplexity(split, mean);
            for &seed in seeds {
                for (metric, value) in
                    [("loss", mean), (TOKEN_PPL, ppl.token), (WORD_PPL, ppl.word)]
                {
                    out.push(MetricRow {
                        experiment: experiment.into(),
                        arm: KNESER_NEY_ARM.into(),
                        seed,
                        step: 0,
                        epoch: None,
                        split,
                        metric: metric.into(),
                        value,
                    });
                }
            }
        }
        out
    }
}

impl Task for LmTask {
    type Input = TokenBatch;
    type Targets = TokenTargets;

    fn len(&self, split: Split) -> usize {
        self.chosen[index(data_split(split))].len()
    }

    /// Windows `indices` of `part`: inputs `(batch, context)`, targets the
    /// same tokens shifted by one, row `b · context + t`, every row scored.
    fn batch(
        &self,
        split: Split,
        indices: &[usize],
        device: &Device,
    ) -> (TokenBatch, TokenTargets) {
        let windows = self.stream(split).windows(self.context);
        let chosen = &self.chosen[index(data_split(split))];
        let n = indices.len() * self.context;
        let (mut rows, mut ids) = (Vec::with_capacity(indices.len()), Vec::with_capacity(n));
        for &i in indices {
            let w = windows.get(chosen[i]);
            rows.push(w.input.iter().map(|&t| t as i64).collect::<Vec<i64>>());
            ids.extend(w.target.iter().map(|&t| t as i64));
        }
        let targets = TokenTargets {
            ids: Tensor::from_data(TensorData::new(ids, [n]), device),
            weights: Tensor::ones([n], device),
        };
        // Every window is `context` long: nothing is padded.
        (TokenBatch::from_rows(&rows, 0, device), targets)
    }

    /// Token ids uniform over the vocabulary, `context` per sequence.
    fn noise(&self, batch_size: usize, device: &Device) -> TokenBatch {
        let vocab = self.vocab_size();
        let ids = Tensor::<2>::random(
            [batch_size, self.context],
            Distribution::Uniform(0.0, vocab as f64),
            device,
        )
        .floor()
        .clamp(0.0, (vocab - 1) as f64)
        .int();
        TokenBatch {
            ids,
            lengths: vec![self.context; batch_size],
        }
    }

    fn loss(&self, output: Tensor<2>, targets: &TokenTargets) -> Tensor<1> {
        masked_cross_entropy(output, targets)
    }

    fn score(&self, output: Tensor<2>, targets: &TokenTargets) -> Score {
        masked_score(output, targets)
    }

    /// Every window is a fixed, unpadded `context` tokens: an example's guide
    /// taps are the same in any batch.
    fn guide_table<G: Network<Input = TokenBatch>>(
        &self,
        guide: &Guide<G>,
        batch_size: usize,
        device: &Device,
    ) -> Option<GuideTapTable> {
        GuideTapTable::from_batches(guide, self.len(Split::Train), batch_size, |indices| {
            self.batch(Split::Train, indices, device).0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use untrainable_core::to_vec;
    use untrainable_tasks::sotu::{LmSplits, SplitFractions};
    use untrainable_tasks::tokenizer::SubwordTokenizer;

    const TEXTS: [&str; 6] = [
        "the cat sat on the mat and the dog sat on the log",
        "fellow citizens of the senate and the house of representatives",
        "the state of the union is strong and the year was good",
        "we the people in order to form a more perfect union",
        "a house divided against itself cannot stand",
        "ask not what your country can do for you",
    ];

    fn data() -> LmData {
        let tokenizer = SubwordTokenizer::train(&TEXTS[..4], 300);
        let stream = |idx: &[usize]| LmStream::build(&tokenizer, idx.iter().map(|&i| TEXTS[i]));
        LmData {
            splits: LmSplits {
                seed: 0,
                fractions: SplitFractions {
                    train: 4.0 / 6.0,
                    val: 1.0 / 6.0,
                    test: 1.0 / 6.0,
                },
                train: vec![0, 1, 2, 3],
                val: vec![4],
                test: vec![5],
            },
            train: stream(&[0, 1, 2, 3]),
            val: stream(&[4]),
            test: stream(&[5]),
            tokenizer,
        }
    }

    #[test]
    fn spread_is_even_and_takes_all_for_zero() {
        assert_eq!(spread(0, 5), vec![0, 1, 2, 3, 4]);
        assert_eq!(spread(9, 5), vec![0, 1, 2, 3, 4]);
        assert_eq!(spread(2, 10), vec![0, 5]);
        assert_eq!(spread(3, 10), vec![0, 3, 6]);
    }

    #[test]
    fn batches_are_windows_and_their_next_tokens() {
        let device = Device::flex();
        let task = LmTask::new(data(), 4, WindowCounts::all()).unwrap();
        let windows = task.stream(Split::Train).windows(4);
        assert_eq!(task.len(Split::Train), windows.len());
        let (input, targets) = task.batch(Split::Train, &[1, 0], &device);
        assert_eq!(input.ids.dims(), [2, 4]);
        assert_eq!(input.lengths, vec![4, 4]);
        let ids: Vec<i64> = input.ids.into_data().convert::<i64>().try_to_vec().unwrap();
        let want: Vec<i64> = [windows.get(1).input, windows.get(0).input]
            .concat()
            .iter()
            .map(|&t| t as i64)
            .collect();
        assert_eq!(ids, want);
        let next: Vec<i64> = targets
            .ids
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap();
        let want: Vec<i64> = [windows.get(1).target, windows.get(0).target]
            .concat()
            .iter()
            .map(|&t| t as i64)
            .collect();
        assert_eq!(next, want);
        assert!(to_vec(targets.weights).iter().all(|&w| w == 1.0));
        let noise = task.noise(3, &device);
        assert_eq!(noise.ids.dims(), [3, 4]);
    }

    #[test]
    fn counts_pick_evenly_spread_windows_and_their_words() {
        let full = LmTask::new(data(), 3, WindowCounts::all()).unwrap();
        let windows = full.stream(Split::Train).windows(3);
        assert_eq!(full.tokens(Split::Train), windows.scored_tokens());
        assert_eq!(full.words(Split::Train), windows.scored_words());
        let counts = WindowCounts {
            train: 2,
            val: 0,
            test: 1,
        };
        let task = LmTask::new(data(), 3, counts).unwrap();
        assert_eq!(task.len(Split::Train), 2);
        assert_eq!(task.tokens(Split::Train), 6);
        let half = windows.len() / 2;
        assert_eq!(
            task.words(Split::Train),
            windows.get(0).words + windows.get(half).words
        );
        assert_eq!(task.len(Split::Val), full.len(Split::Val));
        assert_eq!(task.len(Split::Test), 1);

        let too_many = WindowCounts {
            val: 1000,
            ..WindowCounts::all()
        };
        let err = LmTask::new(data(), 3, too_many).unwrap_err();
        assert!(err.contains("windows.val = 1000"), "{err}");
        let err = LmTask::new(data(), 10_000, WindowCounts::all()).unwrap_err();
        assert!(err.contains("not one window"), "{err}");
    }

    /// The test split's text is either one the trigram was fitted on or an
    /// unseen one.
    fn kneser_ney_test_ppl(test_text: usize) -> (f64, Vec<MetricRow>) {
        let mut data = data();
        data.test = LmStream::build(&data.tokenizer, [TEXTS[test_text]]);
        let task = LmTask::new(data, 3, WindowCounts::all()).unwrap();
        let rows = task.kneser_ney_rows(&task.kneser_ney(), "lm", &[0, 4]);
        let word = |split, seed| {
            rows.iter()
                .find(|r| r.split == split && r.seed == seed && r.metric == WORD_PPL)
                .unwrap()
                .value
        };
        assert_eq!(
            word(Split::Test, 0),
            word(Split::Test, 4),
            "a seedless model"
        );
        for split in [Split::Val, Split::Test] {
            let loss = rows
                .iter()
                .find(|r| r.split == split && r.metric == "loss")
                .unwrap()
                .value;
            let (tokens, words) = (task.tokens(split) as f64, task.words(split) as f64);
            assert!((word(split, 0) - (loss * tokens / words).exp()).abs() < 1e-9 * word(split, 0));
        }
        assert!(
            rows.iter()
                .all(|r| r.arm == KNESER_NEY_ARM && r.epoch.is_none())
        );
        (word(Split::Test, 0), rows)
    }

    #[test]
    fn the_kneser_ney_anchor_learns_the_training_windows_only() {
        let (seen, rows) = kneser_ney_test_ppl(0);
        let (unseen, _) = kneser_ney_test_ppl(5);
        assert_eq!(
            rows.len(),
            2 * 3 * 2,
            "val and test, three metrics, two seeds"
        );
        assert!(
            seen < 0.5 * unseen,
            "a training text at {seen}, an unseen one at {unseen}"
        );
    }

    #[test]
    fn perplexity_rows_follow_every_val_and_test_loss() {
        let task = LmTask::new(data(), 3, WindowCounts::all()).unwrap();
        let row = |split, metric: &str, value| MetricRow {
            experiment: "lm".into(),
            arm: "small/base".into(),
            seed: 2,
            step: 7,
            epoch: Some(1),
            split,
            metric: metric.into(),
            value,
        };
        let rows = vec![
            row(Split::Train, "loss", 9.0),
            row(Split::Val, "loss", 2.0),
            row(Split::Val, "accuracy", 0.5),
            row(Split::Test, "loss", 3.0),
        ];
        let ppl = task.perplexity_rows(&rows);
        assert_eq!(ppl.len(), 4);
        let (tokens, words) = (
            task.tokens(Split::Val) as f64,
            task.words(Split::Val) as f64,
        );
        assert_eq!(ppl[0].metric, TOKEN_PPL);
        assert!((ppl[0].value - 2f64.exp()).abs() < 1e-12);
        assert_eq!(ppl[1].metric, WORD_PPL);
        assert!((ppl[1].value - (2.0 * tokens / words).exp()).abs() < 1e-9);
        assert_eq!(
            (ppl[1].arm.as_str(), ppl[1].seed, ppl[1].step, ppl[1].epoch),
            ("small/base", 2, 7, Some(1))
        );
        let (tokens, words) = (
            task.tokens(Split::Test) as f64,
            task.words(Split::Test) as f64,
        );
        assert_eq!(ppl[3].split, Split::Test);
        assert!((ppl[3].value - (3.0 * tokens / words).exp()).abs() < 1e-9);
    }
}
