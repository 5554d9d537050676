//! An interpolated Kneser-Ney trigram model of a token stream: the
//! count-based anchor of the language-modelling experiment. A network
//! whose perplexity is above this baseline's on the same tokens has not
//! learnt the language yet, so the guidance claims are not measured on it
//! (docs/regimes.md).
//!
//! Each order discounts its counts by `D` and gives the mass freed to the
//! next lower order; the lower orders count contexts (in how many distinct
//! contexts a token follows) rather than occurrences, and the unigram is
//! interpolated with the uniform distribution, so every token of the
//! vocabulary keeps a non-zero probability.

use std::collections::HashMap;

/// The usual absolute discount of interpolated Kneser-Ney.
pub const DISCOUNT: f64 = 0.75;

/// Counts of a trigram model; see the module documentation.
#[derive(Debug, Clone)]
pub struct KneserNeyTrigram {
    vocab: usize,
    /// `c(u v w)`.
    trigrams: HashMap<(u32, u32, u32), u32>,
    /// Per `(u, v)`: `c(u v ·)` and the number of distinct `w` after it.
    trigram_contexts: HashMap<(u32, u32), (u32, u32)>,
    /// `N1+(· v w)`: distinct `u` before `v w`.
    bigram_continuations: HashMap<(u32, u32), u32>,
    /// Per `v`: `Σ_w N1+(· v w)` and the number of distinct `w` with a
    /// continuation.
    bigram_contexts: HashMap<u32, (u32, u32)>,
    /// `N1+(· w)`: distinct tokens before `w`.
    unigram_continuations: HashMap<u32, u32>,
    /// `Σ_w N1+(· w)`: distinct bigram types.
    bigram_types: u32,
}

impl KneserNeyTrigram {
    /// Counts the trigrams within each sequence (none spans two sequences)
    /// over tokens below `vocab`.
    ///
    /// # Panics
    /// If a token is not below `vocab`.
    pub fn fit<'a>(vocab: usize, sequences: impl IntoIterator<Item = &'a [u32]>) -> Self {
        let mut trigrams: HashMap<(u32, u32, u32), u32> = HashMap::new();
        let mut bigrams: HashMap<(u32, u32), u32> = HashMap::new();
        for sequence in sequences {
            assert!(
                sequence.iter().all(|&t| (t as usize) < vocab),
                "a token is outside the vocabulary of {vocab}"
            );
            for pair in sequence.windows(2) {
                *bigrams.entry((pair[0], pair[1])).or_default() += 1;
            }
            for triple in sequence.windows(3) {
                *trigrams
                    .entry((triple[0], triple[1], triple[2]))
                    .or_default() += 1;
            }
        }
        let mut trigram_contexts: HashMap<(u32, u32), (u32, u32)> = HashMap::new();
        let mut bigram_continuations: HashMap<(u32, u32), u32> = HashMap::new();
        for (&(u, v, w), &count) in &trigrams {
            let context = trigram_contexts.entry((u, v)).or_default();
            context.0 += count;
            context.1 += 1;
            *bigram_continuations.entry((v, w)).or_default() += 1;
        }
        let mut bigram_contexts: HashMap<u32, (u32, u32)> = HashMap::new();
        for (&(v, _), &continuations) in &bigram_continuations {
            let context = bigram_contexts.entry(v).or_default();
            context.0 += continuations;
            context.1 += 1;
        }
        let mut unigram_continuations: HashMap<u32, u32> = HashMap::new();
        for &(_, w) in bigrams.keys() {
            *unigram_continuations.entry(w).or_default() += 1;
        }
        KneserNeyTrigram {
            vocab,
            trigrams,
            trigram_contexts,
            bigram_continuations,
            bigram_contexts,
            unigram_continuations,
            bigram_types: bigrams.len() as u32,
        }
    }

    /// `P(w)`: continuation counts interpolated with the uniform distribution.
    fn unigram(&self, w: u32) -> f64 {
        let uniform = 1.0 / self.vocab as f64;
        if self.bigram_types == 0 {
            return uniform;
        }
        let total = f64::from(self.bigram_types);
        let count = f64::from(*self.unigram_continuations.get(&w).unwrap_or(&0));
        let seen = self.unigram_continuations.len() as f64;
        (count - DISCOUNT).max(0.0) / total + DISCOUNT * seen / total * uniform
    }

    /// `P(w | v)` from continuation counts, backing off to the unigram.
    fn bigram(&self, v: u32, w: u32) -> f64 {
        let Some(&(total, types)) = self.bigram_contexts.get(&v) else {
            return self.unigram(w);
        };
        let count = f64::from(*self.bigram_continuations.get(&(v, w)).unwrap_or(&0));
        let total = f64::from(total);
        (count - DISCOUNT).max(0.0) / total + DISCOUNT * f64::from(types) / total * self.unigram(w)
    }

    /// `P(w | u v)`, backing off to the bigram.
    fn trigram(&self, u: u32, v: u32, w: u32) -> f64 {
        let Some(&(total, types)) = self.trigram_contexts.get(&(u, v)) else {
            return self.bigram(v, w);
        };
        let count = f64::from(*self.trigrams.get(&(u, v, w)).unwrap_or(&0));
        let total = f64::from(total);
        (count - DISCOUNT).max(0.0) / total
            + DISCOUNT * f64::from(types) / total * self.bigram(v, w)
    }

    /// The probability of `w` after `history` (its last two tokens are
    /// used; fewer back off to the lower orders).
    pub fn probability(&self, history: &[u32], w: u32) -> f64 {
        match history {
            [] => self.unigram(w),
            [v] => self.bigram(*v, w),
            [.., u, v] => self.trigram(*u, *v, w),
        }
    }

    /// Summed negative log-likelihood (natural log) of a window that reads
    /// `input` and predicts `target[t]` at position `t`, with the history
    /// limited to the window as a network's is.
    pub fn window_nll(&self, input: &[u32], target: &[u32]) -> f64 {
        target
            .iter()
            .enumerate()
            .map(|(t, &w)| -self.probability(&input[t.saturating_sub(1)..=t], w).ln())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> KneserNeyTrigram {
        let text: [&[u32]; 2] = [&[0, 1, 2, 0, 1, 3, 0, 1, 2, 4], &[2, 2, 1, 0, 1, 2]];
        KneserNeyTrigram::fit(6, text)
    }

    #[test]
    fn every_history_gives_a_distribution_over_the_vocabulary() {
        let model = model();
        let histories: [&[u32]; 6] = [&[], &[1], &[5], &[0, 1], &[4, 4], &[2, 5]];
        for history in histories {
            let sum: f64 = (0..6).map(|w| model.probability(history, w)).sum();
            assert!((sum - 1.0).abs() < 1e-12, "history {history:?}: {sum}");
            assert!((0..6).all(|w| model.probability(history, w) > 0.0));
        }
    }

    #[test]
    fn trigram_probability_matches_the_formula_by_hand() {
        let model = model();
        // After (0, 1): "2" three times and "3" once (two types, four
        // tokens). With middle token 1 the trigrams are (0 1 2), (0 1 3) and
        // (2 1 0): each continuation seen after one distinct token, so the
        // bigram level after 1 has total 3 and 3 types.
        let unigram_2 = model.unigram(2);
        let bigram_2 = (1.0 - DISCOUNT) / 3.0 + DISCOUNT * 3.0 / 3.0 * unigram_2;
        let expected = (3.0 - DISCOUNT) / 4.0 + DISCOUNT * 2.0 / 4.0 * bigram_2;
        assert!((model.probability(&[0, 1], 2) - expected).abs() < 1e-12);
    }

    #[test]
    fn seen_continuations_beat_unseen_ones_and_windows_sum_positions() {
        let model = model();
        assert!(model.probability(&[0, 1], 2) > model.probability(&[0, 1], 4));
        let input = [0, 1, 2];
        let target = [1, 2, 0];
        let by_hand = -(model.probability(&[0], 1).ln()
            + model.probability(&[0, 1], 2).ln()
            + model.probability(&[1, 2], 0).ln());
        assert!((model.window_nll(&input, &target) - by_hand).abs() < 1e-12);
    }

    #[test]
    fn an_empty_model_is_uniform() {
        let model = KneserNeyTrigram::fit(4, std::iter::empty());
        assert_eq!(model.probability(&[1, 2], 3), 0.25);
    }
}
