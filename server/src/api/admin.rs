//! Admin routes (audit log, API keys) and `whoami`.

use crate::audit::AuditDetail;
use crate::auth::{Caller, Need, ADMIN};
use crate::error::{Json, Path, Query};
use crate::service::{ServiceError, ServiceResult};
use crate::state::AppState;
use crate::store::{ApiKeyRecord, AuditEntry, AuditQuery, Role};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

type ErrorBody = crate::error::ErrorBody;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
}

/// Query the audit log (who did what, when, with what outcome), newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, body = AuditList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn audit(
    State(state): State<AppState>,
    Need(_caller): Need<ADMIN>,
    Query(q): Query<AuditQuery>,
) -> ServiceResult<Json<AuditList>> {
    if q.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        return Err(ServiceError::Invalid("`limit` must be between 1 and 1000".into()));
    }
    state.audit.flush().await;
    Ok(Json(AuditList { entries: state.store.list_audit(q).await? }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<ApiKeyRecord>,
}

/// List API keys (never the keys themselves).
#[utoipa::path(get, path = "/v1/keys", tag = "admin",
    responses((status = 200, body = KeyList), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_keys(
    State(state): State<AppState>,
    Need(_caller): Need<ADMIN>,
) -> ServiceResult<Json<KeyList>> {
    Ok(Json(KeyList { keys: state.store.list_keys().await? }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateKey {
    pub role: Role,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCreated {
    #[serde(flatten)]
    pub record: ApiKeyRecord,
    /// The key itself: shown once, stored only as its sha256.
    pub key: String,
}

/// Create an API key (same as `pedigree keys create`).
#[utoipa::path(post, path = "/v1/keys", tag = "admin", request_body = CreateKey,
    responses((status = 201, body = KeyCreated), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    Need(_caller): Need<ADMIN>,
    Json(req): Json<CreateKey>,
) -> ServiceResult<Response> {
    let name = req.name.unwrap_or_else(|| format!("{}-key", req.role.as_str()));
    let (record, key) = crate::auth::create_key(state.store.as_ref(), &name, req.role).await?;
    let detail = serde_json::json!({"key_id": record.id, "role": record.role.as_str()});
    let mut resp = (StatusCode::CREATED, Json(KeyCreated { record, key })).into_response();
    resp.extensions_mut().insert(AuditDetail(detail));
    Ok(resp)
}

/// Revoke an API key.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "admin", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    Need(_caller): Need<ADMIN>,
    Path(id): Path<String>,
) -> ServiceResult<Response> {
    if !state.store.revoke_key(&id).await? {
        return Err(ServiceError::not_found(format!("active key `{id}`")));
    }
    state.keys.clear();
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    pub key_id: String,
    pub name: String,
    pub role: Role,
}

/// The caller's key id, name and role.
#[utoipa::path(get, path = "/v1/whoami", tag = "admin",
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn whoami(caller: Caller) -> ServiceResult<Json<WhoAmI>> {
    Ok(Json(WhoAmI { key_id: caller.key_id, name: caller.name, role: caller.role }))
}
