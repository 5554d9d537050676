//! Slices of a grid (`--shard`, `--only`) run as separate processes and
//! joined by `merge`: the merged results equal one process's, and `merge`
//! refuses slices that do not make one grid exactly once.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_same_results, binary, data_present, run, text};

const SMOKE: [&str; 4] = ["--preset", "smoke", "--quiet", "--out"];

/// Runs exp-fcn-warmup's smoke preset into `out` with `args` added.
fn fcn_warmup(out: &Path, args: &[&str]) {
    let out = out.to_str().unwrap();
    let mut all: Vec<&str> = SMOKE.to_vec();
    all.push(out);
    all.extend(args);
    let output = run(&binary("exp-fcn-warmup"), &all);
    assert!(output.status.success(), "{}", text(&output));
}

fn merge(dirs: &[PathBuf]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_merge"));
    command.args(dirs);
    command.output().unwrap()
}

/// Merges `dirs`, expecting a refusal whose message has every one of `words`.
fn assert_refused(dirs: &[PathBuf], words: &[&str]) {
    let output = merge(dirs);
    let message = text(&output);
    assert!(!output.status.success(), "merged: {message}");
    for word in words {
        assert!(message.contains(word), "no `{word}` in: {message}");
    }
}

#[test]
fn slices_merge_into_the_single_process_results_and_bad_sets_are_refused() {
    if !data_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    fcn_warmup(&reference, &[]);

    // The smoke grid: one seed of base, noise-warmup, early-disconnect, guided.
    let out = tmp.path().join("sliced");
    let shards = out.join("fcn-warmup/shards");
    fcn_warmup(&out, &["--shard", "0/2"]);
    fcn_warmup(&out, &["--shard", "1/2"]);
    let halves = [shards.join("0-of-2"), shards.join("1-of-2")];
    let listed = run(
        &binary("exp-fcn-warmup"),
        &["--preset", "smoke", "--quiet", "--list-runs"],
    );
    assert!(
        text(&listed).contains("arm=base,seed=0\narm=noise-warmup,seed=0\n"),
        "{}",
        text(&listed)
    );

    // A half missing: its runs are named.
    assert_refused(
        &halves[..1],
        &[
            "2 of the 4 runs",
            "arm=noise-warmup,seed=0",
            "arm=guided,seed=0",
        ],
    );

    // A run twice.
    fcn_warmup(&out, &["--only", "arm=guided,seed=0"]);
    let only = shards.join("only-arm_guided_seed_0");
    let mut twice = halves.to_vec();
    twice.push(only.clone());
    assert_refused(&twice, &["arm=guided,seed=0 is in two slices"]);

    // Another config.
    let other = tmp.path().join("other");
    fcn_warmup(
        &other,
        &["--shard", "1/2", "--set", "train.learning_rate=0.5"],
    );
    let mixed = [halves[0].clone(), other.join("fcn-warmup/shards/1-of-2")];
    assert_refused(&mixed, &["different configs", "learning_rate"]);

    // Half-written: no record (killed before its end), or a run's files gone.
    let unfinished = tmp.path().join("unfinished");
    copy_dir(&halves[1], &unfinished);
    std::fs::remove_file(unfinished.join("shard.toml")).unwrap();
    assert_refused(
        &[halves[0].clone(), unfinished.clone()],
        &["half-written", "no shard.toml"],
    );
    copy_dir(&halves[1], &unfinished);
    std::fs::remove_file(unfinished.join("runs/guided-seed0/summary.parquet")).unwrap();
    assert_refused(
        &[halves[0].clone(), unfinished],
        &["half-written", "arm=guided,seed=0"],
    );

    // The two halves: the single-process results, and the figure.
    let merged = merge(&halves);
    assert!(merged.status.success(), "{}", text(&merged));
    assert_same_results(&out.join("fcn-warmup"), &reference.join("fcn-warmup"));
    assert!(
        out.join("fcn-warmup.png").exists(),
        "no figure in {}",
        out.display()
    );
    // The second half's runs from two `--only` slices instead.
    fcn_warmup(&out, &["--only", "arm=noise-warmup"]);
    let by_arm = [
        halves[0].clone(),
        only,
        shards.join("only-arm_noise-warmup"),
    ];
    let merged = merge(&by_arm);
    assert!(merged.status.success(), "{}", text(&merged));
    assert_same_results(&out.join("fcn-warmup"), &reference.join("fcn-warmup"));
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
