//! The copy-paste task (docs/paper.md §2.2; the released code's `CopyPasteDataset`):
//! read `L` random digits, then a COPY token, then write the digits back.
//!
//! For `L` drawn uniformly from `[min_len, max_len]` (paper: 20..=40):
//!
//! ```text
//! position  0 .. L-1     L      L+1 .. 2L     2L+1
//! input     x_1 .. x_L   COPY   pad  .. pad   EOS
//! target    pad .. pad   pad    x_1  .. x_L   EOS
//! ```
//!
//! Input and target have the same length `2L + 2` and are aligned: the model
//! emits `x_j` at position `L + j` while reading a pad, from what it has read
//! so far. The vocabulary is the paper's 13 ids: digits 0–9, 10 (unused by
//! the paper), COPY = 11, EOS = 12.
//!
//! The released code draws a fresh example at every access, so its sets
//! change from epoch to epoch; here example `i` is fixed by `(seed, i)`.
//! Fresh examples per epoch are a different seed per epoch.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::batches::{Purpose, seeded_rng};
use crate::sequence::{SequenceExample, SplitSizes};

pub const DIGITS: i64 = 10;
pub const COPY: i64 = 11;
pub const EOS: i64 = 12;
pub const VOCAB: usize = 13;
/// The id the paper's vocabulary leaves free between the digits and COPY.
pub const DISTINCT_PAD: i64 = 10;
/// Examples the paper generates (train 80 %, see [`CopyPaste::splits`]).
pub const PAPER_SAMPLES: usize = 100_000;

/// Which id pads, and so which positions are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Padding {
    /// Pad with id 10, which no digit uses; exactly the `L` copied positions
    /// are scored. The default.
    #[default]
    Distinct,
    /// The released code: pad with 0, the id of digit 0, and score every
    /// position whose target is not 0 (`ignore_index=0`). Copied zeros are
    /// then never scored, and the trivial final EOS is.
    Paper,
}

/// The copy-paste task's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyPaste {
    pub min_len: usize,
    pub max_len: usize,
    pub padding: Padding,
}

impl Default for CopyPaste {
    fn default() -> Self {
        Self::paper()
    }
}

impl CopyPaste {
    /// `L` in 20..=40 (sequences of 42–82 tokens), with the distinct pad id.
    pub fn paper() -> Self {
        Self {
            min_len: 20,
            max_len: 40,
            padding: Padding::Distinct,
        }
    }

    pub fn vocab_size(&self) -> usize {
        VOCAB
    }

    pub fn pad_id(&self) -> i64 {
        match self.padding {
            Padding::Distinct => DISTINCT_PAD,
            Padding::Paper => 0,
        }
    }

    /// The longest sequence the task generates, `2 · max_len + 2`.
    pub fn max_sequence_len(&self) -> usize {
        2 * self.max_len + 2
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.min_len == 0 {
            return Err("copy_paste.min_len must be at least 1, got 0".into());
        }
        if self.min_len > self.max_len {
            return Err(format!(
                "copy_paste.min_len ({}) must not exceed copy_paste.max_len ({})",
                self.min_len, self.max_len
            ));
        }
        Ok(())
    }

    /// The released code's split of `samples`: 80 % train, the remaining
    /// 20 % as validation, and a test set as large as the validation set
    /// (docs/paper.md §2.2: 80k / 20k / 20k for 100k samples).
    pub fn splits(samples: usize) -> SplitSizes {
        let train = samples * 8 / 10;
        let val = samples - train;
        SplitSizes {
            train,
            val,
            test: val,
        }
    }

    /// Example `index`, fixed by `(seed, index)` alone.
    pub fn example(&self, seed: u64, index: u64) -> SequenceExample {
        let mut rng = seeded_rng(Purpose::CopyPaste, seed, index);
        let len = rng.random_range(self.min_len..=self.max_len);
        let digits: Vec<i64> = (0..len).map(|_| rng.random_range(0..DIGITS)).collect();
        let pad = self.pad_id();

        let mut input = digits.clone();
        input.push(COPY);
        input.extend(std::iter::repeat_n(pad, len));
        input.push(EOS);

        let mut target = vec![pad; len + 1];
        target.extend_from_slice(&digits);
        target.push(EOS);

        let scored = match self.padding {
            Padding::Distinct => (0..2 * len + 2).map(|t| t > len && t <= 2 * len).collect(),
            Padding::Paper => target.iter().map(|&id| id != 0).collect(),
        };
        SequenceExample {
            input,
            target,
            scored,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed_len(len: usize, padding: Padding) -> CopyPaste {
        CopyPaste {
            min_len: len,
            max_len: len,
            padding,
        }
    }

    #[test]
    fn a_two_digit_example_token_by_token() {
        let ex = fixed_len(2, Padding::Distinct).example(3, 0);
        let (a, b) = (ex.input[0], ex.input[1]);
        assert!((0..10).contains(&a) && (0..10).contains(&b));
        assert_eq!(ex.input, vec![a, b, 11, 10, 10, 12]);
        assert_eq!(ex.target, vec![10, 10, 10, a, b, 12]);
        assert_eq!(ex.scored, vec![false, false, false, true, true, false]);

        // The released code's padding: same draws, pad 0, target ≠ 0 scored.
        let ex = fixed_len(2, Padding::Paper).example(3, 0);
        assert_eq!(ex.input, vec![a, b, 11, 0, 0, 12]);
        assert_eq!(ex.target, vec![0, 0, 0, a, b, 12]);
        assert_eq!(ex.scored, vec![false, false, false, a != 0, b != 0, true]);
    }

    #[test]
    fn every_example_has_the_copy_paste_layout() {
        let task = CopyPaste::paper();
        for i in 0..200 {
            let ex = task.example(7, i);
            let n = ex.len();
            let len = (n - 2) / 2;
            assert_eq!(n, 2 * len + 2);
            assert_eq!(ex.target.len(), n);
            assert_eq!(ex.scored.len(), n);
            assert!(ex.input[..len].iter().all(|&d| (0..DIGITS).contains(&d)));
            assert_eq!(ex.input[len], COPY);
            assert!(
                ex.input[len + 1..=2 * len]
                    .iter()
                    .all(|&p| p == DISTINCT_PAD)
            );
            assert_eq!(ex.input[n - 1], EOS);
            assert_eq!(ex.target[len + 1..=2 * len], ex.input[..len]);
            assert!(ex.target[..=len].iter().all(|&p| p == DISTINCT_PAD));
            assert_eq!(ex.target[n - 1], EOS);
            let scored: Vec<usize> = (0..n).filter(|&t| ex.scored[t]).collect();
            assert_eq!(scored, (len + 1..=2 * len).collect::<Vec<_>>());
        }
    }

    #[test]
    fn paper_padding_scores_exactly_the_nonzero_targets() {
        let task = CopyPaste {
            padding: Padding::Paper,
            ..CopyPaste::paper()
        };
        assert_eq!(task.pad_id(), 0);
        for i in 0..100 {
            let ex = task.example(1, i);
            let len = (ex.len() - 2) / 2;
            assert!(ex.input[len + 1..=2 * len].iter().all(|&p| p == 0));
            let expected: Vec<bool> = ex.target.iter().map(|&t| t != 0).collect();
            assert_eq!(ex.scored, expected);
            assert!(ex.scored[ex.len() - 1], "EOS is scored in the paper's code");
        }
    }

    #[test]
    fn the_same_seed_and_index_give_the_same_example_and_others_differ() {
        let task = CopyPaste::paper();
        assert_eq!(task.example(4, 17), task.example(4, 17));
        assert!((0..20).all(|i| task.example(5, i) != task.example(4, i)));
        assert_ne!(task.example(4, 0), task.example(4, 1));
    }

    #[test]
    fn lengths_and_digits_cover_their_whole_ranges_and_stay_inside() {
        let task = CopyPaste::paper();
        let mut seen_len = [false; 41];
        let mut seen_digit = [false; 10];
        for i in 0..2000 {
            let ex = task.example(0, i);
            let len = (ex.len() - 2) / 2;
            assert!((20..=40).contains(&len), "length {len}");
            seen_len[len] = true;
            for &d in &ex.input[..len] {
                seen_digit[d as usize] = true;
            }
        }
        assert!(seen_len[20..].iter().all(|&s| s));
        assert!(seen_digit.iter().all(|&s| s));
        assert_eq!(task.max_sequence_len(), 82);
    }

    #[test]
    fn paper_split_sizes_and_vocabulary() {
        let sizes = CopyPaste::splits(PAPER_SAMPLES);
        assert_eq!(
            (sizes.train, sizes.val, sizes.test),
            (80_000, 20_000, 20_000)
        );
        let task = CopyPaste::paper();
        assert_eq!(task.vocab_size(), 13);
        assert_eq!(task.pad_id(), 10);
        assert!(task.pad_id() != COPY && task.pad_id() != EOS);
    }

    #[test]
    fn invalid_lengths_are_refused_with_the_field_name() {
        let task = CopyPaste {
            min_len: 5,
            max_len: 4,
            ..CopyPaste::paper()
        };
        assert!(task.validate().unwrap_err().contains("copy_paste.min_len"));
        let task = CopyPaste {
            min_len: 0,
            ..CopyPaste::paper()
        };
        assert!(task.validate().unwrap_err().contains("copy_paste.min_len"));
        assert!(CopyPaste::paper().validate().is_ok());
    }
}
