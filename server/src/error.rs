//! The HTTP edge of the server's one error enum ([`ServiceError`]): the error → status table in
//! one place, the JSON error body, and extractors whose rejections become a `ServiceError`.
//!
//! Body: `{"error": {"code": "…", "message": "…"}}`.

use crate::service::{ServiceError, ServiceResult};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_input`, `not_found`, `rate_limited`.
    pub code: String,
    /// Human-readable explanation of what is wrong.
    pub message: String,
}

/// The status/code table: every error kind to its HTTP status and stable code, in one place.
pub fn status_and_code(e: &ServiceError) -> (StatusCode, &'static str) {
    use crate::store::StoreError;
    match e {
        ServiceError::Malformed(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        ServiceError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
        ServiceError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthorized"),
        ServiceError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
        ServiceError::TargetRefused(_) => (StatusCode::FORBIDDEN, "target_not_allowed"),
        ServiceError::SecretNotAllowed(_) => (StatusCode::FORBIDDEN, "secret_not_allowed"),
        ServiceError::NotFound(_) | ServiceError::NoRoute { .. } => {
            (StatusCode::NOT_FOUND, "not_found")
        }
        ServiceError::Store(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "not_found"),
        ServiceError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        ServiceError::Conflict(_) | ServiceError::Store(StoreError::Conflict(_)) => {
            (StatusCode::CONFLICT, "conflict")
        }
        ServiceError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        ServiceError::UnsupportedMediaType(_) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
        }
        ServiceError::Overloaded => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        ServiceError::NotImplemented(_) => (StatusCode::NOT_IMPLEMENTED, "not_implemented"),
        ServiceError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        ServiceError::Store(_) | ServiceError::Internal(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let (status, code) = status_and_code(&self);
        // An internal error's text (store errors, file paths, I/O details) is for the log only:
        // the client gets a generic message and a request id that finds the detail in the log.
        let mut request_id = None;
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            let id = crate::ids::random_base62(12);
            tracing::error!(request_id = %id, error = %self, "request failed");
            let m = format!("internal error (request id {id}; the detail is in the server log)");
            request_id = Some(id);
            m
        } else {
            if status.is_server_error() {
                tracing::error!(error = %self, "request failed");
            }
            match self {
                // The store names what it did not find; the client gets that text alone.
                ServiceError::Store(
                    crate::store::StoreError::NotFound(m) | crate::store::StoreError::Conflict(m),
                ) => m,
                other => other.to_string(),
            }
        };
        let body = ErrorBody { error: ErrorDetail { code: code.to_string(), message } };
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(id) = request_id.and_then(|id| axum::http::HeaderValue::from_str(&id).ok()) {
            resp.headers_mut().insert("x-request-id", id);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        resp
    }
}

impl From<JsonRejection> for ServiceError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => {
                ServiceError::Invalid(format!("invalid request body: {}", e.body_text()))
            }
            JsonRejection::JsonSyntaxError(e) => {
                ServiceError::Malformed(format!("malformed JSON: {}", e.body_text()))
            }
            JsonRejection::MissingJsonContentType(_) => ServiceError::UnsupportedMediaType(
                "expected `Content-Type: application/json`".into(),
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ServiceError::TooLarge("request body exceeds the body limit".into())
            }
            other => ServiceError::Malformed(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ServiceError {
    fn from(r: QueryRejection) -> Self {
        ServiceError::Malformed(format!("invalid query string: {}", r.body_text()))
    }
}

impl From<PathRejection> for ServiceError {
    fn from(r: PathRejection) -> Self {
        ServiceError::Malformed(format!("invalid path parameter: {}", r.body_text()))
    }
}

impl From<axum::extract::rejection::BytesRejection> for ServiceError {
    fn from(r: axum::extract::rejection::BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ServiceError::TooLarge("request body exceeds the body limit".into())
        } else {
            ServiceError::Malformed(r.body_text())
        }
    }
}

impl From<axum::extract::multipart::MultipartRejection> for ServiceError {
    fn from(r: axum::extract::multipart::MultipartRejection) -> Self {
        ServiceError::Malformed(r.body_text())
    }
}

/// `axum::Json` whose rejections become [`ServiceError`] JSON bodies, and which refuses a NUL
/// character in any string: no text field can hold one (PostgreSQL's text type cannot store it,
/// so refusing it here keeps both stores alike).
pub struct Json<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ServiceError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ServiceError> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_content_type);
        if !json {
            return Err(ServiceError::UnsupportedMediaType(
                "expected `Content-Type: application/json`".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await?;
        reject_nul(&bytes)?;
        let axum::Json(v) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(Json(v))
    }
}

/// `application/json` or any `application/…+json`, parameters ignored (as `axum::Json`).
fn is_json_content_type(v: &str) -> bool {
    let essence = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// `Err(422)` if a JSON (or JSON-lines) body holds the escape `\u0000` in a string. In valid JSON a
/// backslash only starts an escape, so skipping each escape's next byte finds exactly those
/// (a raw NUL byte is not valid JSON at all).
pub fn reject_nul(body: &[u8]) -> ServiceResult<()> {
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' {
            if body.get(i + 1) == Some(&b'u') && body.get(i + 2..i + 6) == Some(b"0000".as_slice())
            {
                return Err(ServiceError::Invalid(
                    "the body contains a NUL character (\\u0000), which no text field can hold"
                        .into(),
                ));
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    Ok(())
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` with JSON errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ServiceError))]
pub struct Query<T>(pub T);

/// `axum::extract::Path` with JSON errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ServiceError))]
pub struct Path<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not() {
        assert!(reject_nul(br#"{"text": "a\u0000b"}"#).is_err());
        // An escaped backslash followed by the letters u0000: six harmless characters.
        assert!(reject_nul(br#"{"text": "a\\u0000b"}"#).is_ok());
        // An escaped backslash, then a real NUL escape.
        assert!(reject_nul(br#"{"text": "\\\u0000"}"#).is_err());
        assert!(reject_nul(br#"{"text": "\u00001 \n \"quoted\""}"#).is_err());
        assert!(reject_nul(br#"{"text": "\u0001 \u1000 fine"}"#).is_ok());
        assert!(reject_nul(b"").is_ok());
    }

    /// Issue 14 item 10: store errors and paths stay in the log.
    #[tokio::test]
    async fn internal_errors_are_generic_with_a_request_id() {
        let resp = ServiceError::Internal("/srv/data/pedigree.sqlite: database is locked".into())
            .into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(!msg.contains("sqlite") && !msg.contains("/srv") && msg.contains(&id), "{msg}");
        assert_eq!(v["error"]["code"], "internal");
    }

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.api+json",
        ] {
            assert!(is_json_content_type(ok), "{ok}");
        }
        for bad in ["text/plain", "application/x-ndjson", "", "application/jsonx"] {
            assert!(!is_json_content_type(bad), "{bad}");
        }
    }
}
