//! Loading a detection profile from a file, or the built-in one (the CLI commands').

use std::path::Path;

use detector::Profile;

use super::{ServiceError, ServiceResult};

/// The profile at `path`, or the built-in one; the error names the file.
pub fn load(path: Option<&Path>) -> ServiceResult<Profile> {
    match path {
        Some(p) => Profile::load(p)
            .map_err(|e| ServiceError::Invalid(format!("loading profile {}: {e}", p.display()))),
        None => Profile::builtin().map_err(|e| ServiceError::Invalid(e.to_string())),
    }
}
