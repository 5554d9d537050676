//! A slice of an experiment's grid of (arm, seed) runs, so that a cluster can
//! run the grid as many jobs and `merge` join their results
//! (README, "Running on a cluster").
//!
//! The grid is the order in which the experiment meets its runs: every
//! invocation of one config meets the same runs in the same order, whatever
//! it selects and whether it resumes, so run number `k` belongs to shard
//! `k mod N` everywhere. A slice writes into `OUT/<experiment>/shards/<name>/`
//! like a whole run, and last `shard.toml`, which records the resolved config's
//! grid, the runs it ran, the code that ran them and how to replay the
//! invocation; a slice without `shard.toml` did not finish.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `--shard I/N`: the runs whose position in the grid is `I` modulo `N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: usize,
    pub count: usize,
}

impl FromStr for ShardSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("--shard takes I/N with 0 ≤ I < N (e.g. 0/4), not `{text}`");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = index.trim().parse().map_err(|_| bad())?;
        let count: usize = count.trim().parse().map_err(|_| bad())?;
        if index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

/// `--only arm=NAME,seed=S`: the runs of one arm, of one seed, or one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlySpec {
    pub arm: Option<String>,
    pub seed: Option<u64>,
}

impl FromStr for OnlySpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut only = Self {
            arm: None,
            seed: None,
        };
        for field in text.split(',') {
            let (key, value) = field.split_once('=').unwrap_or((field, ""));
            match (key.trim(), value.trim()) {
                ("arm", arm) if !arm.is_empty() => only.arm = Some(arm.to_string()),
                ("seed", seed) => {
                    only.seed = Some(seed.parse().map_err(|_| {
                        format!("--only {text}: seed must be a whole number, not `{seed}`")
                    })?)
                }
                _ => {
                    return Err(format!(
                        "--only takes arm=NAME,seed=S (either part may be left out), not `{text}`"
                    ));
                }
            }
        }
        Ok(only)
    }
}

impl fmt::Display for OnlySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arm = self.arm.as_ref().map(|a| format!("arm={a}"));
        let seed = self.seed.map(|s| format!("seed={s}"));
        let parts: Vec<String> = [arm, seed].into_iter().flatten().collect();
        write!(f, "{}", parts.join(","))
    }
}

impl OnlySpec {
    fn matches(&self, run: &RunId) -> bool {
        self.arm.as_ref().is_none_or(|a| *a == run.arm) && self.seed.is_none_or(|s| s == run.seed)
    }
}

/// One (arm, seed) run of the grid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunId {
    pub arm: String,
    pub seed: u64,
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arm={},seed={}", self.arm, self.seed)
    }
}

/// What one invocation does with its grid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub shard: Option<ShardSpec>,
    pub only: Vec<OnlySpec>,
    /// Train the trained guides the selected runs need, and nothing else.
    pub guides_only: bool,
    /// Print the grid and run nothing.
    pub list: bool,
}

impl Selection {
    /// Whether this is the whole grid, run in the experiment's own directory.
    pub fn is_whole(&self) -> bool {
        *self == Self::default()
    }

    /// The name of the slice's directory under `shards/`.
    pub fn dir_name(&self) -> String {
        let mut parts = Vec::new();
        if self.guides_only {
            parts.push("guides".to_string());
        }
        if let Some(ShardSpec { index, count }) = self.shard {
            parts.push(format!("{index}-of-{count}"));
        }
        for only in &self.only {
            parts.push(format!(
                "only-{}",
                only.to_string().replace(['/', '=', ','], "_")
            ));
        }
        parts.join("+")
    }

    /// Whether the run at `position` in the grid is in the slice (its guide
    /// included; its own training unless `guides_only`).
    fn wants(&self, position: usize, run: &RunId) -> bool {
        !self.list
            && self.shard.is_none_or(|s| position % s.count == s.index)
            && (self.only.is_empty() || self.only.iter().any(|o| o.matches(run)))
    }
}

/// What `shard.toml` records of a finished slice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub experiment: String,
    /// The experiment binary's sha256 (first 16 hex digits): slices merge
    /// only when the same code ran them.
    pub code_version: String,
    /// The binary, the directory it ran in and its arguments: `merge`
    /// replays them to write the results exactly as one process would.
    pub executable: PathBuf,
    pub cwd: PathBuf,
    pub args: Vec<String>,
    /// Where the whole grid's results go (`OUT/<experiment>`).
    pub experiment_dir: PathBuf,
    /// This slice, as `Selection::dir_name` names it.
    pub selection: String,
    /// Every run of the config, in order.
    pub grid: Vec<RunId>,
    /// The runs this slice trained and kept under `runs/`.
    pub ran: Vec<RunId>,
}

pub const RECORD_FILE: &str = "shard.toml";

/// The sha256 of a file (the first 16 hex digits), which names the code a
/// binary was built from.
pub fn code_version(executable: &Path) -> Result<String, String> {
    let bytes = std::fs::read(executable).map_err(|e| {
        format!(
            "cannot read {} for its code version: {e}",
            executable.display()
        )
    })?;
    let digest = Sha256::digest(&bytes);
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// The slice an invocation runs, and the grid it meets on the way.
#[derive(Debug)]
pub struct ShardRun {
    experiment: String,
    selection: Selection,
    experiment_dir: PathBuf,
    /// (grid, ran) so far.
    seen: Mutex<(Vec<RunId>, Vec<RunId>)>,
    /// The runs of the grid that read a trained guide.
    guided_by_trained: Mutex<Vec<RunId>>,
}

impl ShardRun {
    pub fn new(experiment: &str, selection: Selection, experiment_dir: &Path) -> Self {
        Self {
            experiment: experiment.to_string(),
            selection,
            experiment_dir: experiment_dir.to_path_buf(),
            seen: Mutex::new((Vec::new(), Vec::new())),
            guided_by_trained: Mutex::new(Vec::new()),
        }
    }

    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    /// Adds (arm, seed) to the grid, noting whether it reads a trained
    /// guide; whether the slice needs it (to run it, or for `--guides-only`
    /// its guide).
    pub fn wants(&self, arm: &str, seed: u64, trained_guide: bool) -> bool {
        let run = RunId {
            arm: arm.to_string(),
            seed,
        };
        if trained_guide {
            (self.guided_by_trained.lock().expect("no panic while held")).push(run.clone());
        }
        let mut seen = self.seen.lock().expect("no panic while held");
        let wanted = self.selection.wants(seen.0.len(), &run);
        seen.0.push(run.clone());
        if wanted && !self.selection.guides_only {
            seen.1.push(run);
        }
        wanted
    }

    /// Whether the slice trains the runs it wants (not `--guides-only`).
    pub fn trains_runs(&self) -> bool {
        !self.selection.guides_only
    }

    /// The record of the slice once every run is met: checks that each
    /// `--only` matched a run.
    pub fn record(&self) -> Result<ShardRecord, String> {
        let (grid, ran) = self.seen.lock().expect("no panic while held").clone();
        for only in &self.selection.only {
            if !grid.iter().any(|run| only.matches(run)) {
                let runs: Vec<String> = grid.iter().map(|r| r.to_string()).collect();
                return Err(format!(
                    "--only {only} matches no run of this config; its runs are: {}",
                    runs.join(" ")
                ));
            }
        }
        let executable =
            std::env::current_exe().map_err(|e| format!("cannot find the running binary: {e}"))?;
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot read the working directory: {e}"))?;
        Ok(ShardRecord {
            experiment: self.experiment.clone(),
            code_version: code_version(&executable)?,
            executable,
            args: std::env::args().skip(1).collect(),
            experiment_dir: std::path::absolute(&self.experiment_dir)
                .map_err(|e| format!("{}: {e}", self.experiment_dir.display()))?,
            cwd,
            selection: self.selection.dir_name(),
            grid,
            ran,
        })
    }

    /// The grid, one `arm=NAME,seed=S` a line (`--list-runs`), followed by
    /// ` trained-guide` where the run reads a trained guide.
    pub fn grid_lines(&self) -> String {
        let seen = self.seen.lock().expect("no panic while held");
        let trained = self.guided_by_trained.lock().expect("no panic while held");
        let line = |run: &RunId| match trained.contains(run) {
            true => format!("{run} trained-guide\n"),
            false => format!("{run}\n"),
        };
        seen.0.iter().map(line).collect()
    }
}

/// The arguments of a slice's invocation without those that select, resume
/// or checkpoint it: the whole grid's invocation.
pub fn whole_grid_args(args: &[String]) -> Vec<String> {
    const WITH_VALUE: [&str; 3] = ["--shard", "--only", "--checkpoint-every"];
    const FLAGS: [&str; 5] = [
        "--guides-only",
        "--list-runs",
        "--resume",
        "--quiet",
        "--from-shards",
    ];
    let mut kept = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            kept.push(arg.clone());
            kept.extend(args.cloned());
            break;
        }
        let name = arg.split('=').next().unwrap_or_default();
        if WITH_VALUE.contains(&name) {
            if !arg.contains('=') {
                args.next();
            }
        } else if !FLAGS.contains(&arg.as_str()) {
            kept.push(arg.clone());
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(arm: &str, seed: u64) -> RunId {
        RunId {
            arm: arm.into(),
            seed,
        }
    }

    #[test]
    fn shard_spec_parses_and_refuses() {
        assert_eq!(
            "1/4".parse::<ShardSpec>(),
            Ok(ShardSpec { index: 1, count: 4 })
        );
        for bad in ["4/4", "1", "a/2", "1/0", "-1/3"] {
            let err = bad.parse::<ShardSpec>().unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn only_spec_parses_either_part() {
        let only: OnlySpec = "arm=deep-fcn/base,seed=2".parse().unwrap();
        assert_eq!(only.arm.as_deref(), Some("deep-fcn/base"));
        assert_eq!(only.seed, Some(2));
        assert_eq!(only.to_string(), "arm=deep-fcn/base,seed=2");
        assert!(only.matches(&run("deep-fcn/base", 2)));
        assert!(!only.matches(&run("deep-fcn/base", 1)));
        let seed_only: OnlySpec = "seed=1".parse().unwrap();
        assert!(seed_only.matches(&run("x", 1)));
        assert!("arm=x,seed=one".parse::<OnlySpec>().is_err());
        assert!("colour=red".parse::<OnlySpec>().is_err());
    }

    /// The shards of N partition the grid, each run in exactly one.
    #[test]
    fn shards_partition_the_grid() {
        let grid: Vec<RunId> = (0..3)
            .flat_map(|s| ["a", "b", "c", "d"].map(|a| run(a, s)))
            .collect();
        let mut counts = vec![0; grid.len()];
        for index in 0..5 {
            let shard = ShardRun::new(
                "x",
                Selection {
                    shard: Some(ShardSpec { index, count: 5 }),
                    ..Selection::default()
                },
                Path::new("out/x"),
            );
            for (k, r) in grid.iter().enumerate() {
                if shard.wants(&r.arm, r.seed, false) {
                    counts[k] += 1;
                    assert_eq!(k % 5, index);
                }
            }
            assert_eq!(shard.seen.lock().unwrap().0, grid);
        }
        assert!(counts.iter().all(|&c| c == 1), "{counts:?}");
    }

    #[test]
    fn only_that_matches_nothing_is_refused() {
        let shard = ShardRun::new(
            "x",
            Selection {
                only: vec!["arm=bsae".parse().unwrap()],
                ..Selection::default()
            },
            Path::new("out/x"),
        );
        assert!(!shard.wants("base", 0, false));
        let err = shard.record().unwrap_err();
        assert!(
            err.contains("arm=bsae") && err.contains("arm=base,seed=0"),
            "{err}"
        );
    }

    #[test]
    fn whole_grid_args_drop_the_selection() {
        let args: Vec<String> = [
            "--preset",
            "smoke",
            "--shard",
            "1/4",
            "--only=arm=a",
            "--resume",
            "--quiet",
            "--checkpoint-every",
            "5",
            "--set",
            "train.epochs=2",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            whole_grid_args(&args),
            ["--preset", "smoke", "--set", "train.epochs=2"].map(String::from)
        );
    }
}
