//! The analyst dashboard served at `/`: a static single-page client (HTML, CSS and vanilla JS from
//! `server/assets/`, embedded in the binary: no build step, no network at run time) that talks to
//! the JSON API with the API key the analyst signs in with, plus the SVG plot endpoints it shows.
//!
//! The pages are public (they hold no data); everything they display comes from `/v1` routes,
//! which authenticate and authorise every request: a viewer key can read everything and the
//! server refuses its writes with 403 whatever the page shows.

pub mod plots;

use crate::auth::{Need, VIEWER};
use crate::error::Path;
use crate::service::suspects::{refresh_verdict, suspect_or_404};
use crate::service::{ServiceError, ServiceResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use detector::VerdictOptions;

type ErrorBody = crate::error::ErrorBody;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

/// Scripts, styles and connections only from this origin; plots arrive as `blob:` images.
const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
                   connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

async fn index() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8")
}

async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

async fn app_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

/// The public pages: `/` and its assets.
pub fn page_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(app_js))
        .route("/assets/app.css", get(app_css))
}

/// The plot endpoints, to be nested under `/v1` behind the authentication middleware.
pub fn plot_routes() -> Router<AppState> {
    Router::new()
        .route("/suspects/{id}/plots/scores.svg", get(suspect_scores_svg))
        .route("/suspects/{id}/plots/growth.svg", get(suspect_growth_svg))
        .route("/suspects/{id}/plots/membership.svg", get(suspect_membership_svg))
        .route("/profiles/{name}/plots/roc.svg", get(profile_roc_svg))
}

fn svg(result: crate::service::ServiceResult<String>) -> ServiceResult<Response> {
    let body = result?;
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn f32s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// A suspect's per-response scores against its profile's independent-model null and the
/// upstream's own models (both leave-one-model-out calibration populations).
#[utoipa::path(get, path = "/v1/suspects/{id}/plots/scores.svg", tag = "dashboard", params(("id" = String, Path)),
    responses((status = 200, description = "SVG document", content_type = "image/svg+xml", body = String),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn suspect_scores_svg(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Path(id): Path<String>,
) -> ServiceResult<Response> {
    let suspect = suspect_or_404(state.store.as_ref(), &id).await?;
    let (_, profile) = state.engine.resolve(Some(&suspect.profile))?;
    let rows = state.store.sample_scores(&id).await?;
    let scores: Vec<f64> =
        rows.iter().filter_map(|(_, v)| v.get("score").and_then(|s| s.as_f64())).collect();
    // The same scale as the verdict: prompt-aligned when every response has an aligned score
    // (Profile::verdict's rule), else raw.
    let aligned: Option<Vec<f64>> =
        rows.iter().map(|(_, v)| v.get("aligned").and_then(|s| s.as_f64())).collect();
    state
        .engine
        .run_cpu(move || {
            let cal = profile.calibration();
            let alpha = VerdictOptions::default().alpha;
            match (aligned, &cal.aligned) {
                (Some(a), Some(ac)) if !a.is_empty() => {
                    // The aligned calibration keeps no per-response upstream scores: no upstream curve.
                    let critical = plots::critical_mean(&ac.set_null(), a.len(), alpha);
                    plots::score_distribution_svg(
                        &a,
                        &f32s(&ac.null_scores),
                        &[],
                        critical,
                        plots::ALIGNED_SCALE,
                    )
                }
                _ => {
                    let critical = plots::critical_mean(&cal.set_null(), scores.len(), alpha);
                    plots::score_distribution_svg(
                        &scores,
                        &f32s(&cal.null_scores),
                        &f32s(&cal.upstream_scores),
                        critical,
                        plots::RAW_SCALE,
                    )
                }
            }
        })
        .await
        .and_then(svg)
}

/// The suspect's p-value after the first N responses (doubling grid), with the α line.
#[utoipa::path(get, path = "/v1/suspects/{id}/plots/growth.svg", tag = "dashboard", params(("id" = String, Path)),
    responses((status = 200, description = "SVG document", content_type = "image/svg+xml", body = String),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "No samples yet", body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn suspect_growth_svg(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Path(id): Path<String>,
) -> ServiceResult<Response> {
    let permit = state.admit()?;
    let v = refresh_verdict(state.store.as_ref(), &state.engine, &id, VerdictOptions::default())
        .await?;
    drop(permit);
    let (growth, alpha) = (v.verdict.growth, v.verdict.alpha);
    state.engine.run_cpu(move || plots::growth_svg(&growth, alpha)).await.and_then(svg)
}

/// The latest membership result's p-value against the number of prompts compared (404 when
/// the suspect has none).
#[utoipa::path(get, path = "/v1/suspects/{id}/plots/membership.svg", tag = "dashboard", params(("id" = String, Path)),
    responses((status = 200, description = "SVG document", content_type = "image/svg+xml", body = String),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn suspect_membership_svg(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Path(id): Path<String>,
) -> ServiceResult<Response> {
    suspect_or_404(state.store.as_ref(), &id).await?;
    let rec = state.store.membership_results(&id, 1).await?.pop().ok_or_else(|| {
        ServiceError::NotFound(format!("suspect `{id}` has no membership result yet"))
    })?;
    // A campaign's look ran at its spent level; the line shows the campaign's α spent so far.
    let alpha = rec.report["inputs"]["alpha_spent"]
        .as_f64()
        .or_else(|| rec.report["alpha"].as_f64())
        .unwrap_or(0.01);
    let points: Vec<(usize, f64)> = rec.report["trajectory"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t["prompts"].as_u64()? as usize, t["p_value"].as_f64()?)))
        .collect();
    state.engine.run_cpu(move || plots::membership_svg(&points, alpha)).await.and_then(svg)
}

/// A profile's calibration ROC (`builtin` names the built-in profile).
#[utoipa::path(get, path = "/v1/profiles/{name}/plots/roc.svg", tag = "dashboard", params(("name" = String, Path)),
    responses((status = 200, description = "SVG document", content_type = "image/svg+xml", body = String),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn profile_roc_svg(
    State(state): State<AppState>,
    Need(_caller): Need<VIEWER>,
    Path(name): Path<String>,
) -> ServiceResult<Response> {
    let (_, profile) = state.engine.resolve(Some(&name))?;
    state
        .engine
        .run_cpu(move || {
            let cal = profile.calibration();
            plots::calibration_roc_svg(&f32s(&cal.upstream_scores), &f32s(&cal.null_scores))
        })
        .await
        .and_then(svg)
}
