//! Fitting a profile: the multinomial components on training texts, then the leave-one-model-out
//! calibration (raw and prompt-aligned) on held-out calibration texts.

use super::format::FORMAT_VERSION;
use super::score::append_style;
use super::{Body, LabeledText, Profile, ProfileMeta};
use crate::aligned::{prompt_key, PromptRefs};
use crate::calibration::{AlignedCalibration, Calibration, ModelNull, ModelPosteriors};
use crate::dense::DenseSpec;
use crate::features::{self, FeatureConfig, Scratch, SparseVec, STYLE_NAMES};
use crate::linear::{Linear, TrainOptions};
use crate::time::now_rfc3339;
use crate::verdict::{NullCheck, VerdictOptions};
use crate::{DetectorError, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

impl Profile {
    /// Fit a profile: components on `train`, then the held-out calibration on `calib` (responses
    /// to *other* prompts than `train`'s, so calibration never sees training prompts).
    ///
    /// Every error rate is built from scores of models the scoring profile never saw, and the
    /// unit left out is what a real suspect would be new in ([`Holdout`]): a non-upstream model
    /// is left out with its whole **family** (leave-one-family-out, LOFO), because the suspects
    /// that matter come from families the profile has never seen, and siblings left in make a
    /// held-out model look far less upstream-like than an unseen family does (a scratch
    /// prototype: Claude left out alone scored −1.3, the whole Anthropic family left out +0.36,
    /// above most students). An upstream model is left out alone: it stands for an unseen
    /// *version* of the upstream, and the upstream family cannot be left out whole. Where a family
    /// has one model LOFO = LOMO. Family posteriors (attribution, per-family audits) stay
    /// leave-one-model-out: attributing a text to a family needs that family in the profile.
    pub fn fit(train: &[LabeledText], calib: &[LabeledText], opts: &FitOptions) -> Result<Profile> {
        Ok(Self::fit_with_held_out(train, calib, opts)?.0)
    }

    /// [`Profile::fit`], also returning every calibration model's held-out scores (raw and
    /// prompt-aligned, per response): what `pedigree bench`'s held-out validation ranks.
    pub fn fit_with_held_out(
        train: &[LabeledText],
        calib: &[LabeledText],
        opts: &FitOptions,
    ) -> Result<(Profile, Vec<HeldOutModel>)> {
        opts.features.check().map_err(|e| DetectorError::Invalid(format!("features: {e}")))?;
        let fitted = Fitter::new(train, opts)?;
        let full = fitted.fit_excluding(Holdout::Nothing);
        let calib_x = fitted.featurize(calib)?;
        let mut by_model: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, c) in calib.iter().enumerate() {
            by_model.entry(c.model).or_default().push(i);
        }
        let models: Vec<(&str, Vec<usize>)> = by_model.into_iter().collect();
        let family_of = |idx: &[usize]| calib[idx[0]].family;
        let mut family_size: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, idx) in &models {
            *family_size.entry(family_of(idx)).or_default() += 1;
        }
        // The scheme of each model's upstream scores, and of its family posteriors.
        let upstream = opts.upstream.as_str();
        let score_holdout = |m, fam| Holdout::for_scores(m, fam, upstream);
        let posterior_holdout =
            |m, fam| Holdout::for_posteriors(m, fam, upstream, family_size[fam]);
        // Each distinct held-out set is fitted once, in parallel.
        let mut holdouts: Vec<Holdout> = models
            .iter()
            .flat_map(|(m, idx)| {
                let fam = family_of(idx);
                [score_holdout(m, fam), posterior_holdout(m, fam)]
            })
            .collect();
        holdouts.sort();
        holdouts.dedup();
        let fits: BTreeMap<Holdout, Profile> =
            holdouts.par_iter().map(|h| (*h, fitted.fit_excluding(*h))).collect();
        let lomo: Vec<LomoModel> = models
            .par_iter()
            .map(|(m, idx)| {
                let fam = family_of(idx);
                let (sp, pp) = (&fits[&score_holdout(m, fam)], &fits[&posterior_holdout(m, fam)]);
                let s = idx.iter().map(|&i| sp.score_vec(&calib_x[i]).1).collect();
                let post = idx
                    .iter()
                    .map(|&i| pp.score_vec(&calib_x[i]).0.iter().map(|&v| v as f32).collect())
                    .collect();
                (m.to_string(), fam.to_string(), s, post)
            })
            .collect();
        let (mut null_scores, mut upstream_scores) = (Vec::new(), Vec::new());
        let (mut null_models, mut upstream_models) = (Vec::new(), Vec::new());
        let mut family_posteriors = Vec::new();
        let mut schemes = BTreeMap::new();
        for (m, fam, s, post) in &lomo {
            schemes.insert(
                m.clone(),
                score_holdout(m, fam).scheme(family_size[fam.as_str()]).to_string(),
            );
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
        let (aligned, aligned_scores) = aligned_calibration(calib, &models, &lomo, &opts.upstream);
        cal.aligned = aligned;
        let held_out = lomo
            .into_iter()
            .zip(aligned_scores)
            .map(|((model, family, scores, _), aligned)| HeldOutModel {
                model,
                family,
                scores,
                aligned,
            })
            .collect();
        Ok((full.with_calibration(cal, schemes), held_out))
    }

    fn with_calibration(mut self, cal: Calibration, schemes: BTreeMap<String, String>) -> Profile {
        let set = cal.set_null();
        let alpha = VerdictOptions::default().alpha;
        let q = |p: f64| {
            cal.null_scores
                .get(((cal.null_scores.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or(f32::NAN)
        };
        self.meta.calibration = serde_json::json!({
            "method": "held-out scores of known models on held-out prompts: each non-upstream model scored by a profile fitted without its whole family (leave-one-family-out), each upstream model by one fitted without that model (an unseen upstream version); family posteriors leave one model out",
            // Per calibration model, the held-out unit its scores (and so every FPR, null,
            // interval and error check built on them) used.
            "scheme": schemes,
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
            "score": "upstream log-odds at even prior odds between the sides: ln(P(upstream)/n_upstream_models) − ln(P(other)/n_other_models), uniform over models within a side; higher = more upstream-like",
        });
        self.b.calibration = cal;
        self
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

    /// Fit on all training texts except the held-out ones.
    fn fit_excluding(&self, holdout: Holdout) -> Profile {
        let keep: Vec<usize> =
            (0..self.train.len()).filter(|&i| !holdout.holds_out(&self.train[i])).collect();
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
            score_prior: super::ScorePrior::Balanced,
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

/// What a held-out fit leaves out of the training texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Holdout<'a> {
    Nothing,
    Model(&'a str),
    Family(&'a str),
}

impl<'a> Holdout<'a> {
    /// What upstream scores of `model` are held out from: its family, unless it is an upstream
    /// model (then the model alone).
    fn for_scores(model: &'a str, family: &'a str, upstream: &str) -> Self {
        if family == upstream {
            Holdout::Model(model)
        } else {
            Holdout::Family(family)
        }
    }

    /// What family posteriors of `model` are held out from: the model alone (attribution needs
    /// its family in the profile), written as its family when it is the family's only model so
    /// that the fit is shared with [`Holdout::for_scores`].
    fn for_posteriors(
        model: &'a str,
        family: &'a str,
        upstream: &str,
        family_models: usize,
    ) -> Self {
        if family != upstream && family_models == 1 {
            Holdout::Family(family)
        } else {
            Holdout::Model(model)
        }
    }

    fn holds_out(&self, t: &LabeledText) -> bool {
        match *self {
            Holdout::Nothing => false,
            Holdout::Model(m) => t.model == m,
            Holdout::Family(f) => t.family == f,
        }
    }

    /// The scheme's name as recorded in a profile (`family_models`: how many calibration
    /// models the family has).
    fn scheme(&self, family_models: usize) -> &'static str {
        match self {
            Holdout::Nothing => "in-sample",
            Holdout::Model(_) => "leave-one-model-out (upstream version)",
            Holdout::Family(_) if family_models == 1 => {
                "leave-one-family-out (= leave-one-model-out: one model in the family)"
            }
            Holdout::Family(_) => "leave-one-family-out",
        }
    }
}

/// One calibration model's responses scored held out (its family left out, or the model alone
/// for an upstream model): the upstream score of each response, and its prompt-aligned score
/// where the prompt has references (empty otherwise).
#[derive(Debug, Clone)]
pub struct HeldOutModel {
    pub model: String,
    pub family: String,
    pub scores: Vec<f64>,
    pub aligned: Vec<f64>,
}

/// One calibration model scored held out: (model, family, upstream score of each response under
/// its score holdout, family posterior of each response under its posterior holdout).
type LomoModel = (String, String, Vec<f64>, Vec<Vec<f32>>);

/// Prompt-aligned calibration: reference means per prompt from the leave-one-model-out scores of
/// the calibration answers, and the LOMO null minus those means. `None` when no prompt has enough
/// references. Also returns each model's aligned scores (in `models`' order).
fn aligned_calibration(
    calib: &[LabeledText],
    models: &[(&str, Vec<usize>)],
    lomo: &[LomoModel],
    upstream: &str,
) -> (Option<AlignedCalibration>, Vec<Vec<f64>>) {
    let keys: Vec<Option<u64>> = calib.iter().map(|t| t.prompt.map(prompt_key)).collect();
    // References are scored held out, like the null: a reference answer counts as what an
    // unseen model would score on that prompt. (Scoring them with the full profile pulls each
    // known model's answers towards its own family and makes the per-prompt means noisier;
    // measured on the dev bench when references were leave-one-model-out: suspect AUROC@10
    // 0.856 with full-profile references, 0.875 with held-out ones.)
    let mut ref_scores = vec![0.0; calib.len()];
    for ((_, idx), (_, _, s, _)) in models.iter().zip(lomo) {
        idx.iter().zip(s).for_each(|(&i, &x)| ref_scores[i] = x);
    }
    let refs = PromptRefs::from_scores(
        keys.iter().zip(&ref_scores).filter_map(|(k, &s)| k.map(|k| (k, s))),
    );
    if refs.is_empty() {
        return (None, vec![Vec::new(); models.len()]);
    }
    let (mut null_scores, mut null_models, mut upstream_models) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut per_model = Vec::with_capacity(models.len());
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
        if !a.is_empty() {
            let summary = ModelNull::from_scores(m, fam, &a);
            if fam == upstream {
                upstream_models.push(summary);
            } else {
                null_scores.extend(a.iter().map(|&x| x as f32));
                null_models.push(summary);
            }
        }
        per_model.push(a);
    }
    let cal = (null_models.len() >= 2)
        .then(|| AlignedCalibration::new(refs, null_scores, null_models, upstream_models));
    (cal, per_model)
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
