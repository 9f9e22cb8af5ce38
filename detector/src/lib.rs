//! pedigree's detection engine: per-text features, profiles (fitted fingerprints of an upstream
//! model family), calibration, per-text scores, set-level verdicts and evidence.
//!
//! Pure library: no HTTP, no storage. The `server` crate wraps it.

mod api_types;
pub mod error;
pub mod profile;

pub use api_types::*;
pub use error::DetectorError;
pub use profile::{Profile, ProfileMeta, VerdictOptions};

pub type Result<T, E = DetectorError> = std::result::Result<T, E>;
