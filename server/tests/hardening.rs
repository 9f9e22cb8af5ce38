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
    let t0 = Instant::now();
    loop {
        let v = app.get(&format!("/v1/campaigns/{id}"), &app.viewer).await.json();
        if ["done", "failed", "cancelled"].contains(&v["state"].as_str().unwrap()) {
            return v;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "campaign did not finish: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    st.campaigns.spawn(id.clone());
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
