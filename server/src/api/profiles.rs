//! Profiles: list, get, upload a profile file, delete, build from a dataset (as a job).

use crate::api::jobs::{stream_upload, JobCreated};
use crate::audit::AuditDetail;
use crate::auth::{Need, ADMIN, VIEWER};
use crate::error::{Json, Path, Query};
use crate::service::engine::BUILTIN_ALIASES;
use crate::service::jobs::{JobSpec, ProfileBuildParams};
use crate::service::{ServiceError, ServiceResult};
use crate::state::AppState;
use crate::store::ProfileRecord;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

type ErrorBody = crate::error::ErrorBody;

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileList {
    /// Name of the profile used when a request names none.
    pub default: Option<String>,
    pub profiles: Vec<ProfileRecord>,
}

/// List profiles.
#[utoipa::path(get, path = "/v1/profiles", tag = "profiles",
    responses((status = 200, body = ProfileList), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
) -> ServiceResult<Json<ProfileList>> {
    let loaded = state.engine.names();
    let profiles = state
        .store
        .list_profiles()
        .await?
        .into_iter()
        .filter(|p| loaded.contains(&p.name))
        .collect();
    Ok(Json(ProfileList { default: state.engine.builtin_name().map(str::to_string), profiles }))
}

/// Get a profile's metadata (`builtin` and `default` name the built-in profile).
#[utoipa::path(get, path = "/v1/profiles/{name}", tag = "profiles", params(("name" = String, Path)),
    responses((status = 200, body = ProfileRecord), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Path(name): Path<String>,
) -> ServiceResult<Json<ProfileRecord>> {
    let (name, _) = state.engine.resolve(Some(&name))?;
    let rec = state
        .store
        .get_profile(&name)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("profile `{name}`")))?;
    Ok(Json(rec))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UploadParams {
    /// Name to store the profile under (default: the name in the profile's metadata).
    #[serde(default)]
    pub name: Option<String>,
    /// Replace an existing profile of the same name.
    #[serde(default)]
    pub replace: bool,
}

fn valid_name(name: &str) -> ServiceResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with('.');
    if !ok {
        return Err(ServiceError::Invalid(format!(
            "invalid profile name `{name}`: use 1-100 characters from A-Z a-z 0-9 . _ -"
        )));
    }
    if BUILTIN_ALIASES.contains(&name) {
        return Err(ServiceError::Conflict(format!(
            "`{name}` is reserved for the built-in profile"
        )));
    }
    Ok(())
}

/// Upload a profile file (the bytes written by `pedigree profile build`).
#[utoipa::path(post, path = "/v1/profiles", tag = "profiles", params(UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = ProfileRecord), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, description = "Not a valid profile", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    Need(_caller): Need<ADMIN>,
    Query(p): Query<UploadParams>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ServiceResult<Response> {
    let body = body?;
    if body.is_empty() {
        return Err(ServiceError::Invalid("empty body: send the profile file's bytes".into()));
    }
    let profile = state.engine.parse_profile(body.to_vec()).await?;
    let name = p.name.clone().unwrap_or_else(|| profile.meta().name.clone());
    valid_name(&name)?;
    if state.engine.builtin_name() == Some(name.as_str()) {
        return Err(ServiceError::Conflict(format!(
            "`{name}` is the built-in profile and cannot be replaced"
        )));
    }
    if !p.replace && state.store.get_profile(&name).await?.is_some() {
        return Err(ServiceError::Conflict(format!(
            "profile `{name}` exists; pass ?replace=true to replace it"
        )));
    }
    let (store, engine) = (state.store.as_ref(), &state.engine);
    let rec =
        crate::service::profiles::save(store, engine, &state.config, &name, profile, body.to_vec())
            .await?;
    let mut resp = (StatusCode::CREATED, Json(rec)).into_response();
    resp.extensions_mut()
        .insert(AuditDetail(serde_json::json!({"profile": name, "bytes": body.len()})));
    Ok(resp)
}

/// Delete an uploaded profile (the built-in one cannot be deleted).
#[utoipa::path(delete, path = "/v1/profiles/{name}", tag = "profiles", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Need(_caller): Need<ADMIN>,
    Path(name): Path<String>,
) -> ServiceResult<Response> {
    if BUILTIN_ALIASES.contains(&name.as_str())
        || state.engine.builtin_name() == Some(name.as_str())
    {
        return Err(ServiceError::Conflict("the built-in profile cannot be deleted".into()));
    }
    let rec = state
        .store
        .get_profile(&name)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("profile `{name}`")))?;
    state.store.delete_profile(&name).await?;
    state.engine.remove(&name);
    if let Some(p) = rec.path {
        let _ = tokio::fs::remove_file(state.config.resolve(&p)).await;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct BuildParams {
    /// Name of the profile to build.
    pub name: String,
    /// Upstream family the profile detects (default `openai`).
    #[serde(default)]
    pub upstream: Option<String>,
}

/// Build a profile from an uploaded dataset (JSONL, streamed to disk) as a background job.
#[utoipa::path(post, path = "/v1/profiles/build", tag = "profiles", params(BuildParams),
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 202, body = JobCreated), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn build(
    State(state): State<AppState>,
    Need(caller): Need<ADMIN>,
    Query(p): Query<BuildParams>,
    req: Request,
) -> ServiceResult<Response> {
    valid_name(&p.name)?;
    let upload = stream_upload(&state, req).await?;
    let upstream = p.upstream.unwrap_or_else(|| "openai".into());
    let spec = JobSpec::ProfileBuild(ProfileBuildParams { name: p.name, upstream });
    let job = state.jobs.submit(&spec, &upload.path, Some(1), &caller.key_id, &[]).await?;
    let id = job.id.clone();
    let mut resp = (StatusCode::ACCEPTED, Json(JobCreated { job })).into_response();
    resp.extensions_mut()
        .insert(AuditDetail(serde_json::json!({"job_id": id, "bytes": upload.bytes})));
    Ok(resp)
}
