//! `scripts/slurm/submit.sh` against a real Slurm: the experiments' smoke
//! grids as job arrays of 4 slices, merged into the results one process
//! writes, also after a slice's task is cancelled mid-run and resubmitted.
//!
//! `scripts/slurm/local-cluster.sh start` brings up a one-node cluster on
//! this machine (CI does so, and sets `UNTRAINABLE_REQUIRE_SLURM=1`). Without
//! `sbatch` the tests skip, unless `UNTRAINABLE_REQUIRE_SLURM` is set.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_same_results, bin_dir, binary, data_present, root, run, text};

/// Whether a cluster takes jobs; a skip note when there is none.
fn slurm_present() -> bool {
    let sinfo = Command::new("sinfo").arg("-h").output();
    let up = sinfo.is_ok_and(|o| o.status.success());
    let has_sbatch = Command::new("sbatch").arg("--version").output().is_ok();
    if has_sbatch && up {
        return true;
    }
    assert!(
        std::env::var_os("UNTRAINABLE_REQUIRE_SLURM").is_none(),
        "UNTRAINABLE_REQUIRE_SLURM is set but {}; start one with \
         `scripts/slurm/local-cluster.sh start` (as root)",
        match has_sbatch {
            false => "sbatch is not installed",
            true => "sinfo reaches no cluster",
        }
    );
    eprintln!(
        "SKIPPED: no Slurm here (sbatch missing or no cluster); \
         `scripts/slurm/local-cluster.sh start` brings one up"
    );
    false
}

/// The longest a submission with `--wait` may take.
const PATIENCE: Duration = Duration::from_secs(900);

/// Runs `scripts/slurm/submit.sh EXPERIMENT --preset smoke --out OUT` with
/// `args`, the test's binaries standing for a build; waits at most
/// [`PATIENCE`].
fn submit(experiment: &str, out: &Path, args: &[&str]) -> Output {
    let mut child = Command::new("bash")
        .arg(root().join("scripts/slurm/submit.sh"))
        .args([experiment, "--preset", "smoke", "--out"])
        .arg(out)
        .args(args)
        .env("UNTRAINABLE_BIN_DIR", bin_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("submit.sh {experiment} {args:?} still waiting after {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    child.wait_with_output().unwrap()
}

/// The single-process run of the same grid, in `out`.
fn reference(experiment: &str, out: &Path, args: &[&str]) {
    let mut all = vec![
        "--preset",
        "smoke",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    all.extend(args);
    let output = run(&binary(&format!("exp-{experiment}")), &all);
    assert!(output.status.success(), "{}", text(&output));
}

/// The id `submit.sh` printed after `what` ("shard array", "merge job").
fn job_id(output: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = (stdout.lines())
        .find_map(|line| line.strip_prefix(&format!("submit: {what} ")))
        .unwrap_or_else(|| panic!("no `{what}` id in: {}", text(output)));
    line.split_whitespace().next().unwrap().to_string()
}

#[test]
fn fcn_warmup_in_four_slices_merges_into_the_single_process_results() {
    if !slurm_present() || !data_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Two seeds of four arms: 8 runs, 2 in each slice.
    reference(
        "fcn-warmup",
        &tmp.path().join("reference"),
        &["--seeds", "2"],
    );
    let out = tmp.path().join("slurm");
    let submitted = submit(
        "fcn-warmup",
        &out,
        &["--shards", "4", "--wait", "--", "--seeds", "2"],
    );
    assert!(submitted.status.success(), "{}", text(&submitted));
    assert_same_results(
        &out.join("fcn-warmup"),
        &tmp.path().join("reference/fcn-warmup"),
    );
    assert!(
        out.join("fcn-warmup.png").exists(),
        "no figure in {}",
        out.display()
    );
}

/// Copy-paste reads a trained guide (trained by the guides' job first); its
/// runs are made long enough to cancel one mid-run.
#[test]
fn copy_paste_slice_cancelled_mid_run_resumes_when_resubmitted() {
    if !slurm_present() || !data_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let grid = ["--seeds", "2", "--set", "train.epochs=60"];
    reference("copy-paste", &tmp.path().join("reference"), &grid);
    let out = tmp.path().join("slurm");
    let mut args = vec!["--shards", "4", "--"];
    args.extend(grid);
    args.extend(["--checkpoint-every", "1"]);
    let submitted = submit("copy-paste", &out, &args);
    assert!(submitted.status.success(), "{}", text(&submitted));
    let array = job_id(&submitted, "shard array");
    let merge = job_id(&submitted, "merge job");

    // Slice 1 runs trained-guide seed 0, then untrained-guide seed 1.
    let slice = out.join("copy-paste/shards/1-of-4");
    // Its own run's checkpoint, not the trained guide's, which the guides'
    // job may leave behind before the slice starts.
    let run = slice.join("runs/trained-guide-seed0/checkpoint");
    wait_for("a checkpoint of slice 1's first run", || {
        has_checkpoint(&run)
    });
    let cancel = Command::new("scancel")
        .arg(format!("{array}_1"))
        .output()
        .unwrap();
    assert!(cancel.status.success(), "{}", text(&cancel));
    // The merge can no longer run; the other slices finish first.
    wait_for("the merge job to be cancelled", || job_ended(&merge));
    wait_for("the other slices to end", || job_ended(&array));
    assert!(
        !slice.join("shard.toml").exists(),
        "slice 1 finished before it was cancelled; lengthen its runs"
    );

    let again = [&["--array", "1", "--wait"], &args[..]].concat();
    let resubmitted = submit("copy-paste", &out, &again);
    assert!(resubmitted.status.success(), "{}", text(&resubmitted));
    let log = std::fs::read_to_string(out.join("copy-paste/slurm/logs/shard-1.out")).unwrap();
    assert!(log.contains("resumed from the checkpoint at step"), "{log}");
    assert_same_results(
        &out.join("copy-paste"),
        &tmp.path().join("reference/copy-paste"),
    );
}

/// Whether the checkpoint directory `dir` holds a complete checkpoint:
/// `LATEST` is written, atomically, only after the checkpoint it names.
fn has_checkpoint(dir: &Path) -> bool {
    dir.join("LATEST").is_file()
}

/// Whether Slurm no longer runs or holds job `id`.
fn job_ended(id: &str) -> bool {
    let squeue = Command::new("squeue")
        .args(["-h", "-j", id])
        .output()
        .unwrap();
    String::from_utf8_lossy(&squeue.stdout).trim().is_empty()
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < PATIENCE, "no {what} after {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
