//! `paper-figures`: redraws every figure whose experiment results exist.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use paper_figures::tables::{TABLES, experiment_table};
use paper_figures::{FIGURES, FigureError, claims};

#[derive(Parser)]
#[command(
    version,
    about = "Draws the paper's figures from the experiments' parquet results, in seconds and without training.",
    long_about = "Draws the paper's figures from the experiments' parquet results, in seconds and without training.\n\n\
For each known experiment whose RESULTS/<experiment>/metrics.parquet exists, writes \
OUT/<experiment>.png and OUT/<experiment>.svg. Exits non-zero when no results exist or a figure fails."
)]
struct Args {
    /// Directory the experiment binaries wrote into (their `--out`); each
    /// experiment's results are read from RESULTS/<experiment>/metrics.parquet.
    #[arg(long, value_name = "RESULTS", default_value = "results")]
    results: PathBuf,
    /// Directory for the figures; created if missing. Existing figures of the
    /// same name are replaced.
    #[arg(long, value_name = "OUT", default_value = "paper-figures")]
    out: PathBuf,
    /// The Markdown file of result tables, next to the paper's numbers;
    /// default RESULTS/TABLES.md.
    #[arg(long, value_name = "FILE")]
    tables: Option<PathBuf>,
    /// Also rewrite the claims table of this README (between its claims
    /// markers) from the results.
    #[arg(long, value_name = "FILE")]
    readme: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut missing = Vec::new();
    let mut drawn = 0;
    let mut failed = 0;
    for figure in FIGURES {
        let metrics = args.results.join(figure.experiment).join("metrics.parquet");
        if !metrics.exists() {
            missing.push((metrics, figure.producer));
            continue;
        }
        let stem = args.out.join(figure.experiment);
        let result = untrainable_results::read_metrics(&metrics)
            .map_err(FigureError::from)
            .and_then(|rows| (figure.draw)(&rows, &stem));
        match result {
            Ok(()) => {
                drawn += 1;
                for ext in ["png", "svg"] {
                    println!("wrote {}.{ext}", stem.display());
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("paper-figures: {}: {e}", figure.experiment);
            }
        }
    }
    if drawn == 0 && failed == 0 {
        eprintln!("paper-figures: no experiment results found; looked for:");
        for (path, producer) in &missing {
            eprintln!("  {} (written by `{producer}`)", path.display());
        }
        eprintln!("run those commands first, or point --results at the directory they wrote into");
        return ExitCode::from(2);
    }
    for (path, producer) in &missing {
        eprintln!(
            "paper-figures: skipped {}: no results (run `{producer}`)",
            path.display()
        );
    }
    let claims_stem = args.out.join("claims");
    let drawn_claims = claims::findings(&args.results)
        .and_then(|found| paper_figures::claims_figure::draw_claims(found, &claims_stem));
    match drawn_claims {
        Ok(()) => println!("wrote {}.png and .svg", claims_stem.display()),
        Err(e) => {
            eprintln!("paper-figures: claims: {e}");
            failed += 1;
        }
    }
    match write_tables(&args) {
        Ok(Some(path)) => println!("wrote {}", path.display()),
        Ok(None) => {}
        Err(e) => {
            eprintln!("paper-figures: tables: {e}");
            failed += 1;
        }
    }
    if let Some(readme) = &args.readme {
        match write_claims(&args.results, readme) {
            Ok(()) => println!("wrote the claims table of {}", readme.display()),
            Err(e) => {
                eprintln!("paper-figures: claims: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Replaces the claims table of `readme` with one from `results`.
fn write_claims(results: &std::path::Path, readme: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(readme)
        .map_err(|e| format!("cannot read {}: {e}", readme.display()))?;
    let table = claims::claims_table(results).map_err(|e| e.to_string())?;
    let text =
        claims::with_claims(&text, &table).map_err(|e| format!("{}: {e}", readme.display()))?;
    untrainable_results::write_atomic(readme, text.as_bytes()).map_err(|e| e.to_string())
}

/// Writes one table per experiment whose results exist; `None` when none do.
fn write_tables(args: &Args) -> Result<Option<PathBuf>, FigureError> {
    let mut text = String::from(
        "# Results\n\nWritten by `cargo run -p paper-figures` from the committed parquet files in \
         `results/`; do not edit by hand. Values are mean ± sd over seeds; \"selected epoch\" is \
         the epoch of lowest validation loss (the paper's model selection), and the test column \
         reports that network on the held-out split. The paper column quotes docs/paper.md §2.\n",
    );
    let mut any = false;
    for table in TABLES {
        let dir = args.results.join(table.experiment);
        let (metrics, summary) = (dir.join("metrics.parquet"), dir.join("summary.parquet"));
        if !metrics.exists() || !summary.exists() {
            continue;
        }
        let metrics = untrainable_results::read_metrics(&metrics)?;
        let summaries = untrainable_results::read_summary(&summary)?;
        text += "\n";
        text += &experiment_table(table, &metrics, &summaries);
        any = true;
    }
    if !any {
        return Ok(None);
    }
    let path = args
        .tables
        .clone()
        .unwrap_or_else(|| args.results.join("TABLES.md"));
    untrainable_results::write_atomic(&path, text.as_bytes())?;
    Ok(Some(path))
}
