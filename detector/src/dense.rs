//! Dense (neural) feature blocks: vectors computed per text outside this crate (the `models`
//! crate's MiniLM embeddings or SmolLM2 log-prob features) and appended to the sparse lexical
//! vector, so one linear model weighs both. The detector stays a pure library: it stores which
//! tiers a profile needs and how to standardise them, never the neural models themselves.

use crate::features::SparseVec;
use crate::{DetectorError, Result};
use serde::{Deserialize, Serialize};

/// Tier names as recorded in profiles (and checked by the server against the weights it has).
pub const TIER_LEXICAL: &str = "lexical";
pub const TIER_EMBEDDING: &str = "minilm-embedding";

/// Neural vectors of texts, keyed by the exact text (computed once per bench run or corpus).
pub type DenseTable = std::collections::HashMap<String, Vec<f32>>;

/// The vector of `text` in `table`, or an error naming the text.
pub fn lookup<'a>(table: &'a DenseTable, text: &str) -> Result<&'a [f32]> {
    table.get(text).map(|v| v.as_slice()).ok_or_else(|| {
        let head: String = text.chars().take(40).collect();
        DetectorError::Invalid(format!("no neural features computed for the text {head:?}…"))
    })
}

/// How a profile's dense block is standardised.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DenseSpec {
    /// Tiers that produce the block, concatenated in this order.
    pub tiers: Vec<String>,
    pub dim: usize,
    pub mean: Vec<f32>,
    pub sd: Vec<f32>,
    /// Per-dimension multiplier after standardisation: `block_scale / sqrt(dim)`, so the block's
    /// expected norm is `block_scale` — comparable to the unit-norm lexical blocks whatever `dim`.
    pub scale: f32,
}

impl DenseSpec {
    /// Fit the standardisation on training rows (all of length `dim`).
    pub fn fit(tiers: Vec<String>, rows: &[&[f32]], block_scale: f32) -> Result<DenseSpec> {
        let dim = rows.first().map(|r| r.len()).filter(|&d| d > 0).ok_or_else(|| {
            DetectorError::NotEnoughData("dense block: no training vectors".into())
        })?;
        if let Some(bad) = rows.iter().position(|r| r.len() != dim) {
            return Err(DetectorError::Invalid(format!(
                "dense block: training vector {bad} has {} dims, expected {dim}",
                rows[bad].len()
            )));
        }
        let n = rows.len() as f64;
        let mut mean = vec![0f64; dim];
        for r in rows {
            mean.iter_mut().zip(r.iter()).for_each(|(m, &x)| *m += x as f64 / n);
        }
        let mut var = vec![0f64; dim];
        for r in rows {
            var.iter_mut()
                .zip(r.iter().zip(&mean))
                .for_each(|(v, (&x, m))| *v += (x as f64 - m).powi(2) / n);
        }
        Ok(DenseSpec {
            tiers,
            dim,
            mean: mean.iter().map(|&m| m as f32).collect(),
            sd: var.iter().map(|&v| (v.sqrt() as f32).max(1e-6)).collect(),
            scale: block_scale / (dim as f32).sqrt(),
        })
    }

    /// Append the standardised vector at indices `offset..offset+dim` (after every sparse block,
    /// so indices stay sorted). A vector of the wrong length is an error, not a silent truncation.
    pub fn append(&self, x: &mut SparseVec, v: &[f32], offset: u32) -> Result<()> {
        if v.len() != self.dim {
            return Err(DetectorError::Invalid(format!(
                "neural features have {} dims, the profile's {:?} block has {}",
                v.len(),
                self.tiers,
                self.dim
            )));
        }
        for (j, &val) in v.iter().enumerate() {
            let z = ((val - self.mean[j]) / self.sd[j]).clamp(-6.0, 6.0) * self.scale;
            if z != 0.0 {
                x.idx.push(offset + j as u32);
                x.val.push(z);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardises_and_appends_after_offset() {
        let rows: Vec<Vec<f32>> = vec![vec![0.0, 10.0], vec![2.0, 10.0], vec![4.0, 10.0]];
        let refs: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
        let s = DenseSpec::fit(vec![TIER_EMBEDDING.into()], &refs, 1.0).unwrap();
        assert_eq!(s.dim, 2);
        assert!((s.mean[0] - 2.0).abs() < 1e-6 && (s.sd[0] - (8.0f32 / 3.0).sqrt()).abs() < 1e-5);
        let mut x = SparseVec::default();
        s.append(&mut x, &[4.0, 10.0], 100).unwrap();
        // dim 1 is constant: its standardised value is 0 and is not stored
        assert_eq!(x.idx, vec![100]);
        let expect = (2.0 / (8.0f32 / 3.0).sqrt()) / 2f32.sqrt();
        assert!((x.val[0] - expect).abs() < 1e-5, "{} vs {expect}", x.val[0]);
        assert!(s.append(&mut x, &[1.0], 100).is_err());
        assert!(DenseSpec::fit(vec![], &[&[1.0, 2.0], &[1.0]], 1.0).is_err());
    }
}
