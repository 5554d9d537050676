//! `merge`: joins the slices of an experiment's grid into its results.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Joins the slices of an experiment's grid (run with --shard or --only) into \
OUT/<experiment>/, as one process running the whole grid writes it: metrics, summary and \
predictions, their analyses and the figure. Refuses slices that did not finish, of different \
configs or code, and runs given twice or not at all.",
    after_help = "Example: merge results/fcn-warmup/shards/*-of-4"
)]
struct Cli {
    /// The slices' directories, OUT/<experiment>/shards/<slice>.
    #[arg(required = true, value_name = "DIR")]
    shards: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match untrainable_runner::merge::merge(&cli.shards) {
        Ok(dir) => {
            println!("merged {} slices into {}", cli.shards.len(), dir.display());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("merge: {message}");
            ExitCode::FAILURE
        }
    }
}
