//! The [`Store`](super::Store) methods for the probe allowlist and endpoint secrets, written once for both backends:
//! expanded inside `impl Store for …` by [`impl_sql_store!`]; they use the items that macro
//! defines (`D`, the row mappers, `lock_row`, …).

macro_rules! admin_methods {
    () => {
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
    };
}
