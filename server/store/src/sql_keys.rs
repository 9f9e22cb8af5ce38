//! The [`Store`](super::Store) methods for API keys and the audit log, written once for both backends:
//! expanded inside `impl Store for …` by [`impl_sql_store!`]; they use the items that macro
//! defines (`D`, the row mappers, `lock_row`, …).

macro_rules! key_audit_methods {
    () => {
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

        fn key_revocation_mark(&self) -> StoreFuture<'_, (i64, i64)> {
            Box::pin(async move {
                // fetch_all, not fetch_one: the statement runs to its end, so this poll (every
                // second) never leaves a SQLite reader holding an open read snapshot.
                let rows = sqlx::query("SELECT COUNT(revoked_ms) AS n, COALESCE(MAX(revoked_ms), 0) AS latest FROM api_keys")
                    .fetch_all(self.reader())
                    .await?;
                let row = rows.first().ok_or_else(|| StoreError::NotFound("api_keys aggregate".into()))?;
                Ok((row.try_get("n")?, row.try_get("latest")?))
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
    };
}
