//! The [`Store`](super::Store) methods for probe campaigns and their probes (at-most-once sending), written once for both backends:
//! expanded inside `impl Store for …` by [`impl_sql_store!`]; they use the items that macro
//! defines (`D`, the row mappers, `lock_row`, …).

macro_rules! campaign_methods {
    () => {
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
    };
}
