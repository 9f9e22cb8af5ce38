//! The default store: an embedded SQLite database (WAL, foreign keys, busy timeout, migrations).
//!
//! Reads go through a small pool; every write goes through a single-connection writer pool, so
//! that write transactions are serialised in-process and never fail with SQLITE_BUSY on upgrade.

use super::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::Row;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

#[derive(Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if missing) `path` and run the migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let opts = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts.read_only(false))
            .await?;
        Ok(SqliteStore { read, write })
    }

    /// Close both pools (CLI commands, before exiting).
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

fn key_from_row(r: &SqliteRow) -> Result<ApiKeyRecord, StoreError> {
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

fn json_col(r: &SqliteRow, col: &str) -> Result<Option<serde_json::Value>, StoreError> {
    let s: Option<String> = r.try_get(col)?;
    Ok(match s {
        Some(s) => Some(serde_json::from_str(&s)?),
        None => None,
    })
}

fn suspect_from_row(r: &SqliteRow) -> Result<SuspectRecord, StoreError> {
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

fn sample_from_row(r: &SqliteRow) -> Result<SampleRecord, StoreError> {
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

fn profile_from_row(r: &SqliteRow) -> Result<ProfileRecord, StoreError> {
    Ok(ProfileRecord {
        name: r.try_get("name")?,
        upstream: r.try_get("upstream")?,
        meta: json_col(r, "meta")?.unwrap_or(serde_json::Value::Null),
        path: r.try_get("path")?,
        builtin: r.try_get::<i64, _>("builtin")? != 0,
        created_ms: r.try_get("created_ms")?,
    })
}

fn job_from_row(r: &SqliteRow) -> Result<JobRecord, StoreError> {
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

async fn insert_samples(
    conn: &mut sqlx::SqliteConnection,
    suspect_id: &str,
    samples: Vec<NewSample>,
) -> Result<Vec<Option<i64>>, StoreError> {
    let now = now_ms();
    let mut ids = Vec::with_capacity(samples.len());
    for s in samples {
        let row = sqlx::query(
            "INSERT OR IGNORE INTO samples (suspect_id, content_hash, text, prompt, source, added_ms, score) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
    sqlx::query("UPDATE suspects SET updated_ms = ? WHERE id = ?")
        .bind(now)
        .bind(suspect_id)
        .execute(&mut *conn)
        .await?;
    Ok(ids)
}

impl Store for SqliteStore {
    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(&self.read).await?;
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
            sqlx::query("INSERT INTO api_keys (id, name, role, key_hash, created_ms) VALUES (?, ?, ?, ?, ?)")
                .bind(&rec.id)
                .bind(&rec.name)
                .bind(rec.role.as_str())
                .bind(&rec.key_hash)
                .bind(rec.created_ms)
                .execute(&self.write)
                .await?;
            Ok(rec)
        })
    }

    fn key_by_hash(&self, key_hash: &str) -> StoreFuture<'_, Option<ApiKeyRecord>> {
        let h = key_hash.to_string();
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = ?")
                .bind(h)
                .fetch_optional(&self.read)
                .await?;
            row.as_ref().map(key_from_row).transpose()
        })
    }

    fn list_keys(&self) -> StoreFuture<'_, Vec<ApiKeyRecord>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_ms, id").fetch_all(&self.read).await?;
            rows.iter().map(key_from_row).collect()
        })
    }

    fn revoke_key(&self, id: &str) -> StoreFuture<'_, bool> {
        let id = id.to_string();
        Box::pin(async move {
            let r = sqlx::query("UPDATE api_keys SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(&self.write)
                .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn append_audit(&self, entries: Vec<AuditEntry>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if entries.is_empty() {
                return Ok(());
            }
            let mut tx = self.write.begin().await?;
            for e in entries {
                sqlx::query(
                    "INSERT INTO audit_log (at_ms, key_id, role, action, target, detail, status) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
            let rows = sqlx::query(
                "SELECT * FROM audit_log WHERE (?1 IS NULL OR key_id = ?1) AND (?2 IS NULL OR instr(action, ?2) > 0) \
                 AND (?3 IS NULL OR at_ms >= ?3) AND (?4 IS NULL OR id < ?4) ORDER BY id DESC LIMIT ?5",
            )
            .bind(q.key_id)
            .bind(q.action)
            .bind(q.since_ms)
            .bind(q.before_id)
            .bind(limit)
            .fetch_all(&self.read)
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
                "INSERT INTO profiles (name, upstream, meta, path, builtin, created_ms) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (name) DO UPDATE SET upstream = excluded.upstream, meta = excluded.meta, \
                 path = excluded.path, builtin = excluded.builtin, created_ms = excluded.created_ms",
            )
            .bind(&rec.name)
            .bind(&rec.upstream)
            .bind(rec.meta.to_string())
            .bind(&rec.path)
            .bind(rec.builtin as i64)
            .bind(rec.created_ms)
            .execute(&self.write)
            .await?;
            Ok(())
        })
    }

    fn list_profiles(&self) -> StoreFuture<'_, Vec<ProfileRecord>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM profiles ORDER BY builtin DESC, name").fetch_all(&self.read).await?;
            rows.iter().map(profile_from_row).collect()
        })
    }

    fn get_profile(&self, name: &str) -> StoreFuture<'_, Option<ProfileRecord>> {
        let name = name.to_string();
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM profiles WHERE name = ?").bind(name).fetch_optional(&self.read).await?;
            row.as_ref().map(profile_from_row).transpose()
        })
    }

    fn delete_profile(&self, name: &str) -> StoreFuture<'_, bool> {
        let name = name.to_string();
        Box::pin(async move {
            let r = sqlx::query("DELETE FROM profiles WHERE name = ? AND builtin = 0").bind(name).execute(&self.write).await?;
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
            sqlx::query("INSERT INTO suspects (id, name, description, profile, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(&rec.id)
                .bind(&rec.name)
                .bind(&rec.description)
                .bind(&rec.profile)
                .bind(rec.created_ms)
                .bind(rec.updated_ms)
                .execute(&self.write)
                .await?;
            Ok(rec)
        })
    }

    fn get_suspect(&self, id: &str) -> StoreFuture<'_, Option<SuspectRecord>> {
        let id = id.to_string();
        Box::pin(async move {
            let sql = format!("SELECT {SUSPECT_COLS} FROM suspects s WHERE s.id = ?");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.read).await?;
            row.as_ref().map(suspect_from_row).transpose()
        })
    }

    fn list_suspects(&self, order: SuspectOrder, limit: i64, offset: i64) -> StoreFuture<'_, Vec<SuspectRecord>> {
        Box::pin(async move {
            let order_by = match order {
                SuspectOrder::Strength => "s.strength IS NULL, s.strength DESC, s.created_ms DESC, s.id",
                SuspectOrder::Created => "s.created_ms DESC, s.id",
                SuspectOrder::Name => "s.name, s.id",
            };
            let sql = format!("SELECT {SUSPECT_COLS} FROM suspects s ORDER BY {order_by} LIMIT ? OFFSET ?");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit).bind(offset).fetch_all(&self.read).await?;
            rows.iter().map(suspect_from_row).collect()
        })
    }

    fn delete_suspect(&self, id: &str) -> StoreFuture<'_, bool> {
        let id = id.to_string();
        Box::pin(async move {
            let r = sqlx::query("DELETE FROM suspects WHERE id = ?").bind(id).execute(&self.write).await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn set_verdict(&self, id: &str, verdict: serde_json::Value, n: i64, strength: f64) -> StoreFuture<'_, ()> {
        let id = id.to_string();
        Box::pin(async move {
            sqlx::query("UPDATE suspects SET verdict = ?, verdict_n = ?, strength = ? WHERE id = ?")
                .bind(verdict.to_string())
                .bind(n)
                .bind(strength)
                .bind(id)
                .execute(&self.write)
                .await?;
            Ok(())
        })
    }

    fn add_samples(&self, suspect_id: &str, samples: Vec<NewSample>) -> StoreFuture<'_, AddOutcome> {
        let suspect_id = suspect_id.to_string();
        Box::pin(async move {
            let mut tx = self.write.begin().await?;
            let ids = insert_samples(&mut tx, &suspect_id, samples).await?;
            tx.commit().await?;
            Ok(AddOutcome { ids })
        })
    }

    fn list_samples(&self, suspect_id: &str, limit: i64, offset: i64) -> StoreFuture<'_, Vec<SampleRecord>> {
        let suspect_id = suspect_id.to_string();
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM samples WHERE suspect_id = ? ORDER BY id LIMIT ? OFFSET ?")
                .bind(suspect_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.read)
                .await?;
            rows.iter().map(sample_from_row).collect()
        })
    }

    fn sample_scores(&self, suspect_id: &str) -> StoreFuture<'_, Vec<(i64, serde_json::Value)>> {
        let suspect_id = suspect_id.to_string();
        Box::pin(async move {
            let rows = sqlx::query("SELECT id, score FROM samples WHERE suspect_id = ? AND score IS NOT NULL ORDER BY id")
                .bind(suspect_id)
                .fetch_all(&self.read)
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("id")?, json_col(r, "score")?.unwrap_or_default())))
                .collect()
        })
    }

    fn get_sample(&self, id: i64) -> StoreFuture<'_, Option<SampleRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM samples WHERE id = ?").bind(id).fetch_optional(&self.read).await?;
            row.as_ref().map(sample_from_row).transpose()
        })
    }

    fn create_job(&self, job: NewJob) -> StoreFuture<'_, JobRecord> {
        Box::pin(async move {
            let now = now_ms();
            sqlx::query(
                "INSERT INTO jobs (id, kind, state, params, input_path, total, created_by, created_ms, updated_ms) \
                 VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
            )
            .bind(&job.id)
            .bind(&job.kind)
            .bind(job.params.to_string())
            .bind(&job.input_path)
            .bind(job.total)
            .bind(&job.created_by)
            .bind(now)
            .bind(now)
            .execute(&self.write)
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
            let row = sqlx::query("SELECT * FROM jobs WHERE id = ?").bind(id).fetch_optional(&self.read).await?;
            row.as_ref().map(job_from_row).transpose()
        })
    }

    fn list_jobs(&self, limit: i64, offset: i64) -> StoreFuture<'_, Vec<JobRecord>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM jobs ORDER BY created_ms DESC, id LIMIT ? OFFSET ?")
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.read)
                .await?;
            rows.iter().map(job_from_row).collect()
        })
    }

    fn unfinished_jobs(&self) -> StoreFuture<'_, Vec<JobRecord>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_ms, id")
                .fetch_all(&self.read)
                .await?;
            rows.iter().map(job_from_row).collect()
        })
    }

    fn set_job_state(&self, id: &str, state: JobState, error: Option<String>) -> StoreFuture<'_, bool> {
        let id = id.to_string();
        Box::pin(async move {
            let r = sqlx::query(
                "UPDATE jobs SET state = ?, error = COALESCE(?, error), updated_ms = ? \
                 WHERE id = ? AND state NOT IN ('done', 'failed', 'cancelled')",
            )
            .bind(state.as_str())
            .bind(error)
            .bind(now_ms())
            .bind(id)
            .execute(&self.write)
            .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn commit_job_chunk(&self, id: &str, chunk: JobChunk) -> StoreFuture<'_, ()> {
        let id = id.to_string();
        Box::pin(async move {
            let mut tx = self.write.begin().await?;
            for (line_no, result) in &chunk.results {
                sqlx::query("INSERT OR IGNORE INTO job_results (job_id, line_no, result) VALUES (?, ?, ?)")
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
                "UPDATE jobs SET cursor_offset = ?, cursor_line = ?, updated_ms = ?, \
                 done = (SELECT COUNT(*) FROM job_results WHERE job_id = ?) WHERE id = ?",
            )
            .bind(chunk.cursor_offset)
            .bind(chunk.cursor_line)
            .bind(now_ms())
            .bind(&id)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn job_results(&self, id: &str, after_line: i64, limit: i64) -> StoreFuture<'_, Vec<JobResultRow>> {
        let id = id.to_string();
        Box::pin(async move {
            let rows = sqlx::query("SELECT line_no, result FROM job_results WHERE job_id = ? AND line_no > ? ORDER BY line_no LIMIT ?")
                .bind(id)
                .bind(after_line)
                .bind(limit)
                .fetch_all(&self.read)
                .await?;
            rows.iter()
                .map(|r| Ok(JobResultRow { line_no: r.try_get("line_no")?, result: json_col(r, "result")?.unwrap_or_default() }))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.sqlite")).await.unwrap();
        (s, dir)
    }

    fn sample(h: &str) -> NewSample {
        NewSample { content_hash: h.into(), text: format!("text {h}"), prompt: None, source: "t".into(), score: None }
    }

    #[tokio::test]
    async fn wal_and_foreign_keys_are_on() {
        let (s, _d) = store().await;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&s.read).await.unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&s.write).await.unwrap();
        assert_eq!(fk, 1);
    }

    #[tokio::test]
    async fn samples_are_deduplicated_per_suspect_and_cascade() {
        let (s, _d) = store().await;
        s.create_suspect("a", "A", "", "p").await.unwrap();
        s.create_suspect("b", "B", "", "p").await.unwrap();
        let o = s.add_samples("a", vec![sample("h1"), sample("h2"), sample("h1")]).await.unwrap();
        assert!(o.ids[0].is_some() && o.ids[1].is_some() && o.ids[2].is_none());
        let o = s.add_samples("b", vec![sample("h1")]).await.unwrap();
        assert!(o.ids[0].is_some(), "the same content may belong to another suspect");
        assert_eq!(s.get_suspect("a").await.unwrap().unwrap().samples, 2);
        assert!(s.delete_suspect("a").await.unwrap());
        assert!(s.list_samples("a", 10, 0).await.unwrap().is_empty());
        assert!(s.add_samples("nope", vec![sample("x")]).await.is_err(), "foreign key enforced");
    }

    #[tokio::test]
    async fn job_chunks_are_atomic_and_idempotent() {
        let (s, _d) = store().await;
        s.create_suspect("a", "A", "", "p").await.unwrap();
        let job = NewJob { id: "j".into(), kind: "score".into(), params: serde_json::json!({}), input_path: None, total: Some(4), created_by: None };
        s.create_job(job).await.unwrap();
        let chunk = |lines: std::ops::Range<i64>, off: i64| JobChunk {
            cursor_offset: off,
            cursor_line: lines.end - 1,
            results: lines.clone().map(|l| (l, serde_json::json!({"l": l}))).collect(),
            samples: Some(("a".into(), lines.map(|l| sample(&format!("h{l}"))).collect())),
        };
        s.commit_job_chunk("j", chunk(1..3, 10)).await.unwrap();
        // Re-processing the same lines (e.g. after a crash) neither duplicates results nor samples.
        s.commit_job_chunk("j", chunk(1..3, 10)).await.unwrap();
        s.commit_job_chunk("j", chunk(3..5, 20)).await.unwrap();
        let j = s.get_job("j").await.unwrap().unwrap();
        assert_eq!((j.done, j.cursor_offset, j.cursor_line), (4, 20, 4));
        assert_eq!(s.job_results("j", 0, 100).await.unwrap().len(), 4);
        assert_eq!(s.job_results("j", 2, 100).await.unwrap().len(), 2);
        assert_eq!(s.get_suspect("a").await.unwrap().unwrap().samples, 4);
        // A failing chunk (unknown suspect) rolls back entirely, cursor included.
        let bad = JobChunk { cursor_offset: 99, cursor_line: 9, results: vec![(9, serde_json::json!({}))], samples: Some(("zz".into(), vec![sample("q")])) };
        assert!(s.commit_job_chunk("j", bad).await.is_err());
        let j = s.get_job("j").await.unwrap().unwrap();
        assert_eq!((j.done, j.cursor_offset), (4, 20));
    }

    #[tokio::test]
    async fn terminal_job_states_are_final() {
        let (s, _d) = store().await;
        let job = NewJob { id: "j".into(), kind: "score".into(), params: serde_json::json!({}), input_path: None, total: None, created_by: None };
        s.create_job(job).await.unwrap();
        assert_eq!(s.unfinished_jobs().await.unwrap().len(), 1);
        assert!(s.set_job_state("j", JobState::Running, None).await.unwrap());
        assert!(s.set_job_state("j", JobState::Cancelled, None).await.unwrap());
        assert!(!s.set_job_state("j", JobState::Done, None).await.unwrap());
        assert_eq!(s.get_job("j").await.unwrap().unwrap().state, JobState::Cancelled);
        assert!(s.unfinished_jobs().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn keys_and_audit() {
        let (s, _d) = store().await;
        s.create_key("k1", "n", Role::Admin, "abc").await.unwrap();
        assert!(s.create_key("k2", "n", Role::Admin, "abc").await.is_err(), "hash is unique");
        assert_eq!(s.key_by_hash("abc").await.unwrap().unwrap().role, Role::Admin);
        assert!(s.revoke_key("k1").await.unwrap());
        assert!(!s.revoke_key("k1").await.unwrap());
        let e = |k: Option<&str>, a: &str| AuditEntry {
            id: 0, at_ms: now_ms(), key_id: k.map(Into::into), role: None, action: a.into(), target: "/".into(),
            detail: serde_json::json!({"x": 1}), status: 200,
        };
        s.append_audit(vec![e(Some("k1"), "POST /v1/score"), e(None, "POST /v1/suspects"), e(Some("k1"), "DELETE /v1/x")]).await.unwrap();
        let all = s.list_audit(AuditQuery::default()).await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].action, "DELETE /v1/x");
        assert_eq!(all[2].detail["x"], 1);
        let q = AuditQuery { key_id: Some("k1".into()), ..Default::default() };
        assert_eq!(s.list_audit(q).await.unwrap().len(), 2);
        let q = AuditQuery { before_id: Some(all[0].id), limit: Some(1), ..Default::default() };
        assert_eq!(s.list_audit(q).await.unwrap()[0].id, all[1].id);
    }
}
