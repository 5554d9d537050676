//! The arms of a guidance experiment, for every seed: the guide trained
//! alone where an arm needs it (kept in a [`TrainedStore`]), then each arm
//! from the same initial target. Every experiment binary calls this; what
//! differs between them is the task, the two architectures and the config.

use burn::tensor::Device;
use untrainable_core::{Guide, Network};
use untrainable_guidance::{
    ArmConfig, Checkpointing, GuideState, PairsConfig, RunSpec, Runtime, Split, Task, TrainConfig,
    resolve_pairs, score_split, train_arm,
};
use untrainable_results::SummaryRow;

use crate::{Context, RunResults, prediction_rows};

/// The name under which the guide's own training is logged.
pub const GUIDE_ARM: &str = "guide";

/// One experiment's fixed parts.
pub struct GuidedExperiment<'a, K, T, G> {
    pub task: &'a K,
    /// Builds the target (called after seeding, once per arm).
    pub target: &'a dyn Fn(&Device) -> T,
    /// Builds the guide (called after seeding with [`guide_seed`]).
    pub guide: &'a dyn Fn(&Device) -> G,
    pub pairs: &'a PairsConfig,
    pub train: &'a TrainConfig,
    /// How the guide is trained for `trained` arms; `None` when no arm uses
    /// a trained guide.
    pub guide_train: Option<&'a TrainConfig>,
    /// The task the guide is trained alone on where it differs from `task`
    /// (the same examples with augmented training batches); its validation
    /// and test, and every guided arm, read `task`.
    pub guide_task: Option<&'a K>,
    /// Everything that decides the trained guide's weights besides the seed
    /// (its architecture, the task, `guide_train`), as TOML: its store key.
    pub guide_recipe: &'a str,
    pub arms: &'a [ArmConfig],
    /// The seeds, the results directory, the trained-guide store, the
    /// device.
    pub context: &'a Context,
}

/// The checks every experiment makes of its `[[arms]]`: at least one, each
/// valid (also against the targets' `train`), names unique and not
/// [`GUIDE_ARM`], and a `[guide_train]` section (`has_guide_train`) where
/// an arm asks for a trained guide.
pub fn validate_arms(
    arms: &[ArmConfig],
    train: &TrainConfig,
    has_guide_train: bool,
) -> Result<(), String> {
    if arms.is_empty() {
        return Err("the config lists no [[arms]]".into());
    }
    for (i, arm) in arms.iter().enumerate() {
        arm.validate()?;
        arm.validate_with(train)?;
        if arms[..i].iter().any(|a| a.name == arm.name) {
            return Err(format!("two arms are named `{}`", arm.name));
        }
        if arm.name == GUIDE_ARM {
            return Err(format!(
                "an arm is named `{GUIDE_ARM}`, the name under which the guide's own training is logged; rename it"
            ));
        }
        if arm.guide == GuideState::Trained && !has_guide_train {
            return Err(format!(
                "arm `{}` uses guide = \"trained\" but the config has no [guide_train] section",
                arm.name
            ));
        }
    }
    Ok(())
}

/// Guides are drawn from a stream apart from the targets' of the same seed.
pub fn guide_seed(seed: u64) -> u64 {
    seed ^ 0x9E37_79B9_7F4A_7C15
}

impl<K, T, G> GuidedExperiment<'_, K, T, G>
where
    K: Task,
    T: Network<Input = K::Input>,
    G: Network<Input = K::Input>,
{
    /// Runs every arm for every seed (keeping runs an interrupted invocation
    /// finished when resuming) and returns all rows, summaries and test
    /// predictions, the guide's first for each seed where it was trained.
    pub fn run(&self) -> Result<RunResults, String> {
        let mut results = RunResults::default();
        for &seed in &self.context.seeds {
            // Every run is met, in order, even where a slice of the grid skips it.
            let arms: Vec<&ArmConfig> = (self.arms.iter())
                .filter(|arm| self.context.run_dir.wants(arm, seed))
                .collect();
            if arms.is_empty() {
                continue;
            }
            untrainable_core::seed(&self.context.device, guide_seed(seed));
            let untrained = Guide::new((self.guide)(&self.context.device));
            let trained = if arms.iter().any(|a| a.guide == GuideState::Trained) {
                Some(self.trained_guide(seed, &untrained, &mut results)?)
            } else {
                None
            };
            if !self.context.run_dir.trains_runs() {
                continue;
            }
            let target_taps = (self.target)(&self.context.device).tap_names();
            let pairs = resolve_pairs(self.pairs, &target_taps, &untrained.network().tap_names())?;
            for arm in arms {
                let guide = match arm.guide {
                    GuideState::Untrained => &untrained,
                    GuideState::Trained => trained.as_ref().expect("trained when an arm needs it"),
                };
                let run = self.run_or_keep(arm, seed, |device| {
                    // The same seed gives every arm the same initial target.
                    untrainable_core::seed(device, seed);
                    let target = (self.target)(device);
                    let checkpointing = self.context.run_dir.checkpointing(&arm.name, seed);
                    let spec = RunSpec {
                        experiment: self.context.experiment,
                        arm,
                        seed,
                        guide,
                        pairs: &pairs,
                        task: self.task,
                        config: self.train,
                    };
                    let run = train_arm(&spec, target, &self.runtime(device, &checkpointing))?;
                    let predictions = prediction_rows(
                        self.context.experiment,
                        &arm.name,
                        seed,
                        &run.test_predictions,
                    );
                    Ok(RunResults {
                        rows: run.rows,
                        summaries: vec![run.summary],
                        predictions,
                    })
                })?;
                results.extend(run);
            }
        }
        Ok(results)
    }

    /// The guide trained alone on the task from its seed's initial weights:
    /// from the store, or trained now, stored, and logged as [`GUIDE_ARM`].
    fn trained_guide(
        &self,
        seed: u64,
        untrained: &Guide<G>,
        results: &mut RunResults,
    ) -> Result<Guide<G>, String> {
        let train = self
            .guide_train
            .ok_or("an arm uses guide = \"trained\" but the config has no [guide_train]")?;
        let recipe = format!("{}\nseed = {seed}\n", self.guide_recipe);
        let fresh = || {
            untrainable_core::seed(&self.context.device, guide_seed(seed));
            (self.guide)(&self.context.device)
        };
        // Processes sharing the store (slices of the grid) train it once.
        let _trainer = self.context.store.lock(GUIDE_ARM, &recipe)?;
        let network = match self.context.store.load(GUIDE_ARM, &recipe, fresh())? {
            Some(mut stored) => {
                tracing::info!(
                    "{GUIDE_ARM} seed {seed}: trained before, read from {}",
                    self.context.store.dir().display()
                );
                // Another experiment may have trained it on the same recipe.
                for row in &mut stored.rows {
                    row.experiment = self.context.experiment.to_string();
                }
                stored.summary.experiment = self.context.experiment.to_string();
                // The stored network is the selected one: its test predictions
                // are those its training would have made.
                let score = score_split(
                    &stored.network,
                    self.task,
                    Split::Test,
                    train.eval_batch_size,
                    &self.context.device,
                );
                results.extend(RunResults {
                    rows: stored.rows,
                    summaries: vec![stored.summary],
                    predictions: prediction_rows(
                        self.context.experiment,
                        GUIDE_ARM,
                        seed,
                        &score.predictions,
                    ),
                });
                stored.network
            }
            None if self.context.run_dir.from_shards() => {
                return Err(format!(
                    "the trained {GUIDE_ARM} of seed {seed} is not in the store {}, where the \
                     slices of the grid read it; run the guides' job (--guides-only) again",
                    self.context.store.dir().display()
                ));
            }
            None => {
                let arm = ArmConfig::plain(GUIDE_ARM);
                // Plain training: the untrained guide is passed but never used.
                let checkpointing = self.context.run_dir.checkpointing(GUIDE_ARM, seed);
                let spec = RunSpec {
                    experiment: self.context.experiment,
                    arm: &arm,
                    seed,
                    guide: untrained,
                    pairs: &[],
                    task: self.guide_task.unwrap_or(self.task),
                    config: train,
                };
                let run = train_arm(
                    &spec,
                    fresh(),
                    &self.runtime(&self.context.device, &checkpointing),
                )?;
                let best = run.best.ok_or_else(|| {
                    format!("the guide's training (seed {seed}) stopped before its first evaluation: {}", run.summary.status)
                })?;
                let path = self.context.store.save(
                    GUIDE_ARM,
                    &recipe,
                    best.clone(),
                    &run.rows,
                    &run.summary,
                )?;
                tracing::info!(
                    "{GUIDE_ARM} seed {seed}: trained, kept in {}",
                    path.display()
                );
                let predictions = prediction_rows(
                    self.context.experiment,
                    GUIDE_ARM,
                    seed,
                    &run.test_predictions,
                );
                self.context
                    .run_dir
                    .save(&run.rows, &run.summary, &predictions)?;
                log_summary(&run.summary);
                results.extend(RunResults {
                    rows: run.rows,
                    summaries: vec![run.summary],
                    predictions,
                });
                best
            }
        };
        Ok(Guide::new(network))
    }

    fn runtime<'b>(&self, device: &'b Device, checkpointing: &'b Checkpointing) -> Runtime<'b> {
        Runtime {
            device,
            progress: self.context.progress,
            checkpoint: Some(checkpointing),
        }
    }

    /// One (arm, seed) run: kept from an earlier invocation when resuming,
    /// otherwise run and saved; its summary line printed either way.
    fn run_or_keep(
        &self,
        arm: &ArmConfig,
        seed: u64,
        run: impl FnOnce(&Device) -> Result<RunResults, String>,
    ) -> Result<RunResults, String> {
        let results = match self.context.run_dir.finished(&arm.name, seed)? {
            Some(done) if self.context.resume => {
                tracing::info!("{} seed {seed}: kept from the earlier run", arm.name);
                done
            }
            _ if self.context.run_dir.from_shards() => {
                return Err(format!(
                    "{} seed {seed} is not finished in {}: the slices merged do not have it",
                    arm.name,
                    self.context.run_dir.path().display()
                ));
            }
            _ => {
                let results = run(&self.context.device)?;
                let [summary] = &results.summaries[..] else {
                    unreachable!("one run has one summary")
                };
                self.context
                    .run_dir
                    .save(&results.rows, summary, &results.predictions)?;
                results
            }
        };
        results.summaries.iter().for_each(log_summary);
        Ok(results)
    }
}

/// One line per finished (arm, seed) run.
fn log_summary(summary: &SummaryRow) {
    tracing::info!(
        "{:>18} seed {}: {} after {} steps, val loss final {:.4} best {:.4} (epoch {}), val acc {:.4}, {:.0} s",
        summary.arm,
        summary.seed,
        summary.status,
        summary.steps,
        summary.final_val_loss,
        summary.best_val_loss,
        summary.best_epoch,
        summary.final_val_accuracy,
        summary.wall_seconds
    );
}
