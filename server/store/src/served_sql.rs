//! The served-log and membership-result [`Store`](super::Store) methods, shared by both
//! backends like the rest of [`impl_sql_store!`] but kept in their own macro (and file) so that
//! the concept can be read in one place. Expanded inside `impl Store for …` through the
//! backend's `$($own)*` slot; it uses the items the main macro defines (`D`, `DbRow`,
//! `json_col`, `offset`, `real`).

macro_rules! served_store_methods {
    () => {
        fn create_served_log(
            &self,
            log: ServedLogRecord,
            answers: Vec<ServedAnswerRow>,
        ) -> StoreFuture<'_, ServedLogRecord> {
            Box::pin(async move {
                let mut tx = self.writer().begin().await?;
                sqlx::query(D.sql(
                    "INSERT INTO served_logs (id, name, kind, format, answers, prompts, summary, created_by, created_ms) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ))
                .bind(&log.id)
                .bind(&log.name)
                .bind(log.kind.as_str())
                .bind(&log.format)
                .bind(log.answers)
                .bind(log.prompts)
                .bind(serde_json::to_string(&log.accounts)?)
                .bind(&log.created_by)
                .bind(log.created_ms)
                .execute(&mut *tx)
                .await?;
                for a in &answers {
                    sqlx::query(D.sql(
                        "INSERT INTO served_answers (log_id, seq, prompt, response, account, created) VALUES (?, ?, ?, ?, ?, ?)",
                    ))
                    .bind(&log.id)
                    .bind(a.seq)
                    .bind(&a.prompt)
                    .bind(&a.response)
                    .bind(&a.account)
                    .bind(a.created)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(log)
            })
        }

        fn get_served_log(&self, id: &str) -> StoreFuture<'_, Option<ServedLogRecord>> {
            let id = id.to_string();
            Box::pin(async move {
                let row = sqlx::query(D.sql("SELECT * FROM served_logs WHERE id = ?"))
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await?;
                row.as_ref().map(served_log_from_row).transpose()
            })
        }

        fn list_served_logs(&self, limit: i64, off: i64) -> StoreFuture<'_, Vec<ServedLogRecord>> {
            Box::pin(async move {
                let rows = sqlx::query(D.sql(
                    "SELECT * FROM served_logs ORDER BY created_ms DESC, id LIMIT ? OFFSET ?",
                ))
                .bind(D.limit(limit))
                .bind(offset(off))
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(served_log_from_row).collect()
            })
        }

        fn delete_served_log(&self, id: &str) -> StoreFuture<'_, bool> {
            let id = id.to_string();
            Box::pin(async move {
                let r = sqlx::query(D.sql("DELETE FROM served_logs WHERE id = ?"))
                    .bind(id)
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected() > 0)
            })
        }

        fn served_answers(
            &self,
            id: &str,
            account: Option<String>,
            after_seq: i64,
            limit: i64,
        ) -> StoreFuture<'_, Vec<ServedAnswerRow>> {
            let id = id.to_string();
            Box::pin(async move {
                let rows = sqlx::query(D.sql(
                    "SELECT seq, prompt, response, account, created FROM served_answers \
                     WHERE log_id = ? AND seq > ? AND (CAST(? AS TEXT) IS NULL OR account = ?) \
                     ORDER BY seq LIMIT ?",
                ))
                .bind(id)
                .bind(after_seq)
                .bind(account.clone())
                .bind(account)
                .bind(D.limit(limit))
                .fetch_all(self.reader())
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(ServedAnswerRow {
                            seq: r.try_get("seq")?,
                            prompt: r.try_get("prompt")?,
                            response: r.try_get("response")?,
                            account: r.try_get("account")?,
                            created: r.try_get("created")?,
                        })
                    })
                    .collect()
            })
        }

        fn add_membership_result(&self, rec: MembershipRecord) -> StoreFuture<'_, ()> {
            Box::pin(async move {
                sqlx::query(D.sql(
                    "INSERT INTO membership_results (id, suspect_id, served_log, account, campaign_id, decision, \
                     p_value, prompts, report, created_by, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ))
                .bind(&rec.id)
                .bind(&rec.suspect_id)
                .bind(&rec.served_log)
                .bind(&rec.account)
                .bind(&rec.campaign_id)
                .bind(&rec.decision)
                .bind(real(Some(rec.p_value)).unwrap_or(1.0))
                .bind(rec.prompts)
                .bind(rec.report.to_string())
                .bind(&rec.created_by)
                .bind(rec.created_ms)
                .execute(self.writer())
                .await?;
                Ok(())
            })
        }

        fn membership_results(
            &self,
            suspect_id: &str,
            limit: i64,
        ) -> StoreFuture<'_, Vec<MembershipRecord>> {
            let id = suspect_id.to_string();
            Box::pin(async move {
                let rows = sqlx::query(D.sql(
                    "SELECT * FROM membership_results WHERE suspect_id = ? ORDER BY created_ms DESC, id DESC LIMIT ?",
                ))
                .bind(id)
                .bind(D.limit(limit))
                .fetch_all(self.reader())
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(MembershipRecord {
                            id: r.try_get("id")?,
                            suspect_id: r.try_get("suspect_id")?,
                            served_log: r.try_get("served_log")?,
                            account: r.try_get("account")?,
                            campaign_id: r.try_get("campaign_id")?,
                            decision: r.try_get("decision")?,
                            p_value: r.try_get("p_value")?,
                            prompts: r.try_get("prompts")?,
                            report: json_col(r, "report")?.unwrap_or_default(),
                            created_by: r.try_get("created_by")?,
                            created_ms: r.try_get("created_ms")?,
                        })
                    })
                    .collect()
            })
        }
    };
}

/// The row mapper of `served_logs`, expanded beside the main macro's mappers.
macro_rules! served_row_mappers {
    () => {
        fn served_log_from_row(r: &DbRow) -> Result<ServedLogRecord, StoreError> {
            let kind: String = r.try_get("kind")?;
            let summary: String = r.try_get("summary")?;
            Ok(ServedLogRecord {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                kind: ServedKind::parse(&kind).unwrap_or(ServedKind::Served),
                format: r.try_get("format")?,
                answers: r.try_get("answers")?,
                prompts: r.try_get("prompts")?,
                accounts: serde_json::from_str(&summary)?,
                created_by: r.try_get("created_by")?,
                created_ms: r.try_get("created_ms")?,
            })
        }
    };
}
