//! Evidence: the first-order contributions that make up a text's upstream score (phrases located
//! in the text, style features, the neural block's total pull, identity claims).

use super::score::Scored;
use super::Profile;
use crate::features::STYLE_NAMES;
use crate::{Evidence, EvidenceKind};
use std::collections::BTreeMap;

impl Profile {
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
    pub(super) fn evidence(
        &self,
        text: &str,
        s: &Scored,
        claims: &[crate::IdentityClaim],
    ) -> Vec<Evidence> {
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
                // A cue ("As an AI language model") names no family: it is listed as a cue and
                // pulls neither way, so it never reads as a claim against the upstream.
                label: if c.is_explicit() {
                    format!("{} claim ({}): {}", c.kind, c.family, c.text)
                } else {
                    format!("{} cue: {}", c.kind, c.text)
                },
                span: Some(c.span),
                weight: match (c.is_explicit(), c.family == self.upstream()) {
                    (false, _) => 0.0,
                    (true, true) => 1.0,
                    (true, false) => -1.0,
                },
            })
            .collect();
        out.extend(phrases);
        out.extend(style);
        out
    }
}
