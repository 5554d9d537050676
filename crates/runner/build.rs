//! Records the version of the code a binary is built from, for the
//! `code_version` of every results directory (`run_dir::source_version`):
//! the commit of the checkout, with `-dirty` when its code differs from
//! that commit, or `unknown` outside a git checkout. The script reruns when
//! the code or the checkout's HEAD or index change, so the version is that
//! of the build, not of whatever the checkout holds when the binary runs.

use std::path::Path;
use std::process::Command;

/// The paths whose changes make the code differ from its commit; results
/// and figures elsewhere in the tree do not.
const CODE: [&str; 4] = ["crates", "experiments", "Cargo.toml", "Cargo.lock"];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    for path in CODE {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    // HEAD's log moves with every commit and checkout; the index with every add.
    for git_path in ["logs/HEAD", "index", "HEAD"] {
        if let Some(path) = git(&[
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            git_path,
        ]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let status = [&["status", "--porcelain", "--"][..], &CODE[..]].concat();
    let version = match (git(&["rev-parse", "HEAD"]), git(&status)) {
        (Some(commit), Some(changes)) if changes.is_empty() => commit,
        (Some(commit), Some(_)) => format!("{commit}-dirty"),
        _ => "unknown".to_string(),
    };
    println!("cargo:rustc-env=UNTRAINABLE_SOURCE_VERSION={version}");
}
