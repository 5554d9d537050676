//! What distinguishes one arm of an experiment from another: the objective
//! it trains by beside the task loss, an optional noise warm-up before
//! training, and which guide it reads.
//!
//! An arm's schedule is a type in which only meaningful combinations can be
//! written: an arm is guided, distilled or hinted (at most one), guidance
//! has a window of steps, and the shape of the guidance term (pairs,
//! distance) exists only where there is a guidance term. The config files
//! spell an arm as flat fields ([`ArmConfig`]'s TOML form, documented in
//! README); reading them checks the combinations and names what is wrong.

use serde::{Deserialize, Serialize};
use untrainable_repsim::Distance;

use crate::baselines::{DistillConfig, HintConfig};
use crate::config::TrainConfig;
use crate::mapping::PairSubset;

/// Which inputs the networks see during the noise warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseFor {
    /// Target and guide see the same noise batch (docs/paper.md §2.4, NeurIPS text).
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

/// Steps before training in which the target only minimises the guidance
/// term on noise inputs (no labels, no task loss).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoiseWarmup {
    /// At least 1.
    pub steps: u64,
    pub noise_for: NoiseFor,
}

/// The training steps `from ≤ step < until` on which guidance is on
/// (`until` absent: to the end of the run; early disconnect sets it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepWindow {
    pub from: u64,
    pub until: Option<u64>,
}

impl StepWindow {
    pub fn contains(&self, step: u64) -> bool {
        step >= self.from && self.until.is_none_or(|end| step < end)
    }
}

/// Guided training: task loss + α · the guidance term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Guidance {
    pub window: StepWindow,
    /// The guide sees noise instead of the batch the target sees (the
    /// released code's `--noise`, docs/paper.md §2.4).
    pub guide_on_noise: bool,
}

/// What an arm minimises in training beside the task loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// The task loss alone.
    Task,
    /// The guidance term, weighted by `train.alpha`.
    Guidance(Guidance),
    /// Logit distillation from the guide as the teacher (a baseline).
    Distillation(DistillConfig),
    /// A FitNets hint from the guide (a second baseline).
    Hint(HintConfig),
}

/// One arm of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ArmFields", into = "ArmFields")]
pub struct ArmConfig {
    pub name: String,
    /// The guide of the guidance term and the noise warm-up, the teacher of
    /// distillation and the source of the hint.
    pub guide: GuideState,
    pub warmup: Option<NoiseWarmup>,
    pub objective: Objective,
    /// Guide only these of the experiment's pairs (the layer ablations);
    /// absent: every pair. CKA is still logged for every pair. Only for an
    /// arm with a guidance term (guided or warmed up).
    pub pairs: Option<PairSubset>,
    /// The distance of this arm's guidance term in place of
    /// `train.distance` (the distance ablation); as `pairs`.
    pub distance: Option<Distance>,
}

impl ArmConfig {
    /// Plain training under `name`: the task loss alone, no warm-up.
    /// `ArmConfig { warmup: …, ..ArmConfig::plain("x") }` spells an arm by
    /// what sets it apart.
    pub fn plain(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            guide: GuideState::Untrained,
            warmup: None,
            objective: Objective::Task,
            pairs: None,
            distance: None,
        }
    }

    /// Guided on every training step, the guide seeing the target's batch.
    pub fn guided(name: impl Into<String>) -> Self {
        Self {
            objective: Objective::Guidance(Guidance::default()),
            ..Self::plain(name)
        }
    }

    /// The guided-training part of the objective, if any.
    pub fn guidance(&self) -> Option<&Guidance> {
        match &self.objective {
            Objective::Guidance(guidance) => Some(guidance),
            _ => None,
        }
    }

    /// Whether the arm computes a guidance term at all (in training or in
    /// the warm-up).
    pub fn has_guidance_term(&self) -> bool {
        self.guidance().is_some() || self.warmup.is_some()
    }

    /// Whether the guide is needed at all.
    pub fn uses_guide(&self) -> bool {
        self.warmup.is_some() || !matches!(self.objective, Objective::Task)
    }

    /// Whether training step `step` adds the guidance term.
    pub fn guided_at(&self, step: u64) -> bool {
        self.guidance().is_some_and(|g| g.window.contains(step))
    }

    /// The distance of this arm's guidance term.
    pub fn distance(&self, config: &TrainConfig) -> Distance {
        self.distance.unwrap_or(config.distance)
    }

    /// The checks the type cannot make: a name, values in range, and a
    /// guidance term wherever its shape is set.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty() {
            return Err("every arm needs a name".into());
        }
        match self.objective {
            Objective::Task => {}
            Objective::Guidance(Guidance { window, .. }) => {
                if let Some(end) = window.until
                    && window.from >= end
                {
                    return Err(format!(
                        "arm `{name}`: guided_from = {} must be below guided_steps = {end}",
                        window.from
                    ));
                }
            }
            Objective::Distillation(d) => d.validate(name)?,
            Objective::Hint(hint) => hint.validate(name)?,
        }
        if self.warmup.is_some_and(|w| w.steps == 0) {
            return Err(format!(
                "arm `{name}`: a noise warm-up needs at least 1 step"
            ));
        }
        if (self.pairs.is_some() || self.distance.is_some()) && !self.has_guidance_term() {
            return Err(format!(
                "arm `{name}` sets pairs or distance, which shape the guidance term, but is neither \
                 guided nor warmed up on noise; set guided = true"
            ));
        }
        Ok(())
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
}

/// An arm as the config files spell it: flat, independent fields. Every
/// field but `name` is optional.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArmFields {
    name: String,
    /// [`NoiseWarmup::steps`]; 0: no warm-up.
    #[serde(default)]
    noise_warmup_steps: u64,
    #[serde(default)]
    noise_for: NoiseFor,
    /// Add the guidance term to the task loss during training.
    #[serde(default)]
    guided: bool,
    /// [`StepWindow::until`].
    #[serde(default)]
    guided_steps: Option<u64>,
    /// [`StepWindow::from`].
    #[serde(default)]
    guided_from: u64,
    #[serde(default)]
    guide_on_noise: bool,
    #[serde(default)]
    guide: GuideState,
    #[serde(default)]
    distill: Option<DistillConfig>,
    #[serde(default)]
    hint: Option<HintConfig>,
    #[serde(default)]
    pairs: Option<PairSubset>,
    #[serde(default)]
    distance: Option<Distance>,
}

impl TryFrom<ArmFields> for ArmConfig {
    type Error = String;

    fn try_from(f: ArmFields) -> Result<Self, String> {
        let name = &f.name;
        let objective = match (f.guided, f.distill, f.hint) {
            (true, None, None) => Objective::Guidance(Guidance {
                window: StepWindow {
                    from: f.guided_from,
                    until: f.guided_steps,
                },
                guide_on_noise: f.guide_on_noise,
            }),
            (false, Some(distill), None) => Objective::Distillation(distill),
            (false, None, Some(hint)) => Objective::Hint(hint),
            (false, None, None) => Objective::Task,
            _ => {
                let set: Vec<&str> = [
                    (f.guided, "guided = true"),
                    (f.distill.is_some(), "distill"),
                    (f.hint.is_some(), "a hint"),
                ]
                .into_iter()
                .filter_map(|(on, what)| on.then_some(what))
                .collect();
                return Err(format!(
                    "arm `{name}` sets {}; an arm is guided, distilled or hinted, only one of these",
                    set.join(" and ")
                ));
            }
        };
        if !f.guided && (f.guided_from > 0 || f.guide_on_noise || f.guided_steps.is_some()) {
            return Err(format!(
                "arm `{name}` sets guided_from, guided_steps or guide_on_noise but not guided = true; \
                 set guided = true"
            ));
        }
        if f.noise_warmup_steps == 0 && f.noise_for != NoiseFor::Both {
            return Err(format!(
                "arm `{name}` sets noise_for but no noise_warmup_steps; set noise_warmup_steps \
                 to at least 1 or remove noise_for"
            ));
        }
        let warmup = (f.noise_warmup_steps > 0).then_some(NoiseWarmup {
            steps: f.noise_warmup_steps,
            noise_for: f.noise_for,
        });
        let arm = ArmConfig {
            name: f.name,
            guide: f.guide,
            warmup,
            objective,
            pairs: f.pairs,
            distance: f.distance,
        };
        arm.validate()?;
        Ok(arm)
    }
}

impl From<ArmConfig> for ArmFields {
    fn from(arm: ArmConfig) -> Self {
        let guidance = arm.guidance().copied();
        let window = guidance.map(|g| g.window).unwrap_or_default();
        let (distill, hint) = match arm.objective {
            Objective::Distillation(d) => (Some(d), None),
            Objective::Hint(h) => (None, Some(h)),
            Objective::Task | Objective::Guidance(_) => (None, None),
        };
        ArmFields {
            noise_warmup_steps: arm.warmup.map_or(0, |w| w.steps),
            noise_for: arm.warmup.map_or(NoiseFor::Both, |w| w.noise_for),
            guided: guidance.is_some(),
            guided_steps: window.until,
            guided_from: window.from,
            guide_on_noise: guidance.is_some_and(|g| g.guide_on_noise),
            guide: arm.guide,
            distill,
            hint,
            pairs: arm.pairs,
            distance: arm.distance,
            name: arm.name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ArmConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn every_preset_spelling_reads_and_writes_back_unchanged() {
        for text in [
            "name = \"base\"",
            "name = \"g\"\nguided = true\nguide = \"trained\"",
            "name = \"e\"\nguided = true\nguided_steps = 3",
            "name = \"w\"\nguided = true\nguided_from = 2\nguided_steps = 4\nguide_on_noise = true",
            "name = \"n\"\nnoise_warmup_steps = 3\nnoise_for = \"guide-only\"",
            "name = \"d\"\ndistill = { temperature = 4.0, weight = 0.5 }",
            "name = \"h\"\nhint = { weight = 1.0, pool_guide = true }",
            "name = \"r\"\nguided = true\ndistance = \"ridge\"\npairs = { evenly = 2 }",
        ] {
            let arm = parse(text).unwrap();
            let written = toml::to_string(&arm).unwrap();
            assert_eq!(parse(&written).unwrap(), arm, "{text}");
        }
        let window =
            parse("name = \"w\"\nguided = true\nguided_from = 2\nguided_steps = 4").unwrap();
        assert!(!window.guided_at(1) && window.guided_at(2) && window.guided_at(3));
        assert!(!window.guided_at(4));
        let warm = parse("name = \"n\"\nnoise_warmup_steps = 3").unwrap();
        assert_eq!(warm.objective, Objective::Task);
        assert_eq!(
            warm.warmup.map(|w| (w.steps, w.noise_for)),
            Some((3, NoiseFor::Both))
        );
    }

    #[test]
    fn invalid_combinations_are_refused_by_name() {
        for (text, expected) in [
            (
                "name = \"x\"\nguided = true\nhint = { weight = 1.0 }",
                "guided = true and a hint",
            ),
            (
                "name = \"x\"\nguided = true\ndistill = { temperature = 4.0, weight = 0.5 }",
                "guided = true and distill",
            ),
            ("name = \"x\"\nguided_steps = 3", "not guided = true"),
            ("name = \"x\"\nguide_on_noise = true", "not guided = true"),
            (
                "name = \"x\"\nguided = true\nguided_from = 5\nguided_steps = 4",
                "guided_from = 5",
            ),
            (
                "name = \"x\"\nnoise_for = \"guide-only\"",
                "no noise_warmup_steps",
            ),
            ("name = \"x\"\ndistance = \"rsa\"", "set guided = true"),
            (
                "name = \"x\"\ndistill = { temperature = 0.0, weight = 0.5 }",
                "distill.temperature",
            ),
            ("name = \"x\"\nhint = { weight = -1.0 }", "hint.weight"),
            ("name = \"\"", "needs a name"),
        ] {
            let message = parse(text).unwrap_err();
            assert!(message.contains(expected), "{text}: {message}");
            assert!(
                expected == "needs a name" || message.contains("`x`"),
                "{message}"
            );
        }
    }
}
