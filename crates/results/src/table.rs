//! Tables of summary rows for the end of an experiment's run: one line per
//! (arm, seed), and one Markdown line per arm over seeds.

use crate::{Status, SummaryRow};

/// Mean and sample standard deviation (n - 1) of `values`; sd is 0 for a
/// single value, and both are NaN for none.
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, 0.0);
    }
    let squares: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    (mean, (squares / (n - 1) as f64).sqrt())
}

/// One line per (arm, seed), columns aligned, NaN shown as `-`.
pub fn summary_table(rows: &[SummaryRow]) -> String {
    let header = [
        "arm",
        "seed",
        "status",
        "steps",
        "final train loss",
        "final val loss",
        "best val loss",
        "best epoch",
        "best val acc",
        "final val acc",
        "wall s",
    ];
    let num = |v: f64, digits: usize| {
        if v.is_finite() {
            format!("{v:.digits$}")
        } else {
            "-".to_string()
        }
    };
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let status = match (r.status, r.status_step) {
                (Status::Ok, _) | (_, None) => r.status.to_string(),
                (status, Some(step)) => format!("{status} @{step}"),
            };
            vec![
                r.arm.clone(),
                r.seed.to_string(),
                status,
                r.steps.to_string(),
                num(r.final_train_loss, 4),
                num(r.final_val_loss, 4),
                num(r.best_val_loss, 4),
                r.best_epoch.to_string(),
                num(r.best_val_accuracy, 4),
                num(r.final_val_accuracy, 4),
                num(r.wall_seconds, 1),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            body.iter()
                .map(|row| row[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, w))| {
                if c == 0 || c == 2 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.push(line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for row in &body {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// One Markdown line per arm, in order of first appearance: the mean ± sample
/// sd over seeds of the final and best validation loss, the final validation
/// accuracy and the wall time. Only runs that finished `ok` are counted; the
/// `seeds` column says how many of how many.
pub fn arm_table(rows: &[SummaryRow]) -> String {
    let mut arms: Vec<&str> = Vec::new();
    for r in rows {
        if !arms.contains(&r.arm.as_str()) {
            arms.push(&r.arm);
        }
    }
    let cell = |values: Vec<f64>, digits: usize| {
        let (mean, sd) = mean_sd(&values);
        if mean.is_finite() {
            format!("{mean:.digits$} ± {sd:.digits$}")
        } else {
            "-".to_string()
        }
    };
    let mut out = vec![
        "| arm | seeds | final val loss | best val loss | final − best | final val acc | best val acc | wall s |".to_string(),
        "|---|---|---|---|---|---|---|---|".to_string(),
    ];
    for arm in arms {
        let all: Vec<&SummaryRow> = rows.iter().filter(|r| r.arm == arm).collect();
        let ok: Vec<&SummaryRow> = all
            .iter()
            .copied()
            .filter(|r| r.status == Status::Ok)
            .collect();
        let column = |f: fn(&SummaryRow) -> f64| ok.iter().map(|r| f(r)).collect::<Vec<f64>>();
        out.push(format!(
            "| {arm} | {}/{} | {} | {} | {} | {} | {} | {} |",
            ok.len(),
            all.len(),
            cell(column(|r| r.final_val_loss), 4),
            cell(column(|r| r.best_val_loss), 4),
            cell(column(|r| r.final_val_loss - r.best_val_loss), 4),
            cell(column(|r| r.final_val_accuracy), 4),
            cell(column(|r| r.best_val_accuracy), 4),
            cell(column(|r| r.wall_seconds), 0),
        ));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn mean_sd_matches_hand_computation() {
        // mean 2; squared deviations 1 + 0 + 1 = 2; sample variance 2 / 2 = 1.
        assert_eq!(mean_sd(&[1.0, 2.0, 3.0]), (2.0, 1.0));
        // mean 5; deviations -3, 3 → variance 18 / 1; sd = sqrt(18).
        let (m, s) = mean_sd(&[2.0, 8.0]);
        assert!(close(m, 5.0) && close(s, 18f64.sqrt()), "{m} {s}");
        assert_eq!(mean_sd(&[4.5]), (4.5, 0.0));
        assert!(mean_sd(&[]).0.is_nan());
    }

    #[test]
    fn table_aligns_columns_and_marks_missing_values() {
        let row = |arm: &str, status, status_step, loss| SummaryRow {
            experiment: "x".into(),
            arm: arm.into(),
            seed: 0,
            status,
            status_step,
            steps: 100,
            final_train_loss: loss,
            final_val_loss: loss,
            best_val_loss: loss,
            best_epoch: 2,
            final_val_accuracy: 0.5,
            best_val_accuracy: 0.5,
            wall_seconds: 1.25,
        };
        let table = summary_table(&[
            row("base", Status::Ok, None, 0.5),
            row("guided", Status::Diverged, Some(7), f64::NAN),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[3].contains("diverged @7"), "{table}");
        assert!(lines[3].contains(" -"), "{table}");
        assert!(!table.contains("NaN"), "{table}");
        // Right-aligned numeric columns end at the same place on every line.
        let end_of_steps = |l: &str| l.find("100").map(|i| i + 3);
        assert_eq!(end_of_steps(lines[2]), end_of_steps(lines[3]), "{table}");
    }

    #[test]
    fn arm_table_averages_the_ok_seeds_of_each_arm() {
        let row = |arm: &str, seed, status, final_loss: f64| SummaryRow {
            experiment: "x".into(),
            arm: arm.into(),
            seed,
            status,
            status_step: None,
            steps: 10,
            final_train_loss: 0.1,
            final_val_loss: final_loss,
            best_val_loss: 0.5,
            best_epoch: 1,
            final_val_accuracy: 0.25 * (seed + 1) as f64,
            best_val_accuracy: 0.9,
            wall_seconds: 10.0,
        };
        let table = arm_table(&[
            row("base", 0, Status::Ok, 1.0),
            row("base", 1, Status::Ok, 3.0),
            row("base", 2, Status::Diverged, f64::NAN),
            row("guided", 0, Status::Ok, 0.75),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        // base: final losses 1 and 3 → 2 ± √2; final − best 0.5 and 2.5 → 1.5 ± √2;
        // accuracies 0.25 and 0.5 → 0.375 ± 0.1768.
        assert_eq!(
            lines[2],
            "| base | 2/3 | 2.0000 ± 1.4142 | 0.5000 ± 0.0000 | 1.5000 ± 1.4142 | 0.3750 ± 0.1768 | 0.9000 ± 0.0000 | 10 ± 0 |"
        );
        assert!(
            lines[3].starts_with("| guided | 1/1 | 0.7500 ± 0.0000 |"),
            "{table}"
        );
    }
}
