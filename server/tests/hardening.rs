//! Issue 14 (hardening): hostile campaign values, hostile endpoints, resource limits. Each test
//! here failed before its fix.

mod common;
#[path = "common/fake_openai.rs"]
mod fake_openai;

use common::TestApp;
use fake_openai::FakeOpenAi;
use serde_json::json;
use server::store::{NewCampaign, NewProbe};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const MODEL: &str = "suspect-1";

fn answers(prompts: &[String]) -> HashMap<String, String> {
    prompts.iter().enumerate().map(|(i, p)| (p.clone(), common::sample_text(i))).collect()
}

async fn wait_done(app: &TestApp, id: &str) -> serde_json::Value {
    app.wait_finished(&format!("/v1/campaigns/{id}"), Duration::from_secs(60)).await
}

fn campaign_body(
    fake: &FakeOpenAi,
    prompts: &[String],
    client: serde_json::Value,
) -> serde_json::Value {
    json!({
        "endpoint": {"base_url": fake.base, "model": MODEL},
        "probe_list": prompts.iter().map(|p| json!({"prompt": p})).collect::<Vec<_>>(),
        "budget": {"max_requests": prompts.len()},
        "batch": 3,
        "client": client,
    })
}

async fn allow(app: &TestApp, entry: &str) {
    let r = app.post_json("/v1/allowlist", &app.admin, json!({"entry": entry})).await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// A campaign stored without validation (as an older version accepted it), started by the
/// campaign manager like a resumed one.
async fn store_raw_campaign(app: &TestApp, spec: serde_json::Value, prompts: &[String]) -> String {
    let st = &app.state;
    let (profile, _) = st.engine.resolve(None).unwrap();
    let sus = format!("sus_raw{}", server::auth::random_base62(8));
    st.store.create_suspect(&sus, MODEL, "raw", &profile).await.unwrap();
    let id = format!("cmp_raw{}", server::auth::random_base62(8));
    st.store
        .create_campaign(NewCampaign {
            id: id.clone(),
            suspect_id: sus,
            spec,
            fingerprint: "raw".into(),
            created_by: None,
            probes: prompts
                .iter()
                .enumerate()
                .map(|(i, p)| NewProbe {
                    probe_id: format!("r{i}"),
                    kind: "test".into(),
                    prompt: p.clone(),
                })
                .collect(),
            upstream: false,
        })
        .await
        .unwrap();
    st.campaigns.wake();
    id
}

/// Issue 14 item 1: tiny rates (and every other out-of-range number) are a 422 naming the field;
/// a hostile rate stored by hand ends its campaign `failed` with a reason; later campaigns to the
/// same endpoint still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_campaign_numbers_are_refused_or_fail_their_campaign() {
    let app = TestApp::new().await;
    let prompts: Vec<String> = (0..3).map(|i| format!("rate question {i}")).collect();
    let fake = FakeOpenAi::start(MODEL, answers(&prompts), vec![], 0);
    allow(&app, &fake.entry).await;
    let ok = json!({"timeout_ms": 2000, "backoff_base_ms": 10, "rate_per_sec": 100.0});
    let mut cases: Vec<(&str, serde_json::Value)> = [1e-300, 1e-19, 0.0, -1.0, 1e300, 0.0009]
        .into_iter()
        .map(|r| ("client.rate_per_sec", json!({"rate_per_sec": r})))
        .collect();
    cases.extend([
        ("client.timeout_ms", json!({"timeout_ms": 0})),
        ("client.backoff_max_ms", json!({"backoff_max_ms": 1_000_000_000_000u64})),
        ("client.retry_after_max_ms", json!({"retry_after_max_ms": 1_000_000_000_000u64})),
        ("client.answer_max_tokens", json!({"answer_max_tokens": 0})),
        ("client.temperature", json!({"temperature": 5.0})),
        ("client.max_attempts", json!({"max_attempts": 0})),
    ]);
    for (field, client) in cases {
        let r = app
            .post_json(
                "/v1/campaigns",
                &app.analyst,
                campaign_body(&fake, &prompts, client.clone()),
            )
            .await;
        assert_eq!(r.expect_error(422), "invalid_input", "{client}");
        assert!(
            r.json()["error"]["message"].as_str().unwrap().contains(field),
            "{field}: {}",
            r.text()
        );
    }
    let mut b = campaign_body(&fake, &prompts, ok.clone());
    b["budget"]["max_tokens"] = json!(0);
    let r = app.post_json("/v1/campaigns", &app.analyst, b).await;
    assert!(r.expect_error(422) == "invalid_input" && r.text().contains("budget.max_tokens"));
    assert!(fake.log().is_empty(), "nothing was sent");

    // Stored hostile rates: the campaign fails with a reason instead of panicking (or
    // re-panicking on every restart) and poisoning the shared rate limiter.
    for rate in [1e-300, 1e-19] {
        let spec = json!({
            "endpoint": {"base_url": fake.base, "model": MODEL},
            "probes": "custom",
            "budget": {"max_requests": 3},
            "client": {"rate_per_sec": rate},
        });
        let id = store_raw_campaign(&app, spec, &prompts).await;
        let v = wait_done(&app, &id).await;
        assert_eq!(v["state"], "failed", "{v}");
        assert!(v["error"].as_str().unwrap().contains("rate_per_sec"), "{v}");
    }
    // Later campaigns to the same endpoint work.
    let r = app.post_json("/v1/campaigns", &app.analyst, campaign_body(&fake, &prompts, ok)).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let v = wait_done(&app, r.json()["id"].as_str().unwrap()).await;
    assert_eq!(
        (v["state"].as_str(), v["probes"]["answered"].as_i64()),
        (Some("done"), Some(3)),
        "{v}"
    );
}

/// Issue 14 item 2: a hostile endpoint's `Retry-After` (huge, non-finite, negative, far-future
/// date) neither panics the campaign task nor leaves the campaign `running`: each such probe
/// fails with a reason, the campaign ends, and a later campaign works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_retry_after_values_end_the_probe_not_the_process() {
    let app = TestApp::new().await;
    let values = [
        "1e300",
        "1e19",
        "inf",
        "NaN",
        "-1",
        "99999999999999999999999",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ];
    let prompts: Vec<String> = (0..values.len()).map(|i| format!("ra-{i}: question")).collect();
    let faults: Vec<(String, Vec<testkit::replay::Fault>)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                format!("ra-{i}:"),
                vec![testkit::replay::Fault::RetryAfterRaw { value: v.to_string() }],
            )
        })
        .collect();
    let fake = FakeOpenAi::start(
        MODEL,
        answers(&prompts),
        faults.iter().map(|(m, f)| (m.as_str(), f.clone())).collect(),
        0,
    );
    allow(&app, &fake.entry).await;
    let client = json!({"timeout_ms": 2000, "backoff_base_ms": 10, "backoff_max_ms": 20,
                        "rate_per_sec": 100.0, "retry_after_max_ms": 2000});
    let r = app
        .post_json("/v1/campaigns", &app.analyst, campaign_body(&fake, &prompts, client.clone()))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let v = wait_done(&app, &id).await;
    assert_eq!(v["state"], "done", "{v}");
    assert!(v["stop_reason"].is_string(), "{v}");
    let probes = app.get(&format!("/v1/campaigns/{id}/probes"), &app.viewer).await.json();
    for p in probes["probes"].as_array().unwrap() {
        let i: usize = p["prompt"].as_str().unwrap()[3..4].parse().unwrap();
        let huge = ["1e300", "1e19", "99999999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"]
            .contains(&values[i]);
        if huge {
            assert_eq!(p["state"], "failed", "{} → {p}", values[i]);
            assert!(p["error"].as_str().unwrap().contains("Retry-After"), "{p}");
        } else {
            // Unparseable values are ignored: the usual backoff, then the answer.
            assert_eq!(p["state"], "answered", "{} → {p}", values[i]);
        }
    }
    let again: Vec<String> = vec!["ra-0: question".into()];
    let r =
        app.post_json("/v1/campaigns", &app.analyst, campaign_body(&fake, &again, client)).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(wait_done(&app, r.json()["id"].as_str().unwrap()).await["state"], "done");
}

/// Issue 14 item 4: made-up methods and paths (no key needed) do not add label values: the
/// size of `/metrics` stays bounded and no sent method or path appears in it.
#[tokio::test]
async fn metrics_labels_are_bounded() {
    let app = TestApp::new().await;
    let metrics = || async {
        app.raw(axum::http::Method::GET, "/metrics", None, None, axum::body::Body::empty())
            .await
            .text()
    };
    for i in 0..20 {
        let m = axum::http::Method::from_bytes(format!("WARM{i}").as_bytes()).unwrap();
        app.raw(m, "/healthz", None, None, axum::body::Body::empty()).await;
    }
    let before = metrics().await.len();
    for i in 0..300 {
        let m = axum::http::Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        let uri = if i % 2 == 0 { format!("/v1/suspects/x{i}") } else { format!("/nowhere/{i}") };
        app.raw(m, &uri, None, None, axum::body::Body::empty()).await;
    }
    let after = metrics().await;
    assert!(!after.contains("MADEUP") && !after.contains("WARM") && !after.contains("nowhere"));
    assert!(after.contains("method=\"other\""), "{after}");
    // A few new label sets (other × a status or two × two routes), not 300.
    assert!(after.len() < before + 20_000, "{before} → {}", after.len());
}

async fn wait_job(t: &TestApp, id: &str) -> serde_json::Value {
    t.wait_finished(&format!("/v1/jobs/{id}"), Duration::from_secs(60)).await
}

async fn job_results(t: &TestApp, id: &str) -> Vec<serde_json::Value> {
    let r = t.get(&format!("/v1/jobs/{id}/results"), &t.viewer).await;
    r.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Issue 14 item 6: a job line over `max_line_bytes` is that line's error (read without being
/// held whole), the lines around it are scored; a multipart text field over 64 KiB is a 413.
#[tokio::test]
async fn oversize_job_lines_and_multipart_fields_are_refused_while_reading() {
    let t = TestApp::with(|c| c.max_line_bytes = 4096).await;
    let sus = t.create_suspect("limits").await;
    let long = json!({"text": "word ".repeat(200_000)}).to_string();
    let body = format!(
        "{}\n{long}\n{}\n",
        json!({"text": common::sample_text(0)}),
        json!({"text": common::sample_text(1)})
    );
    let r = t
        .raw(
            axum::http::Method::POST,
            &format!("/v1/jobs?suspect={sus}"),
            Some(&t.analyst),
            Some("application/x-ndjson"),
            body,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["job"]["id"].as_str().unwrap().to_string();
    let v = wait_job(&t, &id).await;
    assert_eq!((v["state"].as_str(), v["done"].as_i64()), (Some("done"), Some(3)), "{v}");
    let res = job_results(&t, &id).await;
    assert!(res[0]["score"].is_number() && res[2]["score"].is_number(), "{res:?}");
    assert!(res[1]["error"].as_str().unwrap().contains("longer than 4096 bytes"), "{}", res[1]);

    let boundary = "XBOUNDARYX";
    let mp = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"suspect\"\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n\r\n{}\n\r\n--{boundary}--\r\n",
        "s".repeat(300_000),
        json!({"text": "x"})
    );
    let r = t
        .raw(
            axum::http::Method::POST,
            "/v1/jobs",
            Some(&t.analyst),
            Some(&format!("multipart/form-data; boundary={boundary}")),
            mp,
        )
        .await;
    assert_eq!(r.expect_error(413), "payload_too_large");
    assert!(r.text().contains("`suspect`"), "{}", r.text());
}

/// Issue 14 item 11: lines of only `\x0b` or U+3000 were counted by the upload but skipped by
/// the reader, so a finished job reported progress 0.5.
#[tokio::test]
async fn whitespace_only_lines_count_the_same_for_upload_and_reader() {
    let t = TestApp::new().await;
    let sus = t.create_suspect("ws").await;
    let body = format!("{}\n\x0b\n\u{3000}\n \t\n", json!({"text": common::sample_text(0)}));
    let r = t
        .raw(
            axum::http::Method::POST,
            &format!("/v1/jobs?suspect={sus}"),
            Some(&t.analyst),
            Some("application/x-ndjson"),
            body,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["job"]["id"].as_str().unwrap().to_string();
    let v = wait_job(&t, &id).await;
    assert_eq!(v["state"], "done", "{v}");
    assert_eq!(v["progress"], 1.0, "{v}");
    assert_eq!(v["done"], v["total"], "{v}");
}

/// Issue 14 item 5: a secret goes only to the endpoints an admin bound it to (403
/// `secret_not_allowed` for any other allowlisted host, before anything is sent), and an
/// endpoint that echoes the key gets it stored and shown as `[REDACTED]`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_bound_to_hosts_and_redacted() {
    const SECRET: &str = "sk-hardening-5e1f-never-show";
    let app = TestApp::new().await;
    let prompts: Vec<String> = vec!["echo: who am i".into(), "plain: hello".into()];
    let faults = vec![("echo:", vec![testkit::replay::Fault::EchoAuthorization])];
    let fake = FakeOpenAi::start(MODEL, answers(&prompts), faults, 0);
    let other = FakeOpenAi::start(MODEL, answers(&prompts), vec![], 0);
    allow(&app, &fake.entry).await;
    allow(&app, &other.entry).await;
    let r = app.post_json("/v1/secrets", &app.admin, json!({"name": "k", "value": SECRET})).await;
    assert!(r.expect_error(422) == "invalid_input" && r.text().contains("hosts"));
    let r = app
        .post_json(
            "/v1/secrets",
            &app.admin,
            json!({"name": "k", "value": SECRET, "hosts": [fake.entry]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["hosts"], json!([fake.entry]));
    let client = json!({"timeout_ms": 2000, "backoff_base_ms": 10, "rate_per_sec": 100.0, "max_attempts": 1});
    let mut body = campaign_body(&other, &prompts, client.clone());
    body["endpoint"]["api_key_secret"] = json!("k");
    let r = app.post_json("/v1/campaigns", &app.analyst, body).await;
    assert_eq!(r.expect_error(403), "secret_not_allowed");
    assert!(r.text().contains(&other.entry), "{}", r.text());
    assert!(other.log().is_empty(), "the key never left for the other host");

    let mut body = campaign_body(&fake, &prompts, client);
    body["endpoint"]["api_key_secret"] = json!("k");
    let r = app.post_json("/v1/campaigns", &app.analyst, body).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    wait_done(&app, &id).await;
    let probes = app.get(&format!("/v1/campaigns/{id}/probes"), &app.viewer).await;
    let text = probes.text();
    assert!(!text.contains(SECRET), "the echoed key was stored: {text}");
    assert!(text.contains("[REDACTED]"), "{text}");
    let dash = app.get(&format!("/v1/campaigns/{id}"), &app.viewer).await.text();
    assert!(!dash.contains(SECRET));
}

/// Issue 14 item 7: rate limits are per campaign (one at 0.001 req/s used to stall every other
/// campaign to the same host), and an admin's `max_rate_per_sec` on the allowlist entry caps
/// them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_per_campaign_under_an_admin_ceiling() {
    let app = TestApp::new().await;
    let prompts: Vec<String> = (0..6).map(|i| format!("rate-{i}: question")).collect();
    let fake = FakeOpenAi::start(MODEL, answers(&prompts), vec![], 0);
    allow(&app, &fake.entry).await;
    let slow = json!({"timeout_ms": 2000, "rate_per_sec": 0.001});
    let r =
        app.post_json("/v1/campaigns", &app.analyst, campaign_body(&fake, &prompts, slow)).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let slow_id = r.json()["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fast = json!({"timeout_ms": 2000, "rate_per_sec": 100.0});
    let t0 = Instant::now();
    let r = app
        .post_json("/v1/campaigns", &app.analyst, campaign_body(&fake, &prompts, fast.clone()))
        .await;
    let v = wait_done(&app, r.json()["id"].as_str().unwrap()).await;
    assert_eq!(v["probes"]["answered"], 6, "{v}");
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());

    // The admin's ceiling: 5 requests/s to this endpoint, whatever the campaign asks.
    let r = app
        .post_json(
            "/v1/allowlist",
            &app.admin,
            json!({"entry": fake.entry, "max_rate_per_sec": 5.0}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    app.post_json(
        "/v1/allowlist",
        &app.admin,
        json!({"entry": fake.entry, "max_rate_per_sec": 0.0}),
    )
    .await
    .expect_error(422);
    let before = fake.log().len();
    let r =
        app.post_json("/v1/campaigns", &app.analyst, campaign_body(&fake, &prompts, fast)).await;
    let v = wait_done(&app, r.json()["id"].as_str().unwrap()).await;
    assert_eq!(v["probes"]["answered"], 6, "{v}");
    let at: Vec<i64> = fake.log()[before..].iter().map(|l| l.at_ms).collect();
    // Six requests at most 5/s: five gaps of ≥ 200 ms (minus scheduling slack).
    assert!(at.last().unwrap() - at[0] >= 900, "{at:?}");
    app.post_json(&format!("/v1/campaigns/{slow_id}/cancel"), &app.analyst, json!({})).await;
}

/// Issue 14 item 8: removing an allowlist entry stops the running campaigns to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_an_allowlist_entry_stops_its_campaigns() {
    let app = TestApp::new().await;
    let prompts: Vec<String> = (0..200).map(|i| format!("gone-{i}: question")).collect();
    let fake = FakeOpenAi::start(MODEL, answers(&prompts), vec![], 0);
    allow(&app, &fake.entry).await;
    let client = json!({"timeout_ms": 2000, "rate_per_sec": 10.0});
    let mut body = campaign_body(&fake, &prompts, client);
    body["batch"] = json!(2);
    body["concurrency"] = json!(1);
    let r = app.post_json("/v1/campaigns", &app.analyst, body).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    while fake.log().len() < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.delete(&format!("/v1/allowlist/{}", fake.entry), &app.admin).await.status, 204);
    let v = wait_done(&app, &id).await;
    let sent_at_stop = fake.log().len();
    assert_eq!(v["state"], "failed", "{v}");
    assert!(v["error"].as_str().unwrap().contains("removed from the allowlist"), "{v}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.log().len(), sent_at_stop, "nothing sent after the campaign stopped");
    assert!(sent_at_stop < 10, "{sent_at_stop} requests");
}

/// Issue 14 item 13: a finished job's upload is deleted (its results are in the store).
#[tokio::test]
async fn finished_jobs_leave_no_upload_behind() {
    let t = TestApp::new().await;
    let sus = t.create_suspect("cleanup").await;
    let body = format!("{}\n", json!({"text": common::sample_text(0)}));
    let r = t
        .raw(
            axum::http::Method::POST,
            &format!("/v1/jobs?suspect={sus}"),
            Some(&t.analyst),
            Some("application/x-ndjson"),
            body,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["job"]["id"].as_str().unwrap().to_string();
    assert_eq!(wait_job(&t, &id).await["state"], "done");
    let uploads = t.state.config.uploads_dir();
    let t0 = Instant::now();
    while std::fs::read_dir(&uploads).unwrap().count() > 0 {
        assert!(t0.elapsed() < Duration::from_secs(5), "upload kept after the job finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(job_results(&t, &id).await.len(), 1, "results stay downloadable");
}

/// Issue 14 item 9: 200 unauthenticated writes add one audit row (not 200), and old entries go
/// after the retention period.
#[tokio::test]
async fn failed_auth_is_aggregated_and_the_audit_log_has_a_retention() {
    let t = TestApp::new().await;
    for _ in 0..200 {
        t.raw(axum::http::Method::POST, "/v1/score", None, Some("application/json"), "{}")
            .await
            .expect_error(401);
    }
    t.state.audit.flush().await;
    let rows = t.get("/v1/audit?limit=1000", &t.admin).await.json();
    let unauth = rows["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"]["reason"] == "unauthenticated")
        .count();
    assert_eq!(unauth, 1, "{rows}");

    let old = server::store::AuditEntry {
        id: 0,
        at_ms: 1_000,
        key_id: None,
        role: None,
        action: "POST /v1/old".into(),
        target: "/v1/old".into(),
        detail: json!({}),
        status: 200,
    };
    t.state.store.append_audit(vec![old]).await.unwrap();
    server::audit::AuditSink::start_retention(t.state.store.clone(), 30);
    let t0 = Instant::now();
    loop {
        let rows = t.get("/v1/audit?limit=1000", &t.admin).await.text();
        if !rows.contains("/v1/old") {
            assert!(rows.contains("/v1/score"), "recent entries are kept");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "old entry kept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue 14 item 10: a failed audit upload's error names neither the server's upload path nor
/// a file-name hint the HTTP client cannot act on.
#[tokio::test]
async fn job_errors_do_not_show_server_paths() {
    let t = TestApp::new().await;
    let r = t
        .raw(
            axum::http::Method::POST,
            "/v1/jobs?kind=audit",
            Some(&t.analyst),
            Some("application/x-ndjson"),
            "not json at all\n",
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["job"]["id"].as_str().unwrap().to_string();
    let v = wait_job(&t, &id).await;
    assert_eq!(v["state"], "failed", "{v}");
    let err = v["error"].as_str().unwrap();
    let data = t.dir.path().display().to_string();
    assert!(
        !err.contains(&data) && !err.contains("uploads/") && !err.contains(".csv name"),
        "{err}"
    );
    assert!(err.contains("format=csv:COLUMN"), "{err}");
}
