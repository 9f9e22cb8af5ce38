//! The SQL both stores share: every [`Store`] method is written once, in [`impl_sql_store!`],
//! and expanded in `sqlite.rs` and `postgres.rs` (a macro rather than generic code over
//! `sqlx::Database`: the bodies stay plain sqlx calls on one concrete backend each).
//!
//! Every way the two backends differ is in this file, in [`SQLITE`] and [`POSTGRES`], except the
//! connection pools: SQLite reads through a pool and writes through ONE connection (so its write
//! transactions are serialised in-process), PostgreSQL does both through one pool. The shared code
//! says `self.reader()` or `self.writer()`; each backend maps them to its pools.
//!
//! The SQL is written with `?` placeholders (or `?N` where one value is used twice); PostgreSQL's
//! `$1, $2, …` are made from them by [`dollar_placeholders`].
//!
//! Differences that need no dialect switch, because one spelling means the same on both:
//! - a Rust `bool` binds as INTEGER 0/1 on SQLite (as the column is) and BOOLEAN on PostgreSQL,
//!   and `NOT builtin` is `builtin = 0` on SQLite's 0/1;
//! - `CAST(? AS TEXT) IS NULL`: PostgreSQL must know the type of a parameter that is only tested
//!   for NULL; SQLite does not care;
//! - NaN: SQLite stores a NaN REAL as NULL, PostgreSQL would store NaN (and sort it above every
//!   number), so NaN is bound as NULL on both ([`real`]);
//! - a negative OFFSET: SQLite takes it as 0, PostgreSQL rejects it, so both get `max(0)`
//!   ([`offset`]); a negative LIMIT does need the dialect ([`Dialect::limit`]).
//!
//! [`Store`]: super::Store

/// The SQL a backend speaks, where the two differ.
pub(super) struct Dialect {
    /// PostgreSQL numbers its parameters (`$1`); SQLite takes the `?` / `?N` as written.
    pub dollar_placeholders: bool,
    /// An insert that skips a row breaking a uniqueness constraint: the words before the table,
    /// and those after the values (before any `RETURNING`). (SQLite's OR IGNORE would also skip
    /// NOT NULL and CHECK failures; the inserts that use it bind no NULL to such a column.)
    pub insert_ignore: (&'static str, &'static str),
    /// The position of a substring, `f(haystack, needle)`: case-sensitive, no LIKE wildcards.
    pub strpos: &'static str,
    /// Appended to `SELECT … WHERE id = ?` to lock the row a transaction reads and then writes.
    /// PostgreSQL runs transactions concurrently (READ COMMITTED): the lock makes them queue, in
    /// the order job → suspect → campaign → probe. SQLite needs none: its single writer
    /// connection already serialises every write transaction.
    pub row_lock: Option<&'static str>,
    /// A negative LIMIT: SQLite takes it as "no limit"; PostgreSQL rejects it and spells "no
    /// limit" `LIMIT NULL`.
    pub negative_limit_is_null: bool,
    /// Campaign columns plus the probe counts (`n_total`, `n_pending`, …), and the FROM clause
    /// that defines `c` (and whatever the columns need).
    pub campaign_cols: &'static str,
    pub campaign_from: &'static str,
}

pub(super) const SQLITE: Dialect = Dialect {
    dollar_placeholders: false,
    insert_ignore: ("INSERT OR IGNORE INTO", ""),
    strpos: "instr",
    row_lock: None,
    negative_limit_is_null: false,
    // Correlated subqueries: SQLite has no LATERAL.
    campaign_cols: "c.*, \
     (SELECT COUNT(*) FROM campaign_probes p WHERE p.campaign_id = c.id) AS n_total, \
     (SELECT COUNT(*) FROM campaign_probes p WHERE p.campaign_id = c.id AND p.state = 'pending') AS n_pending, \
     (SELECT COUNT(*) FROM campaign_probes p WHERE p.campaign_id = c.id AND p.state = 'sent') AS n_sent, \
     (SELECT COUNT(*) FROM campaign_probes p WHERE p.campaign_id = c.id AND p.state = 'answered') AS n_answered, \
     (SELECT COUNT(*) FROM campaign_probes p WHERE p.campaign_id = c.id AND p.state = 'failed') AS n_failed, \
     (SELECT COUNT(*) FROM campaign_probes p WHERE p.campaign_id = c.id AND p.upstream_state = 'answered') AS n_up_answered, \
     (SELECT COUNT(*) FROM campaign_probes p WHERE p.campaign_id = c.id AND p.upstream_state = 'failed') AS n_up_failed",
    campaign_from: "campaigns c",
};

pub(super) const POSTGRES: Dialect = Dialect {
    dollar_placeholders: true,
    insert_ignore: ("INSERT INTO", "ON CONFLICT DO NOTHING"),
    strpos: "strpos",
    // The mode an UPDATE of non-key columns takes: it does not block the FOR KEY SHARE locks of
    // foreign-key checks (inserting a job's results, a suspect's samples).
    row_lock: Some("FOR NO KEY UPDATE"),
    negative_limit_is_null: true,
    // The probe counts in one pass over the campaign's probes.
    campaign_cols: "c.*, \
     COALESCE(n.n_total, 0) AS n_total, COALESCE(n.n_pending, 0) AS n_pending, COALESCE(n.n_sent, 0) AS n_sent, \
     COALESCE(n.n_answered, 0) AS n_answered, COALESCE(n.n_failed, 0) AS n_failed, \
     COALESCE(n.n_up_answered, 0) AS n_up_answered, COALESCE(n.n_up_failed, 0) AS n_up_failed",
    campaign_from: "campaigns c LEFT JOIN LATERAL (SELECT COUNT(*) AS n_total, \
     COUNT(*) FILTER (WHERE p.state = 'pending') AS n_pending, \
     COUNT(*) FILTER (WHERE p.state = 'sent') AS n_sent, \
     COUNT(*) FILTER (WHERE p.state = 'answered') AS n_answered, \
     COUNT(*) FILTER (WHERE p.state = 'failed') AS n_failed, \
     COUNT(*) FILTER (WHERE p.upstream_state = 'answered') AS n_up_answered, \
     COUNT(*) FILTER (WHERE p.upstream_state = 'failed') AS n_up_failed \
     FROM campaign_probes p WHERE p.campaign_id = c.id) n ON TRUE",
};

impl Dialect {
    /// `sql` (written with `?` placeholders) in this dialect, for `sqlx::query`. The text is
    /// always the code's own (constants and fixed fragments), never user input.
    pub fn sql(&self, sql: &str) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(if self.dollar_placeholders {
            dollar_placeholders(sql)
        } else {
            sql.to_string()
        })
    }

    /// `INSERT … <into_values> …` that skips a row whose unique key is already there.
    pub fn insert_ignore(&self, into_values: &str, returning: &str) -> String {
        let (before, after) = self.insert_ignore;
        [before, into_values, after, returning]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A LIMIT parameter (see [`Dialect::negative_limit_is_null`]).
    pub fn limit(&self, n: i64) -> Option<i64> {
        (n >= 0 || !self.negative_limit_is_null).then_some(n)
    }
}

/// An OFFSET parameter: negative counts as 0 (SQLite's reading; PostgreSQL would reject it).
pub(super) fn offset(n: i64) -> i64 {
    n.max(0)
}

/// A REAL parameter: NaN is NULL (SQLite's reading; PostgreSQL would store NaN).
pub(super) fn real(x: Option<f64>) -> Option<f64> {
    x.filter(|v| !v.is_nan())
}

/// Suspect columns (of `suspects s`) plus the sample count.
pub(super) const SUSPECT_COLS: &str = "s.id, s.name, s.description, s.profile, s.created_ms, s.updated_ms, s.verdict, \
     s.verdict_n, s.strength, (SELECT COUNT(*) FROM samples x WHERE x.suspect_id = s.id) AS n_samples";

/// `?` → `$1, $2, …` in order of appearance, `?N` → `$N`. Panics on a `?` inside a quoted
/// string or identifier, and on a statement that mixes `?` and `?N`: the shared SQL has neither
/// (tests below; every statement runs on PostgreSQL in the conformance tests).
pub(super) fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let (mut bare, mut numbered) = (0, false);
    let mut quote = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            assert!(c != '?', "a `?` inside a quoted string or identifier: {sql}");
            if c == q {
                quote = None; // a doubled quote ('') closes and reopens: still right
            }
            out.push(c);
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                out.push('$');
                if chars.peek().is_some_and(char::is_ascii_digit) {
                    numbered = true;
                    while let Some(d) = chars.next_if(char::is_ascii_digit) {
                        out.push(d);
                    }
                } else {
                    bare += 1;
                    out.push_str(&bare.to_string());
                }
                assert!(!(numbered && bare > 0), "`?` and `?N` mixed: {sql}");
            }
            _ => out.push(c),
        }
    }
    assert!(quote.is_none(), "an unterminated quote: {sql}");
    out
}

/// Every [`Store`](super::Store) method, and the helpers and row mappers they use, for
/// `$store`, a store on database `$db` speaking `$dialect`, which provides `self.reader()` and
/// `self.writer()` (its pools for reads and for writes). `$($own)*` are the backend's own trait
/// methods (`close`).
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, $dialect:expr; $($own:tt)*) => {
        use super::sql::{offset, real, SUSPECT_COLS};
        use sqlx::Row;

        const D: &super::sql::Dialect = &$dialect;
        type DbRow = <$db as sqlx::Database>::Row;
        type DbConnection = <$db as sqlx::Database>::Connection;

        fn json_col(r: &DbRow, col: &str) -> Result<Option<serde_json::Value>, StoreError> {
            let s: Option<String> = r.try_get(col)?;
            Ok(match s {
                Some(s) => Some(serde_json::from_str(&s)?),
                None => None,
            })
        }

        fn key_from_row(r: &DbRow) -> Result<ApiKeyRecord, StoreError> {
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

        fn audit_from_row(r: &DbRow) -> Result<AuditEntry, StoreError> {
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
        }

        fn suspect_from_row(r: &DbRow) -> Result<SuspectRecord, StoreError> {
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

        fn sample_from_row(r: &DbRow) -> Result<SampleRecord, StoreError> {
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

        fn profile_from_row(r: &DbRow) -> Result<ProfileRecord, StoreError> {
            Ok(ProfileRecord {
                name: r.try_get("name")?,
                upstream: r.try_get("upstream")?,
                meta: json_col(r, "meta")?.unwrap_or(serde_json::Value::Null),
                path: r.try_get("path")?,
                builtin: r.try_get("builtin")?,
                created_ms: r.try_get("created_ms")?,
            })
        }

        fn job_from_row(r: &DbRow) -> Result<JobRecord, StoreError> {
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

        fn probe_from_row(r: &DbRow) -> Result<ProbeRecord, StoreError> {
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
                upstream_extra: json_col(r, "upstream_extra")?
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or_default(),
                sent_ms: r.try_get("sent_ms")?,
                done_ms: r.try_get("done_ms")?,
            })
        }

        fn campaign_from_row(r: &DbRow) -> Result<CampaignRecord, StoreError> {
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

        /// Lock the row `id` of `table` for the rest of the caller's transaction, where the
        /// dialect needs it ([`Dialect::row_lock`](super::sql::Dialect::row_lock)).
        async fn lock_row(conn: &mut DbConnection, table: &'static str, id: &str) -> Result<(), StoreError> {
            if let Some(lock) = D.row_lock {
                sqlx::query(D.sql(&format!("SELECT 1 FROM {table} WHERE id = ? {lock}"))).bind(id).fetch_optional(&mut *conn).await?;
            }
            Ok(())
        }

        /// Insert samples in the caller's transaction, skipping content the suspect already has;
        /// an unknown suspect fails on the foreign key. The suspect's row is updated first: on
        /// PostgreSQL that locks it, so concurrent inserts of overlapping samples queue instead of
        /// deadlocking.
        async fn insert_samples(conn: &mut DbConnection, suspect_id: &str, samples: Vec<NewSample>) -> Result<Vec<Option<i64>>, StoreError> {
            let now = now_ms();
            sqlx::query(D.sql("UPDATE suspects SET updated_ms = ? WHERE id = ?")).bind(now).bind(suspect_id).execute(&mut *conn).await?;
            let insert = D.insert_ignore(
                "samples (suspect_id, content_hash, text, prompt, source, added_ms, score) VALUES (?, ?, ?, ?, ?, ?, ?)",
                "RETURNING id",
            );
            let mut ids = Vec::with_capacity(samples.len());
            for s in samples {
                let row = sqlx::query(D.sql(&insert))
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

        impl $store {
            /// Set the state of a job or campaign (`table`); a terminal state is never left.
            async fn set_state(&self, table: &'static str, id: &str, state: JobState, error: Option<String>) -> Result<bool, StoreError> {
                let sql = format!(
                    "UPDATE {table} SET state = ?, error = COALESCE(?, error), updated_ms = ? \
                     WHERE id = ? AND state NOT IN ('done', 'failed', 'cancelled')"
                );
                let r = sqlx::query(D.sql(&sql))
                    .bind(state.as_str())
                    .bind(error)
                    .bind(now_ms())
                    .bind(id)
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            /// Campaigns matching `cond` (which may use one `?`, bound to `bind`), then `tail`
            /// (which may use two more, for `page`: limit and offset).
            async fn campaign_where(&self, cond: &str, bind: Option<String>, tail: &str, page: Option<(i64, i64)>) -> Result<Vec<CampaignRecord>, StoreError> {
                let sql = format!("SELECT {} FROM {} WHERE {cond} {tail}", D.campaign_cols, D.campaign_from);
                let mut q = sqlx::query(D.sql(&sql));
                if let Some(b) = bind {
                    q = q.bind(b);
                }
                if let Some((l, o)) = page {
                    q = q.bind(l).bind(o);
                }
                let rows = q.fetch_all(self.reader()).await?;
                rows.iter().map(campaign_from_row).collect()
            }
        }

        impl Store for $store {
            $($own)*

            fn ping(&self) -> StoreFuture<'_, ()> {
                Box::pin(async move {
                    sqlx::query("SELECT 1").execute(self.reader()).await?;
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
                    sqlx::query(D.sql("INSERT INTO api_keys (id, name, role, key_hash, created_ms) VALUES (?, ?, ?, ?, ?)"))
                        .bind(&rec.id)
                        .bind(&rec.name)
                        .bind(rec.role.as_str())
                        .bind(&rec.key_hash)
                        .bind(rec.created_ms)
                        .execute(self.writer())
                        .await?;
                    Ok(rec)
                })
            }

            fn key_by_hash(&self, key_hash: &str) -> StoreFuture<'_, Option<ApiKeyRecord>> {
                let h = key_hash.to_string();
                Box::pin(async move {
                    let row = sqlx::query(D.sql("SELECT * FROM api_keys WHERE key_hash = ?")).bind(h).fetch_optional(self.reader()).await?;
                    row.as_ref().map(key_from_row).transpose()
                })
            }

            fn list_keys(&self) -> StoreFuture<'_, Vec<ApiKeyRecord>> {
                Box::pin(async move {
                    let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_ms, id").fetch_all(self.reader()).await?;
                    rows.iter().map(key_from_row).collect()
                })
            }

            fn revoke_key(&self, id: &str) -> StoreFuture<'_, bool> {
                let id = id.to_string();
                Box::pin(async move {
                    let r = sqlx::query(D.sql("UPDATE api_keys SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL"))
                        .bind(now_ms())
                        .bind(id)
                        .execute(self.writer())
                        .await?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn append_audit(&self, entries: Vec<AuditEntry>) -> StoreFuture<'_, ()> {
                Box::pin(async move {
                    if entries.is_empty() {
                        return Ok(());
                    }
                    let mut tx = self.writer().begin().await?;
                    for e in entries {
                        sqlx::query(D.sql(
                            "INSERT INTO audit_log (at_ms, key_id, role, action, target, detail, status) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        ))
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

            fn prune_audit(&self, before_ms: i64) -> StoreFuture<'_, u64> {
                Box::pin(async move {
                    let r = sqlx::query(D.sql("DELETE FROM audit_log WHERE at_ms < ?")).bind(before_ms).execute(self.writer()).await?;
                    Ok(r.rows_affected())
                })
            }

            fn list_audit(&self, q: AuditQuery) -> StoreFuture<'_, Vec<AuditEntry>> {
                Box::pin(async move {
                    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
                    let sql = format!(
                        "SELECT * FROM audit_log WHERE (CAST(?1 AS TEXT) IS NULL OR key_id = ?1) \
                         AND (CAST(?2 AS TEXT) IS NULL OR {}(action, ?2) > 0) \
                         AND (CAST(?3 AS BIGINT) IS NULL OR at_ms >= ?3) AND (CAST(?4 AS BIGINT) IS NULL OR id < ?4) \
                         ORDER BY id DESC LIMIT ?5",
                        D.strpos
                    );
                    let rows = sqlx::query(D.sql(&sql))
                        .bind(q.key_id)
                        .bind(q.action)
                        .bind(q.since_ms)
                        .bind(q.before_id)
                        .bind(limit)
                        .fetch_all(self.reader())
                        .await?;
                    rows.iter().map(audit_from_row).collect()
                })
            }

            fn upsert_profile(&self, rec: ProfileRecord) -> StoreFuture<'_, ()> {
                Box::pin(async move {
                    sqlx::query(D.sql(
                        "INSERT INTO profiles (name, upstream, meta, path, builtin, created_ms) VALUES (?, ?, ?, ?, ?, ?) \
                         ON CONFLICT (name) DO UPDATE SET upstream = excluded.upstream, meta = excluded.meta, \
                         path = excluded.path, builtin = excluded.builtin, created_ms = excluded.created_ms",
                    ))
                    .bind(&rec.name)
                    .bind(&rec.upstream)
                    .bind(rec.meta.to_string())
                    .bind(&rec.path)
                    .bind(rec.builtin)
                    .bind(rec.created_ms)
                    .execute(self.writer())
                    .await?;
                    Ok(())
                })
            }

            fn list_profiles(&self) -> StoreFuture<'_, Vec<ProfileRecord>> {
                Box::pin(async move {
                    let rows = sqlx::query("SELECT * FROM profiles ORDER BY builtin DESC, name").fetch_all(self.reader()).await?;
                    rows.iter().map(profile_from_row).collect()
                })
            }

            fn get_profile(&self, name: &str) -> StoreFuture<'_, Option<ProfileRecord>> {
                let name = name.to_string();
                Box::pin(async move {
                    let row = sqlx::query(D.sql("SELECT * FROM profiles WHERE name = ?")).bind(name).fetch_optional(self.reader()).await?;
                    row.as_ref().map(profile_from_row).transpose()
                })
            }

            fn delete_profile(&self, name: &str) -> StoreFuture<'_, bool> {
                let name = name.to_string();
                Box::pin(async move {
                    let r = sqlx::query(D.sql("DELETE FROM profiles WHERE name = ? AND NOT builtin")).bind(name).execute(self.writer()).await?;
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
                    sqlx::query(D.sql("INSERT INTO suspects (id, name, description, profile, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?)"))
                        .bind(&rec.id)
                        .bind(&rec.name)
                        .bind(&rec.description)
                        .bind(&rec.profile)
                        .bind(rec.created_ms)
                        .bind(rec.updated_ms)
                        .execute(self.writer())
                        .await?;
                    Ok(rec)
                })
            }

            fn get_suspect(&self, id: &str) -> StoreFuture<'_, Option<SuspectRecord>> {
                let id = id.to_string();
                Box::pin(async move {
                    let sql = format!("SELECT {SUSPECT_COLS} FROM suspects s WHERE s.id = ?");
                    let row = sqlx::query(D.sql(&sql)).bind(id).fetch_optional(self.reader()).await?;
                    row.as_ref().map(suspect_from_row).transpose()
                })
            }

            fn list_suspects(&self, order: SuspectOrder, limit: i64, off: i64) -> StoreFuture<'_, Vec<SuspectRecord>> {
                Box::pin(async move {
                    // `strength IS NULL` sorts unscored last: false < true, as SQLite's 0 < 1.
                    let order_by = match order {
                        SuspectOrder::Strength => "s.strength IS NULL, s.strength DESC, s.created_ms DESC, s.id",
                        SuspectOrder::Created => "s.created_ms DESC, s.id",
                        SuspectOrder::Name => "s.name, s.id",
                    };
                    let sql = format!("SELECT {SUSPECT_COLS} FROM suspects s ORDER BY {order_by} LIMIT ? OFFSET ?");
                    let rows = sqlx::query(D.sql(&sql)).bind(D.limit(limit)).bind(offset(off)).fetch_all(self.reader()).await?;
                    rows.iter().map(suspect_from_row).collect()
                })
            }

            fn delete_suspect(&self, id: &str) -> StoreFuture<'_, bool> {
                let id = id.to_string();
                Box::pin(async move {
                    let r = sqlx::query(D.sql("DELETE FROM suspects WHERE id = ?")).bind(id).execute(self.writer()).await?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn set_verdict(&self, id: &str, verdict: serde_json::Value, n: i64, strength: f64) -> StoreFuture<'_, ()> {
                let id = id.to_string();
                Box::pin(async move {
                    sqlx::query(D.sql("UPDATE suspects SET verdict = ?, verdict_n = ?, strength = ? WHERE id = ?"))
                        .bind(verdict.to_string())
                        .bind(n)
                        .bind(real(Some(strength)))
                        .bind(id)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                })
            }

            fn add_samples(&self, suspect_id: &str, samples: Vec<NewSample>) -> StoreFuture<'_, AddOutcome> {
                let suspect_id = suspect_id.to_string();
                Box::pin(async move {
                    let mut tx = self.writer().begin().await?;
                    let ids = insert_samples(&mut tx, &suspect_id, samples).await?;
                    tx.commit().await?;
                    Ok(AddOutcome { ids })
                })
            }

            fn list_samples(&self, suspect_id: &str, limit: i64, off: i64) -> StoreFuture<'_, Vec<SampleRecord>> {
                let suspect_id = suspect_id.to_string();
                Box::pin(async move {
                    let rows = sqlx::query(D.sql("SELECT * FROM samples WHERE suspect_id = ? ORDER BY id LIMIT ? OFFSET ?"))
                        .bind(suspect_id)
                        .bind(D.limit(limit))
                        .bind(offset(off))
                        .fetch_all(self.reader())
                        .await?;
                    rows.iter().map(sample_from_row).collect()
                })
            }

            fn sample_scores(&self, suspect_id: &str) -> StoreFuture<'_, Vec<(i64, serde_json::Value)>> {
                let suspect_id = suspect_id.to_string();
                Box::pin(async move {
                    let rows = sqlx::query(D.sql("SELECT id, score FROM samples WHERE suspect_id = ? AND score IS NOT NULL ORDER BY id"))
                        .bind(suspect_id)
                        .fetch_all(self.reader())
                        .await?;
                    rows.iter().map(|r| Ok((r.try_get("id")?, json_col(r, "score")?.unwrap_or_default()))).collect()
                })
            }

            fn get_sample(&self, id: i64) -> StoreFuture<'_, Option<SampleRecord>> {
                Box::pin(async move {
                    let row = sqlx::query(D.sql("SELECT * FROM samples WHERE id = ?")).bind(id).fetch_optional(self.reader()).await?;
                    row.as_ref().map(sample_from_row).transpose()
                })
            }

            fn create_job(&self, job: NewJob) -> StoreFuture<'_, JobRecord> {
                Box::pin(async move {
                    let now = now_ms();
                    sqlx::query(D.sql(
                        "INSERT INTO jobs (id, kind, state, params, input_path, total, created_by, created_ms, updated_ms) \
                         VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                    ))
                    .bind(&job.id)
                    .bind(&job.kind)
                    .bind(job.params.to_string())
                    .bind(&job.input_path)
                    .bind(job.total)
                    .bind(&job.created_by)
                    .bind(now)
                    .bind(now)
                    .execute(self.writer())
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
                    let row = sqlx::query(D.sql("SELECT * FROM jobs WHERE id = ?")).bind(id).fetch_optional(self.reader()).await?;
                    row.as_ref().map(job_from_row).transpose()
                })
            }

            fn list_jobs(&self, limit: i64, off: i64) -> StoreFuture<'_, Vec<JobRecord>> {
                Box::pin(async move {
                    let rows = sqlx::query(D.sql("SELECT * FROM jobs ORDER BY created_ms DESC, id LIMIT ? OFFSET ?"))
                        .bind(D.limit(limit))
                        .bind(offset(off))
                        .fetch_all(self.reader())
                        .await?;
                    rows.iter().map(job_from_row).collect()
                })
            }

            fn unfinished_jobs(&self) -> StoreFuture<'_, Vec<JobRecord>> {
                Box::pin(async move {
                    let rows = sqlx::query("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_ms, id")
                        .fetch_all(self.reader())
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
                    let mut tx = self.writer().begin().await?;
                    // The job's row first: chunks of one job commit one after the other, so `done`
                    // below counts every committed result.
                    lock_row(&mut tx, "jobs", &id).await?;
                    let insert = D.insert_ignore("job_results (job_id, line_no, result) VALUES (?, ?, ?)", "");
                    for (line_no, result) in &chunk.results {
                        sqlx::query(D.sql(&insert)).bind(&id).bind(line_no).bind(result.to_string()).execute(&mut *tx).await?;
                    }
                    if let Some((suspect_id, samples)) = chunk.samples {
                        insert_samples(&mut tx, &suspect_id, samples).await?;
                    }
                    sqlx::query(D.sql(
                        "UPDATE jobs SET cursor_offset = ?, cursor_line = ?, updated_ms = ?, \
                         done = (SELECT COUNT(*) FROM job_results WHERE job_id = ?) WHERE id = ?",
                    ))
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
                    let rows = sqlx::query(D.sql("SELECT line_no, result FROM job_results WHERE job_id = ? AND line_no > ? ORDER BY line_no LIMIT ?"))
                        .bind(id)
                        .bind(after_line)
                        .bind(D.limit(limit))
                        .fetch_all(self.reader())
                        .await?;
                    rows.iter()
                        .map(|r| Ok(JobResultRow { line_no: r.try_get("line_no")?, result: json_col(r, "result")?.unwrap_or_default() }))
                        .collect()
                })
            }

            fn create_campaign(&self, c: NewCampaign) -> StoreFuture<'_, CampaignRecord> {
                Box::pin(async move {
                    let now = now_ms();
                    let mut tx = self.writer().begin().await?;
                    sqlx::query(D.sql(
                        "INSERT INTO campaigns (id, suspect_id, state, spec, fingerprint, created_by, created_ms, updated_ms) \
                         VALUES (?, ?, 'queued', ?, ?, ?, ?, ?)",
                    ))
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
                        sqlx::query(D.sql(
                            "INSERT INTO campaign_probes (campaign_id, seq, probe_id, kind, prompt, upstream_state) VALUES (?, ?, ?, ?, ?, ?)",
                        ))
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
                Box::pin(async move { Ok(self.campaign_where("c.id = ?", Some(id), "", None).await?.pop()) })
            }

            fn list_campaigns(&self, limit: i64, off: i64) -> StoreFuture<'_, Vec<CampaignRecord>> {
                // Unlike the other lists, a negative limit counts as 0 here (as it always has).
                Box::pin(async move {
                    self.campaign_where("1 = 1", None, "ORDER BY c.created_ms DESC, c.id LIMIT ? OFFSET ?", Some((limit.max(0), offset(off)))).await
                })
            }

            fn unfinished_campaigns(&self) -> StoreFuture<'_, Vec<CampaignRecord>> {
                Box::pin(async move { self.campaign_where("c.state IN ('queued', 'running')", None, "ORDER BY c.created_ms, c.id", None).await })
            }

            fn campaign_by_fingerprint(&self, fingerprint: &str) -> StoreFuture<'_, Option<CampaignRecord>> {
                let f = fingerprint.to_string();
                Box::pin(async move {
                    Ok(self.campaign_where("c.fingerprint = ?", Some(f), "ORDER BY c.created_ms DESC, c.id LIMIT 1", None).await?.pop())
                })
            }

            fn set_campaign_state(&self, id: &str, state: JobState, error: Option<String>) -> StoreFuture<'_, bool> {
                let id = id.to_string();
                Box::pin(async move { self.set_state("campaigns", &id, state, error).await })
            }

            fn update_campaign_progress(&self, id: &str, p: CampaignProgress) -> StoreFuture<'_, ()> {
                let id = id.to_string();
                Box::pin(async move {
                    sqlx::query(D.sql(
                        "UPDATE campaigns SET sequential = COALESCE(?, sequential), p_value = COALESCE(?, p_value), \
                         decision = COALESCE(?, decision), teacher = COALESCE(?, teacher), \
                         stop_reason = COALESCE(?, stop_reason), updated_ms = ? WHERE id = ?",
                    ))
                    .bind(p.sequential.map(|v| v.to_string()))
                    .bind(real(p.p_value))
                    .bind(p.decision)
                    .bind(p.teacher)
                    .bind(p.stop_reason)
                    .bind(now_ms())
                    .bind(id)
                    .execute(self.writer())
                    .await?;
                    Ok(())
                })
            }

            fn campaign_probes(&self, id: &str, state: Option<ProbeState>, after_seq: i64, limit: i64) -> StoreFuture<'_, Vec<ProbeRecord>> {
                let id = id.to_string();
                Box::pin(async move {
                    let rows = sqlx::query(D.sql(
                        "SELECT * FROM campaign_probes WHERE campaign_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR state = ?2) \
                         AND seq > ?3 ORDER BY seq LIMIT ?4",
                    ))
                    .bind(id)
                    .bind(state.map(|s| s.as_str()))
                    .bind(after_seq)
                    .bind(D.limit(limit))
                    .fetch_all(self.reader())
                    .await?;
                    rows.iter().map(probe_from_row).collect()
                })
            }

            fn mark_probe_sent(&self, id: &str, seq: i64) -> StoreFuture<'_, bool> {
                let id = id.to_string();
                Box::pin(async move {
                    // A concurrent second call waits for the first one's row lock (or the writer),
                    // then re-checks `state = 'pending'` on the committed row: at most one succeeds.
                    let r = sqlx::query(D.sql(
                        "UPDATE campaign_probes SET state = 'sent', sent_ms = ? WHERE campaign_id = ? AND seq = ? AND state = 'pending'",
                    ))
                    .bind(now_ms())
                    .bind(id)
                    .bind(seq)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn finish_probe(&self, id: &str, seq: i64, o: ProbeOutcome) -> StoreFuture<'_, ()> {
                let id = id.to_string();
                Box::pin(async move {
                    // Read before the transaction (a campaign's suspect never changes): a deferred
                    // SQLite transaction that reads first and then writes fails at once with
                    // SQLITE_BUSY_SNAPSHOT when another process (the CLI beside a server) wrote in
                    // between; one that starts with a write waits on the busy timeout instead.
                    let suspect: String =
                        sqlx::query_scalar(D.sql("SELECT suspect_id FROM campaigns WHERE id = ?")).bind(&id).fetch_one(self.writer()).await?;
                    let mut tx = self.writer().begin().await?;
                    let now = now_ms();
                    // Lock order suspect → campaign → probe: the suspect's row (before its samples),
                    // then the campaign's row (tokens), then the probe's.
                    if o.sample.is_some() {
                        lock_row(&mut tx, "suspects", &suspect).await?;
                    }
                    sqlx::query(D.sql("UPDATE campaigns SET tokens = tokens + ?, updated_ms = ? WHERE id = ?"))
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
                            sample_id = sqlx::query_scalar(D.sql("SELECT id FROM samples WHERE suspect_id = ? AND content_hash = ?"))
                                .bind(&suspect)
                                .bind(hash)
                                .fetch_optional(&mut *tx)
                                .await?;
                        }
                    }
                    sqlx::query(D.sql(
                        "UPDATE campaign_probes SET state = ?, attempts = ?, answer = ?, error = ?, tokens = ?, claims = ?, \
                         sample_id = ?, done_ms = ? WHERE campaign_id = ? AND seq = ?",
                    ))
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
                    let r = sqlx::query(D.sql(
                        "UPDATE campaign_probes SET upstream_state = 'sent' WHERE campaign_id = ? AND seq = ? AND upstream_state = 'pending'",
                    ))
                    .bind(id)
                    .bind(seq)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn finish_upstream(&self, id: &str, seq: i64, answer: Option<String>, extra: Vec<String>, error: Option<String>) -> StoreFuture<'_, ()> {
                let id = id.to_string();
                Box::pin(async move {
                    let extra = (!extra.is_empty()).then(|| serde_json::Value::from(extra).to_string());
                    sqlx::query(D.sql(
                        "UPDATE campaign_probes SET upstream_state = ?, upstream_answer = ?, upstream_extra = ?, upstream_error = ? WHERE campaign_id = ? AND seq = ?",
                    ))
                    .bind(if answer.is_some() { "answered" } else { "failed" })
                    .bind(answer)
                    .bind(extra)
                    .bind(error)
                    .bind(id)
                    .bind(seq)
                    .execute(self.writer())
                    .await?;
                    Ok(())
                })
            }

            fn fail_in_flight_probes(&self, id: &str, error: &str) -> StoreFuture<'_, u64> {
                let (id, error) = (id.to_string(), error.to_string());
                Box::pin(async move {
                    let mut tx = self.writer().begin().await?;
                    // Lock order: the campaign's row before its probes' (as finish_probe).
                    lock_row(&mut tx, "campaigns", &id).await?;
                    let a = sqlx::query(D.sql(
                        "UPDATE campaign_probes SET state = 'failed', error = ?, done_ms = ? WHERE campaign_id = ? AND state = 'sent'",
                    ))
                    .bind(&error)
                    .bind(now_ms())
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                    let b = sqlx::query(D.sql(
                        "UPDATE campaign_probes SET upstream_state = 'failed', upstream_error = ? WHERE campaign_id = ? AND upstream_state = 'sent'",
                    ))
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
                    let rows = sqlx::query("SELECT * FROM allowlist ORDER BY entry").fetch_all(self.reader()).await?;
                    rows.iter()
                        .map(|r| {
                            Ok(AllowEntry {
                                entry: r.try_get("entry")?,
                                note: r.try_get("note")?,
                                created_by: r.try_get("created_by")?,
                                created_ms: r.try_get("created_ms")?,
                                max_rate_per_sec: r.try_get("max_rate_per_sec")?,
                            })
                        })
                        .collect()
                })
            }

            fn add_allowlist(&self, e: AllowEntry) -> StoreFuture<'_, ()> {
                Box::pin(async move {
                    sqlx::query(D.sql(
                        "INSERT INTO allowlist (entry, note, created_by, created_ms, max_rate_per_sec) VALUES (?, ?, ?, ?, ?) \
                         ON CONFLICT (entry) DO UPDATE SET note = excluded.note, max_rate_per_sec = excluded.max_rate_per_sec",
                    ))
                    .bind(e.entry)
                    .bind(e.note)
                    .bind(e.created_by)
                    .bind(e.created_ms)
                    .bind(e.max_rate_per_sec)
                    .execute(self.writer())
                    .await?;
                    Ok(())
                })
            }

            fn delete_allowlist(&self, entry: &str) -> StoreFuture<'_, bool> {
                let entry = entry.to_string();
                Box::pin(async move {
                    let r = sqlx::query(D.sql("DELETE FROM allowlist WHERE entry = ?")).bind(entry).execute(self.writer()).await?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn put_secret(&self, name: &str, value: &str, created_by: Option<String>) -> StoreFuture<'_, SecretInfo> {
                let info = SecretInfo { name: name.to_string(), created_by, created_ms: now_ms(), hosts: vec![] };
                let value = value.to_string();
                Box::pin(async move {
                    sqlx::query(D.sql(
                        "INSERT INTO secrets (name, value, created_by, created_ms) VALUES (?, ?, ?, ?) \
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value, created_by = excluded.created_by, created_ms = excluded.created_ms",
                    ))
                    .bind(&info.name)
                    .bind(value)
                    .bind(&info.created_by)
                    .bind(info.created_ms)
                    .execute(self.writer())
                    .await?;
                    let hosts: String = sqlx::query_scalar(D.sql("SELECT hosts FROM secrets WHERE name = ?")).bind(&info.name).fetch_one(self.writer()).await?;
                    Ok(SecretInfo { hosts: super::sql::split_hosts(&hosts), ..info })
                })
            }

            fn set_secret_hosts(&self, name: &str, hosts: Vec<String>) -> StoreFuture<'_, bool> {
                let name = name.to_string();
                Box::pin(async move {
                    let r = sqlx::query(D.sql("UPDATE secrets SET hosts = ? WHERE name = ?")).bind(hosts.join(",")).bind(name).execute(self.writer()).await?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn secret_hosts(&self, name: &str) -> StoreFuture<'_, Option<Vec<String>>> {
                let name = name.to_string();
                Box::pin(async move {
                    let h: Option<String> = sqlx::query_scalar(D.sql("SELECT hosts FROM secrets WHERE name = ?")).bind(name).fetch_optional(self.reader()).await?;
                    Ok(h.map(|h| super::sql::split_hosts(&h)))
                })
            }

            fn get_secret(&self, name: &str) -> StoreFuture<'_, Option<String>> {
                let name = name.to_string();
                Box::pin(async move {
                    Ok(sqlx::query_scalar(D.sql("SELECT value FROM secrets WHERE name = ?")).bind(name).fetch_optional(self.reader()).await?)
                })
            }

            fn list_secrets(&self) -> StoreFuture<'_, Vec<SecretInfo>> {
                Box::pin(async move {
                    let rows = sqlx::query("SELECT name, created_by, created_ms, hosts FROM secrets ORDER BY name").fetch_all(self.reader()).await?;
                    rows.iter()
                        .map(|r| Ok(SecretInfo { name: r.try_get("name")?, created_by: r.try_get("created_by")?, created_ms: r.try_get("created_ms")?, hosts: super::sql::split_hosts(&r.try_get::<String, _>("hosts")?) }))
                        .collect()
                })
            }

            fn delete_secret(&self, name: &str) -> StoreFuture<'_, bool> {
                let name = name.to_string();
                Box::pin(async move {
                    let r = sqlx::query(D.sql("DELETE FROM secrets WHERE name = ?")).bind(name).execute(self.writer()).await?;
                    Ok(r.rows_affected() > 0)
                })
            }
        }
    };
}

/// The stored form of a secret's hosts: `host:port` entries joined by commas (none holds one).
pub fn split_hosts(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|h| !h.is_empty()).map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_in_order() {
        assert_eq!(
            dollar_placeholders("UPDATE t SET a = ?, b = ? WHERE id = ?"),
            "UPDATE t SET a = $1, b = $2 WHERE id = $3"
        );
        assert_eq!(dollar_placeholders("SELECT 1"), "SELECT 1");
        assert_eq!(dollar_placeholders("?"), "$1");
    }

    #[test]
    fn numbered_placeholders_keep_their_numbers() {
        assert_eq!(
            dollar_placeholders("WHERE (?1 IS NULL OR k = ?1) AND x < ?12"),
            "WHERE ($1 IS NULL OR k = $1) AND x < $12"
        );
    }

    #[test]
    fn quoted_text_is_copied_as_is() {
        assert_eq!(
            dollar_placeholders("SELECT 'it''s', \"a b\" FROM t WHERE s = 'x' AND id = ?"),
            "SELECT 'it''s', \"a b\" FROM t WHERE s = 'x' AND id = $1"
        );
    }

    #[test]
    #[should_panic(expected = "inside a quoted string")]
    fn a_question_mark_in_a_string_literal_is_refused() {
        dollar_placeholders("SELECT * FROM t WHERE a = 'why?' AND id = ?");
    }

    #[test]
    #[should_panic(expected = "mixed")]
    fn mixed_placeholder_forms_are_refused() {
        dollar_placeholders("WHERE a = ?1 AND b = ?");
    }

    #[test]
    fn dialect_fragments() {
        assert_eq!(SQLITE.sql("a = ?").0, "a = ?");
        assert_eq!(POSTGRES.sql("a = ?").0, "a = $1");
        assert_eq!(
            SQLITE.insert_ignore("t (a) VALUES (?)", "RETURNING id"),
            "INSERT OR IGNORE INTO t (a) VALUES (?) RETURNING id"
        );
        assert_eq!(
            POSTGRES.insert_ignore("t (a) VALUES (?)", ""),
            "INSERT INTO t (a) VALUES (?) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            (SQLITE.limit(-1), POSTGRES.limit(-1), POSTGRES.limit(0)),
            (Some(-1), None, Some(0))
        );
        assert_eq!((offset(-3), real(Some(f64::NAN)), real(Some(1.5))), (0, None, Some(1.5)));
    }
}
