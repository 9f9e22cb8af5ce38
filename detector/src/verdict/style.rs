//! Style triage: the set-level verdict on a suspect from the upstream scores of its responses,
//! tested against the profile's leave-one-model-out null of known independent models.
//!
//! The null is the random-effects [`SetNull`] (model means spread more than their responses'
//! noise), so what this test can say is bounded by how many reference models the null holds
//! (with a handful, p cannot go much below 0.1): it ranks and triages, it does not prove.

use super::{NullCheck, VerdictOptions};
use crate::calibration::{Calibration, ModelNull, SetNull};
use crate::{Decision, FamilyProb, GrowthPoint, TextScore, Verdict};
use statrs::distribution::{ContinuousCDF, StudentsT};
use std::collections::BTreeMap;

/// The set-level verdict about a suspect from the scores of its responses (in the order they
/// were collected: the growth curve follows that order).
///
/// When every response has a prompt-aligned score (the profile holds references for all their
/// prompts), the test runs on the aligned scale against the aligned null: the prompts' own
/// pull cancels out of both sides.
pub fn verdict(cal: &Calibration, scores: &[TextScore], opts: &VerdictOptions) -> Verdict {
    let aligned: Option<Vec<f64>> = scores.iter().map(|t| t.aligned).collect();
    let (s, use_aligned) = match aligned {
        Some(a) if !a.is_empty() && cal.aligned.is_some() => (a, true),
        _ => (scores.iter().map(|t| t.score).collect(), false),
    };
    let mut fam: BTreeMap<&str, f64> = BTreeMap::new();
    for t in scores {
        for fp in &t.families {
            *fam.entry(fp.family.as_str()).or_default() += fp.prob / scores.len() as f64;
        }
    }
    let mut families: Vec<FamilyProb> =
        fam.into_iter().map(|(f, p)| FamilyProb { family: f.to_string(), prob: p }).collect();
    families.sort_by(|a, b| b.prob.total_cmp(&a.prob));
    let mut v = verdict_on(cal, &s, use_aligned, opts);
    v.teacher = families.first().map(|f| f.family.clone());
    v.families = families;
    v
}

/// The style verdict from a suspect's per-response scores `s` (raw upstream scores, or
/// prompt-aligned ones when `aligned`): the mean against the calibration's random-effects null
/// ([`SetNull`]), the decision ([`decide`]), the growth curve on a doubling grid, the top samples
/// and the decision rule's measured error rates ([`NullCheck`]).
pub fn verdict_on(cal: &Calibration, s: &[f64], aligned: bool, opts: &VerdictOptions) -> Verdict {
    let (null_models, upstream_models) = cal.models(aligned);
    let null = SetNull::from_models(null_models);
    let n = s.len();
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let stat = mean(s);
    let p_value = if n == 0 { 1.0 } else { null.p_value(stat, n) };
    let decision = decide(s, p_value, &null, upstream_models, opts.alpha);
    let mut growth = Vec::new();
    let mut k = 1;
    while k < n {
        growth.push(GrowthPoint {
            n: k,
            statistic: mean(&s[..k]),
            p_value: null.p_value(mean(&s[..k]), k),
        });
        k *= 2;
    }
    if n > 0 {
        growth.push(GrowthPoint { n, statistic: stat, p_value });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
    order.truncate(opts.top);
    Verdict {
        n,
        statistic: stat,
        effect_size: if n == 0 { 0.0 } else { null.effect_size(stat, n) },
        p_value,
        alpha: opts.alpha,
        decision,
        teacher: None,
        families: Vec::new(),
        growth,
        top_samples: order,
        prompt_aligned: aligned && cal.aligned.is_some(),
        error_check: Some(NullCheck::run(null_models, upstream_models, opts.alpha).into()),
    }
}

/// The verdict's decision rule for a suspect's scores `s` (p-value already computed against
/// `null`): "distilled" when p < alpha; "independent" when the suspect's mean is confidently (a
/// one-sided 1 − alpha upper bound from its own responses) below the midpoint between the null
/// mean and the mean of the upstream's own models; otherwise "undecided". Fewer than 2 responses
/// decide nothing; without upstream models there is no midpoint, so never "independent".
pub fn decide(
    s: &[f64],
    p_value: f64,
    null: &SetNull,
    upstream_models: &[ModelNull],
    alpha: f64,
) -> crate::Decision {
    let n = s.len();
    if n < 2 {
        return Decision::Undecided;
    }
    if p_value < alpha {
        return Decision::Distilled;
    }
    if upstream_models.is_empty() {
        return Decision::Undecided;
    }
    let up_mean =
        upstream_models.iter().map(|m| m.mean).sum::<f64>() / upstream_models.len() as f64;
    let midpoint = (null.mu + up_mean) / 2.0;
    let stat = s.iter().sum::<f64>() / n as f64;
    let var = s.iter().map(|x| (x - stat).powi(2)).sum::<f64>() / (n - 1) as f64;
    let ucb = stat + t_quantile(1.0 - alpha, (n - 1) as f64) * (var / n as f64).sqrt();
    if ucb < midpoint {
        Decision::Independent
    } else {
        Decision::Undecided
    }
}

/// Upper quantile of Student's t (for one-sided confidence bounds).
pub fn t_quantile(p: f64, dof: f64) -> f64 {
    StudentsT::new(0.0, 1.0, dof.max(1.0)).expect("valid t").inverse_cdf(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_rule_edges() {
        let mk = |i: usize, mean: f64| ModelNull {
            model: format!("m{i}"),
            family: "f".into(),
            n: 50,
            mean,
            var: 1.0,
        };
        let null_models: Vec<ModelNull> =
            [-1.0, -0.5, 0.0].iter().enumerate().map(|(i, &m)| mk(i, m)).collect();
        let null = SetNull::from_models(&null_models);
        let upstream = [mk(7, 1.5), mk(8, 2.5)];
        let low = vec![-1.0, -1.2, -0.8, -1.1, -0.9, -1.0];
        let p = null.p_value(-1.0, low.len());
        // Confidently below the midpoint (−0.5 + 2.0) / 2 = 0.75: independent.
        assert_eq!(decide(&low, p, &null, &upstream, 0.01), Decision::Independent);
        // Without upstream models there is no midpoint: the same scores stay undecided (a +∞
        // fallback once made every unflagged suspect "independent").
        assert_eq!(decide(&low, p, &null, &[], 0.01), Decision::Undecided);
        // One response decides nothing; a small p-value flags.
        assert_eq!(decide(&low[..1], 0.0, &null, &upstream, 0.01), Decision::Undecided);
        assert_eq!(decide(&low, 0.001, &null, &upstream, 0.01), Decision::Distilled);
        // A NaN statistic is no evidence (statrs panics on it unguarded).
        assert_eq!(null.p_value(f64::NAN, 10), 1.0);
        assert_eq!(
            decide(&[f64::NAN, 0.0], null.p_value(f64::NAN, 2), &null, &upstream, 0.01),
            Decision::Undecided
        );
    }

    #[test]
    fn t_quantile_matches_tables() {
        assert!((t_quantile(0.99, 8.0) - 2.896).abs() < 1e-3);
        assert!((t_quantile(0.975, 1000.0) - 1.962).abs() < 1e-3);
    }
}
