//! The paper's figures, drawn only from the experiments' parquet files, so
//! that they regenerate in seconds without training.
//!
//! Each experiment registers a draw function in [`FIGURES`]; the
//! `paper-figures` binary draws every experiment whose results exist.

pub mod ablations;
pub mod claims;
pub mod claims_figure;
pub mod error_consistency;
pub mod image_guidance;
pub mod plot;
pub mod stats;
pub mod tables;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::style::FontStyle;
use untrainable_results::{MetricRow, ResultsError, Split};

use crate::plot::{Curve, Figure, Panel, role_color};
use crate::stats::{StepBins, arms_in_order, binned_mean_sd, mean_sd_by_x, seeds_per_arm};

pub use crate::ablations::draw_ablations;
pub use crate::error_consistency::draw_error_consistency;
pub use crate::image_guidance::draw_image_guidance;

/// The font family name every text style uses.
pub(crate) const FONT: &str = "sans-serif";

/// DejaVu Sans, compiled in so that drawing needs no system font library.
static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Registers the bundled font once per process.
pub(crate) fn ensure_font() -> Result<(), FigureError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(FigureError::Font(
            "the bundled assets/fonts/DejaVuSans.ttf could not be parsed; restore it from git"
                .into(),
        ))
    }
}

/// Why a figure could not be drawn.
#[derive(Debug)]
#[non_exhaustive]
pub enum FigureError {
    /// Reading the results (or writing the SVG through them) failed.
    Results(ResultsError),
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// The plotting library refused to draw.
    Draw {
        path: PathBuf,
        message: String,
    },
    Font(String),
    /// The rows hold nothing this figure can show.
    NoData {
        experiment: String,
        expected: String,
    },
}

impl fmt::Display for FigureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Results(e) => e.fmt(f),
            Self::Io {
                path,
                action,
                source,
            } => {
                write!(
                    f,
                    "cannot {action} {}: {source}; check that `--out` is writable",
                    path.display()
                )
            }
            Self::Draw { path, message } => write!(f, "cannot draw {}: {message}", path.display()),
            Self::Font(message) => write!(f, "font: {message}"),
            Self::NoData {
                experiment,
                expected,
            } => write!(
                f,
                "no rows to draw for {experiment}: expected {expected}; run `cargo run -p exp-{experiment}` to write them"
            ),
        }
    }
}

impl std::error::Error for FigureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Results(e) => Some(e),
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ResultsError> for FigureError {
    fn from(e: ResultsError) -> Self {
        Self::Results(e)
    }
}

/// An experiment whose figure this crate draws.
pub struct ExperimentFigure {
    /// The directory name under `--results` and the stem of the figure.
    pub experiment: &'static str,
    /// The command that writes its `metrics.parquet`.
    pub producer: &'static str,
    pub draw: fn(&[MetricRow], &Path) -> Result<(), FigureError>,
}

/// Every figure the `paper-figures` binary knows how to draw.
pub const FIGURES: &[ExperimentFigure] = &[
    ExperimentFigure {
        experiment: "fcn-warmup",
        producer: "cargo run -p exp-fcn-warmup",
        draw: draw_fcn_warmup,
    },
    ExperimentFigure {
        experiment: "copy-paste",
        producer: "cargo run -p exp-copy-paste",
        draw: draw_copy_paste,
    },
    ExperimentFigure {
        experiment: "parity",
        producer: "cargo run -p exp-parity",
        draw: draw_parity,
    },
    ExperimentFigure {
        experiment: "lm",
        producer: "cargo run -p exp-lm",
        draw: draw_lm,
    },
    ExperimentFigure {
        experiment: "image-guidance",
        producer: "cargo run -p exp-image-guidance",
        draw: draw_image_guidance,
    },
    ExperimentFigure {
        experiment: "kd-vs-guidance",
        producer: "cargo run -p exp-kd-vs-guidance",
        draw: draw_kd_vs_guidance,
    },
    ExperimentFigure {
        experiment: "error-consistency",
        producer: "cargo run -p exp-error-consistency",
        draw: draw_error_consistency,
    },
    ExperimentFigure {
        experiment: "ablations",
        producer: "cargo run -p exp-ablations",
        draw: draw_ablations,
    },
];

/// "3 seeds", or "2–3 seeds" when arms differ.
fn seed_phrase(counts: &[usize]) -> String {
    let lo = counts.iter().copied().min().unwrap_or(0);
    let hi = counts.iter().copied().max().unwrap_or(0);
    match (lo, hi) {
        (1, 1) => "1 seed".to_string(),
        (lo, hi) if lo == hi => format!("{lo} seeds"),
        (lo, hi) => format!("{lo}–{hi} seeds"),
    }
}

/// Bins across the run for per-step curves: enough to show the shape,
/// few enough to average out minibatch noise.
const STEP_BINS: u64 = 100;

/// The per-step training metric: the task's cross-entropy where the rows
/// have it, since `loss` of a guided arm also holds the guidance term.
fn train_metric(rows: &[MetricRow]) -> &'static str {
    if rows
        .iter()
        .any(|r| r.metric == "task_loss" && r.split == Split::Train && r.epoch.is_none())
    {
        "task_loss"
    } else {
        "loss"
    }
}

/// fcn-warmup (docs/paper.md §2.4): the training curves of [`draw_training_curves`].
pub fn draw_fcn_warmup(metrics: &[MetricRow], out_stem: &Path) -> Result<(), FigureError> {
    draw_training_curves("fcn-warmup", metrics, out_stem)
}

/// copy-paste (docs/paper.md §2.2, Table 2): the training curves of
/// [`draw_training_curves`]; accuracy is over the copied tokens.
pub fn draw_copy_paste(metrics: &[MetricRow], out_stem: &Path) -> Result<(), FigureError> {
    draw_training_curves("copy-paste", metrics, out_stem)
}

/// parity (docs/paper.md §2.2, Table 2): the training curves of [`draw_training_curves`].
pub fn draw_parity(metrics: &[MetricRow], out_stem: &Path) -> Result<(), FigureError> {
    draw_training_curves("parity", metrics, out_stem)
}

/// kd-vs-guidance (docs/paper.md §2.5): the training curves of
/// [`draw_training_curves`] for the Deep FCN's guidance, distillation and
/// hint arms and the guide alone.
pub fn draw_kd_vs_guidance(metrics: &[MetricRow], out_stem: &Path) -> Result<(), FigureError> {
    draw_training_curves("kd-vs-guidance", metrics, out_stem)
}

/// lm (docs/paper.md §2.2, LM columns of Table 2): for the small (4-layer) and the
/// large (6-layer) RNN in turn, (a) the training task loss per step, binned,
/// and (b) the validation word-level perplexity (`word_ppl`) per epoch, of
/// the arms `<target>/<arm>` and of the Transformer trained alone (`guide`)
/// for reference. One colour per arm role (base, trained guide, untrained
/// guide, guide alone) in all panels; line = mean over seeds, band = ±1 sd.
pub fn draw_lm(metrics: &[MetricRow], out_stem: &Path) -> Result<(), FigureError> {
    const TARGETS: [(&str, &str); 2] = [("small", "4-layer"), ("large", "6-layer")];
    let train = train_metric(metrics);
    let is_train =
        |r: &MetricRow| r.split == Split::Train && r.epoch.is_none() && r.metric == train;
    let is_ppl =
        |r: &MetricRow| r.split == Split::Val && r.epoch.is_some() && r.metric == "word_ppl";
    if !metrics.iter().any(is_ppl) {
        return Err(FigureError::NoData {
            experiment: "lm".into(),
            expected: "per-epoch validation `word_ppl` rows".into(),
        });
    }
    // The count-based anchor (arm `kneser-ney`) has no curves: only test rows.
    let mut arms = arms_in_order(metrics);
    arms.retain(|a| a != "kneser-ney");
    // The role of an arm: what follows `<target>/`, or the arm itself.
    let role = |arm: &str| arm.split_once('/').map_or(arm, |(_, r)| r).to_string();
    let mut roles: Vec<String> = Vec::new();
    for arm in &arms {
        if !roles.contains(&role(arm)) {
            roles.push(role(arm));
        }
    }
    // The Transformer alone, the reference, last.
    roles.sort_by_key(|r| r == "guide");
    let color =
        |arm: &str| role_color(arm, roles.iter().position(|r| *r == role(arm)).unwrap_or(0));
    let bins = StepBins::spanning(metrics, is_train, STEP_BINS);
    let bin_note = match bins {
        Some(b) if b.width > 1 => format!(" (means of {} steps)", b.width),
        _ => String::new(),
    };
    let epoch = |r: &MetricRow| r.epoch.map(u64::from);
    let mut panels = Vec::new();
    for (i, (target, depth)) in TARGETS.iter().enumerate() {
        let prefix = format!("{target}/");
        let shown: Vec<&String> = arms
            .iter()
            .filter(|a| a.starts_with(&prefix) || !a.contains('/'))
            .collect();
        let curves = |bands: &dyn Fn(&str) -> Vec<stats::Band>| -> Vec<Curve> {
            shown
                .iter()
                .map(|arm| Curve {
                    label: (*arm).clone(),
                    color: color(arm),
                    bands: bands(arm),
                    paper: None,
                })
                .collect()
        };
        let letter = |k: usize| char::from(b'a' + (2 * i + k) as u8);
        panels.push(Panel {
            title: format!(
                "({}) {target} ({depth}) RNN: training loss{bin_note}",
                letter(0)
            ),
            x_label: "step".into(),
            y_label: "task loss".into(),
            curves: curves(&|arm| {
                bins.map(|b| binned_mean_sd(metrics, arm, is_train, &b))
                    .unwrap_or_default()
            }),
            y_bounds: (0.0, f64::INFINITY),
            empty_note: "no per-step training loss rows".into(),
        });
        panels.push(Panel {
            title: format!("({}) {target} RNN: validation perplexity", letter(1)),
            x_label: "epoch".into(),
            y_label: "word-level perplexity".into(),
            curves: curves(&|arm| mean_sd_by_x(metrics, arm, is_ppl, epoch)),
            y_bounds: (1.0, f64::INFINITY),
            empty_note: "no validation word_ppl rows".into(),
        });
    }
    let figure = Figure {
        caption: format!(
            "lm: RNN language models guided by a Transformer, mean over {}, band = ±1 sd",
            seed_phrase(&seeds_per_arm(metrics, &arms))
        ),
        legend: roles
            .iter()
            .enumerate()
            .map(|(i, r)| (r.clone(), role_color(r, i)))
            .collect(),
        size: plot::grid_size(panels.len(), (600, 600)),
        panels,
    };
    plot::render(&figure, out_stem)?;
    Ok(())
}

/// The leading number of the paper's value of `metric` for `arm` (e.g.
/// 14.35 of "14.35 ± 0.01"), where it reports one.
fn paper_number(experiment: &str, metric: &str, arm: &str) -> Option<f64> {
    let value = tables::paper_value(experiment, metric, arm)?;
    value.split_whitespace().next()?.parse().ok()
}

/// The curves of the paper's training figure: (a) training loss per step
/// (the task's loss where logged), binned; (b) validation loss and (c)
/// validation accuracy per epoch, with the paper's accuracy of each arm as a
/// diamond at the right edge; one colour per arm, line = mean over seeds,
/// band = ±1 sd. Writes `<out_stem>.png` and `<out_stem>.svg`.
pub fn draw_training_curves(
    experiment: &str,
    metrics: &[MetricRow],
    out_stem: &Path,
) -> Result<(), FigureError> {
    let train = train_metric(metrics);
    let is_train =
        |r: &MetricRow| r.split == Split::Train && r.epoch.is_none() && r.metric == train;
    let is_val = |metric: &'static str| {
        move |r: &MetricRow| r.split == Split::Val && r.epoch.is_some() && r.metric == metric
    };
    if !metrics
        .iter()
        .any(|r| is_train(r) || is_val("loss")(r) || is_val("accuracy")(r))
    {
        return Err(FigureError::NoData {
            experiment: experiment.into(),
            expected: "per-step training `loss` or per-epoch validation `loss`/`accuracy` rows"
                .into(),
        });
    }
    let arms = arms_in_order(metrics);
    let bins = StepBins::spanning(metrics, is_train, STEP_BINS);
    let epoch = |r: &MetricRow| r.epoch.map(u64::from);
    // The paper's accuracy of an arm, a fraction, where Table 2 gives one.
    let paper_accuracy = |arm: &str| paper_number(experiment, "accuracy", arm).map(|v| v / 100.0);
    let curves_with = |bands: &dyn Fn(&str) -> Vec<stats::Band>,
                       paper: &dyn Fn(&str) -> Option<f64>|
     -> Vec<Curve> {
        arms.iter()
            .enumerate()
            .map(|(i, arm)| Curve {
                label: arm.clone(),
                color: role_color(arm, i),
                bands: bands(arm),
                paper: paper(arm),
            })
            .collect()
    };
    let curves = |bands: &dyn Fn(&str) -> Vec<stats::Band>| curves_with(bands, &|_| None);
    let bin_note = match bins {
        Some(b) if b.width > 1 => format!(" (means of {} steps)", b.width),
        _ => String::new(),
    };
    let panels = vec![
        Panel {
            title: format!("(a) training loss{bin_note}"),
            x_label: "step".into(),
            y_label: "task loss".into(),
            curves: curves(&|arm| {
                bins.map(|b| binned_mean_sd(metrics, arm, is_train, &b))
                    .unwrap_or_default()
            }),
            y_bounds: (0.0, f64::INFINITY),
            empty_note: "no per-step training loss rows".into(),
        },
        Panel {
            title: "(b) validation loss".into(),
            x_label: "epoch".into(),
            y_label: "task loss".into(),
            curves: curves(&|arm| mean_sd_by_x(metrics, arm, is_val("loss"), epoch)),
            y_bounds: (0.0, f64::INFINITY),
            empty_note: "no validation loss rows".into(),
        },
        Panel {
            title: "(c) validation accuracy".into(),
            x_label: "epoch".into(),
            y_label: "accuracy".into(),
            curves: curves_with(
                &|arm| mean_sd_by_x(metrics, arm, is_val("accuracy"), epoch),
                &paper_accuracy,
            ),
            y_bounds: (0.0, 1.0),
            empty_note: "no validation accuracy rows".into(),
        },
    ];
    let figure = Figure {
        caption: format!(
            "{experiment}: mean over {}, band = ±1 sd",
            seed_phrase(&seeds_per_arm(metrics, &arms))
        ),
        legend: arms
            .iter()
            .enumerate()
            .map(|(i, a)| (a.clone(), role_color(a, i)))
            .collect(),
        size: plot::grid_size(panels.len(), (600, 600)),
        panels,
    };
    plot::render(&figure, out_stem)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_phrase_counts() {
        assert_eq!(seed_phrase(&[1, 1]), "1 seed");
        assert_eq!(seed_phrase(&[3, 3, 3]), "3 seeds");
        assert_eq!(seed_phrase(&[2, 3]), "2–3 seeds");
    }

    #[test]
    fn training_panel_prefers_the_task_loss() {
        let row = |metric: &str, epoch| MetricRow {
            experiment: "x".into(),
            arm: "guided".into(),
            seed: 0,
            step: 0,
            epoch,
            split: Split::Train,
            metric: metric.into(),
            value: 1.0,
        };
        assert_eq!(train_metric(&[row("loss", None)]), "loss");
        assert_eq!(
            train_metric(&[row("loss", None), row("task_loss", None)]),
            "task_loss"
        );
        assert_eq!(
            train_metric(&[row("loss", None), row("task_loss", Some(1))]),
            "loss"
        );
    }

    #[test]
    fn lm_figure_draws_both_targets_and_needs_word_perplexity() {
        let row = |arm: &str, seed, step, epoch, split, metric: &str, value| MetricRow {
            experiment: "lm".into(),
            arm: arm.into(),
            seed,
            step,
            epoch,
            split,
            metric: metric.into(),
            value,
        };
        let mut rows = Vec::new();
        for arm in ["guide", "small/base", "small/trained-guide", "large/base"] {
            for seed in 0..2 {
                for step in 0..10 {
                    let loss = 6.0 - 0.1 * step as f64 + 0.05 * seed as f64;
                    rows.push(row(arm, seed, step, None, Split::Train, "task_loss", loss));
                }
                for epoch in 1..=3 {
                    let ppl = 300.0 / epoch as f64 + seed as f64;
                    rows.push(row(arm, seed, 10, Some(epoch), Split::Val, "word_ppl", ppl));
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("lm");
        draw_lm(&rows, &stem).unwrap();
        for ext in ["png", "svg"] {
            let size = std::fs::metadata(dir.path().join(format!("lm.{ext}")))
                .unwrap()
                .len();
            assert!(size > 1000, "lm.{ext}: {size} bytes");
        }
        let svg = std::fs::read_to_string(dir.path().join("lm.svg")).unwrap();
        for text in [
            "small (4-layer) RNN",
            "large (6-layer) RNN",
            "word-level perplexity",
        ] {
            assert!(svg.contains(text), "no `{text}` in the figure");
        }
        rows.retain(|r| r.metric != "word_ppl");
        let err = draw_lm(&rows, &stem).unwrap_err();
        assert!(err.to_string().contains("word_ppl"), "{err}");
    }

    #[test]
    fn bundled_font_registers() {
        ensure_font().unwrap();
    }
}
