//! The served-output membership test: did the suspect train on the answers we served?
//!
//! # The test
//! The provider holds, for each logged prompt, the answer it **served** to the suspect account
//! and one or more **fresh** answers of the same snapshot to the same prompt, and it collects
//! the **suspect**'s answer to that prompt. If the suspect was trained on the served answers, it
//! reuses the served answer's own phrasing more than the fresh answer's. If it never saw them,
//! the served and the fresh answer are exchangeable, so "which one was served" is a fair coin
//! from the suspect's point of view, whatever the suspect's style or family.
//!
//! Per prompt ([`stat`]): the n-grams of the desensitized view ([`grams`]) that are specific to
//! one answer (in it and in no other answer of that prompt) are what distinguishes it; the
//! suspect's hits on the served-specific and on the fresh-specific n-grams give a signed log
//! tail ratio `e` (positive: the served answer's phrasing is over-represented). The test
//! statistic is `T = Σ_i e_i` over the matched prompts, and its null distribution is generated
//! by relabelling which answer of each prompt was served (a sign flip with one fresh answer):
//! the p-value is exact, `#{T_b ≥ T} / 2^n` by enumeration when at most
//! [`EXACT_MAX_INFORMATIVE`] prompts carry evidence, else Monte-Carlo
//! `(1 + #{T_b ≥ T}) / (1 + B)` with resolution `1 / (1 + B)`.
//!
//! # What the null assumes
//! 1. The fresh answers come from the **same snapshot with the same sampling settings** (model,
//!    system prompt, temperature, max tokens) as the served ones, and were generated
//!    independently of the suspect. Then each prompt's answers are exchangeable and the test is
//!    exact whatever the suspect is.
//! 2. The suspect's answers do not depend on which answer was served except through training
//!    on it (e.g. the suspect was not shown the served answer in its prompt).
//!
//! What breaks it: fresh answers from another snapshot or other settings, served answers that
//! were post-processed (truncated, filtered) differently from the fresh ones, or fresh answers
//! that were selected after looking at the suspect. The product checks assumption 1 itself
//! before deciding ([`guard`]: a paired two-sample test of served against fresh, plus optional
//! negative controls run through the same test) and answers [`MembershipDecision::Invalid`]
//! with the reason when the check fails. A non-significant result is `not_detected`, never
//! "independent": a suspect may have trained on other outputs, or on too few of these.

pub mod grams;
pub mod guard;
pub mod stat;

use std::collections::{HashMap, HashSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::DetectorError;
use crate::Result;
use grams::{grams_ending_at, words, Word};
use stat::{log_evidence, Specific};

/// Up to this many informative prompts (all with one fresh answer), the p-value is computed by
/// enumerating all `2^n` sign patterns instead of sampling.
pub const EXACT_MAX_INFORMATIVE: usize = 16;

/// One answer to one prompt, as read from a file (served log, fresh answers, suspect answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub prompt: String,
    pub text: String,
}

impl Answer {
    pub fn new(prompt: impl Into<String>, text: impl Into<String>) -> Answer {
        Answer { prompt: prompt.into(), text: text.into() }
    }
}

/// Answers of a reference model that cannot have seen the served log, used as a negative
/// control: run through the same test, its p-value is uniform if the null holds.
#[derive(Debug, Clone)]
pub struct Control {
    pub name: String,
    pub answers: Vec<Answer>,
}

/// Options of [`run`], with their documented ranges (checked by [`MembershipOptions::check`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MembershipOptions {
    /// Significance level of the decision, in (0, 0.5). Default 0.01.
    pub alpha: f64,
    /// Monte-Carlo relabellings `B` of the main test, 99..=1,000,000. Default 9,999.
    pub permutations: usize,
    /// Relabellings of the guard, 99..=100,000. Default 999.
    pub guard_permutations: usize,
    /// The guard rejects exchangeability below this p-value, in (0, 0.5). Default 0.05: a
    /// refused decision costs a re-run with better fresh answers, a false accusation much more.
    pub guard_alpha: f64,
    /// Fewest matched prompts the test accepts, 5..=1,000,000. Default 20.
    pub min_prompts: usize,
    /// Prompts listed as evidence, 0..=100. Default 5.
    pub top_evidence: usize,
    /// Seed of the relabellings (the result is a deterministic function of input and seed).
    pub seed: u64,
}

impl Default for MembershipOptions {
    fn default() -> Self {
        MembershipOptions {
            alpha: 0.01,
            permutations: 9_999,
            guard_permutations: 999,
            guard_alpha: 0.05,
            min_prompts: 20,
            top_evidence: 5,
            seed: 0x5eed_2023,
        }
    }
}

impl MembershipOptions {
    /// Checks every field against its documented range.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(DetectorError::Invalid(m));
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(DetectorError::Alpha(self.alpha));
        }
        if !(self.guard_alpha > 0.0 && self.guard_alpha < 0.5) {
            return bad(format!("guard_alpha must be in (0, 0.5), got {}", self.guard_alpha));
        }
        if !(99..=1_000_000).contains(&self.permutations) {
            return bad(format!("permutations must be in 99..=1000000, got {}", self.permutations));
        }
        if !(99..=100_000).contains(&self.guard_permutations) {
            return bad(format!(
                "guard_permutations must be in 99..=100000, got {}",
                self.guard_permutations
            ));
        }
        if !(5..=1_000_000).contains(&self.min_prompts) {
            return bad(format!("min_prompts must be in 5..=1000000, got {}", self.min_prompts));
        }
        if self.top_evidence > 100 {
            return bad(format!("top_evidence must be in 0..=100, got {}", self.top_evidence));
        }
        Ok(())
    }
}

/// The decision of the membership test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipDecision {
    /// The suspect reuses the served answers' own phrasing more than chance allows (p ≤ α),
    /// and the exchangeability checks passed.
    TrainedOnServed,
    /// No significant excess at α. Not a finding of independence.
    NotDetected,
    /// The served and fresh answers failed the exchangeability checks: the test's null does not
    /// hold, so it does not decide (see `reason`).
    Invalid,
}

impl MembershipDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipDecision::TrainedOnServed => "trained_on_served",
            MembershipDecision::NotDetected => "not_detected",
            MembershipDecision::Invalid => "invalid",
        }
    }
}

/// A segment the suspect's answer shares with the served answer (and not with any fresh one).
/// Spans are `[start, end)` offsets in Unicode scalar values (chars) of the original texts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SharedSegment {
    pub suspect: [usize; 2],
    pub served: [usize; 2],
    /// The suspect's text of the segment.
    pub text: String,
}

/// One prompt's contribution, for the evidence list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PromptEvidence {
    pub prompt: String,
    /// The prompt's statistic `e` (signed log tail ratio) for the observed labelling.
    pub evidence: f64,
    /// Served-specific n-grams the suspect reused, and how many there are.
    pub served_specific: [u32; 2],
    /// Fresh-specific n-grams (all fresh answers) the suspect reused, and how many there are.
    pub fresh_specific: [u32; 2],
    /// Longest shared segments (at most 8, of at least 3 words).
    pub segments: Vec<SharedSegment>,
}

/// A negative control's result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ControlResult {
    pub name: String,
    pub prompts: usize,
    pub p_value: f64,
}

/// What was matched.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MatchCounts {
    /// Distinct prompts in the served input.
    pub served_prompts: usize,
    /// Served prompts without a fresh answer / without a suspect answer (not compared).
    pub without_fresh: usize,
    pub without_suspect: usize,
    /// Further answers to an already-seen prompt that were ignored (served and suspect keep the
    /// first; fresh keeps all but exact repeats of a fresh answer to the same prompt).
    pub duplicates_ignored: usize,
    /// Mean number of fresh answers per compared prompt.
    pub fresh_per_prompt: f64,
}

/// The test's full report. The CLI prints it as JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MembershipReport {
    pub decision: MembershipDecision,
    /// p-value of the main test (computed even when the decision is `invalid`, for the record).
    pub p_value: f64,
    /// `exact` (enumerated) or `monte_carlo`, and the smallest p-value it can report.
    pub p_method: String,
    pub p_resolution: f64,
    pub alpha: f64,
    /// Prompts compared.
    pub prompts: usize,
    /// Prompts whose answers carry evidence (`e ≠ 0`).
    pub informative_prompts: usize,
    /// Mean over compared prompts of (share of served-specific n-grams the suspect reused) −
    /// (share of fresh-specific n-grams it reused), in [−1, 1]; about 0 under the null.
    pub effect: f64,
    pub served_reuse: f64,
    pub fresh_reuse: f64,
    /// The test statistic `T = Σ e_i`.
    pub statistic: f64,
    pub guard: guard::GuardResult,
    pub guard_alpha: f64,
    pub controls: Vec<ControlResult>,
    /// Why the decision is `invalid` (or why the checks passed).
    pub reason: String,
    pub matched: MatchCounts,
    pub evidence: Vec<PromptEvidence>,
    /// The null's assumptions, as they apply to this run.
    pub null_assumes: String,
}

/// Normalised prompt text used to match answers across files and formats.
pub fn prompt_key(prompt: &str) -> String {
    datasets::normalize_prompt(prompt)
}

/// One compared prompt, prepared once: the specific n-gram sets of its served and fresh
/// answers and their words (for evidence spans).
struct Prepared<'a> {
    prompt: &'a str,
    specific: Specific,
    served_words: Vec<Word>,
    guard_features: Vec<Vec<f32>>,
}

/// Runs the test (see the module doc). Errors: options out of range; fewer than
/// `min_prompts` prompts present in all three inputs.
pub fn run(
    served: &[Answer],
    fresh: &[Answer],
    suspect: &[Answer],
    controls: &[Control],
    opts: &MembershipOptions,
) -> Result<MembershipReport> {
    opts.check()?;
    let mut matched = MatchCounts::default();
    // First served answer per prompt, in input order.
    let mut served_by: Vec<(String, &Answer)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for a in served {
        let k = prompt_key(&a.prompt);
        if !seen.insert(k.clone()) {
            matched.duplicates_ignored += 1;
        } else {
            served_by.push((k, a));
        }
    }
    matched.served_prompts = served_by.len();
    // A fresh answer identical to an earlier one of its prompt is dropped: a deterministic
    // upstream (temperature 0) repeats itself, and a repeat is the same sample seen twice. Kept,
    // the copies would share every n-gram, so no fresh n-gram would be specific to either copy
    // and each relabelling that called a copy "served" would see nothing, which hides a student.
    let mut fresh_by: HashMap<String, Vec<&str>> = HashMap::new();
    for a in fresh {
        let texts = fresh_by.entry(prompt_key(&a.prompt)).or_default();
        if texts.contains(&a.text.as_str()) {
            matched.duplicates_ignored += 1;
        } else {
            texts.push(&a.text);
        }
    }
    let mut dups = 0;
    let suspect_by = index_first(suspect, &mut dups);
    matched.duplicates_ignored += dups;

    // The controls' answers by prompt, so each served prompt is prepared once for everyone.
    let control_by: Vec<HashMap<String, &str>> =
        controls.iter().map(|c| index_first(&c.answers, &mut 0)).collect();
    // Served prompts with a fresh answer that the suspect or a control answered.
    let mut rows = Vec::new();
    for (k, s) in &served_by {
        let Some(fs) = fresh_by.get(k) else {
            matched.without_fresh += 1;
            continue;
        };
        let x = suspect_by.get(k).copied();
        if x.is_none() {
            matched.without_suspect += 1;
        }
        if x.is_some() || control_by.iter().any(|c| c.contains_key(k)) {
            rows.push((k, s, fs, x));
        }
    }
    // Per-prompt preparation (n-gram sets, guard features) is independent: in parallel.
    let base: Vec<Prepared<'_>> =
        rows.par_iter().map(|(_, s, fs, _)| prepare(&s.prompt, &s.text, fs)).collect();
    let (mut prepared, mut suspect_texts) = (Vec::new(), Vec::new());
    let mut fresh_total = 0usize;
    for ((_, _, fs, x), p) in rows.iter().zip(&base) {
        if let Some(x) = x {
            prepared.push(p);
            suspect_texts.push(*x);
            fresh_total += fs.len();
        }
    }
    let n = prepared.len();
    if n < opts.min_prompts {
        return Err(DetectorError::NotEnoughData(format!(
            "{n} prompts have a served, a fresh and a suspect answer (of {} served prompts: {} \
             without a fresh answer, {} without a suspect answer); the membership test needs at \
             least {}. Prompts are matched on their normalised text (case and white space \
             ignored).",
            matched.served_prompts,
            matched.without_fresh,
            matched.without_suspect,
            opts.min_prompts
        )));
    }
    matched.fresh_per_prompt = fresh_total as f64 / n as f64;

    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let main = test_one(&prepared, &suspect_texts, opts.permutations, &mut rng);

    // Guard 1: the paired two-sample test of served against fresh.
    let groups: Vec<Vec<Vec<f32>>> = prepared.iter().map(|p| p.guard_features.clone()).collect();
    let g = guard::exchangeability(&groups, opts.guard_permutations, &mut rng);

    // Guard 2: negative controls, each on the prompts it answered.
    let mut control_results = Vec::new();
    for (c, by) in controls.iter().zip(&control_by) {
        let (mut preps, mut texts) = (Vec::new(), Vec::new());
        for ((k, ..), p) in rows.iter().zip(&base) {
            if let Some(x) = by.get(*k) {
                preps.push(p);
                texts.push(*x);
            }
        }
        if preps.len() < opts.min_prompts {
            return Err(DetectorError::NotEnoughData(format!(
                "control {:?} answers {} of the compared prompts; a control needs at least {}",
                c.name,
                preps.len(),
                opts.min_prompts
            )));
        }
        let r = test_one(&preps, &texts, opts.permutations, &mut rng);
        control_results.push(ControlResult {
            name: c.name.clone(),
            prompts: preps.len(),
            p_value: r.p_value,
        });
    }
    // Bonferroni over the controls: valid whatever their dependence (they share the served
    // and fresh answers, so they are not independent).
    let min_control = control_results.iter().map(|c| c.p_value).fold(1.0f64, f64::min);
    let control_p = (min_control * control_results.len() as f64).min(1.0);

    let (decision, reason) = if g.p_value < opts.guard_alpha {
        (
            MembershipDecision::Invalid,
            format!(
                "the served and fresh answers are not exchangeable (guard p = {:.4} < {}, shift \
                 z = {:.1}): the fresh answers look like another snapshot or other sampling \
                 settings, so the test's null does not hold and it does not decide",
                g.p_value, opts.guard_alpha, g.z
            ),
        )
    } else if !control_results.is_empty() && control_p < opts.guard_alpha {
        let worst = control_results
            .iter()
            .min_by(|a, b| a.p_value.total_cmp(&b.p_value))
            .map(|c| c.name.as_str())
            .unwrap_or_default();
        (
            MembershipDecision::Invalid,
            format!(
                "a negative control that cannot have seen the served answers is flagged \
                 ({worst}: p = {min_control:.4}; Bonferroni over {} controls {control_p:.4} < \
                 {}): the test's null does not hold for these served and fresh answers",
                control_results.len(),
                opts.guard_alpha
            ),
        )
    } else if main.p_value <= opts.alpha {
        (
            MembershipDecision::TrainedOnServed,
            format!(
                "exchangeability checks passed (guard p = {:.3}{}); the suspect reuses the \
                 served answers' own phrasing more than chance allows (p = {:.2e} ≤ α = {})",
                g.p_value,
                controls_note(&control_results, control_p),
                main.p_value,
                opts.alpha
            ),
        )
    } else {
        (
            MembershipDecision::NotDetected,
            format!(
                "exchangeability checks passed (guard p = {:.3}{}); no significant excess reuse \
                 of the served answers (p = {:.3} > α = {}). This is not evidence of \
                 independence",
                g.p_value,
                controls_note(&control_results, control_p),
                main.p_value,
                opts.alpha
            ),
        )
    };

    let mut order: Vec<usize> = (0..n).filter(|&i| main.e[i] > 0.0).collect();
    order.sort_by(|&a, &b| main.e[b].total_cmp(&main.e[a]));
    let evidence = order
        .into_iter()
        .take(opts.top_evidence)
        .map(|i| {
            let p = prepared[i];
            let (nk, hk) = (&main.sizes[i], &main.hits[i]);
            PromptEvidence {
                prompt: truncate_chars(p.prompt, 300),
                evidence: main.e[i],
                served_specific: [hk[0], nk[0]],
                fresh_specific: [hk[1..].iter().sum(), nk[1..].iter().sum()],
                segments: shared_segments(p, suspect_texts[i]),
            }
        })
        .collect();

    Ok(MembershipReport {
        decision,
        p_value: main.p_value,
        p_method: main.method.to_string(),
        p_resolution: main.resolution,
        alpha: opts.alpha,
        prompts: n,
        informative_prompts: main.informative,
        effect: main.effect,
        served_reuse: main.served_reuse,
        fresh_reuse: main.fresh_reuse,
        statistic: main.statistic,
        guard: g,
        guard_alpha: opts.guard_alpha,
        controls: control_results,
        reason,
        matched,
        evidence,
        null_assumes: "the fresh answers come from the same model snapshot with the same sampling \
                       settings as the served ones, generated independently of the suspect; \
                       then which answer was served is a fair draw from the suspect's point of \
                       view and the p-value is exact"
            .to_string(),
    })
}

/// First answer per normalised prompt; counts the further ones in `dups`.
fn index_first<'a>(answers: &'a [Answer], dups: &mut usize) -> HashMap<String, &'a str> {
    let mut m: HashMap<String, &'a str> = HashMap::new();
    for a in answers {
        let k = prompt_key(&a.prompt);
        match m.entry(k) {
            std::collections::hash_map::Entry::Occupied(_) => *dups += 1,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(a.text.as_str());
            }
        }
    }
    m
}

fn controls_note(controls: &[ControlResult], control_p: f64) -> String {
    if controls.is_empty() {
        String::new()
    } else {
        format!(", {} negative controls: Bonferroni p = {control_p:.3}", controls.len())
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn prepare<'a>(prompt: &'a str, served: &'a str, fresh: &[&'a str]) -> Prepared<'a> {
    // Each answer's words once, for both its n-gram set and its guard features.
    let fresh_words: Vec<Vec<Word>> = fresh.iter().map(|f| words(f)).collect();
    let served_words = words(served);
    let mut sets = vec![grams::gram_set(&served_words)];
    sets.extend(fresh_words.iter().map(|w| grams::gram_set(w)));
    let refs: Vec<&[u64]> = sets.iter().map(Vec::as_slice).collect();
    let specific = Specific::new(&refs);
    let mut guard_features = vec![guard::features_of(served, &served_words)];
    guard_features.extend(fresh.iter().zip(&fresh_words).map(|(f, w)| guard::features_of(f, w)));
    Prepared { prompt, specific, served_words, guard_features }
}

/// The main statistic and its randomisation p-value on prepared prompts.
pub(crate) struct TestOutcome {
    pub e: Vec<f64>,
    pub sizes: Vec<Vec<u32>>,
    pub hits: Vec<Vec<u32>>,
    pub statistic: f64,
    pub p_value: f64,
    pub method: &'static str,
    pub resolution: f64,
    pub informative: usize,
    pub effect: f64,
    pub served_reuse: f64,
    pub fresh_reuse: f64,
}

fn test_one(
    prepared: &[&Prepared<'_>],
    suspect: &[&str],
    permutations: usize,
    rng: &mut impl Rng,
) -> TestOutcome {
    let mut all_e: Vec<Vec<f64>> = Vec::with_capacity(prepared.len());
    let (mut sizes, mut hits) = (Vec::new(), Vec::new());
    let (mut eff, mut sr, mut fr, mut cnt) = (0.0, 0.0, 0.0, 0usize);
    let suspect_grams: Vec<Vec<u64>> = suspect.par_iter().map(|x| grams::grams(x)).collect();
    for (p, xs) in prepared.iter().zip(&suspect_grams) {
        let (nk, hk) = (p.specific.sizes(), p.specific.hits(xs));
        all_e.push(log_evidence(&nk, &hk));
        if nk.iter().all(|&v| v > 0) {
            let r0 = f64::from(hk[0]) / f64::from(nk[0]);
            let rf = (1..nk.len()).map(|k| f64::from(hk[k]) / f64::from(nk[k])).sum::<f64>()
                / (nk.len() - 1) as f64;
            eff += r0 - rf;
            sr += r0;
            fr += rf;
            cnt += 1;
        }
        sizes.push(nk);
        hits.push(hk);
    }
    let e: Vec<f64> = all_e.iter().map(|v| v[0]).collect();
    let (statistic, p_value, method, resolution, informative) =
        randomization(&all_e, permutations, rng);
    let c = cnt.max(1) as f64;
    TestOutcome {
        e,
        sizes,
        hits,
        statistic,
        p_value,
        method,
        resolution,
        informative,
        effect: eff / c,
        served_reuse: sr / c,
        fresh_reuse: fr / c,
    }
}

/// The randomisation p-value of `T = Σ_i e_i[0]`, where `e_i[k]` is prompt `i`'s statistic if
/// answer `k` had been the served one and every `k` is equally likely under the null.
///
/// Returns `(T, p, method, resolution, informative prompts)`. Ties count against the suspect
/// (`≥`, with a relative tolerance of 1e-9 for floating-point sums), so the test is
/// conservative when many relabellings tie.
pub fn randomization(
    e: &[Vec<f64>],
    permutations: usize,
    rng: &mut impl Rng,
) -> (f64, f64, &'static str, f64, usize) {
    // Prompts where every labelling gives 0 add nothing and are dropped.
    let inf: Vec<&Vec<f64>> = e.iter().filter(|v| v.iter().any(|x| *x != 0.0)).collect();
    let observed: f64 = inf.iter().map(|v| v[0]).sum();
    let tol = 1e-9 * observed.abs().max(1.0);
    let two = inf.iter().all(|v| v.len() == 2);
    if two && inf.len() <= EXACT_MAX_INFORMATIVE {
        let n = inf.len();
        let total = 1u64 << n;
        let mut k = 0u64;
        for mask in 0..total {
            let t: f64 = inf
                .iter()
                .enumerate()
                .map(|(i, v)| if mask >> i & 1 == 1 { v[1] } else { v[0] })
                .sum();
            if t >= observed - tol {
                k += 1;
            }
        }
        return (observed, k as f64 / total as f64, "exact", 1.0 / total as f64, n);
    }
    // Relabellings in parallel chunks, each with its own generator seeded from `rng`, so the
    // result is a deterministic function of the seed whatever the number of threads.
    let chunks = split_chunks(permutations);
    let seeds: Vec<u64> = chunks.iter().map(|_| rng.gen()).collect();
    let k: usize = chunks
        .par_iter()
        .zip(seeds)
        .map(|(&len, seed)| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut k = 0usize;
            for _ in 0..len {
                let t: f64 = if two {
                    // One random bit per prompt, 64 at a time.
                    let mut t = 0.0;
                    for chunk in inf.chunks(64) {
                        let bits: u64 = rng.gen();
                        for (i, v) in chunk.iter().enumerate() {
                            t += v[(bits >> i & 1) as usize];
                        }
                    }
                    t
                } else {
                    inf.iter().map(|v| v[rng.gen_range(0..v.len())]).sum()
                };
                if t >= observed - tol {
                    k += 1;
                }
            }
            k
        })
        .sum();
    let b = permutations as f64;
    (observed, (1 + k) as f64 / (1.0 + b), "monte_carlo", 1.0 / (1.0 + b), inf.len())
}

/// Splits `total` relabellings into fixed chunks of 256 (the last one shorter): the split
/// depends only on `total`, never on the thread count.
pub(crate) fn split_chunks(total: usize) -> Vec<usize> {
    let mut v = vec![256; total / 256];
    if !total.is_multiple_of(256) {
        v.push(total % 256);
    }
    v
}

/// The suspect's segments shared with the served answer: maximal runs of suspect words covered
/// by a served-specific bigram or trigram, each paired with the served run it starts in.
fn shared_segments(p: &Prepared<'_>, suspect: &str) -> Vec<SharedSegment> {
    let sw = words(suspect);
    let covered_by = |ws: &[Word], keep: &dyn Fn(u64) -> bool| -> Vec<bool> {
        let mut cov = vec![false; ws.len()];
        for i in 0..ws.len() {
            for (len, h) in grams_ending_at(ws, i) {
                if len >= 2 && keep(h) {
                    cov[i + 1 - len..=i].iter_mut().for_each(|c| *c = true);
                }
            }
        }
        cov
    };
    let specific = |h: u64| p.specific.is_specific_to(0, h);
    let s_cov = covered_by(&sw, &specific);
    let suspect_set = grams::gram_set(&sw);
    let served_cov =
        covered_by(&p.served_words, &|h| specific(h) && grams::contains(&suspect_set, h));
    let runs = |cov: &[bool]| {
        let mut out = Vec::new();
        let mut i = 0;
        while i < cov.len() {
            if cov[i] {
                let s = i;
                while i < cov.len() && cov[i] {
                    i += 1;
                }
                out.push((s, i));
            } else {
                i += 1;
            }
        }
        out
    };
    let served_runs = runs(&served_cov);
    // Where each served bigram starts (word index), for pairing.
    let mut bigram_at: HashMap<u64, usize> = HashMap::new();
    for (i, &covered) in served_cov.iter().enumerate().skip(1) {
        for (len, h) in grams_ending_at(&p.served_words, i) {
            if len == 2 && covered {
                bigram_at.entry(h).or_insert(i - 1);
            }
        }
    }
    let chars: Vec<char> = suspect.chars().collect();
    let mut segs: Vec<(usize, SharedSegment)> = runs(&s_cov)
        .into_iter()
        .filter(|(s, e)| e - s >= 3)
        .filter_map(|(s, e)| {
            let h = grams_ending_at(&sw, s + 1).find(|(len, _)| *len == 2)?.1;
            let j = *bigram_at.get(&h)?;
            let &(rs, re) = served_runs.iter().find(|(a, b)| *a <= j && j < *b)?;
            let (cs, ce) = (sw[s].start, sw[e - 1].end);
            Some((
                e - s,
                SharedSegment {
                    suspect: [cs, ce],
                    served: [p.served_words[rs].start, p.served_words[re - 1].end],
                    text: chars[cs..ce].iter().collect(),
                },
            ))
        })
        .collect();
    segs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.suspect[0].cmp(&b.1.suspect[0])));
    segs.into_iter().take(8).map(|(_, s)| s).collect()
}

#[cfg(test)]
mod tests;
