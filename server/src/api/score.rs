//! `POST /v1/score`.

use crate::audit::AuditDetail;
use crate::auth::{Need, ANALYST};
use crate::error::Json;
use crate::service::{ServiceError, ServiceResult};
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use detector::TextScore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
pub struct ScoreRequest {
    /// The texts to score (at least one, at most `--max-texts`).
    pub texts: Vec<ScoreItem>,
    /// Profile name; default: the built-in profile.
    #[serde(default)]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ScoreItem {
    /// The response text to score (non-empty, at most `--max-text-chars` characters).
    pub text: String,
    /// The prompt the text answered, when known (enables prompt-aware features).
    #[serde(default)]
    pub prompt: Option<String>,
    /// Caller's id for the text, echoed back.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub id: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreResult {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub id: Option<serde_json::Value>,
    /// `score` (log-odds), `fpr` (calibrated false-positive rate), `family`, `families`,
    /// `evidence` (with character spans) and `claims`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub score: TextScore,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreResponse {
    pub profile: String,
    pub results: Vec<ScoreResult>,
}

/// Validate a batch of texts against the configured limits.
pub fn validate_texts<'a>(
    state: &AppState,
    items: impl ExactSizeIterator<Item = (&'a str, Option<&'a str>)>,
) -> ServiceResult<()> {
    let cfg = &state.config;
    if items.len() == 0 {
        return Err(ServiceError::Invalid("`texts` must contain at least one text".into()));
    }
    if items.len() > cfg.max_texts {
        return Err(ServiceError::TooLarge(format!(
            "{} texts in one request; the limit is {}",
            items.len(),
            cfg.max_texts
        )));
    }
    for (i, (text, prompt)) in items.enumerate() {
        if text.trim().is_empty() {
            return Err(ServiceError::Invalid(format!("texts[{i}].text is empty")));
        }
        if text.chars().count() > cfg.max_text_chars {
            return Err(ServiceError::TooLarge(format!(
                "texts[{i}].text is longer than {} characters",
                cfg.max_text_chars
            )));
        }
        if prompt.is_some_and(|p| p.chars().count() > cfg.max_text_chars) {
            return Err(ServiceError::TooLarge(format!(
                "texts[{i}].prompt is longer than {} characters",
                cfg.max_text_chars
            )));
        }
    }
    Ok(())
}

/// Score one or many texts against a profile.
#[utoipa::path(
    post, path = "/v1/score", tag = "score",
    request_body = ScoreRequest,
    responses(
        (status = 200, description = "Per-text scores", body = ScoreResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid key", body = crate::error::ErrorBody),
        (status = 403, description = "Role below analyst", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown profile", body = crate::error::ErrorBody),
        (status = 413, description = "Too many texts or a text too long", body = crate::error::ErrorBody),
        (status = 422, description = "Wrong types or empty text", body = crate::error::ErrorBody),
        (status = 429, description = "Admission limit reached", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn score(
    State(state): State<AppState>,
    Need(_caller): Need<ANALYST>,
    Json(req): Json<ScoreRequest>,
) -> ServiceResult<Response> {
    validate_texts(&state, req.texts.iter().map(|t| (t.text.as_str(), t.prompt.as_deref())))?;
    let (name, profile) = state.engine.resolve(req.profile.as_deref())?;
    let _permit = state.admit()?;
    let n = req.texts.len();
    let ids: Vec<Option<serde_json::Value>> = req.texts.iter().map(|t| t.id.clone()).collect();
    let items = req.texts.into_iter().map(|t| (t.text, t.prompt)).collect();
    let scores = state.engine.score(profile, items).await?;
    metrics::counter!("pedigree_texts_scored_total").increment(n as u64);
    let results = scores
        .into_iter()
        .zip(ids)
        .enumerate()
        .map(|(index, (score, id))| ScoreResult { index, id, score })
        .collect();
    let mut resp = Json(ScoreResponse { profile: name.clone(), results }).into_response();
    resp.extensions_mut().insert(AuditDetail(serde_json::json!({"texts": n, "profile": name})));
    Ok(resp)
}
