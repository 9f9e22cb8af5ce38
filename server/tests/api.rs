//! Every route and every error status, through `oneshot` on the real router.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{sample_text, TestApp};
use serde_json::json;

#[tokio::test]
async fn ops_routes() {
    let t = TestApp::new().await;
    let r = t.raw(Method::GET, "/healthz", None, None, Body::empty()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    let r = t.raw(Method::GET, "/readyz", None, None, Body::empty()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Generate some traffic, then scrape.
    t.get("/v1/whoami", &t.viewer).await;
    let r = t.raw(Method::GET, "/metrics", None, None, Body::empty()).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("pedigree_http_requests_total"), "{}", r.text());
    let r = t.raw(Method::GET, "/api-docs/openapi.json", None, None, Body::empty()).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    for p in [
        "/v1/score",
        "/v1/suspects",
        "/v1/suspects/{id}/verdict",
        "/v1/jobs",
        "/v1/audit",
        "/v1/profiles",
    ] {
        assert!(doc["paths"][p].is_object(), "missing {p} in OpenAPI");
    }
    let r = t.raw(Method::GET, "/docs/", None, None, Body::empty()).await;
    assert_eq!(r.status, 200);
    assert!(r.text().to_lowercase().contains("swagger"));
}

#[tokio::test]
async fn unknown_route_and_wrong_method_are_json() {
    let t = TestApp::new().await;
    let r = t.get("/v1/nope", &t.admin).await;
    assert_eq!(r.expect_error(404), "not_found");
    let r = t.raw(Method::GET, "/nope", None, None, Body::empty()).await;
    r.expect_error(404);
    let r = t.raw(Method::PUT, "/v1/score", Some(&t.analyst), None, Body::empty()).await;
    assert_eq!(r.expect_error(405), "method_not_allowed");
}

#[tokio::test]
async fn authentication() {
    let t = TestApp::new().await;
    let r = t.raw(Method::GET, "/v1/suspects", None, None, Body::empty()).await;
    assert_eq!(r.expect_error(401), "unauthorized");
    let r = t.get("/v1/suspects", "pdg_notakey").await;
    r.expect_error(401);
    let r = t.raw(Method::GET, "/v1/suspects", None, None, Body::empty()).await;
    r.expect_error(401);
    let r = t.get("/v1/whoami", &t.analyst).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["role"], "analyst");
}

#[tokio::test]
async fn role_checks() {
    let t = TestApp::new().await;
    // viewer: reads only; the role is checked before the body is read
    let r = t
        .raw(Method::POST, "/v1/score", Some(&t.viewer), Some("application/json"), "{broken")
        .await;
    assert_eq!(r.expect_error(403), "forbidden");
    let r = t.post_json("/v1/score", &t.viewer, json!({"texts": [{"text": "hi there"}]})).await;
    assert_eq!(r.expect_error(403), "forbidden");
    t.post_json("/v1/suspects", &t.viewer, json!({"name": "x"})).await.expect_error(403);
    t.raw(
        Method::POST,
        "/v1/jobs?suspect=x",
        Some(&t.viewer),
        Some("application/x-ndjson"),
        "{\"text\":\"a\"}\n",
    )
    .await
    .expect_error(403);
    assert_eq!(t.get("/v1/suspects", &t.viewer).await.status, 200);
    assert_eq!(t.get("/v1/profiles", &t.viewer).await.status, 200);
    assert_eq!(t.get("/v1/jobs", &t.viewer).await.status, 200);
    // analyst: no admin routes
    t.get("/v1/audit", &t.analyst).await.expect_error(403);
    t.get("/v1/keys", &t.analyst).await.expect_error(403);
    t.post_json("/v1/keys", &t.analyst, json!({"role": "admin"})).await.expect_error(403);
    t.raw(Method::POST, "/v1/profiles", Some(&t.analyst), Some("application/octet-stream"), "x")
        .await
        .expect_error(403);
    t.delete("/v1/profiles/whatever", &t.analyst).await.expect_error(403);
    t.raw(Method::POST, "/v1/profiles/build?name=x", Some(&t.analyst), None, "x")
        .await
        .expect_error(403);
    t.delete("/v1/keys/key_x", &t.analyst).await.expect_error(403);
    // viewer cannot delete suspects or cancel jobs
    let id = t.create_suspect("s").await;
    t.delete(&format!("/v1/suspects/{id}"), &t.viewer).await.expect_error(403);
    t.raw(Method::POST, "/v1/jobs/job_x/cancel", Some(&t.viewer), None, Body::empty())
        .await
        .expect_error(403);
    // admin: everything
    assert_eq!(t.get("/v1/audit", &t.admin).await.status, 200);
    assert_eq!(t.get("/v1/keys", &t.admin).await.status, 200);
}

#[tokio::test]
async fn score_one_and_many() {
    let t = TestApp::new().await;
    let r =
        t.post_json("/v1/score", &t.analyst, json!({"texts": [{"text": sample_text(1)}]})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let res = &v["results"][0];
    assert!(res["score"].is_number() && res["fpr"].is_number(), "{v}");
    assert!(res["family"].is_string() && res["evidence"].is_array(), "{v}");
    let r = t
        .post_json(
            "/v1/score",
            &t.admin,
            json!({"profile": "builtin", "texts": [
                {"text": sample_text(3), "prompt": "Explain.", "id": "a"},
                {"text": sample_text(4), "id": 7},
                {"text": sample_text(5)}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["results"].as_array().unwrap().len(), 3);
    assert_eq!(v["results"][0]["id"], "a");
    assert_eq!(v["results"][1]["id"], 7);
    assert_eq!(v["results"][2]["index"], 2);
    // The actual profile name works too.
    let name = v["profile"].as_str().unwrap().to_string();
    let r = t
        .post_json("/v1/score", &t.analyst, json!({"profile": name, "texts": [{"text": "x y z"}]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn score_errors() {
    let t = TestApp::with(|c| {
        c.max_texts = 3;
        c.max_text_chars = 50;
        c.max_body_bytes = 4096;
    })
    .await;
    let k = t.analyst.clone();
    let send = |body: &'static str| {
        t.raw(Method::POST, "/v1/score", Some(&k), Some("application/json"), body)
    };
    assert_eq!(send("{\"texts\": [").await.expect_error(400), "bad_request");
    assert_eq!(send("not json").await.expect_error(400), "bad_request");
    assert_eq!(send("{\"texts\": \"hello\"}").await.expect_error(422), "invalid_input");
    assert_eq!(send("{\"texts\": [{\"text\": 5}]}").await.expect_error(422), "invalid_input");
    assert_eq!(send("{}").await.expect_error(422), "invalid_input");
    assert_eq!(send("{\"texts\": []}").await.expect_error(422), "invalid_input");
    assert_eq!(send("{\"texts\": [{\"text\": \"   \"}]}").await.expect_error(422), "invalid_input");
    // No text field may hold U+0000 (PostgreSQL cannot store it): refused with a message, whatever
    // field it is in; an escaped backslash before "u0000" is ordinary text.
    let r = send(r#"{"texts": [{"text": "a\u0000b"}]}"#).await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("NUL"), "{}", r.text());
    assert_eq!(
        send(r#"{"texts": [{"text": "ok", "prompt": "\u0000"}]}"#).await.expect_error(422),
        "invalid_input"
    );
    assert_eq!(send(r#"{"texts": [{"text": "a\\u0000b"}]}"#).await.status, 200);
    let r = send(
        "{\"texts\": [{\"text\": \"a\"}, {\"text\": \"b\"}, {\"text\": \"c\"}, {\"text\": \"d\"}]}",
    )
    .await;
    assert_eq!(r.expect_error(413), "payload_too_large");
    let long = json!({"texts": [{"text": "x".repeat(51)}]});
    t.post_json("/v1/score", &k, long).await.expect_error(413);
    let huge = json!({"texts": [{"text": "y".repeat(10_000)}]});
    t.post_json("/v1/score", &k, huge).await.expect_error(413);
    let r = t
        .post_json("/v1/score", &k, json!({"profile": "nope", "texts": [{"text": "hello"}]}))
        .await;
    assert_eq!(r.expect_error(404), "not_found");
    let r =
        t.raw(Method::POST, "/v1/score", Some(&k), None, "{\"texts\": [{\"text\": \"a\"}]}").await;
    assert_eq!(r.expect_error(415), "unsupported_media_type");
}

#[tokio::test]
async fn admission_limit_answers_429_at_once() {
    let t = TestApp::with(|c| c.max_inflight = 0).await;
    let r = t.post_json("/v1/score", &t.analyst, json!({"texts": [{"text": "hello there"}]})).await;
    assert_eq!(r.expect_error(429), "rate_limited");
    assert!(r.headers.get("retry-after").is_some());
}

#[tokio::test]
async fn suspects_crud_and_listing() {
    let t = TestApp::new().await;
    let r = t
        .post_json("/v1/suspects", &t.analyst, json!({"name": "rival-1", "description": "d"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sus_"));
    let r = t.get(&format!("/v1/suspects/{id}"), &t.viewer).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["name"], "rival-1");
    assert_eq!(r.json()["samples"], 0);
    let id2 = t.create_suspect("rival-2").await;
    for order in ["strength", "created", "name"] {
        let r = t.get(&format!("/v1/suspects?order={order}"), &t.viewer).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["suspects"].as_array().unwrap().len(), 2);
    }
    t.get("/v1/suspects?order=bogus", &t.viewer).await.expect_error(400);
    t.get("/v1/suspects?limit=0", &t.viewer).await.expect_error(422);
    t.get("/v1/suspects?limit=abc", &t.viewer).await.expect_error(400);
    t.post_json("/v1/suspects", &t.analyst, json!({"name": "  "})).await.expect_error(422);
    t.post_json("/v1/suspects", &t.analyst, json!({"name": 3})).await.expect_error(422);
    t.post_json("/v1/suspects", &t.analyst, json!({"name": "x", "profile": "nope"}))
        .await
        .expect_error(404);
    let r = t.delete(&format!("/v1/suspects/{id}"), &t.analyst).await;
    assert_eq!(r.status, 204);
    t.get(&format!("/v1/suspects/{id}"), &t.viewer).await.expect_error(404);
    t.delete(&format!("/v1/suspects/{id}"), &t.analyst).await.expect_error(404);
    assert_eq!(t.get(&format!("/v1/suspects/{id2}"), &t.viewer).await.status, 200);
}

#[tokio::test]
async fn samples_json_jsonl_dedup_and_errors() {
    let t = TestApp::new().await;
    let id = t.create_suspect("rival").await;
    let uri = format!("/v1/suspects/{id}/samples");
    let r = t
        .post_json(&uri, &t.analyst, json!([{"text": sample_text(1), "source": "crawl-1"}, {"text": sample_text(2), "prompt": "p"}]))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["added"], 2);
    // Same content again (object form) -> duplicates; plus one new.
    let r = t
        .post_json(&uri, &t.analyst, json!({"source": "crawl-2", "samples": [{"text": sample_text(1)}, {"text": sample_text(3)}]}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["added"], 1);
    assert_eq!(v["duplicates"], 1);
    assert_eq!(v["samples"][0]["duplicate"], true);
    // JSONL upload
    let jsonl = format!(
        "{}\n\n{}\n",
        json!({"text": sample_text(4)}),
        json!({"text": sample_text(5), "source": "s"})
    );
    let r = t.raw(Method::POST, &uri, Some(&t.analyst), Some("application/x-ndjson"), jsonl).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["added"], 2);
    let r = t.get(&uri, &t.viewer).await;
    let samples = r.json()["samples"].as_array().unwrap().clone();
    assert_eq!(samples.len(), 5);
    assert_eq!(samples[0]["source"], "crawl-1");
    assert!(samples[1]["source"].as_str().unwrap().starts_with("api:"));
    assert_eq!(samples[2]["source"], "crawl-2");
    assert!(samples[0]["added_ms"].as_i64().unwrap() > 0);
    assert!(samples[0]["score"]["score"].is_number());
    assert_eq!(t.get(&format!("/v1/suspects/{id}"), &t.viewer).await.json()["samples"], 5);
    // errors
    t.raw(Method::POST, &uri, Some(&t.analyst), Some("application/json"), "[{")
        .await
        .expect_error(400);
    t.raw(Method::POST, &uri, Some(&t.analyst), Some("application/json"), "[{\"text\": 1}]")
        .await
        .expect_error(422);
    t.raw(Method::POST, &uri, Some(&t.analyst), Some("application/json"), "[]")
        .await
        .expect_error(422);
    t.raw(
        Method::POST,
        &uri,
        Some(&t.analyst),
        Some("application/x-ndjson"),
        "{\"text\": \"a\"}\n{bad\n",
    )
    .await
    .expect_error(400);
    t.raw(
        Method::POST,
        &uri,
        Some(&t.analyst),
        Some("application/x-ndjson"),
        "{\"text\": \"a\\u0000\"}\n",
    )
    .await
    .expect_error(422);
    t.post_json("/v1/suspects", &t.analyst, json!({"name": "nul\u{0}name"}))
        .await
        .expect_error(422);
    t.get("/v1/suspects/a%00b", &t.viewer).await.expect_error(422);
    t.raw(Method::POST, &uri, Some(&t.analyst), Some("text/csv"), "a,b").await.expect_error(415);
    t.raw(Method::POST, &uri, Some(&t.analyst), None, "[]").await.expect_error(415);
    let big = json!([{"text": "z".repeat(9 * 1024 * 1024)}]);
    t.post_json(&uri, &t.analyst, big).await.expect_error(413);
    t.post_json("/v1/suspects/sus_missing/samples", &t.analyst, json!([{"text": "a"}]))
        .await
        .expect_error(404);
    t.get("/v1/suspects/sus_missing/samples", &t.viewer).await.expect_error(404);
}

#[tokio::test]
async fn verdict_and_dashboard_order() {
    let t = TestApp::new().await;
    let weak = t.create_suspect("weak").await;
    let strong = t.create_suspect("strong").await;
    let r = t.get(&format!("/v1/suspects/{strong}/verdict"), &t.viewer).await;
    assert_eq!(r.expect_error(409), "conflict");
    let upstreamish: Vec<_> = (0..30).map(|i| json!({"text": sample_text(2 * i + 1)})).collect();
    let other: Vec<_> = (0..30).map(|i| json!({"text": sample_text(2 * i)})).collect();
    assert_eq!(
        t.post_json(&format!("/v1/suspects/{strong}/samples"), &t.analyst, json!(upstreamish))
            .await
            .status,
        201
    );
    assert_eq!(
        t.post_json(&format!("/v1/suspects/{weak}/samples"), &t.analyst, json!(other)).await.status,
        201
    );
    let r = t.get(&format!("/v1/suspects/{strong}/verdict?top=3"), &t.viewer).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["n"], 30);
    assert!(v["p_value"].is_number() && v["strength"].is_number(), "{v}");
    assert!(v.get("teacher").is_some() && v["decision"].is_string(), "{v}");
    // The decision rule's measured error rates travel with the verdict (built-in profile: 9
    // independent and 8 upstream calibration models).
    assert_eq!(
        (v["error_check"]["independents"].as_u64(), v["error_check"]["upstream_models"].as_u64()),
        (Some(9), Some(8)),
        "{v}"
    );
    let top = v["top_evidence"].as_array().unwrap();
    assert!(!top.is_empty() && top.len() <= 3, "{v}");
    assert!(top[0]["text"].is_string() && top[0]["score"]["evidence"].is_array());
    let r = t.get(&format!("/v1/suspects/{weak}/verdict"), &t.viewer).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (s_strong, s_weak) =
        (v["strength"].as_f64().unwrap(), r.json()["strength"].as_f64().unwrap());
    let list = t.get("/v1/suspects", &t.viewer).await.json();
    let ids: Vec<_> = list["suspects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    if s_strong > s_weak {
        assert_eq!(ids[0], strong, "strongest first: {list}");
    } else if s_weak > s_strong {
        assert_eq!(ids[0], weak, "strongest first: {list}");
    }
    assert!(list["suspects"][0]["verdict"].is_object());
    t.get(&format!("/v1/suspects/{strong}/verdict?alpha=2"), &t.viewer).await.expect_error(422);
    // alpha ≥ 0.5 is no significance level.
    t.get(&format!("/v1/suspects/{strong}/verdict?alpha=0.7"), &t.viewer).await.expect_error(422);
    t.get(&format!("/v1/suspects/{strong}/verdict?top=1000"), &t.viewer).await.expect_error(422);
    t.get(&format!("/v1/suspects/{strong}/verdict?alpha=x"), &t.viewer).await.expect_error(400);
    t.get("/v1/suspects/sus_nope/verdict", &t.viewer).await.expect_error(404);
}

/// The suspect verdict leads with the identity evidence (explicit claims by family over the
/// samples, with examples; disclaimers only as cues) and reports style as triage: undecided,
/// with the rank among the known independent models and the smallest p-value they support.
#[tokio::test]
async fn suspect_verdict_carries_identity_evidence_and_style_triage() {
    let t = TestApp::new().await;
    let id = t.create_suspect("claims-openai").await;
    let mut samples: Vec<_> = (0..12)
        .map(|i| {
            json!({"text": format!("As an AI language model developed by OpenAI, I can help with question {i}."),
                   "prompt": format!("Who made you? ({i})")})
        })
        .collect();
    samples.push(
        json!({"text": "As an AI, I have no favourite colour.", "prompt": "Favourite colour?"}),
    );
    samples.push(json!({"text": "Rain falls; the roof hums.", "prompt": "A haiku, please."}));
    let r = t.post_json(&format!("/v1/suspects/{id}/samples"), &t.analyst, json!(samples)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = t.get(&format!("/v1/suspects/{id}/verdict"), &t.viewer).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let v = r.json();
    let idn = &v["identity"];
    assert_eq!(idn["explicit_claims"], json!({"openai": 12}), "{v}");
    assert_eq!(idn["cues"], json!({"ai_disclaimer": 13}), "{v}");
    assert_eq!(
        (idn["answers"].as_u64(), idn["answers_with_explicit_claim"].as_u64()),
        (Some(14), Some(12))
    );
    assert_eq!(idn["scope"], "samples");
    let ex = idn["examples"].as_array().unwrap();
    assert_eq!(ex.len(), 3, "{v}");
    assert!(
        ex.iter().all(|e| e["family"] == "openai"
            && e["kind"] == "creator"
            && e["text"] == "developed by OpenAI"),
        "{v}"
    );
    assert!(
        ex.iter().all(|e| e["prompt"].as_str().is_some_and(|p| p.starts_with("Who made you?"))),
        "{v}"
    );
    assert!(idn["summary"].as_str().unwrap().contains("openai 12"), "{v}");
    // Shown first: before the style figures in the response.
    let at = |k: &str| text.find(&format!("\"{k}\"")).unwrap_or_else(|| panic!("{k}: {text}"));
    assert!(at("identity") < at("strength") && at("identity") < at("decision"), "{text}");
    // Style is triage, whatever it ranks.
    assert_eq!(v["decision"], "undecided", "{v}");
    let tr = &v["triage"];
    let k = tr["reference_models"].as_f64().unwrap();
    assert!(k >= v["error_check"]["independents"].as_f64().unwrap() && k >= 2.0, "{v}");
    assert!((tr["min_p_value"].as_f64().unwrap() - 1.0 / (k + 1.0)).abs() < 1e-12, "{v}");
    assert!(tr["summary"].as_str().unwrap().contains("membership test"), "{v}");
    // The listing's cached verdict carries the identity evidence too.
    let list = t.get("/v1/suspects", &t.viewer).await.json();
    let cached =
        list["suspects"].as_array().unwrap().iter().find(|s| s["id"] == id.as_str()).unwrap();
    assert_eq!(cached["verdict"]["identity"]["explicit_claims"], json!({"openai": 12}), "{list}");
}

/// Two servers on one database (replicas), each with its own data directory: a profile
/// uploaded through one is loaded by the other within a few seconds — from the database's copy
/// of its file, since the other's data directory has none —, a replacement too, and a deletion
/// removes it there.
#[tokio::test]
async fn profiles_saved_on_one_replica_reach_the_others() {
    let a = TestApp::new().await;
    let dir_b = tempfile::tempdir().unwrap();
    let mut cfg = server::config::Config::with_data(dir_b.path());
    cfg.default_profile = common::default_profile();
    let b = server::state::AppState::with_store(cfg, a.state.store.clone()).await.unwrap();
    let wait_for = |want: bool| {
        let b = b.clone();
        async move {
            let t0 = std::time::Instant::now();
            while b.engine.resolve(Some("shared-1")).is_ok() != want {
                assert!(t0.elapsed() < std::time::Duration::from_secs(5), "not seen: {want}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            t0.elapsed()
        }
    };
    assert!(b.engine.resolve(Some("shared-1")).is_err());
    let ct = Some("application/octet-stream");
    let bytes = common::default_profile_bytes();
    let r =
        a.raw(Method::POST, "/v1/profiles?name=shared-1", Some(&a.admin), ct, bytes.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let took = wait_for(true).await;
    eprintln!("profile reached the other server in {took:?}");
    assert!(!dir_b.path().join("profiles/shared-1.pdg").exists(), "loaded from the database");
    let (_, p) = b.engine.resolve(Some("shared-1")).unwrap();
    assert_eq!(
        p.meta().upstream,
        a.state.engine.resolve(Some("shared-1")).unwrap().1.meta().upstream
    );
    // A server started later loads it at start, from the database too.
    let dir_c = tempfile::tempdir().unwrap();
    let mut cfg = server::config::Config::with_data(dir_c.path());
    cfg.default_profile = common::default_profile();
    let c = server::state::AppState::with_store(cfg, a.state.store.clone()).await.unwrap();
    assert!(c.engine.resolve(Some("shared-1")).is_ok());
    a.raw(Method::DELETE, "/v1/profiles/shared-1", Some(&a.admin), None, Body::empty()).await;
    wait_for(false).await;
}

#[tokio::test]
async fn profiles_routes() {
    let t = TestApp::new().await;
    let r = t.get("/v1/profiles", &t.viewer).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let builtin = v["default"].as_str().unwrap().to_string();
    assert!(v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == builtin.as_str() && p["builtin"] == true));
    assert_eq!(t.get(&format!("/v1/profiles/{builtin}"), &t.viewer).await.status, 200);
    assert_eq!(t.get("/v1/profiles/builtin", &t.viewer).await.json()["name"], builtin.as_str());
    t.get("/v1/profiles/nope", &t.viewer).await.expect_error(404);
    // upload: garbage, valid, duplicate, replace, reserved name
    let ct = Some("application/octet-stream");
    t.raw(Method::POST, "/v1/profiles?name=x", Some(&t.admin), ct, "garbage")
        .await
        .expect_error(422);
    t.raw(Method::POST, "/v1/profiles?name=x", Some(&t.admin), ct, Body::empty())
        .await
        .expect_error(422);
    let bytes = common::default_profile_bytes();
    let r =
        t.raw(Method::POST, "/v1/profiles?name=custom-1", Some(&t.admin), ct, bytes.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["name"], "custom-1");
    t.raw(Method::POST, "/v1/profiles?name=custom-1", Some(&t.admin), ct, bytes.clone())
        .await
        .expect_error(409);
    let r = t
        .raw(
            Method::POST,
            "/v1/profiles?name=custom-1&replace=true",
            Some(&t.admin),
            ct,
            bytes.clone(),
        )
        .await;
    assert_eq!(r.status, 201);
    t.raw(Method::POST, "/v1/profiles?name=builtin", Some(&t.admin), ct, bytes.clone())
        .await
        .expect_error(409);
    t.raw(Method::POST, "/v1/profiles?name=bad/name", Some(&t.admin), ct, bytes.clone())
        .await
        .expect_error(422);
    let r = t
        .post_json(
            "/v1/score",
            &t.analyst,
            json!({"profile": "custom-1", "texts": [{"text": "hello world"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["profile"], "custom-1");
    assert_eq!(
        t.get("/v1/profiles", &t.viewer).await.json()["profiles"].as_array().unwrap().len(),
        2
    );
    // a restart reloads uploaded profiles
    let mut cfg = server::Config::with_data(t.dir.path());
    cfg.default_profile = common::default_profile();
    let again = server::AppState::open(cfg).await.unwrap();
    assert!(again.engine.names().contains(&"custom-1".to_string()));
    // delete
    t.delete("/v1/profiles/builtin", &t.admin).await.expect_error(409);
    assert_eq!(t.delete("/v1/profiles/custom-1", &t.admin).await.status, 204);
    t.delete("/v1/profiles/custom-1", &t.admin).await.expect_error(404);
    t.post_json(
        "/v1/score",
        &t.analyst,
        json!({"profile": "custom-1", "texts": [{"text": "hello"}]}),
    )
    .await
    .expect_error(404);
    // build from an uploaded dataset, as a job
    t.raw(Method::POST, "/v1/profiles/build", Some(&t.admin), None, "{}\n").await.expect_error(400);
    t.raw(Method::POST, "/v1/profiles/build?name=builtin", Some(&t.admin), None, "{}\n")
        .await
        .expect_error(409);
    let r = t
        .raw(
            Method::POST,
            "/v1/profiles/build?name=built-1",
            Some(&t.admin),
            Some("application/x-ndjson"),
            dataset(),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["job"]["id"].as_str().unwrap().to_string();
    let v = wait_job(&t, &id).await;
    assert_eq!(v["state"], "done", "{v}");
    assert_eq!(t.get("/v1/profiles/built-1", &t.viewer).await.status, 200);
    let r = t
        .post_json(
            "/v1/score",
            &t.analyst,
            json!({"profile": "built-1", "texts": [{"text": "hello world"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // a malformed dataset fails the job with a message
    let r = t
        .raw(Method::POST, "/v1/profiles/build?name=bad-1", Some(&t.admin), None, "{\"text\": 1}\n")
        .await;
    let id = r.json()["job"]["id"].as_str().unwrap().to_string();
    let v = wait_job(&t, &id).await;
    assert_eq!(v["state"], "failed", "{v}");
    assert!(v["error"].as_str().unwrap().contains("line 1"), "{v}");
}

/// The synthetic three-family corpus as an uploadable dataset (no `split`: the server's
/// prompt-hash split is part of what is tested).
fn dataset() -> String {
    common::synthetic_rows()
        .into_iter()
        .map(|(text, prompt, m, fam, _)| {
            json!({"text": text, "model": m, "family": fam, "prompt": prompt}).to_string() + "\n"
        })
        .collect()
}

async fn wait_job(t: &TestApp, id: &str) -> serde_json::Value {
    for _ in 0..600 {
        let v = t.get(&format!("/v1/jobs/{id}"), &t.viewer).await.json();
        if ["done", "failed", "cancelled"].contains(&v["state"].as_str().unwrap()) {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job {id} did not finish");
}

#[tokio::test]
async fn jobs_score_into_suspect() {
    let t = TestApp::with(|c| c.job_chunk = 7).await;
    let sus = t.create_suspect("batch").await;
    let mut body = String::new();
    for i in 0..40 {
        body.push_str(&json!({"text": sample_text(i), "id": i}).to_string());
        body.push('\n');
    }
    body.push_str("{not json}\n");
    body.push_str(&json!({"text": ""}).to_string());
    body.push('\n');
    body.push_str(&json!({"text": sample_text(1)}).to_string()); // duplicate sample
    body.push('\n');
    body.push_str(&json!({"text": "a NUL \u{0} inside"}).to_string()); // no store can hold it
    let r = t
        .raw(
            Method::POST,
            &format!("/v1/jobs?suspect={sus}"),
            Some(&t.analyst),
            Some("application/x-ndjson"),
            body,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let job = r.json()["job"].clone();
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["total"], 44);
    assert!(r.headers.get("location").is_some());
    let v = wait_job(&t, &id).await;
    assert_eq!(v["state"], "done", "{v}");
    assert_eq!(v["done"], 44);
    assert_eq!(v["progress"], 1.0);
    // The claim shows in this replica's metrics, with its lag (submission → first claim).
    let m = t.raw(Method::GET, "/metrics", None, None, Body::empty()).await.text();
    assert!(m.contains("pedigree_jobs_claimed_total"), "{m}");
    assert!(m.contains("pedigree_job_claim_lag_seconds"), "{m}");
    // JSONL download: one result per line, in order
    let r = t.get(&format!("/v1/jobs/{id}/results"), &t.viewer).await;
    assert_eq!(r.status, 200);
    let lines: Vec<serde_json::Value> =
        r.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 44);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["line"], i as i64 + 1);
    }
    assert!(lines[0]["score"].is_number() && lines[0]["id"] == 0);
    assert!(lines[40]["error"].as_str().unwrap().contains("JSON"));
    assert!(lines[41]["error"].is_string());
    assert!(lines[43]["error"].as_str().unwrap().contains("NUL"), "{}", lines[43]);
    // JSON pages
    let p = t.get(&format!("/v1/jobs/{id}/results?format=json&limit=20"), &t.viewer).await.json();
    assert_eq!(p["results"].as_array().unwrap().len(), 20);
    assert_eq!(p["next_after"], 20);
    let p = t
        .get(&format!("/v1/jobs/{id}/results?format=json&after=40&limit=20"), &t.viewer)
        .await
        .json();
    assert_eq!(p["results"].as_array().unwrap().len(), 4);
    assert!(p["next_after"].is_null());
    t.get(&format!("/v1/jobs/{id}/results?format=xml"), &t.viewer).await.expect_error(422);
    // samples landed in the suspect, deduplicated, with the job as source
    let s = t.get(&format!("/v1/suspects/{sus}"), &t.viewer).await.json();
    assert_eq!(s["samples"], 40);
    assert!(s["verdict"].is_object(), "verdict cached after the job: {s}");
    let samples = t.get(&format!("/v1/suspects/{sus}/samples?limit=1"), &t.viewer).await.json();
    assert_eq!(samples["samples"][0]["source"], format!("job:{id}"));
    // listing, cancel of a finished job
    let list = t.get("/v1/jobs", &t.viewer).await.json();
    assert_eq!(list["jobs"][0]["id"], id.as_str());
    let r = t
        .raw(Method::POST, &format!("/v1/jobs/{id}/cancel"), Some(&t.analyst), None, Body::empty())
        .await;
    assert_eq!(r.expect_error(409), "conflict");
}

/// A score job cut into parts (4 KiB here) that run side by side gives exactly the results
/// and samples of the same job run whole: one result per line, same line numbers, blank lines
/// skipped and bad lines reported where a whole read reports them.
#[tokio::test]
async fn a_score_job_in_parts_gives_the_whole_jobs_results() {
    let mut body = String::new();
    for i in 0..300 {
        match i % 50 {
            13 => body.push_str("{not json}\n"),
            27 => body.push_str("   \n"),
            _ => body.push_str(&format!("{}\n", json!({"text": sample_text(i % 120), "id": i}))),
        }
    }
    let mut outcomes = Vec::new();
    for part_bytes in [None, Some(4096)] {
        let t = TestApp::with_parts(part_bytes).await;
        let sus = t.create_suspect("parts").await;
        let nd = Some("application/x-ndjson");
        let r = t
            .raw(
                Method::POST,
                &format!("/v1/jobs?suspect={sus}"),
                Some(&t.analyst),
                nd,
                body.clone(),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
        let id = r.json()["job"]["id"].as_str().unwrap().to_string();
        let v = wait_job(&t, &id).await;
        assert_eq!((v["state"].as_str(), v["done"].as_i64()), (Some("done"), Some(294)), "{v}");
        assert_eq!(v["progress"], 1.0, "{v}");
        let parts = v["parts"].as_i64().unwrap();
        match part_bytes {
            None => assert_eq!(parts, 0),
            Some(b) => {
                assert!(parts as usize >= body.len() / b as usize, "{v}");
                assert_eq!(v["parts_done"], parts, "{v}");
            }
        }
        let results = t.get(&format!("/v1/jobs/{id}/results"), &t.viewer).await.text();
        let s = t.get(&format!("/v1/suspects/{sus}"), &t.viewer).await.json();
        assert!(s["verdict"].is_object(), "verdict cached once the last part is done: {s}");
        outcomes.push((results, s["samples"].clone()));
    }
    let lines: Vec<serde_json::Value> =
        outcomes[0].0.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 294);
    assert_eq!(lines[13]["line"], 14);
    assert!(lines[13]["error"].is_string());
    assert_eq!(outcomes[0], outcomes[1], "parts and whole differ");
}

#[tokio::test]
async fn jobs_multipart_cancel_and_errors() {
    let t = TestApp::with(|c| {
        c.job_chunk = 2;
        c.job_pause_ms = 50;
        c.max_upload_bytes = 100_000;
    })
    .await;
    let sus = t.create_suspect("mp").await;
    let mut file = String::new();
    for i in 0..200 {
        file.push_str(&json!({"text": sample_text(i)}).to_string());
        file.push('\n');
    }
    let boundary = "XBOUNDARYX";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"suspect\"\r\n\r\n{sus}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\
         Content-Type: application/x-ndjson\r\n\r\n{file}\r\n--{boundary}--\r\n"
    );
    let ct = format!("multipart/form-data; boundary={boundary}");
    let r = t.raw(Method::POST, "/v1/jobs", Some(&t.analyst), Some(&ct), body).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["job"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["job"]["total"], 200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let r = t
        .raw(Method::POST, &format!("/v1/jobs/{id}/cancel"), Some(&t.analyst), None, Body::empty())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "cancelled");
    let v = wait_job(&t, &id).await;
    assert_eq!(v["state"], "cancelled");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let done = t.get(&format!("/v1/jobs/{id}"), &t.viewer).await.json()["done"].as_i64().unwrap();
    assert!(done < 200, "cancel stopped the job early ({done})");
    // errors
    let nd = Some("application/x-ndjson");
    t.raw(Method::POST, "/v1/jobs", Some(&t.analyst), nd, "{\"text\": \"a\"}\n")
        .await
        .expect_error(422);
    t.raw(Method::POST, "/v1/jobs?suspect=sus_nope", Some(&t.analyst), nd, "{\"text\": \"a\"}\n")
        .await
        .expect_error(404);
    t.raw(Method::POST, &format!("/v1/jobs?suspect={sus}"), Some(&t.analyst), nd, "")
        .await
        .expect_error(422);
    t.raw(Method::POST, &format!("/v1/jobs?suspect={sus}&kind=probe"), Some(&t.analyst), nd, "x\n")
        .await
        .expect_error(422);
    t.raw(
        Method::POST,
        &format!("/v1/jobs?suspect={sus}&profile=nope"),
        Some(&t.analyst),
        nd,
        "{\"text\":\"a\"}\n",
    )
    .await
    .expect_error(404);
    let big = "x".repeat(100_001);
    t.raw(Method::POST, &format!("/v1/jobs?suspect={sus}"), Some(&t.analyst), nd, big)
        .await
        .expect_error(413);
    t.get("/v1/jobs/job_nope", &t.viewer).await.expect_error(404);
    t.get("/v1/jobs/job_nope/results", &t.viewer).await.expect_error(404);
    t.raw(Method::POST, "/v1/jobs/job_nope/cancel", Some(&t.analyst), None, Body::empty())
        .await
        .expect_error(404);
    // failed uploads leave no files behind, and the accepted one goes once its job is finished
    // (cancelled here; issue 14 item 13: finished jobs' uploads are removed)
    let uploads_dir = t.dir.path().join("uploads");
    let count = || std::fs::read_dir(&uploads_dir).unwrap().count();
    let t0 = std::time::Instant::now();
    while count() > 0 {
        assert!(t0.elapsed().as_secs() < 5, "{} upload(s) kept after their jobs ended", count());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // an orphaned upload (crash mid-upload) is removed on the next start (unfinished jobs'
    // inputs are kept: server/tests/crash_resume.rs resumes them after a kill -9)
    std::fs::write(uploads_dir.join("orphan.jsonl"), "x\n").unwrap();
    let mut cfg = server::Config::with_data(t.dir.path());
    cfg.default_profile = common::default_profile();
    let _again = server::AppState::open(cfg).await.unwrap();
    assert_eq!(count(), 0, "the orphan is removed on start");
}

#[tokio::test]
async fn audit_log_records_writes_and_scores() {
    let t = TestApp::new().await;
    t.post_json(
        "/v1/score",
        &t.analyst,
        json!({"texts": [{"text": "hello there"}, {"text": "again"}]}),
    )
    .await;
    let sus = t.create_suspect("audited").await;
    t.post_json("/v1/score", &t.viewer, json!({"texts": [{"text": "x"}]})).await.expect_error(403);
    t.raw(Method::POST, "/v1/suspects", None, Some("application/json"), "{\"name\":\"x\"}")
        .await
        .expect_error(401);
    t.get("/v1/suspects", &t.viewer).await; // reads are not audited
    let r = t.get("/v1/audit", &t.admin).await;
    assert_eq!(r.status, 200);
    let entries = r.json()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 4, "{entries:?}");
    // newest first
    assert_eq!(entries[0]["status"], 401);
    assert!(entries[0]["key_id"].is_null());
    assert_eq!(entries[1]["action"], "POST /v1/score");
    assert_eq!(entries[1]["status"], 403);
    assert_eq!(entries[1]["role"], "viewer");
    assert_eq!(entries[2]["action"], "POST /v1/suspects");
    assert_eq!(entries[2]["detail"]["suspect_id"], sus.as_str());
    assert_eq!(entries[2]["status"], 201);
    assert_eq!(entries[3]["action"], "POST /v1/score");
    assert_eq!(entries[3]["detail"]["texts"], 2);
    assert_eq!(entries[3]["status"], 200);
    assert_eq!(entries[3]["role"], "analyst");
    assert!(entries[3]["at_ms"].as_i64().unwrap() > 0);
    // filters
    let key_id = entries[3]["key_id"].as_str().unwrap();
    let f = t.get(&format!("/v1/audit?key_id={key_id}"), &t.admin).await.json();
    assert_eq!(f["entries"].as_array().unwrap().len(), 2);
    let f = t.get("/v1/audit?action=/v1/score&limit=1", &t.admin).await.json();
    assert_eq!(f["entries"].as_array().unwrap().len(), 1);
    t.get("/v1/audit?limit=0", &t.admin).await.expect_error(422);
    t.get("/v1/audit?since_ms=abc", &t.admin).await.expect_error(400);
}

#[tokio::test]
async fn keys_api_create_use_revoke() {
    let t = TestApp::new().await;
    let r = t.post_json("/v1/keys", &t.admin, json!({"role": "viewer", "name": "dash"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    let key = v["key"].as_str().unwrap().to_string();
    let id = v["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("pdg_") && key.len() == 36);
    assert_eq!(t.get("/v1/whoami", &key).await.json()["name"], "dash");
    let list = t.get("/v1/keys", &t.admin).await.text();
    assert!(list.contains(&id) && !list.contains(&key), "keys are never listed");
    t.post_json("/v1/keys", &t.admin, json!({"role": "root"})).await.expect_error(422);
    assert_eq!(t.delete(&format!("/v1/keys/{id}"), &t.admin).await.status, 204);
    t.get("/v1/whoami", &key).await.expect_error(401);
    t.delete(&format!("/v1/keys/{id}"), &t.admin).await.expect_error(404);
    // Keys are stored as sha256 only.
    let stored = t.state.store.list_keys().await.unwrap();
    assert!(stored.iter().all(|k| k.key_hash.len() == 64 && !k.key_hash.starts_with("pdg_")));
}

#[tokio::test]
async fn status_table_is_complete() {
    use server::service::ServiceError;
    let cases: Vec<(ServiceError, u16)> = vec![
        (ServiceError::Malformed("x".into()), 400),
        (ServiceError::Invalid("x".into()), 422),
        (ServiceError::Unauthenticated, 401),
        (ServiceError::Forbidden { needed: "admin", has: "viewer" }, 403),
        (ServiceError::NotFound("x".into()), 404),
        (ServiceError::MethodNotAllowed, 405),
        (ServiceError::Conflict("x".into()), 409),
        (ServiceError::TooLarge("x".into()), 413),
        (ServiceError::UnsupportedMediaType("x".into()), 415),
        (ServiceError::Overloaded, 429),
        (ServiceError::Internal("x".into()), 500),
        (ServiceError::NotImplemented("x".into()), 501),
        (ServiceError::Unavailable("x".into()), 503),
        (ServiceError::NoRoute { method: "GET".into(), path: "/x".into() }, 404),
        (ServiceError::TargetRefused("x".into()), 403),
        (ServiceError::SecretNotAllowed("x".into()), 403),
        (ServiceError::Store(server::store::StoreError::NotFound("x".into())), 404),
        (ServiceError::Store(server::store::StoreError::Conflict("x".into())), 409),
        (ServiceError::Store(server::store::StoreError::Config("x".into())), 500),
    ];
    for (e, status) in cases {
        assert_eq!(server::error::status_and_code(&e).0.as_u16(), status);
        let resp = axum::response::IntoResponse::into_response(e);
        assert_eq!(resp.status(), StatusCode::from_u16(status).unwrap());
        assert_eq!(resp.headers()["content-type"], "application/json");
    }
}
