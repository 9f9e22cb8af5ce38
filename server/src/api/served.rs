//! Served logs (the answers the provider served, or fresh answers of the same snapshot) and the
//! membership test of a suspect against them. The logic is in `service::membership`.

use crate::api::jobs::stream_upload;
use crate::api::suspects::{paging, with_detail, PageParams};
use crate::auth::{Need, ANALYST, VIEWER};
use crate::error::{Json, Path, Query};
use crate::service::membership::{self as svc, ImportRequest, MembershipRequest};
use crate::service::{ServiceError, ServiceResult};
use crate::state::AppState;
use crate::store::{MembershipRecord, ServedAnswerRow, ServedKind, ServedLogRecord};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

type ErrorBody = crate::error::ErrorBody;

#[derive(Debug, Deserialize, IntoParams)]
pub struct UploadParams {
    /// Display name (at most 200 characters).
    #[serde(default)]
    pub name: Option<String>,
    /// `served` (default): answers served to accounts; `fresh`: fresh answers of the same
    /// snapshot to the same prompts.
    #[serde(default)]
    pub kind: Option<String>,
    /// `openai-chat`, `jsonl`, `alpaca-eval`, `sharegpt`, `csv:COLUMN[:PROMPT_COLUMN]`; default:
    /// detected from the content.
    #[serde(default)]
    pub format: Option<String>,
}

/// Upload a served log (raw body, or multipart field `file`; parameters in the query string or
/// as multipart text fields): OpenAI chat-completions logs (`messages` + `choices`, or
/// `request`/`response`, with `user` as the account), or JSONL `{prompt, response[, account][,
/// created]}`, or any format with prompts. Every answer needs a prompt; a malformed record is a
/// 422 naming its line. Returns the log with its per-account summary.
#[utoipa::path(post, path = "/v1/served-logs", tag = "membership", params(UploadParams),
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 201, body = ServedLogRecord), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    Need(caller): Need<ANALYST>,
    Query(q): Query<UploadParams>,
    req: Request,
) -> ServiceResult<Response> {
    let kind = parse_kind(q.kind.as_deref())?;
    let upload = stream_upload(&state, req).await?;
    let field = |k: &str| upload.fields.get(k).cloned();
    let import = ImportRequest {
        name: field("name").or(q.name),
        kind: match field("kind") {
            Some(k) => parse_kind(Some(&k))?,
            None => kind,
        },
        format: field("format").or(q.format),
        created_by: Some(caller.key_id.clone()),
    };
    let res = svc::import_served_log(state.store.as_ref(), upload.path.clone(), import).await;
    // The answers are in the database now (or the upload was refused): the file is not needed.
    let _ = tokio::fs::remove_file(&upload.path).await;
    let log = res?;
    let detail =
        serde_json::json!({"served_log": log.id, "answers": log.answers, "kind": log.kind});
    Ok(with_detail((StatusCode::CREATED, Json(log)), detail))
}

fn parse_kind(k: Option<&str>) -> ServiceResult<ServedKind> {
    match k {
        None | Some("") => Ok(ServedKind::Served),
        Some(k) => ServedKind::parse(k).ok_or_else(|| {
            ServiceError::Invalid(format!("unknown `kind` `{k}`: use `served` or `fresh`"))
        }),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServedLogList {
    pub served_logs: Vec<ServedLogRecord>,
}

/// List served logs, newest first.
#[utoipa::path(get, path = "/v1/served-logs", tag = "membership", params(PageParams),
    responses((status = 200, body = ServedLogList), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Query(p): Query<PageParams>,
) -> ServiceResult<Json<ServedLogList>> {
    let (limit, offset) = paging(p.limit, p.offset)?;
    Ok(Json(ServedLogList { served_logs: state.store.list_served_logs(limit, offset).await? }))
}

/// A served log with its per-account summary (answers, distinct prompts, time span).
#[utoipa::path(get, path = "/v1/served-logs/{id}", tag = "membership", params(("id" = String, Path)),
    responses((status = 200, body = ServedLogRecord), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Path(id): Path<String>,
) -> ServiceResult<Json<ServedLogRecord>> {
    Ok(Json(svc::served_log(state.store.as_ref(), &id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AnswersParams {
    /// Only this account's answers.
    #[serde(default)]
    pub account: Option<String>,
    /// Answers after this `seq` (paging).
    #[serde(default)]
    pub after: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnswerList {
    pub answers: Vec<ServedAnswerRow>,
}

/// A served log's answers in file order.
#[utoipa::path(get, path = "/v1/served-logs/{id}/answers", tag = "membership", params(("id" = String, Path), AnswersParams),
    responses((status = 200, body = AnswerList), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn answers(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Path(id): Path<String>,
    Query(p): Query<AnswersParams>,
) -> ServiceResult<Json<AnswerList>> {
    let (limit, _) = paging(p.limit, None)?;
    svc::served_log(state.store.as_ref(), &id).await?;
    let after = p.after.unwrap_or(0);
    Ok(Json(AnswerList {
        answers: state.store.served_answers(&id, p.account, after, limit).await?,
    }))
}

/// Delete a served log and its answers (membership results that used it are kept).
#[utoipa::path(delete, path = "/v1/served-logs/{id}", tag = "membership", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Need(_caller): Need<ANALYST>,
    Path(id): Path<String>,
) -> ServiceResult<Response> {
    if !state.store.delete_served_log(&id).await? {
        return Err(ServiceError::not_found(format!("served log `{id}`")));
    }
    Ok(with_detail(StatusCode::NO_CONTENT, serde_json::json!({"served_log": id})))
}

/// Run the served-output membership test on the suspect's stored answers (samples with a
/// prompt): did it train on the answers of `served_log`? `decision` is `trained_on_served` (p ≤
/// α and the exchangeability checks passed), `not_detected` (never "independent"), or `invalid`
/// (the fresh answers failed the exchangeability guard, or a negative control was flagged; see
/// `report.reason`). Fewer than `min_prompts` matched prompts is a 422. The result is stored.
#[utoipa::path(post, path = "/v1/suspects/{id}/membership", tag = "membership", params(("id" = String, Path)),
    request_body = MembershipRequest,
    responses((status = 201, body = MembershipRecord), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn test(
    State(state): State<AppState>,
    Need(caller): Need<ANALYST>,
    Path(id): Path<String>,
    Json(req): Json<MembershipRequest>,
) -> ServiceResult<Response> {
    let _permit = state.admit()?;
    let rec =
        svc::test_suspect(state.store.as_ref(), &id, req, Some(caller.key_id.clone())).await?;
    let detail =
        serde_json::json!({"suspect_id": id, "membership": rec.id, "decision": rec.decision});
    Ok(with_detail((StatusCode::CREATED, Json(rec)), detail))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ResultsParams {
    /// At most this many results, newest first (default 20, max 1000).
    #[serde(default)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipList {
    pub results: Vec<MembershipRecord>,
}

/// A suspect's membership results (API runs and campaign looks), newest first.
#[utoipa::path(get, path = "/v1/suspects/{id}/membership", tag = "membership", params(("id" = String, Path), ResultsParams),
    responses((status = 200, body = MembershipList), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn results(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Path(id): Path<String>,
    Query(p): Query<ResultsParams>,
) -> ServiceResult<Json<MembershipList>> {
    let (limit, _) = paging(Some(p.limit.unwrap_or(20)), None)?;
    crate::service::suspects::suspect_or_404(state.store.as_ref(), &id).await?;
    Ok(Json(MembershipList { results: state.store.membership_results(&id, limit).await? }))
}
