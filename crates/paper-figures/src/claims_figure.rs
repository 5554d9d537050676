//! `claims.png`: one panel per claim of the claims table, the paper's effect
//! (a diamond, where it gives a number) beside this project's (the mean
//! difference with its 95 % interval), each in its claim's units, with the
//! verdict under the claim.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::FigureError;
use crate::claims::{Claim, Finding};
use crate::plot::{Drawing, font_of, grid_size, render, role_color};

const PANEL: (u32, u32) = (600, 330);

/// The findings of every claim, ready to draw.
pub struct ClaimsFigure {
    pub findings: Vec<(Claim, Finding)>,
}

impl Drawing for ClaimsFigure {
    fn size(&self) -> (u32, u32) {
        grid_size(self.findings.len(), PANEL)
    }

    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (width, height) = self.size();
        let columns = (width / PANEL.0).max(1) as usize;
        let rows = (height / PANEL.1).max(1) as usize;
        let areas = root.split_evenly((rows, columns));
        for ((claim, finding), area) in self.findings.iter().zip(&areas) {
            draw_claim(&area.margin(8, 8, 12, 12), claim, finding).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Writes `<out_stem>.png` and `.svg`.
pub fn draw_claims(findings: Vec<(Claim, Finding)>, out_stem: &Path) -> Result<(), FigureError> {
    render(&ClaimsFigure { findings }, out_stem)?;
    Ok(())
}

fn draw_claim<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    claim: &Claim,
    finding: &Finding,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let scale = claim.scale;
    let ours = finding
        .difference
        .map(|d| (d.mean * scale, d.low * scale, d.high * scale));
    let mut values = vec![0.0];
    values.extend(claim.paper_effect);
    if let Some((mean, low, high)) = ours {
        values.extend([mean, low, high]);
    }
    let (lowest, highest) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let pad = ((highest - lowest) * 0.15).max(1e-9);
    // The claim and, below it, its verdict: on one line the longer ones
    // ran into the next panel.
    let (title, body) = area.split_vertically(44);
    let centre = title.dim_in_pixel().0 as i32 / 2;
    let line = font_of(15).pos(Pos::new(HPos::Center, VPos::Top));
    title.draw(&Text::new(claim.claim, (centre, 2), line.clone()))?;
    let verdict = format!("[{}]", finding.verdict(claim));
    title.draw(&Text::new(verdict, (centre, 22), line))?;
    let mut chart = ChartBuilder::on(&body)
        .x_label_area_size(30)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5f64..1.5f64, (lowest - pad)..(highest + pad))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .y_labels(6)
        .x_labels(2)
        .x_label_formatter(&|x| match x.round() as i64 {
            0 => "paper".into(),
            1 => "here".into(),
            _ => String::new(),
        })
        .y_desc(format!("{} − {}", claim.measure_name(), "baseline"))
        .y_label_formatter(&|v| {
            format!("{v:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        })
        .label_style(font_of(13))
        .axis_desc_style(font_of(13))
        .draw()?;
    chart.draw_series(LineSeries::new(
        [(-0.5, 0.0), (1.5, 0.0)],
        RGBColor(150, 150, 150),
    ))?;
    if let Some(effect) = claim.paper_effect {
        chart.draw_series([Polygon::new(
            diamond(0.0, effect, 0.06, pad * 0.25),
            BLACK.filled(),
        )])?;
    }
    if let Some((mean, low, high)) = ours {
        let color = role_color(claim.arm, 0);
        let bar = color.stroke_width(3);
        let cap = 0.06;
        chart.draw_series([
            PathElement::new([(1.0, low), (1.0, high)], bar),
            PathElement::new([(1.0 - cap, low), (1.0 + cap, low)], bar),
            PathElement::new([(1.0 - cap, high), (1.0 + cap, high)], bar),
        ])?;
        chart.draw_series([Circle::new((1.0, mean), 6, color.filled())])?;
    }
    Ok(())
}

/// The corners of a diamond centred at (`x`, `y`).
fn diamond(x: f64, y: f64, half_width: f64, half_height: f64) -> Vec<(f64, f64)> {
    vec![
        (x - half_width, y),
        (x, y + half_height),
        (x + half_width, y),
        (x, y - half_height),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::CLAIMS;
    use untrainable_results::PairedDifference;

    #[test]
    fn every_claim_gets_a_panel_with_its_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let difference = PairedDifference {
            mean: 0.05,
            low: 0.01,
            high: 0.09,
            pairs: 3,
        };
        let findings = CLAIMS
            .iter()
            .map(|c| {
                let finding = Finding {
                    difference: Some(difference),
                    gates: Some((2, 2)),
                    regime_holds: true,
                    converged: true,
                };
                (*c, finding)
            })
            .collect();
        let stem = dir.path().join("claims");
        draw_claims(findings, &stem).unwrap();
        let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
        // Each claim's verdict is the first after it. The accuracy claims'
        // difference is positive: the paper's direction; a lower perplexity
        // is the paper's direction, so a positive one does not reproduce.
        let verdict_after = |claim: &str| {
            let rest = &svg[svg.find(claim).expect(claim)..];
            let at = |v: &str| rest.find(v).unwrap_or(usize::MAX);
            if at("[reproduces]") < at("[does not]") {
                "reproduces"
            } else {
                "does not"
            }
        };
        assert_eq!(
            verdict_after("guide improves the Deep FCN (Table 1)"),
            "reproduces"
        );
        assert_eq!(verdict_after("guide lowers the small RNN"), "does not");
        assert_eq!(
            svg.matches("[reproduces]").count() + svg.matches("[does not]").count(),
            CLAIMS.len()
        );
    }
}
