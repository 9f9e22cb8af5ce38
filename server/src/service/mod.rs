//! The service layer: the operations the adapters (HTTP handlers, CLI commands, background
//! campaigns) share, over the store and the library crates. A service function never builds an
//! HTTP error: it returns a [`ServiceError`], which the HTTP edge maps to a status in one place
//! (`impl IntoResponse for ServiceError` in `error.rs`).
//!
//! Issue 15 moves the rest of the server's shared logic (suspects, jobs, campaigns) here; so far
//! the membership test flow, the corpus-audit pipeline and profile loading live here.

pub mod audit;
pub mod campaigns;
pub mod claims;
pub mod engine;
pub mod guard;
pub mod jobs;
pub mod keys;
pub mod membership;
pub mod neural;
pub mod parts;
pub mod probe;
pub mod profiles;
pub mod secrets;
pub mod suspects;

use crate::store::StoreError;

/// The server's one error enum: what a service call, a handler or an extractor can fail with, by
/// kind of cause. Nothing here knows HTTP: the edge maps each kind to a status and a stable code
/// in one table (`impl IntoResponse for ServiceError` in `error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Malformed request syntax (bad JSON, bad query string, bad path parameter).
    #[error("{0}")]
    Malformed(String),
    /// The caller's input is wrong (a bad option, a file that cannot be read as asked, too few
    /// matched prompts): the message says what.
    #[error("{0}")]
    Invalid(String),
    #[error("missing or invalid API key")]
    Unauthenticated,
    #[error("this route needs role `{needed}`; the key has role `{has}`")]
    Forbidden { needed: &'static str, has: &'static str },
    /// A probe target that is not on the allowlist (or resolves to a refused address).
    #[error("{0}")]
    TargetRefused(String),
    /// A secret used for an endpoint it is not bound to.
    #[error("{0}")]
    SecretNotAllowed(String),
    /// `what` names the missing thing (e.g. "suspect `s_1`"); shown as "… not found".
    #[error("{0} not found")]
    NotFound(String),
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request is valid but the state does not allow it (yet).
    #[error("{0}")]
    Conflict(String),
    /// An input over its documented size limit.
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A bounded queue or an admission limit is full: retry later.
    #[error("server is at its admission limit; retry later")]
    Overloaded,
    #[error("{0}")]
    NotImplemented(String),
    /// A part the call needs cannot run here or now (a profile's neural tier without its
    /// weights, the engine shutting down).
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or an environment failure; the detail goes to the log, not to the caller.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// `what` not found, e.g. `ServiceError::not_found(format!("job `{id}`"))`.
    pub fn not_found(what: impl std::fmt::Display) -> ServiceError {
        ServiceError::NotFound(what.to_string())
    }
}

impl From<std::io::Error> for ServiceError {
    fn from(e: std::io::Error) -> Self {
        ServiceError::Internal(format!("I/O error: {e}"))
    }
}

/// Serialising our own types to JSON fails only on a bug (a map with non-string keys, say).
impl From<serde_json::Error> for ServiceError {
    fn from(e: serde_json::Error) -> Self {
        ServiceError::Internal(format!("JSON: {e}"))
    }
}

/// Drawing an SVG plot into a string fails only on a bug.
impl<E: std::error::Error + Send + Sync> From<plotters::drawing::DrawingAreaErrorKind<E>>
    for ServiceError
{
    fn from(e: plotters::drawing::DrawingAreaErrorKind<E>) -> Self {
        ServiceError::Internal(format!("plot: {e}"))
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// `e`'s causes, outermost first (not `e` itself).
pub fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(e.source(), |c| c.source())
}

/// An error and its causes, `outer: inner: …` (what a user needs to see of a file error).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    for c in causes(e) {
        s.push_str(": ");
        s.push_str(&c.to_string());
    }
    s
}

/// Run CPU-bound work off the async runtime; a panic becomes [`ServiceError::Internal`] (it
/// takes no shared state with it: the closure owns its inputs).
pub async fn blocking<T, F>(f: F) -> ServiceResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| ServiceError::Internal(format!("task: {e}")))
}
