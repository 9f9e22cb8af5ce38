//! The [`Store`](super::Store) methods for batch jobs: rows, cursors, chunk commits and results, written once for both backends:
//! expanded inside `impl Store for …` by [`impl_sql_store!`]; they use the items that macro
//! defines (`D`, the row mappers, `lock_row`, …).

macro_rules! job_methods {
    () => {
        fn create_job(&self, job: NewJob) -> StoreFuture<'_, JobRecord> {
            Box::pin(async move {
                let now = now_ms();
                let parts = job.parts.len() as i64;
                // The job and its parts in one transaction: no replica sees a job without them.
                let mut tx = self.writer().begin().await?;
                sqlx::query(D.sql(
                    "INSERT INTO jobs (id, kind, state, params, input_path, total, created_by, created_ms, updated_ms, parts) \
                     VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                ))
                .bind(&job.id)
                .bind(&job.kind)
                .bind(job.params.to_string())
                .bind(&job.input_path)
                .bind(job.total)
                .bind(&job.created_by)
                .bind(now)
                .bind(now)
                .bind(parts)
                .execute(&mut *tx)
                .await?;
                for (no, p) in job.parts.iter().enumerate() {
                    sqlx::query(D.sql(
                        "INSERT INTO job_parts (job_id, part_no, start_offset, end_offset, lines_before, state, cursor_offset, cursor_line, updated_ms) \
                         VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                    ))
                    .bind(&job.id)
                    .bind(no as i64)
                    .bind(p.start_offset)
                    .bind(p.end_offset)
                    .bind(p.lines_before)
                    .bind(p.start_offset)
                    .bind(p.lines_before)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
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
                    lease_owner: None,
                    lease_expires_ms: None,
                    parts,
                    parts_done: 0,
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
                // Fencing: a replica whose lease was taken over writes nothing.
                if let Some(owner) = &chunk.lease_owner {
                    let holder: Option<Option<String>> = sqlx::query_scalar(D.sql("SELECT lease_owner FROM jobs WHERE id = ?"))
                        .bind(&id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if holder.flatten().as_deref() != Some(owner.as_str()) {
                        return Err(StoreError::LeaseLost(id));
                    }
                }
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

        fn claim_job(&self, owner: &str, lease_ms: i64) -> StoreFuture<'_, Option<JobRecord>> {
            let owner = owner.to_string();
            Box::pin(async move {
                let sql = format!(
                    "UPDATE jobs SET lease_owner = ?1, lease_expires_ms = {now} + ?2 \
                     WHERE id = (SELECT id FROM jobs WHERE state IN ('queued', 'running') \
                                 AND (lease_owner IS NULL OR lease_expires_ms < {now}) \
                                 AND parts_done = parts \
                                 ORDER BY created_ms, id LIMIT 1 {lock}) \
                     RETURNING *",
                    now = D.now_ms,
                    lock = D.claim_lock,
                );
                let row = sqlx::query(D.sql(&sql)).bind(owner).bind(lease_ms).fetch_optional(self.writer()).await?;
                row.as_ref().map(job_from_row).transpose()
            })
        }

        fn renew_job_lease(&self, id: &str, owner: &str, lease_ms: i64) -> StoreFuture<'_, bool> {
            let (id, owner) = (id.to_string(), owner.to_string());
            Box::pin(async move { self.renew_lease("jobs", &id, &owner, lease_ms).await })
        }

        fn release_job_leases(&self, owner: &str, id: Option<&str>) -> StoreFuture<'_, u64> {
            let (owner, id) = (owner.to_string(), id.map(str::to_string));
            Box::pin(async move { self.release_leases("jobs", &owner, id.as_deref()).await })
        }

        fn claim_job_part(&self, owner: &str, lease_ms: i64) -> StoreFuture<'_, Option<(JobRecord, JobPart)>> {
            let owner = owner.to_string();
            Box::pin(async move {
                // The job's state is read in a subquery of WHERE, so PostgreSQL locks (and skips)
                // only part rows: concurrent claimers get different parts of one job.
                let sql = format!(
                    "UPDATE job_parts SET lease_owner = ?1, lease_expires_ms = {now} + ?2, state = 'running', updated_ms = ?3 \
                     WHERE (job_id, part_no) = (SELECT p.job_id, p.part_no FROM job_parts p \
                         WHERE p.state <> 'done' AND (p.lease_owner IS NULL OR p.lease_expires_ms < {now}) \
                           AND p.job_id IN (SELECT id FROM jobs WHERE state IN ('queued', 'running')) \
                         ORDER BY (SELECT created_ms FROM jobs j WHERE j.id = p.job_id), p.job_id, p.part_no \
                         LIMIT 1 {lock}) \
                     RETURNING *",
                    now = D.now_ms,
                    lock = D.claim_lock,
                );
                let row = sqlx::query(D.sql(&sql)).bind(owner).bind(lease_ms).bind(now_ms()).fetch_optional(self.writer()).await?;
                let Some(part) = row.as_ref().map(part_from_row).transpose()? else { return Ok(None) };
                let job = sqlx::query(D.sql("SELECT * FROM jobs WHERE id = ?")).bind(&part.job_id).fetch_all(self.writer()).await?;
                match job.first() {
                    Some(j) => Ok(Some((job_from_row(j)?, part))),
                    None => Ok(None),
                }
            })
        }

        fn renew_part_lease(&self, job_id: &str, part_no: i64, owner: &str, lease_ms: i64) -> StoreFuture<'_, bool> {
            let (job_id, owner) = (job_id.to_string(), owner.to_string());
            Box::pin(async move {
                let sql = format!(
                    "UPDATE job_parts SET lease_expires_ms = {} + ? \
                     WHERE job_id = ? AND part_no = ? AND lease_owner = ? AND state <> 'done' \
                       AND job_id IN (SELECT id FROM jobs WHERE state IN ('queued', 'running'))",
                    D.now_ms
                );
                let r = sqlx::query(D.sql(&sql)).bind(lease_ms).bind(job_id).bind(part_no).bind(owner).execute(self.writer()).await?;
                Ok(r.rows_affected() > 0)
            })
        }

        fn commit_part_chunk(&self, job_id: &str, part_no: i64, chunk: PartChunk) -> StoreFuture<'_, ()> {
            let job_id = job_id.to_string();
            Box::pin(async move {
                let mut tx = self.writer().begin().await?;
                // Locks: the part's row, then (samples) the suspect's, then the job's — the same
                // order in every part commit, so concurrent parts of one job queue, never deadlock.
                let lock = D.row_lock.unwrap_or("");
                let held: Option<(Option<String>, String)> = sqlx::query_as(D.sql(&format!(
                    "SELECT lease_owner, state FROM job_parts WHERE job_id = ? AND part_no = ? {lock}"
                )))
                .bind(&job_id)
                .bind(part_no)
                .fetch_optional(&mut *tx)
                .await?;
                match held {
                    Some((Some(o), state)) if o == chunk.owner && state != "done" => {}
                    _ => return Err(StoreError::LeaseLost(format!("{job_id} part {part_no}"))),
                }
                let job_state: Vec<String> = sqlx::query_scalar(D.sql("SELECT state FROM jobs WHERE id = ?"))
                    .bind(&job_id)
                    .fetch_all(&mut *tx)
                    .await?;
                if !job_state.first().is_some_and(|s| s == "queued" || s == "running") {
                    return Err(StoreError::Finished(job_id));
                }
                let insert = D.insert_ignore("job_results (job_id, line_no, result) VALUES (?, ?, ?)", "");
                let mut added = 0u64;
                for (line_no, result) in &chunk.results {
                    added += sqlx::query(D.sql(&insert)).bind(&job_id).bind(line_no).bind(result.to_string()).execute(&mut *tx).await?.rows_affected();
                }
                if let Some((suspect_id, samples)) = chunk.samples {
                    insert_samples(&mut tx, &suspect_id, samples).await?;
                }
                let now = now_ms();
                let state = if chunk.finished { "done" } else { "running" };
                sqlx::query(D.sql(
                    "UPDATE job_parts SET cursor_offset = ?, cursor_line = ?, state = ?, stats = ?, updated_ms = ?, \
                     lease_owner = CASE WHEN ? THEN NULL ELSE lease_owner END, \
                     lease_expires_ms = CASE WHEN ? THEN NULL ELSE lease_expires_ms END \
                     WHERE job_id = ? AND part_no = ?",
                ))
                .bind(chunk.cursor_offset)
                .bind(chunk.cursor_line)
                .bind(state)
                .bind(chunk.stats.as_ref().map(|v| v.to_string()))
                .bind(now)
                .bind(chunk.finished)
                .bind(chunk.finished)
                .bind(&job_id)
                .bind(part_no)
                .execute(&mut *tx)
                .await?;
                sqlx::query(D.sql(
                    "UPDATE jobs SET done = done + ?, parts_done = parts_done + ?, updated_ms = ?, \
                     cursor_offset = (SELECT COALESCE(SUM(cursor_offset - start_offset), 0) FROM job_parts WHERE job_id = ?), \
                     cursor_line = (SELECT COALESCE(SUM(cursor_line - lines_before), 0) FROM job_parts WHERE job_id = ?) \
                     WHERE id = ?",
                ))
                .bind(added as i64)
                .bind(i64::from(chunk.finished))
                .bind(now)
                .bind(&job_id)
                .bind(&job_id)
                .bind(&job_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            })
        }

        fn job_parts(&self, job_id: &str) -> StoreFuture<'_, Vec<JobPart>> {
            let job_id = job_id.to_string();
            Box::pin(async move {
                let rows = sqlx::query(D.sql(
                    "SELECT job_id, part_no, start_offset, end_offset, lines_before, state, cursor_offset, cursor_line, \
                     CAST(NULL AS TEXT) AS stats, lease_owner, lease_expires_ms, updated_ms \
                     FROM job_parts WHERE job_id = ? ORDER BY part_no",
                ))
                .bind(job_id)
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(part_from_row).collect()
            })
        }

        fn part_stats(&self, job_id: &str, after_part: i64, limit: i64) -> StoreFuture<'_, Vec<(i64, Option<serde_json::Value>)>> {
            let job_id = job_id.to_string();
            Box::pin(async move {
                let rows = sqlx::query(D.sql("SELECT part_no, stats FROM job_parts WHERE job_id = ? AND part_no > ? ORDER BY part_no LIMIT ?"))
                    .bind(job_id)
                    .bind(after_part)
                    .bind(D.limit(limit))
                    .fetch_all(self.reader())
                    .await?;
                rows.iter().map(|r| Ok((r.try_get("part_no")?, json_col(r, "stats")?))).collect()
            })
        }

        fn release_part_leases(&self, owner: &str, part: Option<(&str, i64)>) -> StoreFuture<'_, u64> {
            let owner = owner.to_string();
            let part = part.map(|(j, n)| (j.to_string(), n));
            Box::pin(async move {
                let set = "UPDATE job_parts SET lease_owner = NULL, lease_expires_ms = NULL WHERE lease_owner = ?";
                let r = match part {
                    Some((job_id, no)) => {
                        sqlx::query(D.sql(&format!("{set} AND job_id = ? AND part_no = ?"))).bind(owner).bind(job_id).bind(no).execute(self.writer()).await?
                    }
                    None => sqlx::query(D.sql(set)).bind(owner).execute(self.writer()).await?,
                };
                Ok(r.rows_affected())
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
    };
}
