//! The [`Store`](super::Store) methods for batch jobs: rows, cursors, chunk commits and results, written once for both backends:
//! expanded inside `impl Store for …` by [`impl_sql_store!`]; they use the items that macro
//! defines (`D`, the row mappers, `lock_row`, …).

macro_rules! job_methods {
    () => {
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
                    lease_owner: None,
                    lease_expires_ms: None,
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
