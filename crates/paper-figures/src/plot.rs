//! The figures' two shapes: panels of curves side by side, each with one
//! mean line and a translucent ±sd band per arm, under a caption line and a
//! shared legend ([`Figure`]); and annotated matrices side by side
//! ([`HeatMaps`]). Experiments describe what to show; [`render`] writes the
//! PNG and the SVG of either.

use std::ops::Range;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::stats::Band;
use crate::{FONT, FigureError, ensure_font};

/// One arm's curve in a panel.
#[derive(Debug, Clone)]
pub struct Curve {
    pub label: String,
    pub color: RGBColor,
    pub bands: Vec<Band>,
    /// The paper's value for this arm, drawn as a diamond of its colour at
    /// the panel's right edge; `None` where the paper gives none here.
    pub paper: Option<f64>,
}

/// One set of axes.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub curves: Vec<Curve>,
    /// Values the quantity cannot leave (0..1 for accuracy): the band and
    /// the axis are cut there.
    pub y_bounds: (f64, f64),
    /// Shown in the middle of the panel when no curve has a point.
    pub empty_note: String,
}

/// A row of panels under a caption line and a legend.
#[derive(Debug, Clone)]
pub struct Figure {
    pub caption: String,
    /// The legend shared by all panels; empty: each panel labels its own
    /// curves (for panels that show different arms).
    pub legend: Vec<(String, RGBColor)>,
    pub panels: Vec<Panel>,
    pub size: (u32, u32),
}

/// One square matrix of values with the same labels on both axes; a cell
/// shows its value and, below it, an optional note (e.g. "± 0.02").
#[derive(Debug, Clone)]
pub struct Matrix {
    pub title: String,
    /// `cells[row][column]`; `None` is drawn as an empty grey cell.
    pub cells: Vec<Vec<Option<(f64, String)>>>,
}

/// Matrices side by side under a caption line, sharing row and column
/// labels and one colour scale from `scale.0` (white) to `scale.1` (blue).
#[derive(Debug, Clone)]
pub struct HeatMaps {
    pub caption: String,
    pub labels: Vec<String>,
    pub matrices: Vec<Matrix>,
    pub scale: (f64, f64),
    pub size: (u32, u32),
}

/// What [`render`] can draw on either backend.
pub trait Drawing {
    fn size(&self) -> (u32, u32);
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

impl Drawing for Figure {
    fn size(&self) -> (u32, u32) {
        self.size
    }
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw_figure(root, self)
    }
}

impl Drawing for HeatMaps {
    fn size(&self) -> (u32, u32) {
        self.size
    }
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw_heat_maps(root, self).map_err(|e| e.to_string())
    }
}

/// Colour-blind-safe colours (Okabe and Ito, their yellow left out for
/// contrast on white; grey, olive and wine added).
const PALETTE: [RGBColor; 10] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
    RGBColor(0, 0, 0),
    RGBColor(153, 153, 51),
    RGBColor(136, 34, 85),
];

/// Each arm role's place in [`PALETTE`], the same in every figure. Roles
/// drawn in one panel differ; the base arm, the guided arms and the guide
/// alone keep their colours across experiments.
const ROLE_COLORS: [(&str, usize); 23] = [
    ("base", 0),
    ("trained-guide", 1),
    ("all-pairs", 1),
    ("untrained-guide", 2),
    ("guide", 3),
    // The warm-up experiment.
    ("noise-warmup", 4),
    ("early-disconnect", 5),
    ("guided", 6),
    // Distillation and hints.
    ("distill-trained", 4),
    ("distill-untrained", 5),
    ("hint-trained", 6),
    ("hint-untrained", 7),
    // Subsets of the pairs.
    ("first-half", 4),
    ("second-half", 5),
    ("every-other", 6),
    ("evenly-5", 7),
    ("evenly-2", 8),
    ("last-pair", 9),
    // Other distances.
    ("linear-cka-debiased", 4),
    ("rbf-cka", 5),
    ("rsa", 6),
    ("ridge", 7),
    ("procrustes", 8),
];

/// The colour of an arm by its role (what follows `<target>/`), the same
/// in every figure; a role not listed takes the colour of its place `i`.
pub fn role_color(arm: &str, i: usize) -> RGBColor {
    let role = arm.rsplit('/').next().unwrap_or(arm);
    match ROLE_COLORS.iter().find(|(r, _)| *r == role) {
        Some((_, index)) => PALETTE[*index],
        None => arm_color(i),
    }
}

/// Panels in one row of a figure at most, so that each stays readable.
pub const PANELS_PER_ROW: usize = 3;

/// Rows and columns of a grid of `panels` panels: as few rows as
/// [`PANELS_PER_ROW`] allows, the panels spread evenly over them.
fn grid(panels: usize) -> (usize, usize) {
    let rows = panels.max(1).div_ceil(PANELS_PER_ROW);
    (rows, panels.max(1).div_ceil(rows))
}

/// The pixel size of a figure of `panels` panels of `panel` pixels each
/// (the caption and legend included in the height of the first row).
pub fn grid_size(panels: usize, panel: (u32, u32)) -> (u32, u32) {
    let (rows, columns) = grid(panels);
    (columns as u32 * panel.0, rows as u32 * panel.1)
}

/// The colour of the `i`-th arm.
pub fn arm_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

const TEXT: RGBColor = RGBColor(30, 30, 30);
const GRID: RGBColor = RGBColor(225, 225, 225);
const BAND_OPACITY: f64 = 0.2;
const CAPTION_PX: u32 = 26;
const TITLE_PX: u32 = 22;
const AXIS_LABEL_PX: u32 = 19;
const TICK_PX: u32 = 16;
const LEGEND_PX: u32 = 19;

/// The figures' font at `px` pixels, in their text colour.
pub fn font_of(px: u32) -> TextStyle<'static> {
    font(px)
}

fn font(px: u32) -> TextStyle<'static> {
    (FONT, px).into_font().color(&TEXT)
}

/// Writes `<out_stem>.png` and `<out_stem>.svg`, each through a temporary
/// file and a rename, and returns their paths.
pub fn render(figure: &impl Drawing, out_stem: &Path) -> Result<[PathBuf; 2], FigureError> {
    ensure_font()?;
    let png = with_extension(out_stem, "png");
    let svg = with_extension(out_stem, "svg");
    let dir = match png.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io = |path: &Path, action: &'static str| {
        let path = path.to_path_buf();
        move |source| FigureError::Io {
            path,
            action,
            source,
        }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir, "create the directory"))?;

    // The bitmap encoder picks the format from the extension, so the
    // temporary file ends in `.png` too.
    let mut builder = tempfile::Builder::new();
    builder.prefix(".paper-figure.").suffix(".png");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let tmp = builder
        .tempfile_in(&dir)
        .map_err(io(&png, "create a temporary file for"))?;
    {
        let root = BitMapBackend::new(tmp.path(), figure.size()).into_drawing_area();
        figure.draw_on(&root).map_err(|message| FigureError::Draw {
            path: png.clone(),
            message,
        })?;
        root.present().map_err(|e| FigureError::Draw {
            path: png.clone(),
            message: e.to_string(),
        })?;
    }
    tmp.persist(&png).map_err(|e| FigureError::Io {
        path: png.clone(),
        action: "rename onto",
        source: e.error,
    })?;

    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, figure.size()).into_drawing_area();
        figure.draw_on(&root).map_err(|message| FigureError::Draw {
            path: svg.clone(),
            message,
        })?;
        root.present().map_err(|e| FigureError::Draw {
            path: svg.clone(),
            message: e.to_string(),
        })?;
    }
    untrainable_results::write_atomic(&svg, text.as_bytes())?;
    Ok([png, svg])
}

/// `stem` with `.ext` appended (a stem such as `fcn-warmup.v2` keeps its dot).
fn with_extension(stem: &Path, ext: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

fn draw_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    figure: &Figure,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let (width, height) = root.dim_in_pixel();
    let mut entry_widths = Vec::with_capacity(figure.legend.len());
    for (label, _) in &figure.legend {
        let text = root
            .estimate_text_size(label, &font(LEGEND_PX))
            .map_err(err)?;
        entry_widths.push(SWATCH + GAP + text.0 as i32);
    }
    let rows = legend_rows(&entry_widths, width as i32);
    let header_px =
        (CAPTION_PX + LEGEND_PX) as i32 + 34 + LEGEND_ROW_PX * (rows.len() as i32 - 1).max(0);
    let (header, body) = root.split_vertically(header_px.min(height as i32 / 3));
    header
        .draw(&Text::new(
            figure.caption.clone(),
            (width as i32 / 2, 6),
            font(CAPTION_PX).pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(err)?;
    for (r, (entries, total)) in rows.into_iter().enumerate() {
        let y = CAPTION_PX as i32 + 22 + LEGEND_ROW_PX * r as i32;
        let x = (width as i32 - total) / 2;
        let row = entries.map(|i| (&figure.legend[i], entry_widths[i]));
        draw_legend_row(&header, row, (x, y)).map_err(err)?;
    }

    let (rows, columns) = grid(figure.panels.len());
    let areas = body.split_evenly((rows, columns));
    let own_legends = figure.legend.is_empty();
    for (panel, area) in figure.panels.iter().zip(&areas) {
        draw_panel(&area.margin(0, 4, 6, 14), panel, own_legends).map_err(err)?;
    }
    Ok(())
}

/// A legend entry's swatch, the gap after it, the space between entries
/// and the height of a row of entries.
const SWATCH: i32 = 34;
const GAP: i32 = 8;
const SPACING: i32 = 36;
const LEGEND_ROW_PX: i32 = LEGEND_PX as i32 + 10;

/// The legend's entries, `entry_widths` pixels wide each, in rows that fit
/// `width` (less a margin), in order: each row's entries and its width. An
/// entry wider than a row gets a row of its own.
fn legend_rows(entry_widths: &[i32], width: i32) -> Vec<(Range<usize>, i32)> {
    let room = width - 2 * SPACING;
    let mut rows: Vec<(Range<usize>, i32)> = Vec::new();
    for (i, &w) in entry_widths.iter().enumerate() {
        match rows.last_mut() {
            Some((entries, total)) if *total + SPACING + w <= room => {
                entries.end = i + 1;
                *total += SPACING + w;
            }
            _ => rows.push((i..i + 1, w)),
        }
    }
    rows
}

/// One row of legend entries, each a line segment and a name and as wide
/// as its paired width, from `(x, y)`.
fn draw_legend_row<'a, DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: impl Iterator<Item = (&'a (String, RGBColor), i32)>,
    (mut x, y): (i32, i32),
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let style = font(LEGEND_PX);
    let middle = y + LEGEND_PX as i32 / 2;
    for ((label, color), width) in entries {
        area.draw(&Rectangle::new(
            [(x, y + 2), (x + SWATCH, y + LEGEND_PX as i32 - 2)],
            color.mix(BAND_OPACITY).filled(),
        ))?;
        area.draw(&PathElement::new(
            vec![(x, middle), (x + SWATCH, middle)],
            color.stroke_width(3),
        ))?;
        area.draw(&Text::new(
            label.clone(),
            (x + SWATCH + GAP, middle),
            style.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += width + SPACING;
    }
    Ok(())
}

/// The y-band of a point, cut to the panel's bounds.
fn band_limits(band: &Band, bounds: (f64, f64)) -> (f64, f64) {
    (
        (band.mean - band.sd).max(bounds.0),
        (band.mean + band.sd).min(bounds.1),
    )
}

/// Axis ranges covering every band, padded a little and kept inside the
/// bounds; a single value gets a range of its own.
fn ranges(panel: &Panel) -> Option<((f64, f64), (f64, f64))> {
    let mut x = (f64::INFINITY, f64::NEG_INFINITY);
    let mut y = (f64::INFINITY, f64::NEG_INFINITY);
    for band in panel.curves.iter().flat_map(|c| &c.bands) {
        let (lo, hi) = band_limits(band, panel.y_bounds);
        x = (x.0.min(band.x), x.1.max(band.x));
        y = (y.0.min(lo), y.1.max(hi));
    }
    for paper in panel.curves.iter().filter_map(|c| c.paper) {
        y = (y.0.min(paper), y.1.max(paper));
    }
    if !(x.0.is_finite() && y.0.is_finite() && x.1.is_finite() && y.1.is_finite()) {
        return None;
    }
    let widen = |(lo, hi): (f64, f64), pad: f64| {
        if hi > lo {
            let p = (hi - lo) * pad;
            (lo - p, hi + p)
        } else {
            let p = if lo == 0.0 { 0.5 } else { lo.abs() * 0.1 };
            (lo - p, hi + p)
        }
    };
    let x = if x.1 > x.0 { x } else { widen(x, 0.0) };
    let y = widen(y, 0.05);
    let y = (y.0.max(panel.y_bounds.0), y.1.min(panel.y_bounds.1));
    Some((x, y))
}

/// A tick value with at most four significant decimals and no trailing zeros.
fn tick_label(v: f64) -> String {
    let digits = if v.abs() >= 1000.0 || v == 0.0 {
        0
    } else {
        (3 - v.abs().log10().floor() as i32).clamp(0, 4) as usize
    };
    let text = format!("{v:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    if text == "-0" { "0".to_string() } else { text }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    own_legend: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (x_range, y_range) = ranges(panel).unwrap_or(((0.0, 1.0), (0.0, 1.0)));
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, font(TITLE_PX))
        .margin(8)
        .x_label_area_size(52)
        .y_label_area_size(74)
        .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)?;
    let formatter = |v: &f64| tick_label(*v);
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .x_labels(7)
        .y_labels(7)
        .x_label_formatter(&formatter)
        .y_label_formatter(&formatter)
        .label_style(font(TICK_PX))
        .axis_desc_style(font(AXIS_LABEL_PX))
        .axis_style(RGBColor(90, 90, 90))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .draw()?;

    let mut any = false;
    // Bands first, so that no band veils another arm's line.
    for curve in &panel.curves {
        if curve.bands.len() >= 2 && curve.bands.iter().any(|b| b.sd > 0.0) {
            let upper = curve
                .bands
                .iter()
                .map(|b| (b.x, band_limits(b, panel.y_bounds).1));
            let lower = curve
                .bands
                .iter()
                .rev()
                .map(|b| (b.x, band_limits(b, panel.y_bounds).0));
            chart.draw_series(std::iter::once(Polygon::new(
                upper.chain(lower).collect::<Vec<_>>(),
                curve.color.mix(BAND_OPACITY).filled(),
            )))?;
        }
    }
    for curve in &panel.curves {
        any |= !curve.bands.is_empty();
        let style = curve.color.stroke_width(2);
        let series = if curve.bands.len() == 1 {
            let b = curve.bands[0];
            let (lo, hi) = band_limits(&b, panel.y_bounds);
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(b.x, lo), (b.x, hi)],
                style,
            )))?;
            chart.draw_series(std::iter::once(Circle::new(
                (b.x, b.mean),
                4,
                curve.color.filled(),
            )))?
        } else {
            chart.draw_series(LineSeries::new(
                curve.bands.iter().map(|b| (b.x, b.mean)),
                style,
            ))?
        };
        if own_legend && !curve.bands.is_empty() {
            let color = curve.color;
            series.label(curve.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
        }
    }
    for curve in panel.curves.iter().filter(|c| !c.bands.is_empty()) {
        if let Some(paper) = curve.paper {
            chart.draw_series(std::iter::once(
                EmptyElement::at((x_range.1, paper))
                    + Polygon::new(vec![(-9, 0), (0, -9), (9, 0), (0, 9)], curve.color.filled()),
            ))?;
        }
    }
    if own_legend && any {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(GRID)
            .label_font(font(TICK_PX))
            .draw()?;
    }
    if !any {
        let area = chart.plotting_area().strip_coord_spec();
        let (w, h) = area.dim_in_pixel();
        area.draw(&Text::new(
            panel.empty_note.clone(),
            (w as i32 / 2, h as i32 / 2),
            font(TICK_PX).pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
    }
    Ok(())
}

/// The colour of `value` on a scale from white at `scale.0` to the
/// palette's blue at `scale.1`, values outside clamped.
fn scale_color(value: f64, scale: (f64, f64)) -> RGBColor {
    let t = ((value - scale.0) / (scale.1 - scale.0)).clamp(0.0, 1.0);
    let RGBColor(r, g, b) = PALETTE[0];
    let mix = |c: u8| (255.0 + (f64::from(c) - 255.0) * t).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

fn draw_heat_maps<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    maps: &HeatMaps,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (width, _) = root.dim_in_pixel();
    root.draw(&Text::new(
        maps.caption.clone(),
        (width as i32 / 2, 6),
        font(CAPTION_PX).pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    let (_, body) = root.split_vertically(CAPTION_PX as i32 + 20);
    let areas = body.split_evenly((1, maps.matrices.len().max(1)));
    for (matrix, area) in maps.matrices.iter().zip(&areas) {
        draw_matrix(
            &area.margin(0, 10, 10, 10),
            matrix,
            &maps.labels,
            maps.scale,
        )?;
    }
    Ok(())
}

/// A title, column labels above, row labels to the left and one coloured
/// cell per value with its number and note.
fn draw_matrix<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    matrix: &Matrix,
    labels: &[String],
    scale: (f64, f64),
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let n = labels.len().max(1) as i32;
    let (width, height) = area.dim_in_pixel();
    let label_style = font(TICK_PX);
    let mut row_label_px = 0;
    for label in labels {
        row_label_px = row_label_px.max(area.estimate_text_size(label, &label_style)?.0 as i32);
    }
    let left = row_label_px + 14;
    let top = TITLE_PX as i32 + 2 * TICK_PX as i32 + 24;
    let cell = ((width as i32 - left) / n)
        .min((height as i32 - top) / n)
        .max(1);
    area.draw(&Text::new(
        matrix.title.clone(),
        (left + cell * n / 2, 0),
        font(TITLE_PX).pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    for (i, label) in labels.iter().enumerate() {
        let i = i as i32;
        area.draw(&Text::new(
            label.clone(),
            (left - 8, top + i * cell + cell / 2),
            label_style.pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
        // Column labels alternate between two lines so that long ones do not collide.
        area.draw(&Text::new(
            label.clone(),
            (
                left + i * cell + cell / 2,
                top - 6 - (i % 2) * (TICK_PX as i32 + 4),
            ),
            label_style.pos(Pos::new(HPos::Center, VPos::Bottom)),
        ))?;
    }
    for (r, row) in matrix.cells.iter().enumerate() {
        for (c, value) in row.iter().enumerate() {
            let (x, y) = (left + c as i32 * cell, top + r as i32 * cell);
            let fill = match value {
                Some((v, _)) => scale_color(*v, scale),
                None => RGBColor(240, 240, 240),
            };
            area.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                fill.filled(),
            ))?;
            area.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                RGBColor(255, 255, 255).stroke_width(2),
            ))?;
            if let Some((v, note)) = value {
                // Dark text on light cells, white on dark ones.
                let light = (*v - scale.0) / (scale.1 - scale.0) < 0.55;
                let ink = if light { TEXT } else { WHITE };
                let centre = (x + cell / 2, y + cell / 2);
                let number_y = if note.is_empty() {
                    centre.1
                } else {
                    centre.1 - 9
                };
                area.draw(&Text::new(
                    cell_label(*v),
                    (centre.0, number_y),
                    (FONT, LEGEND_PX)
                        .into_font()
                        .color(&ink)
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                ))?;
                if !note.is_empty() {
                    area.draw(&Text::new(
                        note.clone(),
                        (centre.0, centre.1 + 12),
                        (FONT, TICK_PX - 2)
                            .into_font()
                            .color(&ink)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    ))?;
                }
            }
        }
    }
    Ok(())
}

/// A cell's value: three decimals below 0.1 in magnitude, two above.
fn cell_label(v: f64) -> String {
    if v.abs() < 0.1 && v != 0.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_runs_from_white_to_the_first_colour_and_clamps() {
        assert_eq!(scale_color(0.0, (0.0, 1.0)), WHITE);
        assert_eq!(scale_color(-3.0, (0.0, 1.0)), WHITE);
        assert_eq!(scale_color(1.0, (0.0, 1.0)), PALETTE[0]);
        assert_eq!(scale_color(7.0, (0.0, 1.0)), PALETTE[0]);
        let RGBColor(r, _, _) = scale_color(0.5, (0.0, 1.0));
        assert_eq!(r, 128);
        assert_eq!(cell_label(0.0029), "0.003");
        assert_eq!(cell_label(0.49), "0.49");
        assert_eq!(cell_label(1.0), "1.00");
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(2000.0), "2000");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(1.5), "1.5");
        assert_eq!(tick_label(3.0), "3");
        assert_eq!(tick_label(-0.0), "0");
        assert_eq!(tick_label(0.123456), "0.1235");
    }

    #[test]
    fn ranges_respect_bounds_and_widen_single_values() {
        let band = |x, mean, sd| Band {
            x,
            mean,
            sd,
            seeds: 2,
        };
        let panel = Panel {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            curves: vec![Curve {
                label: "a".into(),
                color: arm_color(0),
                bands: vec![band(1.0, 0.9, 0.3)],
                paper: None,
            }],
            y_bounds: (0.0, 1.0),
            empty_note: String::new(),
        };
        let ((x0, x1), (y0, y1)) = ranges(&panel).unwrap();
        assert!(x0 < 1.0 && x1 > 1.0);
        assert!(y0 < 0.6 && y0 > 0.5 && y1 == 1.0, "{y0} {y1}");

        // The paper's value is drawn, so the axis reaches it.
        let mut with_paper = panel.clone();
        with_paper.curves[0].paper = Some(0.2);
        let (_, (y0, _)) = ranges(&with_paper).unwrap();
        assert!(y0 < 0.2, "{y0}");
    }

    #[test]
    fn legend_rows_keep_the_order_and_fit_the_width() {
        // Room for 1000 − 2 · 36 = 928 pixels a row.
        let widths = [300, 300, 300, 300, 1200, 100];
        let rows = legend_rows(&widths, 1000);
        let entries: Vec<_> = rows.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(entries, [0..2, 2..4, 4..5, 5..6]);
        assert_eq!(rows[0].1, 300 + SPACING + 300);
        // Every entry once, in order, and each row of several entries fits.
        let flat: Vec<usize> = entries.iter().flat_map(|r| r.clone()).collect();
        assert_eq!(flat, (0..widths.len()).collect::<Vec<_>>());
        for (r, total) in &rows {
            let sum: i32 = widths[r.clone()].iter().sum::<i32>() + SPACING * (r.len() as i32 - 1);
            assert_eq!(*total, sum);
            assert!(r.len() == 1 || *total <= 1000 - 2 * SPACING);
        }
        assert_eq!(legend_rows(&[], 1000), []);
    }
}
