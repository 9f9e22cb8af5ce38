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
/// Revocations through the API clear it; revocations by another process apply within the TTL.
pub struct KeyCache {
    ttl: Duration,
    map: Mutex<HashMap<String, (Option<ApiKeyRecord>, Instant)>>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache { ttl, map: Mutex::new(HashMap::new()) }
    }

    pub fn clear(&self) {
        self.map.lock().expect("key cache").clear();
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
