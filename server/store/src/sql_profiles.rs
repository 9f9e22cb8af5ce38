//! The [`Store`](super::Store) methods for profiles (built-in and uploaded), written once for both backends:
//! expanded inside `impl Store for …` by [`impl_sql_store!`]; they use the items that macro
//! defines (`D`, the row mappers, `lock_row`, …).

macro_rules! profile_methods {
    () => {
        fn upsert_profile(&self, rec: ProfileRecord) -> StoreFuture<'_, ()> {
            Box::pin(async move {
                let mut conn = self.writer().acquire().await?;
                upsert_profile_row(&mut conn, &rec).await
            })
        }

        fn save_profile(&self, rec: ProfileRecord, bytes: Vec<u8>) -> StoreFuture<'_, ()> {
            Box::pin(async move {
                let mut tx = self.writer().begin().await?;
                upsert_profile_row(&mut tx, &rec).await?;
                sqlx::query(D.sql(
                    "INSERT INTO profile_files (name, bytes) VALUES (?, ?) \
                     ON CONFLICT (name) DO UPDATE SET bytes = excluded.bytes",
                ))
                .bind(&rec.name)
                .bind(bytes)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            })
        }

        fn profile_file(&self, name: &str) -> StoreFuture<'_, Option<Vec<u8>>> {
            let name = name.to_string();
            Box::pin(async move {
                let rows: Vec<Vec<u8>> =
                    sqlx::query_scalar(D.sql("SELECT bytes FROM profile_files WHERE name = ?"))
                        .bind(name)
                        .fetch_all(self.reader())
                        .await?;
                Ok(rows.into_iter().next())
            })
        }

        fn list_profiles(&self) -> StoreFuture<'_, Vec<ProfileRecord>> {
            Box::pin(async move {
                let rows = sqlx::query("SELECT * FROM profiles ORDER BY builtin DESC, name")
                    .fetch_all(self.reader())
                    .await?;
                rows.iter().map(profile_from_row).collect()
            })
        }

        fn get_profile(&self, name: &str) -> StoreFuture<'_, Option<ProfileRecord>> {
            let name = name.to_string();
            Box::pin(async move {
                let row = sqlx::query(D.sql("SELECT * FROM profiles WHERE name = ?"))
                    .bind(name)
                    .fetch_optional(self.reader())
                    .await?;
                row.as_ref().map(profile_from_row).transpose()
            })
        }

        fn delete_profile(&self, name: &str) -> StoreFuture<'_, bool> {
            let name = name.to_string();
            Box::pin(async move {
                let r = sqlx::query(D.sql("DELETE FROM profiles WHERE name = ? AND NOT builtin"))
                    .bind(name)
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected() > 0)
            })
        }
    };
}
