//! Profiles: a fitted fingerprint of an upstream family, multi-class over families.
//!
//! A profile is a multinomial logistic regression over *models* (each known model is one
//! component, grouped into families), on hashed lexical and style features, plus a calibration
//! block measured leave-one-model-out. Scoring a text gives the posterior over families (the
//! prior is uniform over known *models*: each component is trained on balanced classes) and
//! the upstream log-odds.
//!
//! File format: `PDGPROF1` magic, a little-endian u32 format version, then a gzip'd bincode
//! [`ProfileFile`]. Any other version is refused with [`DetectorError::Version`].

use crate::aligned::{prompt_key, PromptRefs};
use crate::calibration::{
    decide, AlignedCalibration, Calibration, ModelNull, ModelPosteriors, NullCheck, SetNull,
};
use crate::dense::{DenseSpec, TIER_LEXICAL};
use crate::features::{self, FeatureConfig, Scratch, SparseVec, STYLE_NAMES};
use crate::linear::{Linear, QLinear, TrainOptions};
use crate::{
    DetectorError, Evidence, EvidenceKind, FamilyProb, GrowthPoint, Result, TextScore, Verdict,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

/// Version of the on-disk profile format. Bump it whenever features, hashing or the stored
/// structure change meaning.
pub const FORMAT_VERSION: u32 = 3;
const MAGIC: &[u8; 8] = b"PDGPROF1";
static BUILTIN: &[u8] = include_bytes!("../profiles/openai-alpaca-eval-dev.pdg");

/// Options of the set-level test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerdictOptions {
    /// Significance level of the decision (default 0.01).
    pub alpha: f64,
    /// How many top samples to return as evidence.
    pub top: usize,
}

impl VerdictOptions {
    /// The one rule for a verdict's significance level: in (0, 0.5). The "independent" decision
    /// uses a one-sided (1 − alpha) upper bound, which is no upper bound at alpha ≥ 0.5.
    pub fn check_alpha(alpha: f64) -> std::result::Result<f64, String> {
        if alpha > 0.0 && alpha < 0.5 {
            Ok(alpha)
        } else {
            Err(format!("alpha must be in (0, 0.5), got {alpha}"))
        }
    }
}

impl Default for VerdictOptions {
    fn default() -> Self {
        Self { alpha: 0.01, top: 5 }
    }
}

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

/// What is serialised (bincode cannot carry `serde_json::Value`, so metadata travels as JSON text).
#[derive(Serialize, Deserialize)]
struct ProfileFile {
    meta_json: String,
    body: Body,
}

/// Everything a profile holds besides its metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Body {
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
    fn dim(&self) -> usize {
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

/// Everything `Profile::fit` needs besides the data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitOptions {
    pub name: String,
    pub upstream: String,
    pub features: FeatureConfig,
    pub train: TrainOptions,
    /// Use the lexical and style blocks (switch off only to measure a neural-only profile).
    #[serde(default = "yes")]
    pub lexical: bool,
    /// Neural tiers whose vectors every `LabeledText::dense` carries (empty: lexical only).
    #[serde(default)]
    pub dense_tiers: Vec<String>,
    /// Expected norm of the standardised neural block (the lexical blocks have norm 1).
    #[serde(default = "one")]
    pub dense_scale: f32,
    /// Free-form description of the data, recorded in the metadata.
    pub dataset: serde_json::Value,
}

fn yes() -> bool {
    true
}
fn one() -> f32 {
    1.0
}

impl FitOptions {
    /// Lexical-only options with the defaults the built-in profile uses.
    pub fn lexical(name: &str, upstream: &str, dataset: serde_json::Value) -> FitOptions {
        FitOptions {
            name: name.into(),
            upstream: upstream.into(),
            features: FeatureConfig::default(),
            train: TrainOptions::default(),
            lexical: true,
            dense_tiers: Vec::new(),
            dense_scale: 1.0,
            dataset,
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<(Scratch, Vec<f32>, Vec<f32>)> = RefCell::new((Scratch::default(), Vec::new(), Vec::new()));
}

/// Per-text intermediate result shared by scoring and evidence.
struct Scored {
    x: SparseVec,
    /// Softmax over components.
    p: Vec<f32>,
    family_post: Vec<f64>,
    score: f64,
    /// Identity claims, when the lexical extraction found them already.
    claims: Option<Vec<crate::IdentityClaim>>,
}

impl Profile {
    /// The built-in profile for upstream "openai", compiled into the binary.
    pub fn builtin() -> Result<Profile> {
        if BUILTIN.is_empty() {
            return Err(DetectorError::Invalid(
                "this build has no built-in profile; build one with `scripts/build-builtin-profile.sh`".into(),
            ));
        }
        Self::from_bytes(BUILTIN)
    }

    pub fn load(path: &Path) -> Result<Profile> {
        let bytes = std::fs::read(path)
            .map_err(|source| DetectorError::Io { path: path.into(), source })?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Profile> {
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(DetectorError::NotAProfile);
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(DetectorError::Version { found: version, expected: FORMAT_VERSION });
        }
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&bytes[12..])
            .read_to_end(&mut raw)
            .map_err(|e| DetectorError::Corrupt(format!("decompress: {e}")))?;
        let f: ProfileFile =
            bincode::deserialize(&raw).map_err(|e| DetectorError::Corrupt(e.to_string()))?;
        let meta: ProfileMeta = serde_json::from_str(&f.meta_json)
            .map_err(|e| DetectorError::Corrupt(e.to_string()))?;
        let b = f.body;
        if b.weights.dim != b.dim()
            || b.weights.k != b.components.len()
            || b.style_mean.len() != STYLE_NAMES.len()
        {
            return Err(DetectorError::Corrupt(
                "weight shapes do not match the feature configuration".into(),
            ));
        }
        Ok(Profile { meta, b })
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        // Borrowing serialisation: bincode writes the nested body exactly as flat fields.
        #[derive(Serialize)]
        struct Out<'a> {
            meta_json: String,
            body: &'a Body,
        }
        let f = Out {
            meta_json: serde_json::to_string(&self.meta)
                .map_err(|e| DetectorError::Corrupt(e.to_string()))?,
            body: &self.b,
        };
        let raw = bincode::serialize(&f).map_err(|e| DetectorError::Corrupt(e.to_string()))?;
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::best());
        gz.write_all(&raw)
            .and_then(|_| gz.finish())
            .map_err(|e| DetectorError::Corrupt(e.to_string()))
    }

    /// Write atomically (temp file + rename), so a crash never leaves half a profile.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        let tmp = path.with_extension("profile.tmp");
        std::fs::write(&tmp, &bytes)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|source| DetectorError::Io { path: path.into(), source })
    }

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

    /// Fit a profile: components on `train`, then leave-one-model-out calibration on `calib`
    /// (responses to *other* prompts than `train`'s, so calibration never sees training prompts).
    pub fn fit(train: &[LabeledText], calib: &[LabeledText], opts: &FitOptions) -> Result<Profile> {
        let fitted = Fitter::new(train, opts)?;
        let full = fitted.fit_excluding(None);
        let calib_x = fitted.featurize(calib)?;
        let mut by_model: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, c) in calib.iter().enumerate() {
            by_model.entry(c.model).or_default().push(i);
        }
        // Leave each calibration model out of the fit in turn and score its responses.
        let models: Vec<(&str, Vec<usize>)> = by_model.into_iter().collect();
        let lomo: Vec<LomoModel> = models
            .par_iter()
            .map(|(m, idx)| {
                let p = fitted.fit_excluding(Some(m));
                let (s, post) = idx
                    .iter()
                    .map(|&i| {
                        let (fam, score) = p.score_vec(&calib_x[i]);
                        (score, fam.iter().map(|&v| v as f32).collect::<Vec<f32>>())
                    })
                    .unzip();
                (m.to_string(), calib[idx[0]].family.to_string(), s, post)
            })
            .collect();
        let (mut null_scores, mut upstream_scores) = (Vec::new(), Vec::new());
        let (mut null_models, mut upstream_models) = (Vec::new(), Vec::new());
        let mut family_posteriors = Vec::new();
        for (m, fam, s, post) in &lomo {
            family_posteriors.push(ModelPosteriors {
                model: m.clone(),
                family: fam.clone(),
                posteriors: post.clone(),
            });
            let summary = ModelNull::from_scores(m, fam, s);
            if *fam == opts.upstream {
                upstream_scores.extend(s.iter().map(|&x| x as f32));
                upstream_models.push(summary);
            } else {
                null_scores.extend(s.iter().map(|&x| x as f32));
                null_models.push(summary);
            }
        }
        if null_models.len() < 2 {
            return Err(DetectorError::NotEnoughData(
                "calibration needs responses of at least two non-upstream models".into(),
            ));
        }
        let mut cal = Calibration::new(null_scores, null_models, upstream_models, upstream_scores);
        cal.family_posteriors = family_posteriors;
        cal.aligned = aligned_calibration(calib, &models, &lomo, &opts.upstream);
        Ok(full.with_calibration(cal))
    }

    fn with_calibration(mut self, cal: Calibration) -> Profile {
        let set = cal.set_null();
        let alpha = VerdictOptions::default().alpha;
        let q = |p: f64| {
            cal.null_scores
                .get(((cal.null_scores.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or(f32::NAN)
        };
        self.meta.calibration = serde_json::json!({
            "method": "leave-one-model-out scores of known non-upstream models on held-out prompts",
            "null_models": cal.null_models.iter().map(|m| serde_json::json!({"model": m.model, "family": m.family, "n": m.n, "mean": m.mean})).collect::<Vec<_>>(),
            "upstream_models": cal.upstream_models.iter().map(|m| serde_json::json!({"model": m.model, "n": m.n, "mean": m.mean})).collect::<Vec<_>>(),
            "null_responses": cal.null_scores.len(),
            "null_score_quantiles": {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99)},
            "threshold_at_1pct_fpr": cal.threshold_at(0.01),
            "set_null": set,
            // The verdict's error rates at the default α measured on the calibration models
            // themselves, each left out: false alarms on independents, detections of unseen
            // upstream versions.
            "verdict_check": NullCheck::run(&cal.null_models, &cal.upstream_models, alpha),
            "verdict_check_prompt_aligned": cal.aligned.as_ref().map(|a| NullCheck::run(&a.null_models, &a.upstream_models, alpha)),
            "score": "upstream log-odds ln P(upstream)/P(other families), uniform prior over known models; higher = more upstream-like",
        });
        self.b.calibration = cal;
        self
    }

    fn scored(&self, text: &str, dense: Option<&[f32]>) -> Result<Scored> {
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
        let up = fam[self.b.upstream].clamp(1e-12, 1.0 - 1e-12);
        (fam, (up / (1.0 - up)).ln())
    }

    fn posterior(&self, x: SparseVec, p: &[f32]) -> Scored {
        let (family_post, score) = self.families_and_score(p);
        Scored { x, p: p.to_vec(), family_post, score, claims: None }
    }

    /// Family posterior and upstream score of an already-featurised text.
    fn score_vec(&self, x: &SparseVec) -> (Vec<f64>, f64) {
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

    /// d(score)/d(logit_c) for each component: the first-order attribution weights. With
    /// P_up = Σ_{c∈up} p_c, score = ln P_up − ln(1 − P_up), and d/dz_c = p_c·([c∈up]/P_up −
    /// [c∉up]/(1 − P_up)).
    fn score_gradient(&self, p: &[f32]) -> Vec<f64> {
        let p_up: f64 = p
            .iter()
            .enumerate()
            .filter(|(c, _)| self.b.component_family[*c] == self.b.upstream)
            .map(|(_, &v)| v as f64)
            .sum();
        let p_up = p_up.clamp(1e-12, 1.0 - 1e-12);
        p.iter()
            .enumerate()
            .map(|(c, &pc)| {
                if self.b.component_family[c] == self.b.upstream {
                    pc as f64 / p_up
                } else {
                    -(pc as f64) / (1.0 - p_up)
                }
            })
            .collect()
    }

    fn contribution(&self, feature: u32, x: f32, grad: &[f64]) -> f64 {
        self.b.weights.row(feature as usize).zip(grad).map(|(w, g)| w as f64 * g).sum::<f64>()
            * x as f64
    }

    /// Top contributions: word n-gram phrases located in the text, style features, and identity
    /// claims. Character n-grams also contribute to the score but are not listed (they are not
    /// readable on their own).
    fn evidence(&self, text: &str, s: &Scored, claims: &[crate::IdentityClaim]) -> Vec<Evidence> {
        let grad = self.score_gradient(&s.p);
        let mut x = s.x.clone();
        x.sort();
        let value = |f: u32| x.idx.binary_search(&f).ok().map(|i| x.val[i]);
        let wmask = (self.b.features.word_buckets() - 1) as u32;
        let mut toks = Vec::new();
        crate::text::tokens(text, &mut toks);
        let mut seen: BTreeMap<u32, ()> = BTreeMap::new();
        let mut phrases: Vec<Evidence> = Vec::new();
        let mut push = |f: u32, start: usize, end: usize, phrases: &mut Vec<Evidence>| {
            if seen.insert(f, ()).is_some() {
                return;
            }
            if let Some(x) = value(f) {
                let w = self.contribution(f, x, &grad);
                phrases.push(Evidence {
                    kind: EvidenceKind::Phrase,
                    label: text[start..end].to_string(),
                    span: Some([
                        crate::text::char_offset(text, start),
                        crate::text::char_offset(text, end),
                    ]),
                    weight: w,
                });
            }
        };
        for (i, t) in toks.iter().enumerate() {
            // Single punctuation marks are style, reported through the style block instead.
            if text[t.start..t.end].chars().next().is_some_and(|c| c.is_alphanumeric()) {
                push(t.hash & wmask, t.start, t.end, &mut phrases);
            }
            if i > 0 {
                let p = &toks[i - 1];
                let f = crate::text::mix(crate::text::combine(p.hash, t.hash)) & wmask;
                push(f, p.start, t.end, &mut phrases);
            }
        }
        phrases.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        phrases.truncate(8);
        phrases.retain(|e| e.weight > 0.0);

        let off = self.b.features.style_offset() as u32;
        let mut style: Vec<Evidence> = (0..STYLE_NAMES.len() as u32)
            .filter_map(|j| value(off + j).map(|x| (j, x)))
            .map(|(j, x)| Evidence {
                kind: EvidenceKind::Feature,
                label: STYLE_NAMES[j as usize].clone(),
                span: None,
                weight: self.contribution(off + j, x, &grad),
            })
            .collect();
        style.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
        style.truncate(5);
        // The neural block is not readable dimension by dimension: report its total pull.
        if let Some(d) = &self.b.dense {
            let off = self.b.features.dim() as u32;
            let w: f64 = (0..d.dim as u32)
                .filter_map(|j| value(off + j).map(|x| self.contribution(off + j, x, &grad)))
                .sum();
            style.push(Evidence {
                kind: EvidenceKind::Feature,
                label: format!("neural: {}", d.tiers.join("+")),
                span: None,
                weight: w,
            });
        }

        let mut out: Vec<Evidence> = claims
            .iter()
            .map(|c| Evidence {
                kind: EvidenceKind::Identity,
                label: format!("{} claim ({}): {}", c.kind, c.family, c.text),
                span: Some(c.span),
                weight: if c.family == self.upstream() { 1.0 } else { -1.0 },
            })
            .collect();
        out.extend(phrases);
        out.extend(style);
        out
    }

    /// The set-level verdict about a suspect from the scores of its responses (in the order they
    /// were collected: the growth curve follows that order).
    ///
    /// When every response has a prompt-aligned score (the profile holds references for all their
    /// prompts), the test runs on the aligned scale against the aligned null: the prompts' own
    /// pull cancels out of both sides.
    pub fn verdict(&self, scores: &[TextScore], opts: &VerdictOptions) -> Verdict {
        let aligned: Option<Vec<f64>> = scores.iter().map(|t| t.aligned).collect();
        let (s, use_aligned) = match aligned {
            Some(a) if !a.is_empty() && self.b.calibration.aligned.is_some() => (a, true),
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
        let mut v = self.verdict_on(&s, use_aligned, opts);
        v.teacher = families.first().map(|f| f.family.clone());
        v.families = families;
        v
    }

    /// The verdict from bare upstream scores (no family attribution).
    pub fn verdict_from_scores(&self, s: &[f64], opts: &VerdictOptions) -> Verdict {
        self.verdict_on(s, false, opts)
    }

    /// The verdict from prompt-aligned scores ([`TextScore::aligned`]); falls back to the raw
    /// null if the profile has no aligned calibration.
    pub fn verdict_from_aligned(&self, s: &[f64], opts: &VerdictOptions) -> Verdict {
        self.verdict_on(s, self.b.calibration.aligned.is_some(), opts)
    }

    fn verdict_on(&self, s: &[f64], aligned: bool, opts: &VerdictOptions) -> Verdict {
        let cal = &self.b.calibration;
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
fn append_style(x: &mut SparseVec, style: &[f32], mean: &[f32], sd: &[f32], cfg: &FeatureConfig) {
    let off = cfg.style_offset() as u32;
    for (j, &v) in style.iter().enumerate() {
        let z = ((v - mean[j]) / sd[j]).clamp(-5.0, 5.0) * cfg.style_scale;
        if z != 0.0 {
            x.idx.push(off + j as u32);
            x.val.push(z);
        }
    }
}

/// Training state shared by the full fit and the leave-one-model-out fits.
struct Fitter<'a> {
    opts: &'a FitOptions,
    train: &'a [LabeledText<'a>],
    x: Vec<SparseVec>,
    components: Vec<String>,
    component_family: Vec<usize>,
    families: Vec<String>,
    upstream: usize,
    y: Vec<usize>,
    style_mean: Vec<f32>,
    style_sd: Vec<f32>,
    dense: Option<DenseSpec>,
}

impl<'a> Fitter<'a> {
    fn new(train: &'a [LabeledText<'a>], opts: &'a FitOptions) -> Result<Self> {
        let comp_of = |t: &LabeledText<'a>| t.model;
        let mut components: Vec<String> = train.iter().map(|t| comp_of(t).to_string()).collect();
        components.sort();
        components.dedup();
        let mut families: Vec<String> = train.iter().map(|t| t.family.to_string()).collect();
        families.sort();
        families.dedup();
        let upstream = families.iter().position(|f| *f == opts.upstream).ok_or_else(|| {
            DetectorError::NotEnoughData(format!(
                "no training texts of the upstream family {:?}",
                opts.upstream
            ))
        })?;
        if families.len() < 2 {
            return Err(DetectorError::NotEnoughData(
                "a profile needs texts of at least two families".into(),
            ));
        }
        let mut component_family = vec![0; components.len()];
        for t in train {
            let c = components.binary_search_by(|m| m.as_str().cmp(comp_of(t))).expect("component");
            component_family[c] =
                families.binary_search_by(|f| f.as_str().cmp(t.family)).expect("family");
        }
        let y = train
            .iter()
            .map(|t| {
                components.binary_search_by(|m| m.as_str().cmp(comp_of(t))).expect("component")
            })
            .collect();
        // Lexical features and raw style, in parallel.
        let raw: Vec<(SparseVec, Vec<f32>)> = train
            .par_iter()
            .map_init(Scratch::default, |sc, t| {
                let mut st = Vec::new();
                let x = features::extract(&opts.features, t.text, sc, &mut st);
                (x, st)
            })
            .collect();
        let d = STYLE_NAMES.len();
        let n = raw.len().max(1) as f32;
        let mut style_mean = vec![0f32; d];
        for (_, st) in &raw {
            for j in 0..d {
                style_mean[j] += st[j] / n;
            }
        }
        let mut style_sd = vec![0f32; d];
        for (_, st) in &raw {
            for j in 0..d {
                style_sd[j] += (st[j] - style_mean[j]).powi(2) / n;
            }
        }
        style_sd.iter_mut().for_each(|v| *v = v.sqrt().max(1e-3));
        let dense = if opts.dense_tiers.is_empty() {
            None
        } else {
            let rows = dense_rows(train, &opts.dense_tiers)?;
            Some(DenseSpec::fit(opts.dense_tiers.clone(), &rows, opts.dense_scale)?)
        };
        if !opts.lexical && dense.is_none() {
            return Err(DetectorError::Invalid(
                "a profile needs the lexical tier or a neural tier".into(),
            ));
        }
        let mut x: Vec<SparseVec> = raw
            .into_iter()
            .map(|(mut x, st)| {
                if !opts.lexical {
                    return SparseVec::default();
                }
                append_style(&mut x, &st, &style_mean, &style_sd, &opts.features);
                x
            })
            .collect();
        if let Some(spec) = &dense {
            for (x, t) in x.iter_mut().zip(train) {
                spec.append(
                    x,
                    t.dense.expect("checked by dense_rows"),
                    opts.features.dim() as u32,
                )?;
            }
        }
        Ok(Self {
            opts,
            train,
            x,
            components,
            component_family,
            families,
            upstream,
            y,
            style_mean,
            style_sd,
            dense,
        })
    }

    fn featurize(&self, texts: &[LabeledText]) -> Result<Vec<SparseVec>> {
        if self.dense.is_some() {
            dense_rows(texts, &self.opts.dense_tiers)?;
        }
        Ok(texts
            .par_iter()
            .map_init(Scratch::default, |sc, t| {
                let mut x = SparseVec::default();
                if self.opts.lexical {
                    let mut st = Vec::new();
                    x = features::extract(&self.opts.features, t.text, sc, &mut st);
                    append_style(
                        &mut x,
                        &st,
                        &self.style_mean,
                        &self.style_sd,
                        &self.opts.features,
                    );
                }
                if let (Some(spec), Some(v)) = (&self.dense, t.dense) {
                    spec.append(&mut x, v, self.opts.features.dim() as u32)
                        .expect("lengths checked by dense_rows");
                }
                x
            })
            .collect())
    }

    fn dim(&self) -> usize {
        self.opts.features.dim() + self.dense.as_ref().map_or(0, |d| d.dim)
    }

    /// Fit on all training texts except those of `exclude` (a model name).
    fn fit_excluding(&self, exclude: Option<&str>) -> Profile {
        let keep: Vec<usize> =
            (0..self.train.len()).filter(|&i| Some(self.train[i].model) != exclude).collect();
        let xs: Vec<&SparseVec> = keep.iter().map(|&i| &self.x[i]).collect();
        // Components are renumbered so an excluded model leaves no empty class behind.
        let mut comps: Vec<usize> = keep.iter().map(|&i| self.y[i]).collect();
        comps.sort();
        comps.dedup();
        let ys: Vec<usize> =
            keep.iter().map(|&i| comps.binary_search(&self.y[i]).expect("kept")).collect();
        let mut counts = vec![0f32; comps.len()];
        ys.iter().for_each(|&y| counts[y] += 1.0);
        let mean = ys.len() as f32 / comps.len() as f32;
        let cw: Vec<f32> = counts.iter().map(|&c| mean / c.max(1.0)).collect();
        let lin = Linear::train(&xs, &ys, comps.len(), self.dim(), &cw, &self.opts.train);
        let components: Vec<String> = comps.iter().map(|&c| self.components[c].clone()).collect();
        let component_family: Vec<usize> =
            comps.iter().map(|&c| self.component_family[c]).collect();
        let mut models_per_family: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (c, &f) in components.iter().zip(&component_family) {
            models_per_family.entry(self.families[f].clone()).or_default().push(c.clone());
        }
        let meta = ProfileMeta {
            format_version: FORMAT_VERSION,
            name: self.opts.name.clone(),
            upstream: self.opts.upstream.clone(),
            families: self.families.clone(),
            created: now_rfc3339(),
            training: serde_json::json!({
                "dataset": self.opts.dataset,
                "texts": xs.len(),
                "models_per_family": models_per_family,
                "optimiser": self.opts.train,
                "classifier": "multinomial logistic regression over known models (uniform prior over models), summed into families",
            }),
            features: {
                let mut b =
                    if self.opts.lexical { self.opts.features.block_names() } else { Vec::new() };
                if let Some(d) = &self.dense {
                    b.push(format!("neural({}, {} dims)", d.tiers.join("+"), d.dim));
                }
                b
            },
            calibration: serde_json::Value::Null,
        };
        Profile {
            meta,
            b: Body {
                features: self.opts.features.clone(),
                components,
                component_family,
                families: self.families.clone(),
                upstream: self.upstream,
                style_mean: self.style_mean.clone(),
                style_sd: self.style_sd.clone(),
                lexical: self.opts.lexical,
                dense: self.dense.clone(),
                weights: lin.quantize(),
                calibration: Calibration::new(Vec::new(), Vec::new(), Vec::new(), Vec::new()),
            },
        }
    }
}

/// One calibration model scored leave-one-model-out: (model, family, upstream score and family
/// posterior of each of its responses).
type LomoModel = (String, String, Vec<f64>, Vec<Vec<f32>>);

/// Prompt-aligned calibration: reference means per prompt from the leave-one-model-out scores of
/// the calibration answers, and the LOMO null minus those means. `None` when no prompt has enough
/// references.
fn aligned_calibration(
    calib: &[LabeledText],
    models: &[(&str, Vec<usize>)],
    lomo: &[LomoModel],
    upstream: &str,
) -> Option<AlignedCalibration> {
    let keys: Vec<Option<u64>> = calib.iter().map(|t| t.prompt.map(prompt_key)).collect();
    // References are scored leave-one-model-out, like the null: a reference answer counts as
    // what an unseen model would score on that prompt. (Scoring them with the full profile pulls
    // each known model's answers towards its own family and makes the per-prompt means noisier;
    // measured on the dev bench: suspect AUROC@10 0.856 with full-profile references, 0.875 with
    // LOMO ones.)
    let mut ref_scores = vec![0.0; calib.len()];
    for ((_, idx), (_, _, s, _)) in models.iter().zip(lomo) {
        idx.iter().zip(s).for_each(|(&i, &x)| ref_scores[i] = x);
    }
    let refs = PromptRefs::from_scores(
        keys.iter().zip(&ref_scores).filter_map(|(k, &s)| k.map(|k| (k, s))),
    );
    if refs.is_empty() {
        return None;
    }
    let (mut null_scores, mut null_models, mut upstream_models) =
        (Vec::new(), Vec::new(), Vec::new());
    for ((m, idx), (_, fam, s, _)) in models.iter().zip(lomo) {
        // Each answer is aligned against the other references to its prompt (its own LOMO score
        // is one of them): a suspect's answer is never among the references, and including it
        // pulled each null model towards the per-prompt mean, shrinking the null's spread by
        // (K−1)/K and making aligned p-values and the error check anti-conservative.
        let a: Vec<f64> = idx
            .iter()
            .zip(s)
            .filter_map(|(&i, &si)| {
                keys[i].and_then(|k| refs.mean_without_own(k, si)).map(|r| si - r)
            })
            .collect();
        if a.is_empty() {
            continue;
        }
        let summary = ModelNull::from_scores(m, fam, &a);
        if fam == upstream {
            upstream_models.push(summary);
        } else {
            null_scores.extend(a.iter().map(|&x| x as f32));
            null_models.push(summary);
        }
    }
    (null_models.len() >= 2)
        .then(|| AlignedCalibration::new(refs, null_scores, null_models, upstream_models))
}

/// The neural vectors of `texts`, checked present and of one length.
fn dense_rows<'a>(texts: &[LabeledText<'a>], tiers: &[String]) -> Result<Vec<&'a [f32]>> {
    let rows: Vec<&[f32]> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.dense.ok_or_else(|| {
                DetectorError::Invalid(format!(
                    "text {i} ({}) has no neural features for tiers {tiers:?}",
                    t.model
                ))
            })
        })
        .collect::<Result<_>>()?;
    if let Some(d) = rows.first().map(|r| r.len()) {
        if let Some(bad) = rows.iter().position(|r| r.len() != d) {
            return Err(DetectorError::Invalid(format!(
                "text {bad} has {} neural dims, text 0 has {d}",
                rows[bad].len()
            )));
        }
    }
    Ok(rows)
}

/// UTC timestamp without a date-time dependency.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
