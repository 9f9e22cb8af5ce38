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
                let fenced = p.lease_owner.is_some();
                let r = sqlx::query(D.sql(
                    "UPDATE campaigns SET sequential = COALESCE(?, sequential), p_value = COALESCE(?, p_value), \
                     decision = COALESCE(?, decision), teacher = COALESCE(?, teacher), \
                     stop_reason = COALESCE(?, stop_reason), updated_ms = ? WHERE id = ? \
                     AND (CAST(? AS TEXT) IS NULL OR lease_owner = ?)",
                ))
                .bind(p.sequential.map(|v| v.to_string()))
                .bind(real(p.p_value))
                .bind(p.decision)
                .bind(p.teacher)
                .bind(p.stop_reason)
                .bind(now_ms())
                .bind(&id)
                .bind(p.lease_owner.clone())
                .bind(p.lease_owner)
                .execute(self.writer())
                .await?;
                if fenced && r.rows_affected() == 0 {
                    return Err(StoreError::LeaseLost(id));
                }
                Ok(())
            })
        }

        fn claim_campaign(&self, owner: &str, lease_ms: i64, only: Option<&str>) -> StoreFuture<'_, Option<CampaignRecord>> {
            let (owner, only) = (owner.to_string(), only.map(str::to_string));
            Box::pin(async move {
                // A named campaign may be re-claimed by its own holder (a CLI re-run under the
                // same owner); the claim loop's pick never takes back what it already runs, nor
                // a campaign `pedigree probe` created (created_by 'cli'): its targets may be
                // allowed by that run's `--allow` only, so its re-run resumes it.
                //
                // A named claim is a plain UPDATE of that row: it waits for a row another
                // transaction has locked and re-checks the lease on the row's new version. The
                // loop's pick skips locked rows (each claimer gets a different campaign), which
                // for a named claim would be wrong: a concurrent claimer's brief lock made the
                // holder's own re-claim come back empty and fail its campaign as a conflict
                // (seen once in the replicas test on PostgreSQL).
                let sql = match only {
                    Some(_) => format!(
                        "UPDATE campaigns SET lease_owner = ?1, lease_expires_ms = {now} + ?2 \
                         WHERE id = ?3 AND state IN ('queued', 'running') \
                         AND (lease_owner IS NULL OR lease_expires_ms < {now} OR lease_owner = ?1) \
                         RETURNING id",
                        now = D.now_ms,
                    ),
                    None => format!(
                        "UPDATE campaigns SET lease_owner = ?1, lease_expires_ms = {now} + ?2 \
                         WHERE id = (SELECT id FROM campaigns WHERE state IN ('queued', 'running') \
                                     AND CAST(?3 AS TEXT) IS NULL \
                                     AND (created_by IS NULL OR created_by <> 'cli') \
                                     AND (lease_owner IS NULL OR lease_expires_ms < {now}) \
                                     ORDER BY created_ms, id LIMIT 1 {lock}) \
                         RETURNING id",
                        now = D.now_ms,
                        lock = D.claim_lock,
                    ),
                };
                let id: Option<String> =
                    sqlx::query_scalar(D.sql(&sql)).bind(owner).bind(lease_ms).bind(only).fetch_optional(self.writer()).await?;
                match id {
                    Some(id) => self.get_campaign(&id).await,
                    None => Ok(None),
                }
            })
        }

        fn renew_campaign_lease(&self, id: &str, owner: &str, lease_ms: i64) -> StoreFuture<'_, bool> {
            let (id, owner) = (id.to_string(), owner.to_string());
            Box::pin(async move { self.renew_lease("campaigns", &id, &owner, lease_ms).await })
        }

        fn release_campaign_leases(&self, owner: &str, id: Option<&str>) -> StoreFuture<'_, u64> {
            let (owner, id) = (owner.to_string(), id.map(str::to_string));
            Box::pin(async move { self.release_leases("campaigns", &owner, id.as_deref()).await })
        }

        fn reserve_rate_slot(&self, limits: &[(String, i64)]) -> StoreFuture<'_, i64> {
            // Sorted and deduplicated: every reservation locks the rows in the same order.
            let mut limits: Vec<(String, i64)> = limits.to_vec();
            limits.sort();
            limits.dedup_by(|a, b| a.0 == b.0);
            Box::pin(async move {
                let mut tx = self.writer().begin().await?;
                // The transaction starts with a write (SQLite then waits on the busy timeout
                // instead of failing on a stale snapshot); each row is then locked (PostgreSQL),
                // so concurrent reservations of any replica queue on the rows.
                let insert = D.insert_ignore("rate_slots (key, next_us) VALUES (?, 0)", "");
                let mut slot = i64::MIN;
                for (key, _) in &limits {
                    sqlx::query(D.sql(&insert)).bind(key).execute(&mut *tx).await?;
                    let lock = D.row_lock.unwrap_or("");
                    let next: i64 = sqlx::query_scalar(D.sql(&format!("SELECT next_us FROM rate_slots WHERE key = ? {lock}")))
                        .bind(key)
                        .fetch_one(&mut *tx)
                        .await?;
                    slot = slot.max(next);
                }
                // The clock is read once the rows are held, so a wait for a lock is not counted
                // twice.
                let now: i64 = sqlx::query_scalar(D.sql(&format!("SELECT {}", D.now_us))).fetch_one(&mut *tx).await?;
                let slot = slot.max(now);
                for (key, interval_us) in &limits {
                    sqlx::query(D.sql("UPDATE rate_slots SET next_us = ? WHERE key = ?"))
                        .bind(slot.saturating_add((*interval_us).max(0)))
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(slot - now)
            })
        }

        fn delete_rate_slots(&self, prefix: &str) -> StoreFuture<'_, u64> {
            let prefix = prefix.to_string();
            Box::pin(async move {
                let r = sqlx::query(D.sql("DELETE FROM rate_slots WHERE substr(key, 1, length(?1)) = ?1"))
                    .bind(prefix)
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected())
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

        fn mark_probe_sent(&self, id: &str, seq: i64, owner: Option<&str>) -> StoreFuture<'_, bool> {
            let (id, owner) = (id.to_string(), owner.map(str::to_string));
            Box::pin(async move {
                // A concurrent second call waits for the first one's row lock (or the writer),
                // then re-checks `state = 'pending'` on the committed row: at most one succeeds.
                // With an owner, only under that owner's unexpired lease: a replica that lost
                // the campaign sends nothing more.
                let sql = format!(
                    "UPDATE campaign_probes SET state = 'sent', sent_ms = ?1 WHERE campaign_id = ?2 AND seq = ?3 AND state = 'pending' \
                     AND (CAST(?4 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM campaigns c WHERE c.id = ?2 \
                          AND c.lease_owner = ?4 AND c.lease_expires_ms > {}))",
                    D.now_ms
                );
                let r = sqlx::query(D.sql(&sql))
                    .bind(now_ms())
                    .bind(id)
                    .bind(seq)
                    .bind(owner)
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
                // Only a probe still `sent`: one the restart policy already recorded as failed
                // (another replica took the campaign over) keeps that record, and this whole
                // transaction (sample, tokens) is rolled back.
                let r = sqlx::query(D.sql(
                    "UPDATE campaign_probes SET state = ?, attempts = ?, answer = ?, error = ?, tokens = ?, claims = ?, \
                     sample_id = ?, done_ms = ? WHERE campaign_id = ? AND seq = ? AND state = 'sent'",
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
                if r.rows_affected() == 0 {
                    return Err(StoreError::LeaseLost(id));
                }
                tx.commit().await?;
                Ok(())
            })
        }

        fn mark_upstream_sent(&self, id: &str, seq: i64, owner: Option<&str>) -> StoreFuture<'_, bool> {
            let (id, owner) = (id.to_string(), owner.map(str::to_string));
            Box::pin(async move {
                let sql = format!(
                    "UPDATE campaign_probes SET upstream_state = 'sent' WHERE campaign_id = ?1 AND seq = ?2 AND upstream_state = 'pending' \
                     AND (CAST(?3 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM campaigns c WHERE c.id = ?1 \
                          AND c.lease_owner = ?3 AND c.lease_expires_ms > {}))",
                    D.now_ms
                );
                let r = sqlx::query(D.sql(&sql)).bind(id).bind(seq).bind(owner).execute(self.writer()).await?;
                Ok(r.rows_affected() > 0)
            })
        }

        fn finish_upstream(&self, id: &str, seq: i64, answer: Option<String>, extra: Vec<String>, error: Option<String>) -> StoreFuture<'_, ()> {
            let id = id.to_string();
            Box::pin(async move {
                let extra = (!extra.is_empty()).then(|| serde_json::Value::from(extra).to_string());
                sqlx::query(D.sql(
                    "UPDATE campaign_probes SET upstream_state = ?, upstream_answer = ?, upstream_extra = ?, upstream_error = ? \
                     WHERE campaign_id = ? AND seq = ? AND upstream_state = 'sent'",
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
