//! Profiles: a fitted fingerprint of an upstream family, multi-class over families.
//!
//! A profile is a multinomial logistic regression over *models* (each known model is one
//! component, grouped into families), on hashed lexical and style features, plus a calibration
//! block measured leave-one-model-out. Scoring a text gives the posterior over families (the
//! prior is uniform over known *models*: each component is trained on balanced classes) and
//! the upstream log-odds.
//!
//! One file per concept: [`format`] (the on-disk file), [`fit`] (training and leave-one-model-out
//! calibration), [`score`] (per-text scores), [`evidence`] (what a score is made of). Set-level
//! decisions live in [`crate::verdict`]; the methods here that return a [`crate::Verdict`] only
//! delegate to it.

mod evidence;
mod fit;
pub mod format;
mod score;

use crate::calibration::Calibration;
use crate::dense::{DenseSpec, TIER_LEXICAL};
use crate::features::FeatureConfig;
use crate::linear::QLinear;
use crate::{TextScore, Verdict};
use serde::{Deserialize, Serialize};

pub use crate::time::now_rfc3339;
pub use crate::verdict::VerdictOptions;
pub use fit::FitOptions;
pub use format::FORMAT_VERSION;

/// Metadata of a profile: what it detects and how it was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileMeta {
    pub format_version: u32,
    pub name: String,
    pub upstream: String,
    pub families: Vec<String>,
    pub created: String,
    /// Training summary: dataset name, models per family, samples, prompts.
    pub training: serde_json::Value,
    /// Feature blocks the profile uses.
    pub features: Vec<String>,
    /// Calibration summary: null models, sample counts, score quantiles.
    pub calibration: serde_json::Value,
}

/// Everything a profile holds besides its metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Body {
    features: FeatureConfig,
    components: Vec<String>,
    component_family: Vec<usize>,
    families: Vec<String>,
    upstream: usize,
    style_mean: Vec<f32>,
    style_sd: Vec<f32>,
    /// Whether the lexical and style blocks are used (false only for neural-only ablations).
    lexical: bool,
    /// The neural block, appended after the lexical blocks, if the profile uses one.
    dense: Option<DenseSpec>,
    weights: QLinear,
    calibration: Calibration,
}

impl Body {
    pub(super) fn dim(&self) -> usize {
        self.features.dim() + self.dense.as_ref().map_or(0, |d| d.dim)
    }
}

/// A fitted fingerprint of an upstream family.
#[derive(Debug, Clone)]
pub struct Profile {
    meta: ProfileMeta,
    b: Body,
}

/// One training or calibration text with its provenance.
#[derive(Debug, Clone, Copy)]
pub struct LabeledText<'a> {
    pub text: &'a str,
    pub model: &'a str,
    pub family: &'a str,
    /// Neural features of the text (the profile's dense tiers, concatenated), when it uses them.
    pub dense: Option<&'a [f32]>,
    /// The prompt it answers. Calibration texts with prompts become per-prompt references for
    /// prompt-aligned scores ([`crate::aligned`]).
    pub prompt: Option<&'a str>,
}

impl Profile {
    pub fn meta(&self) -> &ProfileMeta {
        &self.meta
    }
    pub fn calibration(&self) -> &Calibration {
        &self.b.calibration
    }
    pub fn families(&self) -> &[String] {
        &self.b.families
    }
    pub fn upstream(&self) -> &str {
        &self.b.families[self.b.upstream]
    }
    /// The tiers scoring needs: "lexical" and/or neural tiers such as "minilm-embedding".
    pub fn tiers(&self) -> Vec<String> {
        let mut t = Vec::new();
        if self.b.lexical {
            t.push(TIER_LEXICAL.to_string());
        }
        t.extend(self.neural_tiers().iter().cloned());
        t
    }
    /// The prompt-aligned score of a response with upstream score `score`, when the profile has
    /// references for its prompt.
    pub fn aligned_score(&self, score: f64, prompt: Option<&str>) -> Option<f64> {
        let refs = &self.b.calibration.aligned.as_ref()?.refs;
        Some(score - refs.mean(prompt?)?)
    }

    /// Number of prompts with reference answers (0: prompt alignment never applies).
    pub fn reference_prompts(&self) -> usize {
        self.b.calibration.aligned.as_ref().map_or(0, |a| a.refs.len())
    }

    /// The neural tiers only (empty for a lexical profile): what `score_with` must be given.
    pub fn neural_tiers(&self) -> &[String] {
        self.b.dense.as_ref().map_or(&[], |d| d.tiers.as_slice())
    }

    /// The set-level verdict about a suspect from the scores of its responses (in the order they
    /// were collected): [`crate::verdict::style::verdict`] with this profile's calibration.
    pub fn verdict(&self, scores: &[TextScore], opts: &VerdictOptions) -> Verdict {
        crate::verdict::style::verdict(self.calibration(), scores, opts)
    }

    /// The verdict from bare upstream scores (no family attribution).
    pub fn verdict_from_scores(&self, s: &[f64], opts: &VerdictOptions) -> Verdict {
        crate::verdict::style::verdict_on(self.calibration(), s, false, opts)
    }

    /// The verdict from prompt-aligned scores ([`TextScore::aligned`]); falls back to the raw
    /// null if the profile has no aligned calibration.
    pub fn verdict_from_aligned(&self, s: &[f64], opts: &VerdictOptions) -> Verdict {
        let cal = self.calibration();
        crate::verdict::style::verdict_on(cal, s, cal.aligned.is_some(), opts)
    }
}
