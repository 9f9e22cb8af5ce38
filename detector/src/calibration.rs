//! Calibration: what scores independent models get, so that a score becomes a false-positive rate
//! and a suspect's mean score becomes a p-value.
//!
//! The null population is made of *known* non-upstream models' responses, each scored by a
//! profile fitted **without that model's whole family** (leave-one-family-out; see
//! `Profile::fit`). A model a profile was trained on — or whose siblings it was trained on —
//! looks less upstream-like than an unseen family would, so in-sample or leave-one-model-out
//! scores would understate the false-positive rate for the unseen suspects the product actually
//! meets. The upstream's own models are left out one at a time (unseen upstream versions).

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Score summary of one model under held-out (LOFO or, for upstream models, LOMO) scoring.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelNull {
    pub model: String,
    pub family: String,
    pub n: usize,
    pub mean: f64,
    pub var: f64,
}

impl ModelNull {
    pub fn from_scores(model: &str, family: &str, s: &[f64]) -> Self {
        let n = s.len();
        let mean = s.iter().sum::<f64>() / n.max(1) as f64;
        let var = if n < 2 {
            0.0
        } else {
            s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        };
        Self { model: model.into(), family: family.into(), n, mean, var }
    }
}

/// The calibration block stored in a profile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    /// Sorted per-response scores of the null population (known independent models, LOFO-scored).
    pub null_scores: Vec<f32>,
    /// Per-model summaries of the null population (for the set-level random-effects null).
    pub null_models: Vec<ModelNull>,
    /// Per-model summaries of the upstream's own models, LOMO-scored: what an unseen version of
    /// the upstream looks like (the alternative used for "independent" decisions).
    pub upstream_models: Vec<ModelNull>,
    /// Sorted per-response scores of the upstream's own models, LOMO-scored (the "upstream"
    /// component of a corpus, for audits' mixture-proportion estimates).
    pub upstream_scores: Vec<f32>,
    /// Per calibration model, the LOMO family posterior of each of its responses (one value per
    /// profile family, in the profile's family order): what any family's score looks like on
    /// models the profile never saw, for per-family audits and attribution error rates.
    pub family_posteriors: Vec<ModelPosteriors>,
    /// The same null on the prompt-aligned scale, when calibration texts came with prompts that
    /// several known models answered.
    pub aligned: Option<AlignedCalibration>,
}

/// Calibration of prompt-aligned scores (see [`crate::aligned`]): reference means per prompt and
/// the LOMO null after subtracting them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlignedCalibration {
    pub refs: crate::aligned::PromptRefs,
    /// Sorted aligned scores of the null population.
    pub null_scores: Vec<f32>,
    pub null_models: Vec<ModelNull>,
    pub upstream_models: Vec<ModelNull>,
}

impl AlignedCalibration {
    pub fn new(
        refs: crate::aligned::PromptRefs,
        mut null_scores: Vec<f32>,
        null_models: Vec<ModelNull>,
        upstream_models: Vec<ModelNull>,
    ) -> Self {
        null_scores.sort_by(|a, b| a.total_cmp(b));
        Self { refs, null_scores, null_models, upstream_models }
    }

    pub fn fpr(&self, aligned: f64) -> f64 {
        fpr_of(&self.null_scores, aligned)
    }

    pub fn set_null(&self) -> SetNull {
        SetNull::from_models(&self.null_models)
    }
}

/// Add-one smoothed fraction of the sorted `null` scoring at least `score`.
fn fpr_of(null: &[f32], score: f64) -> f64 {
    let n = null.len();
    let below = null.partition_point(|&s| (s as f64) < score);
    ((n - below) as f64 + 1.0) / (n as f64 + 1.0)
}

/// Leave-one-model-out family posteriors of one calibration model's responses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelPosteriors {
    pub model: String,
    pub family: String,
    /// `posteriors[i][f]`: P(family f | response i) under the profile fitted without this model.
    pub posteriors: Vec<Vec<f32>>,
}

impl Calibration {
    pub fn new(
        mut null_scores: Vec<f32>,
        null_models: Vec<ModelNull>,
        upstream_models: Vec<ModelNull>,
        mut upstream_scores: Vec<f32>,
    ) -> Self {
        null_scores.sort_by(|a, b| a.total_cmp(b));
        upstream_scores.sort_by(|a, b| a.total_cmp(b));
        Self {
            null_scores,
            null_models,
            upstream_models,
            upstream_scores,
            family_posteriors: Vec::new(),
            aligned: None,
        }
    }

    /// Calibrated false-positive rate of a per-text score: the (add-one smoothed) fraction of null
    /// responses scoring at least as high. Monotone non-increasing in `score`; never 0.
    pub fn fpr(&self, score: f64) -> f64 {
        fpr_of(&self.null_scores, score)
    }

    /// The null and upstream model summaries a verdict tests against: on the prompt-aligned scale
    /// when `aligned` and the profile has an aligned calibration, else on the raw scale.
    pub fn models(&self, aligned: bool) -> (&[ModelNull], &[ModelNull]) {
        match (&self.aligned, aligned) {
            (Some(a), true) => (&a.null_models, &a.upstream_models),
            _ => (&self.null_models, &self.upstream_models),
        }
    }

    /// Score threshold whose calibrated FPR is at most `fpr`.
    pub fn threshold_at(&self, fpr: f64) -> f64 {
        let n = self.null_scores.len();
        if n == 0 {
            return f64::INFINITY;
        }
        let k = ((fpr * (n as f64 + 1.0)).floor() as usize).saturating_sub(1).min(n - 1);
        self.null_scores[n - 1 - k] as f64 + 1e-9
    }

    /// The random-effects null for the mean of `n` responses of an unseen independent model.
    pub fn set_null(&self) -> SetNull {
        SetNull::from_models(&self.null_models)
    }
}

/// Model-level null: suspects differ from each other more than their responses' noise suggests,
/// so a mean of N responses is compared with the spread of *models*, not of pooled responses
/// (a pooled bootstrap would flag any independent model that is merely a bit more upstream-like
/// than average). One-way random-effects model: model mean ~ N(mu, tau²), response ~ N(model
/// mean, sigma²); predictive for a new model's N-response mean is Student-t with J−1 d.o.f.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SetNull {
    pub models: usize,
    pub mu: f64,
    /// Between-model variance.
    pub tau2: f64,
    /// Mean within-model (per-response) variance.
    pub sigma2: f64,
    /// Variance of the model means (for the uncertainty of `mu` itself).
    pub mean_var: f64,
}

impl SetNull {
    pub fn from_models(models: &[ModelNull]) -> Self {
        let j = models.len();
        let mu = models.iter().map(|m| m.mean).sum::<f64>() / j.max(1) as f64;
        let mean_var = if j < 2 {
            0.0
        } else {
            models.iter().map(|m| (m.mean - mu).powi(2)).sum::<f64>() / (j - 1) as f64
        };
        let sigma2 = models.iter().map(|m| m.var).sum::<f64>() / j.max(1) as f64;
        let noise = models.iter().map(|m| m.var / m.n.max(1) as f64).sum::<f64>() / j.max(1) as f64;
        let tau2 = (mean_var - noise).max(0.0);
        Self { models: j, mu, tau2, sigma2, mean_var }
    }

    /// Predictive s.d. of an unseen independent model's mean over `n` responses.
    pub fn predictive_sd(&self, n: usize) -> f64 {
        let n = n.max(1) as f64;
        (self.tau2 + self.sigma2 / n + self.mean_var / self.models.max(1) as f64).sqrt()
    }

    /// One-sided p-value of observing a mean `stat` over `n` responses under the null; 1 (no
    /// evidence) for a NaN statistic or null (e.g. NaN scores of a neural profile scored without
    /// its vectors), which statrs would otherwise panic on.
    pub fn p_value(&self, stat: f64, n: usize) -> f64 {
        if self.models < 2 {
            return 1.0;
        }
        let t = (stat - self.mu) / self.predictive_sd(n).max(1e-12);
        if t.is_nan() {
            return 1.0;
        }
        let dist = StudentsT::new(0.0, 1.0, (self.models - 1) as f64).expect("valid t");
        dist.sf(t)
    }

    /// Standardised effect size of a mean over `n` responses.
    pub fn effect_size(&self, stat: f64, n: usize) -> f64 {
        (stat - self.mu) / (self.tau2 + self.sigma2 / n.max(1) as f64).sqrt().max(1e-12)
    }
}

/// The pooled per-response null (responses exchangeable across the null models): NOT what the
/// verdict uses, kept to measure what it would do ([`crate::verdict::NullCheck`], `pedigree bench`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PooledNull {
    pub mu: f64,
    pub var: f64,
    pub n: f64,
}

impl PooledNull {
    /// Mixture mean and variance of the models' pooled responses, from their moments.
    pub fn from_models(models: &[ModelNull]) -> Self {
        let n: f64 = models.iter().map(|o| o.n as f64).sum();
        let mu = models.iter().map(|o| o.n as f64 * o.mean).sum::<f64>() / n.max(1.0);
        let var = models.iter().map(|o| o.n as f64 * (o.var + o.mean * o.mean)).sum::<f64>()
            / n.max(1.0)
            - mu * mu;
        Self { mu, var: var.max(0.0), n }
    }

    /// One-sided Welch z-test p-value of a set with this mean, variance and size.
    pub fn p_value(&self, mean: f64, var: f64, n: usize) -> f64 {
        if n < 2 || self.n < 2.0 {
            return 1.0;
        }
        let se = (var / n as f64 + self.var / self.n).sqrt().max(1e-12);
        Normal::new(0.0, 1.0).expect("valid normal").sf((mean - self.mu) / se)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fpr_is_smoothed_and_monotone() {
        let c = Calibration::new(vec![3.0, 1.0, 2.0, 4.0], vec![], vec![], vec![]);
        assert_eq!(c.fpr(10.0), 1.0 / 5.0);
        assert_eq!(c.fpr(4.0), 2.0 / 5.0);
        assert_eq!(c.fpr(2.5), 3.0 / 5.0);
        assert_eq!(c.fpr(-1.0), 1.0);
        assert!(c.fpr(c.threshold_at(0.4)) <= 0.4);
    }

    #[test]
    fn random_effects_null_matches_hand_computation() {
        // Three models with means 0, 1, 2 (variance of means = 1), within variance 4, n = 100:
        // noise = 4/100 = 0.04, tau² = 0.96.
        let ms: Vec<ModelNull> = [0.0, 1.0, 2.0]
            .iter()
            .enumerate()
            .map(|(i, &m)| ModelNull {
                model: format!("m{i}"),
                family: "f".into(),
                n: 100,
                mean: m,
                var: 4.0,
            })
            .collect();
        let s = SetNull::from_models(&ms);
        assert!(
            (s.mu - 1.0).abs() < 1e-12
                && (s.tau2 - 0.96).abs() < 1e-12
                && (s.sigma2 - 4.0).abs() < 1e-12
        );
        // predictive sd for n = 4: sqrt(0.96 + 1 + 1/3)
        assert!((s.predictive_sd(4) - (0.96f64 + 1.0 + 1.0 / 3.0).sqrt()).abs() < 1e-12);
        // At the null mean the one-sided p-value is one half; far above it, tiny.
        assert!((s.p_value(1.0, 50) - 0.5).abs() < 1e-9);
        assert!(s.p_value(30.0, 50) < 0.01);
        assert!(s.p_value(1.5, 50) > 0.2);
    }
}
