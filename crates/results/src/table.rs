//! A plain-text table of summary rows, for the end of an experiment's run.

use crate::{Status, SummaryRow};

/// One line per (arm, seed), columns aligned, NaN shown as `-`.
pub fn summary_table(rows: &[SummaryRow]) -> String {
    let header = [
        "arm", "seed", "status", "steps", "final train loss", "final val loss", "best val loss", "best epoch",
        "best val acc", "final val acc", "wall s",
    ];
    let num = |v: f64, digits: usize| if v.is_finite() { format!("{v:.digits$}") } else { "-".to_string() };
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
        .map(|c| body.iter().map(|row| row[c].chars().count()).chain([header[c].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, w))| if c == 0 || c == 2 { format!("{cell:<w$}") } else { format!("{cell:>w$}") })
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.push(line(widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().iter().map(String::as_str).collect()));
    for row in &body {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let table = summary_table(&[row("base", Status::Ok, None, 0.5), row("guided", Status::Diverged, Some(7), f64::NAN)]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[3].contains("diverged @7"), "{table}");
        assert!(lines[3].contains(" -"), "{table}");
        assert!(!table.contains("NaN"), "{table}");
        // Right-aligned numeric columns end at the same place on every line.
        let end_of_steps = |l: &str| l.find("100").map(|i| i + 3);
        assert_eq!(end_of_steps(lines[2]), end_of_steps(lines[3]), "{table}");
    }
}
