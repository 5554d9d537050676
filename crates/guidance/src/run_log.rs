//! The rows one (arm, seed) run logs, and the bookkeeping of its best
//! epoch (the paper's model selection: lowest validation loss).

use std::time::Instant;

use serde::{Deserialize, Serialize};
use untrainable_results::{MetricRow, Split, Status, SummaryRow};

/// Validation loss and accuracy of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct ValScore {
    pub loss: f64,
    pub accuracy: f64,
}

/// The epoch with the lowest validation loss so far, and its scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct BestEpoch {
    pub loss: f64,
    pub accuracy: f64,
    pub epoch: u32,
}

/// Collects the rows of one run and tracks the best epoch.
pub(crate) struct Log {
    experiment: String,
    arm: String,
    seed: u64,
    pub rows: Vec<MetricRow>,
    pub final_train_loss: f64,
    pub final_val: ValScore,
    pub best: BestEpoch,
}

impl Log {
    pub fn new(experiment: &str, arm: &str, seed: u64) -> Self {
        Self {
            experiment: experiment.into(),
            arm: arm.into(),
            seed,
            rows: Vec::new(),
            final_train_loss: f64::NAN,
            final_val: ValScore {
                loss: f64::NAN,
                accuracy: f64::NAN,
            },
            best: BestEpoch {
                loss: f64::INFINITY,
                accuracy: f64::NAN,
                epoch: 0,
            },
        }
    }

    pub fn row(&mut self, step: u64, epoch: Option<u32>, split: Split, metric: &str, value: f64) {
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

    /// A training-step row.
    pub fn step(&mut self, step: u64, metric: &str, value: f64) {
        self.row(step, None, Split::Train, metric, value);
    }

    /// Records the end-of-epoch validation score; whether it is the best so
    /// far.
    pub fn end_of_epoch(&mut self, epoch: u32, score: ValScore) -> bool {
        self.final_val = score;
        let better = score.loss < self.best.loss;
        if better {
            self.best = BestEpoch {
                loss: score.loss,
                accuracy: score.accuracy,
                epoch,
            };
        }
        better
    }

    /// The rows and the summary of the run. `status_step` is where a
    /// diverged run stopped; `steps` the training steps taken.
    pub fn finish(
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
            final_val_loss: self.final_val.loss,
            best_val_loss: if self.best.loss.is_finite() {
                self.best.loss
            } else {
                f64::NAN
            },
            best_epoch: self.best.epoch,
            final_val_accuracy: self.final_val.accuracy,
            best_val_accuracy: self.best.accuracy,
            wall_seconds: started.elapsed().as_secs_f64(),
        };
        (self.rows, summary)
    }
}
