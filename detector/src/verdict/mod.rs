//! Set-level decisions: every verdict pedigree gives about a suspect as a whole.
//!
//! - [`style`]: style triage, the suspect's mean upstream score ranked among the calibration's
//!   known independent models (a ranking with error rates; it never decides);
//! - [`sequential`]: group-sequential looks over a test (alpha spending), for probe campaigns
//!   that stop as soon as an exact test (the membership test) is confident;
//! - [`NullCheck`]: the measured error rates of a decision rule on the calibration models.
//!
//! A new set-level test (e.g. the served-output membership test) is a sibling module here that
//! returns a [`crate::Verdict`]-like result with its own null, so that campaigns and the server
//! reach every decision through this one module.

pub mod sequential;
pub mod style;

use crate::calibration::{ModelNull, PooledNull, SetNull};
use serde::{Deserialize, Serialize};

/// Options of the set-level test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerdictOptions {
    /// Significance level of the decision (default 0.01).
    pub alpha: f64,
    /// How many top samples to return as evidence.
    pub top: usize,
}

impl VerdictOptions {
    /// The one rule for a verdict's significance level: in (0, 0.5). A level of one half or more
    /// would report as "significant" what is no better than a coin flip, in the error check and
    /// in the campaigns' spent α alike.
    pub fn check_alpha(alpha: f64) -> crate::Result<f64> {
        if alpha > 0.0 && alpha < 0.5 {
            Ok(alpha)
        } else {
            Err(crate::DetectorError::Alpha(alpha))
        }
    }

    /// The options of one group-sequential look run at `level` ([`sequential::Sequential::look`]):
    /// the level is kept inside (0, 1), where the test is defined, even when a look has nothing
    /// left to spend (level 0) or is handed more than any look can use.
    pub fn for_look(level: f64) -> VerdictOptions {
        VerdictOptions { alpha: level.clamp(1e-300, 0.999), top: 5 }
    }
}

/// The strength of a verdict's evidence, −log10 p (0 for a NaN p-value): the one number suspects
/// are ranked by.
pub fn strength(p_value: f64) -> f64 {
    if p_value.is_nan() {
        0.0
    } else {
        -(p_value.clamp(1e-300, 1.0)).log10()
    }
}

impl Default for VerdictOptions {
    fn default() -> Self {
        Self { alpha: 0.01, top: 5 }
    }
}

/// How often a set-level null flags the known independent models themselves when each is
/// treated as an unseen suspect: every null model in turn is tested at its own response count
/// against the null built from the null models of *other families* (its scores are already held
/// out with its family, leave-one-family-out). This is the verdict's false-alarm rate on new independent models, the
/// error rate a report needs. Beside it: what a pooled-response null (responses treated as
/// exchangeable across models, ignoring the between-model spread) would flag, and the power side
/// (the upstream's own models, each left out, tested against the full null).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NullCheck {
    /// Null models tested (each needs ≥ 2 responses and ≥ 2 other null models to build its null
    /// from; the others are not counted).
    pub models: usize,
    /// Flagged by the random-effects (model-level) null the verdict uses.
    pub flagged_model_level: Vec<String>,
    /// Flagged by a pooled per-response null (Welch z-test of the means).
    pub flagged_per_response: Vec<String>,
    /// The power side: the upstream's own models (each left out of the profile) that the
    /// model-level null flags, out of `upstream_models`.
    pub upstream_models: usize,
    pub upstream_flagged_model_level: Vec<String>,
}

impl NullCheck {
    pub fn run(models: &[ModelNull], upstream: &[ModelNull], alpha: f64) -> Self {
        let full = SetNull::from_models(models);
        let mut out = NullCheck {
            models: 0,
            flagged_model_level: Vec::new(),
            flagged_per_response: Vec::new(),
            upstream_models: upstream.len(),
            // As the verdict: a set of fewer than 2 responses is never flagged.
            upstream_flagged_model_level: upstream
                .iter()
                .filter(|u| u.n >= 2 && full.p_value(u.mean, u.n) < alpha)
                .map(|u| u.model.clone())
                .collect(),
        };
        for (i, m) in models.iter().enumerate() {
            // Leave the model's whole family out of its null, as the calibration left it out of
            // the profile: a sibling in the null is what an unseen family's suspect never has.
            let others: Vec<ModelNull> = models
                .iter()
                .enumerate()
                .filter(|&(j, o)| j != i && (m.family.is_empty() || o.family != m.family))
                .map(|(_, o)| o.clone())
                .collect();
            if others.len() < 2 || m.n < 2 {
                continue;
            }
            out.models += 1;
            if SetNull::from_models(&others).p_value(m.mean, m.n) < alpha {
                out.flagged_model_level.push(m.model.clone());
            }
            if PooledNull::from_models(&others).p_value(m.mean, m.var, m.n) < alpha {
                out.flagged_per_response.push(m.model.clone());
            }
        }
        out
    }
}

impl From<NullCheck> for crate::ErrorCheck {
    fn from(c: NullCheck) -> Self {
        crate::ErrorCheck {
            independents: c.models,
            independents_flagged: c.flagged_model_level.len(),
            upstream_models: c.upstream_models,
            upstream_flagged: c.upstream_flagged_model_level.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_check_separates_model_level_from_per_response_false_alarms() {
        // Five independent models whose means spread (between-model s.d. ≈ 0.5) far more than the
        // noise of a 200-response mean (0.07): the model-level null flags none of them, the pooled
        // per-response null flags the top one, and a far outlier is flagged by both.
        let mk = |i: usize, mean: f64| ModelNull {
            model: format!("m{i}"),
            family: format!("f{i}"),
            n: 200,
            mean,
            var: 1.0,
        };
        let ms: Vec<ModelNull> =
            [-0.6, -0.3, 0.0, 0.3, 0.6].iter().enumerate().map(|(i, &m)| mk(i, m)).collect();
        let c = NullCheck::run(&ms, &[mk(9, 5.0)], 0.01);
        assert_eq!(c.models, 5);
        assert!(c.flagged_model_level.is_empty(), "{c:?}");
        assert!(c.flagged_per_response.contains(&"m4".to_string()), "{c:?}");
        assert!(!c.flagged_per_response.contains(&"m0".to_string()), "{c:?}");
        assert_eq!(c.upstream_flagged_model_level, vec!["m9".to_string()], "{c:?}");
        let mut with_outlier = ms.clone();
        with_outlier.push(mk(5, 8.0));
        let c = NullCheck::run(&with_outlier, &[], 0.01);
        assert!(c.flagged_model_level.contains(&"m5".to_string()), "{c:?}");
        assert!(c.flagged_per_response.contains(&"m5".to_string()), "{c:?}");
    }

    #[test]
    fn null_check_leaves_a_model_s_whole_family_out_of_its_null() {
        // Two siblings far above three other families: with its sibling in the null a sibling
        // looks ordinary (the null's spread covers it); against the other families only, it is
        // the outlier an unseen family would be.
        let mk = |m: &str, f: &str, mean: f64| ModelNull {
            model: m.into(),
            family: f.into(),
            n: 100,
            mean,
            var: 1.0,
        };
        let ms = [
            mk("a1", "A", 3.0),
            mk("a2", "A", 3.1),
            mk("b", "B", 0.0),
            mk("c", "C", 0.2),
            mk("d", "D", -0.2),
        ];
        let c = NullCheck::run(&ms, &[], 0.01);
        assert_eq!(c.models, 5, "{c:?}");
        assert!(c.flagged_model_level.contains(&"a1".to_string()), "{c:?}");
        assert!(c.flagged_model_level.contains(&"a2".to_string()), "{c:?}");
        // The same models as one family each: a1's null holds a2 and it is not flagged.
        let lomo: Vec<ModelNull> = ms
            .iter()
            .enumerate()
            .map(|(i, m)| ModelNull { family: format!("u{i}"), ..m.clone() })
            .collect();
        let c = NullCheck::run(&lomo, &[], 0.01);
        assert!(!c.flagged_model_level.contains(&"a1".to_string()), "{c:?}");
    }

    #[test]
    fn null_check_counts_only_the_models_it_could_test() {
        let mk = |i: usize, mean: f64, n: usize| ModelNull {
            model: format!("m{i}"),
            family: format!("f{i}"),
            n,
            mean,
            var: 1.0,
        };
        // Two null models: each left out leaves one, too few to build a null from.
        let c = NullCheck::run(&[mk(0, 0.0, 50), mk(1, 0.1, 50)], &[], 0.01);
        assert_eq!(c.models, 0, "{c:?}");
        // A model with one response is not tested (the verdict decides nothing on one response),
        // and an upstream model with one response is not counted as detected.
        let ms = [mk(0, 0.0, 50), mk(1, 0.1, 50), mk(2, -0.1, 50), mk(3, 0.05, 1)];
        let c = NullCheck::run(&ms, &[mk(9, 50.0, 1), mk(10, 50.0, 50)], 0.01);
        assert_eq!(c.models, 3, "{c:?}");
        assert_eq!(c.upstream_flagged_model_level, vec!["m10".to_string()], "{c:?}");
    }
}
