//! What the generated sequence tasks share: examples addressed by a global
//! index, so that a set of any size streams without being held in memory,
//! and train / validation / test splits as disjoint index ranges.

use std::ops::Range;

/// One token-prediction example: the model reads `input` and is scored at
/// the positions where `scored` is true against `target` at the same
/// position (no shift: position `t` predicts `target[t]` from `input[..=t]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceExample {
    pub input: Vec<i64>,
    pub target: Vec<i64>,
    pub scored: Vec<bool>,
}

impl SequenceExample {
    pub fn len(&self) -> usize {
        self.input.len()
    }

    pub fn is_empty(&self) -> bool {
        self.input.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// The name used in results files (`train`, `val`, `test`).
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// How many generated examples each split has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitSizes {
    pub train: usize,
    pub val: usize,
    pub test: usize,
}

impl SplitSizes {
    pub fn total(&self) -> usize {
        self.train + self.val + self.test
    }

    pub fn len(&self, split: Split) -> usize {
        match split {
            Split::Train => self.train,
            Split::Val => self.val,
            Split::Test => self.test,
        }
    }

    /// The global example indices of a split: train first, then validation,
    /// then test, so no two splits share an example.
    pub fn indices(&self, split: Split) -> Range<u64> {
        let start = match split {
            Split::Train => 0,
            Split::Val => self.train,
            Split::Test => self.train + self.val,
        };
        start as u64..(start + self.len(split)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_indices_are_disjoint_and_cover_the_total() {
        let sizes = SplitSizes {
            train: 8,
            val: 3,
            test: 2,
        };
        let ranges: Vec<_> = Split::ALL.iter().map(|&s| sizes.indices(s)).collect();
        assert_eq!(ranges, vec![0..8, 8..11, 11..13]);
        let all: Vec<u64> = ranges.into_iter().flatten().collect();
        assert_eq!(all, (0..sizes.total() as u64).collect::<Vec<_>>());
    }
}
