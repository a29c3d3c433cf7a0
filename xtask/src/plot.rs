//! PNG pictures for the report: line charts, scatter plots, image grids and bar charts.
//!
//! Text is drawn with a TrueType font loaded once at run time: `HANDGRAD_FONT` if set, else the
//! first of a few common system paths (DejaVu Sans, Liberation Sans, Arial). Every picture is
//! drawn to a temporary file beside its target and renamed into place, so a report never links a
//! half-written picture.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context as _};
use ndarray::Array2;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;

const WIDTH: u32 = 900;
const HEIGHT: u32 = 560;
/// Width of the legend column right of a line chart. A legend inside the plot hid the lines
/// of the last epochs once a chart had a dozen of them.
const LEGEND_WIDTH: u32 = 230;
const FONT: &str = "sans-serif";

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// One line of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend entry.
    pub label: String,
    /// (x, y) points in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// Draws lines on shared axes; `log_y` puts the y axis on a log scale when the values span at
/// least a factor of 10. Over less, a log axis labels a single tick, so it stays linear.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> anyhow::Result<()> {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
    let (x_range, mut y_range) = bounds(&all, log_y)?;
    if log_y {
        y_range = y_range.start.max(f64::MIN_POSITIVE)..y_range.end;
    }
    let log_y = log_y && y_range.end >= 10.0 * y_range.start;

    render(path, |root| {
        let (plot, legend) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
        let mut builder = ChartBuilder::on(&plot);
        builder.caption(title, (FONT, 22)).margin(12).x_label_area_size(40).y_label_area_size(70);
        if log_y {
            let mut chart = builder.build_cartesian_2d(x_range, y_range.log_scale())?;
            chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw()?;
            draw_series(&mut chart, series)?;
        } else {
            let mut chart = builder.build_cartesian_2d(x_range, y_range)?;
            chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw()?;
            draw_series(&mut chart, series)?;
        }
        draw_legend(&legend, series)
    })
}

/// Writes one line sample and label per series down the legend column.
fn draw_legend(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    series: &[Series],
) -> anyhow::Result<()> {
    for (index, line) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        let y = 60 + 22 * index as i32;
        area.draw(&PathElement::new(vec![(0, y), (24, y)], color.stroke_width(2)))?;
        area.draw(&Text::new(line.label.clone(), (32, y - 8), (FONT, 15)))?;
    }
    Ok(())
}

fn draw_series<'a, CT>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>,
    series: &[Series],
) -> anyhow::Result<()>
where
    CT: CoordTranslate<From = (f64, f64)>,
{
    for (index, line) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        chart.draw_series(LineSeries::new(line.points.iter().copied(), color.stroke_width(2)))?;
    }
    Ok(())
}

/// Draws points, with the line y = x when `diagonal` is set.
pub fn scatter(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
    diagonal: bool,
) -> anyhow::Result<()> {
    let (mut x_range, mut y_range) = bounds(points, false)?;
    if diagonal {
        let low = x_range.start.min(y_range.start);
        let high = x_range.end.max(y_range.end);
        x_range = low..high;
        y_range = low..high;
    }

    render(path, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x_range.clone(), y_range)?;
        chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw()?;
        let dot = BLUE.mix(0.35).filled();
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 2, dot)))?;
        if diagonal {
            let ends = [(x_range.start, x_range.start), (x_range.end, x_range.end)];
            chart.draw_series(LineSeries::new(ends, RED.stroke_width(1)))?;
        }
        Ok(())
    })
}

/// Draws greyscale images in a grid, each scaled from its own minimum to maximum.
pub fn image_grid(
    path: &Path,
    title: &str,
    images: &[Array2<f64>],
    columns: usize,
) -> anyhow::Result<()> {
    let first = images.first().ok_or_else(|| anyhow!("image_grid: no images for {title}"))?;
    let (rows_px, cols_px) = first.dim();
    if images.iter().any(|image| image.dim() != (rows_px, cols_px)) {
        bail!("image_grid: images for {title} differ in size");
    }
    let columns = columns.clamp(1, images.len());
    let grid_rows = images.len().div_ceil(columns);

    // Small images (5x5 patches, 28x28 digits) are enlarged so each cell is about 80 pixels.
    let scale = (80 / rows_px.max(cols_px)).max(1);
    let cell = (cols_px * scale + 4, rows_px * scale + 4);
    let width = (cell.0 * columns).max(300) as u32;
    let height = (cell.1 * grid_rows + 40) as u32;

    render_sized(path, (width, height), |root| {
        let area = root.titled(title, (FONT, 20))?;
        for (index, image) in images.iter().enumerate() {
            let origin = ((index % columns) * cell.0 + 2, (index / columns) * cell.1 + 2);
            draw_image(&area, image, origin, scale)?;
        }
        Ok(())
    })
}

fn draw_image(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    image: &Array2<f64>,
    origin: (usize, usize),
    scale: usize,
) -> anyhow::Result<()> {
    let low = image.iter().copied().fold(f64::INFINITY, f64::min);
    let high = image.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = if high > low { high - low } else { 1.0 };
    for ((row, col), &value) in image.indexed_iter() {
        let level = (((value - low) / span) * 255.0).round().clamp(0.0, 255.0) as u8;
        let x = (origin.0 + col * scale) as i32;
        let y = (origin.1 + row * scale) as i32;
        let size = scale as i32;
        let rect =
            Rectangle::new([(x, y), (x + size, y + size)], RGBColor(level, level, level).filled());
        area.draw(&rect)?;
    }
    Ok(())
}

/// Draws one bar per (label, value).
pub fn bar_chart(
    path: &Path,
    title: &str,
    y_label: &str,
    bars: &[(String, f64)],
) -> anyhow::Result<()> {
    if bars.is_empty() {
        bail!("bar_chart: no bars for {title}");
    }
    let top = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max) * 1.1;
    let top = if top > 0.0 { top } else { 1.0 };
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();

    render(path, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 22))
            .margin(12)
            .x_label_area_size(60)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..bars.len() as f64, 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bars.len() * 2 + 1)
            .x_label_formatter(&|x| bar_label(&labels, *x))
            .y_desc(y_label)
            .draw()?;
        let style = BLUE.mix(0.6).filled();
        chart.draw_series(bars.iter().enumerate().map(|(i, bar)| {
            Rectangle::new([(i as f64 + 0.15, 0.0), (i as f64 + 0.85, bar.1)], style)
        }))?;
        Ok(())
    })
}

/// Names the bar whose centre is at `x`, and nothing elsewhere on the axis.
fn bar_label(labels: &[String], x: f64) -> String {
    let index = x.floor();
    if (x - index - 0.5).abs() > 1e-6 || index < 0.0 {
        return String::new();
    }
    labels.get(index as usize).cloned().unwrap_or_default()
}

/// Returns axis ranges that hold every finite point, padded by 5%.
fn bounds(
    points: &[(f64, f64)],
    log_y: bool,
) -> anyhow::Result<(std::ops::Range<f64>, std::ops::Range<f64>)> {
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log_y || *y > 0.0))
        .collect();
    if finite.is_empty() {
        bail!("no finite points to draw");
    }
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in finite {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    Ok((padded(x_min, x_max, false), padded(y_min, y_max, log_y)))
}

fn padded(low: f64, high: f64, log: bool) -> std::ops::Range<f64> {
    if log {
        return low / 1.2..high * 1.2;
    }
    let pad = if high > low { (high - low) * 0.05 } else { low.abs().max(1.0) * 0.05 };
    low - pad..high + pad
}

fn render<F>(path: &Path, draw: F) -> anyhow::Result<()>
where
    F: FnOnce(DrawingArea<BitMapBackend<'_>, Shift>) -> anyhow::Result<()>,
{
    render_sized(path, (WIDTH, HEIGHT), draw)
}

fn render_sized<F>(path: &Path, size: (u32, u32), draw: F) -> anyhow::Result<()>
where
    F: FnOnce(DrawingArea<BitMapBackend<'_>, Shift>) -> anyhow::Result<()>,
{
    ensure_font()?;
    let temporary = temporary_path(path);
    let result = (|| -> anyhow::Result<()> {
        let root = BitMapBackend::new(&temporary, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(root.clone())?;
        root.present()?;
        Ok(())
    })();
    match result {
        Ok(()) => std::fs::rename(&temporary, path).with_context(|| {
            format!("failed to move {} to {}", temporary.display(), path.display())
        }),
        Err(error) => {
            let _ = std::fs::remove_file(&temporary);
            Err(error).with_context(|| format!("failed to draw {}", path.display()))
        }
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // The extension stays .png because the bitmap backend picks its encoder by extension.
    path.with_file_name(format!(".{name}.partial.png"))
}

/// Registers the report font once; every later call returns the first outcome.
fn ensure_font() -> anyhow::Result<()> {
    static OUTCOME: OnceLock<Result<(), String>> = OnceLock::new();
    OUTCOME.get_or_init(load_font).clone().map_err(|message| anyhow!(message))
}

fn load_font() -> Result<(), String> {
    let from_env = std::env::var_os("HANDGRAD_FONT").map(PathBuf::from);
    let candidates = from_env.into_iter().chain(FONT_CANDIDATES.iter().map(PathBuf::from));
    for candidate in candidates {
        let Ok(bytes) = std::fs::read(&candidate) else { continue };
        // plotters keeps a 'static reference to the font for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        if register_font(FONT, FontStyle::Normal, bytes).is_ok() {
            return Ok(());
        }
    }
    Err(format!(
        "no TrueType font found for report pictures (tried HANDGRAD_FONT and {}); \
         install fonts-dejavu-core or set HANDGRAD_FONT=/path/to/font.ttf",
        FONT_CANDIDATES.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_png(path: &Path) -> bool {
        std::fs::read(path).map(|bytes| bytes.starts_with(b"\x89PNG\r\n\x1a\n")).unwrap_or(false)
    }

    #[test]
    fn every_chart_writes_png() {
        let dir = std::env::temp_dir().join(format!("handgrad-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line =
            Series { label: "loss".into(), points: vec![(0.0, 2.0), (1.0, 1.0), (2.0, 0.5)] };

        let lines = dir.join("lines.png");
        line_chart(&lines, "Loss", "epoch", "loss", std::slice::from_ref(&line), true).unwrap();
        let points = dir.join("scatter.png");
        scatter(&points, "Rain", "observed", "predicted", &line.points, true).unwrap();
        let grid = dir.join("grid.png");
        let image = Array2::from_shape_fn((5, 5), |(r, c)| (r * 5 + c) as f64);
        image_grid(&grid, "Patches", &[image.clone(), image], 2).unwrap();
        let bars = dir.join("bars.png");
        bar_chart(&bars, "MSE", "mm^2", &[("a".into(), 1.0), ("b".into(), 2.0)]).unwrap();

        for path in [&lines, &points, &grid, &bars] {
            assert!(is_png(path), "{} is not a PNG", path.display());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_inputs_are_errors() {
        let path = std::env::temp_dir().join("handgrad-never-written.png");
        assert!(line_chart(&path, "t", "x", "y", &[], false).is_err());
        assert!(image_grid(&path, "t", &[], 3).is_err());
        assert!(bar_chart(&path, "t", "y", &[]).is_err());
        assert!(!path.exists());
    }
}
