//! Scoring texts against a profile: features, the component softmax, the family posterior and the
//! upstream log-odds, with its calibrated false-positive rate.

use super::Profile;
use crate::features::{self, FeatureConfig, Scratch, SparseVec};
use crate::linear::QLinear;
use crate::{DetectorError, FamilyProb, Result, TextScore};
use rayon::prelude::*;
use std::cell::RefCell;

thread_local! {
    static SCRATCH: RefCell<(Scratch, Vec<f32>, Vec<f32>)> = RefCell::new((Scratch::default(), Vec::new(), Vec::new()));
}

/// Per-text intermediate result shared by scoring and evidence.
pub(super) struct Scored {
    pub(super) x: SparseVec,
    /// Softmax over components.
    pub(super) p: Vec<f32>,
    pub(super) family_post: Vec<f64>,
    pub(super) score: f64,
    /// Identity claims, when the lexical extraction found them already.
    pub(super) claims: Option<Vec<crate::IdentityClaim>>,
}

impl Profile {
    pub(super) fn scored(&self, text: &str, dense: Option<&[f32]>) -> Result<Scored> {
        SCRATCH.with(|s| {
            let (scratch, style, z) = &mut *s.borrow_mut();
            let x = self.featurize_one(text, dense, scratch, style)?;
            self.b.weights.logits(&x, z);
            QLinear::softmax(z);
            let mut s = self.posterior(x, z);
            s.claims = self.b.lexical.then(|| scratch.take_claims());
            Ok(s)
        })
    }

    fn featurize_one(
        &self,
        text: &str,
        dense: Option<&[f32]>,
        scratch: &mut Scratch,
        style: &mut Vec<f32>,
    ) -> Result<SparseVec> {
        let mut x = if self.b.lexical {
            let mut x = features::extract(&self.b.features, text, scratch, style);
            append_style(&mut x, style, &self.b.style_mean, &self.b.style_sd, &self.b.features);
            x
        } else {
            SparseVec::default()
        };
        match (&self.b.dense, dense) {
            (Some(spec), Some(v)) => spec.append(&mut x, v, self.b.features.dim() as u32)?,
            (Some(spec), None) => {
                return Err(DetectorError::TierMissing { tiers: spec.tiers.clone() });
            }
            (None, _) => {}
        }
        Ok(x)
    }

    /// Family posterior (sum of its components) and the upstream log-odds.
    fn families_and_score(&self, p: &[f32]) -> (Vec<f64>, f64) {
        let mut fam = vec![0f64; self.b.families.len()];
        for (c, &pc) in p.iter().enumerate() {
            fam[self.b.component_family[c]] += pc as f64;
        }
        let score = match self.meta.score_prior {
            super::ScorePrior::Models => {
                let up = fam[self.b.upstream].clamp(1e-12, 1.0 - 1e-12);
                (up / (1.0 - up)).ln()
            }
            super::ScorePrior::Balanced => {
                // Each side's posterior per model it has: the prior log-odds ln(n_up/n_other)
                // cancels, whatever a held-out fit left out.
                let n_up =
                    self.b.component_family.iter().filter(|&&f| f == self.b.upstream).count();
                let n_other = self.b.component_family.len() - n_up;
                let up = fam[self.b.upstream] / n_up.max(1) as f64;
                let other = (1.0 - fam[self.b.upstream]) / n_other.max(1) as f64;
                (up.max(1e-12) / other.max(1e-12)).ln()
            }
        };
        (fam, score)
    }

    fn posterior(&self, x: SparseVec, p: &[f32]) -> Scored {
        let (family_post, score) = self.families_and_score(p);
        Scored { x, p: p.to_vec(), family_post, score, claims: None }
    }

    /// Family posterior and upstream score of an already-featurised text.
    pub(super) fn score_vec(&self, x: &SparseVec) -> (Vec<f64>, f64) {
        let mut z = Vec::new();
        self.b.weights.logits(x, &mut z);
        QLinear::softmax(&mut z);
        self.families_and_score(&z)
    }

    /// The upstream score alone (no evidence): the fast path for bulk scoring with a lexical
    /// profile. A profile with neural tiers needs [`Profile::score_fast_with`]; here it scores NaN.
    pub fn score_fast(&self, text: &str) -> f64 {
        self.score_fast_with(text, None).unwrap_or(f64::NAN)
    }

    /// The upstream score alone, given the text's neural features when the profile has neural
    /// tiers (`Err(TierMissing)` if it has and they are not given).
    pub fn score_fast_with(&self, text: &str, dense: Option<&[f32]>) -> Result<f64> {
        SCRATCH.with(|s| {
            let (scratch, style, z) = &mut *s.borrow_mut();
            let x = self.featurize_one(text, dense, scratch, style)?;
            self.b.weights.logits(&x, z);
            QLinear::softmax(z);
            Ok(self.families_and_score(z).1)
        })
    }

    /// Score one text with a lexical profile. The prompt is accepted for prompt-aware scoring;
    /// the lexical tier does not use it. Profiles with neural tiers need [`Profile::score_with`]
    /// (this panics for them: calling it is a programming error the server's tier check prevents).
    pub fn score(&self, text: &str, prompt: Option<&str>) -> TextScore {
        self.score_with(text, prompt, None)
            .expect("a lexical profile scores any text; neural profiles need score_with")
    }

    /// Score one text, with its neural features when the profile has neural tiers.
    pub fn score_with(
        &self,
        text: &str,
        prompt: Option<&str>,
        dense: Option<&[f32]>,
    ) -> Result<TextScore> {
        let mut s = self.scored(text, dense)?;
        let aligned = self.aligned_score(s.score, prompt);
        let mut families: Vec<FamilyProb> = self
            .b
            .families
            .iter()
            .zip(&s.family_post)
            .map(|(f, &p)| FamilyProb { family: f.clone(), prob: p })
            .collect();
        families.sort_by(|a, b| b.prob.total_cmp(&a.prob));
        let claims = s.claims.take().unwrap_or_else(|| crate::identity::find_claims(text));
        let evidence = self.evidence(text, &s, &claims);
        Ok(TextScore {
            score: s.score,
            aligned,
            fpr: match (aligned, &self.b.calibration.aligned) {
                (Some(a), Some(cal)) => cal.fpr(a),
                _ => self.b.calibration.fpr(s.score),
            },
            family: families[0].family.clone(),
            families,
            evidence,
            claims,
        })
    }

    /// Score many texts in parallel (lexical profiles).
    pub fn score_batch(&self, texts: &[(&str, Option<&str>)]) -> Vec<TextScore> {
        texts.par_iter().map(|(t, p)| self.score(t, *p)).collect()
    }

    /// Score many texts in parallel, each with its neural features (`dense[i]` for `texts[i]`).
    pub fn score_batch_with(
        &self,
        texts: &[(&str, Option<&str>)],
        dense: Option<&[Vec<f32>]>,
    ) -> Result<Vec<TextScore>> {
        if let Some(d) = dense {
            if d.len() != texts.len() {
                return Err(DetectorError::Invalid(format!(
                    "{} texts but {} neural feature rows",
                    texts.len(),
                    d.len()
                )));
            }
        }
        texts
            .par_iter()
            .enumerate()
            .map(|(i, (t, p))| self.score_with(t, *p, dense.map(|d| d[i].as_slice())))
            .collect()
    }

    /// Family posterior (in [`Profile::families`] order) and upstream score of one text, without
    /// evidence: the bulk path for per-family audits. Neural profiles need `dense`, as in
    /// [`Profile::score_fast_with`].
    pub fn families_fast_with(&self, text: &str, dense: Option<&[f32]>) -> Result<(Vec<f64>, f64)> {
        let s = self.scored(text, dense)?;
        Ok((s.family_post, s.score))
    }
}

/// Standardise the style block and append it to the sparse vector (it sorts after the lexical
/// blocks, so the indices stay sorted).
pub(super) fn append_style(
    x: &mut SparseVec,
    style: &[f32],
    mean: &[f32],
    sd: &[f32],
    cfg: &FeatureConfig,
) {
    let off = cfg.style_offset() as u32;
    for (j, &v) in style.iter().enumerate() {
        let z = ((v - mean[j]) / sd[j]).clamp(-5.0, 5.0) * cfg.style_scale;
        if z != 0.0 {
            x.idx.push(off + j as u32);
            x.val.push(z);
        }
    }
}
