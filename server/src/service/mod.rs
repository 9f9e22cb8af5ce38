//! The service layer: the operations the adapters (HTTP handlers, CLI commands, background
//! campaigns) share, over the store and the library crates. A service function never builds an
//! HTTP error: it returns a [`ServiceError`], which the HTTP edge maps to a status in one place
//! (`impl From<ServiceError> for AppError` in `error.rs`).
//!
//! Issue 15 moves the rest of the server's shared logic (suspects, jobs, campaigns) here; so far
//! the membership test flow, the corpus-audit pipeline and profile loading live here.

pub mod audit;
pub mod engine;
pub mod keys;
pub mod membership;
pub mod profiles;
pub mod suspects;

use crate::store::StoreError;

/// What a service call can fail with, by kind of cause (the HTTP status follows from the kind).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The caller's input is wrong (a bad option, a file that cannot be read as asked, too few
    /// matched prompts): the message says what.
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The request is valid but the state does not allow it yet.
    #[error("{0}")]
    Conflict(String),
    /// A part the call needs cannot run here or now (a profile's neural tier without its
    /// weights, the engine shutting down).
    #[error("{0}")]
    Unavailable(String),
    /// A bounded queue is full: retry later.
    #[error("the server is at its capacity; retry later")]
    Overloaded,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or an environment failure; the detail goes to the log, not to the caller.
    #[error("{0}")]
    Internal(String),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Run CPU-bound work off the async runtime; a panic becomes [`ServiceError::Internal`] (it
/// takes no shared state with it: the closure owns its inputs).
pub async fn blocking<T, F>(f: F) -> ServiceResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| ServiceError::Internal(format!("task: {e}")))
}
