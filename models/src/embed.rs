//! all-MiniLM-L6-v2 sentence embeddings (BERT encoder, masked mean pooling,
//! L2 normalisation), as sentence-transformers computes them.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;

use crate::bert::Bert;
use std::path::Path;
use tokenizers::Tokenizer;

use crate::paths::check_minilm_dir;
use crate::queue::BatchModel;
use crate::{ModelError, Result};

/// Output dimension of all-MiniLM-L6-v2.
pub const EMBEDDING_DIM: usize = 384;
/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2 (tokens, incl. [CLS]/[SEP]).
pub const MINILM_MAX_TOKENS: usize = 256;

/// Sentence embedder over a BERT checkpoint in hub layout.
pub struct Embedder {
    model: Bert,
    tokenizer: Tokenizer,
    device: Device,
    max_tokens: usize,
    /// Padded-token budget per forward pass in [`Embedder::embed`].
    pub batch_tokens: usize,
}

impl Embedder {
    /// Load `config.json`, `tokenizer.json` and `model.safetensors` from `dir`
    /// (the Hugging Face hub layout of `sentence-transformers/all-MiniLM-L6-v2`).
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        check_minilm_dir(dir)?;
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read_to_string(&p).map_err(|source| ModelError::Io { path: p, source })
        };
        let config: Config = serde_json::from_str(&read("config.json")?)
            .map_err(|e| ModelError::Config(format!("config.json: {e}")))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))?;
        // The shipped tokenizer.json pads every input to 128: we pad ourselves
        // (to the longest text of a batch) and mask the pooling.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: MINILM_MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(ModelError::from)?;
        // SAFETY-free: `from_mmaped_safetensors` is unsafe, read into memory instead.
        let weights = std::fs::read(dir.join("model.safetensors"))
            .map_err(|source| ModelError::Io { path: dir.join("model.safetensors"), source })?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, device)?;
        let model = Bert::load(vb, &config)?;
        Ok(Self {
            model,
            tokenizer,
            device: device.clone(),
            max_tokens: MINILM_MAX_TOKENS,
            batch_tokens: 8192,
        })
    }

    /// Truncate inputs to `n` tokens (at most [`MINILM_MAX_TOKENS`]): the start of a response
    /// carries most of its style, and attention cost grows with length.
    pub fn with_max_tokens(mut self, n: usize) -> Self {
        self.max_tokens = n.clamp(2, MINILM_MAX_TOKENS);
        self
    }

    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Token ids of one text ([CLS] … [SEP], truncated to `max_tokens`, 256 by default).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.tokenizer.encode(text, true)?;
        let mut ids = enc.get_ids().to_vec();
        if ids.len() > self.max_tokens {
            // keep the closing [SEP], as the tokenizer's own truncation does
            let sep = ids[ids.len() - 1];
            ids.truncate(self.max_tokens);
            ids[self.max_tokens - 1] = sep;
        }
        Ok(ids)
    }

    /// Embeddings (L2-normalised, 384 dims) of `texts`, in order. Texts are
    /// sorted by length and run in padded batches under `batch_tokens`.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = texts.iter().map(|t| self.encode(t)).collect::<Result<Vec<_>>>()?;
        self.embed_ids_sorted(&ids)
    }

    fn embed_ids_sorted(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out = vec![Vec::new(); ids.len()];
        let mut start = 0;
        while start < order.len() {
            // longest first: the batch width is the first item's length
            let width = ids[order[start]].len().max(1);
            let n = (self.batch_tokens / width).max(1).min(order.len() - start);
            let batch: Vec<&[u32]> =
                order[start..start + n].iter().map(|&i| ids[i].as_slice()).collect();
            for (k, e) in self.embed_batch(&batch)?.into_iter().enumerate() {
                out[order[start + k]] = e;
            }
            start += n;
        }
        Ok(out)
    }

    /// One forward pass over token-id rows, right-padded to the longest.
    pub fn embed_batch(&self, rows: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let b = rows.len();
        let t = rows.iter().map(|r| r.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0u32; b * t];
        let mut mask = vec![0u32; b * t];
        for (i, r) in rows.iter().enumerate() {
            ids[i * t..i * t + r.len()].copy_from_slice(r);
            mask[i * t..i * t + r.len()].iter_mut().for_each(|m| *m = 1);
        }
        let ids = Tensor::from_vec(ids, (b, t), &self.device)?;
        let mask = Tensor::from_vec(mask, (b, t), &self.device)?;
        let hidden = self.model.forward(&ids, &mask)?; // [b, t, h]
        let maskf = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // [b, t, 1]
        let summed = hidden.broadcast_mul(&maskf)?.sum(1)?; // [b, h]
        let counts = maskf.sum(1)?.clamp(1e-9f32, f32::MAX)?; // [b, 1]
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}

impl BatchModel for Embedder {
    type Request = String;
    type Input = Vec<u32>;
    type Output = Vec<f32>;

    fn prepare(&self, text: &String) -> Result<Vec<u32>> {
        self.encode(text)
    }

    fn cost(input: &Vec<u32>) -> usize {
        input.len()
    }

    fn run(&self, inputs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        self.embed_ids_sorted(inputs)
    }
}
