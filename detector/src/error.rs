//! The detector's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("not a pedigree profile (bad magic bytes)")]
    NotAProfile,
    #[error("profile format version {found} is not supported by this build (it reads version {expected}); rebuild the profile with `pedigree profile build`")]
    Version { found: u32, expected: u32 },
    #[error("corrupt profile: {0}")]
    Corrupt(String),
    /// The profile needs neural features (e.g. MiniLM embeddings) that were not supplied.
    #[error("this profile needs the neural tier(s) {tiers:?}: compute them with the `models` crate (weights: `scripts/fetch-models.sh`) and pass them to score_with")]
    TierMissing { tiers: Vec<String> },
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A verdict's significance level outside (0, 0.5) ([`crate::VerdictOptions::check_alpha`]).
    #[error("alpha must be in (0, 0.5), got {0}")]
    Alpha(f64),
    #[error("not enough data: {0}")]
    NotEnoughData(String),
    #[error(transparent)]
    Dataset(#[from] datasets::DatasetError),
}
