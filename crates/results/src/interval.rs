//! Differences between two arms over seeds. Arms of one seed start from the
//! same initial weights and see the same batches, so their difference is
//! measured per seed and the interval is that of the mean of the paired
//! differences (Student's t, two-sided 95 %), narrower than one built from
//! two independent means when the seeds' own spread is shared.

use std::collections::BTreeMap;

use crate::{MetricRow, Split, mean_sd};

/// The mean of `treated − control` over the seeds both have, and its 95 %
/// interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedDifference {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    /// Seeds with both arms.
    pub pairs: usize,
}

impl PairedDifference {
    /// The paired difference of two arms' values by seed; `None` with
    /// fewer than two common seeds (no interval exists).
    pub fn of(treated: &BTreeMap<u64, f64>, control: &BTreeMap<u64, f64>) -> Option<Self> {
        let differences: Vec<f64> = treated
            .iter()
            .filter_map(|(seed, t)| control.get(seed).map(|c| t - c))
            .collect();
        let pairs = differences.len();
        if pairs < 2 {
            return None;
        }
        let (mean, sd) = mean_sd(&differences);
        let half = t_975(pairs - 1) * sd / (pairs as f64).sqrt();
        Some(Self {
            mean,
            low: mean - half,
            high: mean + half,
            pairs,
        })
    }

    /// Whether the interval lies wholly above (1), wholly below (−1) or
    /// across 0 (0).
    pub fn sign(&self) -> i8 {
        if self.low > 0.0 {
            1
        } else if self.high < 0.0 {
            -1
        } else {
            0
        }
    }

    /// `+1.23 [0.45, 2.01]` after multiplying by `scale`.
    pub fn shown(&self, scale: f64) -> String {
        format!(
            "{:+.2} [{:.2}, {:.2}]",
            self.mean * scale,
            self.low * scale,
            self.high * scale
        )
    }
}

/// The last test value of `metric` of `arm` per seed.
pub fn test_values_by_seed(rows: &[MetricRow], arm: &str, metric: &str) -> BTreeMap<u64, f64> {
    rows.iter()
        .filter(|r| r.arm == arm && r.split == Split::Test && r.metric == metric)
        .map(|r| (r.seed, r.value))
        .collect()
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom (the
/// usual table's values; the normal's 1.96 beyond 30).
fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    TABLE.get(df.wrapping_sub(1)).copied().unwrap_or(1.96)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_seed(values: &[(u64, f64)]) -> BTreeMap<u64, f64> {
        values.iter().copied().collect()
    }

    #[test]
    fn the_interval_is_the_t_interval_of_the_paired_differences() {
        // Differences 1, 2, 3 on seeds 0-2 (seed 3 has no control): mean 2,
        // sd 1, half-width 4.303 / √3.
        let treated = by_seed(&[(0, 11.0), (1, 22.0), (2, 33.0), (3, 99.0)]);
        let control = by_seed(&[(0, 10.0), (1, 20.0), (2, 30.0)]);
        let d = PairedDifference::of(&treated, &control).unwrap();
        let half = 4.303 / 3f64.sqrt();
        assert_eq!(d.pairs, 3);
        assert!((d.mean - 2.0).abs() < 1e-12);
        assert!((d.low - (2.0 - half)).abs() < 1e-12 && (d.high - (2.0 + half)).abs() < 1e-12);
        assert_eq!(d.sign(), 0, "2 ± 2.48 crosses 0");
        assert_eq!(d.shown(1.0), "+2.00 [-0.48, 4.48]");
    }

    #[test]
    fn pairing_removes_the_spread_the_seeds_share() {
        // The seeds differ by 10s of points, the arms by 1 ± 0.1 on each.
        let control = by_seed(&[(0, 50.0), (1, 70.0), (2, 30.0), (3, 60.0)]);
        let treated = by_seed(&[(0, 51.0), (1, 71.1), (2, 30.9), (3, 61.0)]);
        let d = PairedDifference::of(&treated, &control).unwrap();
        assert_eq!(d.sign(), 1, "{d:?}");
        let (_, sd) = mean_sd(&control.values().copied().collect::<Vec<_>>());
        assert!(d.high - d.low < sd / 10.0);
        assert!(PairedDifference::of(&by_seed(&[(0, 1.0)]), &by_seed(&[(0, 0.0)])).is_none());
        assert!((t_975(4) - 2.776).abs() < 1e-12 && t_975(100) == 1.96);
    }
}
