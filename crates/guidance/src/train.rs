//! The training loop shared by every experiment: plain, guided, noise
//! warm-up and early-disconnect arms are one loop with a schedule, over any
//! [`Task`].

use std::time::Instant;

use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use untrainable_core::{Guide, Network, Tap};
use untrainable_repsim::host::{DEFAULT_TWONN_DISCARD, twonn_dimension};
use untrainable_repsim::{Distance, host_matrix};
use untrainable_results::{MetricRow, Split, Status, SummaryRow};
use untrainable_tasks::fashion_mnist::epoch_batches;

use crate::checkpoint::{Checkpointing, LoopState};
use crate::hint::HintConfig;
use crate::loss::{Reduction, guidance_loss, pair_cka};
use crate::mapping::{Pair, PairSubset};
use crate::task::{Part, Score, Task, score_part};

/// Hyper-parameters of one training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: u32,
    pub batch_size: usize,
    /// Learning rate of Adam, or AdamW when `weight_decay` > 0 (default
    /// betas; NOTES §3).
    pub learning_rate: f64,
    /// Weight of the guidance term (the paper: 1).
    pub alpha: f64,
    /// The per-pair distance of the guidance term.
    #[serde(default)]
    pub distance: Distance,
    #[serde(default)]
    pub reduction: Reduction,
    /// Stop after this many training steps, 0 for no limit (to check that a
    /// large preset starts); the run is then evaluated where it stopped.
    #[serde(default)]
    pub max_steps: u64,
    /// Examples per evaluation batch.
    pub eval_batch_size: usize,
    /// AdamW's decoupled weight decay; 0 trains with Adam (the image
    /// experiments), the sequence tasks use 0.01 (PyTorch's AdamW default,
    /// NOTES §3).
    #[serde(default)]
    pub weight_decay: f64,
    /// Clip the gradient's global L2 norm to this (0.25 for language
    /// modelling, NOTES §3); absent: no clipping.
    #[serde(default)]
    pub grad_clip_norm: Option<f64>,
    /// Step decay of the learning rate (the image experiments: ×0.1 every
    /// 30 epochs, NOTES §3); absent: constant.
    #[serde(default)]
    pub lr_decay: Option<StepDecay>,
    /// Also measure validation loss and accuracy every this-many steps
    /// (rows without an epoch), for curves finer than one point per epoch;
    /// model selection stays per epoch. Absent: per epoch only.
    #[serde(default)]
    pub eval_every_steps: Option<u64>,
    /// At every epoch also log the TwoNN intrinsic dimension of each target
    /// tap on the first `eval_batch_size` validation examples
    /// (`twonn/<tap>`, the NeurIPS version's analysis, NOTES §2.6).
    #[serde(default)]
    pub intrinsic_dimension: bool,
}

/// `lr · factor^(epoch / every_epochs)` (integer division).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDecay {
    pub every_epochs: u32,
    pub factor: f64,
}

impl TrainConfig {
    /// The learning rate of `epoch` (from 0).
    pub fn learning_rate_at(&self, epoch: u32) -> f64 {
        match self.lr_decay {
            Some(d) => self.learning_rate * d.factor.powi((epoch / d.every_epochs.max(1)) as i32),
            None => self.learning_rate,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.epochs == 0 {
            return Err("train.epochs must be at least 1".into());
        }
        if self.batch_size < 2 || self.eval_batch_size < 2 {
            return Err(format!(
                "train.batch_size and train.eval_batch_size must be at least 2 (CKA compares examples \
                 within a batch); got {} and {}",
                self.batch_size, self.eval_batch_size
            ));
        }
        if self.batch_size < self.distance.min_batch() {
            return Err(format!(
                "train.distance = \"{}\" needs batches of at least {} examples, but train.batch_size is {}",
                self.distance.name(),
                self.distance.min_batch(),
                self.batch_size
            ));
        }
        if !(self.learning_rate > 0.0) {
            return Err(format!(
                "train.learning_rate must be positive, got {}",
                self.learning_rate
            ));
        }
        if !(self.alpha >= 0.0) {
            return Err(format!(
                "train.alpha must be at least 0, got {}",
                self.alpha
            ));
        }
        if !(self.weight_decay >= 0.0) {
            return Err(format!(
                "train.weight_decay must be at least 0 (0 = Adam), got {}",
                self.weight_decay
            ));
        }
        if let Some(d) = self.lr_decay
            && !(d.every_epochs >= 1 && d.factor > 0.0 && d.factor <= 1.0)
        {
            return Err(format!(
                "train.lr_decay needs every_epochs ≥ 1 and factor in (0, 1]; got {} and {}",
                d.every_epochs, d.factor
            ));
        }
        if let Some(clip) = self.grad_clip_norm
            && !(clip > 0.0)
        {
            return Err(format!(
                "train.grad_clip_norm must be positive, got {clip}; remove it to train without clipping"
            ));
        }
        Ok(())
    }
}

/// Which inputs the networks see during the noise warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseFor {
    /// Target and guide see the same noise batch (NOTES §2.4, NeurIPS text).
    #[default]
    Both,
    /// Only the guide sees noise; the target sees the real batch (the
    /// released code's `--noise`).
    GuideOnly,
}

/// Which guide an arm is aligned with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuideState {
    /// The guide as initialised (the paper's "untrained guide").
    #[default]
    Untrained,
    /// The guide after plain training on the same task, at its lowest
    /// validation loss.
    Trained,
}

/// Logit distillation (Hinton, Vinyals & Dean 2015) from the arm's guide as
/// the teacher: the training loss becomes
/// `(1 − weight) · task loss + weight · T² · KL(softmax(teacher / T) ‖ softmax(student / T))`,
/// the KL averaged over output rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillConfig {
    /// The softmax temperature `T` (> 0).
    pub temperature: f64,
    /// The weight of the distillation term, in [0, 1].
    pub weight: f64,
}

/// `T² · KL(softmax(teacher / T) ‖ softmax(student / T))`, mean over rows;
/// differentiable in `student`, the teacher a constant.
pub fn distillation_loss(student: Tensor<2>, teacher: Tensor<2>, temperature: f64) -> Tensor<1> {
    let rows = student.dims()[0] as f64;
    let log_q = log_softmax(student.div_scalar(temperature), 1);
    let log_p = log_softmax(teacher.div_scalar(temperature), 1);
    let kl = (log_p.clone().exp() * (log_p - log_q)).sum();
    kl.mul_scalar(temperature * temperature / rows)
}

/// What distinguishes one arm of an experiment from another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmConfig {
    pub name: String,
    /// Steps before training in which the target only minimises the
    /// guidance term on noise inputs (no labels, no task loss).
    #[serde(default)]
    pub noise_warmup_steps: u64,
    #[serde(default)]
    pub noise_for: NoiseFor,
    /// Add the guidance term to the task loss during training.
    #[serde(default)]
    pub guided: bool,
    /// Guide only the first this-many training steps (early disconnect);
    /// absent: the whole run.
    #[serde(default)]
    pub guided_steps: Option<u64>,
    /// Start guiding at this training step (with `guided_steps`, guidance
    /// is active on steps `guided_from ≤ step < guided_steps`).
    #[serde(default)]
    pub guided_from: u64,
    /// During guided training the guide sees noise instead of the batch the
    /// target sees (the released code's `--noise`, NOTES §2.4).
    #[serde(default)]
    pub guide_on_noise: bool,
    /// The guide of the guidance term and the noise warm-up, and the
    /// teacher of distillation.
    #[serde(default)]
    pub guide: GuideState,
    /// Train by logit distillation from the guide (a baseline to guidance).
    #[serde(default)]
    pub distill: Option<DistillConfig>,
    /// Train with a FitNets hint from the guide (a second baseline).
    #[serde(default)]
    pub hint: Option<HintConfig>,
    /// Guide only these of the experiment's pairs (the layer ablations);
    /// absent: every pair. CKA is still logged for every pair.
    #[serde(default)]
    pub pairs: Option<PairSubset>,
    /// The distance of this arm's guidance term in place of
    /// `train.distance` (the distance ablation).
    #[serde(default)]
    pub distance: Option<Distance>,
}

impl ArmConfig {
    /// Plain training under `name`: no guidance, warm-up or distillation.
    /// `ArmConfig { guided: true, ..ArmConfig::plain("guided") }` spells an
    /// arm by what sets it apart.
    pub fn plain(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            noise_warmup_steps: 0,
            noise_for: NoiseFor::Both,
            guided: false,
            guided_steps: None,
            guided_from: 0,
            guide_on_noise: false,
            guide: GuideState::Untrained,
            distill: None,
            hint: None,
            pairs: None,
            distance: None,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("every arm needs a name".into());
        }
        if let Some(d) = self.distill
            && !(d.temperature > 0.0 && (0.0..=1.0).contains(&d.weight))
        {
            return Err(format!(
                "arm `{}`: distill.temperature must be > 0 and distill.weight in [0, 1]; got {} and {}",
                self.name, d.temperature, d.weight
            ));
        }
        if let Some(hint) = self.hint {
            hint.validate(&self.name)?;
            if self.guided {
                return Err(format!(
                    "arm `{}` sets both guided = true and a hint; an arm is guided or hinted, not both",
                    self.name
                ));
            }
        }
        if (self.pairs.is_some() || self.distance.is_some())
            && !(self.guided || self.noise_warmup_steps > 0)
        {
            return Err(format!(
                "arm `{}` sets pairs or distance, which shape the guidance term, but is neither \
                 guided nor warmed up on noise; set guided = true",
                self.name
            ));
        }
        if (self.guided_from > 0 || self.guide_on_noise) && !self.guided {
            return Err(format!(
                "arm `{}` sets guided_from or guide_on_noise but not guided = true; set guided = true",
                self.name
            ));
        }
        if let Some(end) = self.guided_steps
            && self.guided_from >= end
        {
            return Err(format!(
                "arm `{}`: guided_from = {} must be below guided_steps = {end}",
                self.name, self.guided_from
            ));
        }
        if self.guided_steps.is_some() && !self.guided {
            return Err(format!(
                "arm `{}` sets guided_steps but not guided = true; set both to guide the first steps",
                self.name
            ));
        }
        Ok(())
    }

    /// The distance of this arm's guidance term.
    pub fn distance(&self, config: &TrainConfig) -> Distance {
        self.distance.unwrap_or(config.distance)
    }

    /// Checks what depends on the training config: the distance's smallest
    /// batch.
    pub fn validate_with(&self, config: &TrainConfig) -> Result<(), String> {
        let distance = self.distance(config);
        if config.batch_size < distance.min_batch() {
            return Err(format!(
                "arm `{}` uses the distance \"{}\", which needs batches of at least {} examples, \
                 but train.batch_size is {}",
                self.name,
                distance.name(),
                distance.min_batch(),
                config.batch_size
            ));
        }
        Ok(())
    }

    /// Whether the guide is needed at all.
    pub fn uses_guide(&self) -> bool {
        self.guided || self.noise_warmup_steps > 0 || self.distill.is_some() || self.hint.is_some()
    }

    fn guided_at(&self, step: u64) -> bool {
        self.guided && step >= self.guided_from && self.guided_steps.is_none_or(|k| step < k)
    }
}

/// Everything one (arm, seed) run produced.
pub struct ArmRun<T> {
    pub rows: Vec<MetricRow>,
    pub summary: SummaryRow,
    /// The network at its lowest validation loss (the paper's model
    /// selection), in evaluation mode on the plain device; `None` if no
    /// epoch finished.
    pub best: Option<T>,
    /// That network's `(label, predicted class)` for every test example, in
    /// order, where the task has a test split and predicts classes
    /// ([`Score::predictions`](crate::Score::predictions)); empty otherwise.
    pub test_predictions: Vec<(u32, u32)>,
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

/// Trains `target` (built on a plain device; trained on its autodiff twin)
/// under one arm's schedule, evaluating after every epoch.
///
/// Build `target` afresh for every arm (the same seed gives the same
/// weights): clones of a burn module share batch-norm running statistics.
#[allow(clippy::too_many_arguments)]
pub fn train_arm<K, T, G>(
    experiment: &str,
    arm: &ArmConfig,
    seed: u64,
    target: T,
    guide: &Guide<G>,
    pairs: &[Pair],
    task: &K,
    config: &TrainConfig,
    device: &Device,
    progress: Progress,
) -> ArmRun<T>
where
    K: Task,
    T: Network<Input = K::Input>,
    G: Network<Input = K::Input>,
{
    train_arm_checkpointed(
        experiment, arm, seed, target, guide, pairs, task, config, device, progress, None,
    )
    .expect("a run without checkpoints touches no file")
}

/// The random stream of training step `step` (dropout masks, noise): fixed
/// by the seed and the step alone, so a run resumed from a checkpoint draws
/// what the uninterrupted run drew.
fn step_stream(seed: u64, phase: u64, step: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ phase.rotate_left(48)
        ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03)
}

/// [`train_arm`], saving a checkpoint every `checkpoint.every_steps`
/// training steps and continuing from the newest one found in
/// `checkpoint.dir`; the noise warm-up, if any, is rerun from its start
/// (its steps are few and deterministic). On the CPU backend the resumed run
/// ends with exactly the numbers of an uninterrupted one.
///
/// # Errors
/// A checkpoint that cannot be written or read back.
#[allow(clippy::too_many_arguments)]
pub fn train_arm_checkpointed<K, T, G>(
    experiment: &str,
    arm: &ArmConfig,
    seed: u64,
    target: T,
    guide: &Guide<G>,
    pairs: &[Pair],
    task: &K,
    config: &TrainConfig,
    device: &Device,
    progress: Progress,
    checkpoint: Option<&Checkpointing>,
) -> Result<ArmRun<T>, String>
where
    K: Task,
    T: Network<Input = K::Input>,
    G: Network<Input = K::Input>,
{
    let started = Instant::now();
    let train_device = device.clone().autodiff();
    untrainable_core::seed(&train_device, seed);
    let saved = match checkpoint {
        Some(c) => c.latest()?,
        None => None,
    };
    let fresh = target.clone();
    let target = match &saved {
        Some(saved) => saved.model(target)?,
        None => target,
    };
    let mut model = target.fork(&train_device).train();
    let eval_batch = fixed_eval_batch(task, config, device);
    let hint = arm.hint.map(|h| h.resolve(&arm.name, pairs)).transpose()?;
    // The hint's regressor is trained with the target, by the same optimiser.
    let mut regressor = match &hint {
        Some(hint) => {
            let fresh = hint.regressor(
                &model.valid().forward(eval_batch.clone()).taps,
                &guide.forward(eval_batch.clone()).taps,
                device,
            )?;
            let loaded = match &saved {
                Some(saved) => saved.hint(fresh)?,
                None => fresh,
            };
            Some(loaded.fork(&train_device))
        }
        None => None,
    };
    let clipping = config
        .grad_clip_norm
        .map(|n| GradientClippingConfig::Norm(n as f32));
    let mut optim = if config.weight_decay > 0.0 {
        AdamWConfig::new()
            .with_weight_decay(config.weight_decay as f32)
            .with_grad_clipping(clipping)
            .init()
    } else {
        untrainable_core::adam(clipping)
    };
    if let Some(saved) = &saved {
        optim = saved.optimiser(optim)?;
    }
    let mut log = Log::new(experiment, &arm.name, seed);

    let train_len = task.len(Part::Train);
    let steps_per_epoch = (train_len / config.batch_size) as u64;
    let planned = arm.noise_warmup_steps + steps_per_epoch * config.epochs as u64;
    let total = match config.max_steps {
        0 => planned,
        m => planned.min(arm.noise_warmup_steps + m),
    };
    let bar = progress_bar(progress, total, &format!("{} seed {seed}", arm.name));

    let guided_pairs = match arm.pairs {
        Some(subset) => subset
            .select(pairs)
            .map_err(|e| format!("arm `{}`: {e}", arm.name))?,
        None => pairs.to_vec(),
    };
    if arm.guided {
        // How many pairs the term sums, for comparisons across subsets.
        log.row(
            0,
            None,
            Split::Train,
            GUIDED_PAIRS,
            guided_pairs.len() as f64,
        );
    }
    let guide_terms = |model: &T, target_input: K::Input, guide_taps: &[Tap]| {
        let target_out = model.forward(target_input);
        let term = guidance_loss(
            &target_out.taps,
            guide_taps,
            &guided_pairs,
            arm.distance(config),
            config.reduction,
        );
        (target_out.output, term)
    };
    // Guided and hinted steps on real batches read the guide's taps from a table.
    let guide_table = if (arm.guided && !arm.guide_on_noise) || hint.is_some() {
        task.guide_table(guide, config.eval_batch_size, device)
    } else {
        None
    };

    // Noise warm-up: only the guidance term, on noise.
    let warmup_steps = if saved.is_some() {
        0
    } else {
        arm.noise_warmup_steps
    };
    for w in 0..warmup_steps {
        untrainable_core::seed(&train_device, step_stream(seed, 1, w));
        let noise = task.noise(config.batch_size, &train_device);
        let target_input = match arm.noise_for {
            NoiseFor::Both => noise.clone(),
            NoiseFor::GuideOnly => {
                // A fresh random batch per warm-up step, from a stream apart from the epochs'.
                let idx =
                    epoch_batches(train_len, config.batch_size, !seed, w, true).swap_remove(0);
                task.batch(Part::Train, &idx, &train_device).0
            }
        };
        let (_, term) = guide_terms(&model, target_input, &guide.forward(noise).taps);
        let value = term.clone().into_scalar::<f64>();
        log.step(w, "warmup_guidance_loss", value);
        if !value.is_finite() {
            bar.suspend(|| {
                tracing::warn!(
                    "{} seed {seed}: guidance term {value} at warm-up step {w}; the arm stops as diverged",
                    arm.name
                )
            });
            let (rows, summary) = log.finish(Status::Diverged, Some(w), 0, started);
            return Ok(ArmRun {
                rows,
                summary,
                best: None,
                test_predictions: Vec::new(),
            });
        }
        let grads = GradientsParams::from_grads(term.backward(), &model);
        model = optim.step(config.learning_rate, model, grads);
        bar.inc(1);
        bar.set_message(format!("warm-up 1-CKA sum {value:.3}"));
    }

    let mut best_model: Option<T> = None;
    let mut step = 0u64;
    let mut train_loss = f64::NAN;
    let (mut start_epoch, mut start_batch, mut earlier_seconds) = (0, 0, 0.0);
    if let Some(saved) = saved {
        best_model = saved.best(fresh)?;
        let state = saved.state;
        (step, train_loss, start_epoch, start_batch, earlier_seconds) = (
            state.step,
            state.train_loss,
            state.epoch,
            state.batch,
            state.seconds,
        );
        (log.final_val, log.best, log.rows) = (state.final_val, state.best, saved.rows);
        bar.inc(arm.noise_warmup_steps + step);
        bar.suspend(|| {
            tracing::info!(
                "{} seed {seed}: resumed from the checkpoint at step {step}",
                arm.name
            )
        });
    }
    'epochs: for epoch in start_epoch..config.epochs {
        let skip = if epoch == start_epoch { start_batch } else { 0 };
        let batches = epoch_batches(train_len, config.batch_size, seed, epoch as u64, true);
        task.plan_training(&batches[skip.min(batches.len())..], seed, epoch as u64);
        for (b, idx) in batches.into_iter().enumerate().skip(skip) {
            if config.max_steps > 0 && step >= config.max_steps {
                let best_before = log.best.0;
                let _ = log.epoch(
                    &model,
                    guide,
                    pairs,
                    task,
                    config,
                    epoch,
                    step,
                    &eval_batch,
                    device,
                );
                if log.best.0 < best_before {
                    best_model = Some(model.valid());
                }
                break 'epochs;
            }
            untrainable_core::seed(&train_device, step_stream(seed, 2, step));
            let (input, targets) = task.batch(Part::Train, &idx, &train_device);
            let teacher = arm
                .distill
                .map(|d| (d, guide.forward(input.clone()).output));
            let guided = arm.guided_at(step);
            let mut hint_term = None;
            let (output, term) = if guided {
                let guide_taps = match &guide_table {
                    _ if arm.guide_on_noise => {
                        guide.forward(task.noise(idx.len(), &train_device)).taps
                    }
                    Some(table) => table.gather(&idx, device),
                    None => guide.forward(input.clone()).taps,
                };
                let (output, term) = guide_terms(&model, input, &guide_taps);
                (output, Some(term))
            } else if let (Some(hint), Some(regressor)) = (&hint, &regressor) {
                let guide_taps = match &guide_table {
                    Some(table) => table.gather(&idx, device),
                    None => guide.forward(input.clone()).taps,
                };
                let out = model.forward(input);
                hint_term = Some((hint.weight, hint.loss(regressor, &out.taps, &guide_taps)));
                (out.output, None)
            } else {
                (model.forward(input).output, None)
            };
            let task_loss = task.loss(output.clone(), &targets);
            let task_value = task_loss.clone().into_scalar::<f64>();
            let mut loss = task_loss;
            // The terms of this step, for the log and the progress bar.
            let mut terms = vec![("task", task_value)];
            if let Some((distill, teacher)) = teacher {
                let term = distillation_loss(output, teacher, distill.temperature);
                let value = term.clone().into_scalar::<f64>();
                log.step(step, "distill_loss", value);
                terms.push(("distill", value));
                loss = loss.mul_scalar(1.0 - distill.weight) + term.mul_scalar(distill.weight);
            }
            if let Some(term) = term {
                let value = term.clone().into_scalar::<f64>();
                log.step(step, "guidance_loss", value);
                terms.push(("guidance", value));
                loss = loss + term.mul_scalar(config.alpha);
            }
            if let Some((weight, term)) = hint_term {
                let value = term.clone().into_scalar::<f64>();
                log.step(step, "hint_loss", value);
                terms.push(("hint", value));
                loss = loss + term.mul_scalar(weight);
            }
            train_loss = loss.clone().into_scalar::<f64>();
            log.step(step, "task_loss", task_value);
            log.step(step, "loss", train_loss);
            if !train_loss.is_finite() {
                bar.suspend(|| {
                    tracing::warn!(
                        "{} seed {seed}: loss {train_loss} at step {step}; the arm stops as diverged",
                        arm.name
                    )
                });
                let (rows, summary) = log.finish(Status::Diverged, Some(step), step, started);
                return Ok(ArmRun {
                    rows,
                    summary,
                    best: best_model,
                    test_predictions: Vec::new(),
                });
            }
            let trained = (model, regressor);
            let grads = GradientsParams::from_grads(loss.backward(), &trained);
            (model, regressor) = optim.step(config.learning_rate_at(epoch), trained, grads);
            step += 1;
            if let Some(c) = checkpoint
                && step % c.every_steps.max(1) == 0
            {
                let state = LoopState {
                    step,
                    epoch,
                    batch: b + 1,
                    train_loss,
                    final_val: log.final_val,
                    best: log.best,
                    has_best_model: best_model.is_some(),
                    seconds: earlier_seconds + started.elapsed().as_secs_f64(),
                };
                // Saved from evaluation mode: burn keeps batch-norm running statistics
                // current only there (the training-mode module records stale ones).
                c.save(
                    &state,
                    &log.rows,
                    &model.valid(),
                    best_model.as_ref(),
                    regressor.as_ref().map(|r| r.valid()).as_ref(),
                    &optim,
                )?;
                tracing::debug!("{} seed {seed}: checkpoint at step {step}", arm.name);
            }
            if let Some(every) = config.eval_every_steps
                && step % every.max(1) == 0
            {
                log.evaluation(&model.valid(), task, Part::Val, config, step, None, device);
            }
            bar.inc(1);
            let terms: Vec<String> = terms.iter().map(|(n, v)| format!("{n} {v:.3}")).collect();
            bar.set_message(format!(
                "epoch {epoch} loss {train_loss:.3} ({})",
                terms.join(", ")
            ));
        }
        let best_before = log.best.0;
        let (val_loss, val_accuracy) = log.epoch(
            &model,
            guide,
            pairs,
            task,
            config,
            epoch + 1,
            step,
            &eval_batch,
            device,
        );
        if log.best.0 < best_before {
            best_model = Some(model.valid());
        }
        bar.suspend(|| {
            tracing::info!(
                "{} seed {seed} epoch {}/{}: val loss {val_loss:.4}, val accuracy {val_accuracy:.4}",
                arm.name,
                epoch + 1,
                config.epochs
            )
        });
    }
    bar.finish_and_clear();
    log.final_train_loss = train_loss;
    let mut test_predictions = Vec::new();
    if task.len(Part::Test) > 0 {
        // The selected network on the held-out split, once.
        let selected = best_model.clone().unwrap_or_else(|| model.valid());
        let epoch = Some(log.best.2);
        test_predictions = log
            .evaluation(&selected, task, Part::Test, config, step, epoch, device)
            .predictions;
    }
    let (rows, mut summary) = log.finish(Status::Ok, None, step, started);
    summary.wall_seconds += earlier_seconds;
    Ok(ArmRun {
        rows,
        summary,
        best: best_model,
        test_predictions,
    })
}

/// The validation batch on which per-pair CKA is measured every epoch: the
/// first `batch_size` validation examples, so it is the same for every arm.
fn fixed_eval_batch<K: Task>(task: &K, config: &TrainConfig, device: &Device) -> K::Input {
    let n = config.batch_size.min(task.len(Part::Val));
    let idx: Vec<usize> = (0..n).collect();
    task.batch(Part::Val, &idx, device).0
}

fn progress_bar(progress: Progress, total: u64, prefix: &str) -> ProgressBar {
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
    bar.set_prefix(prefix.to_string());
    bar
}

/// Collects the rows of one run and tracks the best epoch.
struct Log {
    experiment: String,
    arm: String,
    seed: u64,
    rows: Vec<MetricRow>,
    final_train_loss: f64,
    final_val: (f64, f64),
    best: (f64, f64, u32),
}

impl Log {
    fn new(experiment: &str, arm: &str, seed: u64) -> Self {
        Self {
            experiment: experiment.into(),
            arm: arm.into(),
            seed,
            rows: Vec::new(),
            final_train_loss: f64::NAN,
            final_val: (f64::NAN, f64::NAN),
            best: (f64::INFINITY, f64::NAN, 0),
        }
    }

    fn row(&mut self, step: u64, epoch: Option<u32>, split: Split, metric: &str, value: f64) {
        self.rows.push(MetricRow {
            experiment: self.experiment.clone(),
            arm: self.arm.clone(),
            seed: self.seed,
            step,
            epoch,
            split,
            metric: metric.into(),
            value,
        });
    }

    fn step(&mut self, step: u64, metric: &str, value: f64) {
        self.row(step, None, Split::Train, metric, value);
    }

    /// Scores `model` on every example of `part` (validation or test) and
    /// logs its `loss`, `accuracy` and the task's further metrics; returns
    /// the summed score.
    #[allow(clippy::too_many_arguments)]
    fn evaluation<K: Task, T: Network<Input = K::Input>>(
        &mut self,
        model: &T,
        task: &K,
        part: Part,
        config: &TrainConfig,
        step: u64,
        epoch: Option<u32>,
        device: &Device,
    ) -> Score {
        let split = match part {
            Part::Train => Split::Train,
            Part::Val => Split::Val,
            Part::Test => Split::Test,
        };
        let score = score_part(model, task, part, config.eval_batch_size, device);
        let (loss, accuracy) = score.means();
        self.row(step, epoch, split, "loss", loss);
        self.row(step, epoch, split, "accuracy", accuracy);
        for (name, value) in task.extra_metrics().iter().zip(score.extra_means()) {
            self.row(step, epoch, split, name, value);
        }
        score
    }

    /// Validation loss and accuracy over the whole validation set, and the
    /// CKA of every pair on the fixed batch.
    #[allow(clippy::too_many_arguments)]
    fn epoch<K, T, G>(
        &mut self,
        model: &T,
        guide: &Guide<G>,
        pairs: &[Pair],
        task: &K,
        config: &TrainConfig,
        epoch: u32,
        step: u64,
        eval_batch: &K::Input,
        device: &Device,
    ) -> (f64, f64)
    where
        K: Task,
        T: Network<Input = K::Input>,
        G: Network<Input = K::Input>,
    {
        let model = model.valid();
        let (loss, accuracy) = self
            .evaluation(&model, task, Part::Val, config, step, Some(epoch), device)
            .means();
        let target_taps = model.forward(eval_batch.clone()).taps;
        let guide_taps = guide.forward(eval_batch.clone()).taps;
        for (pair, cka) in pairs.iter().zip(pair_cka(&target_taps, &guide_taps, pairs)) {
            self.row(step, Some(epoch), Split::Val, &pair.metric_name(), cka);
        }
        if config.intrinsic_dimension {
            // The first eval_batch_size validation examples: TwoNN needs more
            // points than one training batch holds.
            let n = config.eval_batch_size.min(task.len(Part::Val));
            let idx: Vec<usize> = (0..n).collect();
            let taps = model.forward(task.batch(Part::Val, &idx, device).0).taps;
            for tap in &taps {
                let x = host_matrix(&tap.value);
                match twonn_dimension(&x, DEFAULT_TWONN_DISCARD) {
                    Ok(d) => self.row(
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
        self.final_val = (loss, accuracy);
        if loss < self.best.0 {
            self.best = (loss, accuracy, epoch);
        }
        (loss, accuracy)
    }

    fn finish(
        self,
        status: Status,
        status_step: Option<u64>,
        steps: u64,
        started: Instant,
    ) -> (Vec<MetricRow>, SummaryRow) {
        let summary = SummaryRow {
            experiment: self.experiment.clone(),
            arm: self.arm.clone(),
            seed: self.seed,
            status,
            status_step,
            steps,
            final_train_loss: self.final_train_loss,
            final_val_loss: self.final_val.0,
            best_val_loss: if self.best.0.is_finite() {
                self.best.0
            } else {
                f64::NAN
            },
            best_epoch: self.best.2,
            final_val_accuracy: self.final_val.1,
            best_val_accuracy: self.best.1,
            wall_seconds: started.elapsed().as_secs_f64(),
        };
        (self.rows, summary)
    }
}
