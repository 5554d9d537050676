//! Language modelling through the trainer's path ([`LmTask`] + [`evaluate`])
//! on the real State of the Union corpus: a model that gives every token
//! the same probability has word-level perplexity `V^(tokens / words)`,
//! counted by hand from the corpus. Runs whenever the corpus can be found
//! (the usual search, or the workspace's `data/sotu/` from
//! `scripts/setup-data.sh`) and prints that it is skipped otherwise; set
//! `UNTRAINABLE_REQUIRE_DATA=1` to make absence a failure instead.

use burn::module::{Initializer, Module};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use untrainable_core::{Forward, Network, TokenBatch};
use untrainable_guidance::{LmTask, Split, Task, WindowCounts, data_split, evaluate};
use untrainable_tasks::sotu::{self, Sotu, SotuLm};
use untrainable_test_support::real_data_dir;

fn real() -> Option<Sotu> {
    let dir = real_data_dir(&sotu::SOURCE)?;
    let data = Sotu::load(Some(&dir));
    Some(data.unwrap_or_else(|e| panic!("the State of the Union corpus does not load: {e}")))
}

/// Logits of zero for every token at every position: probability 1/V each.
#[derive(Module, Debug)]
struct Uniform {
    head: Linear,
}

impl Uniform {
    fn new(vocab: usize, device: &Device) -> Self {
        Self {
            head: LinearConfig::new(1, vocab)
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }
}

impl Network for Uniform {
    type Input = TokenBatch;

    fn forward(&self, input: TokenBatch) -> Forward {
        let [batch, time] = input.ids.dims();
        let ones = Tensor::<2>::ones([batch * time, 1], &input.ids.device());
        Forward {
            output: self.head.forward(ones),
            taps: Vec::new(),
        }
    }

    fn tap_names(&self) -> Vec<String> {
        Vec::new()
    }
}

#[test]
fn uniform_model_word_perplexity_is_v_to_the_tokens_per_word() {
    let Some(corpus) = real() else { return };
    let device = Device::flex();
    let lm = SotuLm::smoke();
    let data = corpus.lm_data(&lm, 0, None).unwrap();
    let v = data.tokenizer.vocab_size();
    assert_eq!(v, lm.vocab_size);
    let model = Uniform::new(v, &device);
    let task = LmTask::new(data.clone(), lm.context, WindowCounts::all()).unwrap();
    for part in [Split::Val, Split::Test] {
        let (loss, _) = evaluate(&model, &task, part, 256, &device);
        let ppl = task.perplexity(part, loss);
        let split = data_split(part);
        // By hand, from the split's own stream: every scored token costs ln V.
        let stream = corpus.stream(&data.tokenizer, data.splits.indices(split));
        let windows = stream.windows(lm.context);
        let (tokens, words) = (windows.scored_tokens(), windows.scored_words());
        assert_eq!((task.tokens(part), task.words(part)), (tokens, words));
        assert!(
            words > 100_000 && tokens > words,
            "{tokens} tokens, {words} words"
        );
        let by_hand = (v as f64).powf(tokens as f64 / words as f64);
        eprintln!(
            "{}: {tokens} tokens, {words} words, uniform word ppl {:.1} (by hand {by_hand:.1})",
            split.name(),
            ppl.word
        );
        assert!((ppl.token - v as f64).abs() / (v as f64) < 1e-5, "{ppl:?}");
        assert!(
            (ppl.word - by_hand).abs() / by_hand < 1e-4,
            "{ppl:?} vs {by_hand}"
        );
    }

    // A slice of the windows: the words of exactly those windows count.
    let counts = WindowCounts {
        train: 64,
        val: 100,
        test: 7,
    };
    let sliced = LmTask::new(data.clone(), lm.context, counts).unwrap();
    let windows = data.val.windows(lm.context);
    let n = windows.len();
    let words: usize = (0..100).map(|k| windows.get(k * n / 100).words).sum();
    assert_eq!(sliced.len(Split::Val), 100);
    assert_eq!(sliced.words(Split::Val), words);
    let (loss, _) = evaluate(&model, &sliced, Split::Val, 64, &device);
    let by_hand = (v as f64).powf((100 * lm.context) as f64 / words as f64);
    let ppl = sliced.perplexity(Split::Val, loss);
    assert!(
        (ppl.word - by_hand).abs() / by_hand < 1e-4,
        "{ppl:?} vs {by_hand}"
    );
}
