//! The [`Store`](super::Store) methods for suspects, their samples and cached verdicts, written once for both backends:
//! expanded inside `impl Store for …` by [`impl_sql_store!`]; they use the items that macro
//! defines (`D`, the row mappers, `lock_row`, …).

macro_rules! suspect_methods {
    () => {
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
    };
}
