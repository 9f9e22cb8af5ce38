//! The dashboard's SVG plots, drawn server-side with plotters: a suspect's score distribution
//! against the independent-model null, the growth of the evidence with N, and a profile's
//! calibration ROC (through [`crate::report::roc_svg`], shared with the bench report).
//!
//! Only numbers go into these documents, never user-supplied text.

use detector::calibration::SetNull;
use detector::GrowthPoint;
use plotters::coord::Shift;
use plotters::prelude::*;

const SIZE: (u32, u32) = (640, 360);
const NULL_COLOR: RGBColor = RGBColor(120, 120, 120);
const UPSTREAM_COLOR: RGBColor = RGBColor(230, 120, 20);
const SUSPECT_COLOR: RGBColor = RGBColor(30, 90, 200);

/// Quantile `q` of sorted, finite values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted[i]
}

fn finite_sorted(v: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Density histogram of `values` over `bins` equal bins of `[lo, hi)`; values outside are
/// clamped into the edge bins so that nothing silently disappears. Integrates to 1.
pub fn density(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let mut counts = vec![0f64; bins];
    if values.is_empty() || hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) || bins == 0 {
        return counts;
    }
    let w = (hi - lo) / bins as f64;
    for &x in values {
        let b = (((x - lo) / w).floor().max(0.0) as usize).min(bins - 1);
        counts[b] += 1.0;
    }
    let total = values.len() as f64 * w;
    counts.iter_mut().for_each(|c| *c /= total);
    counts
}

/// The outline of a density histogram as a step line from `lo` to `hi`.
fn steps(d: &[f64], lo: f64, w: f64) -> Vec<(f64, f64)> {
    let mut pts = vec![(lo, 0.0)];
    for (i, &y) in d.iter().enumerate() {
        let x0 = lo + i as f64 * w;
        pts.push((x0, y));
        pts.push((x0 + w, y));
    }
    pts.push((lo + d.len() as f64 * w, 0.0));
    pts
}

/// An SVG document of the dashboard's size, drawn by `draw` on a white background.
fn svg_document(
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> crate::service::ServiceResult<()>,
) -> crate::service::ServiceResult<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(buf)
}

/// A chart with the dashboard's caption font, margins and axis-label areas.
fn chart_builder<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    y_label_area: u32,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(34)
        .y_label_area_size(y_label_area);
    b
}

/// The legend box, the same on every plot but for its corner.
fn legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    pos: SeriesLabelPosition,
) -> crate::service::ServiceResult<()> {
    chart
        .configure_series_labels()
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.9))
        .position(pos)
        .label_font(("sans-serif", 12))
        .draw()?;
    Ok(())
}

/// The smallest mean of `n` responses that the set-level test calls significant at `alpha`
/// (where the random-effects null's one-sided p-value falls to `alpha`), by bisection.
pub const RAW_SCALE: &str = "upstream score (log-odds)";
pub const ALIGNED_SCALE: &str =
    "prompt-aligned upstream score (minus known models' mean on the same prompt)";

pub fn critical_mean(null: &SetNull, n: usize, alpha: f64) -> Option<f64> {
    if n == 0 || null.models < 2 {
        return None;
    }
    let sd = null.predictive_sd(n).max(1e-9);
    let (mut lo, mut hi) = (null.mu, null.mu + 1000.0 * sd);
    if null.p_value(hi, n) > alpha {
        return None;
    }
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if null.p_value(mid, n) > alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(hi)
}

/// A suspect's per-response scores against the profile's calibration populations: the
/// independent-model null (LOMO-scored known non-upstream models) and the upstream's own models.
/// `critical`: the mean at which the suspect's N responses reach style p = α (a ranking line: style never decides).
/// `x_label` names the scale: the raw upstream log-odds, or the prompt-aligned score when the
/// suspect's verdict is prompt-aligned (then `null` is the aligned null).
pub fn score_distribution_svg(
    suspect: &[f64],
    null: &[f64],
    upstream: &[f64],
    critical: Option<f64>,
    x_label: &str,
) -> crate::service::ServiceResult<String> {
    let suspect = finite_sorted(suspect.iter().copied());
    let null = finite_sorted(null.iter().copied());
    let upstream = finite_sorted(upstream.iter().copied());
    // Range: the bulk of the calibration populations, widened to every suspect score.
    let mut lo = quantile(&null, 0.005).min(quantile(&upstream, 0.005));
    let mut hi = quantile(&null, 0.995).max(quantile(&upstream, 0.995));
    let critical = critical.filter(|c| c.is_finite());
    for (a, b) in [(suspect.first(), suspect.last()), (critical.as_ref(), critical.as_ref())] {
        if let (Some(&a), Some(&b)) = (a, b) {
            lo = if lo.is_finite() { lo.min(a) } else { a };
            hi = if hi.is_finite() { hi.max(b) } else { b };
        }
    }
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (-1.0, 1.0);
    }
    if hi - lo < 1e-6 {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * 0.03;
    let (lo, hi) = (lo - pad, hi + pad);
    let bins = 40;
    let w = (hi - lo) / bins as f64;
    let (dn, du, ds) = (
        density(&null, lo, hi, bins),
        density(&upstream, lo, hi, bins),
        density(&suspect, lo, hi, bins),
    );
    let ymax = dn.iter().chain(&du).chain(&ds).copied().fold(0.0, f64::max).max(1e-6) * 1.12;

    svg_document(|root| {
        let mut chart =
            chart_builder(root, "Per-response scores vs the independent-model null", 44)
                .build_cartesian_2d(lo..hi, 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("density")
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        chart
            .draw_series(
                AreaSeries::new(steps(&dn, lo, w), 0.0, NULL_COLOR.mix(0.25))
                    .border_style(NULL_COLOR.stroke_width(1)),
            )?
            .label(format!("independent models (null, {} responses)", null.len()))
            .legend(|(x, y)| {
                Rectangle::new([(x, y - 5), (x + 16, y + 5)], NULL_COLOR.mix(0.4).filled())
            });
        if !upstream.is_empty() {
            chart
                .draw_series(LineSeries::new(steps(&du, lo, w), UPSTREAM_COLOR.stroke_width(2)))?
                .label(format!("upstream's own models ({})", upstream.len()))
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], UPSTREAM_COLOR.stroke_width(2))
                });
        }
        if !suspect.is_empty() {
            chart
                .draw_series(ds.iter().enumerate().filter(|(_, &y)| y > 0.0).map(|(i, &y)| {
                    let x0 = lo + i as f64 * w;
                    Rectangle::new(
                        [(x0 + w * 0.1, 0.0), (x0 + w * 0.9, y)],
                        SUSPECT_COLOR.mix(0.55).filled(),
                    )
                }))?
                .label(format!("this suspect ({} responses)", suspect.len()))
                .legend(|(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 16, y + 5)], SUSPECT_COLOR.mix(0.55).filled())
                });
            let mean = suspect.iter().sum::<f64>() / suspect.len() as f64;
            chart
                .draw_series(LineSeries::new(
                    [(mean, 0.0), (mean, ymax)],
                    SUSPECT_COLOR.stroke_width(2),
                ))?
                .label("suspect mean")
                .legend(|(x, y)| {
                    PathElement::new(
                        vec![(x + 8, y - 6), (x + 8, y + 6)],
                        SUSPECT_COLOR.stroke_width(2),
                    )
                });
        }
        if let Some(x) = critical {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x, 0.0), (x, ymax)],
                    5,
                    4,
                    RED.mix(0.8).stroke_width(2),
                ))?
                .label(format!("mean at style p = α, N = {} (triage)", suspect.len()))
                .legend(|(x, y)| {
                    PathElement::new(
                        vec![(x + 8, y - 6), (x + 8, y + 6)],
                        RED.mix(0.8).stroke_width(2),
                    )
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// The p-value after the first k responses (doubling grid) on log–log axes, with the α line.
pub fn growth_svg(growth: &[GrowthPoint], alpha: f64) -> crate::service::ServiceResult<String> {
    let pts: Vec<(usize, f64)> = growth.iter().map(|g| (g.n, g.p_value)).collect();
    p_curve_svg(
        &pts,
        alpha,
        "Evidence growing with N",
        "responses N",
        "p-value after the first N responses",
    )
}

/// The membership test's p-value against the number of prompts compared (its trajectory, or
/// a campaign's looks), on log–log axes, with the α line.
pub fn membership_svg(
    points: &[(usize, f64)],
    alpha: f64,
) -> crate::service::ServiceResult<String> {
    p_curve_svg(
        points,
        alpha,
        "Membership test: p-value against prompts compared",
        "prompts compared",
        "p-value on the first N prompts",
    )
}

/// A p-value curve over a count, on log–log axes, with the α line.
fn p_curve_svg(
    points: &[(usize, f64)],
    alpha: f64,
    title: &str,
    x_desc: &str,
    label: &str,
) -> crate::service::ServiceResult<String> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|g| g.0 > 0 && g.1.is_finite())
        .map(|g| (g.0 as f64, g.1.clamp(1e-300, 1.0)))
        .collect();
    let nmax = pts.iter().map(|p| p.0).fold(2.0, f64::max);
    let pmin = pts.iter().map(|p| p.1).fold(alpha, f64::min);
    let ylo = (pmin / 10.0).max(1e-300);
    svg_document(|root| {
        let mut chart = chart_builder(root, title, 56)
            .build_cartesian_2d((1f64..nmax * 1.3).log_scale(), (ylo..1.5f64).log_scale())?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("p-value")
            .y_label_formatter(&|y| {
                if *y >= 1e-3 {
                    format!("{}", (y * 1e6).round() / 1e6)
                } else {
                    format!("{y:.0e}")
                }
            })
            .x_label_formatter(&|x| format!("{x:.0}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        chart
            .draw_series(LineSeries::new(
                [(1.0, alpha), (nmax * 1.3, alpha)],
                RED.mix(0.8).stroke_width(1),
            ))?
            .label(format!("α = {alpha}"))
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], RED.mix(0.8).stroke_width(1))
            });
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), SUSPECT_COLOR.stroke_width(2)))?
            .label(label)
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], SUSPECT_COLOR.stroke_width(2))
            });
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, SUSPECT_COLOR.filled())))?;
        legend(&mut chart, SeriesLabelPosition::LowerLeft)
    })
}

/// Keep at most about `max` points of a monotone curve (both ends kept), so that an ROC over
/// thousands of calibration responses stays a small document.
pub fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 2 {
        return points.to_vec();
    }
    let step = (points.len() - 1) as f64 / (max - 1) as f64;
    let mut out: Vec<(f64, f64)> = (0..max)
        .map(|i| points[((i as f64 * step).round() as usize).min(points.len() - 1)])
        .collect();
    out.dedup();
    out
}

/// A profile's calibration ROC: its upstream models' LOMO scores against the independent-model
/// null, i.e. how well the profile separates an unseen upstream model's responses from an
/// unseen independent model's.
pub fn calibration_roc_svg(
    upstream: &[f64],
    null: &[f64],
) -> crate::service::ServiceResult<String> {
    let curve = thin(&datasets::metrics::roc_curve(upstream, null), 600);
    let auc = datasets::metrics::auroc(upstream, null);
    let label = format!("unseen upstream vs unseen independent (AUROC {auc:.3})");
    crate::report::roc_svg(
        "Calibration ROC, per response (leave-one-model-out)",
        &[(label.as_str(), &curve)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn density_integrates_to_one_and_clamps() {
        let d = density(&[0.0, 0.5, 0.99, -5.0, 5.0], 0.0, 1.0, 4);
        let w = 0.25;
        assert!((d.iter().sum::<f64>() * w - 1.0).abs() < 1e-12);
        // -5 lands in the first bin, 5 in the last.
        assert_eq!(d[0] * 5.0 * w, 2.0);
        assert_eq!(d[3] * 5.0 * w, 2.0);
        assert!(density(&[], 0.0, 1.0, 4).iter().all(|&x| x == 0.0));
    }

    #[test]
    fn critical_mean_is_where_the_p_value_reaches_alpha() {
        use detector::calibration::ModelNull;
        let models: Vec<ModelNull> = (0..6)
            .map(|i| ModelNull {
                model: format!("m{i}"),
                family: "x".into(),
                n: 50,
                mean: i as f64 * 0.2,
                var: 1.0,
            })
            .collect();
        let null = SetNull::from_models(&models);
        for n in [1, 10, 1000] {
            let c = critical_mean(&null, n, 0.01).unwrap();
            assert!(
                (null.p_value(c, n) - 0.01).abs() < 1e-6,
                "n = {n}: p({c}) = {}",
                null.p_value(c, n)
            );
        }
        assert!(critical_mean(&null, 10, 0.01).unwrap() < critical_mean(&null, 1, 0.01).unwrap());
        assert_eq!(critical_mean(&null, 0, 0.01), None);
        assert_eq!(critical_mean(&SetNull::from_models(&models[..1]), 10, 0.01), None);
    }

    #[test]
    fn thin_keeps_ends_and_bounds_length() {
        let pts: Vec<(f64, f64)> =
            (0..=1000).map(|i| (i as f64 / 1000.0, i as f64 / 1000.0)).collect();
        let t = thin(&pts, 100);
        assert!(t.len() <= 100);
        assert_eq!(t.first(), Some(&(0.0, 0.0)));
        assert_eq!(t.last(), Some(&(1.0, 1.0)));
        assert_eq!(thin(&pts[..10], 100).len(), 10);
    }

    #[test]
    fn plots_are_svg_documents() {
        let s = score_distribution_svg(
            &[1.0, 2.0],
            &[-1.0, 0.0, 0.5],
            &[1.5, 2.5],
            Some(1.2),
            RAW_SCALE,
        )
        .unwrap();
        assert!(
            s.starts_with("<svg")
                && s.contains("this suspect (2 responses)")
                && s.contains("mean at style p = α, N = 2 (triage)"),
            "{s}"
        );
        let s = score_distribution_svg(&[], &[], &[], None, ALIGNED_SCALE).unwrap();
        assert!(s.starts_with("<svg"));
        let g = [
            GrowthPoint { n: 1, statistic: 0.0, p_value: 0.5 },
            GrowthPoint { n: 2, statistic: 1.0, p_value: 1e-5 },
        ];
        let s = growth_svg(&g, 0.01).unwrap();
        assert!(s.starts_with("<svg") && s.contains("α = 0.01"), "{s}");
        assert!(growth_svg(&[], 0.01).unwrap().starts_with("<svg"));
        let s = calibration_roc_svg(&[1.0, 2.0, 3.0], &[0.0, 1.5]).unwrap();
        assert!(s.contains("AUROC 0.833"), "{s}");
    }
}
