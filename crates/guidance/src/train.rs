//! The training loop shared by every experiment: plain, guided, distilled,
//! hinted, noise warm-up and early-disconnect arms are one loop over any
//! [`Task`], with the arm's [`Objective`](crate::Objective) deciding the loss.
//!
//! A run goes through its phases in order: [`Trainer::start`] (fresh or
//! from a checkpoint), the noise warm-up, the training steps with an
//! evaluation at every end of epoch, and the test of the selected network.
//! [`Trainer::step`] is the objective: one forward pass of the target and
//! the named terms of its loss, which [`objective`] weighs.

use std::ops::ControlFlow;
use std::time::Instant;

use burn::module::Module;
use burn::nn::Linear;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use untrainable_core::{Guide, Network, Tap, read_to_host};
use untrainable_repsim::host::{DEFAULT_TWONN_DISCARD, Matrix, twonn_dimension};
use untrainable_results::{MetricRow, Split, Status, SummaryRow};
use untrainable_tasks::fashion_mnist::epoch_batches;

use crate::arm::{ArmConfig, NoiseFor, NoiseWarmup, Objective};
use crate::baselines::distill::distillation_loss;
use crate::baselines::hint::Hint;
use crate::checkpoint::{Checkpointing, LoopState, Saved};
use crate::config::TrainConfig;
use crate::gram_table::{GramTablePlan, GuideSource};
use crate::loss::{GuideBatch, guidance_loss_of, pair_cka};
use crate::mapping::Pair;
use crate::run_log::{Log, ValScore};
use crate::step_values::{Pending, ReadStep, StepValues};
use crate::task::{Prediction, Score, Task, score_split};

/// Everything one (arm, seed) run produced.
pub struct ArmRun<T> {
    pub rows: Vec<MetricRow>,
    pub summary: SummaryRow,
    /// The network at its lowest validation loss (the paper's model
    /// selection), in evaluation mode on the plain device; `None` if no
    /// epoch finished.
    pub best: Option<T>,
    /// That network's prediction for every test example, in order, where
    /// the task has a test split and predicts classes
    /// ([`Score::predictions`](crate::Score::predictions)); empty otherwise.
    pub test_predictions: Vec<Prediction>,
}

/// The metric under which a guided arm logs its number of guided pairs,
/// once, at step 0.
pub const GUIDED_PAIRS: &str = "guided_pairs";

/// Whether to draw progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Bar,
    Quiet,
}

/// What one (arm, seed) run trains, against which guide, on which task.
pub struct RunSpec<'a, K, G: Network> {
    /// The `experiment` column of its rows.
    pub experiment: &'a str,
    pub arm: &'a ArmConfig,
    pub seed: u64,
    pub guide: &'a Guide<G>,
    /// The experiment's (target tap, guide tap) pairs; an arm may guide a
    /// subset, CKA is logged for all.
    pub pairs: &'a [Pair],
    pub task: &'a K,
    pub config: &'a TrainConfig,
}

/// Where and how a run executes.
#[derive(Clone, Copy)]
pub struct Runtime<'a> {
    /// The plain device; training runs on its autodiff twin.
    pub device: &'a Device,
    pub progress: Progress,
    /// Save a checkpoint every `every_steps` and continue from the newest
    /// one found; `None`: no checkpoints.
    pub checkpoint: Option<&'a Checkpointing>,
}

/// The loss terms of one training step, each before its weight; a term is
/// present where the arm's objective has it on this step.
pub struct Terms {
    pub task: Tensor<1>,
    /// `Σ over guided pairs d(target tap, guide tap)`.
    pub guidance: Option<Tensor<1>>,
    /// `T² · KL(teacher ‖ student)` of the logits.
    pub distillation: Option<Tensor<1>>,
    /// The FitNets regression error.
    pub hint: Option<Tensor<1>>,
}

/// The loss an arm minimises: the paper's `L_task + α · guidance` on guided
/// steps, `(1 − w) · L_task + w · distillation` or `L_task + w · hint` for
/// the baselines, `L_task` alone otherwise.
pub fn objective(terms: Terms, objective: &Objective, alpha: f64) -> Tensor<1> {
    let Terms {
        task,
        guidance,
        distillation,
        hint,
    } = terms;
    match (objective, guidance, distillation, hint) {
        (Objective::Guidance(_), Some(guidance), _, _) => task + guidance.mul_scalar(alpha),
        (Objective::Distillation(d), _, Some(kd), _) => {
            task.mul_scalar(1.0 - d.weight) + kd.mul_scalar(d.weight)
        }
        (Objective::Hint(h), _, _, Some(hint)) => task + hint.mul_scalar(h.weight),
        _ => task,
    }
}

/// The random streams of a run: each step of each phase draws its dropout
/// masks and noise from its own stream, fixed by the seed and the step
/// alone, so a run resumed from a checkpoint draws what the uninterrupted
/// run drew.
#[derive(Debug, Clone, Copy)]
enum RandomStream {
    NoiseWarmup = 1,
    TrainStep = 2,
}

impl RandomStream {
    fn seed_of_step(self, seed: u64, step: u64) -> u64 {
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (self as u64).rotate_left(48)
            ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03)
    }
}

/// Trains `target` (built on a plain device; trained on its autodiff twin)
/// under one arm's schedule, evaluating after every epoch. With
/// `runtime.checkpoint`, saves a checkpoint every `every_steps` training
/// steps and continues from the newest one found; the noise warm-up, if
/// any, is rerun from its start (its steps are few and deterministic). On
/// the CPU backend a resumed run ends with exactly the numbers of an
/// uninterrupted one.
///
/// Build `target` afresh for every arm (the same seed gives the same
/// weights): clones of a burn module share batch-norm running statistics.
///
/// # Errors
/// An arm that does not fit the pairs (a hint or pair subset), or a
/// checkpoint that cannot be written or read back.
pub fn train_arm<K, T, G>(
    spec: &RunSpec<'_, K, G>,
    target: T,
    runtime: &Runtime<'_>,
) -> Result<ArmRun<T>, String>
where
    K: Task,
    T: Network<Input = K::Input>,
    G: Network<Input = K::Input>,
{
    let (trainer, mut state) = Trainer::start(spec, target, runtime)?;
    if let (false, Some(warmup)) = (state.resumed, spec.arm.warmup) {
        state = match trainer.noise_warmup(state, warmup) {
            ControlFlow::Continue(state) => state,
            ControlFlow::Break(diverged) => return Ok(diverged),
        };
    }
    trainer.note_resumed(&state);
    Ok(match trainer.train(state)? {
        ControlFlow::Continue(state) => trainer.test_selected(state),
        ControlFlow::Break(diverged) => diverged,
    })
}

/// A run continues with its state or has stopped with its result.
type Flow<T> = ControlFlow<ArmRun<T>, State<T>>;

/// What stays fixed over a run, besides the spec.
struct Trainer<'a, K: Task, G: Network> {
    spec: &'a RunSpec<'a, K, G>,
    device: &'a Device,
    train_device: Device,
    checkpoint: Option<&'a Checkpointing>,
    bar: ProgressBar,
    started: Instant,
    train_len: usize,
    /// The pairs the guidance term sums (the arm's subset).
    guided_pairs: Vec<Pair>,
    hint: Option<Hint>,
    /// Where a guided or hinted step's guide representations come from.
    guide_source: GuideSource,
    /// The validation batch on which per-pair CKA is measured every epoch:
    /// the first `batch_size` validation examples, the same for every arm.
    eval_batch: K::Input,
}

/// What a run changes as it goes.
struct State<T> {
    model: T,
    /// A hinted arm's regressor, trained with the target by one optimiser.
    regressor: Option<Linear>,
    optim: ModuleOptimizer,
    log: Log,
    /// The network at the best epoch so far, in evaluation mode.
    best_model: Option<T>,
    /// Training steps taken.
    step: u64,
    /// The epoch and the batch within it at which training continues.
    epoch: u32,
    batch: usize,
    train_loss: f64,
    /// The values of the steps since they were last read back.
    pending: Pending,
    /// Wall time spent before the checkpoint the run resumed from.
    earlier_seconds: f64,
    resumed: bool,
}

impl<'a, K, G> Trainer<'a, K, G>
where
    K: Task,
    G: Network<Input = K::Input>,
{
    /// The trainer and the starting state: fresh, or from the newest
    /// checkpoint.
    fn start<T: Network<Input = K::Input>>(
        spec: &'a RunSpec<'a, K, G>,
        target: T,
        runtime: &Runtime<'a>,
    ) -> Result<(Self, State<T>), String> {
        let started = Instant::now();
        let (arm, config, device) = (spec.arm, spec.config, runtime.device);
        let train_device = device.clone().autodiff();
        untrainable_core::seed(&train_device, spec.seed);
        let saved = match runtime.checkpoint {
            Some(c) => c.latest()?,
            None => None,
        };
        let fresh = target.clone();
        let target = match &saved {
            Some(saved) => saved.model(target)?,
            None => target,
        };
        let model = target.fork(&train_device).train();
        let eval_batch = fixed_eval_batch(spec.task, config, device);
        let hint = match arm.objective {
            Objective::Hint(h) => Some(h.resolve(&arm.name, spec.pairs)?),
            _ => None,
        };
        let regressor = match &hint {
            Some(hint) => {
                let taps = |eval_batch: &K::Input| {
                    let target = model.valid().forward(eval_batch.clone()).taps;
                    (target, spec.guide.forward(eval_batch.clone()).taps)
                };
                let regressor = hint_regressor(hint, taps(&eval_batch), saved.as_ref(), device)?;
                Some(regressor.fork(&train_device))
            }
            None => None,
        };
        let optim = optimiser(config, saved.as_ref())?;
        let mut log = Log::new(spec.experiment, &arm.name, spec.seed);
        let train_len = spec.task.len(Split::Train);
        let bar = progress_bar(runtime.progress, planned_steps(spec, train_len), spec);
        let guided_pairs = guided_pairs(arm, spec.pairs)?;
        if arm.guidance().is_some() {
            // How many pairs the term sums, for comparisons across subsets.
            log.step(0, GUIDED_PAIRS, guided_pairs.len() as f64);
        }
        let guide_source = guide_source(spec, &guided_pairs, hint.as_ref(), device);
        let mut state = State::new(model, regressor, optim, log);
        if let Some(saved) = saved {
            state.resume(saved, fresh)?;
        }
        let trainer = Trainer {
            spec,
            device,
            train_device,
            checkpoint: runtime.checkpoint,
            bar,
            started,
            train_len,
            guided_pairs,
            hint,
            guide_source,
            eval_batch,
        };
        Ok((trainer, state))
    }

    /// The training steps, epoch by epoch, each epoch ended by an
    /// evaluation; a run that reaches `max_steps` inside an epoch is
    /// evaluated where it stopped.
    fn train<T: Network<Input = K::Input>>(&self, mut state: State<T>) -> Result<Flow<T>, String> {
        let (spec, config) = (self.spec, self.spec.config);
        let (start_epoch, start_batch) = (state.epoch, state.batch);
        for epoch in start_epoch..config.epochs {
            let skip = if epoch == start_epoch { start_batch } else { 0 };
            let batches = epoch_batches(
                self.train_len,
                config.batch_size,
                spec.seed,
                epoch as u64,
                true,
            );
            spec.task
                .plan_training(&batches[skip.min(batches.len())..], spec.seed, epoch as u64);
            for (batch, idx) in batches.into_iter().enumerate().skip(skip) {
                if config.max_steps > 0 && state.step >= config.max_steps {
                    return Ok(self
                        .end_of_epoch(state, epoch)
                        .map_continue(|(state, _)| state));
                }
                state = match self.train_step(state, epoch, batch, &idx)? {
                    ControlFlow::Continue(state) => state,
                    ControlFlow::Break(diverged) => return Ok(ControlFlow::Break(diverged)),
                };
            }
            state = match self.end_of_epoch(state, epoch + 1) {
                ControlFlow::Continue((state, score)) => {
                    self.note_epoch(epoch + 1, score);
                    state
                }
                ControlFlow::Break(diverged) => return Ok(ControlFlow::Break(diverged)),
            };
        }
        Ok(ControlFlow::Continue(state))
    }

    /// Logs where a resumed run continues and moves the bar there.
    fn note_resumed<T>(&self, state: &State<T>) {
        if !state.resumed {
            return;
        }
        let (arm, step) = (self.spec.arm, state.step);
        self.bar.inc(arm.warmup.map_or(0, |w| w.steps) + step);
        self.bar.suspend(|| {
            tracing::info!(
                "{} seed {}: resumed from the checkpoint at step {step}",
                arm.name,
                self.spec.seed
            )
        });
    }

    /// The noise warm-up: only the guidance term, on noise; stops the run
    /// as diverged at the first step whose term is not finite (found when
    /// the values are read back).
    fn noise_warmup<T: Network<Input = K::Input>>(
        &self,
        mut state: State<T>,
        warmup: NoiseWarmup,
    ) -> ControlFlow<ArmRun<T>, State<T>> {
        let (spec, config) = (self.spec, self.spec.config);
        for w in 0..warmup.steps {
            untrainable_core::seed(
                &self.train_device,
                RandomStream::NoiseWarmup.seed_of_step(spec.seed, w),
            );
            let noise = spec.task.noise(config.batch_size, &self.train_device);
            let target_input = match warmup.noise_for {
                NoiseFor::Both => noise.clone(),
                NoiseFor::GuideOnly => {
                    // A fresh random batch per warm-up step, from a stream apart from the epochs'.
                    let idx = epoch_batches(self.train_len, config.batch_size, !spec.seed, w, true)
                        .swap_remove(0);
                    spec.task.batch(Split::Train, &idx, &self.train_device).0
                }
            };
            let guide_taps = spec.guide.forward(noise).taps;
            let target_taps = state.model.forward(target_input).taps;
            let term = self.guidance_term(&target_taps, &GuideBatch::Taps(guide_taps));
            let values = vec![("warmup_guidance_loss", "1-CKA sum", term.clone())];
            state.pending.push(StepValues {
                step: w,
                values,
                checked: 0,
            });
            let grads = GradientsParams::from_grads(term.backward(), &state.model);
            state.model = state.optim.step(config.learning_rate, state.model, grads);
            self.bar.inc(1);
            if (w + 1) % config.log_every_steps == 0 || w + 1 == warmup.steps {
                state = self.read_back(state, Phase::Warmup)?;
            }
        }
        ControlFlow::Continue(state)
    }

    /// The objective of training step `step` on the training examples
    /// `idx`: the target runs forward once, and every term the arm has on
    /// this step is computed from its output and taps.
    fn step<T: Network<Input = K::Input>>(
        &self,
        state: &State<T>,
        step: u64,
        idx: &[usize],
    ) -> Terms {
        let (spec, arm) = (self.spec, self.spec.arm);
        untrainable_core::seed(
            &self.train_device,
            RandomStream::TrainStep.seed_of_step(spec.seed, step),
        );
        let (input, targets) = spec.task.batch(Split::Train, idx, &self.train_device);
        let teacher = match arm.objective {
            Objective::Distillation(d) => Some((d, spec.guide.forward(input.clone()).output)),
            _ => None,
        };
        let guided = arm.guided_at(step);
        let guide = (guided || self.hint.is_some()).then(|| self.guide_batch(guided, idx, &input));
        let out = state.model.forward(input);
        let guidance = guide
            .as_ref()
            .filter(|_| guided)
            .map(|guide| self.guidance_term(&out.taps, guide));
        let hint = match (&self.hint, &state.regressor, guide) {
            (Some(hint), Some(regressor), Some(GuideBatch::Taps(taps))) => {
                Some(hint.loss(regressor, &out.taps, &taps))
            }
            _ => None,
        };
        let task = spec.task.loss(out.output.clone(), &targets);
        let distillation =
            teacher.map(|(d, teacher)| distillation_loss(out.output, teacher, d.temperature));
        Terms {
            task,
            guidance,
            distillation,
            hint,
        }
    }

    /// The guide's side of a guided or hinted step: its taps on noise where
    /// a guided arm's guide sees noise, else on the batch (from the taps
    /// table if any), or the batch's Gram matrices from the Gram tables.
    fn guide_batch(&self, guided: bool, idx: &[usize], input: &K::Input) -> GuideBatch {
        let spec = self.spec;
        let on_noise = guided && spec.arm.guidance().is_some_and(|g| g.guide_on_noise);
        let noise = || spec.task.noise(idx.len(), &self.train_device);
        match &self.guide_source {
            _ if on_noise => GuideBatch::Taps(spec.guide.forward(noise()).taps),
            GuideSource::Grams(table) => GuideBatch::Grams(table.gather(idx, self.device)),
            GuideSource::Taps(table) => GuideBatch::Taps(table.gather(idx, self.device)),
            GuideSource::Forward => GuideBatch::Taps(spec.guide.forward(input.clone()).taps),
        }
    }

    /// `Σ over the arm's pairs d(target tap, guide tap)`.
    fn guidance_term(&self, target: &[Tap], guide: &GuideBatch) -> Tensor<1> {
        let config = self.spec.config;
        let distance = self.spec.arm.distance(config);
        guidance_loss_of(
            target,
            guide,
            &self.guided_pairs,
            distance,
            config.reduction,
        )
    }

    /// One training step on the examples `idx`, batch `batch` of `epoch`:
    /// the loss, kept for logging, then an optimiser step, a checkpoint when
    /// due and a validation when due. The values are read back every
    /// `train.log_every_steps` steps and before a checkpoint or validation;
    /// the run stops as diverged at the first step whose loss is not finite.
    fn train_step<T: Network<Input = K::Input>>(
        &self,
        mut state: State<T>,
        epoch: u32,
        batch: usize,
        idx: &[usize],
    ) -> Result<Flow<T>, String> {
        let (config, step) = (self.spec.config, state.step);
        let terms = self.step(&state, step, idx);
        let mut values = logged_terms(&terms);
        let loss = objective(terms, &self.spec.arm.objective, config.alpha);
        values.push(("loss", "loss", loss.clone()));
        let checked = values.len() - 1;
        state.pending.push(StepValues {
            step,
            values,
            checked,
        });
        let trained = (state.model, state.regressor);
        let grads = GradientsParams::from_grads(loss.backward(), &trained);
        (state.model, state.regressor) =
            state
                .optim
                .step(config.learning_rate_at(epoch), trained, grads);
        state.step += 1;
        (state.epoch, state.batch) = (epoch, batch + 1);
        self.bar.inc(1);
        let due = |every: u64| state.step % every.max(1) == 0;
        let validation_due = config.eval_every_steps.is_some_and(due);
        let checkpoint_due = self.checkpoint.is_some_and(|c| due(c.every_steps));
        if validation_due || checkpoint_due || due(config.log_every_steps) {
            state = match self.read_back(state, Phase::Train) {
                ControlFlow::Continue(state) => state,
                ControlFlow::Break(diverged) => return Ok(ControlFlow::Break(diverged)),
            };
        }
        self.save_checkpoint_if_due(&state)?;
        if validation_due {
            let model = state.model.valid();
            self.evaluate(&mut state.log, &model, Split::Val, state.step, None);
        }
        Ok(ControlFlow::Continue(state))
    }

    /// Reads the pending steps' values back in one read and logs them;
    /// stops the run as diverged at the first step whose checked value is
    /// not finite, with the rows up to that step, as if it had stopped there.
    fn read_back<T: Network>(&self, mut state: State<T>, phase: Phase) -> Flow<T> {
        let mut last = None;
        for read in state.pending.read() {
            for &(metric, _, value) in &read.values {
                state.log.step(read.step, metric, value);
            }
            let (_, value) = read.checked();
            if !value.is_finite() {
                let (what, at) = (phase.checked(), read.step);
                let steps = (phase == Phase::Train).then_some(at);
                return ControlFlow::Break(self.diverged(state, what, value, at, steps));
            }
            if phase == Phase::Train {
                state.train_loss = value;
            }
            last = Some(read);
        }
        if let Some(read) = last {
            self.bar.set_message(phase.message(&read, state.epoch));
        }
        ControlFlow::Continue(state)
    }

    fn save_checkpoint_if_due<T: Network>(&self, state: &State<T>) -> Result<(), String> {
        let Some(c) = self.checkpoint else {
            return Ok(());
        };
        if state.step % c.every_steps.max(1) != 0 {
            return Ok(());
        }
        let loop_state = LoopState {
            step: state.step,
            epoch: state.epoch,
            batch: state.batch,
            train_loss: state.train_loss,
            final_val: state.log.final_val,
            best: state.log.best,
            has_best_model: state.best_model.is_some(),
            seconds: state.earlier_seconds + self.started.elapsed().as_secs_f64(),
        };
        // Saved from evaluation mode: burn keeps batch-norm running statistics
        // current only there (the training-mode module records stale ones).
        c.save(
            &loop_state,
            &state.log.rows,
            &state.model.valid(),
            state.best_model.as_ref(),
            state.regressor.as_ref().map(|r| r.valid()).as_ref(),
            &state.optim,
        )?;
        tracing::debug!(
            "{} seed {}: checkpoint at step {}",
            self.spec.arm.name,
            self.spec.seed,
            state.step
        );
        Ok(())
    }

    /// The pending steps' values read back, then validation loss and
    /// accuracy over the whole validation set and the CKA of every pair on
    /// the fixed batch, logged under `epoch`; keeps the network if it is
    /// the best so far.
    fn end_of_epoch<T: Network<Input = K::Input>>(
        &self,
        state: State<T>,
        epoch: u32,
    ) -> ControlFlow<ArmRun<T>, (State<T>, ValScore)> {
        let mut state = self.read_back(state, Phase::Train)?;
        let (spec, step) = (self.spec, state.step);
        let model = state.model.valid();
        let (loss, accuracy) = self
            .evaluate(&mut state.log, &model, Split::Val, step, Some(epoch))
            .means();
        let target_taps = model.forward(self.eval_batch.clone()).taps;
        let guide_taps = spec.guide.forward(self.eval_batch.clone()).taps;
        for (pair, cka) in spec
            .pairs
            .iter()
            .zip(pair_cka(&target_taps, &guide_taps, spec.pairs))
        {
            state
                .log
                .row(step, Some(epoch), Split::Val, &pair.metric_name(), cka);
        }
        if spec.config.intrinsic_dimension {
            self.log_intrinsic_dimension(&mut state.log, &model, step, epoch);
        }
        let score = ValScore { loss, accuracy };
        if state.log.end_of_epoch(epoch, score) {
            state.best_model = Some(state.model.valid());
        }
        ControlFlow::Continue((state, score))
    }

    fn note_epoch(&self, epoch: u32, score: ValScore) {
        let spec = self.spec;
        self.bar.suspend(|| {
            tracing::info!(
                "{} seed {} epoch {epoch}/{}: val loss {:.4}, val accuracy {:.4}",
                spec.arm.name,
                spec.seed,
                spec.config.epochs,
                score.loss,
                score.accuracy
            )
        });
    }

    /// The TwoNN intrinsic dimension of every target tap on the first
    /// `eval_batch_size` validation examples (TwoNN needs more points than
    /// one training batch holds).
    fn log_intrinsic_dimension<T: Network<Input = K::Input>>(
        &self,
        log: &mut Log,
        model: &T,
        step: u64,
        epoch: u32,
    ) {
        let task = self.spec.task;
        let n = self.spec.config.eval_batch_size.min(task.len(Split::Val));
        let idx: Vec<usize> = (0..n).collect();
        let taps = model
            .forward(task.batch(Split::Val, &idx, self.device).0)
            .taps;
        for tap in &taps {
            let [n, d] = tap.value.dims();
            let values = read_to_host(tap.value.clone().reshape([n * d]));
            match twonn_dimension(&Matrix::new(n, d, values), DEFAULT_TWONN_DISCARD) {
                Ok(d) => log.row(
                    step,
                    Some(epoch),
                    Split::Val,
                    &format!("twonn/{}", tap.name),
                    d,
                ),
                // Collapsed layers (two examples with one representation) have no
                // TwoNN estimate; the row is left out, not faked.
                Err(e) => {
                    tracing::debug!("no TwoNN dimension of {} at epoch {epoch}: {e}", tap.name)
                }
            }
        }
    }

    /// Scores `model` on every example of `part` (validation or test) and
    /// logs its `loss`, `accuracy` and the task's further metrics.
    fn evaluate<T: Network<Input = K::Input>>(
        &self,
        log: &mut Log,
        model: &T,
        split: Split,
        step: u64,
        epoch: Option<u32>,
    ) -> Score {
        let (task, config) = (self.spec.task, self.spec.config);
        let score = score_split(model, task, split, config.eval_batch_size, self.device);
        let (loss, accuracy) = score.means();
        log.row(step, epoch, split, "loss", loss);
        log.row(step, epoch, split, "accuracy", accuracy);
        for (name, value) in task.extra_metrics().iter().zip(score.extra_means()) {
            log.row(step, epoch, split, name, value);
        }
        score
    }

    /// The end of a finished run: the selected network (or the last one,
    /// if no epoch finished) measured once on the test split, if the task
    /// has one.
    fn test_selected<T: Network<Input = K::Input>>(&self, state: State<T>) -> ArmRun<T> {
        self.bar.finish_and_clear();
        let State {
            model,
            best_model,
            mut log,
            step,
            train_loss,
            earlier_seconds,
            ..
        } = state;
        log.final_train_loss = train_loss;
        let mut test_predictions = Vec::new();
        if self.spec.task.len(Split::Test) > 0 {
            let selected = best_model.clone().unwrap_or_else(|| model.valid());
            let epoch = Some(log.best.epoch);
            test_predictions = self
                .evaluate(&mut log, &selected, Split::Test, step, epoch)
                .predictions;
        }
        let (rows, mut summary) = log.finish(Status::Ok, None, step, self.started);
        summary.wall_seconds += earlier_seconds;
        ArmRun {
            rows,
            summary,
            best: best_model,
            test_predictions,
        }
    }

    /// The run stopped at `at` because `what` is `value`, not finite;
    /// `steps` training steps were taken (`None`: still warming up).
    fn diverged<T: Network>(
        &self,
        state: State<T>,
        what: &str,
        value: f64,
        at: u64,
        steps: Option<u64>,
    ) -> ArmRun<T> {
        let (name, seed) = (&self.spec.arm.name, self.spec.seed);
        let phase = if steps.is_some() {
            "step"
        } else {
            "warm-up step"
        };
        self.bar.suspend(|| {
            tracing::warn!(
                "{name} seed {seed}: {what} {value} at {phase} {at}; the arm stops as diverged"
            )
        });
        let (rows, summary) =
            (state.log).finish(Status::Diverged, Some(at), steps.unwrap_or(0), self.started);
        ArmRun {
            rows,
            summary,
            best: steps.and(state.best_model),
            test_predictions: Vec::new(),
        }
    }
}

impl<T: Network> State<T> {
    /// Before the first step.
    fn new(model: T, regressor: Option<Linear>, optim: ModuleOptimizer, log: Log) -> Self {
        Self {
            model,
            regressor,
            optim,
            log,
            best_model: None,
            step: 0,
            epoch: 0,
            batch: 0,
            train_loss: f64::NAN,
            pending: Pending::default(),
            earlier_seconds: 0.0,
            resumed: false,
        }
    }

    /// Continues from a checkpoint: its position, log and best network.
    fn resume(&mut self, saved: Saved, fresh: T) -> Result<(), String> {
        self.best_model = saved.best(fresh)?;
        let s = &saved.state;
        (self.step, self.train_loss, self.epoch, self.batch) =
            (s.step, s.train_loss, s.epoch, s.batch);
        self.earlier_seconds = s.seconds;
        (self.log.final_val, self.log.best) = (s.final_val, s.best);
        self.log.rows = saved.rows;
        self.resumed = true;
        Ok(())
    }
}

/// The step's terms in the order they are logged, each as (metric, the
/// progress bar's name, value): the baseline and guidance terms the arm
/// has, then the task loss.
fn logged_terms(terms: &Terms) -> Vec<(&'static str, &'static str, Tensor<1>)> {
    let mut values = Vec::new();
    for (metric, name, term) in [
        ("distill_loss", "distill", &terms.distillation),
        ("guidance_loss", "guidance", &terms.guidance),
        ("hint_loss", "hint", &terms.hint),
    ] {
        if let Some(term) = term {
            values.push((metric, name, term.clone()));
        }
    }
    values.push(("task_loss", "task", terms.task.clone()));
    values
}

/// Where a run is: its values are read back and checked alike in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Train,
}

impl Phase {
    /// What a non-finite checked value is, for the log.
    fn checked(self) -> &'static str {
        match self {
            Phase::Warmup => "guidance term",
            Phase::Train => "loss",
        }
    }

    /// The progress bar's message after the step `read`.
    fn message(self, read: &ReadStep, epoch: u32) -> String {
        let (_, value) = read.checked();
        let others: Vec<String> = (read.values.iter().enumerate())
            .filter(|&(i, _)| i != read.checked)
            .map(|(_, (_, name, v))| format!("{name} {v:.3}"))
            .collect();
        match self {
            Phase::Warmup => format!("warm-up 1-CKA sum {value:.3}"),
            Phase::Train => format!("epoch {epoch} loss {value:.3} ({})", others.join(", ")),
        }
    }
}

/// Where the guided or hinted steps of a run read the guide: from the Gram
/// tables where the guide sees the real batch, its inputs are fixed per
/// example, the term is linear CKA and the tables fit `train.gram_table_bytes`;
/// else from the taps table where the task has one; else by running it. Logs
/// which and why.
fn guide_source<K: Task, G: Network<Input = K::Input>>(
    spec: &RunSpec<'_, K, G>,
    guided_pairs: &[Pair],
    hint: Option<&Hint>,
    device: &Device,
) -> GuideSource {
    let (arm, config) = (spec.arm, spec.config);
    if !(arm.guidance().is_some_and(|g| !g.guide_on_noise) || hint.is_some()) {
        return GuideSource::Forward;
    }
    let distance = arm.distance(config);
    let taps_needed_by = match (hint, distance) {
        (Some(_), _) => Some("a hint regresses the guide's taps".to_string()),
        (None, untrainable_repsim::Distance::LinearCka) => None,
        (None, d) => Some(format!("the distance {} needs the guide's taps", d.name())),
    };
    let mut used: Vec<usize> = guided_pairs.iter().map(|p| p.guide).collect();
    used.sort_unstable();
    used.dedup();
    let plan = GramTablePlan {
        taps_needed_by,
        used: &used,
        budget: config.gram_table_bytes,
        batch_size: config.batch_size,
    };
    let table = spec
        .task
        .guide_table(spec.guide, config.eval_batch_size, device);
    let (source, why) = GuideSource::choose(table, &plan);
    tracing::info!("{} seed {}: {why}", arm.name, spec.seed);
    source
}

/// The pairs the arm's guidance term sums: its subset, or all.
fn guided_pairs(arm: &ArmConfig, pairs: &[Pair]) -> Result<Vec<Pair>, String> {
    match arm.pairs {
        Some(subset) => subset
            .select(pairs)
            .map_err(|e| format!("arm `{}`: {e}", arm.name)),
        None => Ok(pairs.to_vec()),
    }
}

/// A hinted arm's regressor, sized from the target's and the guide's taps
/// on the fixed batch; its weights from the checkpoint when resuming.
fn hint_regressor(
    hint: &Hint,
    (target, guide): (Vec<Tap>, Vec<Tap>),
    saved: Option<&Saved>,
    device: &Device,
) -> Result<Linear, String> {
    let fresh = hint.regressor(&target, &guide, device)?;
    match saved {
        Some(saved) => saved.hint(fresh),
        None => Ok(fresh),
    }
}

/// Adam, or AdamW where `weight_decay` > 0, with the configured clipping;
/// its state from the checkpoint when resuming.
fn optimiser(config: &TrainConfig, saved: Option<&Saved>) -> Result<ModuleOptimizer, String> {
    let clipping = config
        .grad_clip_norm
        .map(|n| GradientClippingConfig::Norm(n as f32));
    let optim = if config.weight_decay > 0.0 {
        AdamWConfig::new()
            .with_weight_decay(config.weight_decay as f32)
            .with_grad_clipping(clipping)
            .init()
    } else {
        untrainable_kernels::adam(clipping)
    };
    match saved {
        Some(saved) => saved.optimiser(optim),
        None => Ok(optim),
    }
}

/// Warm-up and training steps the run takes, for the progress bar.
fn planned_steps<K: Task, G: Network>(spec: &RunSpec<'_, K, G>, train_len: usize) -> u64 {
    let config = spec.config;
    let warmup = spec.arm.warmup.map_or(0, |w| w.steps);
    let planned = warmup + (train_len / config.batch_size) as u64 * config.epochs as u64;
    match config.max_steps {
        0 => planned,
        m => planned.min(warmup + m),
    }
}

fn fixed_eval_batch<K: Task>(task: &K, config: &TrainConfig, device: &Device) -> K::Input {
    let n = config.batch_size.min(task.len(Split::Val));
    let idx: Vec<usize> = (0..n).collect();
    task.batch(Split::Val, &idx, device).0
}

fn progress_bar<K, G: Network>(
    progress: Progress,
    total: u64,
    spec: &RunSpec<'_, K, G>,
) -> ProgressBar {
    let bar = ProgressBar::new(total);
    match progress {
        Progress::Quiet => bar.set_draw_target(ProgressDrawTarget::hidden()),
        Progress::Bar => bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>24} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        ),
    }
    bar.set_prefix(format!("{} seed {}", spec.arm.name, spec.seed));
    bar
}
