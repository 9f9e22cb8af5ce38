//! Detection profiles: loading one from a file or the built-in one, and fitting one from a
//! labelled dataset (`POST /v1/profiles/build` and `pedigree profile build FILE`).

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

/// Fit a profile on labelled answers, split by the project's one policy
/// ([`datasets::assign_split`]: `Test` answers calibrate). `opts` says what to fit; its
/// `dataset` metadata becomes `source` and the split's counts.
pub fn fit_labelled(
    rows: &[datasets::LabelledAnswer],
    source: &str,
    mut opts: detector::FitOptions,
) -> ServiceResult<Profile> {
    let side = |split: datasets::Split| -> Vec<detector::LabeledText<'_>> {
        rows.iter()
            .filter(|r| r.split == split)
            .map(|r| detector::LabeledText {
                text: &r.text,
                model: &r.model,
                family: &r.family,
                dense: None,
                prompt: r.prompt.as_deref(),
            })
            .collect()
    };
    let (train, calib) = (side(datasets::Split::Train), side(datasets::Split::Test));
    opts.dataset = serde_json::json!({"source": source, "lines": rows.len(), "train": train.len(), "calib": calib.len()});
    Profile::fit(&train, &calib, &opts)
        .map_err(|e| ServiceError::Invalid(format!("profile fit failed: {e}")))
}
