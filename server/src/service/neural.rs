//! The neural tier as the CLI and the server use it: MiniLM sentence embeddings (the `models`
//! crate, candle on CPU) for profiles whose tiers include `minilm-embedding`, with an error that
//! says which weights are missing and how to fetch them.

use crate::service::{ServiceError, ServiceResult};
use detector::dense::{DenseTable, TIER_EMBEDDING};
use models::{Device, Embedder, ModelPaths};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Tokens per text the embedding tier reads. The opening of a response carries most of its
/// style, and MiniLM's cost grows faster than linearly with length: 128 tokens embed ~2× faster
/// than the model's 256 on this machine. Part of the tier's definition: profiles fitted with it
/// must be scored with it.
pub const EMBED_MAX_TOKENS: usize = 128;

/// Loaded neural models.
pub struct NeuralTier {
    embedder: Embedder,
}

impl NeuralTier {
    /// Load from `$PEDIGREE_MODELS_DIR` or `.cache/models`; a missing file is an error naming it
    /// and the fetch command.
    pub fn load() -> Result<Self, models::ModelError> {
        Self::load_from(&ModelPaths::from_env_or_default())
    }

    pub fn load_from(paths: &ModelPaths) -> Result<Self, models::ModelError> {
        let embedder =
            Embedder::load(&paths.minilm_dir, &Device::Cpu)?.with_max_tokens(EMBED_MAX_TOKENS);
        Ok(Self { embedder })
    }

    /// The concatenated vectors of `tiers` for each text (the only neural tier so far is the
    /// embedding; an unknown tier is an error, never silently skipped).
    pub fn vectors(&self, tiers: &[String], texts: &[&str]) -> ServiceResult<Vec<Vec<f32>>> {
        if let Some(t) = tiers.iter().find(|t| *t != TIER_EMBEDDING) {
            return Err(ServiceError::Unavailable(format!(
                "this build cannot compute the neural tier {t:?} (it knows {TIER_EMBEDDING:?})"
            )));
        }
        self.embedder.embed(texts).map_err(|e| ServiceError::Internal(format!("embedding: {e}")))
    }

    /// Vectors of every distinct text, in chunks (so `progress` can report), cached on disk under
    /// `cache` by a hash of the model, the token limit and the texts: a second bench run over the
    /// same data reads them back instead of spending minutes on CPU inference.
    pub fn table<'a>(
        &self,
        tiers: &[String],
        texts: impl IntoIterator<Item = &'a str>,
        cache: Option<&Path>,
        progress: &dyn Fn(usize, usize),
    ) -> ServiceResult<DenseTable> {
        let mut uniq: Vec<&str> = texts.into_iter().collect();
        uniq.sort_unstable();
        uniq.dedup();
        let mut h = Sha256::new();
        h.update(format!("all-minilm-l6-v2|{EMBED_MAX_TOKENS}|{tiers:?}|").as_bytes());
        for t in &uniq {
            h.update(t.as_bytes());
            h.update([0u8]);
        }
        let file = cache.map(|c| c.join(format!("{}.f32", &hex::encode(h.finalize())[..24])));
        let rows = match file.as_deref().and_then(|f| read_rows(f, uniq.len())) {
            Some(rows) => rows,
            None => {
                let mut rows = Vec::with_capacity(uniq.len());
                for chunk in uniq.chunks(256) {
                    rows.extend(self.vectors(tiers, chunk)?);
                    progress(rows.len(), uniq.len());
                }
                if let Some(f) = &file {
                    write_rows(f, &rows).map_err(|e| {
                        ServiceError::Internal(format!(
                            "caching embeddings in {}: {e}",
                            f.display()
                        ))
                    })?;
                }
                rows
            }
        };
        Ok(uniq.into_iter().map(str::to_string).zip(rows).collect())
    }
}

/// Score texts with `profile` in the CLI: lexical profiles directly, profiles with neural tiers
/// with their vectors from `tier`, loaded on first need and kept by the caller across batches
/// (the server does the same through [`NeuralService`]).
pub fn score_batch(
    profile: &detector::Profile,
    tier: &mut Option<NeuralTier>,
    texts: &[(&str, Option<&str>)],
) -> ServiceResult<Vec<detector::TextScore>> {
    let needed = profile.neural_tiers();
    if needed.is_empty() {
        return Ok(profile.score_batch(texts));
    }
    if tier.is_none() {
        *tier = Some(NeuralTier::load().map_err(|e| {
            ServiceError::Unavailable(format!(
                "profile {:?} needs the neural tier(s) {needed:?}: {e}",
                profile.meta().name
            ))
        })?);
    }
    let plain: Vec<&str> = texts.iter().map(|(t, _)| *t).collect();
    let dense = tier.as_ref().expect("loaded above").vectors(needed, &plain)?;
    profile.score_batch_with(texts, Some(&dense)).map_err(|e| ServiceError::Invalid(e.to_string()))
}

/// Embedding cache: `$PEDIGREE_EMBED_CACHE`, else `.cache/embeddings` beside the model cache.
pub fn default_cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("PEDIGREE_EMBED_CACHE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    ModelPaths::default_root()
        .parent()
        .map(|p| p.join("embeddings"))
        .unwrap_or_else(|| PathBuf::from(".cache/embeddings"))
}

/// The cached rows, or `None` when there is no usable cache file (then the vectors are computed).
fn read_rows(path: &Path, n: usize) -> Option<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path).ok()?;
    if n == 0 || bytes.len() % (4 * n) != 0 {
        return None;
    }
    let dim = bytes.len() / 4 / n;
    Some(
        bytes
            .chunks_exact(4 * dim)
            .map(|r| {
                r.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            })
            .collect(),
    )
}

fn write_rows(path: &Path, rows: &[Vec<f32>]) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut buf = Vec::with_capacity(rows.len() * rows.first().map_or(0, |r| r.len()) * 4);
    rows.iter().flatten().for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
    // temp file + rename: an interrupted run never leaves a truncated cache behind
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &buf)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The embedding tier behind a text-embeddings-inference style queue (tokenizer worker, batches
/// under a token budget, one model thread, `Overloaded` at once when full), for the server: the
/// async runtime only awaits replies.
pub struct NeuralService {
    queue: models::InferenceQueue<Embedder>,
}

impl NeuralService {
    pub fn load() -> Result<Self, models::ModelError> {
        let tier = NeuralTier::load()?;
        let cfg = models::QueueConfig { max_batch_tokens: 8192, ..Default::default() };
        Ok(Self { queue: models::InferenceQueue::new(tier.embedder, cfg) })
    }

    /// Embeddings of `texts`, in order. A full queue answers `Overloaded` at once (→ 429).
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, models::ModelError> {
        let mut rx = Vec::with_capacity(texts.len());
        for t in texts {
            let (tx, r) = tokio::sync::oneshot::channel();
            self.queue.submit_with(t.clone(), move |res| {
                let _ = tx.send(res);
            })?;
            rx.push(r);
        }
        let mut out = Vec::with_capacity(rx.len());
        for r in rx {
            out.push(r.await.map_err(|_| models::ModelError::Closed)??);
        }
        Ok(out)
    }
}
