//! PNG pictures for the report.

use std::path::Path;

use ndarray::Array2;

/// One line of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend entry.
    pub label: String,
    /// (x, y) points in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// Draws lines on shared axes; `log_y` puts the y axis on a log scale.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> anyhow::Result<()> {
    let _ = (path, title, x_label, y_label, series, log_y);
    anyhow::bail!("line_chart is not written yet")
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
    let _ = (path, title, x_label, y_label, points, diagonal);
    anyhow::bail!("scatter is not written yet")
}

/// Draws greyscale images in a grid, each scaled from its own minimum to maximum.
pub fn image_grid(
    path: &Path,
    title: &str,
    images: &[Array2<f64>],
    columns: usize,
) -> anyhow::Result<()> {
    let _ = (path, title, images, columns);
    anyhow::bail!("image_grid is not written yet")
}

/// Draws one bar per (label, value).
pub fn bar_chart(path: &Path, title: &str, y_label: &str, bars: &[(String, f64)]) -> anyhow::Result<()> {
    let _ = (path, title, y_label, bars);
    anyhow::bail!("bar_chart is not written yet")
}
