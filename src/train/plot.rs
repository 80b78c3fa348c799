//! Loss curves (`loss.png`, the book's figure 10-7): every loss of every phase against the
//! iteration, read back from `metrics.jsonl` so that resumed runs draw their whole history.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

/// The font text is drawn with, bundled so that no system font is needed (DejaVu Sans; its
/// licence is in assets/fonts/DejaVu-LICENSE.txt).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Curves by label: (iteration, value) points.
pub type Curves = BTreeMap<String, Vec<(f64, f64)>>;

/// Reads the loss curves from a metrics file: one curve per (phase, loss); a loss that several
/// phases log is labelled with its phase.
pub fn curves_from_metrics(text: &str) -> Curves {
    let records: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let mut phases_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let losses = |r: &serde_json::Value| -> Vec<(String, f64)> {
        r.as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "step" | "epoch" | "phase" | "images_per_sec" | "held_out_loss")
                    })
                    .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
                    .collect()
            })
            .unwrap_or_default()
    };
    for r in &records {
        let phase = r["phase"].as_str().unwrap_or("").to_string();
        for (name, _) in losses(r) {
            let phases = phases_of.entry(name).or_default();
            if !phases.contains(&phase) {
                phases.push(phase.clone());
            }
        }
    }
    let mut curves = Curves::new();
    for r in &records {
        let (Some(step), phase) = (r["step"].as_f64(), r["phase"].as_str().unwrap_or("")) else { continue };
        for (name, value) in losses(r) {
            let label = if phases_of[&name].len() > 1 { format!("{name} ({phase})") } else { name };
            curves.entry(label).or_default().push((step, value));
        }
    }
    curves
}

/// Draws `curves` into a PNG at `path`, with dashed horizontal `references` (label, value), such
/// as a categorical code's entropy H(c), the most its mutual-information estimate can reach.
pub fn write_loss_plot(path: &Path, curves: &Curves, references: &[(String, f64)]) -> Result<(), String> {
    REGISTER.call_once(|| {
        // The bundled font is valid; should registration fail, text is simply not drawn.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let points = || curves.values().flatten();
    let (x_max, (y_min, y_max)) = (
        points().map(|p| p.0).fold(1.0, f64::max),
        points()
            .filter(|p| p.1.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1))),
    );
    if !y_min.is_finite() {
        return Ok(());
    }
    let pad = ((y_max - y_min) * 0.05).max(1e-3);
    let root = BitMapBackend::new(path, (900, 520)).into_drawing_area();
    let draw_err = |e: &dyn std::fmt::Display| format!("{}: cannot draw the loss plot: {e}", path.display());
    root.fill(&WHITE).map_err(|e| draw_err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Losses", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))
        .map_err(|e| draw_err(&e))?;
    chart.configure_mesh().x_desc("iteration").y_desc("loss").draw().map_err(|e| draw_err(&e))?;
    for (i, (label, points)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
            .map_err(|e| draw_err(&e))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    for (label, value) in references {
        let dashes = (0..(x_max as usize).max(1)).step_by((x_max as usize / 60).max(1)).collect::<Vec<_>>();
        chart
            .draw_series(
                dashes.chunks(2).filter(|c| c.len() == 2).map(|c| {
                    PathElement::new(vec![(c[0] as f64, *value), (c[1] as f64, *value)], BLACK.stroke_width(1))
                }),
            )
            .map_err(|e| draw_err(&e))?
            .label(label.as_str())
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(1)));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(|e| draw_err(&e))?;
    root.present().map_err(|e| draw_err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_label_shared_losses_by_phase() {
        let metrics = r#"{"step":1,"phase":"d","d_loss":1.0,"mi":0.5,"images_per_sec":3.0}
{"step":1,"phase":"g","g_loss":2.0,"mi":0.25}
{"step":2,"phase":"d","d_loss":0.5,"mi":0.75}"#;
        let curves = curves_from_metrics(metrics);
        let labels: Vec<&str> = curves.keys().map(String::as_str).collect();
        assert_eq!(labels, ["d_loss", "g_loss", "mi (d)", "mi (g)"]);
        assert_eq!(curves["mi (d)"], vec![(1.0, 0.5), (2.0, 0.75)]);
    }

    #[test]
    fn plot_is_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let curves =
            curves_from_metrics("{\"step\":1,\"phase\":\"p\",\"l\":1.0}\n{\"step\":2,\"phase\":\"p\",\"l\":0.5}");
        write_loss_plot(&path, &curves, &[("H(c) = ln 10".into(), 10f64.ln())]).unwrap();
        assert_eq!(&std::fs::read(&path).unwrap()[..4], b"\x89PNG");
    }
}
