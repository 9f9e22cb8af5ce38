//! The SQL both stores share: every [`Store`] method is written once, in [`impl_sql_store!`]
//! and the per-concern macros it expands (`sql_keys.rs`, `sql_profiles.rs`, `sql_suspects.rs`,
//! `sql_jobs.rs`, `sql_campaigns.rs`, `sql_admin.rs`, `served_sql.rs`; row mappers in
//! `sql_rows.rs`), expanded in `sqlite.rs` and `postgres.rs` (a macro rather than generic code over
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
    /// Appended to the subquery that picks a job to claim: PostgreSQL's claimers skip rows
    /// another claimer has locked (each gets a different job); SQLite's single writer needs none.
    pub claim_lock: &'static str,
    /// The database's clock in epoch milliseconds: leases are timed by it, so replicas whose
    /// clocks disagree still agree on when a lease expires.
    pub now_ms: &'static str,
    /// The database's clock in epoch microseconds (the shared rate limiters reserve slots by it).
    pub now_us: &'static str,
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
    claim_lock: "",
    now_ms: "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    // 'now' is fixed for the whole statement in SQLite.
    now_us: "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
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
    claim_lock: "FOR UPDATE SKIP LOCKED",
    now_ms: "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    // statement_timestamp(), not clock_timestamp(): one value per statement.
    now_us: "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000 AS BIGINT)",
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

/// The `Store` impl for `$store`, a store on database `$db` speaking `$dialect`, which provides
/// `self.reader()` and `self.writer()` (its pools for reads and for writes): the shared helpers
/// here, the row mappers (`sql_rows.rs`) and the methods, one macro per concern. `$($own)*` are
/// the backend's own trait methods (`close`, the served-log methods).
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, $dialect:expr; $($own:tt)*) => {
        use super::sql::{offset, real, SUSPECT_COLS};
        use sqlx::Row;

        const D: &super::sql::Dialect = &$dialect;
        type DbRow = <$db as sqlx::Database>::Row;
        type DbConnection = <$db as sqlx::Database>::Connection;

        sql_row_mappers!();

        /// Lock the row `id` of `table` for the rest of the caller's transaction, where the
        /// dialect needs it ([`Dialect::row_lock`](super::sql::Dialect::row_lock)).
        async fn lock_row(conn: &mut DbConnection, table: &'static str, id: &str) -> Result<(), StoreError> {
            if let Some(lock) = D.row_lock {
                sqlx::query(D.sql(&format!("SELECT 1 FROM {table} WHERE id = ? {lock}"))).bind(id).fetch_optional(&mut *conn).await?;
            }
            Ok(())
        }

        /// Insert or replace a profile's record on `conn` (a transaction, or a pooled connection).
        async fn upsert_profile_row(conn: &mut DbConnection, rec: &ProfileRecord) -> Result<(), StoreError> {
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
            .execute(&mut *conn)
            .await?;
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

            /// Extend `owner`'s lease on an unfinished job or campaign (`table`) to `lease_ms`
            /// from now (the database's clock); `false` when it is not `owner`'s or finished.
            async fn renew_lease(&self, table: &'static str, id: &str, owner: &str, lease_ms: i64) -> Result<bool, StoreError> {
                let sql = format!(
                    "UPDATE {table} SET lease_expires_ms = {} + ? \
                     WHERE id = ? AND lease_owner = ? AND state IN ('queued', 'running')",
                    D.now_ms
                );
                let r = sqlx::query(D.sql(&sql)).bind(lease_ms).bind(id).bind(owner).execute(self.writer()).await?;
                Ok(r.rows_affected() > 0)
            }

            /// Give back `owner`'s lease on row `id` of `table`, or (`None`) every one it holds there.
            async fn release_leases(&self, table: &'static str, owner: &str, id: Option<&str>) -> Result<u64, StoreError> {
                let sql = format!(
                    "UPDATE {table} SET lease_owner = NULL, lease_expires_ms = NULL \
                     WHERE lease_owner = ? AND (CAST(? AS TEXT) IS NULL OR id = ?)"
                );
                let r = sqlx::query(D.sql(&sql)).bind(owner).bind(id).bind(id).execute(self.writer()).await?;
                Ok(r.rows_affected())
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

            key_audit_methods!();
            profile_methods!();
            suspect_methods!();
            job_methods!();
            campaign_methods!();
            admin_methods!();
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
