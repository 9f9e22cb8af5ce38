//! The bench protocol's metrics (see `shared/datasets/README.md`, "The bench protocol").
//!
//! Conventions: higher score = more likely derived from the upstream. Empty inputs give
//! `NaN` rather than a panic, so a method that cannot score a population reports it instead
//! of crashing the run; callers should filter `NaN` scores out before calling (they are
//! ranked above every number by `f64::total_cmp`).

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Deserializer, Serialize};

/// Area under the ROC curve of `pos` vs `neg` = P(score(pos) > score(neg)) + ½ P(equal),
/// i.e. the Mann–Whitney U statistic over n·m. Computed from average ranks in
/// O((n+m) log(n+m)), so it is cheap even for all-pairs of 10⁵ responses.
pub fn auroc(pos: &[f64], neg: &[f64]) -> f64 {
    if pos.is_empty() || neg.is_empty() {
        return f64::NAN;
    }
    let mut all: Vec<(f64, bool)> =
        pos.iter().map(|&x| (x, true)).chain(neg.iter().map(|&x| (x, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i + 1;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        // Items i..j share 1-based ranks i+1..=j; each gets their mean.
        let avg_rank = (i + 1 + j) as f64 / 2.0;
        let n_pos = all[i..j].iter().filter(|x| x.1).count();
        rank_sum_pos += avg_rank * n_pos as f64;
        i = j;
    }
    let n = pos.len() as f64;
    let m = neg.len() as f64;
    (rank_sum_pos - n * (n + 1.0) / 2.0) / (n * m)
}

/// The `q`-th percentile (0–100) with numpy's default (`linear`) interpolation:
/// index h = q/100·(N−1) into the sorted values, interpolated between its neighbours.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let h = (q.clamp(0.0, 100.0) / 100.0) * (v.len() - 1) as f64;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    let frac = h - lo as f64;
    if frac == 0.0 {
        v[lo]
    } else {
        v[lo] + frac * (v[hi] - v[lo])
    }
}

/// True-positive rate at a false-positive rate, the protocol's way: the threshold is the
/// `100·(1−fpr)`-th percentile of `neg` and a positive counts only if *strictly* above it.
pub fn tpr_at_fpr(pos: &[f64], neg: &[f64], fpr: f64) -> f64 {
    if pos.is_empty() || neg.is_empty() {
        return f64::NAN;
    }
    let thr = percentile(neg, 100.0 * (1.0 - fpr));
    pos.iter().filter(|&&x| x > thr).count() as f64 / pos.len() as f64
}

/// ROC curve points `(fpr, tpr)` from `(0,0)` to `(1,1)`, one point per distinct score
/// (thresholds descending; tied scores move both rates at once, giving a diagonal segment).
pub fn roc_curve(pos: &[f64], neg: &[f64]) -> Vec<(f64, f64)> {
    if pos.is_empty() || neg.is_empty() {
        return Vec::new();
    }
    let mut all: Vec<(f64, bool)> =
        pos.iter().map(|&x| (x, true)).chain(neg.iter().map(|&x| (x, false))).collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (np, nn) = (pos.len() as f64, neg.len() as f64);
    let mut out = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            if all[j].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            j += 1;
        }
        // NaN never equals itself: consume it on its own.
        if j == i {
            if all[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            j = i + 1;
        }
        out.push((fp as f64 / nn, tp as f64 / np));
        i = j;
    }
    out
}

/// Suspect-level AUROC at `n` responses per suspect (`suspect_auroc@N`).
///
/// `suspects` pairs each suspect's label (`true` = positive) with its items (responses,
/// per-response scores, …). For each of `draws` draws, `n` items per suspect are drawn
/// uniformly without replacement (all items if the suspect has ≤ n, or if `n` is `None`),
/// `set_score` turns them into one score per suspect, and the AUROC of positives vs
/// negatives is taken; the result is the mean over draws. Draw `d` uses
/// `ChaCha8Rng::seed_from_u64(seed)` on stream `d`, so results are reproducible and a draw
/// does not depend on how many draws precede it. When no subsampling happens a single draw
/// is computed (all draws would be identical). Drawn items are passed in their original order.
pub fn suspect_auroc_at<T>(
    suspects: &[(bool, Vec<T>)],
    n: Option<usize>,
    draws: usize,
    seed: u64,
    set_score: impl Fn(&[&T]) -> f64,
) -> f64 {
    let subsample = match n {
        None => false,
        Some(n) => suspects.iter().any(|(_, items)| items.len() > n),
    };
    let draws = if subsample { draws.max(1) } else { 1 };
    let mut total = 0.0;
    for d in 0..draws {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(d as u64);
        let mut pos = Vec::new();
        let mut neg = Vec::new();
        for (positive, items) in suspects {
            let chosen: Vec<&T> = match n {
                Some(n) if items.len() > n => {
                    let mut idx = rand::seq::index::sample(&mut rng, items.len(), n).into_vec();
                    idx.sort_unstable();
                    idx.into_iter().map(|i| &items[i]).collect()
                }
                _ => items.iter().collect(),
            };
            let s = set_score(&chosen);
            if *positive {
                pos.push(s);
            } else {
                neg.push(s);
            }
        }
        total += auroc(&pos, &neg);
    }
    total / draws as f64
}

/// `"k/n"`, the protocol's way of printing counts.
pub fn fraction(k: usize, n: usize) -> String {
    format!("{k}/{n}")
}

/// Parses `"k/n"` (whitespace tolerated); `None` if malformed or k > n.
pub fn parse_fraction(s: &str) -> Option<(usize, usize)> {
    let (k, n) = s.split_once('/')?;
    let (k, n) = (k.trim().parse().ok()?, n.trim().parse().ok()?);
    (k <= n).then_some((k, n))
}

/// The protocol's keys, in the order of its README.
pub const PROTOCOL_KEYS: &[&str] = &[
    "sample_auroc_upstream",
    "sample_tpr_at_1fpr_upstream",
    "sample_auroc_student",
    "sample_tpr_at_1fpr_student",
    "suspect_auroc@10",
    "suspect_auroc@50",
    "suspect_auroc@all",
    "verdict_students_flagged",
    "verdict_independents_flagged",
    "teacher_correct",
];

/// The metrics a method prints, as one JSON object with the protocol's exact keys.
/// Extra keys a method wants to report go in `extra` (flattened into the same object).
/// `NaN` serializes as `null` (serde_json's rule) and reads back as `NaN`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchMetrics {
    #[serde(deserialize_with = "f64_or_nan")]
    pub sample_auroc_upstream: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub sample_tpr_at_1fpr_upstream: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub sample_auroc_student: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub sample_tpr_at_1fpr_student: f64,
    #[serde(rename = "suspect_auroc@10", deserialize_with = "f64_or_nan")]
    pub suspect_auroc_at_10: f64,
    #[serde(rename = "suspect_auroc@50", deserialize_with = "f64_or_nan")]
    pub suspect_auroc_at_50: f64,
    #[serde(rename = "suspect_auroc@all", deserialize_with = "f64_or_nan")]
    pub suspect_auroc_at_all: f64,
    /// "k/n" positive suspects flagged at α = 0.01.
    pub verdict_students_flagged: String,
    /// "k/n" negatives flagged (false alarms).
    pub verdict_independents_flagged: String,
    /// "k/n" students whose top-attributed family is their teacher.
    pub teacher_correct: String,
    #[serde(flatten, default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// The published TF-IDF + logistic-regression baseline on alpaca-eval-dev.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    pub sample_auroc_upstream: f64,
    pub sample_tpr_at_1fpr_upstream: f64,
    pub sample_auroc_student: f64,
    pub suspect_auroc_at_10: f64,
    pub suspect_auroc_at_50: f64,
    pub suspect_auroc_at_all: f64,
    /// (k, n)
    pub verdict_students_flagged: (usize, usize),
    /// (k, n)
    pub verdict_independents_flagged: (usize, usize),
}

/// Figures from `shared/datasets/README.md`.
pub const BASELINE: Baseline = Baseline {
    sample_auroc_upstream: 0.811,
    sample_tpr_at_1fpr_upstream: 0.10,
    sample_auroc_student: 0.737,
    suspect_auroc_at_10: 0.898,
    suspect_auroc_at_50: 0.963,
    suspect_auroc_at_all: 0.969,
    verdict_students_flagged: (0, 8),
    verdict_independents_flagged: (0, 4),
};

/// The acceptance bar for positive suspects flagged: at least 6 of 8.
pub const STUDENTS_FLAGGED_BAR: (usize, usize) = (6, 8);

/// One row of `compare_to_baseline`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub key: &'static str,
    pub ours: String,
    pub baseline: String,
    pub ok: bool,
}

/// Compares `m` with `BASELINE`, one row per baselined key, in protocol order.
/// Numbers pass when ours ≥ baseline (`NaN` fails). Students flagged pass when
/// k/n ≥ the baseline's fraction *and* ≥ `STUDENTS_FLAGGED_BAR`; independents flagged pass
/// when k/n ≤ the baseline's fraction. Fractions are compared as rationals, so a bench with a
/// different n is still judged fairly; an unparsable "k/n" fails.
pub fn compare_to_baseline(m: &BenchMetrics) -> Vec<Comparison> {
    let b = BASELINE;
    let num = |key: &'static str, ours: f64, base: f64| Comparison {
        key,
        ours: format!("{ours:.3}"),
        baseline: format!("{base:.3}"),
        ok: ours >= base,
    };
    // k1/n1 >= k2/n2  <=>  k1·n2 >= k2·n1
    let ge = |(k1, n1): (usize, usize), (k2, n2): (usize, usize)| k1 * n2 >= k2 * n1;
    let students = parse_fraction(&m.verdict_students_flagged);
    let indep = parse_fraction(&m.verdict_independents_flagged);
    let (sk, sn) = b.verdict_students_flagged;
    let (ik, in_) = b.verdict_independents_flagged;
    vec![
        num("sample_auroc_upstream", m.sample_auroc_upstream, b.sample_auroc_upstream),
        num(
            "sample_tpr_at_1fpr_upstream",
            m.sample_tpr_at_1fpr_upstream,
            b.sample_tpr_at_1fpr_upstream,
        ),
        num("sample_auroc_student", m.sample_auroc_student, b.sample_auroc_student),
        num("suspect_auroc@10", m.suspect_auroc_at_10, b.suspect_auroc_at_10),
        num("suspect_auroc@50", m.suspect_auroc_at_50, b.suspect_auroc_at_50),
        num("suspect_auroc@all", m.suspect_auroc_at_all, b.suspect_auroc_at_all),
        Comparison {
            key: "verdict_students_flagged",
            ours: m.verdict_students_flagged.clone(),
            baseline: fraction(sk, sn),
            ok: students.is_some_and(|f| ge(f, (sk, sn)) && ge(f, STUDENTS_FLAGGED_BAR)),
        },
        Comparison {
            key: "verdict_independents_flagged",
            ours: m.verdict_independents_flagged.clone(),
            baseline: fraction(ik, in_),
            ok: indep.is_some_and(|f| ge((ik, in_), f)),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// O(n·m) definition, to cross-check the rank formula.
    fn auroc_pairs(pos: &[f64], neg: &[f64]) -> f64 {
        let mut s = 0.0;
        for &p in pos {
            for &n in neg {
                s += if p > n {
                    1.0
                } else if p == n {
                    0.5
                } else {
                    0.0
                };
            }
        }
        s / (pos.len() * neg.len()) as f64
    }

    #[test]
    fn auroc_hand_values() {
        assert!(close(auroc(&[3.0, 4.0], &[1.0, 2.0]), 1.0));
        assert!(close(auroc(&[1.0, 2.0], &[3.0, 4.0]), 0.0));
        // pairs: (2>1) 1, (2<3) 0, (4>1) 1, (4>3) 1  → 3/4
        assert!(close(auroc(&[2.0, 4.0], &[1.0, 3.0]), 0.75));
        // ties: 1 vs 1 = ½, 1 vs 0 = 1 → (0.5 + 1)/2
        assert!(close(auroc(&[1.0], &[1.0, 0.0]), 0.75));
        assert!(close(auroc(&[5.0, 5.0], &[5.0]), 0.5));
        assert!(auroc(&[], &[1.0]).is_nan());
        assert!(auroc(&[1.0], &[]).is_nan());
    }

    #[test]
    fn auroc_matches_pairwise_definition() {
        use rand::Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..20 {
            let pos: Vec<f64> =
                (0..rng.gen_range(1..40)).map(|_| rng.gen_range(0..10) as f64).collect();
            let neg: Vec<f64> =
                (0..rng.gen_range(1..40)).map(|_| rng.gen_range(0..8) as f64).collect();
            assert!(close(auroc(&pos, &neg), auroc_pairs(&pos, &neg)));
        }
    }

    #[test]
    fn percentile_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        // np.percentile([1,2,3,4], q): 50 → 2.5, 99 → 3.97, 0 → 1, 100 → 4, 25 → 1.75
        assert!(close(percentile(&v, 50.0), 2.5));
        assert!(close(percentile(&v, 99.0), 3.97));
        assert!(close(percentile(&v, 0.0), 1.0));
        assert!(close(percentile(&v, 100.0), 4.0));
        assert!(close(percentile(&[4.0, 1.0, 3.0, 2.0], 25.0), 1.75));
        assert!(close(percentile(&[7.0], 99.0), 7.0));
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn tpr_at_fpr_strictly_above() {
        // neg 0..=100 → 99th percentile = 99 exactly.
        let neg: Vec<f64> = (0..=100).map(f64::from).collect();
        assert!(close(percentile(&neg, 99.0), 99.0));
        // 99 is not strictly above; 99.5 and 100.5 are → 2/4.
        let pos = [99.0, 99.5, 100.5, 10.0];
        assert!(close(tpr_at_fpr(&pos, &neg, 0.01), 0.5));
        // neg [1,2,3,4] at fpr 0.5 → threshold 2.5 → pos 3 and 4 above → 2/3.
        assert!(close(tpr_at_fpr(&[2.0, 3.0, 4.0], &[1.0, 2.0, 3.0, 4.0], 0.5), 2.0 / 3.0));
    }

    #[test]
    fn roc_curve_points() {
        let c = roc_curve(&[2.0, 4.0], &[1.0, 3.0]);
        assert_eq!(c, vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]);
        // tie at 1: both rates move together.
        let c = roc_curve(&[1.0], &[1.0, 0.0]);
        assert_eq!(c, vec![(0.0, 0.0), (0.5, 1.0), (1.0, 1.0)]);
        // Trapezoid area equals auroc.
        let c = roc_curve(&[2.0, 4.0, 3.0], &[1.0, 3.0, 0.5, 3.0]);
        let area: f64 = c.windows(2).map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0).sum();
        assert!(close(area, auroc(&[2.0, 4.0, 3.0], &[1.0, 3.0, 0.5, 3.0])));
    }

    #[test]
    fn suspect_auroc_all_is_deterministic() {
        // set score = mean; positives mean 2.5, 3.0; negatives 1.0, 2.75 → pairs 1,0,1,1 → 0.75
        let s = vec![
            (true, vec![2.0, 3.0]),
            (true, vec![3.0]),
            (false, vec![1.0, 1.0]),
            (false, vec![2.5, 3.0]),
        ];
        let mean = |xs: &[&f64]| xs.iter().copied().sum::<f64>() / xs.len() as f64;
        assert!(close(suspect_auroc_at(&s, None, 20, 1, mean), 0.75));
        // n ≥ every size: no subsampling, same value.
        assert!(close(suspect_auroc_at(&s, Some(5), 20, 1, mean), 0.75));
    }

    #[test]
    fn suspect_auroc_subsamples_without_replacement() {
        use std::cell::Cell;
        // Positives hold values {10, 11, 12}, negatives {0, 1, 2}: any draw separates them.
        let s = vec![
            (true, vec![10.0, 11.0, 12.0]),
            (true, vec![12.0, 11.0, 10.0]),
            (false, vec![0.0, 1.0, 2.0]),
        ];
        let calls = Cell::new(0);
        let score = |xs: &[&f64]| {
            calls.set(calls.get() + 1);
            assert_eq!(xs.len(), 2);
            assert_ne!(xs[0], xs[1], "drawn with replacement");
            xs.iter().copied().sum::<f64>()
        };
        assert!(close(suspect_auroc_at(&s, Some(2), 5, 3, score), 1.0));
        assert_eq!(calls.get(), 15, "3 suspects × 5 draws");

        // One positive with items {0, 10}, one negative {5}; n = 1: the positive wins exactly
        // when it draws 10. The mean over draws is the fraction of such draws, which must be
        // neither 0 nor 1 with 200 draws, and be reproducible with the same seed.
        let s = vec![(true, vec![0.0, 10.0]), (false, vec![5.0])];
        let first = |xs: &[&f64]| *xs[0];
        let a = suspect_auroc_at(&s, Some(1), 200, 42, first);
        assert!(a > 0.3 && a < 0.7, "{a}");
        assert_eq!(a, suspect_auroc_at(&s, Some(1), 200, 42, first));
        assert_ne!(a, suspect_auroc_at(&s, Some(1), 200, 43, first));
    }

    #[test]
    fn fractions() {
        assert_eq!(fraction(3, 8), "3/8");
        assert_eq!(parse_fraction(" 3 / 8"), Some((3, 8)));
        assert_eq!(parse_fraction("9/8"), None);
        assert_eq!(parse_fraction("x/8"), None);
    }

    fn metrics() -> BenchMetrics {
        BenchMetrics {
            sample_auroc_upstream: 0.9,
            sample_tpr_at_1fpr_upstream: 0.2,
            sample_auroc_student: 0.7,
            sample_tpr_at_1fpr_student: 0.05,
            suspect_auroc_at_10: 0.95,
            suspect_auroc_at_50: 0.97,
            suspect_auroc_at_all: f64::NAN,
            verdict_students_flagged: "6/8".into(),
            verdict_independents_flagged: "1/4".into(),
            teacher_correct: "5/9".into(),
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn metrics_json_keys() {
        let mut m = metrics();
        m.extra.insert("method".into(), serde_json::json!("x"));
        let v = serde_json::to_value(&m).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for k in PROTOCOL_KEYS.iter().chain(&["method"]) {
            assert!(keys.contains(k), "{k} missing from {keys:?}");
        }
        assert_eq!(keys.len(), 11);
        assert!(v["suspect_auroc@all"].is_null());
        let back: BenchMetrics = serde_json::from_value(v).unwrap();
        assert!(back.suspect_auroc_at_all.is_nan());
        assert_eq!(back.suspect_auroc_at_10, 0.95);
        assert_eq!(back.extra["method"], "x");
    }

    #[test]
    fn baseline_comparison() {
        let rows = compare_to_baseline(&metrics());
        let ok: Vec<(&str, bool)> = rows.iter().map(|r| (r.key, r.ok)).collect();
        assert_eq!(
            ok,
            vec![
                ("sample_auroc_upstream", true),
                ("sample_tpr_at_1fpr_upstream", true),
                ("sample_auroc_student", false),
                ("suspect_auroc@10", true),
                ("suspect_auroc@50", true),
                ("suspect_auroc@all", false), // NaN
                ("verdict_students_flagged", true),
                ("verdict_independents_flagged", false),
            ]
        );
        assert_eq!(rows[0].ours, "0.900");
        assert_eq!(rows[0].baseline, "0.811");
        assert_eq!(rows[6].baseline, "0/8");
        let mut m = metrics();
        m.verdict_students_flagged = "5/8".into(); // beats 0/8 but misses the 6/8 bar
        m.verdict_independents_flagged = "0/4".into();
        let rows = compare_to_baseline(&m);
        assert!(!rows[6].ok);
        assert!(rows[7].ok);
        m.verdict_students_flagged = "garbage".into();
        assert!(!compare_to_baseline(&m)[6].ok);
    }
}
