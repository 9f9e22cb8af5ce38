//! The PostgreSQL store (`--database-url postgres://…`): the same semantics as [`SqliteStore`]
//! (same tables, dedup, ordering, paging and errors), on one connection pool.
//!
//! SQLite serialises every write through one connection; PostgreSQL runs transactions
//! concurrently (READ COMMITTED). The guarantees that matter are kept by the statements themselves
//! (`… WHERE state = 'pending'` updates, `ON CONFLICT DO NOTHING`) and, where a transaction reads
//! what it then writes, by locking the owning row first: a job's row before its chunk (so `done`
//! counts every committed result), a suspect's row before its samples (so concurrent inserts of
//! overlapping samples queue instead of deadlocking), a campaign's row before its probes. Locks are
//! always taken in the order job → suspect → campaign → probe.
//!
//! [`SqliteStore`]: super::SqliteStore

use super::*;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::Row;
use std::str::FromStr;
use std::time::Duration;

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connect to `url` (`postgres://user:password@host:port/db`, or `?host=/dir` for a unix
    /// socket) and run the PostgreSQL migrations (`migrations-pg/`; concurrent starts are safe:
    /// sqlx takes an advisory lock).
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let opts = PgConnectOptions::from_str(url)?.application_name("pedigree");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations-pg").run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// The connection pool (tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// SQLite treats a negative LIMIT as "no limit" and a negative OFFSET as 0; PostgreSQL rejects
/// both. `LIMIT NULL` is PostgreSQL's "no limit".
fn limit(n: i64) -> Option<i64> {
    (n >= 0).then_some(n)
}
fn offset(n: i64) -> i64 {
    n.max(0)
}

/// SQLite stores a NaN REAL as NULL; PostgreSQL would store NaN (and sort it above every number).
fn real(x: Option<f64>) -> Option<f64> {
    x.filter(|v| !v.is_nan())
}

fn key_from_row(r: &PgRow) -> Result<ApiKeyRecord, StoreError> {
    let role: String = r.try_get("role")?;
    Ok(ApiKeyRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        key_hash: r.try_get("key_hash")?,
        created_ms: r.try_get("created_ms")?,
        revoked_ms: r.try_get("revoked_ms")?,
    })
}

fn json_col(r: &PgRow, col: &str) -> Result<Option<serde_json::Value>, StoreError> {
    let s: Option<String> = r.try_get(col)?;
    Ok(match s {
        Some(s) => Some(serde_json::from_str(&s)?),
        None => None,
    })
}

fn suspect_from_row(r: &PgRow) -> Result<SuspectRecord, StoreError> {
    Ok(SuspectRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        profile: r.try_get("profile")?,
        created_ms: r.try_get("created_ms")?,
        updated_ms: r.try_get("updated_ms")?,
        samples: r.try_get("n_samples")?,
        verdict: json_col(r, "verdict")?,
        verdict_n: r.try_get("verdict_n")?,
        strength: r.try_get("strength")?,
    })
}

fn sample_from_row(r: &PgRow) -> Result<SampleRecord, StoreError> {
    Ok(SampleRecord {
        id: r.try_get("id")?,
        suspect_id: r.try_get("suspect_id")?,
        content_hash: r.try_get("content_hash")?,
        text: r.try_get("text")?,
        prompt: r.try_get("prompt")?,
        source: r.try_get("source")?,
        added_ms: r.try_get("added_ms")?,
        score: json_col(r, "score")?,
    })
}

fn profile_from_row(r: &PgRow) -> Result<ProfileRecord, StoreError> {
    Ok(ProfileRecord {
        name: r.try_get("name")?,
        upstream: r.try_get("upstream")?,
        meta: json_col(r, "meta")?.unwrap_or(serde_json::Value::Null),
        path: r.try_get("path")?,
        builtin: r.try_get("builtin")?,
        created_ms: r.try_get("created_ms")?,
    })
}

fn job_from_row(r: &PgRow) -> Result<JobRecord, StoreError> {
    let state: String = r.try_get("state")?;
    Ok(JobRecord {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        params: json_col(r, "params")?.unwrap_or(serde_json::Value::Null),
        input_path: r.try_get("input_path")?,
        total: r.try_get("total")?,
        done: r.try_get("done")?,
        cursor_offset: r.try_get("cursor_offset")?,
        cursor_line: r.try_get("cursor_line")?,
        error: r.try_get("error")?,
        created_by: r.try_get("created_by")?,
        created_ms: r.try_get("created_ms")?,
        updated_ms: r.try_get("updated_ms")?,
    })
}

const SUSPECT_COLS: &str = "s.id, s.name, s.description, s.profile, s.created_ms, s.updated_ms, s.verdict, \
     s.verdict_n, s.strength, (SELECT COUNT(*) FROM samples x WHERE x.suspect_id = s.id) AS n_samples";

/// Insert samples in the caller's transaction, skipping content the suspect already has.
/// Locks the suspect's row first (see the module doc); an unknown suspect fails on the foreign key.
async fn insert_samples(
    conn: &mut sqlx::PgConnection,
    suspect_id: &str,
    samples: Vec<NewSample>,
) -> Result<Vec<Option<i64>>, StoreError> {
    let now = now_ms();
    sqlx::query("UPDATE suspects SET updated_ms = $1 WHERE id = $2")
        .bind(now)
        .bind(suspect_id)
        .execute(&mut *conn)
        .await?;
    let mut ids = Vec::with_capacity(samples.len());
    for s in samples {
        let row = sqlx::query(
            "INSERT INTO samples (suspect_id, content_hash, text, prompt, source, added_ms, score) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(suspect_id)
        .bind(&s.content_hash)
        .bind(&s.text)
        .bind(&s.prompt)
        .bind(&s.source)
        .bind(now)
        .bind(s.score.as_ref().map(|v| v.to_string()))
        .fetch_optional(&mut *conn)
        .await?;
        ids.push(match row {
            Some(r) => Some(r.try_get::<i64, _>(0)?),
            None => None,
        });
    }
    Ok(ids)
}

fn probe_from_row(r: &PgRow) -> Result<ProbeRecord, StoreError> {
    let state: String = r.try_get("state")?;
    let up: Option<String> = r.try_get("upstream_state")?;
    Ok(ProbeRecord {
        campaign_id: r.try_get("campaign_id")?,
        seq: r.try_get("seq")?,
        probe_id: r.try_get("probe_id")?,
        kind: r.try_get("kind")?,
        prompt: r.try_get("prompt")?,
        state: ProbeState::parse(&state).unwrap_or(ProbeState::Failed),
        attempts: r.try_get("attempts")?,
        answer: r.try_get("answer")?,
        error: r.try_get("error")?,
        tokens: r.try_get("tokens")?,
        claims: json_col(r, "claims")?,
        sample_id: r.try_get("sample_id")?,
        upstream_state: up.as_deref().and_then(ProbeState::parse),
        upstream_answer: r.try_get("upstream_answer")?,
        upstream_error: r.try_get("upstream_error")?,
        sent_ms: r.try_get("sent_ms")?,
        done_ms: r.try_get("done_ms")?,
    })
}

/// Campaign columns plus the probe counts, computed from `campaign_probes` in one pass.
const CAMPAIGN_COLS: &str = "c.*, \
     COALESCE(n.n_total, 0) AS n_total, COALESCE(n.n_pending, 0) AS n_pending, COALESCE(n.n_sent, 0) AS n_sent, \
     COALESCE(n.n_answered, 0) AS n_answered, COALESCE(n.n_failed, 0) AS n_failed, \
     COALESCE(n.n_up_answered, 0) AS n_up_answered, COALESCE(n.n_up_failed, 0) AS n_up_failed";

const CAMPAIGN_FROM: &str = "campaigns c LEFT JOIN LATERAL (SELECT COUNT(*) AS n_total, \
     COUNT(*) FILTER (WHERE p.state = 'pending') AS n_pending, \
     COUNT(*) FILTER (WHERE p.state = 'sent') AS n_sent, \
     COUNT(*) FILTER (WHERE p.state = 'answered') AS n_answered, \
     COUNT(*) FILTER (WHERE p.state = 'failed') AS n_failed, \
     COUNT(*) FILTER (WHERE p.upstream_state = 'answered') AS n_up_answered, \
     COUNT(*) FILTER (WHERE p.upstream_state = 'failed') AS n_up_failed \
     FROM campaign_probes p WHERE p.campaign_id = c.id) n ON TRUE";

fn campaign_from_row(r: &PgRow) -> Result<CampaignRecord, StoreError> {
    let state: String = r.try_get("state")?;
    let (in_flight, answered, failed): (i64, i64, i64) = (r.try_get("n_sent")?, r.try_get("n_answered")?, r.try_get("n_failed")?);
    Ok(CampaignRecord {
        id: r.try_get("id")?,
        suspect_id: r.try_get("suspect_id")?,
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        spec: json_col(r, "spec")?.unwrap_or_default(),
        fingerprint: r.try_get("fingerprint")?,
        sequential: json_col(r, "sequential")?,
        p_value: r.try_get("p_value")?,
        decision: r.try_get("decision")?,
        teacher: r.try_get("teacher")?,
        stop_reason: r.try_get("stop_reason")?,
        error: r.try_get("error")?,
        tokens: r.try_get("tokens")?,
        probes: ProbeCounts {
            total: r.try_get("n_total")?,
            pending: r.try_get("n_pending")?,
            in_flight,
            answered,
            failed,
            sent: in_flight + answered + failed,
            upstream_answered: r.try_get("n_up_answered")?,
            upstream_failed: r.try_get("n_up_failed")?,
        },
        created_by: r.try_get("created_by")?,
        created_ms: r.try_get("created_ms")?,
        updated_ms: r.try_get("updated_ms")?,
    })
}

impl PgStore {
    /// Set the state of a job or campaign (`table`); a terminal state is never left.
    async fn set_state(&self, table: &'static str, id: &str, state: JobState, error: Option<String>) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE {table} SET state = $1, error = COALESCE($2, error), updated_ms = $3 \
             WHERE id = $4 AND state NOT IN ('done', 'failed', 'cancelled')"
        );
        let r = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state.as_str())
            .bind(error)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Campaigns matching `cond` (which may use `$1`, bound to `bind`), then `tail` (which may use
    /// `$2` / `$3` for limit and offset).
    async fn campaign_where(&self, cond: &str, bind: Option<String>, tail: &str, page: Option<(i64, i64)>) -> Result<Vec<CampaignRecord>, StoreError> {
        let sql = format!("SELECT {CAMPAIGN_COLS} FROM {CAMPAIGN_FROM} WHERE {cond} {tail}");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(b) = bind {
            q = q.bind(b);
        }
        if let Some((l, o)) = page {
            q = q.bind(l).bind(o);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(campaign_from_row).collect()
    }
}

impl Store for PgStore {
    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.pool.close().await;
            Ok(())
        })
    }

    fn create_key(&self, id: &str, name: &str, role: Role, key_hash: &str) -> StoreFuture<'_, ApiKeyRecord> {
        let rec = ApiKeyRecord {
            id: id.to_string(),
            name: name.to_string(),
            role,
            key_hash: key_hash.to_string(),
            created_ms: now_ms(),
            revoked_ms: None,
        };
        Box::pin(async move {
            sqlx::query("INSERT INTO api_keys (id, name, role, key_hash, created_ms) VALUES ($1, $2, $3, $4, $5)")
                .bind(&rec.id)
                .bind(&rec.name)
                .bind(rec.role.as_str())
                .bind(&rec.key_hash)
                .bind(rec.created_ms)
                .execute(&self.pool)
                .await?;
            Ok(rec)
        })
    }

    fn key_by_hash(&self, key_hash: &str) -> StoreFuture<'_, Option<ApiKeyRecord>> {
        let h = key_hash.to_string();
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = $1").bind(h).fetch_optional(&self.pool).await?;
            row.as_ref().map(key_from_row).transpose()
        })
    }

    fn list_keys(&self) -> StoreFuture<'_, Vec<ApiKeyRecord>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_ms, id").fetch_all(&self.pool).await?;
            rows.iter().map(key_from_row).collect()
        })
    }

    fn revoke_key(&self, id: &str) -> StoreFuture<'_, bool> {
        let id = id.to_string();
        Box::pin(async move {
            let r = sqlx::query("UPDATE api_keys SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn append_audit(&self, entries: Vec<AuditEntry>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if entries.is_empty() {
                return Ok(());
            }
            let mut tx = self.pool.begin().await?;
            for e in entries {
                sqlx::query(
                    "INSERT INTO audit_log (at_ms, key_id, role, action, target, detail, status) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(e.at_ms)
                .bind(e.key_id)
                .bind(e.role)
                .bind(e.action)
                .bind(e.target)
                .bind(e.detail.to_string())
                .bind(e.status as i64)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn list_audit(&self, q: AuditQuery) -> StoreFuture<'_, Vec<AuditEntry>> {
        Box::pin(async move {
            let limit = q.limit.unwrap_or(100).clamp(1, 1000);
            // strpos, like SQLite's instr: a case-sensitive substring match, no LIKE wildcards.
            let rows = sqlx::query(
                "SELECT * FROM audit_log WHERE ($1::text IS NULL OR key_id = $1) AND ($2::text IS NULL OR strpos(action, $2) > 0) \
                 AND ($3::bigint IS NULL OR at_ms >= $3) AND ($4::bigint IS NULL OR id < $4) ORDER BY id DESC LIMIT $5",
            )
            .bind(q.key_id)
            .bind(q.action)
            .bind(q.since_ms)
            .bind(q.before_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(AuditEntry {
                        id: r.try_get("id")?,
                        at_ms: r.try_get("at_ms")?,
                        key_id: r.try_get("key_id")?,
                        role: r.try_get("role")?,
                        action: r.try_get("action")?,
                        target: r.try_get("target")?,
                        detail: json_col(r, "detail")?.unwrap_or_default(),
                        status: r.try_get::<i64, _>("status")? as u16,
                    })
                })
                .collect()
        })
    }

    fn upsert_profile(&self, rec: ProfileRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO profiles (name, upstream, meta, path, builtin, created_ms) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (name) DO UPDATE SET upstream = excluded.upstream, meta = excluded.meta, \
                 path = excluded.path, builtin = excluded.builtin, created_ms = excluded.created_ms",
            )
            .bind(&rec.name)
            .bind(&rec.upstream)
            .bind(rec.meta.to_string())
            .bind(&rec.path)
            .bind(rec.builtin)
            .bind(rec.created_ms)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn list_profiles(&self) -> StoreFuture<'_, Vec<ProfileRecord>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM profiles ORDER BY builtin DESC, name").fetch_all(&self.pool).await?;
            rows.iter().map(profile_from_row).collect()
        })
    }

    fn get_profile(&self, name: &str) -> StoreFuture<'_, Option<ProfileRecord>> {
        let name = name.to_string();
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM profiles WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
            row.as_ref().map(profile_from_row).transpose()
        })
    }

    fn delete_profile(&self, name: &str) -> StoreFuture<'_, bool> {
        let name = name.to_string();
        Box::pin(async move {
            let r = sqlx::query("DELETE FROM profiles WHERE name = $1 AND NOT builtin").bind(name).execute(&self.pool).await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn create_suspect(&self, id: &str, name: &str, description: &str, profile: &str) -> StoreFuture<'_, SuspectRecord> {
        let now = now_ms();
        let rec = SuspectRecord {
            id: id.to_string(),
            name: name.to_string(),
            description: description.to_string(),
            profile: profile.to_string(),
            created_ms: now,
            updated_ms: now,
            samples: 0,
            verdict: None,
            verdict_n: None,
            strength: None,
        };
        Box::pin(async move {
            sqlx::query("INSERT INTO suspects (id, name, description, profile, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&rec.id)
                .bind(&rec.name)
                .bind(&rec.description)
                .bind(&rec.profile)
                .bind(rec.created_ms)
                .bind(rec.updated_ms)
                .execute(&self.pool)
                .await?;
            Ok(rec)
        })
    }

    fn get_suspect(&self, id: &str) -> StoreFuture<'_, Option<SuspectRecord>> {
        let id = id.to_string();
        Box::pin(async move {
            let sql = format!("SELECT {SUSPECT_COLS} FROM suspects s WHERE s.id = $1");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
            row.as_ref().map(suspect_from_row).transpose()
        })
    }

    fn list_suspects(&self, order: SuspectOrder, lim: i64, off: i64) -> StoreFuture<'_, Vec<SuspectRecord>> {
        Box::pin(async move {
            // `strength IS NULL` sorts false (scored) before true (unscored), as SQLite's 0 < 1.
            let order_by = match order {
                SuspectOrder::Strength => "s.strength IS NULL, s.strength DESC, s.created_ms DESC, s.id",
                SuspectOrder::Created => "s.created_ms DESC, s.id",
                SuspectOrder::Name => "s.name, s.id",
            };
            let sql = format!("SELECT {SUSPECT_COLS} FROM suspects s ORDER BY {order_by} LIMIT $1 OFFSET $2");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit(lim)).bind(offset(off)).fetch_all(&self.pool).await?;
            rows.iter().map(suspect_from_row).collect()
        })
    }

    fn delete_suspect(&self, id: &str) -> StoreFuture<'_, bool> {
        let id = id.to_string();
        Box::pin(async move {
            let r = sqlx::query("DELETE FROM suspects WHERE id = $1").bind(id).execute(&self.pool).await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn set_verdict(&self, id: &str, verdict: serde_json::Value, n: i64, strength: f64) -> StoreFuture<'_, ()> {
        let id = id.to_string();
        Box::pin(async move {
            sqlx::query("UPDATE suspects SET verdict = $1, verdict_n = $2, strength = $3 WHERE id = $4")
                .bind(verdict.to_string())
                .bind(n)
                .bind(real(Some(strength)))
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn add_samples(&self, suspect_id: &str, samples: Vec<NewSample>) -> StoreFuture<'_, AddOutcome> {
        let suspect_id = suspect_id.to_string();
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            let ids = insert_samples(&mut tx, &suspect_id, samples).await?;
            tx.commit().await?;
            Ok(AddOutcome { ids })
        })
    }

    fn list_samples(&self, suspect_id: &str, lim: i64, off: i64) -> StoreFuture<'_, Vec<SampleRecord>> {
        let suspect_id = suspect_id.to_string();
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM samples WHERE suspect_id = $1 ORDER BY id LIMIT $2 OFFSET $3")
                .bind(suspect_id)
                .bind(limit(lim))
                .bind(offset(off))
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(sample_from_row).collect()
        })
    }

    fn sample_scores(&self, suspect_id: &str) -> StoreFuture<'_, Vec<(i64, serde_json::Value)>> {
        let suspect_id = suspect_id.to_string();
        Box::pin(async move {
            let rows = sqlx::query("SELECT id, score FROM samples WHERE suspect_id = $1 AND score IS NOT NULL ORDER BY id")
                .bind(suspect_id)
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("id")?, json_col(r, "score")?.unwrap_or_default())))
                .collect()
        })
    }

    fn get_sample(&self, id: i64) -> StoreFuture<'_, Option<SampleRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM samples WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
            row.as_ref().map(sample_from_row).transpose()
        })
    }

    fn create_job(&self, job: NewJob) -> StoreFuture<'_, JobRecord> {
        Box::pin(async move {
            let now = now_ms();
            sqlx::query(
                "INSERT INTO jobs (id, kind, state, params, input_path, total, created_by, created_ms, updated_ms) \
                 VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8)",
            )
            .bind(&job.id)
            .bind(&job.kind)
            .bind(job.params.to_string())
            .bind(&job.input_path)
            .bind(job.total)
            .bind(&job.created_by)
            .bind(now)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(JobRecord {
                id: job.id,
                kind: job.kind,
                state: JobState::Queued,
                params: job.params,
                input_path: job.input_path,
                total: job.total,
                done: 0,
                cursor_offset: 0,
                cursor_line: 0,
                error: None,
                created_by: job.created_by,
                created_ms: now,
                updated_ms: now,
            })
        })
    }

    fn get_job(&self, id: &str) -> StoreFuture<'_, Option<JobRecord>> {
        let id = id.to_string();
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM jobs WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
            row.as_ref().map(job_from_row).transpose()
        })
    }

    fn list_jobs(&self, lim: i64, off: i64) -> StoreFuture<'_, Vec<JobRecord>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM jobs ORDER BY created_ms DESC, id LIMIT $1 OFFSET $2")
                .bind(limit(lim))
                .bind(offset(off))
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(job_from_row).collect()
        })
    }

    fn unfinished_jobs(&self) -> StoreFuture<'_, Vec<JobRecord>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_ms, id")
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(job_from_row).collect()
        })
    }

    fn set_job_state(&self, id: &str, state: JobState, error: Option<String>) -> StoreFuture<'_, bool> {
        let id = id.to_string();
        Box::pin(async move { self.set_state("jobs", &id, state, error).await })
    }

    fn commit_job_chunk(&self, id: &str, chunk: JobChunk) -> StoreFuture<'_, ()> {
        let id = id.to_string();
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            // The job's row first: chunks of one job commit one after the other, so `done` below
            // counts every committed result (SQLite gets this from its single writer).
            sqlx::query("SELECT 1 FROM jobs WHERE id = $1 FOR NO KEY UPDATE").bind(&id).fetch_optional(&mut *tx).await?;
            for (line_no, result) in &chunk.results {
                sqlx::query("INSERT INTO job_results (job_id, line_no, result) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(&id)
                    .bind(line_no)
                    .bind(result.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some((suspect_id, samples)) = chunk.samples {
                insert_samples(&mut tx, &suspect_id, samples).await?;
            }
            sqlx::query(
                "UPDATE jobs SET cursor_offset = $1, cursor_line = $2, updated_ms = $3, \
                 done = (SELECT COUNT(*) FROM job_results WHERE job_id = $4) WHERE id = $4",
            )
            .bind(chunk.cursor_offset)
            .bind(chunk.cursor_line)
            .bind(now_ms())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn job_results(&self, id: &str, after_line: i64, lim: i64) -> StoreFuture<'_, Vec<JobResultRow>> {
        let id = id.to_string();
        Box::pin(async move {
            let rows = sqlx::query("SELECT line_no, result FROM job_results WHERE job_id = $1 AND line_no > $2 ORDER BY line_no LIMIT $3")
                .bind(id)
                .bind(after_line)
                .bind(limit(lim))
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|r| Ok(JobResultRow { line_no: r.try_get("line_no")?, result: json_col(r, "result")?.unwrap_or_default() }))
                .collect()
        })
    }

    fn create_campaign(&self, c: NewCampaign) -> StoreFuture<'_, CampaignRecord> {
        Box::pin(async move {
            let now = now_ms();
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO campaigns (id, suspect_id, state, spec, fingerprint, created_by, created_ms, updated_ms) \
                 VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7)",
            )
            .bind(&c.id)
            .bind(&c.suspect_id)
            .bind(c.spec.to_string())
            .bind(&c.fingerprint)
            .bind(&c.created_by)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let up = if c.upstream { Some("pending") } else { None };
            for (i, p) in c.probes.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO campaign_probes (campaign_id, seq, probe_id, kind, prompt, upstream_state) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&c.id)
                .bind(i as i64 + 1)
                .bind(&p.probe_id)
                .bind(&p.kind)
                .bind(&p.prompt)
                .bind(up)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            self.get_campaign(&c.id).await?.ok_or_else(|| StoreError::NotFound(format!("campaign {}", c.id)))
        })
    }

    fn get_campaign(&self, id: &str) -> StoreFuture<'_, Option<CampaignRecord>> {
        let id = id.to_string();
        Box::pin(async move { Ok(self.campaign_where("c.id = $1", Some(id), "", None).await?.pop()) })
    }

    fn list_campaigns(&self, lim: i64, off: i64) -> StoreFuture<'_, Vec<CampaignRecord>> {
        // As SQLite's: a negative limit or offset counts as 0.
        Box::pin(async move {
            self.campaign_where("TRUE", None, "ORDER BY c.created_ms DESC, c.id LIMIT $1 OFFSET $2", Some((lim.max(0), off.max(0)))).await
        })
    }

    fn unfinished_campaigns(&self) -> StoreFuture<'_, Vec<CampaignRecord>> {
        Box::pin(async move { self.campaign_where("c.state IN ('queued', 'running')", None, "ORDER BY c.created_ms, c.id", None).await })
    }

    fn campaign_by_fingerprint(&self, fingerprint: &str) -> StoreFuture<'_, Option<CampaignRecord>> {
        let f = fingerprint.to_string();
        Box::pin(async move {
            Ok(self.campaign_where("c.fingerprint = $1", Some(f), "ORDER BY c.created_ms DESC, c.id LIMIT 1", None).await?.pop())
        })
    }

    fn set_campaign_state(&self, id: &str, state: JobState, error: Option<String>) -> StoreFuture<'_, bool> {
        let id = id.to_string();
        Box::pin(async move { self.set_state("campaigns", &id, state, error).await })
    }

    fn update_campaign_progress(&self, id: &str, p: CampaignProgress) -> StoreFuture<'_, ()> {
        let id = id.to_string();
        Box::pin(async move {
            sqlx::query(
                "UPDATE campaigns SET sequential = COALESCE($1, sequential), p_value = COALESCE($2, p_value), \
                 decision = COALESCE($3, decision), teacher = COALESCE($4, teacher), \
                 stop_reason = COALESCE($5, stop_reason), updated_ms = $6 WHERE id = $7",
            )
            .bind(p.sequential.map(|v| v.to_string()))
            .bind(real(p.p_value))
            .bind(p.decision)
            .bind(p.teacher)
            .bind(p.stop_reason)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn campaign_probes(&self, id: &str, state: Option<ProbeState>, after_seq: i64, lim: i64) -> StoreFuture<'_, Vec<ProbeRecord>> {
        let id = id.to_string();
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM campaign_probes WHERE campaign_id = $1 AND ($2::text IS NULL OR state = $2) AND seq > $3 \
                 ORDER BY seq LIMIT $4",
            )
            .bind(id)
            .bind(state.map(|s| s.as_str()))
            .bind(after_seq)
            .bind(limit(lim))
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(probe_from_row).collect()
        })
    }

    fn mark_probe_sent(&self, id: &str, seq: i64) -> StoreFuture<'_, bool> {
        let id = id.to_string();
        Box::pin(async move {
            // A concurrent second call waits for the first one's row lock, then re-checks
            // `state = 'pending'` on the committed row: at most one of them succeeds.
            let r = sqlx::query(
                "UPDATE campaign_probes SET state = 'sent', sent_ms = $1 WHERE campaign_id = $2 AND seq = $3 AND state = 'pending'",
            )
            .bind(now_ms())
            .bind(id)
            .bind(seq)
            .execute(&self.pool)
            .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn finish_probe(&self, id: &str, seq: i64, o: ProbeOutcome) -> StoreFuture<'_, ()> {
        let id = id.to_string();
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            let suspect: String = sqlx::query_scalar("SELECT suspect_id FROM campaigns WHERE id = $1").bind(&id).fetch_one(&mut *tx).await?;
            let now = now_ms();
            // Lock order suspect → campaign → probe: the suspect's row (taken by `insert_samples`),
            // then the campaign's row (tokens), then the probe's.
            if o.sample.is_some() {
                sqlx::query("UPDATE suspects SET updated_ms = $1 WHERE id = $2").bind(now).bind(&suspect).execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE campaigns SET tokens = tokens + $1, updated_ms = $2 WHERE id = $3")
                .bind(o.tokens.unwrap_or(0))
                .bind(now)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            let mut sample_id = None;
            if let Some(s) = o.sample {
                let hash = s.content_hash.clone();
                sample_id = insert_samples(&mut tx, &suspect, vec![s]).await?.pop().flatten();
                if sample_id.is_none() {
                    // The same answer to the same prompt is already a sample: point at it.
                    sample_id = sqlx::query_scalar("SELECT id FROM samples WHERE suspect_id = $1 AND content_hash = $2")
                        .bind(&suspect)
                        .bind(hash)
                        .fetch_optional(&mut *tx)
                        .await?;
                }
            }
            sqlx::query(
                "UPDATE campaign_probes SET state = $1, attempts = $2, answer = $3, error = $4, tokens = $5, claims = $6, \
                 sample_id = $7, done_ms = $8 WHERE campaign_id = $9 AND seq = $10",
            )
            .bind(if o.answered { "answered" } else { "failed" })
            .bind(o.attempts)
            .bind(o.answer)
            .bind(o.error)
            .bind(o.tokens)
            .bind(o.claims.map(|c| c.to_string()))
            .bind(sample_id)
            .bind(now_ms())
            .bind(&id)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn mark_upstream_sent(&self, id: &str, seq: i64) -> StoreFuture<'_, bool> {
        let id = id.to_string();
        Box::pin(async move {
            let r = sqlx::query(
                "UPDATE campaign_probes SET upstream_state = 'sent' WHERE campaign_id = $1 AND seq = $2 AND upstream_state = 'pending'",
            )
            .bind(id)
            .bind(seq)
            .execute(&self.pool)
            .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn finish_upstream(&self, id: &str, seq: i64, answer: Option<String>, error: Option<String>) -> StoreFuture<'_, ()> {
        let id = id.to_string();
        Box::pin(async move {
            sqlx::query(
                "UPDATE campaign_probes SET upstream_state = $1, upstream_answer = $2, upstream_error = $3 WHERE campaign_id = $4 AND seq = $5",
            )
            .bind(if answer.is_some() { "answered" } else { "failed" })
            .bind(answer)
            .bind(error)
            .bind(id)
            .bind(seq)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn fail_in_flight_probes(&self, id: &str, error: &str) -> StoreFuture<'_, u64> {
        let (id, error) = (id.to_string(), error.to_string());
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            // Lock order: the campaign's row before its probes' (as finish_probe).
            sqlx::query("SELECT 1 FROM campaigns WHERE id = $1 FOR NO KEY UPDATE").bind(&id).fetch_optional(&mut *tx).await?;
            let a = sqlx::query(
                "UPDATE campaign_probes SET state = 'failed', error = $1, done_ms = $2 WHERE campaign_id = $3 AND state = 'sent'",
            )
            .bind(&error)
            .bind(now_ms())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            let b = sqlx::query(
                "UPDATE campaign_probes SET upstream_state = 'failed', upstream_error = $1 WHERE campaign_id = $2 AND upstream_state = 'sent'",
            )
            .bind(&error)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(a.rows_affected() + b.rows_affected())
        })
    }

    fn list_allowlist(&self) -> StoreFuture<'_, Vec<AllowEntry>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM allowlist ORDER BY entry").fetch_all(&self.pool).await?;
            rows.iter()
                .map(|r| {
                    Ok(AllowEntry {
                        entry: r.try_get("entry")?,
                        note: r.try_get("note")?,
                        created_by: r.try_get("created_by")?,
                        created_ms: r.try_get("created_ms")?,
                    })
                })
                .collect()
        })
    }

    fn add_allowlist(&self, e: AllowEntry) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO allowlist (entry, note, created_by, created_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (entry) DO UPDATE SET note = excluded.note",
            )
            .bind(e.entry)
            .bind(e.note)
            .bind(e.created_by)
            .bind(e.created_ms)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn delete_allowlist(&self, entry: &str) -> StoreFuture<'_, bool> {
        let entry = entry.to_string();
        Box::pin(async move {
            let r = sqlx::query("DELETE FROM allowlist WHERE entry = $1").bind(entry).execute(&self.pool).await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn put_secret(&self, name: &str, value: &str, created_by: Option<String>) -> StoreFuture<'_, SecretInfo> {
        let info = SecretInfo { name: name.to_string(), created_by, created_ms: now_ms() };
        let value = value.to_string();
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO secrets (name, value, created_by, created_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, created_by = excluded.created_by, created_ms = excluded.created_ms",
            )
            .bind(&info.name)
            .bind(value)
            .bind(&info.created_by)
            .bind(info.created_ms)
            .execute(&self.pool)
            .await?;
            Ok(info)
        })
    }

    fn get_secret(&self, name: &str) -> StoreFuture<'_, Option<String>> {
        let name = name.to_string();
        Box::pin(async move {
            Ok(sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1").bind(name).fetch_optional(&self.pool).await?)
        })
    }

    fn list_secrets(&self) -> StoreFuture<'_, Vec<SecretInfo>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT name, created_by, created_ms FROM secrets ORDER BY name").fetch_all(&self.pool).await?;
            rows.iter()
                .map(|r| Ok(SecretInfo { name: r.try_get("name")?, created_by: r.try_get("created_by")?, created_ms: r.try_get("created_ms")? }))
                .collect()
        })
    }

    fn delete_secret(&self, name: &str) -> StoreFuture<'_, bool> {
        let name = name.to_string();
        Box::pin(async move {
            let r = sqlx::query("DELETE FROM secrets WHERE name = $1").bind(name).execute(&self.pool).await?;
            Ok(r.rows_affected() > 0)
        })
    }
}
