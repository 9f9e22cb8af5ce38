//! API keys (`pdg_` + 32 base62 characters, stored as sha256 only), roles, and the middleware that
//! authenticates every `/v1` request and records writes and score requests in the audit log.

use crate::audit::{AuditDetail, AuditSink};
use crate::service::{ServiceError, ServiceResult};
use crate::state::AppState;
use crate::store::{now_ms, ApiKeyRecord, AuditEntry, Role, Store};
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use crate::ids::random_base62;
pub use crate::service::keys::{hash_key, KeyCache};

/// A new API key: `pdg_` followed by 32 base62 characters (~190 bits).
pub fn generate_key() -> String {
    format!("pdg_{}", random_base62(32))
}

/// Create a key in the store; returns the record and the plaintext key (shown once).
pub async fn create_key(
    store: &dyn Store,
    name: &str,
    role: Role,
) -> ServiceResult<(ApiKeyRecord, String)> {
    let key = generate_key();
    let id = format!("key_{}", random_base62(12));
    let rec = store.create_key(&id, name, role, &hash_key(&key)).await?;
    Ok((rec, key))
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// Fail with 403 unless the caller's role is at least `needed`.
    pub fn require(&self, needed: Role) -> ServiceResult<()> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(ServiceError::Forbidden { needed: needed.as_str(), has: self.role.as_str() })
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ServiceError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or(ServiceError::Unauthenticated)
    }
}

pub const VIEWER: u8 = 0;
pub const ANALYST: u8 = 1;
pub const ADMIN: u8 = 2;

/// Extractor that admits callers whose role is at least `ROLE` (`VIEWER`, `ANALYST`, `ADMIN`)
/// and rejects the others with 403 before the body is read. Put it before body extractors.
#[derive(Debug, Clone)]
pub struct Need<const ROLE: u8>(pub Caller);

impl<const ROLE: u8, S: Send + Sync> FromRequestParts<S> for Need<ROLE> {
    type Rejection = ServiceError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let needed = match ROLE {
            VIEWER => Role::Viewer,
            ANALYST => Role::Analyst,
            _ => Role::Admin,
        };
        caller.require(needed)?;
        Ok(Need(caller))
    }
}

fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(token.trim())
    } else {
        None
    }
}

fn is_audited(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Authenticate the request (401 on a missing/unknown/revoked key), make the [`Caller`] available
/// to handlers, and record every non-read request in the audit log with its outcome.
pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let target = req.uri().path().to_string();
    let action = format!(
        "{} {}",
        method,
        req.extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| target.clone())
    );
    let caller = match bearer(&req) {
        Some(k) => match state.keys.lookup(state.store.as_ref(), k).await {
            Ok(Some(rec)) => Some(Caller { key_id: rec.id, name: rec.name, role: rec.role }),
            Ok(None) => None,
            Err(e) => return e.into_response(),
        },
        None => None,
    };
    let Some(caller) = caller else {
        if is_audited(&method) {
            let entry = AuditEntry {
                id: 0,
                at_ms: now_ms(),
                key_id: None,
                role: None,
                action: action.clone(),
                target: target.clone(),
                detail: serde_json::json!({"reason": "unauthenticated"}),
                status: 401,
            };
            state.audit.record_failed_auth(entry).await;
        }
        return ServiceError::Unauthenticated.into_response();
    };
    req.extensions_mut().insert(caller.clone());
    let mut resp = next.run(req).await;
    if is_audited(&method) {
        let detail = resp
            .extensions_mut()
            .remove::<AuditDetail>()
            .map(|d| d.0)
            .unwrap_or_else(|| serde_json::json!({}));
        record(&state.audit, Some(&caller), &action, &target, detail, resp.status().as_u16()).await;
    }
    resp
}

async fn record(
    audit: &AuditSink,
    caller: Option<&Caller>,
    action: &str,
    target: &str,
    detail: serde_json::Value,
    status: u16,
) {
    audit
        .record(AuditEntry {
            id: 0,
            at_ms: now_ms(),
            key_id: caller.map(|c| c.key_id.clone()),
            role: caller.map(|c| c.role.as_str().to_string()),
            action: action.to_string(),
            target: target.to_string(),
            detail,
            status,
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape() {
        let k = generate_key();
        assert!(k.starts_with("pdg_"));
        assert_eq!(k.len(), 36);
        assert!(k[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(k, generate_key());
        assert_eq!(hash_key(&k).len(), 64);
    }

    #[test]
    fn roles_are_ordered() {
        let c = Caller { key_id: "k".into(), name: "n".into(), role: Role::Analyst };
        assert!(c.require(Role::Viewer).is_ok());
        assert!(c.require(Role::Analyst).is_ok());
        assert!(matches!(c.require(Role::Admin), Err(ServiceError::Forbidden { .. })));
    }
}
