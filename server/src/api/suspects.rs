//! Suspects, their samples and their set-level verdicts.

use crate::api::score::validate_texts;
use crate::audit::AuditDetail;
use crate::auth::{random_base62, Need, ANALYST, VIEWER};
use crate::error::{Json, Path, Query};
use crate::service::suspects::content_hash;
pub use crate::service::suspects::{refresh_verdict, suspect_or_404, TopEvidence, VerdictResponse};
use crate::service::{ServiceError, ServiceResult};
use crate::state::AppState;
use crate::store::{NewSample, SampleRecord, SuspectOrder, SuspectRecord};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use detector::VerdictOptions;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

type ErrorBody = crate::error::ErrorBody;

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateSuspect {
    /// Display name, e.g. the rival model's name.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Profile used to score this suspect's samples (default: the built-in profile).
    #[serde(default)]
    pub profile: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// `strength` (strongest evidence first, default), `created` or `name`.
    #[serde(default)]
    pub order: SuspectOrder,
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuspectList {
    pub suspects: Vec<SuspectRecord>,
}

pub(crate) fn paging(limit: Option<i64>, offset: Option<i64>) -> ServiceResult<(i64, i64)> {
    let limit = limit.unwrap_or(100);
    let offset = offset.unwrap_or(0);
    if !(1..=1000).contains(&limit) {
        return Err(ServiceError::Invalid("`limit` must be between 1 and 1000".into()));
    }
    if offset < 0 {
        return Err(ServiceError::Invalid("`offset` must not be negative".into()));
    }
    Ok((limit, offset))
}

pub(crate) fn with_detail(resp: impl IntoResponse, detail: serde_json::Value) -> Response {
    let mut r = resp.into_response();
    r.extensions_mut().insert(AuditDetail(detail));
    r
}

/// Create a suspect.
#[utoipa::path(post, path = "/v1/suspects", tag = "suspects", request_body = CreateSuspect,
    responses((status = 201, body = SuspectRecord), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, description = "Unknown profile", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Need(_caller): Need<ANALYST>,
    Json(req): Json<CreateSuspect>,
) -> ServiceResult<Response> {
    let name = req.name.trim();
    if name.is_empty() {
        return Err(ServiceError::Invalid("`name` is empty".into()));
    }
    if name.chars().count() > 200 || req.description.chars().count() > 10_000 {
        return Err(ServiceError::Invalid(
            "`name` (200) or `description` (10000 characters) is too long".into(),
        ));
    }
    let (profile, _) = state.engine.resolve(req.profile.as_deref())?;
    let id = format!("sus_{}", random_base62(16));
    let rec = state.store.create_suspect(&id, name, &req.description, &profile).await?;
    Ok(with_detail(
        (StatusCode::CREATED, Json(rec)),
        serde_json::json!({"suspect_id": id, "name": name}),
    ))
}

/// List suspects; by default the strongest evidence first (dashboards).
#[utoipa::path(get, path = "/v1/suspects", tag = "suspects", params(ListParams),
    responses((status = 200, body = SuspectList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Query(p): Query<ListParams>,
) -> ServiceResult<Json<SuspectList>> {
    let (limit, offset) = paging(p.limit, p.offset)?;
    let suspects = state.store.list_suspects(p.order, limit, offset).await?;
    Ok(Json(SuspectList { suspects }))
}

/// Get a suspect.
#[utoipa::path(get, path = "/v1/suspects/{id}", tag = "suspects", params(("id" = String, Path)),
    responses((status = 200, body = SuspectRecord), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Path(id): Path<String>,
) -> ServiceResult<Json<SuspectRecord>> {
    Ok(Json(suspect_or_404(state.store.as_ref(), &id).await?))
}

/// Delete a suspect and its samples.
#[utoipa::path(delete, path = "/v1/suspects/{id}", tag = "suspects", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Need(_caller): Need<ANALYST>,
    Path(id): Path<String>,
) -> ServiceResult<Response> {
    if !state.store.delete_suspect(&id).await? {
        return Err(ServiceError::not_found(format!("suspect `{id}`")));
    }
    Ok(with_detail(StatusCode::NO_CONTENT, serde_json::json!({"suspect_id": id})))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SampleIn {
    pub text: String,
    #[serde(default)]
    pub prompt: Option<String>,
    /// Where the sample came from (default: `api:<key id>`).
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SamplesIn {
    /// A bare JSON array of samples.
    List(Vec<SampleIn>),
    /// `{"samples": [...], "source": "..."}`.
    Object {
        samples: Vec<SampleIn>,
        #[serde(default)]
        source: Option<String>,
    },
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SampleAdded {
    pub index: usize,
    /// Id of the new sample; `null` for a duplicate.
    pub id: Option<i64>,
    pub duplicate: bool,
    pub content_hash: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AddSamplesResponse {
    pub added: usize,
    pub duplicates: usize,
    pub samples: Vec<SampleAdded>,
}

fn json_error(e: serde_json::Error, what: &str) -> ServiceError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ServiceError::Malformed(format!("malformed JSON{what}: {e}"))
        }
        Category::Data => ServiceError::Invalid(format!("invalid samples{what}: {e}")),
    }
}

/// Parse an add-samples body: JSON (array or `{"samples": [...]}`) or JSONL (one sample a line).
pub fn parse_samples(
    headers: &HeaderMap,
    body: &[u8],
) -> ServiceResult<(Vec<SampleIn>, Option<String>)> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    crate::error::reject_nul(body)?;
    match ct.as_str() {
        "application/json" => match serde_json::from_slice::<SamplesIn>(body) {
            Ok(SamplesIn::List(v)) => Ok((v, None)),
            Ok(SamplesIn::Object { samples, source }) => Ok((samples, source)),
            Err(e) => match serde_json::from_slice::<serde_json::Value>(body) {
                Err(e) => Err(json_error(e, "")),
                Ok(_) => Err(ServiceError::Invalid(format!(
                    "expected a JSON array of samples or {{\"samples\": [...]}} with a string `text` in each: {e}"
                ))),
            },
        },
        "application/x-ndjson" | "application/jsonl" | "application/x-jsonlines" | "application/jsonlines" => {
            let text = std::str::from_utf8(body).map_err(|_| ServiceError::Malformed("JSONL body is not UTF-8".into()))?;
            let mut out = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                out.push(serde_json::from_str::<SampleIn>(line).map_err(|e| json_error(e, &format!(" on line {}", i + 1)))?);
            }
            Ok((out, None))
        }
        "" => Err(ServiceError::UnsupportedMediaType(
            "missing Content-Type: send application/json or application/x-ndjson".into(),
        )),
        other => Err(ServiceError::UnsupportedMediaType(format!(
            "unsupported Content-Type `{other}`: send application/json or application/x-ndjson"
        ))),
    }
}

/// Add samples (JSON array or JSONL upload); deduplicated by content hash, scored, and stored.
#[utoipa::path(post, path = "/v1/suspects/{id}/samples", tag = "suspects", params(("id" = String, Path)),
    request_body(content = SamplesIn, content_type = "application/json", description = "Or application/x-ndjson: one sample object per line"),
    responses((status = 201, body = AddSamplesResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn add_samples(
    State(state): State<AppState>,
    Need(caller): Need<ANALYST>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ServiceResult<Response> {
    let body = body?;
    let suspect = suspect_or_404(state.store.as_ref(), &id).await?;
    let (samples, default_source) = parse_samples(&headers, &body)?;
    validate_texts(&state, samples.iter().map(|s| (s.text.as_str(), s.prompt.as_deref())))?;
    let (_, profile) = state.engine.resolve(Some(&suspect.profile))?;
    let permit = state.admit()?;
    let items = samples.iter().map(|s| (s.text.clone(), s.prompt.clone())).collect();
    let scores = state.engine.score(profile, items).await?;
    drop(permit);
    let default_source = default_source.unwrap_or_else(|| format!("api:{}", caller.key_id));
    let mut hashes = Vec::with_capacity(samples.len());
    let mut new = Vec::with_capacity(samples.len());
    for (s, score) in samples.into_iter().zip(scores) {
        let h = content_hash(&s.text, s.prompt.as_deref());
        hashes.push(h.clone());
        new.push(NewSample {
            content_hash: h,
            text: s.text,
            prompt: s.prompt,
            source: s.source.unwrap_or_else(|| default_source.clone()),
            score: Some(
                serde_json::to_value(score).map_err(|e| ServiceError::Internal(e.to_string()))?,
            ),
        });
    }
    let outcome = state.store.add_samples(&id, new).await?;
    let added = outcome.ids.iter().filter(|i| i.is_some()).count();
    let out = AddSamplesResponse {
        added,
        duplicates: outcome.ids.len() - added,
        samples: outcome
            .ids
            .iter()
            .zip(hashes)
            .enumerate()
            .map(|(index, (id, content_hash))| SampleAdded {
                index,
                id: *id,
                duplicate: id.is_none(),
                content_hash,
            })
            .collect(),
    };
    if added > 0 {
        if let Err(e) =
            refresh_verdict(state.store.as_ref(), &state.engine, &id, VerdictOptions::default())
                .await
        {
            tracing::info!(suspect = %id, error = %e, "verdict not refreshed");
        }
    }
    let detail =
        serde_json::json!({"suspect_id": id, "added": out.added, "duplicates": out.duplicates});
    Ok(with_detail((StatusCode::CREATED, Json(out)), detail))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SampleList {
    pub samples: Vec<SampleRecord>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PageParams {
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub offset: Option<i64>,
}

/// List a suspect's samples (with source, time and stored score).
#[utoipa::path(get, path = "/v1/suspects/{id}/samples", tag = "suspects", params(("id" = String, Path), PageParams),
    responses((status = 200, body = SampleList), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_samples(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Path(id): Path<String>,
    Query(p): Query<PageParams>,
) -> ServiceResult<Json<SampleList>> {
    let (limit, offset) = paging(p.limit, p.offset)?;
    suspect_or_404(state.store.as_ref(), &id).await?;
    Ok(Json(SampleList { samples: state.store.list_samples(&id, limit, offset).await? }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct VerdictParams {
    /// Significance level (default 0.01).
    #[serde(default)]
    pub alpha: Option<f64>,
    /// Number of top samples returned as evidence (default 5, max 100).
    #[serde(default)]
    pub top: Option<usize>,
}

/// The set-level view of a suspect: identity evidence first (explicit self-identification by
/// family, with examples; style cues apart), then the style verdict, which is triage (always
/// `undecided`: rank and percentile among known independent models, smallest supported p-value,
/// p-value, N, style-nearest family, top evidence) and the latest membership result, the exact
/// test that decides.
#[utoipa::path(get, path = "/v1/suspects/{id}/verdict", tag = "suspects", params(("id" = String, Path), VerdictParams),
    responses((status = 200, body = VerdictResponse), (status = 404, body = ErrorBody),
              (status = 409, description = "No samples yet", body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn verdict(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Path(id): Path<String>,
    Query(p): Query<VerdictParams>,
) -> ServiceResult<Json<VerdictResponse>> {
    let mut opts = VerdictOptions::default();
    if let Some(a) = p.alpha {
        opts.alpha =
            VerdictOptions::check_alpha(a).map_err(|e| ServiceError::Invalid(e.to_string()))?;
    }
    if let Some(t) = p.top {
        if t > 100 {
            return Err(ServiceError::Invalid("`top` must be at most 100".into()));
        }
        opts.top = t;
    }
    let _permit = state.admit()?;
    Ok(Json(refresh_verdict(state.store.as_ref(), &state.engine, &id, opts).await?))
}
