//! Batch jobs: persisted, resumable, cancellable.
//!
//! A job's input is a file under `DATA/uploads/` (streamed there by the upload handler). A worker
//! reads it line by line from the job's persisted cursor (byte offset + line number), processes a
//! chunk of lines, and writes the chunk's results (and, for `score` jobs, the new samples) together
//! with the advanced cursor in ONE transaction. After a crash the restarted server resumes every
//! `queued`/`running` job from its cursor: lines before it have their results committed, lines
//! after it have none, and `INSERT OR IGNORE` on `(job_id, line_no)` guards the boundary anyway.
//!
//! Kinds: `score` (each line becomes a scored sample of a suspect), `profile_build`, and `audit`
//! (the corpus audit of `pedigree audit`: one JSON summary as the job's only result, line 1).
//! A job's kind and parameters are one typed [`JobSpec`]; the dispatch in
//! [`JobManager::run_kind`] is where later kinds (`probe`) plug in.
//!
//! `audit` jobs are NOT resumed from a cursor: the estimator needs every score (and the seeded
//! reservoir sample its whole stream), so an unfinished audit is restarted from scratch after a
//! restart. While it runs, its cursor holds progress only (`cursor_offset` = input bytes read,
//! `cursor_line` = texts scored); the summary is written in one transaction at the end.

use crate::config::Config;
use crate::service::claims::ClaimLoop;
use crate::service::engine::Engine;
use crate::service::{ServiceError, ServiceResult};
use crate::store::{
    JobChunk, JobPart, JobRecord, JobState, NewJob, NewPart, NewSample, PartChunk, Store,
    StoreError,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncSeekExt, BufReader};

pub struct JobManager {
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    claims: ClaimLoop,
    cancels: CancelFlags,
    chunk: usize,
    pause: Duration,
    max_text_chars: usize,
    config: Config,
    /// This replica's name in job leases.
    owner: String,
    lease_ms: i64,
}

/// Parameters of a `score` job.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ScoreJobParams {
    pub suspect_id: String,
    pub profile: String,
}

/// Parameters of an `audit` job.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct AuditJobParams {
    pub profile: String,
    /// Corpus format (a `datasets` format name); `None` = detected from the content.
    #[serde(default)]
    pub format: Option<String>,
    /// Score only a seeded uniform sample of this many texts.
    #[serde(default)]
    pub sample: Option<usize>,
    #[serde(default = "default_audit_seed")]
    pub seed: u64,
    /// Size of the uploaded corpus in bytes (progress = bytes read / bytes).
    #[serde(default)]
    pub bytes: u64,
}

fn default_audit_seed() -> u64 {
    detector::audit::AuditOptions::default().seed
}

/// Parameters of a `profile_build` job.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ProfileBuildParams {
    /// Name the fitted profile is stored under.
    #[serde(default = "default_build_name")]
    pub name: String,
    /// Upstream family the profile detects.
    #[serde(default = "default_build_upstream")]
    pub upstream: String,
}

fn default_build_name() -> String {
    "uploaded".into()
}

fn default_build_upstream() -> String {
    "openai".into()
}

/// The kinds of job, as stored in the job's `kind` column and named in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Each line becomes a scored sample of a suspect.
    Score,
    /// The corpus audit of `pedigree audit`: one JSON summary as the job's only result.
    Audit,
    /// Fit a profile from an uploaded labelled dataset.
    ProfileBuild,
}

impl JobKind {
    pub const ALL: [JobKind; 3] = [JobKind::Score, JobKind::Audit, JobKind::ProfileBuild];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Score => "score",
            JobKind::Audit => "audit",
            JobKind::ProfileBuild => "profile_build",
        }
    }

    /// The kind a stored or requested name denotes (`None` for an unknown name).
    pub fn parse(name: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// What a job does, with its parameters. Stored as the job's `kind` and `params` columns, in
/// the same JSON as before the enum existed, so jobs written by older servers still resume.
#[derive(Debug, Clone, PartialEq)]
pub enum JobSpec {
    Score(ScoreJobParams),
    Audit(AuditJobParams),
    ProfileBuild(ProfileBuildParams),
}

impl JobSpec {
    pub fn kind(&self) -> JobKind {
        match self {
            JobSpec::Score(_) => JobKind::Score,
            JobSpec::Audit(_) => JobKind::Audit,
            JobSpec::ProfileBuild(_) => JobKind::ProfileBuild,
        }
    }

    /// The `params` column.
    pub fn params(&self) -> serde_json::Value {
        let v = match self {
            JobSpec::Score(p) => serde_json::to_value(p),
            JobSpec::Audit(p) => serde_json::to_value(p),
            JobSpec::ProfileBuild(p) => serde_json::to_value(p),
        };
        // Plain structs of strings and numbers: serialising them cannot fail.
        v.unwrap_or(serde_json::Value::Null)
    }

    /// The spec of a stored job; an unknown kind is `NotImplemented` (a newer server's job).
    pub fn of(job: &JobRecord) -> ServiceResult<JobSpec> {
        let kind = JobKind::parse(&job.kind).ok_or_else(|| {
            ServiceError::NotImplemented(format!("unknown job kind `{}`", job.kind))
        })?;
        let bad = |e: serde_json::Error| ServiceError::Internal(format!("bad job parameters: {e}"));
        let p = job.params.clone();
        Ok(match kind {
            JobKind::Score => JobSpec::Score(serde_json::from_value(p).map_err(bad)?),
            JobKind::Audit => JobSpec::Audit(serde_json::from_value(p).map_err(bad)?),
            JobKind::ProfileBuild => JobSpec::ProfileBuild(serde_json::from_value(p).map_err(bad)?),
        })
    }
}

/// One input line of a `score` job: a JSON object (or a bare JSON string = the text).
#[derive(Debug, Deserialize)]
struct InputLine {
    text: String,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    source: Option<String>,
}

enum Outcome {
    Finished,
    Cancelled,
}

impl JobManager {
    pub fn new(store: Arc<dyn Store>, engine: Arc<Engine>, config: &Config) -> JobManager {
        JobManager {
            store,
            engine,
            claims: ClaimLoop::new(
                config.max_jobs.max(1),
                Duration::from_millis(config.job_poll_ms.clamp(50, 600_000)),
            ),
            cancels: CancelFlags::default(),
            chunk: config.job_chunk.max(1),
            pause: Duration::from_millis(config.job_pause_ms),
            max_text_chars: config.max_text_chars,
            config: config.clone(),
            owner: config.replica_id(),
            lease_ms: config.job_lease_ms.clamp(1000, 3_600_000) as i64,
        }
    }

    /// This replica's lease owner name.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Start claiming work: first give back the leases this replica id held in a previous life
    /// (a restart after a crash resumes its jobs at once instead of after the lease expiry), then
    /// claim unfinished jobs whose lease is free or expired, whoever created them, as slots free
    /// up: at once when this replica creates one, else every `--job-poll-ms`.
    pub async fn start(self: &Arc<Self>) -> ServiceResult<()> {
        let n = self.release_own_leases().await?;
        if n > 0 {
            tracing::info!(replica = %self.owner, leases = n, "took back this replica's leases from before its restart");
        }
        let me = self.clone();
        tokio::spawn(async move { me.claim_loop().await });
        Ok(())
    }

    /// Look for claimable work now (after a submit; tests).
    pub fn wake(&self) {
        self.claims.wake();
    }

    async fn claim_loop(self: Arc<Self>) {
        // Whole jobs (and jobs whose parts are all done, to finish them) first, then parts.
        let claim = || async {
            if let Some(job) = self.store.claim_job(&self.owner, self.lease_ms).await? {
                return Ok(Some(Work::Job(job)));
            }
            let part = self.store.claim_job_part(&self.owner, self.lease_ms).await?;
            Ok(part.map(|(job, part)| Work::Part(job, part)))
        };
        let start = |work: Work, slot| {
            let job = work.job();
            metrics::counter!("pedigree_jobs_claimed_total").increment(1);
            let started = match &work {
                Work::Job(j) => j.state == JobState::Running,
                Work::Part(_, p) => p.state == JobState::Running,
            };
            if started {
                // Running but claimable: its replica died (or gave it back).
                metrics::counter!("pedigree_job_leases_taken_over_total").increment(1);
            } else if job.state == JobState::Queued {
                // Lag: how long a new job waited for a replica (submit time is the submitting
                // replica's clock; skew below zero counts as none).
                let waited = (crate::store::now_ms() - job.created_ms).max(0);
                metrics::histogram!("pedigree_job_claim_lag_seconds")
                    .record(waited as f64 / 1000.0);
            }
            let part = match &work {
                Work::Part(_, p) => Some(p.part_no),
                Work::Job(_) => None,
            };
            tracing::info!(job = %job.id, kind = %job.kind, part, cursor_line = job.cursor_line, replica = %self.owner, "claimed job");
            self.run_claimed(work, slot);
        };
        self.claims.run("jobs", claim, start).await
    }

    /// Stop claiming, ask running jobs to stop after their current chunk, wait up to `grace`
    /// for them, and give back every lease at once so that another replica resumes the jobs
    /// without waiting for the expiry.
    pub async fn shutdown(&self, grace: Duration) {
        self.claims.stop(grace, || self.cancels.signal_all()).await;
        self.release_all_leases().await;
    }

    /// Give back every job and part lease this replica id holds; how many.
    async fn release_own_leases(&self) -> Result<u64, StoreError> {
        Ok(self.store.release_job_leases(&self.owner, None).await?
            + self.store.release_part_leases(&self.owner, None).await?)
    }

    /// [`JobManager::release_own_leases`] at shutdown: a failure is logged (the leases expire).
    async fn release_all_leases(&self) {
        match self.release_own_leases().await {
            Ok(n) if n > 0 => {
                tracing::info!(replica = %self.owner, leases = n, "job leases given back")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not give back job leases; they expire"),
        }
    }

    /// Record a job over an uploaded input (already durable on disk) and start it. `parts`: where
    /// the upload may be cut ([`crate::service::parts`]); used for score jobs, and for audits
    /// whose input reads the same in parts (JSONL, not sampled).
    pub async fn submit(
        self: &Arc<Self>,
        spec: &JobSpec,
        input: &std::path::Path,
        total: Option<i64>,
        created_by: &str,
        parts: &[NewPart],
    ) -> ServiceResult<JobRecord> {
        let parts = match spec {
            JobSpec::Score(_) => parts.to_vec(),
            JobSpec::Audit(p) if p.sample.is_none() && !parts.is_empty() => {
                let (input, format) = (input.to_path_buf(), p.format.clone());
                let splits = tokio::task::spawn_blocking(move || {
                    let format = format.map(|f| f.parse::<datasets::Format>()).transpose().ok()?;
                    datasets::splits_at_lines(&input, format.as_ref()).ok()
                })
                .await
                .ok()
                .flatten();
                // Undetectable input runs whole, and fails there with the reason.
                if splits == Some(true) {
                    parts.to_vec()
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        };
        let job = self
            .store
            .create_job(NewJob {
                id: format!("job_{}", crate::ids::random_base62(16)),
                kind: spec.kind().as_str().into(),
                params: spec.params(),
                input_path: Some(self.config.stored_path(input)),
                total,
                created_by: Some(created_by.to_string()),
                parts,
            })
            .await?;
        self.wake();
        Ok(job)
    }

    /// Run claimed work in the background, renewing its lease every third of the lease time.
    /// A lease that cannot be renewed (taken over, or the job was cancelled elsewhere) stops the
    /// work after its current chunk, and the fenced commits write nothing more.
    fn run_claimed(self: &Arc<Self>, work: Work, slot: tokio::sync::OwnedSemaphorePermit) {
        let id = work.job().id.clone();
        let part = match &work {
            Work::Part(_, p) => Some(p.part_no),
            Work::Job(_) => None,
        };
        let key = cancel_key(&id, part);
        let flag = self.cancels.register(&key);
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = {
            let (me, id, flag, lost) = (self.clone(), id.clone(), flag.clone(), lost.clone());
            tokio::spawn(async move {
                let every = Duration::from_millis((me.lease_ms / 3).max(1) as u64);
                loop {
                    tokio::time::sleep(every).await;
                    let renewed = match part {
                        None => me.store.renew_job_lease(&id, &me.owner, me.lease_ms).await,
                        Some(no) => {
                            me.store.renew_part_lease(&id, no, &me.owner, me.lease_ms).await
                        }
                    };
                    match renewed {
                        Ok(true) => {}
                        Ok(false) => {
                            lost.store(true, Ordering::SeqCst);
                            flag.store(true, Ordering::SeqCst);
                            return;
                        }
                        // A failed renewal is retried; the fenced commit is the safety net.
                        Err(e) => {
                            tracing::warn!(job = %id, part, error = %e, "could not renew the job lease")
                        }
                    }
                }
            })
        };
        let me = self.clone();
        tokio::spawn(async move {
            let _slot = slot;
            metrics::gauge!("pedigree_jobs_running").increment(1.0);
            let res = match work {
                Work::Job(job) => me.run(job, &flag).await,
                Work::Part(job, p) => me.run_part(job, p, &flag).await,
            };
            heartbeat.abort();
            metrics::gauge!("pedigree_jobs_running").decrement(1.0);
            let lease_lost = lost.load(Ordering::SeqCst)
                || matches!(res, Err(ServiceError::Store(StoreError::LeaseLost(_))));
            let state = match res {
                _ if lease_lost => {
                    tracing::info!(job = %id, part, replica = %me.owner, "job lease lost; another replica resumes it");
                    metrics::counter!("pedigree_job_leases_lost_total").increment(1);
                    None
                }
                Ok(Outcome::Finished) if part.is_some() => {
                    // The job may be ready to finish (its last part): claim it now.
                    metrics::counter!("pedigree_job_parts_done_total").increment(1);
                    me.wake();
                    None
                }
                Ok(Outcome::Finished) => Some((JobState::Done, None)),
                // A part of a job cancelled (or failed) elsewhere: stopped at its next chunk.
                Ok(Outcome::Cancelled) | Err(ServiceError::Store(StoreError::Finished(_))) => None,
                Err(e) => {
                    tracing::warn!(job = %id, part, error = %e, "job failed");
                    Some((JobState::Failed, Some(e.to_string())))
                }
            };
            if let Some((s, err)) = state {
                if let Err(e) = me.store.set_job_state(&id, s, err).await {
                    tracing::error!(job = %id, error = %e, "could not record job state");
                }
                metrics::counter!("pedigree_jobs_finished_total", "state" => s.as_str())
                    .increment(1);
            }
            if !lease_lost {
                // Stopped here but unfinished (shutdown): another replica may take it at once.
                let released = match part {
                    None => me.store.release_job_leases(&me.owner, Some(&id)).await,
                    Some(no) => me.store.release_part_leases(&me.owner, Some((&id, no))).await,
                };
                if let Err(e) = released {
                    tracing::warn!(job = %id, part, error = %e, "could not give back the job lease");
                }
                me.remove_finished_upload(&id).await;
            }
            me.cancels.remove(&key);
        });
    }

    /// A finished (done, failed or cancelled) job's upload is deleted: its results are in the
    /// store, and the file would otherwise stay in `DATA/uploads/` for ever (issue 14 item 13).
    async fn remove_finished_upload(&self, id: &str) {
        let Ok(Some(job)) = self.store.get_job(id).await else { return };
        if let (true, Some(p)) = (job.state.is_terminal(), job.input_path.as_deref()) {
            match tokio::fs::remove_file(self.config.resolve(p)).await {
                Ok(()) => tracing::debug!(job = %id, "upload removed"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(job = %id, error = %e, "could not remove the upload"),
            }
        }
    }

    /// Cancel a job: it stops after its current chunk; results so far are kept.
    pub async fn cancel(&self, id: &str) -> ServiceResult<JobRecord> {
        let job = self
            .store
            .get_job(id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("job `{id}`")))?;
        ensure_cancellable("job", id, job.state)?;
        self.cancels.signal(id);
        self.store.set_job_state(id, JobState::Cancelled, None).await?;
        Ok(self.store.get_job(id).await?.unwrap_or(job))
    }

    async fn run(&self, job: JobRecord, cancel: &Arc<AtomicBool>) -> ServiceResult<Outcome> {
        let id = job.id.as_str();
        if job.state.is_terminal() {
            return Ok(Outcome::Cancelled);
        }
        if !self.store.set_job_state(id, JobState::Running, None).await? {
            return Ok(Outcome::Cancelled);
        }
        self.run_kind(job, cancel).await
    }

    async fn run_kind(&self, job: JobRecord, cancel: &Arc<AtomicBool>) -> ServiceResult<Outcome> {
        let spec = JobSpec::of(&job)?;
        if job.parts > 0 {
            // Claimed whole only once every part is done: finish it.
            return self.finish_parts(job, spec).await;
        }
        match spec {
            JobSpec::Score(p) => self.run_score(job, p, cancel, None).await,
            JobSpec::Audit(p) => self.run_audit(job, p, cancel.clone()).await,
            JobSpec::ProfileBuild(p) => self.run_profile_build(job, p).await,
        }
    }

    async fn run_profile_build(
        &self,
        job: JobRecord,
        params: ProfileBuildParams,
    ) -> ServiceResult<Outcome> {
        let input = self.input_of(&job)?;
        let name = params.name.clone();
        let profile = self.engine.build_profile(input, params).await?;
        let (profile, bytes) = self
            .engine
            .run_cpu(move || {
                let bytes = profile.to_bytes();
                (profile, bytes)
            })
            .await?;
        let bytes = bytes.map_err(|e| ServiceError::Internal(e.to_string()))?;
        let (store, engine) = (self.store.as_ref(), self.engine.as_ref());
        let rec =
            crate::service::profiles::save(store, engine, &self.config, &name, profile, bytes)
                .await?;
        let meta = rec.meta;
        let chunk = JobChunk {
            cursor_offset: job.cursor_offset,
            cursor_line: job.cursor_line,
            results: vec![(1, serde_json::json!({"profile": name, "meta": meta}))],
            samples: None,
            lease_owner: Some(self.owner.clone()),
        };
        self.store.commit_job_chunk(&job.id, chunk).await?;
        Ok(Outcome::Finished)
    }

    /// Run a claimed part of a job (see [`crate::service::parts`]).
    async fn run_part(
        &self,
        job: JobRecord,
        part: JobPart,
        cancel: &Arc<AtomicBool>,
    ) -> ServiceResult<Outcome> {
        if job.state.is_terminal()
            || !self.store.set_job_state(&job.id, JobState::Running, None).await?
        {
            return Ok(Outcome::Cancelled);
        }
        match JobSpec::of(&job)? {
            JobSpec::Score(p) => self.run_score(job, p, cancel, Some(part)).await,
            JobSpec::Audit(p) => self.run_audit_part(job, part, p, cancel.clone()).await,
            JobSpec::ProfileBuild(_) => {
                Err(ServiceError::Internal("a profile build is never cut into parts".into()))
            }
        }
    }

    /// Finish a job whose parts are all done: a score job refreshes its suspect's verdict; an
    /// audit merges its parts' statistics — exactly the statistics of the whole corpus — into
    /// the summary, result line 1.
    async fn finish_parts(&self, job: JobRecord, spec: JobSpec) -> ServiceResult<Outcome> {
        match spec {
            JobSpec::Score(p) => {
                self.refresh_verdict(&p.suspect_id).await;
                Ok(Outcome::Finished)
            }
            JobSpec::Audit(params) => {
                let (_, profile) = self.engine.resolve(Some(&params.profile))?;
                // A page of parts' statistics at a time: memory stays bounded whatever the
                // number of parts.
                let mut merged: Option<AuditPart> = None;
                let mut after = -1;
                loop {
                    let page = self.store.part_stats(&job.id, after, 64).await?;
                    let Some(&(last, _)) = page.last() else { break };
                    after = last;
                    for (no, stats) in page {
                        let stats = stats.ok_or_else(|| {
                            ServiceError::Internal(format!("part {no} has no statistics"))
                        })?;
                        let p: AuditPart = serde_json::from_value(stats).map_err(|e| {
                            ServiceError::Internal(format!("part {no} statistics: {e}"))
                        })?;
                        match merged.as_mut() {
                            None => merged = Some(p),
                            Some(m) => {
                                m.run.merge(&p.run)?;
                                m.bytes += p.bytes;
                                m.read_secs += p.read_secs;
                            }
                        }
                    }
                }
                let a =
                    merged.ok_or_else(|| ServiceError::Internal("a job without parts".into()))?;
                let opts = audit_options(&params);
                let seconds = (crate::store::now_ms() - job.created_ms).max(0) as f64 / 1000.0;
                let (input, id) = (self.input_of(&job)?, job.id.clone());
                let summary = self
                    .engine
                    .run_cpu(move || audit_summary_of(&id, &input, &profile, &a, &opts, seconds))
                    .await??;
                // Each part counted its texts in the metric already.
                self.commit_audit_summary(&job.id, summary).await?;
                Ok(Outcome::Finished)
            }
            JobSpec::ProfileBuild(_) => {
                Err(ServiceError::Internal("a profile build is never cut into parts".into()))
            }
        }
    }

    /// The job's input file.
    fn input_of(&self, job: &JobRecord) -> ServiceResult<std::path::PathBuf> {
        Ok(self.config.resolve(
            job.input_path
                .as_deref()
                .ok_or_else(|| ServiceError::Internal("job has no input".into()))?,
        ))
    }

    /// Store an audit's summary as result line 1 (fenced by the job's lease), with the final
    /// cursor it states: bytes read, texts scored.
    async fn commit_audit_summary(
        &self,
        id: &str,
        summary: serde_json::Value,
    ) -> ServiceResult<()> {
        let chunk = JobChunk {
            cursor_offset: summary["bytes"].as_i64().unwrap_or(0),
            cursor_line: summary["scored"].as_i64().unwrap_or(0),
            results: vec![(1, summary)],
            samples: None,
            lease_owner: Some(self.owner.clone()),
        };
        Ok(self.store.commit_job_chunk(id, chunk).await?)
    }

    /// Audit the uploaded corpus from the start (see the module docs), reporting progress in the
    /// job's cursor every 250 ms, and store the summary as result line 1.
    async fn run_audit(
        &self,
        job: JobRecord,
        params: AuditJobParams,
        cancel: Arc<AtomicBool>,
    ) -> ServiceResult<Outcome> {
        // Restarted from scratch: progress starts again at zero.
        let reset = JobChunk { lease_owner: Some(self.owner.clone()), ..Default::default() };
        self.store.commit_job_chunk(&job.id, reset).await?;
        let progress = |bytes: u64, scored: u64| {
            let chunk = JobChunk {
                cursor_offset: bytes as i64,
                cursor_line: scored as i64,
                lease_owner: Some(self.owner.clone()),
                ..Default::default()
            };
            self.store.commit_job_chunk(&job.id, chunk)
        };
        let start = std::time::Instant::now();
        let Some(a) = self.audit_input(&job, &params, None, cancel, progress).await? else {
            return Ok(Outcome::Cancelled);
        };
        let (_, profile) = self.engine.resolve(Some(&params.profile))?;
        let opts = audit_options(&params);
        let (input, id) = (self.input_of(&job)?, job.id.clone());
        let summary = self
            .engine
            .run_cpu(move || {
                let seconds = start.elapsed().as_secs_f64();
                audit_summary_of(&id, &input, &profile, &a, &opts, seconds)
            })
            .await??;
        let scored = summary["scored"].as_u64().unwrap_or(0);
        self.commit_audit_summary(&job.id, summary).await?;
        metrics::counter!("pedigree_job_lines_total").increment(scored);
        Ok(Outcome::Finished)
    }

    /// Audit one part of the corpus from the part's start and store its statistics with it.
    async fn run_audit_part(
        &self,
        job: JobRecord,
        part: JobPart,
        params: AuditJobParams,
        cancel: Arc<AtomicBool>,
    ) -> ServiceResult<Outcome> {
        let chunk = |bytes: u64, scored: u64| PartChunk {
            owner: self.owner.clone(),
            cursor_offset: part.start_offset + bytes as i64,
            cursor_line: part.lines_before + scored as i64,
            ..Default::default()
        };
        // Restarted from scratch, like a whole audit.
        self.store.commit_part_chunk(&job.id, part.part_no, chunk(0, 0)).await?;
        let progress = |bytes: u64, scored: u64| {
            self.store.commit_part_chunk(&job.id, part.part_no, chunk(bytes, scored))
        };
        let Some(a) = self.audit_input(&job, &params, Some(&part), cancel, progress).await? else {
            return Ok(Outcome::Cancelled);
        };
        let stats = serde_json::to_value(&a).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let done = PartChunk {
            finished: true,
            stats: Some(stats),
            ..chunk((part.end_offset - part.start_offset) as u64, a.run.stats.scored)
        };
        self.store.commit_part_chunk(&job.id, part.part_no, done).await?;
        metrics::counter!("pedigree_job_lines_total").increment(a.run.stats.scored);
        Ok(Outcome::Finished)
    }

    /// Stream the job's corpus — or one part of it — through the auditor on the CPU pool,
    /// calling `progress(bytes read, texts scored)` every 250 ms; `None` when cancelled.
    async fn audit_input<Fut>(
        &self,
        job: &JobRecord,
        params: &AuditJobParams,
        part: Option<&JobPart>,
        cancel: Arc<AtomicBool>,
        progress: impl Fn(u64, u64) -> Fut,
    ) -> ServiceResult<Option<AuditPart>>
    where
        Fut: std::future::Future<Output = Result<(), StoreError>>,
    {
        use std::sync::atomic::AtomicU64;
        let (_, profile) = self.engine.resolve(Some(&params.profile))?;
        let format = params
            .format
            .as_deref()
            .map(|f| f.parse::<datasets::Format>())
            .transpose()
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let input = self.input_of(job)?;
        let input_shown = input.display().to_string();
        let opts = audit_options(params);
        let range =
            part.map(|p| (p.start_offset as u64..p.end_offset as u64, p.lines_before as u64));
        let bytes_read = Arc::new(AtomicU64::new(0));
        let scored = Arc::new(AtomicU64::new(0));
        let work = {
            let (bytes_read, scored, cancel) = (bytes_read.clone(), scored.clone(), cancel.clone());
            self.engine.run_cpu(move || -> ServiceResult<Option<AuditPart>> {
                let start = std::time::Instant::now();
                let records = match range {
                    None => datasets::open(&input, format),
                    Some((r, before)) => datasets::open_part(&input, format, r, before),
                }
                .map_err(|e| ServiceError::Invalid(crate::service::error_chain(&e)))?;
                let total = records.total_bytes();
                let counter = records.progress_counter();
                let stop = cancel.clone();
                let records = records.take_while(move |_| !stop.load(Ordering::SeqCst));
                let run = crate::service::audit::audit_records(&profile, records, &opts, &|n| {
                    scored.store(n, Ordering::Relaxed);
                    bytes_read.store(counter.load(Ordering::Relaxed), Ordering::Relaxed);
                })?;
                if cancel.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                let read_secs = start.elapsed().as_secs_f64();
                let bytes = counter.load(Ordering::Relaxed).max(total.unwrap_or(0));
                bytes_read.store(bytes, Ordering::Relaxed);
                Ok(Some(AuditPart { run, bytes, read_secs }))
            })
        };
        tokio::pin!(work);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.tick().await;
        let res = loop {
            tokio::select! {
                r = &mut work => break r?,
                _ = tick.tick() => {
                    let (b, n) = (bytes_read.load(Ordering::Relaxed), scored.load(Ordering::Relaxed));
                    if let Err(e) = progress(b, n).await {
                        if matches!(e, StoreError::LeaseLost(_) | StoreError::Finished(_)) {
                            // Taken over, or the job was cancelled: stop scoring; the fenced
                            // final commit writes nothing.
                            cancel.store(true, Ordering::SeqCst);
                        }
                        tracing::warn!(job = %job.id, error = %e, "could not record audit progress");
                    }
                }
            }
        };
        res.map_err(|e| {
            // Shown to API clients: the upload's path on the server is no business of theirs,
            // and a file-name hint is no use to someone who sent an HTTP body.
            let msg = format!("{e:#}").replace(&input_shown, "the upload").replace(
                "for CSV use a .csv name or csv:COLUMN",
                "for CSV give the parameter format=csv:COLUMN",
            );
            ServiceError::Invalid(msg)
        })
    }

    fn parse_line(&self, line: &str) -> Result<InputLine, String> {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("malformed JSON: {e}"))?;
        let parsed = match v {
            serde_json::Value::String(text) => {
                InputLine { text, prompt: None, id: None, source: None }
            }
            v @ serde_json::Value::Object(_) => {
                serde_json::from_value::<InputLine>(v).map_err(|e| format!("invalid line: {e}"))?
            }
            _ => return Err("each line must be a JSON object with a `text` field".into()),
        };
        if parsed.text.trim().is_empty() {
            return Err("`text` is empty".into());
        }
        // No store can hold U+0000 in text (PostgreSQL refuses it): an error for this line only.
        if [Some(&parsed.text), parsed.prompt.as_ref(), parsed.source.as_ref()]
            .into_iter()
            .flatten()
            .any(|s| s.contains('\0'))
        {
            return Err("the line contains a NUL character (\\u0000)".into());
        }
        if parsed.text.chars().count() > self.max_text_chars {
            return Err(format!("`text` is longer than {} characters", self.max_text_chars));
        }
        Ok(parsed)
    }

    /// Score the job's lines from its cursor to the end — or, for a `part`, from the part's
    /// cursor to the part's end — committing each chunk with the advanced cursor.
    async fn run_score(
        &self,
        job: JobRecord,
        params: ScoreJobParams,
        cancel: &AtomicBool,
        part: Option<JobPart>,
    ) -> ServiceResult<Outcome> {
        let (_, profile) = self.engine.resolve(Some(&params.profile))?;
        let input = self.input_of(&job)?;
        let (mut offset, mut line_no, end) = match &part {
            None => (job.cursor_offset, job.cursor_line, None),
            Some(p) => (p.cursor_offset, p.cursor_line, Some(p.end_offset)),
        };
        let mut file = tokio::fs::File::open(&input).await?;
        file.seek(std::io::SeekFrom::Start(offset as u64)).await?;
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let source = format!("job:{}", job.id);
        let mut buf = Vec::new();
        loop {
            if cancel.load(Ordering::SeqCst) {
                return Ok(Outcome::Cancelled);
            }
            // Read up to `chunk` non-blank lines.
            let mut lines: Vec<(i64, Result<InputLine, String>)> = Vec::new();
            let mut eof = false;
            while lines.len() < self.chunk {
                if end.is_some_and(|e| offset >= e) {
                    eof = true;
                    break;
                }
                buf.clear();
                let max = self.config.max_line_bytes;
                let (n, too_long) =
                    crate::limits::read_line_bounded(&mut reader, &mut buf, max).await?;
                if n == 0 {
                    eof = true;
                    break;
                }
                offset += n as i64;
                line_no += 1;
                if too_long {
                    lines.push((line_no, Err(format!("line longer than {max} bytes"))));
                    continue;
                }
                let s = String::from_utf8_lossy(&buf);
                // Blank means ASCII whitespace only, as the upload counted it (`\x0b` or
                // U+3000 alone are a malformed line, not a skipped one: progress reaches 1).
                let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
                if s.is_empty() {
                    continue;
                }
                lines.push((line_no, self.parse_line(s)));
            }
            let items: Vec<(String, Option<String>)> = lines
                .iter()
                .filter_map(|(_, l)| l.as_ref().ok().map(|l| (l.text.clone(), l.prompt.clone())))
                .collect();
            let mut scores = if items.is_empty() {
                Vec::new()
            } else {
                self.engine.score(profile.clone(), items).await?
            }
            .into_iter();
            let mut results = Vec::new();
            let mut samples = Vec::new();
            for (no, parsed) in lines {
                match parsed {
                    Ok(l) => {
                        let score = scores.next().ok_or_else(|| {
                            ServiceError::Internal("detector returned too few scores".into())
                        })?;
                        let score_json = serde_json::to_value(&score)
                            .map_err(|e| ServiceError::Internal(e.to_string()))?;
                        let mut r = serde_json::json!({
                            "line": no,
                            "id": l.id,
                            "score": score.score,
                            "fpr": score.fpr,
                            "family": score.family,
                        });
                        r["content_hash"] = content_hash(&l.text, l.prompt.as_deref()).into();
                        results.push((no, r));
                        samples.push(NewSample {
                            content_hash: content_hash(&l.text, l.prompt.as_deref()),
                            text: l.text,
                            prompt: l.prompt,
                            source: l.source.unwrap_or_else(|| source.clone()),
                            score: Some(score_json),
                        });
                    }
                    Err(msg) => results.push((no, serde_json::json!({"line": no, "error": msg}))),
                }
            }
            let n_results = results.len() as u64;
            let samples = Some((params.suspect_id.clone(), samples));
            match &part {
                None => {
                    let chunk = JobChunk {
                        cursor_offset: offset,
                        cursor_line: line_no,
                        results,
                        samples,
                        lease_owner: Some(self.owner.clone()),
                    };
                    self.store.commit_job_chunk(&job.id, chunk).await?
                }
                Some(p) => {
                    let chunk = PartChunk {
                        owner: self.owner.clone(),
                        cursor_offset: offset,
                        cursor_line: line_no,
                        results,
                        samples,
                        finished: eof,
                        stats: None,
                    };
                    self.store.commit_part_chunk(&job.id, p.part_no, chunk).await?
                }
            }
            metrics::counter!("pedigree_job_lines_total").increment(n_results);
            if eof {
                break;
            }
            if !self.pause.is_zero() {
                tokio::time::sleep(self.pause).await;
            }
        }
        if part.is_none() {
            self.refresh_verdict(&params.suspect_id).await;
        }
        Ok(Outcome::Finished)
    }

    /// Refresh the suspect's cached verdict for the dashboard (best effort).
    async fn refresh_verdict(&self, suspect_id: &str) {
        let store = self.store.as_ref();
        let refreshed = crate::service::suspects::refresh_verdict(
            store,
            &self.engine,
            suspect_id,
            Default::default(),
        )
        .await;
        if let Err(e) = refreshed {
            tracing::info!(suspect = %suspect_id, error = %e, "verdict not refreshed after job");
        }
    }
}

/// What a claim gives a replica.
enum Work {
    /// A whole job, or one whose parts are all done (to finish it).
    Job(JobRecord),
    /// One part of a job.
    Part(JobRecord, JobPart),
}

impl Work {
    fn job(&self) -> &JobRecord {
        match self {
            Work::Job(j) | Work::Part(j, _) => j,
        }
    }
}

/// The cancel flag of a job (`id`) or of one of its parts (`id#part`).
fn cancel_key(id: &str, part: Option<i64>) -> String {
    match part {
        None => id.to_string(),
        Some(no) => format!("{id}#{no}"),
    }
}

/// An audited corpus or part: its run and how much it read in how long (stored as a finished
/// part's statistics).
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct AuditPart {
    pub run: crate::service::audit::AuditRun,
    pub bytes: u64,
    pub read_secs: f64,
}

fn audit_options(p: &AuditJobParams) -> detector::audit::AuditOptions {
    detector::audit::AuditOptions { sample: p.sample, seed: p.seed, ..Default::default() }
}

/// The summary of audit job `id` over `input` (an error when it held no text). Records without
/// a source of their own name the input file: shown as `job:ID`, not the server's upload path.
fn audit_summary_of(
    id: &str,
    input: &std::path::Path,
    profile: &detector::Profile,
    a: &AuditPart,
    opts: &detector::audit::AuditOptions,
    seconds: f64,
) -> ServiceResult<serde_json::Value> {
    let run = &a.run;
    if run.texts == 0 {
        return Err(ServiceError::Invalid(format!(
            "no texts to audit (skipped {} malformed records, {} empty texts)",
            run.skipped, run.empty
        )));
    }
    let (mut summary, _) =
        crate::service::audit::audit_summary(profile, run, opts, a.bytes, seconds, a.read_secs);
    let own_path = input.display().to_string();
    if let Some(top) = summary["top_texts"].as_array_mut() {
        for t in top {
            if t["source"].as_str() == Some(own_path.as_str()) {
                t["source"] = format!("job:{id}").into();
            }
        }
    }
    Ok(summary)
}

/// Cancellation flags of running background tasks (jobs, probe campaigns), by id.
#[derive(Default)]
pub struct CancelFlags(Mutex<HashMap<String, Arc<AtomicBool>>>);

impl CancelFlags {
    /// A fresh flag for task `id`, to be polled by the task.
    pub fn register(&self, id: &str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.0.lock().expect("cancel flags").insert(id.to_string(), flag.clone());
        flag
    }
    /// Ask task `id` (and its parts, `id#N`) to stop (no-op when none runs in this process).
    pub fn signal(&self, id: &str) {
        let part = format!("{id}#");
        for (k, f) in self.0.lock().expect("cancel flags").iter() {
            if k == id || k.starts_with(&part) {
                f.store(true, Ordering::SeqCst);
            }
        }
    }
    pub fn remove(&self, id: &str) {
        self.0.lock().expect("cancel flags").remove(id);
    }
    /// Ask every task to stop (shutdown).
    pub fn signal_all(&self) {
        for f in self.0.lock().expect("cancel flags").values() {
            f.store(true, Ordering::SeqCst);
        }
    }
}

/// A finished job or campaign cannot be cancelled: 409.
pub fn ensure_cancellable(what: &str, id: &str, state: JobState) -> ServiceResult<()> {
    if state.is_terminal() {
        return Err(ServiceError::Conflict(format!("{what} `{id}` is already {}", state.as_str())));
    }
    Ok(())
}

pub use crate::service::suspects::content_hash;

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: &str, params: serde_json::Value) -> JobRecord {
        JobRecord {
            id: "job_x".into(),
            kind: kind.into(),
            state: JobState::Queued,
            params,
            input_path: None,
            total: None,
            done: 0,
            cursor_offset: 0,
            cursor_line: 0,
            error: None,
            created_by: None,
            created_ms: 0,
            updated_ms: 0,
            lease_owner: None,
            lease_expires_ms: None,
            parts: 0,
            parts_done: 0,
        }
    }

    #[test]
    fn specs_round_trip_through_the_stored_columns() {
        let specs = [
            JobSpec::Score(ScoreJobParams { suspect_id: "s".into(), profile: "p".into() }),
            JobSpec::Audit(AuditJobParams {
                profile: "p".into(),
                format: Some("csv:text".into()),
                sample: Some(5),
                seed: 7,
                bytes: 99,
            }),
            JobSpec::ProfileBuild(ProfileBuildParams { name: "n".into(), upstream: "u".into() }),
        ];
        for spec in specs {
            let job = record(spec.kind().as_str(), spec.params());
            assert_eq!(JobSpec::of(&job).unwrap(), spec);
        }
    }

    #[test]
    fn stored_params_of_older_servers_still_parse() {
        // A profile build stored with only a name, an audit without seed or bytes.
        let b = JobSpec::of(&record("profile_build", serde_json::json!({"name": "x"}))).unwrap();
        assert_eq!(
            b,
            JobSpec::ProfileBuild(ProfileBuildParams {
                name: "x".into(),
                upstream: "openai".into()
            })
        );
        let a = JobSpec::of(&record("audit", serde_json::json!({"profile": "p"}))).unwrap();
        let JobSpec::Audit(a) = a else { panic!("not an audit: {a:?}") };
        assert_eq!((a.seed, a.bytes, a.sample), (default_audit_seed(), 0, None));
    }

    #[test]
    fn unknown_kinds_and_bad_params_are_errors_not_panics() {
        let e = JobSpec::of(&record("probe", serde_json::json!({}))).unwrap_err();
        assert!(matches!(e, ServiceError::NotImplemented(_)), "{e:?}");
        let e = JobSpec::of(&record("score", serde_json::json!({"profile": 3}))).unwrap_err();
        assert!(matches!(e, ServiceError::Internal(_)), "{e:?}");
        assert_eq!(JobKind::parse("profile_build"), Some(JobKind::ProfileBuild));
        assert_eq!(JobKind::parse("Score"), None);
    }
}
