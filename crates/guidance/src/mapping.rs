//! Which target tap is aligned with which guide tap (docs/paper.md §1.4).

use serde::{Deserialize, Serialize};

/// One aligned pair of taps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    pub target: usize,
    pub guide: usize,
    pub target_name: String,
    pub guide_name: String,
}

impl Pair {
    /// Taps `target` and `guide` under the names `t{target}` and `g{guide}`.
    #[cfg(test)]
    pub(crate) fn of_indices(target: usize, guide: usize) -> Self {
        Self {
            target,
            guide,
            target_name: format!("t{target}"),
            guide_name: format!("g{guide}"),
        }
    }

    /// The metric under which the pair's CKA is logged:
    /// `cka/<target tap>/<guide tap>`, unique even where one target tap is
    /// aligned with two guide taps.
    pub fn metric_name(&self) -> String {
        format!("cka/{}/{}", self.target_name, self.guide_name)
    }
}

/// How pairs are chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairsConfig {
    /// Explicit `[target_tap, guide_tap]` names; empty means the uniform rule.
    #[serde(default)]
    pub explicit: Vec<[String; 2]>,
    /// The released code keys its scores by target layer, so when the guide
    /// has more taps than the target only the last guide tap mapped to each
    /// target tap survives. Off by default: the paper sums every pair.
    #[serde(default)]
    pub last_guide_wins: bool,
}

impl Default for PairsConfig {
    fn default() -> Self {
        Self {
            explicit: Vec::new(),
            last_guide_wins: false,
        }
    }
}

/// The paper's rule: guide tap `i` of `n_guide` goes to target tap
/// `round(i · (n_target − 1) / (n_guide − 1))`, rounding halves to even as
/// Python's `round` does, so the first taps and the last taps are paired.
/// Returns `(target, guide)` index pairs in guide order.
pub fn uniform_pairs(n_target: usize, n_guide: usize) -> Vec<(usize, usize)> {
    if n_target == 0 || n_guide == 0 {
        return Vec::new();
    }
    let step = if n_guide == 1 {
        1.0
    } else {
        (n_target - 1) as f64 / (n_guide - 1) as f64
    };
    (0..n_guide)
        .map(|i| {
            let t = ((i as f64) * step).round_ties_even() as usize;
            (t.min(n_target - 1), i)
        })
        .collect()
}

/// Resolves the configured pairs against the two networks' tap names, or says
/// which name does not exist and which names do.
pub fn resolve_pairs(
    config: &PairsConfig,
    target_taps: &[String],
    guide_taps: &[String],
) -> Result<Vec<Pair>, String> {
    let indices: Vec<(usize, usize)> = if config.explicit.is_empty() {
        uniform_pairs(target_taps.len(), guide_taps.len())
    } else {
        let find = |names: &[String], name: &str, side: &str| {
            names.iter().position(|n| n == name).ok_or_else(|| {
                format!(
                    "guidance.pairs.explicit names {side} tap `{name}`, which does not exist; \
                     the {side} taps are: {}",
                    names.join(", ")
                )
            })
        };
        config
            .explicit
            .iter()
            .map(|[t, g]| {
                Ok((
                    find(target_taps, t, "target")?,
                    find(guide_taps, g, "guide")?,
                ))
            })
            .collect::<Result<_, String>>()?
    };
    let indices = if config.last_guide_wins {
        let mut kept: Vec<(usize, usize)> = Vec::new();
        for (t, g) in indices {
            kept.retain(|(kt, _)| *kt != t);
            kept.push((t, g));
        }
        kept.sort();
        kept
    } else {
        indices
    };
    Ok(indices
        .into_iter()
        .map(|(target, guide)| Pair {
            target,
            guide,
            target_name: target_taps[target].clone(),
            guide_name: guide_taps[guide].clone(),
        })
        .collect())
}

/// Which of the experiment's pairs an arm guides (the layer ablations,
/// docs/paper.md §2.6), counted in guide-tap order (input side first). In TOML:
/// `pairs = "first-half"`, or `pairs = { evenly = 4 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PairSubset {
    /// The first ⌈n/2⌉ pairs.
    FirstHalf,
    /// The last ⌊n/2⌋ pairs (all of them when n = 1).
    SecondHalf,
    /// Pairs 0, 2, 4, …
    EveryOther,
    /// Only the last pair (the guide's deepest tap).
    Last,
    /// `k` pairs spread evenly from the first to the last by the uniform
    /// rule (the first alone when k = 1).
    Evenly(usize),
}

impl PairSubset {
    /// The selected pairs of `pairs`, in order.
    ///
    /// # Errors
    /// A subset with no pair, or more pairs asked for than there are.
    pub fn select(self, pairs: &[Pair]) -> Result<Vec<Pair>, String> {
        let n = pairs.len();
        let indices: Vec<usize> = match self {
            Self::FirstHalf => (0..n.div_ceil(2)).collect(),
            Self::SecondHalf if n == 1 => vec![0],
            Self::SecondHalf => (n.div_ceil(2)..n).collect(),
            Self::EveryOther => (0..n).step_by(2).collect(),
            Self::Last => (n.saturating_sub(1)..n).collect(),
            Self::Evenly(k) if k == 0 || k > n => {
                return Err(format!(
                    "pairs = {{ evenly = {k} }} asks for {k} of the {n} pairs; give 1 to {n}"
                ));
            }
            Self::Evenly(k) => uniform_pairs(n, k).into_iter().map(|(i, _)| i).collect(),
        };
        if indices.is_empty() {
            return Err(format!("pairs = {self:?} selects none of the {n} pairs"));
        }
        Ok(indices.into_iter().map(|i| pairs[i].clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn resnet18_to_deep_fcn_gives_the_target_indices_of_the_paper() {
        // docs/paper.md §1.4: 21 ResNet-18 taps onto 48 Linear taps.
        let targets: Vec<usize> = uniform_pairs(48, 21).into_iter().map(|(t, _)| t).collect();
        assert_eq!(
            targets,
            [
                0, 2, 5, 7, 9, 12, 14, 16, 19, 21, 24, 26, 28, 31, 33, 35, 38, 40, 42, 45, 47
            ]
        );
    }

    #[test]
    fn resnet18_to_wide_fcn_keeps_the_last_guide_tap_per_target_when_asked() {
        // docs/paper.md §1.4: Lin0←conv #5, Lin1←conv #14, Lin2←avgpool under the released code.
        let config = PairsConfig {
            last_guide_wins: true,
            ..Default::default()
        };
        let pairs = resolve_pairs(&config, &names("lin", 3), &names("g", 21)).unwrap();
        let got: Vec<(usize, usize)> = pairs.iter().map(|p| (p.target, p.guide)).collect();
        assert_eq!(got, [(0, 5), (1, 14), (2, 20)]);
        // By default every guide tap is kept.
        let all =
            resolve_pairs(&PairsConfig::default(), &names("lin", 3), &names("g", 21)).unwrap();
        assert_eq!(all.len(), 21);
    }

    #[test]
    fn metric_names_stay_unique_where_a_target_tap_has_two_guide_taps() {
        // 21 guide taps onto 20 target taps: one target tap gets two.
        let pairs =
            resolve_pairs(&PairsConfig::default(), &names("lin", 20), &names("g", 21)).unwrap();
        let mut targets: Vec<usize> = pairs.iter().map(|p| p.target).collect();
        targets.dedup();
        assert_eq!(targets.len(), 20);
        let mut metrics: Vec<String> = pairs.iter().map(Pair::metric_name).collect();
        metrics.sort();
        metrics.dedup();
        assert_eq!(metrics.len(), 21);
    }

    #[test]
    fn subsets_of_pairs_by_hand() {
        let pairs = resolve_pairs(&PairsConfig::default(), &names("t", 7), &names("g", 7)).unwrap();
        let picked = |s: PairSubset| -> Vec<usize> {
            s.select(&pairs).unwrap().iter().map(|p| p.guide).collect()
        };
        assert_eq!(picked(PairSubset::FirstHalf), [0, 1, 2, 3]);
        assert_eq!(picked(PairSubset::SecondHalf), [4, 5, 6]);
        assert_eq!(picked(PairSubset::EveryOther), [0, 2, 4, 6]);
        assert_eq!(picked(PairSubset::Last), [6]);
        assert_eq!(picked(PairSubset::Evenly(3)), [0, 3, 6]);
        assert_eq!(picked(PairSubset::Evenly(7)), [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(picked(PairSubset::Evenly(1)), [0]);
        // The halves split every pair between them, whatever n.
        for n in 1..6 {
            let pairs =
                resolve_pairs(&PairsConfig::default(), &names("t", n), &names("g", n)).unwrap();
            let first = PairSubset::FirstHalf.select(&pairs).unwrap();
            let second = PairSubset::SecondHalf.select(&pairs).unwrap();
            assert!(first.len() + second.len() >= n, "n = {n}");
            assert_eq!(first.last(), pairs.get(n.div_ceil(2) - 1));
            assert_eq!(second.last(), pairs.last());
        }
        let err = PairSubset::Evenly(8).select(&pairs).unwrap_err();
        assert!(
            err.contains("evenly = 8") && err.contains("1 to 7"),
            "{err}"
        );
        assert!(PairSubset::Evenly(0).select(&pairs).is_err());
    }

    #[test]
    fn subsets_read_from_toml() {
        #[derive(Deserialize)]
        struct Arm {
            pairs: PairSubset,
        }
        let read = |text: &str| toml::from_str::<Arm>(text).map(|a| a.pairs);
        assert_eq!(
            read("pairs = \"second-half\"").unwrap(),
            PairSubset::SecondHalf
        );
        assert_eq!(
            read("pairs = { evenly = 4 }").unwrap(),
            PairSubset::Evenly(4)
        );
        assert!(read("pairs = \"middle\"").is_err());
    }

    #[test]
    fn a_single_guide_tap_goes_to_the_first_target_tap() {
        assert_eq!(uniform_pairs(5, 1), [(0, 0)]);
    }

    #[test]
    fn explicit_pairs_are_resolved_by_name_and_unknown_names_are_refused() {
        let config = PairsConfig {
            explicit: vec![["lin2".into(), "g0".into()]],
            last_guide_wins: false,
        };
        let pairs = resolve_pairs(&config, &names("lin", 3), &names("g", 2)).unwrap();
        assert_eq!((pairs[0].target, pairs[0].guide), (2, 0));
        let bad = PairsConfig {
            explicit: vec![["lin9".into(), "g0".into()]],
            last_guide_wins: false,
        };
        let err = resolve_pairs(&bad, &names("lin", 3), &names("g", 2)).unwrap_err();
        assert!(
            err.contains("lin9") && err.contains("lin0, lin1, lin2"),
            "{err}"
        );
    }
}
