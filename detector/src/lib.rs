//! pedigree's detection engine: per-text features, profiles (fitted fingerprints of an upstream
//! model family), calibration, per-text scores, set-level verdicts and evidence.
//!
//! Pure library: no HTTP, no storage. The `server` crate wraps it. Where each concept lives:
//!
//! | concept | module |
//! | --- | --- |
//! | per-text features (lexical n-grams, style), tokens | [`features`], [`text`], [`identity`] |
//! | the profile file, fitting, per-text scores, evidence | [`profile`] (`format`, `fit`, `score`, `evidence`) |
//! | calibration data and its nulls (LOMO scores, [`calibration::SetNull`]) | [`calibration`], [`aligned`] |
//! | every set-level decision (style triage, sequential looks, error checks) | [`verdict`] |
//! | the served-output membership test (exact sign-flip, exchangeability guard, evidence spans) | [`membership`] |
//! | corpus audits (mixture proportion of upstream-like texts) | [`audit`] |
//! | the bench protocol's detector side | [`bench`] |
//! | result types shared with the server (`TextScore`, `Verdict`, `Decision`) | crate root |

pub mod aligned;
mod api_types;
pub mod audit;
pub mod bench;
pub mod calibration;
pub mod dense;
pub mod desensitize;
pub mod error;
pub mod features;
pub mod identity;
pub mod linear;
pub mod membership;
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
