//! pedigree's detection engine: per-text features, profiles (fitted fingerprints of an upstream
//! model family), calibration, per-text scores, set-level verdicts and evidence.
//!
//! Pure library: no HTTP, no storage. The `server` crate wraps it.

pub mod aligned;
mod api_types;
pub mod audit;
pub mod bench;
pub mod calibration;
pub mod dense;
pub mod error;
pub mod features;
pub mod identity;
pub mod linear;
pub mod profile;
pub mod sequential;
pub mod text;

pub use api_types::*;
pub use error::DetectorError;
pub use profile::{FitOptions, LabeledText, Profile, ProfileMeta, VerdictOptions};

pub type Result<T, E = DetectorError> = std::result::Result<T, E>;
