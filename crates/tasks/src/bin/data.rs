//! Checks a data set before a long run and prints a JSON report (fields in
//! `untrainable_tasks::check`); exits with 1 when it found a problem.
//!
//! ```text
//! data check imagenet DIR [--data-workers N]   # DIR holds train/ and val/
//! data check wikitext103 DIR                   # DIR holds wiki.*.tokens or wiki.*.raw
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use untrainable_tasks::check::{check_imagenet, check_wikitext};

#[derive(Parser)]
#[command(
    name = "data",
    about = "Check a data set before a long run (JSON report)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a data set.
    Check {
        #[command(subcommand)]
        dataset: Dataset,
    },
}

#[derive(Subcommand)]
enum Dataset {
    /// ILSVRC-2012 as DIR/train/<class>/* and DIR/val/<class>/*: indexes
    /// both splits and decodes every image.
    Imagenet {
        dir: PathBuf,
        /// Decoding threads (default: every core).
        #[arg(long, value_name = "N")]
        data_workers: Option<usize>,
    },
    /// WikiText-103: DIR/wiki.{train,valid,test}.tokens (or .raw), read whole.
    Wikitext103 { dir: PathBuf },
}

fn main() -> ExitCode {
    let Command::Check { dataset } = Cli::parse().command;
    let report = match dataset {
        Dataset::Imagenet { dir, data_workers } => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            check_imagenet(&dir, data_workers.unwrap_or(cores).max(1))
        }
        Dataset::Wikitext103 { dir } => check_wikitext(&dir),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&report).expect("JSON values print")
    );
    if report["ok"] == true {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
