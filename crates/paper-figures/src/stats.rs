//! Reductions from tidy metric rows to the curves a figure draws: the mean
//! over seeds and its sample standard deviation at each x.
//!
//! Each seed is first reduced to one value per x (the mean of its rows
//! there), so a seed that logs more often does not weigh more. Non-finite
//! values (a seed that diverged) are left out; the summary file's `status`
//! column records the divergence.

use std::collections::BTreeMap;

use untrainable_results::{MetricRow, mean_sd};

/// The spread over seeds at one x.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub x: f64,
    pub mean: f64,
    /// Sample standard deviation (n - 1); 0 with a single seed.
    pub sd: f64,
    /// How many seeds had a finite value at this x.
    pub seeds: usize,
}

/// Groups the rows of `arm` that pass `filter` by the key `x` returns (rows
/// where it returns `None` are skipped), and gives per key the mean and sd
/// over seeds, in increasing key order. The band's x is the key.
pub fn mean_sd_by_x(
    rows: &[MetricRow],
    arm: &str,
    filter: impl Fn(&MetricRow) -> bool,
    x: impl Fn(&MetricRow) -> Option<u64>,
) -> Vec<Band> {
    // key -> seed -> (sum, count)
    let mut groups: BTreeMap<u64, BTreeMap<u64, (f64, usize)>> = BTreeMap::new();
    for row in rows
        .iter()
        .filter(|r| r.arm == arm && r.value.is_finite() && filter(r))
    {
        if let Some(key) = x(row) {
            let cell = groups
                .entry(key)
                .or_default()
                .entry(row.seed)
                .or_insert((0.0, 0));
            cell.0 += row.value;
            cell.1 += 1;
        }
    }
    groups
        .into_iter()
        .map(|(key, seeds)| {
            let per_seed: Vec<f64> = seeds
                .values()
                .map(|(sum, count)| sum / *count as f64)
                .collect();
            let (mean, sd) = mean_sd(&per_seed);
            Band {
                x: key as f64,
                mean,
                sd,
                seeds: per_seed.len(),
            }
        })
        .collect()
}

/// Consecutive bins of equal width over a range of steps, used to smooth
/// per-step curves before averaging over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepBins {
    pub first: u64,
    pub last: u64,
    pub width: u64,
}

impl StepBins {
    /// About `bins` bins over the steps of the rows that pass `filter`
    /// (every arm, so that all arms share the bins); `None` without rows.
    pub fn spanning(
        rows: &[MetricRow],
        filter: impl Fn(&MetricRow) -> bool,
        bins: u64,
    ) -> Option<Self> {
        let steps = rows.iter().filter(|r| filter(r)).map(|r| r.step);
        let (first, last) = steps.fold(None, |acc: Option<(u64, u64)>, s| match acc {
            None => Some((s, s)),
            Some((lo, hi)) => Some((lo.min(s), hi.max(s))),
        })?;
        let span = last - first + 1;
        Some(Self {
            first,
            last,
            width: span.div_ceil(bins.max(1)),
        })
    }

    /// The bin of `step`.
    pub fn key(&self, step: u64) -> u64 {
        step.saturating_sub(self.first) / self.width
    }

    /// The middle of the steps the bin covers (the last bin may be short).
    pub fn centre(&self, key: u64) -> f64 {
        let start = self.first + key * self.width;
        let end = (start + self.width - 1).min(self.last);
        (start as f64 + end as f64) / 2.0
    }
}

/// [`mean_sd_by_x`] over step bins: each seed's values are averaged within a
/// bin, then mean and sd are taken over seeds; x is the bin's centre step.
pub fn binned_mean_sd(
    rows: &[MetricRow],
    arm: &str,
    filter: impl Fn(&MetricRow) -> bool,
    bins: &StepBins,
) -> Vec<Band> {
    mean_sd_by_x(rows, arm, filter, |r| Some(bins.key(r.step)))
        .into_iter()
        .map(|b| Band {
            x: bins.centre(b.x as u64),
            ..b
        })
        .collect()
}

/// Arm names in order of first appearance, which is the order the
/// experiment ran them in.
pub fn arms_in_order(rows: &[MetricRow]) -> Vec<String> {
    let mut arms: Vec<String> = Vec::new();
    for row in rows {
        if !arms.iter().any(|a| *a == row.arm) {
            arms.push(row.arm.clone());
        }
    }
    arms
}

/// The number of distinct seeds of each arm, in the order of `arms`.
pub fn seeds_per_arm(rows: &[MetricRow], arms: &[String]) -> Vec<usize> {
    arms.iter()
        .map(|arm| {
            let mut seeds: Vec<u64> = rows
                .iter()
                .filter(|r| r.arm == *arm)
                .map(|r| r.seed)
                .collect();
            seeds.sort_unstable();
            seeds.dedup();
            seeds.len()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use untrainable_results::Split;

    fn row(arm: &str, seed: u64, step: u64, epoch: Option<u32>, value: f64) -> MetricRow {
        MetricRow {
            experiment: "t".into(),
            arm: arm.into(),
            seed,
            step,
            epoch,
            split: Split::Val,
            metric: "loss".into(),
            value,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn mean_sd_by_x_averages_within_seed_then_across_seeds() {
        let rows = vec![
            // epoch 1: seed 0 has two rows (mean 1.0), seed 1 has 3.0.
            row("a", 0, 10, Some(1), 0.5),
            row("a", 0, 11, Some(1), 1.5),
            row("a", 1, 10, Some(1), 3.0),
            // epoch 2: only seed 0.
            row("a", 0, 20, Some(2), 7.0),
            // Another arm, a per-step row and a diverged value: all left out.
            row("b", 0, 10, Some(1), 100.0),
            row("a", 1, 12, None, 100.0),
            row("a", 1, 20, Some(2), f64::NAN),
        ];
        let bands = mean_sd_by_x(&rows, "a", |_| true, |r| r.epoch.map(u64::from));
        assert_eq!(bands.len(), 2);
        // Seed means 1.0 and 3.0: mean 2, sample sd sqrt(((1)^2 + (1)^2) / 1) = sqrt 2.
        assert_eq!(bands[0].x, 1.0);
        assert!(
            close(bands[0].mean, 2.0) && close(bands[0].sd, 2f64.sqrt()),
            "{:?}",
            bands[0]
        );
        assert_eq!(bands[0].seeds, 2);
        assert_eq!(
            bands[1],
            Band {
                x: 2.0,
                mean: 7.0,
                sd: 0.0,
                seeds: 1
            }
        );
    }

    #[test]
    fn filter_selects_rows() {
        let rows = vec![row("a", 0, 1, Some(1), 1.0), row("a", 0, 1, Some(1), 5.0)];
        let bands = mean_sd_by_x(&rows, "a", |r| r.value > 2.0, |r| r.epoch.map(u64::from));
        assert_eq!(
            bands,
            vec![Band {
                x: 1.0,
                mean: 5.0,
                sd: 0.0,
                seeds: 1
            }]
        );
    }

    #[test]
    fn step_bins_cover_the_range_and_centre_short_last_bin() {
        let rows: Vec<MetricRow> = (0..=9).map(|s| row("a", 0, s, None, s as f64)).collect();
        let bins = StepBins::spanning(&rows, |_| true, 4).unwrap();
        // 10 steps in 4 bins → width 3: [0,2] [3,5] [6,8] [9].
        assert_eq!(
            bins,
            StepBins {
                first: 0,
                last: 9,
                width: 3
            }
        );
        assert_eq!((bins.key(0), bins.key(5), bins.key(9)), (0, 1, 3));
        assert_eq!((bins.centre(0), bins.centre(3)), (1.0, 9.0));
        let bands = binned_mean_sd(&rows, "a", |_| true, &bins);
        let xs: Vec<f64> = bands.iter().map(|b| b.x).collect();
        let means: Vec<f64> = bands.iter().map(|b| b.mean).collect();
        assert_eq!(xs, [1.0, 4.0, 7.0, 9.0]);
        assert_eq!(means, [1.0, 4.0, 7.0, 9.0]);
        assert!(StepBins::spanning(&rows, |_| false, 4).is_none());
    }

    #[test]
    fn arms_keep_first_appearance_order_and_count_seeds() {
        let rows = vec![
            row("z", 0, 0, None, 0.0),
            row("a", 1, 0, None, 0.0),
            row("z", 2, 0, None, 0.0),
            row("a", 1, 1, None, 0.0),
        ];
        let arms = arms_in_order(&rows);
        assert_eq!(arms, ["z", "a"]);
        assert_eq!(seeds_per_arm(&rows, &arms), [2, 1]);
    }
}
