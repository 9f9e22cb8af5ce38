//! The exchangeability guard: are the served and the fresh answers two samples of one
//! distribution?
//!
//! Everything the membership test concludes rests on that. If the fresh answers come from
//! another snapshot (or other sampling settings, another system prompt, a later date with a
//! silently updated model), a suspect that resembles the served snapshot for any reason at all
//! looks like a member: measured on the dev data, fresh answers from `gpt4_0613` against served
//! `gpt4` answers make the sign-flip test flag nearly every real model.
//!
//! The guard is a paired two-sample test with the same randomisation as the main test. Each
//! answer is mapped to a small dense vector `φ` (signed feature hashing of its words, word pairs,
//! markdown line types and a length bucket; sublinear counts; unit length). For prompt `i` with
//! the served answer at label `k_i`, `δ_i = φ(served) − mean φ(fresh)`, and the statistic is the
//! linear-kernel MMD with the diagonal removed,
//! `T = ‖Σ_i δ_i‖² − Σ_i ‖δ_i‖² = Σ_{i≠j} δ_i·δ_j`,
//! large when the served answers differ from the fresh ones *in the same direction* across
//! prompts (a systematic shift), about 0 when they differ only at random. Under exchangeability
//! every relabelling of a prompt's answers is equally likely, so the Monte-Carlo p-value
//! `(1 + #{T_b ≥ T}) / (1 + B)` is exact at resolution `1 / (1 + B)`.
//!
//! What it cannot see: a shift that is invisible in these features at this number of prompts.
//! Negative controls (answers of models that cannot have seen the served log, run through the
//! main test: see `membership::run`) check the statistic itself.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::grams::{words, Word};

/// Dimension of the hashed feature vector. 256 keeps a permutation of 1,000 prompts at about
/// 256k multiply-adds while a systematic shift (length, format, vocabulary) still shows.
pub const DIM: usize = 256;

/// The guard's feature vector of one answer (see the module doc).
pub fn features(text: &str) -> Vec<f32> {
    features_of(text, &words(text))
}

/// [`features`] from the answer's words, when the caller has them already.
pub fn features_of(text: &str, ws: &[Word]) -> Vec<f32> {
    use std::collections::HashMap;
    let mut counts: HashMap<u64, u32> = HashMap::new();
    for w in ws {
        *counts.entry(w.hash).or_default() += 1;
    }
    for p in ws.windows(2) {
        *counts.entry(p[0].hash.rotate_left(17) ^ p[1].hash ^ 0x5bd1_e995).or_default() += 1;
    }
    for line in text.lines() {
        let s = line.trim_start();
        let kind: u64 = if s.is_empty() {
            1
        } else if s.starts_with('#') {
            2
        } else if s.starts_with("- ") || s.starts_with("* ") || s.starts_with("+ ") {
            3
        } else if s.split_once(". ").is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit())) {
            4
        } else if s.starts_with("```") {
            5
        } else if s.starts_with('|') {
            6
        } else {
            7
        };
        *counts.entry(0xf0f0_0000_0000_0000 | kind).or_default() += 1;
        if s.contains("**") {
            *counts.entry(0xf0f0_0000_0000_0008).or_default() += 1;
        }
    }
    // Length bucket: one feature per power of two of the word count.
    let bucket = usize::BITS - ws.len().leading_zeros();
    *counts.entry(0xf1f1_0000_0000_0000 | u64::from(bucket)).or_default() += 3;

    let mut v = vec![0f32; DIM];
    for (h, c) in counts {
        let h = mix(h);
        let idx = (h % DIM as u64) as usize;
        let sign = if (h >> 63) == 1 { -1.0 } else { 1.0 };
        v[idx] += sign * (1.0 + (c as f32).ln());
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The guard's result.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct GuardResult {
    /// Monte-Carlo p-value of "served and fresh are exchangeable", `(1 + k) / (1 + B)`.
    pub p_value: f64,
    /// The MMD statistic `T` (see the module doc) of the observed labelling.
    pub statistic: f64,
    /// `T` in standard deviations of its permutation distribution (a readable size of the shift).
    pub z: f64,
    /// Number of relabellings `B`.
    pub permutations: usize,
}

/// Runs the guard. `groups[i]` holds prompt `i`'s answer vectors, the served one first, then
/// one or more fresh ones. Prompts with fewer than two answers are ignored.
pub fn exchangeability(
    groups: &[Vec<Vec<f32>>],
    permutations: usize,
    rng: &mut impl Rng,
) -> GuardResult {
    // deltas[i][k] = φ_k − mean_{j≠k} φ_j, with its squared norm.
    let deltas: Vec<Vec<(Vec<f32>, f64)>> = groups
        .iter()
        .filter(|g| g.len() >= 2)
        .map(|g| {
            let m = (g.len() - 1) as f32;
            let mut sum = vec![0f32; DIM];
            for v in g {
                sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
            }
            g.iter()
                .map(|v| {
                    let d: Vec<f32> = v.iter().zip(&sum).map(|(x, s)| x - (s - x) / m).collect();
                    let n2 = d.iter().map(|x| f64::from(*x) * f64::from(*x)).sum();
                    (d, n2)
                })
                .collect()
        })
        .collect();
    let stat = |labels: &mut dyn FnMut(usize, usize) -> usize| -> f64 {
        let mut acc = vec![0f32; DIM];
        let mut diag = 0.0f64;
        for (i, ds) in deltas.iter().enumerate() {
            let (d, n2) = &ds[labels(i, ds.len())];
            acc.iter_mut().zip(d).for_each(|(a, x)| *a += x);
            diag += n2;
        }
        acc.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>() - diag
    };
    let observed = stat(&mut |_, _| 0);
    // Parallel chunks with their own seeded generators (deterministic for a seed).
    let chunks = super::split_chunks(permutations);
    let seeds: Vec<u64> = chunks.iter().map(|_| rng.gen()).collect();
    let null: Vec<f64> = chunks
        .par_iter()
        .zip(seeds)
        .flat_map_iter(|(&len, seed)| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..len).map(|_| stat(&mut |_, l| rng.gen_range(0..l))).collect::<Vec<_>>()
        })
        .collect();
    let tol = 1e-9 * observed.abs().max(1.0);
    let k = null.iter().filter(|&&t| t >= observed - tol).count();
    let mean = null.iter().sum::<f64>() / null.len().max(1) as f64;
    let var = null.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / null.len().max(1) as f64;
    let z = if var > 0.0 { (observed - mean) / var.sqrt() } else { 0.0 };
    GuardResult {
        p_value: (1 + k) as f64 / (1 + permutations) as f64,
        statistic: observed,
        z,
        permutations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_unit_vectors_and_see_format() {
        let a = features("Hello world, this is a test.");
        let n: f32 = a.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5);
        assert!(features("").iter().all(|x| x.is_finite()));
        let b = features("- Hello world, this is a test.");
        assert_ne!(a, b);
    }

    /// Same-distribution pairs: the guard passes; a systematic shift (one side always a
    /// bulleted list with an extra sentence): it fails.
    #[test]
    fn detects_a_systematic_shift_and_not_noise() {
        let topics = ["cats", "dogs", "rivers", "stars", "bread", "music", "trains", "salt"];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut same = Vec::new();
        let mut shifted = Vec::new();
        for i in 0..80 {
            let t = topics[i % topics.len()];
            let x = format!("About {t}: item {i} is good and {t} are nice.");
            let y = format!("About {t}: {t} are nice and item {i} is good.");
            // Which of the two goes first is random: exchangeable by construction.
            let (a, b) = if rng.gen_bool(0.5) { (&x, &y) } else { (&y, &x) };
            same.push(vec![features(a), features(b)]);
            let z = format!("- {t} are nice\n- item {i} is good\n\nIn summary, overall, {t}.");
            shifted.push(vec![features(&x), features(&z)]);
        }
        let ok = exchangeability(&same, 999, &mut rng);
        assert!(ok.p_value > 0.01, "{ok:?}");
        let bad = exchangeability(&shifted, 999, &mut rng);
        assert!(bad.p_value <= 0.002 && bad.z > 5.0, "{bad:?}");
    }
}
