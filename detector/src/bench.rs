//! The bench protocol (`../shared/datasets/README.md`) run end to end: fit a profile on the
//! train prompts of known-family models, calibrate it leave-one-model-out on their test-prompt
//! answers, score every suspect's test-prompt answers, and compute the protocol's metrics.
//! Suspect labels are read only to compute the metrics.

use crate::dense::{lookup, DenseTable};
use crate::profile::{FitOptions, HeldOutModel, LabeledText, Profile};
use crate::{TextScore, Verdict, VerdictOptions};
use datasets::bench::{BenchDir, Split};
use datasets::metrics::{self, BenchMetrics};
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

/// Per-suspect outcome, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct SuspectResult {
    pub model: String,
    pub kind: String,
    pub teacher: Option<String>,
    pub positive: bool,
    pub negative: bool,
    pub mean_score: f64,
    pub verdict: Verdict,
}

/// Everything a bench run produced.
pub struct BenchRun {
    pub metrics: BenchMetrics,
    pub suspects: Vec<SuspectResult>,
    pub roc_upstream: Vec<(f64, f64)>,
    pub roc_student: Vec<(f64, f64)>,
    pub profile: Profile,
    /// Every scored test response: (suspect, prompt id, score).
    pub responses: Vec<(String, String, f64)>,
}

/// The profile the protocol allows: fitted on known models' train-prompt answers, calibrated on
/// their test-prompt answers. `dense` holds the neural vectors of every text when
/// `opts.dense_tiers` is not empty.
pub fn profile_from_bench(
    dir: &BenchDir,
    opts: &FitOptions,
    dense: Option<&DenseTable>,
) -> crate::Result<Profile> {
    Ok(profile_without(dir, opts, dense, &|_| false)?.0)
}

/// [`profile_from_bench`] with the known models for which `left_out` is true left out of both
/// fitting and calibration.
fn profile_without(
    dir: &BenchDir,
    opts: &FitOptions,
    dense: Option<&DenseTable>,
    left_out: &(dyn Fn(&str) -> bool + Sync),
) -> crate::Result<(Profile, Vec<HeldOutModel>)> {
    let labeled = |split: Split| -> crate::Result<Vec<LabeledText>> {
        let mut out = Vec::new();
        for m in dir.known_models().into_iter().filter(|m| !left_out(m)) {
            let fam = dir.family(m).expect("known model has a family");
            for s in dir.samples_for(m, split) {
                let d = match dense {
                    Some(t) if !opts.dense_tiers.is_empty() => Some(lookup(t, &s.response)?),
                    _ => None,
                };
                out.push(LabeledText {
                    text: &s.response,
                    model: m,
                    family: fam,
                    dense: d,
                    prompt: Some(&s.prompt),
                });
            }
        }
        Ok(out)
    };
    let train = labeled(Split::Train)?;
    let calib = labeled(Split::Test)?;
    Profile::fit_with_held_out(&train, &calib, opts)
}

/// Run the protocol. `progress` receives short status lines.
pub fn run(
    dir: &BenchDir,
    opts: &FitOptions,
    dense: Option<&DenseTable>,
    progress: &dyn Fn(&str),
) -> crate::Result<BenchRun> {
    let t0 = Instant::now();
    progress("fitting profile and leave-one-model-out calibration");
    let (profile, held_out) = profile_without(dir, opts, dense, &|_| false)?;
    let fit_secs = t0.elapsed().as_secs_f64();
    progress("scoring suspects");
    let t1 = Instant::now();
    let suspects = dir.suspects();
    let scored: Vec<(String, Vec<TextScore>)> = suspects
        .iter()
        .map(|m| {
            let samples = dir.samples_for(m, Split::Test);
            let texts: Vec<(&str, Option<&str>)> =
                samples.iter().map(|s| (s.response.as_str(), Some(s.prompt.as_str()))).collect();
            let vecs = match dense {
                Some(t) if !profile.neural_tiers().is_empty() => Some(
                    samples
                        .iter()
                        .map(|s| lookup(t, &s.response).map(|v| v.to_vec()))
                        .collect::<crate::Result<Vec<_>>>()?,
                ),
                _ => None,
            };
            Ok((m.to_string(), profile.score_batch_with(&texts, vecs.as_deref())?))
        })
        .collect::<crate::Result<_>>()?;
    let n_scored: usize = scored.iter().map(|s| s.1.len()).sum();
    let score_secs = t1.elapsed().as_secs_f64();

    // The method's per-response score: prompt-aligned when the profile has references for every
    // test prompt (it does when calibrated on the known models' test-prompt answers), else raw.
    let aligned = scored.iter().all(|(_, s)| s.iter().all(|t| t.aligned.is_some()));
    let per = move |t: &TextScore| if aligned { t.aligned.expect("checked") } else { t.score };
    let scores_of = |pred: &dyn Fn(&str) -> bool| -> Vec<f64> {
        scored.iter().filter(|(m, _)| pred(m)).flat_map(|(_, s)| s.iter().map(per)).collect()
    };
    let upstream_models = dir.upstream_suspects();
    let neg = scores_of(&|m| dir.is_negative(m));
    let ups = scores_of(&|m| upstream_models.contains(&m));
    let pos = scores_of(&|m| dir.is_positive(m));

    let vopts = VerdictOptions::default();
    let results: Vec<SuspectResult> = scored
        .iter()
        .map(|(m, s)| {
            let info = dir.suspect_info(m).expect("suspect");
            SuspectResult {
                model: m.clone(),
                kind: format!("{:?}", info.kind).to_lowercase(),
                teacher: info.teacher.clone(),
                positive: dir.is_positive(m),
                negative: dir.is_negative(m),
                mean_score: s.iter().map(per).sum::<f64>() / s.len().max(1) as f64,
                verdict: profile.verdict(s, &vopts),
            }
        })
        .collect();

    // Suspect-level AUROC: positives vs negatives, set score = the verdict statistic.
    let sets: Vec<(bool, Vec<f64>)> = scored
        .iter()
        .filter(|(m, _)| dir.is_positive(m) || dir.is_negative(m))
        .map(|(m, s)| (dir.is_positive(m), s.iter().map(per).collect()))
        .collect();
    let set_score = |xs: &[&f64]| {
        let xs: Vec<f64> = xs.iter().map(|&&x| x).collect();
        if aligned {
            profile.verdict_from_aligned(&xs, &vopts)
        } else {
            profile.verdict_from_scores(&xs, &vopts)
        }
        .statistic
    };
    let at: Vec<f64> = [Some(10), Some(50), None]
        .par_iter()
        .map(|&n| metrics::suspect_auroc_at(&sets, n, 20, 20_240_501, set_score))
        .collect();

    let count = |pred: &dyn Fn(&SuspectResult) -> bool, flag: &dyn Fn(&SuspectResult) -> bool| {
        let sel: Vec<&SuspectResult> = results.iter().filter(|r| pred(r)).collect();
        metrics::fraction(sel.iter().filter(|r| flag(r)).count(), sel.len())
    };
    let flagged = |r: &SuspectResult| r.verdict.decision == crate::Decision::Distilled;
    let mut m = BenchMetrics {
        sample_auroc_upstream: metrics::auroc(&ups, &neg),
        sample_tpr_at_1fpr_upstream: metrics::tpr_at_fpr(&ups, &neg, 0.01),
        sample_auroc_student: metrics::auroc(&pos, &neg),
        sample_tpr_at_1fpr_student: metrics::tpr_at_fpr(&pos, &neg, 0.01),
        suspect_auroc_at_10: at[0],
        suspect_auroc_at_50: at[1],
        suspect_auroc_at_all: at[2],
        verdict_students_flagged: count(&|r| r.positive, &flagged),
        verdict_independents_flagged: count(&|r| r.negative, &flagged),
        teacher_correct: count(&|r| r.kind == "student", &|r| {
            r.verdict.teacher.is_some() && r.verdict.teacher == r.teacher
        }),
        extra: Default::default(),
    };
    // The protocol's AUROC@10/@50 average 20 draws, whose noise (±0.02 at N = 10 here) can hide
    // a difference between methods: the same figures over 1,000 draws (the set statistic is the
    // verdict's, the mean), for reading a gap, never for the gate.
    let mean_of = |xs: &[&f64]| xs.iter().copied().sum::<f64>() / xs.len().max(1) as f64;
    let many: Vec<f64> = [10, 50]
        .par_iter()
        .map(|&n| metrics::suspect_auroc_at(&sets, Some(n), 1000, 20_240_501, mean_of))
        .collect();
    m.extra.insert(
        "suspect_auroc_1000_draws".into(),
        serde_json::json!({"@10": many[0], "@50": many[1]}),
    );
    m.extra.insert("fit_seconds".into(), serde_json::json!(round3(fit_secs)));
    m.extra.insert(
        "scored_responses_per_second".into(),
        serde_json::json!(round3(n_scored as f64 / score_secs)),
    );
    m.extra.insert(
        "suspect_p_values".into(),
        serde_json::json!(results
            .iter()
            .map(|r| (r.model.clone(), r.verdict.p_value))
            .collect::<std::collections::BTreeMap<_, _>>()),
    );
    // The verdict's own false-alarm rate on unseen independent models, from the calibration it
    // used (aligned when the suspects' scores are aligned), beside a pooled per-response null's.
    let (null_models, upstream_models) = profile.calibration().models(aligned);
    let check = crate::verdict::NullCheck::run(null_models, upstream_models, vopts.alpha);
    m.extra.insert(
        "verdict_null_models_flagged_lofo".into(),
        serde_json::json!(metrics::fraction(check.flagged_model_level.len(), check.models)),
    );
    m.extra.insert(
        "per_response_null_models_flagged_lofo".into(),
        serde_json::json!(metrics::fraction(check.flagged_per_response.len(), check.models)),
    );
    m.extra.insert("null_check".into(), serde_json::json!(check));
    // The validation that mimics unseen suspects, from the calibration alone (no suspect label):
    // known models scored held out (non-upstream ones with their whole family, upstream ones
    // alone, on prompts the profile was not fitted on). How well the score separates unseen
    // upstream versions from unseen families, per response and per model (set score = mean).
    let cal = profile.calibration();
    let means =
        |ms: &[crate::calibration::ModelNull]| ms.iter().map(|m| m.mean).collect::<Vec<_>>();
    // The same ranking at N = 10 and 50 responses per model (random draws as for the suspects),
    // on the scale the suspects are ranked on (aligned when they are).
    let up = dir.upstream();
    let val_sets: Vec<(bool, Vec<f64>)> = held_out
        .iter()
        .map(|h| {
            let s = if aligned && !h.aligned.is_empty() { &h.aligned } else { &h.scores };
            (h.family == up, s.clone())
        })
        .collect();
    let val_at: Vec<f64> = [Some(10), Some(50), None]
        .par_iter()
        .map(|&n| metrics::suspect_auroc_at(&val_sets, n, 20, 20_240_501, mean_of))
        .collect();
    m.extra.insert(
        "validation_lofo".into(),
        serde_json::json!({
            "model_auroc@10": val_at[0],
            "model_auroc@50": val_at[1],
            "model_auroc@all": val_at[2],
            "sample_auroc": metrics::auroc(
                &cal.upstream_scores.iter().map(|&x| x as f64).collect::<Vec<_>>(),
                &cal.null_scores.iter().map(|&x| x as f64).collect::<Vec<_>>()),
            "model_auroc": metrics::auroc(&means(&cal.upstream_models), &means(&cal.null_models)),
            "model_auroc_aligned": cal.aligned.as_ref().map(|a| metrics::auroc(&means(&a.upstream_models), &means(&a.null_models))),
            "null_model_means": cal.null_models.iter().map(|m| (m.model.clone(), round3(m.mean))).collect::<std::collections::BTreeMap<_, _>>(),
            "upstream_model_means": cal.upstream_models.iter().map(|m| (m.model.clone(), round3(m.mean))).collect::<std::collections::BTreeMap<_, _>>(),
        }),
    );
    // What the pooled per-response null would decide for the suspects (not the method's decision).
    let pooled = crate::calibration::PooledNull::from_models(null_models);
    let pooled_flag = |r: &SuspectResult| {
        let xs: Vec<f64> = scored
            .iter()
            .find(|(m, _)| *m == r.model)
            .map(|(_, s)| s.iter().map(per).collect())
            .unwrap_or_default();
        let m = crate::calibration::ModelNull::from_scores(&r.model, "", &xs);
        pooled.p_value(m.mean, m.var, m.n) < vopts.alpha
    };
    m.extra.insert(
        "per_response_null_students_flagged".into(),
        serde_json::json!(count(&|r| r.positive, &pooled_flag)),
    );
    m.extra.insert(
        "per_response_null_independents_flagged".into(),
        serde_json::json!(count(&|r| r.negative, &pooled_flag)),
    );
    if opts.dense_tiers.is_empty() {
        progress("audit validation: mixtures of families left out whole");
        m.extra.insert("audit_lofo".into(), audit_lofo(dir, opts)?);
    }
    m.extra.insert("desensitization".into(), desensitization_table(dir, &profile, aligned, &m)?);
    let responses = scored
        .iter()
        .flat_map(|(m, s)| {
            dir.samples_for(m, Split::Test)
                .into_iter()
                .zip(s)
                .map(move |(x, t)| (m.clone(), x.prompt_id.clone(), per(t)))
        })
        .collect();
    Ok(BenchRun {
        responses,
        roc_upstream: metrics::roc_curve(&ups, &neg),
        roc_student: metrics::roc_curve(&pos, &neg),
        metrics: m,
        suspects: results,
        profile,
    })
}

/// Per-text AUROCs after each desensitization step ([`crate::desensitize`]) applied to every
/// suspect's answers (the references stay the known models' raw answers, as a provider has
/// them), and the drop from the undesensitized figures in `m`. Skipped for neural profiles (their
/// vectors belong to the raw texts).
fn desensitization_table(
    dir: &BenchDir,
    profile: &Profile,
    aligned: bool,
    m: &BenchMetrics,
) -> crate::Result<serde_json::Value> {
    if !profile.neural_tiers().is_empty() {
        return Ok(serde_json::json!("skipped: neural vectors are of the raw texts"));
    }
    let mut rows = serde_json::Map::new();
    for step in crate::desensitize::Step::EACH {
        let mut by: [Vec<f64>; 3] = Default::default(); // upstream, student, negative
        for s in dir.suspects() {
            let slot = if dir.upstream_suspects().contains(&s) {
                0
            } else if dir.is_positive(s) {
                1
            } else if dir.is_negative(s) {
                2
            } else {
                continue;
            };
            let samples = dir.samples_for(s, Split::Test);
            let texts: Vec<String> = samples.iter().map(|x| step.apply(&x.response)).collect();
            let batch: Vec<(&str, Option<&str>)> = texts
                .iter()
                .zip(&samples)
                .map(|(t, x)| (t.as_str(), Some(x.prompt.as_str())))
                .collect();
            for t in profile.score_batch_with(&batch, None)? {
                by[slot].push(if aligned { t.aligned.unwrap_or(t.score) } else { t.score });
            }
        }
        let (up, st) = (metrics::auroc(&by[0], &by[2]), metrics::auroc(&by[1], &by[2]));
        rows.insert(
            step.name().into(),
            serde_json::json!({
                "sample_auroc_upstream": round3(up),
                "sample_auroc_student": round3(st),
                "drop_upstream": round3(m.sample_auroc_upstream - up),
                "drop_student": round3(m.sample_auroc_student - st),
            }),
        );
    }
    Ok(serde_json::Value::Object(rows))
}

/// The corpus audit validated on models it never saw as whole families: for each non-upstream
/// family F of the known models (paired in turn with one upstream model U), a profile is fitted
/// and calibrated without F and U, and corpora of F's and U's test-prompt answers at upstream
/// fractions 0, 5, 25 and 50% are audited with the default options. Reports each estimate,
/// interval and identified set (with the MLE at δ = 0), whether the interval covers the truth, the
/// largest estimate on an all-independent corpus (the bar: ≤ 0.05) and the mean widths of the
/// intervals and of the identified sets.
fn audit_lofo(dir: &BenchDir, opts: &FitOptions) -> crate::Result<serde_json::Value> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let up = dir.upstream();
    let known = dir.known_models();
    let mut families: Vec<&str> =
        known.iter().filter_map(|m| dir.family(m)).filter(|f| *f != up).collect();
    families.sort();
    families.dedup();
    let ups: Vec<&str> = known.iter().copied().filter(|m| dir.family(m) == Some(up)).collect();
    if ups.len() < 2 || families.len() < 3 {
        return Ok(serde_json::json!("skipped: needs ≥ 2 upstream models and ≥ 3 other families"));
    }
    const FRACTIONS: [f64; 4] = [0.0, 0.05, 0.25, 0.5];
    let aopts = crate::audit::AuditOptions::default();
    let rows: Vec<serde_json::Value> = families
        .par_iter()
        .enumerate()
        .map(|(i, fam)| -> crate::Result<Vec<serde_json::Value>> {
            let u = ups[i % ups.len()];
            let out = |m: &str| m == u || dir.family(m) == Some(fam);
            let profile = profile_without(dir, opts, None, &out)?.0;
            let score = |models: &[&str]| -> crate::Result<Vec<f64>> {
                let texts: Vec<(&str, Option<&str>)> = models
                    .iter()
                    .flat_map(|m| dir.samples_for(m, Split::Test))
                    .map(|s| (s.response.as_str(), None))
                    .collect();
                Ok(profile.score_batch_with(&texts, None)?.iter().map(|t| t.score).collect())
            };
            let fam_models: Vec<&str> =
                known.iter().copied().filter(|m| dir.family(m) == Some(fam)).collect();
            let (ind, upt) = (score(&fam_models)?, score(&[u])?);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20_241_203 + i as u64);
            Ok(FRACTIONS
                .iter()
                .map(|&pi| {
                    // The largest corpus both parts can fill at this fraction.
                    let n = if pi == 0.0 {
                        ind.len()
                    } else {
                        ((ind.len() as f64 / (1.0 - pi)).min(upt.len() as f64 / pi)) as usize
                    };
                    let k = (pi * n as f64).round() as usize;
                    let mut corpus: Vec<f64> =
                        upt.choose_multiple(&mut rng, k).copied().collect();
                    corpus.extend(ind.choose_multiple(&mut rng, n - k).copied());
                    let e = crate::audit::estimate(&corpus, profile.calibration(), &aopts);
                    let truth = k as f64 / n as f64;
                    let [b_lo, b_hi] = e.bounds.unwrap_or([f64::NAN; 2]);
                    serde_json::json!({
                        "family": fam, "upstream_model": u, "texts": n, "truth": round3(truth),
                        "estimate": round3(e.fraction), "ci95": [round3(e.ci95[0]), round3(e.ci95[1])],
                        "bounds": [round3(b_lo), round3(b_hi)],
                        "estimate_mle": e.fraction_mle.map(round3),
                        "shift_box": e.shift_box.map(|q| q.map(round3)),
                        "covered": e.ci95[0] <= truth && truth <= e.ci95[1],
                    })
                })
                .collect())
        })
        .collect::<crate::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let at_zero = rows.iter().filter(|r| r["truth"] == 0.0);
    let max_zero = at_zero.filter_map(|r| r["estimate"].as_f64()).fold(0.0, f64::max);
    let covered = rows.iter().filter(|r| r["covered"] == true).count();
    let mean_width = |key: &str| {
        let w: Vec<f64> =
            rows.iter().filter_map(|r| Some(r[key][1].as_f64()? - r[key][0].as_f64()?)).collect();
        round3(w.iter().sum::<f64>() / w.len().max(1) as f64)
    };
    Ok(serde_json::json!({
        "max_estimate_all_independent": max_zero,
        "covered": format!("{covered}/{}", rows.len()),
        "mean_interval_width": mean_width("ci95"),
        "mean_bounds_width": mean_width("bounds"),
        "corpora": rows,
    }))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
