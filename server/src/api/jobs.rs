//! Batch jobs: upload (streamed to disk), progress, cancel, results download.

use crate::api::suspects::suspect_or_404;
use crate::audit::AuditDetail;
use crate::auth::{random_base62, Need, ANALYST, VIEWER};
use crate::error::{Json, Path, Query};
use crate::service::jobs::{AuditJobParams, JobKind, JobSpec, ScoreJobParams};
use crate::service::{ServiceError, ServiceResult};
use crate::state::AppState;
use crate::store::{JobRecord, JobResultRow};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};

type ErrorBody = crate::error::ErrorBody;

/// A finished upload under `DATA/uploads/`.
pub struct Upload {
    pub path: PathBuf,
    pub bytes: u64,
    /// Number of non-blank lines.
    pub lines: i64,
    /// Text fields of a multipart upload.
    pub fields: HashMap<String, String>,
    /// Where a job over it may be cut into parts (empty: no larger than one part).
    pub parts: Vec<crate::store::NewPart>,
}

struct UploadWriter {
    path: PathBuf,
    file: tokio::io::BufWriter<tokio::fs::File>,
    bytes: u64,
    lines: i64,
    line_has_content: bool,
    limit: u64,
    cutter: crate::service::parts::PartCutter,
}

impl UploadWriter {
    async fn new(state: &AppState) -> ServiceResult<UploadWriter> {
        let path = state.config.uploads_dir().join(format!("{}.jsonl", random_base62(20)));
        let file = crate::files::create_private(&path).await?;
        Ok(UploadWriter {
            path,
            file: tokio::io::BufWriter::with_capacity(256 * 1024, file),
            bytes: 0,
            lines: 0,
            line_has_content: false,
            limit: state.config.max_upload_bytes,
            cutter: crate::service::parts::PartCutter::new(state.config.job_part_bytes),
        })
    }

    async fn write(&mut self, chunk: &[u8]) -> ServiceResult<()> {
        self.bytes += chunk.len() as u64;
        if self.bytes > self.limit {
            return Err(ServiceError::TooLarge(format!("upload exceeds {} bytes", self.limit)));
        }
        for &b in chunk {
            if b == b'\n' {
                if self.line_has_content {
                    self.lines += 1;
                }
                self.line_has_content = false;
            } else if !b.is_ascii_whitespace() {
                self.line_has_content = true;
            }
        }
        self.cutter.feed(chunk);
        self.file.write_all(chunk).await?;
        Ok(())
    }

    async fn finish(mut self, fields: HashMap<String, String>) -> ServiceResult<Upload> {
        if self.line_has_content {
            self.lines += 1;
        }
        self.file.flush().await?;
        // The job row will point at this file: make it durable before the job exists.
        self.file.get_ref().sync_all().await?;
        Ok(Upload {
            path: self.path,
            bytes: self.bytes,
            lines: self.lines,
            fields,
            parts: self.cutter.parts(),
        })
    }
}

/// Stream a request body (raw JSONL, or the `file` field of a multipart form) to a new file
/// under `DATA/uploads/`, never holding it in memory. Removes the file on any error.
pub async fn stream_upload(state: &AppState, req: Request) -> ServiceResult<Upload> {
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > state.config.max_upload_bytes {
            return Err(ServiceError::TooLarge(format!(
                "upload exceeds {} bytes",
                state.config.max_upload_bytes
            )));
        }
    }
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let mut w = UploadWriter::new(state).await?;
    let path = w.path.clone();
    let res = async {
        let mut fields = HashMap::new();
        if is_multipart {
            let mut mp = Multipart::from_request(req, state).await?;
            let mut got_file = false;
            while let Some(mut field) =
                mp.next_field().await.map_err(|e| ServiceError::Malformed(e.body_text()))?
            {
                let name = field.name().unwrap_or("").to_string();
                if name == "file" || field.file_name().is_some() {
                    if got_file {
                        return Err(ServiceError::Malformed("only one file per upload".into()));
                    }
                    got_file = true;
                    while let Some(c) =
                        field.chunk().await.map_err(|e| ServiceError::Malformed(e.body_text()))?
                    {
                        w.write(&c).await?;
                    }
                } else {
                    let v = multipart_text(&mut field).await?;
                    fields.insert(name, v);
                }
            }
            if !got_file {
                return Err(ServiceError::Invalid("multipart upload has no `file` field".into()));
            }
        } else {
            let mut stream = req.into_body().into_data_stream();
            while let Some(c) = stream.next().await {
                let c: Bytes =
                    c.map_err(|e| ServiceError::Malformed(format!("reading the upload: {e}")))?;
                w.write(&c).await?;
            }
        }
        if w.bytes == 0 {
            return Err(ServiceError::Invalid(
                "empty upload: send JSONL, one object per line".into(),
            ));
        }
        w.finish(fields).await
    }
    .await;
    if res.is_err() {
        let _ = tokio::fs::remove_file(&path).await;
    }
    res
}

/// The longest text field of a multipart upload (`kind`, `suspect`, `profile`, `format`, …).
pub const MAX_MULTIPART_FIELD_BYTES: usize = 64 * 1024;

/// A multipart text field, read chunk by chunk up to [`MAX_MULTIPART_FIELD_BYTES`] (413 beyond).
pub async fn multipart_text(
    field: &mut axum::extract::multipart::Field<'_>,
) -> crate::service::ServiceResult<String> {
    use crate::service::ServiceError;
    let name = field.name().unwrap_or("").to_string();
    let mut out = Vec::new();
    while let Some(c) = field.chunk().await.map_err(|e| ServiceError::Malformed(e.body_text()))? {
        if out.len() + c.len() > MAX_MULTIPART_FIELD_BYTES {
            return Err(ServiceError::TooLarge(format!(
                "multipart field `{name}` exceeds {MAX_MULTIPART_FIELD_BYTES} bytes"
            )));
        }
        out.extend_from_slice(&c);
    }
    String::from_utf8(out)
        .map_err(|_| ServiceError::Invalid(format!("multipart field `{name}` is not UTF-8")))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CreateJobParams {
    /// Job kind: `score` (default) or `audit` (estimate the upstream-generated fraction of a
    /// training corpus, like `pedigree audit`; the summary is the job's one result).
    #[serde(default)]
    pub kind: Option<String>,
    /// Suspect that receives the scored lines as samples (required for `score`).
    #[serde(default)]
    pub suspect: Option<String>,
    /// Profile to score with (default: the suspect's profile; for `audit`: the default profile).
    #[serde(default)]
    pub profile: Option<String>,
    /// `audit` only: corpus format (default: detected from the content). One of `jsonl`,
    /// `alpaca-eval`, `fastchat`, `sharegpt`, `openai-chat`, `csv:COLUMN`, `bench`.
    #[serde(default)]
    pub format: Option<String>,
    /// `audit` only: score only a seeded uniform random sample of this many texts (≥ 1).
    #[serde(default)]
    pub sample: Option<usize>,
    /// `audit` only: seed of the sample and of the bootstrap.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// Check the `audit` parameters; returns `(profile name, format)`.
fn audit_params(
    state: &AppState,
    profile: Option<&str>,
    format: Option<&str>,
    sample: Option<usize>,
) -> ServiceResult<(String, Option<String>)> {
    if sample == Some(0) {
        return Err(ServiceError::Invalid("`sample` must be at least 1".into()));
    }
    if let Some(f) = format {
        f.parse::<datasets::Format>()
            .map_err(|e| ServiceError::Invalid(format!("bad `format`: {e}")))?;
    }
    let (profile, _) = state.engine.resolve(profile)?;
    Ok((profile, format.map(str::to_string)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobCreated {
    pub job: JobRecord,
}

/// Start a batch job from a JSONL upload (raw body, or multipart field `file`; parameters in the
/// query string or as multipart text fields). Each line: `{"text": "…", "prompt": "…", "id": …, "source": "…"}`.
///
/// `kind=audit` audits a training corpus instead (any format `pedigree audit` reads; CSV needs
/// `format=csv:COLUMN`): no suspect; optional `profile`, `format`, `sample`, `seed`. Progress:
/// `done` = texts scored, `progress` = fraction of the upload read. When done, `GET /v1/jobs/{id}`
/// carries the summary as `result` (also result line 1 of `/v1/jobs/{id}/results`): `texts`,
/// `families.<upstream>.fraction` with `ci95` and `se`, `top_texts` with evidence. An audit
/// interrupted by a restart is rerun from scratch.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", params(CreateJobParams),
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 202, body = JobCreated), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 501, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Need(caller): Need<ANALYST>,
    Query(q): Query<CreateJobParams>,
    req: Request,
) -> ServiceResult<Response> {
    // Validate what we can before reading the body.
    let kind = q.kind.as_deref().map(job_kind).transpose()?;
    if kind == Some(JobKind::Audit) {
        audit_params(&state, q.profile.as_deref(), q.format.as_deref(), q.sample)?;
    } else if let Some(s) = q.suspect.as_deref() {
        suspect_or_404(state.store.as_ref(), s).await?;
    }
    let upload = stream_upload(&state, req).await?;
    let submitted = async {
        let (spec, total) = job_spec(&state, &q, &upload).await?;
        state.jobs.submit(&spec, &upload.path, total, &caller.key_id, &upload.parts).await
    }
    .await;
    let job = submitted.inspect_err(|_| remove_upload(&upload.path))?;
    let detail =
        serde_json::json!({"job_id": job.id, "bytes": upload.bytes, "lines": upload.lines});
    let location = format!("/v1/jobs/{}", job.id);
    let mut resp = (StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(JobCreated { job }))
        .into_response();
    resp.extensions_mut().insert(AuditDetail(detail));
    Ok(resp)
}

/// An upload that no job will read is removed at once (best effort: the startup sweep of
/// `DATA/uploads/` catches what this misses).
fn remove_upload(path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
}

/// The kind named by the `kind` parameter: `POST /v1/jobs` runs `score` and `audit` jobs.
fn job_kind(name: &str) -> ServiceResult<JobKind> {
    match JobKind::parse(name) {
        Some(k @ (JobKind::Score | JobKind::Audit)) => Ok(k),
        _ => Err(ServiceError::Invalid(format!(
            "unknown job kind `{name}`: POST /v1/jobs runs `score` and `audit` jobs (profile builds: POST /v1/profiles/build)"
        ))),
    }
}

/// The job an upload asks for, from its query string and (winning) multipart text fields, with
/// the number of lines to process when it is known.
async fn job_spec(
    state: &AppState,
    q: &CreateJobParams,
    upload: &Upload,
) -> ServiceResult<(JobSpec, Option<i64>)> {
    let field = |k: &str| upload.fields.get(k).cloned();
    let kind = match field("kind") {
        Some(k) => job_kind(&k)?,
        None => q.kind.as_deref().map(job_kind).transpose()?.unwrap_or(JobKind::Score),
    };
    if kind == JobKind::Score {
        let suspect_id = field("suspect")
            .or(q.suspect.clone())
            .ok_or_else(|| ServiceError::Invalid("`suspect` is required for score jobs".into()))?;
        let suspect = suspect_or_404(state.store.as_ref(), &suspect_id).await?;
        let profile = field("profile").or(q.profile.clone()).unwrap_or(suspect.profile);
        let (profile, _) = state.engine.resolve(Some(&profile))?;
        return Ok((JobSpec::Score(ScoreJobParams { suspect_id, profile }), Some(upload.lines)));
    }
    let num = |k: &str| -> ServiceResult<Option<u64>> {
        field(k)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| {
                    ServiceError::Invalid(format!("`{k}` must be a non-negative integer"))
                })
            })
            .transpose()
    };
    let sample = num("sample")?.map(|v| v as usize).or(q.sample);
    let seed = num("seed")?.or(q.seed).unwrap_or(detector::audit::AuditOptions::default().seed);
    let profile = field("profile").or(q.profile.clone());
    let format = field("format").or(q.format.clone());
    let (profile, format) = audit_params(state, profile.as_deref(), format.as_deref(), sample)?;
    let params = AuditJobParams { profile, format, sample, seed, bytes: upload.bytes };
    // The total stays unknown: input lines are not texts for every format.
    Ok((JobSpec::Audit(params), None))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    #[serde(flatten)]
    pub job: JobRecord,
    /// done / total, when total is known (`audit` jobs: fraction of the upload's bytes read).
    pub progress: Option<f64>,
    /// `audit` jobs, once done (single-job view only): the audit summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// A job cut into parts (single-job view only): each part's byte range, state, cursor and
    /// the replica holding its lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_list: Option<Vec<crate::store::JobPart>>,
}

impl From<JobRecord> for JobView {
    fn from(mut job: JobRecord) -> Self {
        if JobKind::parse(&job.kind) == Some(JobKind::Audit) {
            // The cursor holds the audit's progress (see `crate::service::jobs`): texts scored, bytes read.
            let bytes = job.params["bytes"].as_u64().unwrap_or(0);
            let progress = if job.state == crate::store::JobState::Done {
                1.0
            } else if bytes == 0 {
                0.0
            } else {
                (job.cursor_offset.max(0) as f64 / bytes as f64).min(1.0)
            };
            job.done = job.cursor_line;
            return JobView { job, progress: Some(progress), result: None, part_list: None };
        }
        let progress = job.total.map(|t| if t == 0 { 1.0 } else { job.done as f64 / t as f64 });
        JobView { job, progress, result: None, part_list: None }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobView>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PageParams {
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub offset: Option<i64>,
}

/// List jobs, newest first.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", params(PageParams),
    responses((status = 200, body = JobList), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Query(p): Query<PageParams>,
) -> ServiceResult<Json<JobList>> {
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    let offset = p.offset.unwrap_or(0).max(0);
    let jobs = state.store.list_jobs(limit, offset).await?.into_iter().map(JobView::from).collect();
    Ok(Json(JobList { jobs }))
}

async fn job_or_404(state: &AppState, id: &str) -> ServiceResult<JobRecord> {
    state.store.get_job(id).await?.ok_or_else(|| ServiceError::not_found(format!("job `{id}`")))
}

/// A job's state and progress; a finished `audit` job also carries its summary as `result`.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Path(id): Path<String>,
) -> ServiceResult<Json<JobView>> {
    let job = job_or_404(&state, &id).await?;
    let with_result = JobKind::parse(&job.kind) == Some(JobKind::Audit)
        && job.state == crate::store::JobState::Done;
    let parted = job.parts > 0;
    let mut view = JobView::from(job);
    if parted {
        view.part_list = Some(state.store.job_parts(&id).await?);
    }
    if with_result {
        view.result =
            state.store.job_results(&id, 0, 1).await?.into_iter().next().map(|r| r.result);
    }
    Ok(Json(view))
}

/// Cancel a queued or running job (results so far are kept).
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = JobView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "Already finished", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    Need(_caller): Need<ANALYST>,
    Path(id): Path<String>,
) -> ServiceResult<Response> {
    let job = state.jobs.cancel(&id).await?;
    let mut resp = Json(JobView::from(job)).into_response();
    resp.extensions_mut().insert(AuditDetail(serde_json::json!({"job_id": id})));
    Ok(resp)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ResultParams {
    /// `jsonl` (default: the whole result set as a download) or `json` (one page).
    #[serde(default)]
    pub format: Option<String>,
    /// Only results with a line number above this one.
    #[serde(default)]
    pub after: Option<i64>,
    /// Page size for `format=json` (default 1000, max 10000).
    #[serde(default)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResultPage {
    pub results: Vec<JobResultRow>,
    /// Pass as `after` to get the next page; absent at the end.
    pub next_after: Option<i64>,
}

/// Download a job's results: one JSON object per input line, in line order.
#[utoipa::path(get, path = "/v1/jobs/{id}/results", tag = "jobs", params(("id" = String, Path), ResultParams),
    responses((status = 200, description = "JSONL (default) or a JSON page", body = ResultPage),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn results(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Path(id): Path<String>,
    Query(p): Query<ResultParams>,
) -> ServiceResult<Response> {
    job_or_404(&state, &id).await?;
    let after = p.after.unwrap_or(0);
    match p.format.as_deref().unwrap_or("jsonl") {
        "json" => {
            let limit = p.limit.unwrap_or(1000);
            if !(1..=10_000).contains(&limit) {
                return Err(ServiceError::Invalid("`limit` must be between 1 and 10000".into()));
            }
            let results = state.store.job_results(&id, after, limit).await?;
            let next_after = if results.len() as i64 == limit {
                results.last().map(|r| r.line_no)
            } else {
                None
            };
            Ok(Json(ResultPage { results, next_after }).into_response())
        }
        "jsonl" => {
            let store = state.store.clone();
            let stream = futures_util::stream::unfold(Some(after), move |cursor| {
                let store = store.clone();
                let id = id.clone();
                async move {
                    let after = cursor?;
                    match store.job_results(&id, after, 1000).await {
                        Ok(rows) if rows.is_empty() => None,
                        Ok(rows) => {
                            let next = rows.last().map(|r| r.line_no);
                            let mut buf = Vec::new();
                            for r in rows {
                                let mut v = r.result;
                                if let Some(o) = v.as_object_mut() {
                                    o.insert("line".into(), r.line_no.into());
                                }
                                buf.extend_from_slice(v.to_string().as_bytes());
                                buf.push(b'\n');
                            }
                            Some((Ok::<_, std::io::Error>(Bytes::from(buf)), next))
                        }
                        Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
                    }
                }
            });
            Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream))
                .into_response())
        }
        other => {
            Err(ServiceError::Invalid(format!("unknown format `{other}`: use `jsonl` or `json`")))
        }
    }
}
