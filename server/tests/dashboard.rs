//! The dashboard's server side without a browser: the page and its assets, the SVG plot endpoints
//! (authentication, roles, 404/409) and their place in the OpenAPI document.
//! The browser test is `dashboard_e2e.rs`.

mod common;

use axum::body::Body;
use axum::http::Method;
use common::{sample_text, TestApp};
use serde_json::json;

fn is_svg(r: &common::Resp) -> bool {
    r.headers.get("content-type").and_then(|v| v.to_str().ok()) == Some("image/svg+xml")
        && r.text().starts_with("<svg")
}

#[tokio::test]
async fn page_and_assets_are_public_with_a_strict_csp() {
    let app = TestApp::new().await;
    for (path, ct, needle) in [
        ("/", "text/html; charset=utf-8", "/assets/app.js"),
        ("/assets/app.js", "text/javascript; charset=utf-8", "sessionStorage"),
        ("/assets/app.css", "text/css; charset=utf-8", ".topbar"),
    ] {
        let r = app.raw(Method::GET, path, None, None, Body::empty()).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.headers["content-type"], ct, "{path}");
        assert!(r.text().contains(needle), "{path}");
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
    }
    // Nothing else is served from the root: unknown paths stay JSON 404s.
    app.raw(Method::GET, "/assets/nope.js", None, None, Body::empty()).await.expect_error(404);
}

#[tokio::test]
async fn plots_need_a_key_and_a_viewer_can_read_them() {
    let app = TestApp::new().await;
    let id = app.create_suspect("plotted").await;
    let scores = format!("/v1/suspects/{id}/plots/scores.svg");
    let growth = format!("/v1/suspects/{id}/plots/growth.svg");
    for path in [scores.as_str(), growth.as_str(), "/v1/profiles/builtin/plots/roc.svg"] {
        assert_eq!(
            app.raw(Method::GET, path, None, None, Body::empty()).await.expect_error(401),
            "unauthorized"
        );
    }
    // No samples yet: the score plot shows the calibration populations; growth has nothing to show.
    let r = app.get(&scores, &app.viewer).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(is_svg(&r) && !r.text().contains("this suspect"), "{}", r.text());
    assert_eq!(app.get(&growth, &app.viewer).await.expect_error(409), "conflict");

    let samples: Vec<_> = (0..12).map(|i| json!({"text": sample_text(i)})).collect();
    let r =
        app.post_json(&format!("/v1/suspects/{id}/samples"), &app.analyst, json!(samples)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = app.get(&scores, &app.viewer).await;
    assert!(is_svg(&r) && r.text().contains("this suspect (12 responses)"), "{}", r.text());
    let r = app.get(&growth, &app.viewer).await;
    assert!(is_svg(&r) && r.text().contains("α = 0.01"), "{}", r.text());
    assert_eq!(r.headers["cache-control"], "no-store");
    // The growth plot refreshes the cached verdict like GET /verdict does.
    let s = app.get(&format!("/v1/suspects/{id}"), &app.viewer).await.json();
    assert_eq!(s["verdict_n"], json!(12));

    let r = app.get("/v1/profiles/builtin/plots/roc.svg", &app.viewer).await;
    assert!(is_svg(&r) && r.text().contains("AUROC"), "{}", r.text());
}

#[tokio::test]
async fn plots_of_unknown_things_are_404() {
    let app = TestApp::new().await;
    for path in [
        "/v1/suspects/sus_nope/plots/scores.svg",
        "/v1/suspects/sus_nope/plots/growth.svg",
        "/v1/profiles/nope/plots/roc.svg",
    ] {
        assert_eq!(app.get(path, &app.viewer).await.expect_error(404), "not_found", "{path}");
    }
}

#[tokio::test]
async fn plot_routes_are_in_the_openapi_document() {
    let app = TestApp::new().await;
    let doc =
        app.raw(Method::GET, "/api-docs/openapi.json", None, None, Body::empty()).await.json();
    for p in [
        "/v1/suspects/{id}/plots/scores.svg",
        "/v1/suspects/{id}/plots/growth.svg",
        "/v1/profiles/{name}/plots/roc.svg",
    ] {
        assert!(doc["paths"][p]["get"].is_object(), "{p} missing from OpenAPI");
    }
}

/// A suspect whose every response answers a prompt the profile has references for gets its score
/// plot on the prompt-aligned scale, like its verdict; one without prompts stays on the raw scale.
#[tokio::test]
async fn score_plot_follows_the_verdicts_scale() {
    let p = common::synthetic_profile("aligned", true);
    assert_eq!(p.reference_prompts(), 10);

    let app = TestApp::new().await;
    let ct = Some("application/octet-stream");
    let r = app
        .raw(Method::POST, "/v1/profiles?name=aligned", Some(&app.admin), ct, p.to_bytes().unwrap())
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    for (name, with_prompts) in [("aligned-suspect", true), ("raw-suspect", false)] {
        let r = app
            .post_json("/v1/suspects", &app.analyst, json!({"name": name, "profile": "aligned"}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        let samples: Vec<_> = (0..8)
            .map(|i| {
                let text = format!("Certainly! Let's delve into item {i}. Overall, it matters.");
                if with_prompts {
                    json!({"text": text, "prompt": format!("explain  TOPIC {}", 3 * i)})
                } else {
                    json!({"text": text})
                }
            })
            .collect();
        let r = app
            .post_json(&format!("/v1/suspects/{id}/samples"), &app.analyst, json!(samples))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let v = app.get(&format!("/v1/suspects/{id}/verdict"), &app.viewer).await.json();
        let svg = app.get(&format!("/v1/suspects/{id}/plots/scores.svg"), &app.viewer).await.text();
        let aligned_label = svg.contains("prompt-aligned upstream score");
        assert_eq!(aligned_label, with_prompts, "{name}: {svg}");
        assert_eq!(v.to_string().contains("\"prompt_aligned\":true"), with_prompts, "{name}: {v}");
    }
}
