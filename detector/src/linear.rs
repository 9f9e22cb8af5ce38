//! Multinomial logistic regression on sparse features, trained by SGD with L2 regularisation
//! (the weight-scaling trick of Bottou 2012, "Stochastic Gradient Descent Tricks", §5.1, keeps each
//! update O(non-zeros) instead of O(dimension)), and its int8 storage form for fast scoring.

use crate::features::SparseVec;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// Optimiser settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainOptions {
    pub epochs: usize,
    /// L2 penalty (per sample), as in scikit-learn's `SGDClassifier(alpha=…)`.
    pub alpha: f32,
    /// Initial learning rate; decays as eta0 / (1 + eta0 * alpha * t).
    pub eta0: f32,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self { epochs: 12, alpha: 1e-4, eta0: 0.5, seed: 7 }
    }
}

/// A weight matrix stored feature-major (`dim × k`), so one hashed feature touches one row.
#[derive(Debug, Clone)]
pub struct Linear {
    pub dim: usize,
    pub k: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

fn softmax_inplace(z: &mut [f32]) {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut s = 0.0;
    for v in z.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    for v in z.iter_mut() {
        *v /= s;
    }
}

impl Linear {
    /// Fit on `(x, class)` pairs; `weights` rebalance classes (one per class).
    pub fn train(
        xs: &[&SparseVec],
        ys: &[usize],
        k: usize,
        dim: usize,
        class_weight: &[f32],
        o: &TrainOptions,
    ) -> Linear {
        let mut v = vec![0f32; dim * k];
        let mut b = vec![0f32; k];
        let mut scale = 1.0f32;
        let mut order: Vec<usize> = (0..xs.len()).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(o.seed);
        let mut z = vec![0f32; k];
        let mut t = 0f32;
        for _ in 0..o.epochs {
            order.shuffle(&mut rng);
            for &i in &order {
                let x = xs[i];
                let eta = o.eta0 / (1.0 + o.eta0 * o.alpha * t);
                t += 1.0;
                z.copy_from_slice(&b);
                for (&f, &xv) in x.idx.iter().zip(&x.val) {
                    let row = &v[f as usize * k..f as usize * k + k];
                    for c in 0..k {
                        z[c] += scale * row[c] * xv;
                    }
                }
                softmax_inplace(&mut z);
                let cw = class_weight[ys[i]];
                for (c, p) in z.iter_mut().enumerate() {
                    *p = cw * (*p - if c == ys[i] { 1.0 } else { 0.0 });
                }
                // Shrink first (L2), then take the gradient step on the non-zeros only.
                scale *= 1.0 - eta * o.alpha;
                let step = eta / scale;
                for (&f, &xv) in x.idx.iter().zip(&x.val) {
                    let row = &mut v[f as usize * k..f as usize * k + k];
                    for c in 0..k {
                        row[c] -= step * z[c] * xv;
                    }
                }
                for c in 0..k {
                    b[c] -= eta * 0.1 * z[c];
                }
                if scale < 1e-4 {
                    v.iter_mut().for_each(|w| *w *= scale);
                    scale = 1.0;
                }
            }
        }
        v.iter_mut().for_each(|w| *w *= scale);
        Linear { dim, k, w: v, b }
    }

    /// Quantise to int8 rows with one f32 scale per row.
    pub fn quantize(&self) -> QLinear {
        let k = self.k;
        let mut scale = vec![0f32; self.dim];
        let mut q = vec![0i8; self.dim * k];
        for f in 0..self.dim {
            let row = &self.w[f * k..f * k + k];
            let m = row.iter().fold(0f32, |a, &x| a.max(x.abs()));
            if m > 0.0 {
                scale[f] = m / 127.0;
                for c in 0..k {
                    q[f * k + c] = (row[c] / scale[f]).round().clamp(-127.0, 127.0) as i8;
                }
            }
        }
        QLinear { dim: self.dim, k, scale, q, b: self.b.clone() }
    }
}

/// The stored form: int8 weights with per-row scales (4× smaller and cache-friendlier than f32;
/// the rounding error, ≤ 0.4% of a row's largest weight, is far below the model's own noise).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QLinear {
    pub dim: usize,
    pub k: usize,
    pub scale: Vec<f32>,
    pub q: Vec<i8>,
    pub b: Vec<f32>,
}

impl QLinear {
    /// Class logits for one sparse vector.
    #[inline]
    pub fn logits(&self, x: &SparseVec, z: &mut Vec<f32>) {
        z.clear();
        z.extend_from_slice(&self.b);
        let k = self.k;
        for (&f, &xv) in x.idx.iter().zip(&x.val) {
            let f = f as usize;
            let s = self.scale[f] * xv;
            if s == 0.0 {
                continue;
            }
            let row = &self.q[f * k..f * k + k];
            for (zc, &w) in z.iter_mut().zip(row) {
                *zc += s * w as f32;
            }
        }
    }

    /// One row of weights, dequantised.
    pub fn row(&self, f: usize) -> impl Iterator<Item = f32> + '_ {
        let s = self.scale[f];
        self.q[f * self.k..(f + 1) * self.k].iter().map(move |&w| s * w as f32)
    }

    pub fn softmax(z: &mut [f32]) {
        softmax_inplace(z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sv(pairs: &[(u32, f32)]) -> SparseVec {
        SparseVec {
            idx: pairs.iter().map(|p| p.0).collect(),
            val: pairs.iter().map(|p| p.1).collect(),
        }
    }

    #[test]
    fn learns_a_separable_three_class_problem() {
        // Class c is marked by feature c (plus shared noise feature 9).
        let data: Vec<(SparseVec, usize)> =
            (0..90).map(|i| (sv(&[((i % 3) as u32, 1.0), (9, 0.5)]), i % 3)).collect();
        let xs: Vec<&SparseVec> = data.iter().map(|d| &d.0).collect();
        let ys: Vec<usize> = data.iter().map(|d| d.1).collect();
        let m = Linear::train(
            &xs,
            &ys,
            3,
            10,
            &[1.0; 3],
            &TrainOptions { epochs: 20, ..Default::default() },
        );
        let q = m.quantize();
        let mut z = Vec::new();
        for c in 0..3 {
            q.logits(&sv(&[(c as u32, 1.0), (9, 0.5)]), &mut z);
            QLinear::softmax(&mut z);
            assert!(z[c] > 0.9, "class {c}: {z:?}");
        }
    }

    #[test]
    fn quantisation_error_is_small() {
        let m = Linear { dim: 2, k: 3, w: vec![0.5, -1.0, 0.25, 0.0, 0.0, 0.0], b: vec![0.0; 3] };
        let q = m.quantize();
        let r: Vec<f32> = q.row(0).collect();
        for (a, b) in r.iter().zip(&m.w[..3]) {
            assert!((a - b).abs() <= 1.0 / 127.0 / 2.0 + 1e-6, "{a} vs {b}");
        }
        assert_eq!(q.row(1).collect::<Vec<_>>(), vec![0.0; 3]);
    }
}
