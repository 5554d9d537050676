//! The parity task (docs/paper.md §2.2; the released code's `ParityDataset`): a bit
//! string of length drawn uniformly from `[min_len, max_len]` (paper:
//! 2..=50), labelled with its number of ones mod 2. Batches are right-padded
//! with id 2, so the vocabulary is {0, 1, pad}.
//!
//! As for copy-paste, example `i` is fixed by `(seed, i)`, whereas the
//! released code draws afresh at every access.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::batches::{Purpose, seeded_rng};
use crate::sequence::SplitSizes;

pub const PAD: i64 = 2;
pub const VOCAB: usize = 3;
pub const CLASSES: usize = 2;
/// Examples the paper generates, split 80/10/10.
pub const PAPER_SAMPLES: usize = 100_000;

/// One bit string and its parity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParityExample {
    /// Ids 0 and 1, unpadded.
    pub bits: Vec<i64>,
    /// 1 when the number of ones is odd.
    pub label: usize,
}

/// The parity task's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parity {
    pub min_len: usize,
    pub max_len: usize,
}

impl Default for Parity {
    fn default() -> Self {
        Self::paper()
    }
}

impl Parity {
    pub fn paper() -> Self {
        Self {
            min_len: 2,
            max_len: 50,
        }
    }

    pub fn vocab_size(&self) -> usize {
        VOCAB
    }

    pub fn pad_id(&self) -> i64 {
        PAD
    }

    pub fn classes(&self) -> usize {
        CLASSES
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.min_len == 0 {
            return Err("parity.min_len must be at least 1, got 0".into());
        }
        if self.min_len > self.max_len {
            return Err(format!(
                "parity.min_len ({}) must not exceed parity.max_len ({})",
                self.min_len, self.max_len
            ));
        }
        Ok(())
    }

    /// The released code's split: 80 % train, 10 % validation, the rest test.
    pub fn splits(samples: usize) -> SplitSizes {
        let train = samples * 8 / 10;
        let val = samples / 10;
        SplitSizes {
            train,
            val,
            test: samples - train - val,
        }
    }

    /// Example `index`, fixed by `(seed, index)` alone.
    pub fn example(&self, seed: u64, index: u64) -> ParityExample {
        let mut rng = seeded_rng(Purpose::Parity, seed, index);
        let len = rng.random_range(self.min_len..=self.max_len);
        let bits: Vec<i64> = (0..len).map(|_| rng.random_range(0..2)).collect();
        let ones = bits.iter().filter(|&&b| b == 1).count();
        ParityExample {
            bits,
            label: ones % 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequence::Split;

    #[test]
    fn labels_are_the_parity_of_the_bits() {
        let task = Parity::paper();
        let mut labels = [0usize; 2];
        for i in 0..2000 {
            let ex = task.example(9, i);
            assert!(ex.bits.iter().all(|&b| b == 0 || b == 1));
            // Recomputed as a running XOR, independently of the generator.
            let parity = ex.bits.iter().fold(0i64, |acc, &b| acc ^ b) as usize;
            assert_eq!(ex.label, parity);
            labels[ex.label] += 1;
        }
        // Both classes are common (each is exactly half in expectation).
        assert!(labels.iter().all(|&n| n > 900), "{labels:?}");
    }

    #[test]
    fn lengths_cover_the_whole_range_and_stay_inside() {
        let task = Parity::paper();
        let mut seen = [false; 51];
        for i in 0..3000 {
            let len = task.example(0, i).bits.len();
            assert!((2..=50).contains(&len), "length {len}");
            seen[len] = true;
        }
        assert!(seen[2..].iter().all(|&s| s));
    }

    #[test]
    fn the_same_seed_and_index_give_the_same_example_and_others_differ() {
        let task = Parity::paper();
        assert_eq!(task.example(2, 40), task.example(2, 40));
        // Short strings can coincide by chance; most must differ.
        let differ = (0..50)
            .filter(|&i| task.example(2, i) != task.example(3, i))
            .count();
        assert!(differ >= 45, "{differ}");
        // The copy-paste stream of the same seed is a different stream.
        let copy_lengths: Vec<u64> = (0..20)
            .map(|i| seeded_rng(Purpose::CopyPaste, 2, i).random_range(2..=50))
            .collect();
        let parity_lengths: Vec<u64> = (0..20)
            .map(|i| task.example(2, i).bits.len() as u64)
            .collect();
        assert_ne!(copy_lengths, parity_lengths);
    }

    #[test]
    fn paper_splits_are_80_10_10_and_disjoint() {
        let sizes = Parity::splits(PAPER_SAMPLES);
        assert_eq!(
            (sizes.train, sizes.val, sizes.test),
            (80_000, 10_000, 10_000)
        );
        // An uneven total leaves the remainder to the test split, as the
        // released code does.
        let sizes = Parity::splits(1001);
        assert_eq!((sizes.train, sizes.val, sizes.test), (800, 100, 101));
        let train = sizes.indices(Split::Train);
        let val = sizes.indices(Split::Val);
        let test = sizes.indices(Split::Test);
        assert!(train.end <= val.start && val.end <= test.start);
        assert_eq!(test.end, 1001);
    }

    #[test]
    fn vocabulary_pad_and_validation() {
        let task = Parity::paper();
        assert_eq!(
            (task.vocab_size(), task.pad_id(), task.classes()),
            (3, 2, 2)
        );
        assert!(task.validate().is_ok());
        let bad = Parity {
            min_len: 10,
            max_len: 3,
        };
        assert!(bad.validate().unwrap_err().contains("parity.min_len"));
    }
}
