//! Per-prompt statistics.
//!
//! On one prompt the provider holds `m + 1` answers of one snapshot: the served one and `m`
//! fresh ones. Phrases all of them share say nothing about *which* one the suspect saw: they
//! are what the snapshot (and often every model) says to this prompt. What distinguishes answer
//! `k` is its **specific** set `U_k`: its n-grams that no other of the `m + 1` answers has.
//! Counting the suspect's hits `h_k = |U_k ∩ suspect|` over sizes `n_k = |U_k|` gives, for the
//! labelling "answer `k` was served",
//!
//! * `xa = h_k` of `na = n_k` specific n-grams of the labelled-served answer matched, and
//! * `xb = Σ_{j≠k} h_j` of `nb = Σ_{j≠k} n_j` specific n-grams of the others.
//!
//! If the suspect had no preference, the `xa + xb` hits would fall on the `na + nb` specific
//! n-grams without regard to which answer they belong to: `xa` would be hypergeometric. The
//! per-prompt statistic is the **signed log tail ratio**
//! `e_k = ln P(X ≤ xa) − ln P(X ≥ xa)`, `X ~ Hypergeometric(na + nb, na, xa + xb)`:
//! positive when the labelled-served answer's own phrasing is over-represented in the suspect,
//! about `z²/2` for a `z`-sized deviation, and 0 when the prompt carries no information (no
//! specific n-grams on one side, or no hits). It is normalised per prompt by that prompt's own
//! sizes (a long answer does not outweigh a short one by length alone), and it grows fast with a
//! large per-prompt difference, so a sum over prompts is led by the few prompts a student
//! copied instead of being diluted by the many it did not (sparse signal). With `m = 1`,
//! `e_1 = −e_0` exactly.
//!
//! The hypergeometric model is *not* what makes the test exact (n-grams overlap, so hits are
//! not independent draws): exactness comes from the randomisation over labellings
//! (`randomization`). The model only shapes the weighting.

use std::collections::HashMap;

use super::grams::{contains, intersect_count};

/// The specific n-gram sets of one prompt's `m + 1` same-snapshot answers.
#[derive(Debug, Clone)]
pub struct Specific {
    /// `U_k`, sorted, for k = 0 (served), 1..=m (fresh).
    pub sets: Vec<Vec<u64>>,
}

impl Specific {
    /// From the answers' n-gram sets (each sorted and de-duplicated).
    pub fn new(answers: &[&[u64]]) -> Specific {
        if answers.len() == 2 {
            // The common case, by merge: U_0 = A \ B, U_1 = B \ A.
            let (a, b) = (answers[0], answers[1]);
            let (mut ua, mut ub) = (Vec::new(), Vec::new());
            let (mut i, mut j) = (0, 0);
            while i < a.len() || j < b.len() {
                if j == b.len() || (i < a.len() && a[i] < b[j]) {
                    ua.push(a[i]);
                    i += 1;
                } else if i == a.len() || b[j] < a[i] {
                    ub.push(b[j]);
                    j += 1;
                } else {
                    i += 1;
                    j += 1;
                }
            }
            return Specific { sets: vec![ua, ub] };
        }
        let mut owner: HashMap<u64, Option<usize>> = HashMap::new();
        for (k, set) in answers.iter().enumerate() {
            for &g in set.iter() {
                owner
                    .entry(g)
                    .and_modify(|o| {
                        if *o != Some(k) {
                            *o = None;
                        }
                    })
                    .or_insert(Some(k));
            }
        }
        let sets = (0..answers.len())
            .map(|k| answers[k].iter().copied().filter(|g| owner[g] == Some(k)).collect())
            .collect();
        Specific { sets }
    }

    /// `n_k`.
    pub fn sizes(&self) -> Vec<u32> {
        self.sets.iter().map(|s| s.len() as u32).collect()
    }

    /// `h_k` for a probe text's n-gram set.
    pub fn hits(&self, probe: &[u64]) -> Vec<u32> {
        self.sets.iter().map(|s| intersect_count(s, probe) as u32).collect()
    }

    /// Whether n-gram `g` is specific to answer `k` (in it and in no other answer).
    pub fn is_specific_to(&self, k: usize, g: u64) -> bool {
        contains(&self.sets[k], g)
    }
}

/// `e_k` for every labelling `k` (see the module doc), from sizes `n` and hits `h`.
pub fn log_evidence(n: &[u32], h: &[u32]) -> Vec<f64> {
    let (tn, th): (u64, u64) =
        (n.iter().map(|&x| x as u64).sum(), h.iter().map(|&x| x as u64).sum());
    n.iter()
        .zip(h)
        .map(|(&nk, &hk)| log_tail_ratio(nk as u64, tn - nk as u64, hk as u64, th - hk as u64))
        .collect()
}

/// `ln P(X ≤ xa) − ln P(X ≥ xa)` for `X ~ Hypergeometric(N = na + nb, K = na, draws = xa + xb)`;
/// 0 when the distribution is degenerate (nothing to compare).
///
/// Computed from pmf ratios relative to `P(X = xa)` (which cancels), accumulated in log space:
/// `P(k + 1) / P(k) = (K − k)(d − k) / ((k + 1)(N − K − d + k + 1))`.
pub fn log_tail_ratio(na: u64, nb: u64, xa: u64, xb: u64) -> f64 {
    debug_assert!(xa <= na && xb <= nb, "hits exceed their set sizes");
    let (xa, xb) = (xa.min(na), xb.min(nb));
    let (big_n, k_pop, d) = (na + nb, na, xa + xb);
    if na == 0 || nb == 0 || d == 0 || d == big_n {
        return 0.0;
    }
    let lo = d.saturating_sub(nb);
    let hi = d.min(na);
    if lo == hi {
        return 0.0;
    }
    let ln_ratio_up = |k: u64| -> f64 {
        // ln P(k+1)/P(k)
        let num = ((k_pop - k) as f64) * ((d - k) as f64);
        let den = ((k + 1) as f64) * ((nb + k + 1 - d) as f64);
        (num / den).ln()
    };
    // Upper tail: k = xa..=hi.
    let mut up = LogSum::new();
    let mut lt = 0.0f64;
    up.add(lt);
    let mut k = xa;
    while k < hi {
        lt += ln_ratio_up(k);
        k += 1;
        up.add(lt);
        if up.negligible(lt) {
            break;
        }
    }
    // Lower tail: k = lo..=xa.
    let mut down = LogSum::new();
    let mut lt = 0.0f64;
    down.add(lt);
    let mut k = xa;
    while k > lo {
        lt -= ln_ratio_up(k - 1);
        k -= 1;
        down.add(lt);
        if down.negligible(lt) {
            break;
        }
    }
    down.value() - up.value()
}

/// A running `ln Σ exp(x)`.
struct LogSum {
    max: f64,
    sum: f64,
    /// Whether terms have started to fall (the pmf is unimodal: once past the mode, terms only
    /// shrink, so the sum can stop when they are negligible).
    falling: bool,
    last: f64,
}

impl LogSum {
    fn new() -> LogSum {
        LogSum { max: f64::NEG_INFINITY, sum: 0.0, falling: false, last: f64::NEG_INFINITY }
    }

    fn add(&mut self, x: f64) {
        if x > self.max {
            self.sum = self.sum * (self.max - x).exp() + 1.0;
            self.max = x;
        } else {
            self.sum += (x - self.max).exp();
        }
        self.falling |= x < self.last;
        self.last = x;
    }

    /// Past the mode and 40 nats below the largest term: the rest adds < e^-40 relative.
    fn negligible(&self, x: f64) -> bool {
        self.falling && x < self.max - 40.0
    }

    fn value(&self) -> f64 {
        self.max + self.sum.ln()
    }
}

/// The per-prompt statistic of the baseline the issue names: IDF-weighted n-gram overlap
/// `ov_k = Σ_{g ∈ S ∩ A_k} idf(g) / Σ_{g ∈ A_k} idf(g)`, and for labelling `k`
/// `d_k = ov_k − mean_{j≠k} ov_j`. `idf` comes from all served and fresh answers of the
/// matched prompts (a pool that relabelling does not change, so the baseline is exact too).
pub fn baseline_overlap(answers: &[&[u64]], suspect: &[u64], idf: &HashMap<u64, f64>) -> Vec<f64> {
    let w = |g: &u64| idf.get(g).copied().unwrap_or(0.0);
    let ov: Vec<f64> = answers
        .iter()
        .map(|a| {
            let total: f64 = a.iter().map(w).sum();
            let shared: f64 = a.iter().filter(|g| contains(suspect, **g)).map(w).sum();
            if total > 0.0 {
                shared / total
            } else {
                0.0
            }
        })
        .collect();
    let sum: f64 = ov.iter().sum();
    let m = (ov.len() - 1).max(1) as f64;
    ov.iter().map(|&o| o - (sum - o) / m).collect()
}

/// Document frequencies → smoothed IDF `ln((D + 1) / (df + 1)) + 1`.
pub fn idf_table<'a>(docs: impl IntoIterator<Item = &'a [u64]>) -> HashMap<u64, f64> {
    let mut df: HashMap<u64, u32> = HashMap::new();
    let mut n_docs = 0u32;
    for d in docs {
        n_docs += 1;
        for &g in d {
            *df.entry(g).or_default() += 1;
        }
    }
    let n = f64::from(n_docs);
    df.into_iter().map(|(g, c)| (g, ((n + 1.0) / (f64::from(c) + 1.0)).ln() + 1.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct evaluation with ln-binomials, for checking the ratio recurrence.
    fn direct(na: u64, nb: u64, xa: u64, xb: u64) -> f64 {
        fn lnc(n: u64, k: u64) -> f64 {
            (1..=k).map(|i| ((n - k + i) as f64 / i as f64).ln()).sum()
        }
        let d = xa + xb;
        let lo = d.saturating_sub(nb);
        let hi = d.min(na);
        let lp = |k: u64| lnc(na, k) + lnc(nb, d - k);
        let lse = |r: std::ops::RangeInclusive<u64>| {
            let v: Vec<f64> = r.map(lp).collect();
            let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
        };
        lse(lo..=xa) - lse(xa..=hi)
    }

    #[test]
    fn tail_ratio_matches_direct_evaluation() {
        for &(na, nb, xa, xb) in
            &[(10, 10, 5, 5), (10, 10, 9, 1), (30, 5, 2, 4), (200, 150, 80, 10), (7, 3, 7, 0)]
        {
            let got = log_tail_ratio(na, nb, xa, xb);
            let want = direct(na, nb, xa, xb);
            assert!((got - want).abs() < 1e-9, "{na} {nb} {xa} {xb}: {got} vs {want}");
        }
        // Symmetric: swapping the roles flips the sign.
        assert!((log_tail_ratio(30, 5, 2, 4) + log_tail_ratio(5, 30, 4, 2)).abs() < 1e-12);
        // Balanced hits: no evidence.
        assert!(log_tail_ratio(10, 10, 5, 5).abs() < 1e-12);
        // Degenerate: no specific n-grams on one side, or no hits.
        assert_eq!(log_tail_ratio(0, 10, 0, 3), 0.0);
        assert_eq!(log_tail_ratio(10, 10, 0, 0), 0.0);
        assert_eq!(log_tail_ratio(3, 2, 3, 2), 0.0);
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        let e = log_tail_ratio(5000, 5000, 5000, 0);
        assert!(e.is_finite() && e > 3000.0, "{e}");
        let e = log_tail_ratio(5000, 5000, 2600, 2400);
        assert!(e.is_finite() && e > 0.0 && e < 100.0, "{e}");
    }

    #[test]
    fn specific_sets_and_evidence() {
        let a = [1u64, 2, 3, 4, 5];
        let b = [4u64, 5, 6, 7];
        let s = Specific::new(&[&a, &b]);
        assert_eq!(s.sets, vec![vec![1, 2, 3], vec![6, 7]]);
        // Suspect uses 1, 2, 3 (served-specific), 4, 5 (shared: irrelevant), not 6, 7.
        let probe = [1u64, 2, 3, 4, 5];
        let (n, h) = (s.sizes(), s.hits(&probe));
        assert_eq!((n.clone(), h.clone()), (vec![3, 2], vec![3, 0]));
        let e = log_evidence(&n, &h);
        assert!(e[0] > 0.0 && (e[0] + e[1]).abs() < 1e-12, "{e:?}");
        // Three answers: 9 is in two of them, so specific to none.
        let c = [7u64, 9];
        let a2 = [1u64, 9];
        let s3 = Specific::new(&[&a2, &b, &c]);
        assert_eq!(s3.sets, vec![vec![1], vec![4, 5, 6], vec![]]);
    }

    #[test]
    fn baseline_is_antisymmetric_for_two_answers() {
        let a = [1u64, 2, 3];
        let b = [3u64, 4];
        let idf = idf_table([&a[..], &b[..]]);
        let d = baseline_overlap(&[&a, &b], &[1, 2, 3], &idf);
        assert!(d[0] > 0.0 && (d[0] + d[1]).abs() < 1e-12);
    }
}
