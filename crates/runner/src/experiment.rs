//! The skeleton of every experiment binary: an [`Experiment`] says what is
//! particular to it (config, data, training, tables, figure) and
//! [`main`] does the rest in one order for all: command line, logging,
//! config, checks, `--dry-run`, data, results directory, training, results
//! files, tables, figure and exit code.

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;

use burn::tensor::Device;
use clap::{Args, CommandFactory, FromArgMatches, Parser};
use serde::Serialize;
use serde::de::DeserializeOwned;
use untrainable_guidance::{Progress, TrainedStore};
use untrainable_results::regime::{evaluate, regime_table};
use untrainable_results::{Gate, MetricRow};

use crate::{CommonArgs, Preset, RunDir, RunResults};

/// What sets one experiment binary apart from the others.
pub trait Experiment {
    /// The results directory and `experiment` column; the binary is
    /// `exp-<NAME>`.
    const NAME: &'static str;
    /// The `--help` text.
    const ABOUT: &'static str;
    const PRESETS: &'static [(Preset, &'static str)];
    type Config: Serialize + DeserializeOwned;
    /// The binary's options besides [`CommonArgs`] (e.g. `--data`).
    type Args: Args;
    /// What training reads, loaded before the results directory is touched,
    /// so that missing data leaves earlier results alone.
    type Data;

    /// The config's number of seeds, unless `--seed` or `--seeds` say
    /// otherwise.
    fn seeds(config: &Self::Config) -> u64;

    /// Every check that can be made before reading data or training.
    fn validate(config: &Self::Config) -> Result<(), String>;

    fn load(
        config: &Self::Config,
        args: &Self::Args,
        common: &CommonArgs,
    ) -> Result<Self::Data, String>;

    /// Trains every arm for every seed of `context`.
    fn run(
        config: &Self::Config,
        data: &Self::Data,
        context: &Context,
    ) -> Result<RunResults, String>;

    /// The regime gates the config states (docs/regimes.md), measured on
    /// the results and written to `regime.parquet`.
    fn gates(config: &Self::Config) -> &[Gate];

    /// Tables printed after the summary and per-arm tables.
    fn tables(_results: &RunResults) -> Vec<String> {
        Vec::new()
    }

    /// Draws the experiment's figure at `stem` (`.png` and `.svg`).
    fn draw(rows: &[MetricRow], stem: &Path) -> Result<(), Box<dyn Error>>;
}

/// Where and how an experiment's runs execute, prepared from the command
/// line.
pub struct Context {
    /// [`Experiment::NAME`].
    pub experiment: &'static str,
    pub seeds: Vec<u64>,
    pub run_dir: RunDir,
    /// Trained guides, shared by every experiment writing to the same `--out`.
    pub store: TrainedStore,
    pub resume: bool,
    pub device: Device,
    pub progress: Progress,
}

/// [`Experiment::Args`] of an experiment without options of its own (its
/// examples are generated).
#[derive(Debug, Args)]
pub struct NoArgs {}

#[derive(Debug, Parser)]
struct Cli<A: Args> {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    own: A,
}

/// The `main` of an experiment binary.
pub fn main<E: Experiment>() -> ExitCode {
    // The command's name shows in `--version`; one string per process.
    let name: &'static str = Box::leak(format!("exp-{}", E::NAME).into_boxed_str());
    let command = Cli::<E::Args>::command()
        .name(name)
        .version(env!("CARGO_PKG_VERSION"))
        .about(E::ABOUT);
    let cli = match Cli::<E::Args>::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run::<E>(&cli.common, &cli.own) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{name}: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run<E: Experiment>(args: &CommonArgs, own: &E::Args) -> Result<(), String> {
    args.init_logging();
    let (config, resolved): (E::Config, String) = args.resolve(E::PRESETS)?;
    E::validate(&config)?;
    let seeds = args.seeds(E::seeds(&config))?;
    if args.dry_run {
        print!("{resolved}");
        println!("# seeds to run: {seeds:?}");
        return Ok(());
    }
    let data = E::load(&config, own, args)?;
    let context = Context {
        experiment: E::NAME,
        seeds,
        run_dir: args.run_dir(E::NAME, &resolved)?,
        store: TrainedStore::new(args.out.join("trained")),
        resume: args.resume,
        device: args.backend.device(),
        progress: args.progress(),
    };
    let results = E::run(&config, &data, &context)?;
    let run_dir = &context.run_dir;
    run_dir.write_results(&results)?;
    let summaries = &results.summaries;
    println!("{}\n", untrainable_results::summary_table(summaries));
    println!("{}\n", untrainable_results::arm_table(summaries));
    for table in E::tables(&results) {
        println!("{table}\n");
    }
    // A slice of the grid is measured once merged with the others.
    let gates = E::gates(&config);
    if !gates.is_empty() && args.selection().is_whole() {
        let regime = evaluate(E::NAME, gates, &results.rows, summaries);
        let path = run_dir.path().join("regime.parquet");
        untrainable_results::write_regime(&path, &regime).map_err(|e| e.to_string())?;
        println!("{}", regime_table(&regime));
    }
    println!("wrote {}", run_dir.path().display());
    args.draw_figure(E::NAME, |stem| E::draw(&results.rows, stem))
}
