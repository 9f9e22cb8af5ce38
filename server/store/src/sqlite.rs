//! The default store: an embedded SQLite database (WAL, foreign keys, busy timeout, migrations).
//!
//! Reads go through a small pool; every write goes through a single-connection writer pool, so
//! that write transactions are serialised in-process and never fail with SQLITE_BUSY on upgrade.
//! The `Store` methods themselves are shared with PostgreSQL: see `store::sql`.

use super::*;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

#[derive(Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if missing) `path` and run the migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        restrict_sqlite_files(path)?;
        let opts = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&write).await?;
        let read =
            SqlitePoolOptions::new().max_connections(8).connect_with(opts.read_only(false)).await?;
        Ok(SqliteStore { read, write })
    }

    /// Close both pools (CLI commands, before exiting).
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// The pools the shared `Store` methods use: reads run concurrently on `read`; every write
    /// goes through the one connection of `write`.
    fn reader(&self) -> &SqlitePool {
        &self.read
    }
    fn writer(&self) -> &SqlitePool {
        &self.write
    }
}

// Every `Store` method, from the SQL both stores share (see `store::sql`).
impl_sql_store!(SqliteStore, sqlx::Sqlite, super::sql::SQLITE;
    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            SqliteStore::close(self).await;
            Ok(())
        })
    }
    served_store_methods!();
);
served_row_mappers!();

/// SQLite-only checks; the behaviour every store shares is tested against both backends in
/// `store::conformance`.
/// Create `path` owner-only if it is missing, and tighten it (and its `-wal` / `-shm` files,
/// whose mode SQLite copies from the database file when it creates them) if it exists.
pub fn restrict_sqlite_files(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)?;
        }
        let mut names = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            names.push(p.into());
        }
        for p in names.iter().filter(|p| p.exists()) {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wal_and_foreign_keys_are_on() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.sqlite")).await.unwrap();
        let mode: String =
            sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&s.read).await.unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&s.write).await.unwrap();
        assert_eq!(fk, 1);
    }

    /// Issue 14 item 5: the database holds secrets and key hashes: owner-only (it was 0644).
    #[cfg(unix)]
    #[tokio::test]
    async fn database_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let s = SqliteStore::open(&path).await.unwrap();
        sqlx::query("CREATE TABLE t (x)").execute(&s.write).await.unwrap();
        for f in ["t.sqlite", "t.sqlite-wal", "t.sqlite-shm"] {
            let mode = std::fs::metadata(dir.path().join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{f}: {mode:o}");
        }
        // An existing world-readable database is tightened on open.
        s.close().await;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        SqliteStore::open(&path).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}
