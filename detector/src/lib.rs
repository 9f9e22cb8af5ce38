//! pedigree's detection engine: per-text features, profiles (fitted fingerprints of an upstream
//! model family), calibration, per-text scores, set-level verdicts ([`verdict`]) and evidence.
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
pub mod text;
mod time;
pub mod verdict;

pub use api_types::*;
pub use error::DetectorError;
pub use profile::{FitOptions, LabeledText, Profile, ProfileMeta};
/// Group-sequential looks, at their historical path (they live in [`verdict::sequential`]).
pub use verdict::sequential;
pub use verdict::VerdictOptions;

pub type Result<T, E = DetectorError> = std::result::Result<T, E>;
