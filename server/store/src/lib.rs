//! Persistence behind one trait: the embedded SQLite default ([`SqliteStore`]) or PostgreSQL
//! ([`PgStore`]), chosen at run time by [`open`] from `--database-url`.
//!
//! Every method is async and object-safe (boxed futures), so the server holds an `Arc<dyn Store>`.

/// The SQL both stores share (every `Store` method), and their dialects; the methods are
/// grouped by concern, one macro (and file) each.
#[macro_use]
mod sql_rows;
#[macro_use]
mod sql_keys;
#[macro_use]
mod sql_profiles;
#[macro_use]
mod sql_suspects;
#[macro_use]
mod sql_jobs;
#[macro_use]
mod sql_campaigns;
#[macro_use]
mod sql_admin;
#[macro_use]
mod sql;
/// The served-log and membership-result methods, expanded into both stores' `Store` impls.
#[macro_use]
mod served_sql;
mod config;
mod postgres;
mod sqlite;

#[cfg(test)]
mod conformance;
/// The throwaway PostgreSQL cluster of the tests (the dev-only `testkit` crate).
#[cfg(test)]
pub(crate) use testkit::pg as test_pg;

pub use config::{DatabaseUrl, StoreArgs};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A bad store configuration (e.g. an unsupported `--database-url`; shown redacted).
    #[error("{0}")]
    Config(String),
    /// This replica's lease on the job or campaign was taken over (it expired), or the probe it
    /// was finishing was already recorded by the replica that took over: nothing was written.
    #[error("the lease on `{0}` is held by another replica")]
    LeaseLost(String),
    /// The job a part belongs to is finished (cancelled, or failed on another replica): the
    /// part's chunk was not written; stop working on it.
    #[error("job `{0}` is finished: nothing written")]
    Finished(String),
}

/// Open the store that `config` selects: PostgreSQL when `--database-url` / `PEDIGREE_DATABASE_URL`
/// is a `postgres://` URL, else the embedded SQLite database under `--data` (created if missing).
/// Both run their migrations. The only place that chooses a backend.
pub async fn open(config: &StoreArgs) -> Result<Arc<dyn Store>, StoreError> {
    match database_url(config) {
        None => {
            std::fs::create_dir_all(&config.data)?;
            Ok(Arc::new(SqliteStore::open(&config.sqlite_path()).await?))
        }
        Some(url) if url.is_postgres() => Ok(Arc::new(PgStore::connect(url.expose()).await?)),
        Some(url) => Err(StoreError::Config(format!(
            "unsupported database URL `{url}`: use postgres://… for PostgreSQL, or leave --database-url \
             unset for the embedded SQLite database under --data"
        ))),
    }
}

/// The configured database URL, if any (an empty value means none: the SQLite default).
fn database_url(config: &StoreArgs) -> Option<&DatabaseUrl> {
    config.database_url.as_ref().filter(|u| !u.expose().trim().is_empty())
}

/// Which store `config` selects, for logs and error messages (the URL's password redacted).
pub fn describe(config: &StoreArgs) -> String {
    match database_url(config) {
        Some(url) if url.is_postgres() => format!("PostgreSQL {url}"),
        Some(url) => format!("database {url}"),
        None => format!("SQLite {}", config.sqlite_path().display()),
    }
}

/// API key roles, ordered: viewer < analyst < admin.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Analyst,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    #[serde(skip)]
    pub key_hash: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub key_id: Option<String>,
    pub role: Option<String>,
    pub action: String,
    pub target: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub status: u16,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// Only entries of this key.
    pub key_id: Option<String>,
    /// Only entries whose action contains this string (e.g. `POST /v1/score`).
    pub action: Option<String>,
    /// Only entries at or after this time (unix milliseconds).
    pub since_ms: Option<i64>,
    /// Only entries with an id below this one (paging backwards).
    pub before_id: Option<i64>,
    /// At most this many entries (default 100, max 1000).
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SuspectRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub profile: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub samples: i64,
    /// The cached verdict (JSON), if one was computed.
    #[schema(value_type = Option<Object>)]
    pub verdict: Option<serde_json::Value>,
    /// Number of samples the cached verdict covers.
    pub verdict_n: Option<i64>,
    /// Strength of evidence of the cached verdict: −log10 p.
    pub strength: Option<f64>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuspectOrder {
    /// Strongest evidence first (dashboards).
    #[default]
    Strength,
    /// Newest first.
    Created,
    Name,
}

#[derive(Debug, Clone)]
pub struct NewSample {
    pub content_hash: String,
    pub text: String,
    pub prompt: Option<String>,
    pub source: String,
    pub score: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SampleRecord {
    pub id: i64,
    pub suspect_id: String,
    pub content_hash: String,
    pub text: String,
    pub prompt: Option<String>,
    pub source: String,
    pub added_ms: i64,
    #[schema(value_type = Option<Object>)]
    pub score: Option<serde_json::Value>,
}

/// Outcome of adding samples: which inputs were new (`Some(id)`) and which were duplicates (`None`).
#[derive(Debug, Clone)]
pub struct AddOutcome {
    pub ids: Vec<Option<i64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProfileRecord {
    pub name: String,
    pub upstream: String,
    #[schema(value_type = Object)]
    pub meta: serde_json::Value,
    pub path: Option<String>,
    pub builtin: bool,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed | JobState::Cancelled)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobRecord {
    pub id: String,
    /// `score`, `audit` or `profile_build` (the server's `JobKind`).
    pub kind: String,
    pub state: JobState,
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    #[serde(skip)]
    pub input_path: Option<String>,
    /// Number of input lines, when known.
    pub total: Option<i64>,
    /// Number of input lines processed (results written).
    pub done: i64,
    pub cursor_offset: i64,
    pub cursor_line: i64,
    pub error: Option<String>,
    pub created_by: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The replica running the job (its `--replica-id`), while its lease holds.
    pub lease_owner: Option<String>,
    /// When the lease ends unless renewed (epoch ms, the database's clock).
    pub lease_expires_ms: Option<i64>,
    /// Parts the job's input is cut into, each run by whichever replica claims it (0: the job
    /// runs whole, on one replica).
    pub parts: i64,
    /// Parts finished.
    pub parts_done: i64,
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub kind: String,
    pub params: serde_json::Value,
    pub input_path: Option<String>,
    pub total: Option<i64>,
    pub created_by: Option<String>,
    /// The parts of the input, in input order (empty: the job runs whole).
    pub parts: Vec<NewPart>,
}

/// A part of a job's input: bytes `[start_offset, end_offset)`, starting at a line start after
/// `lines_before` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewPart {
    pub start_offset: i64,
    pub end_offset: i64,
    pub lines_before: i64,
}

/// A stored part of a job (see [`NewPart`]), run under its own lease.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobPart {
    pub job_id: String,
    pub part_no: i64,
    pub start_offset: i64,
    pub end_offset: i64,
    pub lines_before: i64,
    /// `queued`, `running` (claimed at least once) or `done`.
    pub state: JobState,
    /// As a job's cursor: byte offset and line number of the part's next unread line.
    pub cursor_offset: i64,
    pub cursor_line: i64,
    /// What a finished part hands to the job's end (an audit part: its sufficient statistics;
    /// internal, not shown, and read only by [`Store::part_stats`]).
    #[serde(skip)]
    #[schema(ignore)]
    pub stats: Option<serde_json::Value>,
    pub lease_owner: Option<String>,
    pub lease_expires_ms: Option<i64>,
}

/// One processed chunk of a job part, written atomically with the part's new cursor. Fenced:
/// nothing is written unless `owner` holds the part's lease ([`StoreError::LeaseLost`]) and the
/// job is unfinished ([`StoreError::Finished`]: a cancel anywhere stops every part at its next
/// chunk).
#[derive(Debug, Clone, Default)]
pub struct PartChunk {
    pub owner: String,
    pub cursor_offset: i64,
    pub cursor_line: i64,
    /// `(line_no, result JSON)`; a line already present is ignored (never duplicated).
    pub results: Vec<(i64, serde_json::Value)>,
    pub samples: Option<(String, Vec<NewSample>)>,
    /// The part is finished: store `stats`, mark it done and give back its lease.
    pub finished: bool,
    pub stats: Option<serde_json::Value>,
}

/// One processed chunk of a job: written atomically with the new cursor.
#[derive(Debug, Clone, Default)]
pub struct JobChunk {
    /// New cursor: byte offset and line number of the next unread line.
    pub cursor_offset: i64,
    pub cursor_line: i64,
    /// `(line_no, result JSON)`; a line already present is ignored (never duplicated).
    pub results: Vec<(i64, serde_json::Value)>,
    /// Samples to add to a suspect in the same transaction (score jobs).
    pub samples: Option<(String, Vec<NewSample>)>,
    /// Commit only while this replica holds the job's lease (else [`StoreError::LeaseLost`] and
    /// nothing is written); `None` skips the check.
    pub lease_owner: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobResultRow {
    pub line_no: i64,
    #[schema(value_type = Object)]
    pub result: serde_json::Value,
}

/// State of one probe of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeState {
    /// Not sent yet.
    Pending,
    /// A request went out (or was about to) and no outcome was recorded: in flight, or lost in a crash.
    Sent,
    Answered,
    Failed,
}

impl ProbeState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeState::Pending => "pending",
            ProbeState::Sent => "sent",
            ProbeState::Answered => "answered",
            ProbeState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<ProbeState> {
        Some(match s {
            "pending" => ProbeState::Pending,
            "sent" => ProbeState::Sent,
            "answered" => ProbeState::Answered,
            "failed" => ProbeState::Failed,
            _ => return None,
        })
    }
}

/// Probe counts of a campaign by state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProbeCounts {
    pub total: i64,
    pub pending: i64,
    /// In flight (or lost in a crash before the outcome was recorded).
    pub in_flight: i64,
    pub answered: i64,
    pub failed: i64,
    /// Probes that left `pending`: in flight + answered + failed.
    pub sent: i64,
    pub upstream_answered: i64,
    pub upstream_failed: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CampaignRecord {
    pub id: String,
    pub suspect_id: String,
    pub state: JobState,
    /// The campaign's parameters (endpoints, model, probe set, budget, …; secret names only).
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    #[serde(skip)]
    pub fingerprint: String,
    /// Group-sequential state: α spent and every look so far.
    #[schema(value_type = Option<Object>)]
    pub sequential: Option<serde_json::Value>,
    /// p-value of the latest look.
    pub p_value: Option<f64>,
    pub decision: Option<String>,
    pub teacher: Option<String>,
    /// Why the campaign stopped: `decision`, `budget_requests`, `budget_tokens`, `probes_exhausted`,
    /// `cancelled` or `error`.
    pub stop_reason: Option<String>,
    pub error: Option<String>,
    /// Tokens used by the suspect's answers (reported usage, else estimated).
    pub tokens: i64,
    pub probes: ProbeCounts,
    pub created_by: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The replica (or CLI run) sending the campaign's probes (its `--replica-id`), while its
    /// lease holds.
    pub lease_owner: Option<String>,
    /// When the lease ends unless renewed (epoch ms, the database's clock).
    pub lease_expires_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewProbe {
    pub probe_id: String,
    pub kind: String,
    pub prompt: String,
}

#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub id: String,
    pub suspect_id: String,
    pub spec: serde_json::Value,
    pub fingerprint: String,
    pub created_by: Option<String>,
    pub probes: Vec<NewProbe>,
    /// Whether the probes also go to an upstream endpoint (`upstream_state` starts `pending`).
    pub upstream: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProbeRecord {
    pub campaign_id: String,
    pub seq: i64,
    pub probe_id: String,
    pub kind: String,
    pub prompt: String,
    pub state: ProbeState,
    pub attempts: i64,
    pub answer: Option<String>,
    pub error: Option<String>,
    pub tokens: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub claims: Option<serde_json::Value>,
    pub sample_id: Option<i64>,
    pub upstream_state: Option<ProbeState>,
    pub upstream_answer: Option<String>,
    pub upstream_error: Option<String>,
    /// Further fresh answers of the upstream (a served-log campaign with `fresh_per_prompt` > 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream_extra: Vec<String>,
    pub sent_ms: Option<i64>,
    pub done_ms: Option<i64>,
}

/// The recorded outcome of one probe (suspect side).
#[derive(Debug, Clone)]
pub struct ProbeOutcome {
    pub answered: bool,
    pub attempts: i64,
    pub answer: Option<String>,
    pub error: Option<String>,
    pub tokens: Option<i64>,
    pub claims: Option<serde_json::Value>,
    /// The sample to add to the campaign's suspect in the same transaction.
    pub sample: Option<NewSample>,
}

/// What a look changes on the campaign row.
#[derive(Debug, Clone, Default)]
pub struct CampaignProgress {
    pub sequential: Option<serde_json::Value>,
    pub p_value: Option<f64>,
    pub decision: Option<String>,
    pub teacher: Option<String>,
    pub stop_reason: Option<String>,
    /// Write only while this owner holds the campaign's lease (`None`: unfenced, e.g. a cancel).
    pub lease_owner: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AllowEntry {
    /// `host:port`, lower-case.
    pub entry: String,
    pub note: String,
    pub created_by: Option<String>,
    pub created_ms: i64,
    /// Ceiling on the requests per second all campaigns together send to this endpoint (each
    /// campaign also keeps its own `client.rate_per_sec`); `None`: no ceiling.
    #[serde(default)]
    pub max_rate_per_sec: Option<f64>,
}

/// A stored secret's metadata. The value is never part of this record.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecretInfo {
    pub name: String,
    pub created_by: Option<String>,
    pub created_ms: i64,
    /// The endpoints (`host:port`) the secret may be sent to.
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// What a served log holds: the answers the provider **served** to an account, or **fresh**
/// answers of the same snapshot, with the same settings, to the same prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServedKind {
    Served,
    Fresh,
}

impl ServedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServedKind::Served => "served",
            ServedKind::Fresh => "fresh",
        }
    }
    pub fn parse(s: &str) -> Option<ServedKind> {
        match s {
            "served" => Some(ServedKind::Served),
            "fresh" => Some(ServedKind::Fresh),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServedLogRecord {
    pub id: String,
    pub name: String,
    pub kind: ServedKind,
    /// The format the upload was read as (`openai-chat`, `jsonl`, …).
    pub format: String,
    pub answers: i64,
    /// Distinct prompts (after case and white-space normalisation).
    pub prompts: i64,
    /// Per account: answers, distinct prompts, first and last `created` (unix seconds); answers
    /// logged without an account last, as `account: null`.
    #[schema(value_type = Vec<Object>)]
    pub accounts: Vec<datasets::AccountSummary>,
    pub created_by: Option<String>,
    pub created_ms: i64,
}

/// One stored answer of a served log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServedAnswerRow {
    /// 1-based order in the uploaded file.
    pub seq: i64,
    pub prompt: String,
    pub response: String,
    pub account: Option<String>,
    /// The record's own time (unix seconds), if the log had one.
    pub created: Option<i64>,
}

/// A membership test's stored result (`POST /v1/suspects/{id}/membership` or a campaign's look).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MembershipRecord {
    pub id: String,
    pub suspect_id: String,
    pub served_log: String,
    pub account: Option<String>,
    pub campaign_id: Option<String>,
    /// `trained_on_served`, `not_detected` or `invalid`.
    pub decision: String,
    pub p_value: f64,
    pub prompts: i64,
    /// The full report: the detector's `MembershipReport`, the inputs and the p-value trajectory.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
    pub created_by: Option<String>,
    pub created_ms: i64,
}

/// The server's persistence. Implementations must be safe to share between tasks.
pub trait Store: Send + Sync + 'static {
    /// Cheap liveness check of the backing database.
    fn ping(&self) -> StoreFuture<'_, ()>;

    /// Close the connections (CLI commands, before exiting). The store is unusable afterwards.
    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    // --- API keys
    fn create_key(
        &self,
        id: &str,
        name: &str,
        role: Role,
        key_hash: &str,
    ) -> StoreFuture<'_, ApiKeyRecord>;
    fn key_by_hash(&self, key_hash: &str) -> StoreFuture<'_, Option<ApiKeyRecord>>;
    fn list_keys(&self) -> StoreFuture<'_, Vec<ApiKeyRecord>>;
    /// Revoke a key; `false` if there is no such (unrevoked) key.
    fn revoke_key(&self, id: &str) -> StoreFuture<'_, bool>;
    /// A mark that changes whenever a key is revoked, by any process: `(revoked keys, latest
    /// revocation ms)`. Replicas poll it to drop their key caches (keys are never deleted, so
    /// the count only grows; the time alone could go back with a replica's clock).
    fn key_revocation_mark(&self) -> StoreFuture<'_, (i64, i64)>;

    // --- audit log
    fn append_audit(&self, entries: Vec<AuditEntry>) -> StoreFuture<'_, ()>;
    fn list_audit(&self, q: AuditQuery) -> StoreFuture<'_, Vec<AuditEntry>>;
    /// Delete audit entries older than `before_ms` (the retention setting); returns how many.
    fn prune_audit(&self, before_ms: i64) -> StoreFuture<'_, u64>;

    // --- profiles
    fn upsert_profile(&self, rec: ProfileRecord) -> StoreFuture<'_, ()>;
    /// Insert or replace a profile's record together with its file's bytes (one transaction), so
    /// that every server on the database can load it.
    fn save_profile(&self, rec: ProfileRecord, bytes: Vec<u8>) -> StoreFuture<'_, ()>;
    /// The stored file of profile `name` (`None`: a built-in profile, or one stored before files
    /// were kept in the database).
    fn profile_file(&self, name: &str) -> StoreFuture<'_, Option<Vec<u8>>>;
    fn list_profiles(&self) -> StoreFuture<'_, Vec<ProfileRecord>>;
    fn get_profile(&self, name: &str) -> StoreFuture<'_, Option<ProfileRecord>>;
    fn delete_profile(&self, name: &str) -> StoreFuture<'_, bool>;

    // --- suspects and samples
    fn create_suspect(
        &self,
        id: &str,
        name: &str,
        description: &str,
        profile: &str,
    ) -> StoreFuture<'_, SuspectRecord>;
    fn get_suspect(&self, id: &str) -> StoreFuture<'_, Option<SuspectRecord>>;
    fn list_suspects(
        &self,
        order: SuspectOrder,
        limit: i64,
        offset: i64,
    ) -> StoreFuture<'_, Vec<SuspectRecord>>;
    fn delete_suspect(&self, id: &str) -> StoreFuture<'_, bool>;
    fn set_verdict(
        &self,
        id: &str,
        verdict: serde_json::Value,
        n: i64,
        strength: f64,
    ) -> StoreFuture<'_, ()>;
    /// Insert samples, skipping those whose content hash the suspect already has.
    fn add_samples(&self, suspect_id: &str, samples: Vec<NewSample>)
        -> StoreFuture<'_, AddOutcome>;
    fn list_samples(
        &self,
        suspect_id: &str,
        limit: i64,
        offset: i64,
    ) -> StoreFuture<'_, Vec<SampleRecord>>;
    /// `(sample id, score JSON)` of every scored sample of a suspect, in insertion order.
    fn sample_scores(&self, suspect_id: &str) -> StoreFuture<'_, Vec<(i64, serde_json::Value)>>;
    fn get_sample(&self, id: i64) -> StoreFuture<'_, Option<SampleRecord>>;

    // --- jobs
    fn create_job(&self, job: NewJob) -> StoreFuture<'_, JobRecord>;
    fn get_job(&self, id: &str) -> StoreFuture<'_, Option<JobRecord>>;
    fn list_jobs(&self, limit: i64, offset: i64) -> StoreFuture<'_, Vec<JobRecord>>;
    /// Unfinished jobs: state `queued` or `running`, oldest first.
    fn unfinished_jobs(&self) -> StoreFuture<'_, Vec<JobRecord>>;
    /// Set a job's state. A terminal state is never left (returns `false` then).
    fn set_job_state(
        &self,
        id: &str,
        state: JobState,
        error: Option<String>,
    ) -> StoreFuture<'_, bool>;
    /// Write a chunk's results, samples and the new cursor in ONE transaction.
    fn commit_job_chunk(&self, id: &str, chunk: JobChunk) -> StoreFuture<'_, ()>;
    /// Claim the oldest unfinished job whose lease is free or expired (by the database's clock)
    /// for `owner`, for `lease_ms`; `None` when there is none. Concurrent claimers get
    /// different jobs.
    fn claim_job(&self, owner: &str, lease_ms: i64) -> StoreFuture<'_, Option<JobRecord>>;
    /// Extend `owner`'s lease on job `id` to `lease_ms` from now; `false` when the lease is no
    /// longer `owner`'s or the job is finished: stop working on it.
    fn renew_job_lease(&self, id: &str, owner: &str, lease_ms: i64) -> StoreFuture<'_, bool>;
    /// Give back `owner`'s lease on job `id`, or (`None`) every lease `owner` holds (a replica
    /// shutting down, or restarted under the same id); returns how many were released.
    fn release_job_leases(&self, owner: &str, id: Option<&str>) -> StoreFuture<'_, u64>;
    /// Claim the first unfinished part (oldest job first) of an unfinished job whose lease is
    /// free or expired, as [`Store::claim_job`] does for whole jobs; with its job. A job with
    /// parts is claimed by `claim_job` only once every part is done (to finish it).
    fn claim_job_part(
        &self,
        owner: &str,
        lease_ms: i64,
    ) -> StoreFuture<'_, Option<(JobRecord, JobPart)>>;
    /// Extend `owner`'s lease on a part; `false` when it is no longer `owner`'s, the part is
    /// done or its job finished (cancelled): stop working on it.
    fn renew_part_lease(
        &self,
        job_id: &str,
        part_no: i64,
        owner: &str,
        lease_ms: i64,
    ) -> StoreFuture<'_, bool>;
    /// Write a part's chunk (see [`PartChunk`]); the job's `done` grows by the results that
    /// were new, its cursor becomes the sum of its parts' progress.
    fn commit_part_chunk(
        &self,
        job_id: &str,
        part_no: i64,
        chunk: PartChunk,
    ) -> StoreFuture<'_, ()>;
    /// A job's parts, in order, without their statistics (`stats` is `None`: a job of many
    /// parts would otherwise read all of them to show its progress).
    fn job_parts(&self, job_id: &str) -> StoreFuture<'_, Vec<JobPart>>;
    /// `(part_no, stats)` of up to `limit` parts after part `after_part`, in order: a job's end
    /// reads its parts' statistics a page at a time.
    fn part_stats(
        &self,
        job_id: &str,
        after_part: i64,
        limit: i64,
    ) -> StoreFuture<'_, Vec<(i64, Option<serde_json::Value>)>>;
    /// Give back `owner`'s lease on one part, or (`None`) on every part it holds.
    fn release_part_leases(&self, owner: &str, part: Option<(&str, i64)>) -> StoreFuture<'_, u64>;
    fn job_results(
        &self,
        id: &str,
        after_line: i64,
        limit: i64,
    ) -> StoreFuture<'_, Vec<JobResultRow>>;

    // --- probe campaigns (src/probe)
    /// Create a campaign and all its probes (state `pending`) in one transaction.
    fn create_campaign(&self, c: NewCampaign) -> StoreFuture<'_, CampaignRecord>;
    fn get_campaign(&self, id: &str) -> StoreFuture<'_, Option<CampaignRecord>>;
    fn list_campaigns(&self, limit: i64, offset: i64) -> StoreFuture<'_, Vec<CampaignRecord>>;
    /// Campaigns that must be (re)started: state `queued` or `running`.
    fn unfinished_campaigns(&self) -> StoreFuture<'_, Vec<CampaignRecord>>;
    /// The newest campaign with this fingerprint, if any (the CLI resumes it).
    fn campaign_by_fingerprint(&self, fingerprint: &str)
        -> StoreFuture<'_, Option<CampaignRecord>>;
    /// Set a campaign's state; a terminal state is never left (returns `false` then).
    fn set_campaign_state(
        &self,
        id: &str,
        state: JobState,
        error: Option<String>,
    ) -> StoreFuture<'_, bool>;
    /// Write a look's results; with `p.lease_owner`, only while that owner holds the lease
    /// (else [`StoreError::LeaseLost`]).
    fn update_campaign_progress(&self, id: &str, p: CampaignProgress) -> StoreFuture<'_, ()>;
    /// Claim an unfinished campaign whose lease is free or expired (by the database's clock) for
    /// `owner`, for `lease_ms`: the oldest one, or (`only`) that one, which `owner` may also
    /// hold already (a CLI re-run under the same owner). Without `only`, campaigns created by
    /// `pedigree probe` (`created_by` = `cli`) are left to its re-runs. `None` when there is
    /// none. Concurrent claimers get different campaigns.
    fn claim_campaign(
        &self,
        owner: &str,
        lease_ms: i64,
        only: Option<&str>,
    ) -> StoreFuture<'_, Option<CampaignRecord>>;
    /// Extend `owner`'s lease on campaign `id`; `false` when it is no longer `owner`'s or the
    /// campaign is finished (cancelled through any replica): stop sending.
    fn renew_campaign_lease(&self, id: &str, owner: &str, lease_ms: i64) -> StoreFuture<'_, bool>;
    /// Give back `owner`'s lease on campaign `id`, or (`None`) every campaign lease it holds.
    fn release_campaign_leases(&self, owner: &str, id: Option<&str>) -> StoreFuture<'_, u64>;
    /// Reserve one send slot under every limiter of `limits` (`(key, interval_us)`; one row per
    /// limiter, shared by every replica) at once: the slot is the first instant free under all
    /// of them, and each limiter's next free instant becomes that slot plus its interval.
    /// Returns how long to wait before sending, in microseconds of the database's clock (0 when
    /// the slot is now). Requests that each wait their returned time are at least each
    /// limiter's interval apart, whichever replica sends them. (Reserving the limiters one after
    /// the other would not do: a request held back by the second would let the first's later
    /// requests bunch up behind it.)
    fn reserve_rate_slot(&self, limits: &[(String, i64)]) -> StoreFuture<'_, i64>;
    /// Forget limiters whose key starts with `prefix` (a finished campaign's).
    fn delete_rate_slots(&self, prefix: &str) -> StoreFuture<'_, u64>;
    /// Probes in `seq` order after `after_seq`, optionally only those in `state`.
    fn campaign_probes(
        &self,
        id: &str,
        state: Option<ProbeState>,
        after_seq: i64,
        limit: i64,
    ) -> StoreFuture<'_, Vec<ProbeRecord>>;
    /// `pending` → `sent` (committed before the request goes out). `false` if the probe was not
    /// pending, or (`owner`) the campaign's lease is not `owner`'s or has expired: it must then
    /// not be sent.
    fn mark_probe_sent(&self, id: &str, seq: i64, owner: Option<&str>) -> StoreFuture<'_, bool>;
    /// Record the suspect-side outcome of a `sent` probe (and its sample) in one transaction;
    /// adds the probe's tokens to the campaign. A probe no longer `sent` (the replica that took
    /// the campaign over recorded it as failed) is left as it is: [`StoreError::LeaseLost`].
    fn finish_probe(&self, id: &str, seq: i64, outcome: ProbeOutcome) -> StoreFuture<'_, ()>;
    /// Upstream side: `pending` → `sent`; `false` if it was not pending or (`owner`) the lease
    /// is not `owner`'s.
    fn mark_upstream_sent(&self, id: &str, seq: i64, owner: Option<&str>) -> StoreFuture<'_, bool>;
    /// Record the upstream outcome: its first answer and any further ones (`extra`), or the
    /// error; nothing when the upstream side is no longer `sent` (as [`Store::finish_probe`]).
    fn finish_upstream(
        &self,
        id: &str,
        seq: i64,
        answer: Option<String>,
        extra: Vec<String>,
        error: Option<String>,
    ) -> StoreFuture<'_, ()>;
    /// Restart policy: every probe (and upstream request) still `sent` becomes `failed` with
    /// `error`; returns how many. Called before a campaign resumes.
    fn fail_in_flight_probes(&self, id: &str, error: &str) -> StoreFuture<'_, u64>;

    // --- allowlist and secrets (admin-managed)
    fn list_allowlist(&self) -> StoreFuture<'_, Vec<AllowEntry>>;
    fn add_allowlist(&self, entry: AllowEntry) -> StoreFuture<'_, ()>;
    fn delete_allowlist(&self, entry: &str) -> StoreFuture<'_, bool>;
    fn put_secret(
        &self,
        name: &str,
        value: &str,
        created_by: Option<String>,
    ) -> StoreFuture<'_, SecretInfo>;
    fn get_secret(&self, name: &str) -> StoreFuture<'_, Option<String>>;
    /// Bind secret `name` to these endpoints (replacing its list); `false` if there is no such secret.
    fn set_secret_hosts(&self, name: &str, hosts: Vec<String>) -> StoreFuture<'_, bool>;
    /// The endpoints secret `name` may be sent to; `None` if there is no such secret.
    fn secret_hosts(&self, name: &str) -> StoreFuture<'_, Option<Vec<String>>>;
    fn list_secrets(&self) -> StoreFuture<'_, Vec<SecretInfo>>;
    fn delete_secret(&self, name: &str) -> StoreFuture<'_, bool>;

    // --- served logs and membership results (store/served_sql.rs)
    /// Store a served log and all its answers in one transaction (`answers` in file order;
    /// `log.answers` and `log.prompts` are taken as given).
    fn create_served_log(
        &self,
        log: ServedLogRecord,
        answers: Vec<ServedAnswerRow>,
    ) -> StoreFuture<'_, ServedLogRecord>;
    fn get_served_log(&self, id: &str) -> StoreFuture<'_, Option<ServedLogRecord>>;
    /// Newest first.
    fn list_served_logs(&self, limit: i64, offset: i64) -> StoreFuture<'_, Vec<ServedLogRecord>>;
    fn delete_served_log(&self, id: &str) -> StoreFuture<'_, bool>;
    /// Answers in `seq` order after `after_seq`; only `account`'s when given.
    fn served_answers(
        &self,
        id: &str,
        account: Option<String>,
        after_seq: i64,
        limit: i64,
    ) -> StoreFuture<'_, Vec<ServedAnswerRow>>;
    fn add_membership_result(&self, rec: MembershipRecord) -> StoreFuture<'_, ()>;
    /// A suspect's membership results, newest first.
    fn membership_results(
        &self,
        suspect_id: &str,
        limit: i64,
    ) -> StoreFuture<'_, Vec<MembershipRecord>>;
}

pub use sql::split_hosts;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
