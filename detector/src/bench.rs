//! The bench protocol (`../shared/datasets/README.md`) run end to end: fit a profile on the
//! train prompts of known-family models, calibrate it leave-one-model-out on their test-prompt
//! answers, score every suspect's test-prompt answers, and compute the protocol's metrics.
//! Suspect labels are read only to compute the metrics.

use crate::dense::{lookup, DenseTable};
use crate::profile::{FitOptions, LabeledText, Profile};
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
    let labeled = |split: Split| -> crate::Result<Vec<LabeledText>> {
        let mut out = Vec::new();
        for m in dir.known_models() {
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
    Profile::fit(&train, &calib, opts)
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
    let profile = profile_from_bench(dir, opts, dense)?;
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
        "verdict_null_models_flagged_lomo".into(),
        serde_json::json!(metrics::fraction(check.flagged_model_level.len(), check.models)),
    );
    m.extra.insert(
        "per_response_null_models_flagged_lomo".into(),
        serde_json::json!(metrics::fraction(check.flagged_per_response.len(), check.models)),
    );
    m.extra.insert("null_check".into(), serde_json::json!(check));
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

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
