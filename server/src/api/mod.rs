//! The HTTP API: the router, operational routes, OpenAPI document.

pub mod admin;
pub mod campaigns;
pub mod jobs;
pub mod profiles;
pub mod score;
pub mod served;
pub mod suspects;

use crate::error::ErrorBody;
use crate::service::ServiceError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use std::time::Instant;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    info(title = "pedigree", description = "Tells an AI API provider which rival models were trained on its model's outputs."),
    paths(
        healthz, readyz, metrics_route,
        score::score,
        profiles::list, profiles::get, profiles::upload, profiles::delete, profiles::build,
        suspects::create, suspects::list, suspects::get, suspects::delete,
        suspects::add_samples, suspects::list_samples, suspects::verdict,
        jobs::create, jobs::list, jobs::get, jobs::cancel, jobs::results,
        admin::audit, admin::list_keys, admin::create_key, admin::revoke_key, admin::whoami,
        campaigns::create, campaigns::list, campaigns::get, campaigns::cancel, campaigns::probes,
        campaigns::allow_list, campaigns::allow_add, campaigns::allow_delete,
        campaigns::secret_put, campaigns::secret_list, campaigns::secret_delete,
        served::upload, served::list, served::get, served::answers, served::delete, served::test, served::results,
        crate::dashboard::suspect_scores_svg, crate::dashboard::suspect_growth_svg, crate::dashboard::suspect_membership_svg, crate::dashboard::profile_roc_svg,
    ),
    components(schemas(ErrorBody, crate::error::ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "score", description = "Score texts"),
        (name = "suspects", description = "Suspect models, their samples and verdicts"),
        (name = "profiles", description = "Detection profiles"),
        (name = "jobs", description = "Batch jobs"),
        (name = "membership", description = "Served logs and the served-output membership test: did a suspect train on the answers we served?"),
        (name = "admin", description = "Keys and audit log"),
        (name = "campaigns", description = "Probe campaigns against suspect endpoints, the target allowlist, secrets"),
        (name = "ops", description = "Health, readiness, metrics"),
        (name = "dashboard", description = "SVG plots shown by the dashboard at `/`"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;
impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("pdg_…").build(),
            ),
        );
    }
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "ok")))]
pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the database answers, the built-in profile is loaded, and the server is not draining.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, description = "ready"), (status = 503, description = "not ready", body = ErrorBody)))]
pub async fn readyz(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ServiceError> {
    if state.is_shutting_down() {
        return Err(ServiceError::Unavailable("shutting down".into()));
    }
    state.store.ping().await.map_err(|e| ServiceError::Unavailable(format!("database: {e}")))?;
    if let Some(e) = state.engine.builtin_error() {
        return Err(ServiceError::Unavailable(e.to_string()));
    }
    Ok(Json(serde_json::json!({
        "status": "ready",
        "profiles": state.engine.names(),
        "inflight_available": state.admission.available_permits(),
    })))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics_route(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

async fn not_found(req: Request) -> ServiceError {
    ServiceError::NoRoute { method: req.method().to_string(), path: req.uri().path().to_string() }
}

/// Request count and latency per route. Labels come from fixed sets only (the matched route
/// template or `unmatched`, a known method or `other`, the status code), so that made-up methods
/// or paths cannot grow `/metrics` without bound.
async fn track_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = crate::metrics_labels::method(req.method()).to_owned();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("pedigree_http_requests_total", &labels).increment(1);
    metrics::histogram!("pedigree_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    resp
}

/// A percent-encoded NUL (`%00`) anywhere in the URL is a 422, like U+0000 in a JSON body: path
/// and query values reach the store, and PostgreSQL cannot hold the character (a 500 otherwise).
async fn refuse_nul_in_url(req: Request, next: Next) -> Response {
    if req.uri().path_and_query().is_some_and(|pq| pq.as_str().contains("%00")) {
        return ServiceError::Invalid("the URL holds an encoded NUL character (%00)".into())
            .into_response();
    }
    next.run(req).await
}

/// Turn any non-JSON error response (axum's 405, a body-limit 413, …) into the JSON error body.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = if text.trim().is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    let mut out = Response::from_parts(parts, Body::from(body.to_string()));
    out.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    out.headers_mut().remove(header::CONTENT_LENGTH);
    out
}

/// The whole application, ready for `axum::serve` or `tower::ServiceExt::oneshot`.
pub fn app(state: AppState) -> Router {
    let cfg = state.config.clone();
    let v1 = Router::new()
        .route("/score", post(score::score))
        .route(
            "/profiles",
            get(profiles::list)
                .post(profiles::upload)
                .layer(DefaultBodyLimit::max(cfg.max_profile_bytes)),
        )
        .route("/profiles/build", post(profiles::build).layer(DefaultBodyLimit::disable()))
        .route("/profiles/{name}", get(profiles::get).delete(profiles::delete))
        .route("/suspects", get(suspects::list).post(suspects::create))
        .route("/suspects/{id}", get(suspects::get).delete(suspects::delete))
        .route("/suspects/{id}/samples", get(suspects::list_samples).post(suspects::add_samples))
        .route("/suspects/{id}/verdict", get(suspects::verdict))
        .route("/suspects/{id}/membership", get(served::results).post(served::test))
        .route(
            "/served-logs",
            get(served::list).post(served::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/served-logs/{id}", get(served::get).delete(served::delete))
        .route("/served-logs/{id}/answers", get(served::answers))
        .route("/jobs", get(jobs::list).post(jobs::create).layer(DefaultBodyLimit::disable()))
        .route("/jobs/{id}", get(jobs::get))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/jobs/{id}/results", get(jobs::results))
        .route("/audit", get(admin::audit))
        .route("/keys", get(admin::list_keys).post(admin::create_key))
        .route("/keys/{id}", delete(admin::revoke_key))
        .route("/whoami", get(admin::whoami))
        .route("/campaigns", get(campaigns::list).post(campaigns::create))
        .route("/campaigns/{id}", get(campaigns::get))
        .route("/campaigns/{id}/cancel", post(campaigns::cancel))
        .route("/campaigns/{id}/probes", get(campaigns::probes))
        .route("/allowlist", get(campaigns::allow_list).post(campaigns::allow_add))
        .route("/allowlist/{entry}", delete(campaigns::allow_delete))
        .route("/secrets", get(campaigns::secret_list).post(campaigns::secret_put))
        .route("/secrets/{name}", delete(campaigns::secret_delete))
        .merge(crate::dashboard::plot_routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), crate::auth::middleware));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_route))
        .nest("/v1", v1)
        .merge(crate::dashboard::page_routes())
        .merge(SwaggerUi::new("/docs").url("/api-docs/openapi.json", ApiDoc::openapi()))
        .fallback(not_found)
        .layer(middleware::from_fn(refuse_nul_in_url))
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        // 0 disables the timeout: ~136 years (tokio clamps far deadlines).
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            std::time::Duration::from_secs(match cfg.request_timeout_secs {
                0 => u32::MAX.into(),
                s => s,
            }),
        ))
        .layer(middleware::from_fn(track_metrics))
        .layer(middleware::from_fn(json_errors))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
