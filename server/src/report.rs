//! Bench reports: the readable table, and a markdown report with an SVG ROC plot.

use datasets::bench::BenchDir;
use datasets::metrics::compare_to_baseline;
use detector::bench::BenchRun;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

/// The protocol's metrics against the published baseline, one row each.
pub fn bench_table(run: &BenchRun) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| metric | pedigree | baseline | ok |\n|---|---|---|---|");
    for c in compare_to_baseline(&run.metrics) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            c.key,
            c.ours,
            c.baseline,
            if c.ok { "yes" } else { "NO" }
        );
    }
    let m = &run.metrics;
    let _ =
        writeln!(s, "| sample_tpr_at_1fpr_student | {:.3} | – | |", m.sample_tpr_at_1fpr_student);
    let _ = writeln!(s, "| teacher_correct | {} | – | |", m.teacher_correct);
    s
}

/// The tier ablation (`bench --ablation`: `metrics.extra["ablation"]`, tier → protocol metrics)
/// as a markdown table with one column per tier; empty when the run had none.
pub fn ablation_table(run: &BenchRun) -> String {
    let Some(serde_json::Value::Object(tiers)) = run.metrics.extra.get("ablation") else {
        return String::new();
    };
    let mut s = format!(
        "| metric | {} |\n|---|{}\n",
        tiers.keys().cloned().collect::<Vec<_>>().join(" | "),
        "---|".repeat(tiers.len())
    );
    for key in datasets::metrics::PROTOCOL_KEYS {
        let cells: Vec<String> = tiers
            .values()
            .map(|m| match m.get(*key) {
                Some(serde_json::Value::Number(x)) => {
                    format!("{:.3}", x.as_f64().unwrap_or(f64::NAN))
                }
                Some(serde_json::Value::String(x)) => x.clone(),
                _ => "–".into(),
            })
            .collect();
        let _ = writeln!(s, "| {key} | {} |", cells.join(" | "));
    }
    s
}

/// Per-suspect verdicts as a markdown table.
pub fn suspect_table(run: &BenchRun) -> String {
    let mut s = String::from("| suspect | kind | mean score | effect | p-value | decision | attributed |\n|---|---|---|---|---|---|---|\n");
    for r in &run.suspects {
        let _ = writeln!(
            s,
            "| {} | {} | {:.3} | {:.2} | {:.2e} | {:?} | {} |",
            r.model,
            r.kind,
            r.mean_score,
            r.verdict.effect_size,
            r.verdict.p_value,
            r.verdict.decision,
            r.verdict.teacher.as_deref().unwrap_or("–")
        );
    }
    s
}

/// The verdict's null beside a pooled per-response null: what each flags among the known
/// independent models left out of the profile (false alarms on unseen independents) and among the
/// suspects (`metrics.extra`, written by `detector::bench::run`).
fn null_table(run: &BenchRun) -> String {
    let x = &run.metrics.extra;
    let get = |k: &str| x.get(k).and_then(|v| v.as_str()).unwrap_or("–").to_string();
    let mut s = String::from("| null | known independents flagged (each left out) | students flagged | independents flagged |\n|---|---|---|---|\n");
    let _ = writeln!(
        s,
        "| model-level random effects (the verdict) | {} | {} | {} |",
        get("verdict_null_models_flagged_lofo"),
        run.metrics.verdict_students_flagged,
        run.metrics.verdict_independents_flagged
    );
    let _ = writeln!(
        s,
        "| pooled responses (not used) | {} | {} | {} |",
        get("per_response_null_models_flagged_lofo"),
        get("per_response_null_students_flagged"),
        get("per_response_null_independents_flagged")
    );
    s
}

/// ROC curves as an SVG document (the bench report's plot and the dashboard's calibration ROC).
/// The held-out tables: per-text AUROCs after desensitization, and the audit on corpora of
/// families left out whole (`metrics.extra`, written by `detector::bench::run`).
fn heldout_tables(run: &BenchRun) -> String {
    let x = &run.metrics.extra;
    let f = |v: &serde_json::Value| v.as_f64().map_or("–".to_string(), |v| format!("{v:.3}"));
    let mut s = String::new();
    if let Some(d) = x.get("desensitization").and_then(|d| d.as_object()) {
        s.push_str("## Desensitization (suspects' answers rewritten, references raw)\n\n| step | AUROC upstream | drop | AUROC student | drop |\n|---|---|---|---|---|\n");
        for (step, r) in d {
            let _ = writeln!(
                s,
                "| {step} | {} | {} | {} | {} |",
                f(&r["sample_auroc_upstream"]),
                f(&r["drop_upstream"]),
                f(&r["sample_auroc_student"]),
                f(&r["drop_student"])
            );
        }
        s.push('\n');
    }
    if let Some(rows) = x.get("audit_lofo").and_then(|a| a["corpora"].as_array()) {
        s.push_str("## Audit on families left out whole (default options)\n\n| family | upstream model | texts | truth | estimate (π_lo) | 95% interval | identified set | MLE at δ = 0 |\n|---|---|---|---|---|---|---|---|\n");
        for r in rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | [{}, {}] | [{}, {}] | {} |",
                r["family"].as_str().unwrap_or("?"),
                r["upstream_model"].as_str().unwrap_or("?"),
                r["texts"],
                f(&r["truth"]),
                f(&r["estimate"]),
                f(&r["ci95"][0]),
                f(&r["ci95"][1]),
                f(&r["bounds"][0]),
                f(&r["bounds"][1]),
                f(&r["estimate_mle"])
            );
        }
        s.push('\n');
    }
    s
}

pub fn roc_svg(
    caption: &str,
    curves: &[(&str, &[(f64, f64)])],
) -> crate::service::ServiceResult<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (520, 480)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
        chart.configure_mesh().x_desc("false-positive rate").y_desc("true-positive rate").draw()?;
        chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))?;
        let colors = [BLUE, RED, GREEN, MAGENTA];
        for (i, (name, pts)) in curves.iter().enumerate() {
            let c = colors[i % colors.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
        root.present()?;
    }
    Ok(buf)
}

/// Write `path` (markdown) and `path` with extension `svg` (the ROC plot).
pub fn write_bench_report(
    path: &Path,
    dir: &BenchDir,
    run: &BenchRun,
) -> crate::service::ServiceResult<()> {
    let svg_path = path.with_extension("svg");
    std::fs::write(
        &svg_path,
        roc_svg(
            "ROC, per response (test prompts)",
            &[
                ("upstream vs negatives", &run.roc_upstream),
                ("students vs negatives", &run.roc_student),
            ],
        )?,
    )?;
    let svg_name =
        svg_path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let cal = &run.profile.meta().calibration;
    let md = format!(
        "# pedigree bench: {name}\n\nUpstream: `{up}`. Data: {src} (licence: {lic}).\n\n## Protocol metrics\n\n{table}\n```json\n{json}\n```\n\n{ablation}## Per-suspect verdicts (α = 0.01)\n\n{sus}\n## Which null (what each flags at α = 0.01)\n\n{nulls}\n{heldout}## ROC\n\n![ROC]({svg_name})\n\n## Calibration (null population)\n\n```json\n{cal}\n```\n",
        name = dir.manifest.name,
        up = dir.manifest.upstream,
        src = dir.manifest.source.as_deref().unwrap_or("unknown"),
        lic = dir.manifest.license.as_deref().unwrap_or("unknown"),
        table = bench_table(run),
        json = serde_json::to_string_pretty(&run.metrics)?,
        sus = suspect_table(run),
        nulls = null_table(run),
        heldout = heldout_tables(run),
        ablation = match ablation_table(run) {
            t if t.is_empty() => String::new(),
            t => format!("## Ablation: feature tiers (same protocol, same seeds)\n\n{t}\n"),
        },
        cal = serde_json::to_string_pretty(cal)?,
    );
    std::fs::write(path, md)?;
    let mut lines = String::new();
    for (m, pid, sc) in &run.responses {
        let _ =
            writeln!(lines, "{}", serde_json::json!({"model": m, "prompt_id": pid, "score": sc}));
    }
    std::fs::write(path.with_extension("scores.jsonl"), lines)?;
    Ok(())
}
