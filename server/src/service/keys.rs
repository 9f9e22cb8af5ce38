//! API keys as the service layer sees them: the hash they are stored under, and the
//! short-lived lookup cache the authentication middleware reads through.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::ServiceResult;
use crate::store::{ApiKeyRecord, Store};

/// The stored form of an API key: its sha256, hex.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Short-lived cache of key lookups so that the hot scoring path does not hit the database.
/// Revocations through this server's API clear it at once; revocations through another replica
/// or the CLI clear it at the next [`KeyCache::sync`] (every [`REVOCATION_POLL`] once
/// [`KeyCache::watch`] runs), and at worst the TTL bounds any staleness.
pub struct KeyCache {
    ttl: Duration,
    map: Mutex<HashMap<String, (Option<ApiKeyRecord>, Instant)>>,
    /// The store's revocation mark when the cache was last synced.
    mark: Mutex<Option<(i64, i64)>>,
}

/// How often a replica looks for revocations made elsewhere (one small query).
pub const REVOCATION_POLL: Duration = Duration::from_secs(1);

impl KeyCache {
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache { ttl, map: Mutex::new(HashMap::new()), mark: Mutex::new(None) }
    }

    pub fn clear(&self) {
        self.map.lock().expect("key cache").clear();
    }

    /// Drop every cached lookup if a key was revoked anywhere since the last sync; `true` then.
    pub async fn sync(&self, store: &dyn Store) -> ServiceResult<bool> {
        let now = store.key_revocation_mark().await?;
        let changed = {
            let mut m = self.mark.lock().expect("key cache mark");
            let changed = m.is_some_and(|old| old != now);
            *m = Some(now);
            changed
        };
        if changed {
            self.clear();
        }
        Ok(changed)
    }

    /// Sync every [`REVOCATION_POLL`] in the background (a database error is retried).
    pub fn watch(self: &std::sync::Arc<Self>, store: std::sync::Arc<dyn Store>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                match me.sync(store.as_ref()).await {
                    Ok(true) => tracing::info!("a key was revoked elsewhere; key cache cleared"),
                    Ok(false) => {}
                    Err(e) => tracing::debug!(error = %e, "could not check key revocations"),
                }
                tokio::time::sleep(REVOCATION_POLL).await;
            }
        });
    }

    pub async fn lookup(
        &self,
        store: &dyn Store,
        key: &str,
    ) -> ServiceResult<Option<ApiKeyRecord>> {
        let h = hash_key(key);
        if let Some((rec, at)) = self.map.lock().expect("key cache").get(&h) {
            if at.elapsed() < self.ttl {
                return Ok(rec.clone());
            }
        }
        let rec = store.key_by_hash(&h).await?.filter(|r| r.revoked_ms.is_none());
        let mut m = self.map.lock().expect("key cache");
        if m.len() > 10_000 {
            m.clear();
        }
        m.insert(h, (rec.clone(), Instant::now()));
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Role, SqliteStore};

    /// A revocation written by another process (another replica, the CLI) reaches this cache at
    /// its next sync, long before the TTL; without a revocation a sync keeps the cache.
    #[tokio::test]
    async fn a_revocation_elsewhere_clears_the_cache_at_the_next_sync() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.db")).await.unwrap();
        let (a, b) = ("pdg_key_a", "pdg_key_b");
        store.create_key("k1", "a", Role::Analyst, &hash_key(a)).await.unwrap();
        store.create_key("k2", "b", Role::Analyst, &hash_key(b)).await.unwrap();
        let cache = KeyCache::new(Duration::from_secs(3600));
        assert!(!cache.sync(&store).await.unwrap(), "the first sync only records the mark");
        assert!(cache.lookup(&store, a).await.unwrap().is_some());
        assert!(cache.lookup(&store, b).await.unwrap().is_some());
        assert!(!cache.sync(&store).await.unwrap(), "nothing revoked: the cache stays");
        // Revoked behind the cache's back: still served from the cache until a sync.
        assert!(store.revoke_key("k1").await.unwrap());
        assert!(cache.lookup(&store, a).await.unwrap().is_some(), "cached for the TTL");
        assert!(cache.sync(&store).await.unwrap());
        assert!(cache.lookup(&store, a).await.unwrap().is_none(), "revoked after the sync");
        assert!(cache.lookup(&store, b).await.unwrap().is_some());
        assert!(!cache.sync(&store).await.unwrap());
    }
}
