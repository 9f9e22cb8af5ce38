//! A campaign task that panics (a bug, or a value nobody bounded) must end its campaign `failed`
//! with a reason, not leave it `running` for ever nor take the process's shared state with it.

use crate::service::{ServiceError, ServiceResult};
use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;

/// Run `fut`; a panic inside it becomes `ServiceError::Internal("… panicked: <message>")`.
///
/// `AssertUnwindSafe` is sound here because nothing the future borrows is left half-updated
/// in a way later code relies on: the store is transactional, and the shared rate limiters
/// hold no lock across code that can panic (see `probe::client::lock`).
pub async fn catch_panic<T>(fut: impl Future<Output = ServiceResult<T>>) -> ServiceResult<T> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(panic = %msg, "campaign task panicked");
            Err(ServiceError::Internal(format!("the campaign task panicked: {msg}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_an_error_with_its_message() {
        let r: ServiceResult<()> = catch_panic(async { panic!("boom {}", 42) }).await;
        let e = r.unwrap_err().to_string();
        assert!(e.contains("panicked") && e.contains("boom 42"), "{e}");
        assert_eq!(catch_panic(async { Ok::<_, ServiceError>(7) }).await.unwrap(), 7);
    }
}
