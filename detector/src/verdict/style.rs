//! Style triage: the set-level view of a suspect from the upstream scores of its responses,
//! compared with the profile's leave-one-model-out null of known independent models.
//!
//! It ranks, it does not decide. Measured on unseen models: independent families the profile
//! has never seen look as upstream-like as students, and a null of K reference models cannot
//! support a p-value much below 1/(K+1); a student trained on "desensitized" data would look
//! independent. So the verdict's decision is always `undecided`, and what it reports is a
//! [`StyleTriage`]: the suspect's rank and percentile among the reference models, the smallest
//! p-value the reference set supports, the p-value (a ranking number) and the prompt-aligned
//! effect. The decision comes from an exact test (the served-output membership test).

use super::{NullCheck, VerdictOptions};
use crate::calibration::{Calibration, ModelNull, SetNull};
use crate::{Decision, FamilyProb, GrowthPoint, StyleTriage, TextScore, Verdict};
use std::collections::{BTreeMap, BTreeSet};

/// What every style triage says about what it cannot do, in the words an analyst can report.
pub const STYLE_IS_TRIAGE: &str = "style evidence ranks suspects but cannot decide distillation — the decision needs the served-output membership test";

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
/// ([`SetNull`]), the triage ([`triage`]), the growth curve on a doubling grid, the top samples
/// and the p < α rule's measured error rates ([`NullCheck`], how well the ranking separates the
/// calibration's own models). The decision is always `undecided`.
pub fn verdict_on(cal: &Calibration, s: &[f64], aligned: bool, opts: &VerdictOptions) -> Verdict {
    let (null_models, upstream_models) = cal.models(aligned);
    let null = SetNull::from_models(null_models);
    let n = s.len();
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let stat = mean(s);
    let p_value = if n == 0 { 1.0 } else { null.p_value(stat, n) };
    let effect_size = if n == 0 { 0.0 } else { null.effect_size(stat, n) };
    let prompt_aligned = aligned && cal.aligned.is_some();
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
    let effect = prompt_aligned.then_some(effect_size);
    Verdict {
        n,
        statistic: stat,
        effect_size,
        p_value,
        alpha: opts.alpha,
        decision: Decision::Undecided,
        teacher: None,
        families: Vec::new(),
        growth,
        top_samples: order,
        prompt_aligned,
        error_check: Some(NullCheck::run(null_models, upstream_models, opts.alpha).into()),
        triage: Some(triage(null_models, n, stat, p_value, effect)),
    }
}

/// Where a suspect whose `n` responses average `stat` ranks among the reference models
/// `null_models` (each a known independent model, scored leave-one-model-out).
pub fn triage(
    null_models: &[ModelNull],
    n: usize,
    stat: f64,
    p_value: f64,
    aligned_effect: Option<f64>,
) -> StyleTriage {
    let k = null_models.len();
    // A NaN statistic (no evidence) ranks last: no mean is below it.
    let below = null_models.iter().filter(|m| m.mean < stat).count();
    let families = null_models.iter().map(|m| m.family.as_str()).collect::<BTreeSet<_>>().len();
    let percentile = if k == 0 { 0.0 } else { below as f64 / k as f64 };
    let min_p_value = 1.0 / (k as f64 + 1.0);
    let summary = if k == 0 {
        format!("No known independent reference models to rank against; {STYLE_IS_TRIAGE}.")
    } else if n == 0 {
        format!("No responses to rank yet; {STYLE_IS_TRIAGE}.")
    } else {
        let pct = (100.0 * percentile).round() as usize;
        format!(
            "More upstream-like than {below} of {k} known independent reference models from {families} {} ({} percentile; with {k} references no p-value below {} is supported); {STYLE_IS_TRIAGE}.",
            if families == 1 { "family" } else { "families" },
            ordinal(pct),
            short(min_p_value),
        )
    };
    StyleTriage {
        rank: k - below + 1,
        percentile,
        reference_models: k,
        reference_families: families,
        min_p_value,
        p_value,
        aligned_effect,
        summary,
    }
}

/// "1st", "2nd", "83rd", "11th".
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Two significant digits, for a sentence.
fn short(x: f64) -> String {
    format!("{:.2}", x).trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(i: usize, family: &str, mean: f64) -> ModelNull {
        ModelNull { model: format!("m{i}"), family: family.into(), n: 50, mean, var: 1.0 }
    }

    #[test]
    fn triage_ranks_against_the_reference_models() {
        let refs: Vec<ModelNull> =
            [("a", -1.0), ("a", -0.5), ("b", 0.0), ("c", 0.5), ("d", 1.0), ("e", 2.0)]
                .iter()
                .enumerate()
                .map(|(i, (f, m))| mk(i, f, *m))
                .collect();
        let t = triage(&refs, 40, 1.5, 0.03, Some(1.2));
        assert_eq!((t.rank, t.reference_models, t.reference_families), (2, 6, 5));
        assert!((t.percentile - 5.0 / 6.0).abs() < 1e-12);
        assert!((t.min_p_value - 1.0 / 7.0).abs() < 1e-12);
        assert_eq!((t.p_value, t.aligned_effect), (0.03, Some(1.2)));
        assert!(
            t.summary.starts_with("More upstream-like than 5 of 6 known independent reference models from 5 families (83rd percentile; with 6 references no p-value below 0.14 is supported)"),
            "{}",
            t.summary
        );
        assert!(t.summary.contains("cannot decide distillation"), "{}", t.summary);
        assert!(t.summary.contains("membership test"), "{}", t.summary);
        // Below every reference: last rank, 0th percentile; above all: rank 1.
        let low = triage(&refs, 40, -3.0, 0.99, None);
        assert_eq!((low.rank, low.percentile), (7, 0.0));
        assert!(low.summary.contains("(0th percentile"), "{}", low.summary);
        assert_eq!(triage(&refs, 40, 9.0, 1e-9, None).rank, 1);
        // Nothing to rank against, or nothing to rank.
        assert!(triage(&[], 40, 1.0, 0.5, None).summary.starts_with("No known independent"));
        assert!(triage(&refs, 0, 0.0, 1.0, None).summary.starts_with("No responses"));
        assert_eq!(triage(&refs, 10, f64::NAN, 1.0, None).rank, 7);
    }

    #[test]
    fn ordinals() {
        let got: Vec<String> =
            [0, 1, 2, 3, 4, 11, 12, 13, 21, 83, 100].iter().map(|&n| ordinal(n)).collect();
        assert_eq!(
            got,
            ["0th", "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "83rd", "100th"]
        );
    }

    /// Style alone never decides, whichever way the evidence points: a suspect far above every
    /// known independent model (which the old rule called `distilled`) and one confidently
    /// below the upstream midpoint (which it called `independent`) are both `undecided`, ranked.
    #[test]
    fn the_style_verdict_never_decides() {
        let profile = crate::Profile::builtin().expect("built-in profile");
        let opts = VerdictOptions::default();
        let high = profile.verdict_from_scores(&[40.0; 50], &opts);
        assert!(high.p_value < opts.alpha, "the old rule would have flagged: {high:?}");
        let low = profile.verdict_from_scores(&[-40.0; 50], &opts);
        for v in [&high, &low] {
            assert_eq!(v.decision, Decision::Undecided, "{v:?}");
        }
        let (th, tl) = (high.triage.expect("triage"), low.triage.expect("triage"));
        let k = profile.calibration().null_models.len();
        assert_eq!((th.rank, th.percentile, th.reference_models), (1, 1.0, k));
        assert_eq!((tl.rank, tl.percentile), (k + 1, 0.0));
        assert_eq!(th.p_value, high.p_value);
        assert!(!high.prompt_aligned && th.aligned_effect.is_none());
    }
}
