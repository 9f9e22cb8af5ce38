//! The PostgreSQL store (`--database-url postgres://…`): the same semantics as [`SqliteStore`]
//! (same tables, dedup, ordering, paging and errors), on one connection pool.
//!
//! SQLite serialises every write through one connection; PostgreSQL runs transactions
//! concurrently (READ COMMITTED). The guarantees that matter are kept by the statements themselves
//! (`… WHERE state = 'pending'` updates, `ON CONFLICT DO NOTHING`) and, where a transaction reads
//! what it then writes, by locking the owning row first: a job's row before its chunk (so `done`
//! counts every committed result), a suspect's row before its samples (so concurrent inserts of
//! overlapping samples queue instead of deadlocking), a campaign's row before its probes. Locks are
//! always taken in the order job → suspect → campaign → probe.
//!
//! The `Store` methods themselves are shared with SQLite: see `store::sql`, where every dialect
//! difference (row locks included) is listed.
//!
//! [`SqliteStore`]: super::SqliteStore

use super::*;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connect to `url` (`postgres://user:password@host:port/db`, or `?host=/dir` for a unix
    /// socket) and run the PostgreSQL migrations (`migrations-pg/`; concurrent starts are safe:
    /// sqlx takes an advisory lock).
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let opts = PgConnectOptions::from_str(url)?.application_name("pedigree");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations-pg").run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// The connection pool (tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The pools the shared `Store` methods use: one for reads and writes alike.
    fn reader(&self) -> &PgPool {
        &self.pool
    }
    fn writer(&self) -> &PgPool {
        &self.pool
    }
}

// Every `Store` method, from the SQL both stores share (see `store::sql`).
impl_sql_store!(PgStore, sqlx::Postgres, super::sql::POSTGRES;
    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.pool.close().await;
            Ok(())
        })
    }
    served_store_methods!();
);
served_row_mappers!();
