//! Joins the slices of a grid (`--shard`, `--only`) into the experiment's
//! results directory, as one process running the whole grid would have
//! written it.
//!
//! The slices are checked first (each finished, one config, one code
//! version, one grid, no run twice, none missing); their finished runs are
//! then copied into `OUT/<experiment>/runs/`, and the experiment's binary is
//! replayed over them with `--resume --from-shards`: it trains nothing, reads
//! every run and the trained guides from the store, and writes the results
//! files, their analyses and the figure by the same code as a whole run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run_dir::part_path;
use crate::shard::{RECORD_FILE, RunId, ShardRecord, code_version, whole_grid_args};

/// A finished slice: its directory, record and resolved config.
#[derive(Debug)]
pub struct Shard {
    pub dir: PathBuf,
    pub record: ShardRecord,
    pub config: String,
}

/// Reads the slice in `dir`, refusing one that did not finish.
pub fn read_shard(dir: &Path) -> Result<Shard, String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let record_path = dir.join(RECORD_FILE);
    let text = std::fs::read_to_string(&record_path).map_err(|_| {
        format!(
            "{} is half-written: it has no {RECORD_FILE}, which a slice writes last, so its job was \
             killed, failed or is still running; run it again with the same options and --resume",
            dir.display()
        )
    })?;
    let record: ShardRecord = toml::from_str(&text)
        .map_err(|e| format!("{} is not a slice's record: {e}", record_path.display()))?;
    let config_path = dir.join("config.toml");
    let config = std::fs::read_to_string(&config_path)
        .map_err(|e| format!("cannot read {}: {e}", config_path.display()))?;
    for run in &record.ran {
        let summary = part_path(dir, &run.arm, run.seed).join("summary.parquet");
        if !summary.exists() {
            return Err(format!(
                "{} is half-written: its record lists {run} but {} is missing; run the slice again \
                 with --resume",
                dir.display(),
                summary.display()
            ));
        }
    }
    Ok(Shard {
        dir: dir.to_path_buf(),
        record,
        config,
    })
}

/// Checks that the slices are of one grid and cover it exactly once.
pub fn check(shards: &[Shard]) -> Result<(), String> {
    let Some(first) = shards.first() else {
        return Err("no slices to merge; name the directories OUT/<experiment>/shards/*".into());
    };
    for shard in &shards[1..] {
        check_same(first, shard)?;
    }
    let mut owner: HashMap<&RunId, &Path> = HashMap::new();
    for shard in shards {
        for run in &shard.record.ran {
            if let Some(other) = owner.insert(run, &shard.dir) {
                return Err(format!(
                    "{run} is in two slices, {} and {}; merge each run once (leave one of them out)",
                    other.display(),
                    shard.dir.display()
                ));
            }
        }
    }
    let missing: Vec<String> = (first.record.grid.iter())
        .filter(|run| !owner.contains_key(run))
        .map(|run| run.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} of the {} runs are in no slice given: {}; run them (e.g. --only {}) or name the \
             slices that have them",
            missing.len(),
            first.record.grid.len(),
            missing.join(" "),
            missing[0]
        ));
    }
    Ok(())
}

/// Two slices of one grid: the same experiment, code, config and runs.
fn check_same(a: &Shard, b: &Shard) -> Result<(), String> {
    let (ra, rb) = (&a.record, &b.record);
    let (da, db) = (a.dir.display(), b.dir.display());
    if ra.experiment != rb.experiment {
        return Err(format!(
            "{da} is of experiment `{}` and {db} of `{}`; merge one experiment at a time",
            ra.experiment, rb.experiment
        ));
    }
    if ra.code_version != rb.code_version {
        return Err(format!(
            "{da} and {db} were run by different code (versions {} and {}); rerun the older \
             slices with the current binaries",
            ra.code_version, rb.code_version
        ));
    }
    if a.config != b.config {
        let line = (a.config.lines().zip(b.config.lines()))
            .find(|(x, y)| x != y)
            .map(|(x, y)| format!(" (`{x}` against `{y}`)"))
            .unwrap_or_default();
        return Err(format!(
            "{da} and {db} ran different configs{line}; merge slices of one config"
        ));
    }
    if ra.grid != rb.grid {
        return Err(format!(
            "{da} and {db} ran different grids of runs (different --seed or --seeds?); merge \
             slices of one grid"
        ));
    }
    Ok(())
}

/// Merges the slices in `dirs` into their experiment directory and returns it.
pub fn merge(dirs: &[PathBuf]) -> Result<PathBuf, String> {
    let shards = dirs
        .iter()
        .map(|dir| read_shard(dir))
        .collect::<Result<Vec<_>, _>>()?;
    check(&shards)?;
    let record = &shards[0].record;
    let now = code_version(&record.executable)?;
    if now != record.code_version {
        return Err(format!(
            "{} changed since the slices ran it (code version {} then, {now} now); merge with \
             the binary that ran them, or run the slices again",
            record.executable.display(),
            record.code_version
        ));
    }
    gather(&shards, &record.experiment_dir)?;
    replay(record)?;
    Ok(record.experiment_dir.clone())
}

/// Copies every slice's finished runs (not their checkpoints) and the config
/// into `dir`, replacing its `runs/` once the copy is whole.
fn gather(shards: &[Shard], dir: &Path) -> Result<(), String> {
    let staging = dir.join(".runs.merging");
    remove_dir(&staging)?;
    for shard in shards {
        for run in &shard.record.ran {
            let from = part_path(&shard.dir, &run.arm, run.seed);
            let to = part_path(&staging, &run.arm, run.seed);
            copy_files(&from, &to)?;
        }
    }
    let runs = dir.join("runs");
    remove_dir(&runs)?;
    std::fs::create_dir_all(staging.join("runs"))
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    std::fs::rename(staging.join("runs"), &runs)
        .map_err(|e| format!("cannot move the merged runs to {}: {e}", runs.display()))?;
    remove_dir(&staging)?;
    crate::write_text(&dir.join("config.toml"), &shards[0].config)
}

/// Copies the files directly in `from` into `to`.
fn copy_files(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let entries =
        std::fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).map_err(|e| {
                format!(
                    "cannot copy {} to {}: {e}",
                    entry.path().display(),
                    to.display()
                )
            })?;
        }
    }
    Ok(())
}

fn remove_dir(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Runs the experiment's binary as the whole grid's invocation over the
/// gathered runs.
fn replay(record: &ShardRecord) -> Result<(), String> {
    let mut args = whole_grid_args(&record.args);
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    args.splice(
        at..at,
        ["--resume", "--from-shards", "--quiet"].map(String::from),
    );
    let status = Command::new(&record.executable)
        .args(&args)
        .current_dir(&record.cwd)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", record.executable.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} {} (in {}) failed: {status}",
            record.executable.display(),
            args.join(" "),
            record.cwd.display()
        ))
    }
}
