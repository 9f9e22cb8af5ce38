//! Probe campaigns against a local fault-injecting OpenAI-compatible server (port 0): faults end
//! every probe answered or failed, Retry-After is honoured, budgets stop the campaign, upstream
//! answers are stored, secrets never leak, off-allowlist targets are refused (HTTP and CLI), and
//! a kill -9 of the real binary mid-campaign followed by a re-run sends no probe twice.

mod common;
#[path = "common/fake_openai.rs"]
mod fake_openai;

use common::TestApp;
use fake_openai::FakeOpenAi;
use serde_json::json;
use server::service::campaigns::{self as campaign, Budget, CampaignSpec, EndpointSpec};
use server::service::engine::Engine;
use server::service::probe::client::ClientOptions;
use server::service::probe::probesets::Probe;
use server::store::{JobState, ProbeState, SqliteStore, Store};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::replay::Fault;

const MODEL: &str = "suspect-1";

fn answers(prompts: &[String]) -> HashMap<String, String> {
    prompts.iter().enumerate().map(|(i, p)| (p.clone(), common::sample_text(i))).collect()
}

fn probes(prompts: &[String]) -> Vec<Probe> {
    prompts
        .iter()
        .enumerate()
        .map(|(i, p)| Probe { id: format!("t{i}"), kind: "test".into(), prompt: p.clone() })
        .collect()
}

/// Fast retries, a 700 ms timeout, no rate limit to speak of.
fn client(stream: bool) -> ClientOptions {
    ClientOptions {
        timeout_ms: 700,
        max_attempts: 4,
        backoff_base_ms: 10,
        backoff_max_ms: 50,
        rate_per_sec: 500.0,
        stream,
        ..Default::default()
    }
}

fn spec(base: &str, budget: usize, stream: bool) -> CampaignSpec {
    CampaignSpec {
        endpoint: EndpointSpec {
            base_url: base.to_string(),
            model: MODEL.into(),
            api_key_secret: None,
        },
        upstream: None,
        probes: "custom".into(),
        budget: Budget { max_requests: budget, max_tokens: None },
        concurrency: 3,
        alpha: 0.01,
        batch: 4,
        max_consecutive_failures: 20,
        profile: None,
        client: client(stream),
        membership: None,
    }
}

struct Local {
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    _dir: tempfile::TempDir,
}

async fn local() -> Local {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("db.sqlite")).await.unwrap());
    let engine = Arc::new(Engine::with_default(2, common::default_profile().as_deref()));
    Local { store, engine, _dir: dir }
}

async fn run_local(
    l: &Local,
    spec: CampaignSpec,
    prompts: &[String],
    allow: &[&str],
) -> server::store::CampaignRecord {
    let c = campaign::create(l.store.as_ref(), &l.engine, spec, probes(prompts), None, None)
        .await
        .unwrap();
    run_to_end(l, &c.id, allow).await
}

/// Run (or resume) campaign `id` to its end, with `allow` as extra allowlist entries.
async fn run_to_end(l: &Local, id: &str, allow: &[&str]) -> server::store::CampaignRecord {
    let allow: HashSet<String> = allow.iter().map(|s| s.to_string()).collect();
    campaign::run(
        l.store.clone(),
        l.engine.clone(),
        id,
        &allow,
        Arc::new(AtomicBool::new(false)),
        None,
        &campaign::Lease { owner: "probe-test".into(), ms: 30_000 },
    )
    .await
    .unwrap()
}

/// Every fault of the bar, non-streaming and streaming: each probe ends answered or failed, with
/// the attempts the fake server actually saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_end_every_probe_answered_or_failed() {
    for stream in [false, true] {
        let mut prompts: Vec<String> = ["p-429", "p-500", "p-slow", "p-trunc", "p-drop", "p-400"]
            .iter()
            .map(|s| format!("{s}: tell me about rivers"))
            .collect();
        prompts.extend((0..6).map(|i| format!("plain question {i}")));
        let mut ans = answers(&prompts);
        ans.remove("plain question 5"); // unknown prompt: 404, not retried
        let fake = FakeOpenAi::start(
            MODEL,
            ans,
            vec![
                ("p-429", vec![Fault::RateLimit { retry_after_secs: 1 }]),
                ("p-500", vec![Fault::ServerError, Fault::ServerError]),
                ("p-slow", vec![Fault::Slow { ms: 3_000 }]),
                ("p-trunc", vec![Fault::TruncatedJson; 4]),
                ("p-drop", vec![Fault::Drop]),
                ("p-400", vec![Fault::BadRequest]),
            ],
            0,
        );
        let l = local().await;
        let c = run_local(&l, spec(&fake.base, 100, stream), &prompts, &[&fake.entry]).await;
        assert_eq!(c.state, JobState::Done, "{c:?}");
        assert_eq!(
            c.probes.pending + c.probes.in_flight,
            0,
            "every probe ends answered or failed: {:?}",
            c.probes
        );
        let ps = l.store.campaign_probes(&c.id, None, 0, 100).await.unwrap();
        let by: HashMap<&str, _> =
            ps.iter().map(|p| (p.prompt.split(':').next().unwrap(), p)).collect();
        let counts = fake.counts();
        for p in &ps {
            assert!(matches!(p.state, ProbeState::Answered | ProbeState::Failed), "{p:?}");
            assert_eq!(
                counts.get(&p.prompt).copied().unwrap_or(0) as i64,
                p.attempts,
                "attempts recorded = requests seen: {p:?}"
            );
        }
        let expect = [
            ("p-429", ProbeState::Answered, 2),
            ("p-500", ProbeState::Answered, 3),
            ("p-slow", ProbeState::Answered, 2),
            ("p-trunc", ProbeState::Failed, 4),
            ("p-drop", ProbeState::Answered, 2),
            ("p-400", ProbeState::Failed, 1),
            ("plain question 5", ProbeState::Failed, 1),
            ("plain question 0", ProbeState::Answered, 1),
        ];
        for (k, st, attempts) in expect {
            let p = by[k];
            assert_eq!((p.state, p.attempts), (st, attempts), "stream={stream} {k}: {p:?}");
        }
        assert!(
            by["p-trunc"].error.as_deref().unwrap().contains("malformed")
                || by["p-trunc"].error.as_deref().unwrap().contains("stream"),
            "{:?}",
            by["p-trunc"].error
        );
        assert!(by["p-slow"].answer.is_some());
        // Answers are the replayed texts, scored and stored as the suspect's samples.
        assert_eq!(by["plain question 0"].answer.as_deref(), Some(common::sample_text(6).as_str()));
        let suspect = l.store.get_suspect(&c.suspect_id).await.unwrap().unwrap();
        assert_eq!(suspect.samples, c.probes.answered);
        assert!(suspect.verdict.is_some(), "the suspect's verdict is refreshed");
        // Retry-After: 1 was honoured (backoff alone would retry after ≤ 50 ms).
        let log = fake.log();
        let t: Vec<i64> =
            log.iter().filter(|e| e.prompt.starts_with("p-429")).map(|e| e.at_ms).collect();
        assert!(
            t[1] - t[0] >= 950,
            "retry came {} ms after a 429 with Retry-After: 1",
            t[1] - t[0]
        );
        assert!(log.iter().all(|e| e.stream == stream));
        // Retries of one probe carry the same idempotency key; different probes different ones.
        let keys: HashSet<_> = log
            .iter()
            .filter(|e| e.prompt.starts_with("p-500"))
            .map(|e| e.idempotency_key.clone().unwrap())
            .collect();
        assert_eq!(keys.len(), 1);
        assert_eq!(c.stop_reason.as_deref(), Some("probes_exhausted"));
    }
}

/// A hostile endpoint: an error body holding U+0000 and a usage count of i64::MAX. On either
/// store the probe is recorded (failed, the NUL replaced; answered, tokens bounded) and the
/// campaign finishes and can be listed: PostgreSQL refused the NUL and overflowed the BIGINT sum,
/// failing the campaign; SQLite turned the sum into a REAL that no later read could decode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_error_text_and_token_counts_are_stored_on_both_stores() {
    let prompts: Vec<String> = ["p-nul", "p-huge-a", "p-huge-b", "plain"]
        .iter()
        .map(|s| format!("{s}: tell me about lakes"))
        .collect();
    let pg = common::pg::fresh_db().await;
    for on_pg in [false, true] {
        // A new endpoint each time: its faults are scripted per request count.
        let faults = vec![("p-nul", vec![Fault::NulBody]), ("p-huge", vec![Fault::HugeUsage])];
        let fake = FakeOpenAi::start(MODEL, answers(&prompts), faults, 0);
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = server::Config::with_data(dir.path());
        if on_pg {
            cfg.store.database_url = Some(server::config::DatabaseUrl::new(pg.url.clone()));
        }
        let l = Local {
            store: server::store::open(&cfg.store).await.unwrap(),
            engine: local().await.engine,
            _dir: dir,
        };
        let c = run_local(&l, spec(&fake.base, 100, false), &prompts, &[&fake.entry]).await;
        assert_eq!(c.state, JobState::Done, "pg={on_pg}: {c:?}");
        let ps = l.store.campaign_probes(&c.id, None, 0, 100).await.unwrap();
        let by: HashMap<&str, _> =
            ps.iter().map(|p| (p.prompt.split(':').next().unwrap(), p)).collect();
        assert_eq!(by["p-nul"].state, ProbeState::Failed);
        assert!(
            by["p-nul"].error.as_deref().unwrap().contains("bad\u{FFFD}request"),
            "{:?}",
            by["p-nul"].error
        );
        assert_eq!(by["p-huge-a"].state, ProbeState::Answered);
        assert!(by["p-huge-a"].tokens.unwrap() < i64::MAX / 4, "{:?}", by["p-huge-a"].tokens);
        let listed = l.store.list_campaigns(10, 0).await.unwrap();
        assert!(
            listed.iter().any(|x| x.id == c.id && x.tokens > 0 && x.tokens < i64::MAX / 2),
            "pg={on_pg}: {listed:?}"
        );
    }
}

/// The request budget stops the campaign; the upstream endpoint gets the same probes and its
/// answers are stored per probe; the summary names the stop reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_stops_the_campaign_and_upstream_answers_are_stored() {
    let prompts: Vec<String> = (0..12).map(|i| format!("budget question {i}")).collect();
    let fake = FakeOpenAi::start(MODEL, answers(&prompts), vec![], 0);
    let up_answers: HashMap<String, String> = prompts
        .iter()
        .map(|p| (p.clone(), format!("Certainly! Upstream answer to {p}.")))
        .collect();
    let upstream = FakeOpenAi::start("gpt-up", up_answers, vec![], 0);
    let l = local().await;
    let mut s = spec(&fake.base, 5, false);
    // A tiny α so that no look can decide: the budget must be what stops the campaign.
    s.alpha = 1e-9;
    s.upstream = Some(EndpointSpec {
        base_url: upstream.base.clone(),
        model: "gpt-up".into(),
        api_key_secret: None,
    });
    let c = run_local(&l, s, &prompts, &[&fake.entry, &upstream.entry]).await;
    assert_eq!(c.stop_reason.as_deref(), Some("budget_requests"));
    assert_eq!((c.probes.sent, c.probes.answered, c.probes.pending), (5, 5, 7));
    assert_eq!(fake.log().len(), 5, "no request beyond the budget");
    assert_eq!(upstream.log().len(), 5);
    assert_eq!(c.probes.upstream_answered, 5);
    let ps = l.store.campaign_probes(&c.id, Some(ProbeState::Answered), 0, 100).await.unwrap();
    assert!(ps.iter().all(|p| p.upstream_answer.as_deref()
        == Some(format!("Certainly! Upstream answer to {}.", p.prompt).as_str())));
    let sum = campaign::summary(l.store.as_ref(), &c).await.unwrap();
    assert_eq!(sum["probes_sent"], 5);
    assert_eq!(sum["stop_reason"], "budget_requests");
    // A style campaign is triage: undecided, with the suspect's rank among the references.
    assert_eq!(sum["decision"], "undecided", "{sum}");
    assert_eq!(sum["style"]["decision"], "undecided", "{sum}");
    let triage = &sum["style"]["triage"];
    let k = triage["reference_models"].as_u64().expect("triage after the campaign");
    assert!((1..=k + 1).contains(&triage["rank"].as_u64().unwrap()), "{sum}");
    let min_p = triage["min_p_value"].as_f64().unwrap();
    assert!((min_p - 1.0 / (k as f64 + 1.0)).abs() < 1e-12, "{sum}");
    assert!(sum["looks"].as_u64().unwrap() >= 1, "a final look is always made: {sum}");
    assert!(sum["p_value"].as_f64().is_some());
    // The token budget: replayed usage is ~20 tokens an answer, so 30 tokens end it after the
    // first batch of 4.
    let l2 = local().await;
    let mut s = spec(&fake.base, 100, false);
    s.alpha = 1e-9;
    s.budget.max_tokens = Some(30);
    let before = fake.log().len();
    let c2 = run_local(&l2, s, &prompts, &[&fake.entry]).await;
    assert_eq!(c2.stop_reason.as_deref(), Some("budget_tokens"), "{c2:?}");
    assert_eq!((c2.probes.sent, fake.log().len() - before), (4, 4));
    assert!(c2.tokens >= 30);
    // Re-running a finished campaign sends nothing.
    let n = fake.log().len();
    let again = run_to_end(&l, &c.id, &[]).await;
    assert_eq!(again.probes.sent, 5);
    assert_eq!(fake.log().len(), n);
}

/// Explicit self-identification in answers becomes evidence attributed to families; generic
/// disclaimers are cues, counted by kind and never attributed (SmolLM2's "As an AI product,
/// they're currently working on …" was once reported as an OpenAI claim).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_claims_are_attributed_to_families() {
    let qa = [
        ("Who made you?", "I was developed by OpenAI."),
        ("What model are you?", "I am ChatGPT, a large language model."),
        ("你是谁开发的？", "我是由OpenAI开发的人工智能助手。"),
        ("Which base model are you built on?", "I'm based on Claude."),
        ("Who created you?", "As an AI language model, I don't have a creator."),
        ("What company are you from?", "As an AI product, they're currently working on it."),
        ("Write a haiku about rain.", "I am ChatGPT. Rain falls on the roof."),
    ];
    let prompts: Vec<String> = qa.iter().map(|(q, _)| q.to_string()).collect();
    let ans: HashMap<String, String> =
        qa.iter().map(|(q, a)| (q.to_string(), a.to_string())).collect();
    // The first six are identity probes; the haiku is a general one (it counts towards the
    // claims, not towards the rate per identity probe).
    let probes: Vec<Probe> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| Probe {
            id: format!("t{i}"),
            kind: if i < 6 { "identity" } else { "general" }.into(),
            prompt: p.clone(),
        })
        .collect();
    let fake = FakeOpenAi::start(MODEL, ans, vec![], 0);
    let l = local().await;
    let spec = spec(&fake.base, 10, false);
    let c = campaign::create(l.store.as_ref(), &l.engine, spec, probes, None, None).await.unwrap();
    let c = run_to_end(&l, &c.id, &[fake.entry.as_str()]).await;
    assert_eq!(c.probes.answered, 7);
    let sum = campaign::summary(l.store.as_ref(), &c).await.unwrap();
    // Explicit claims only: the two disclaimers add nothing to OpenAI.
    assert_eq!(sum["identity_claims"], json!({"openai": 4, "anthropic": 1}), "{sum}");
    let id = &sum["identity"];
    assert_eq!(id["explicit_claims"], sum["identity_claims"], "{sum}");
    assert_eq!(id["cues"], json!({"ai_disclaimer": 2}), "{sum}");
    assert_eq!(id["identity_probes_answered"], 6, "{sum}");
    assert_eq!(id["answers_with_explicit_claim"], 4, "{sum}");
    assert!((id["explicit_rate"].as_f64().unwrap() - 4.0 / 6.0).abs() < 1e-12, "{sum}");
    let examples = id["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 3, "{sum}");
    let first = examples
        .iter()
        .find(|e| e["prompt"] == "Who made you?")
        .unwrap_or_else(|| panic!("an example of the first claim: {sum}"));
    assert_eq!(
        (&first["text"], &first["family"], &first["kind"]),
        (&json!("developed by OpenAI"), &json!("openai"), &json!("creator"))
    );
    assert!(id["summary"].as_str().unwrap().contains("not a decision"), "{sum}");
    // Shown first: the identity block opens the summary's JSON.
    assert!(sum.to_string().starts_with(r#"{"identity":{"#), "{sum}");
    let ps = l.store.campaign_probes(&c.id, None, 0, 10).await.unwrap();
    let claim = &ps[0].claims.as_ref().unwrap()[0];
    assert_eq!(
        (claim["family"].as_str(), claim["kind"].as_str(), claim["class"].as_str()),
        (Some("openai"), Some("creator"), Some("explicit"))
    );
    assert_eq!(claim["span"], json!([6, 25]), "spans locate the claim in the answer");
    let cue = &ps[4].claims.as_ref().unwrap()[0];
    assert_eq!((cue["family"].as_str(), cue["class"].as_str()), (Some("unknown"), Some("cue")));
}

async fn wait_done(app: &TestApp, id: &str) -> serde_json::Value {
    app.wait_finished(&format!("/v1/campaigns/{id}"), Duration::from_secs(120)).await
}

/// Over HTTP: an off-allowlist target is refused with 403 + JSON; only admins manage the
/// allowlist and secrets; the API key reaches the endpoint but no response ever contains it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_campaigns_allowlist_and_secrets() {
    const SECRET: &str = "sk-test-7f3a9c-never-show-me";
    let app = TestApp::new().await;
    let prompts: Vec<String> = (0..6).map(|i| format!("http question {i}")).collect();
    let fake = FakeOpenAi::start(MODEL, answers(&prompts), vec![], 0);
    let body = json!({
        "endpoint": {"base_url": fake.base, "model": MODEL, "api_key_secret": "suspect_key"},
        "probe_list": prompts.iter().map(|p| json!({"prompt": p})).collect::<Vec<_>>(),
        "budget": {"max_requests": 6},
        "batch": 3,
        "client": {"timeout_ms": 2000, "backoff_base_ms": 10, "rate_per_sec": 100.0}
    });
    let r = app.post_json("/v1/campaigns", &app.analyst, body.clone()).await;
    assert_eq!(r.expect_error(403), "target_not_allowed");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains(&fake.entry));
    assert!(fake.log().is_empty(), "nothing was sent to a refused target");
    // Only admins manage the allowlist and secrets.
    app.post_json("/v1/allowlist", &app.analyst, json!({"entry": fake.entry}))
        .await
        .expect_error(403);
    app.post_json("/v1/secrets", &app.analyst, json!({"name": "suspect_key", "value": SECRET}))
        .await
        .expect_error(403);
    app.post_json("/v1/allowlist", &app.admin, json!({"entry": "no-port.example"}))
        .await
        .expect_error(422);
    let r = app
        .post_json("/v1/allowlist", &app.admin, json!({"entry": fake.entry, "note": "test replay"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The secret is not set yet: the campaign is refused with a clear message.
    let r = app.post_json("/v1/campaigns", &app.analyst, body.clone()).await;
    assert!(
        r.expect_error(422) == "invalid_input" && r.text().contains("PEDIGREE_SECRET_SUSPECT_KEY"),
        "{}",
        r.text()
    );
    let r = app
        .post_json(
            "/v1/secrets",
            &app.admin,
            json!({"name": "suspect_key", "value": SECRET, "hosts": [fake.entry]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = app.post_json("/v1/campaigns", &app.analyst, body).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let v = wait_done(&app, &id).await;
    assert_eq!(v["state"], "done", "{v}");
    assert_eq!(v["probes"]["answered"], 6);
    assert_eq!(v["summary"]["probes_sent"], 6);
    assert!(v["stop_reason"].is_string());
    let probes = app.get(&format!("/v1/campaigns/{id}/probes?state=answered"), &app.viewer).await;
    assert_eq!(probes.json()["probes"].as_array().unwrap().len(), 6);
    app.get(&format!("/v1/campaigns/{id}/probes?state=bogus"), &app.viewer).await.expect_error(422);
    // The answers are the suspect's samples; its verdict includes them.
    let sus = v["suspect_id"].as_str().unwrap();
    let verdict = app.get(&format!("/v1/suspects/{sus}/verdict"), &app.viewer).await.json();
    assert_eq!(verdict["n"], 6);
    // The key reached the endpoint…
    assert!(fake
        .log()
        .iter()
        .all(|e| e.authorization.as_deref() == Some(&format!("Bearer {SECRET}"))));
    // …and appears in no response.
    let mut seen = String::new();
    for uri in [
        "/v1/campaigns",
        &format!("/v1/campaigns/{id}"),
        &format!("/v1/campaigns/{id}/probes"),
        "/v1/secrets",
        "/v1/audit",
        "/v1/allowlist",
    ] {
        let r = app.get(uri, &app.admin).await;
        assert_eq!(r.status, 200, "{uri}: {}", r.text());
        seen.push_str(&r.text());
    }
    assert!(seen.contains("suspect_key") && !seen.contains(SECRET), "secret value leaked");
    app.post_json(&format!("/v1/campaigns/{id}/cancel"), &app.analyst, json!({}))
        .await
        .expect_error(409);
    let doc = app
        .raw(
            axum::http::Method::GET,
            "/api-docs/openapi.json",
            None,
            None,
            axum::body::Body::empty(),
        )
        .await
        .text();
    for path in ["/v1/campaigns/{id}/probes", "/v1/allowlist", "/v1/secrets/{name}"] {
        assert!(doc.contains(path), "OpenAPI lacks {path}");
    }
    assert_eq!(app.delete(&format!("/v1/allowlist/{}", fake.entry), &app.admin).await.status, 204);
    assert_eq!(app.delete("/v1/secrets/suspect_key", &app.admin).await.status, 204);
}

fn probe_cmd(
    data: &std::path::Path,
    fake: &FakeOpenAi,
    probes_file: &std::path::Path,
    extra: &[&str],
) -> std::process::Command {
    let mut cmd = std::process::Command::new(common::proc::BIN);
    cmd.args([
        "probe",
        "--endpoint",
        &fake.base,
        "--model",
        MODEL,
        "--budget",
        "40",
        "--batch",
        "5",
        "--concurrency",
        "2",
        "--rate",
        "100",
        "--backoff-ms",
        "10",
    ])
    .arg("--data")
    .arg(data)
    .arg("--probes")
    .arg(probes_file)
    .args(extra)
    .env("RUST_LOG", "warn");
    if let Some(p) = common::default_profile() {
        cmd.env("PEDIGREE_DEFAULT_PROFILE", p);
    }
    cmd
}

fn write_probes(dir: &std::path::Path, prompts: &[String]) -> std::path::PathBuf {
    let path = dir.join("probes.jsonl");
    let text: String = prompts.iter().map(|p| json!({"prompt": p}).to_string() + "\n").collect();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn cli_refuses_a_target_off_the_allowlist() {
    let dir = tempfile::tempdir().unwrap();
    let prompts: Vec<String> = (0..3).map(|i| format!("q{i}")).collect();
    let fake = FakeOpenAi::start(MODEL, answers(&prompts), vec![], 0);
    let file = write_probes(dir.path(), &prompts);
    let out = probe_cmd(&dir.path().join("data"), &fake, &file, &[]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not on the allowlist") && err.contains(&format!("--allow {}", fake.entry)),
        "{err}"
    );
    // Allowing another port does not help either.
    let out = probe_cmd(&dir.path().join("data"), &fake, &file, &["--allow", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(fake.log().is_empty(), "no request reached a refused target");
}

/// kill -9 the real binary mid-campaign, re-run the same command: it resumes, and the fake
/// server's log shows no probe sent twice. The summary is the last line of stdout.
#[test]
fn cli_campaign_survives_kill_9_without_sending_a_probe_twice() {
    cli_campaign_kill_9(&[]);
}

/// The same on PostgreSQL (`pedigree probe --database-url`).
#[test]
fn cli_campaign_survives_kill_9_on_postgres() {
    let db = tokio::runtime::Runtime::new().unwrap().block_on(common::pg::fresh_db());
    let dir = cli_campaign_kill_9(&["--database-url", &db.url]);
    assert!(
        !dir.path().join("data/pedigree.sqlite").exists(),
        "the campaign ran on PostgreSQL, not SQLite"
    );
}

/// `store_args` select the store; returns the temporary directory (`data/` is the data directory).
fn cli_campaign_kill_9(store_args: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let prompts: Vec<String> = (0..40).map(|i| format!("resume question {i}")).collect();
    // 150 ms per answer so that the kill lands mid-campaign.
    let fake = FakeOpenAi::start(MODEL, answers(&prompts), vec![], 150);
    let file = write_probes(dir.path(), &prompts);
    let allow = [&["--allow", fake.entry.as_str()], store_args].concat();
    let mut child = probe_cmd(&data, &fake, &file, &allow)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while fake.log().len() < 8 {
        assert!(t0.elapsed() < Duration::from_secs(120), "campaign made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "campaign ended before the kill; slow it down"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = fake.log().len();
    assert!(before < 40);
    let out = probe_cmd(&data, &fake, &file, &allow).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("resuming campaign"));
    for k in ["decision", "teacher", "p_value", "probes_sent", "probes_failed", "stop_reason"] {
        assert!(summary.get(k).is_some(), "summary lacks {k}: {summary}");
    }
    let counts = fake.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "probes sent twice: {twice:?}");
    let sent = summary["probes_sent"].as_u64().unwrap() as usize;
    let (answered, failed) = (
        summary["probes_answered"].as_u64().unwrap() as usize,
        summary["probes_failed"].as_u64().unwrap() as usize,
    );
    assert_eq!(answered + failed, sent, "every sent probe ended answered or failed: {summary}");
    assert!(
        fake.log().len() <= sent && fake.log().len() > before,
        "the second run continued where the first stopped"
    );
    // Probes in flight at the kill were recorded as failed, not re-sent.
    assert!(failed <= 2, "at most `concurrency` probes were in flight: {summary}");
    // A third run reports the finished campaign and sends nothing.
    let n = fake.log().len();
    let out = probe_cmd(&data, &fake, &file, &allow).output().unwrap();
    assert!(out.status.success());
    assert_eq!(fake.log().len(), n);
    dir
}

/// Replays of the bench's independent models (`../shared/datasets/alpaca-eval-dev`, test prompts,
/// built-in profile): none may be flagged "distilled" and none called "independent" — style
/// evidence is triage, so a style campaign never stops on a decision: it sends its whole budget
/// and reports the suspect's rank among the known independent models. Skipped without the bench
/// or the built-in profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_independent_models_are_never_decided_and_run_to_budget() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/datasets/alpaca-eval-dev");
    if !dir.exists() || common::default_profile().is_some() {
        eprintln!(
            "NOTE: skipping: needs ../shared/datasets/alpaca-eval-dev and the built-in profile"
        );
        return;
    }
    let bench = datasets::BenchDir::load(&dir).unwrap();
    for model in ["claude-2.1", "Meta-Llama-3-8B-Instruct", "guanaco-7b", "humpback-llama2-70b"] {
        let replay = testkit::replay::Replay::from_bench(&dir, model).unwrap();
        let fake = FakeOpenAi::start(model, replay.answers.clone(), vec![], 0);
        let prompts: Vec<String> = bench
            .samples_for(model, datasets::Split::Test)
            .iter()
            .map(|s| s.prompt.clone())
            .collect();
        let l = local().await;
        // A budget below the probe count: the budget, not a decision, must end the campaign.
        let budget = (prompts.len() * 3 / 4).max(1);
        let mut s = spec(&fake.base, budget, false);
        s.endpoint.model = model.to_string();
        s.batch = 10;
        let c = run_local(&l, s, &prompts, &[&fake.entry]).await;
        let sum = campaign::summary(l.store.as_ref(), &c).await.unwrap();
        eprintln!("{model}: {sum}");
        assert_eq!(sum["decision"], "undecided", "style decided on {model}: {sum}");
        assert_eq!(sum["stop_reason"], "budget_requests", "{model}: {sum}");
        assert_eq!(c.probes.sent, budget as i64, "{sum}");
        assert_eq!(c.probes.failed, 0);
        let triage = &sum["style"]["triage"];
        assert!(triage["percentile"].as_f64().is_some_and(|p| (0.0..=1.0).contains(&p)), "{sum}");
        assert!(triage["summary"].as_str().unwrap().contains("membership test"), "{sum}");
    }
}

/// The HTTP service resumes unfinished campaigns when it starts: a probe left `sent` by a crash
/// is recorded as failed and never requested, the others are sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_start_resumes_campaigns_at_most_once() {
    let dir = tempfile::tempdir().unwrap();
    let prompts: Vec<String> = (0..6).map(|i| format!("restart question {i}")).collect();
    let fake = FakeOpenAi::start(MODEL, answers(&prompts), vec![], 0);
    let mut cfg = server::Config::with_data(dir.path());
    cfg.default_profile = common::default_profile();
    let id = {
        // A campaign whose probe 1 was in flight when the process died.
        let store = SqliteStore::open(&cfg.db_path()).await.unwrap();
        let engine = Engine::with_default(1, cfg.default_profile.as_deref());
        store
            .add_allowlist(server::store::AllowEntry {
                entry: fake.entry.clone(),
                note: String::new(),
                created_by: None,
                created_ms: 0,
                max_rate_per_sec: None,
            })
            .await
            .unwrap();
        let c = campaign::create(
            &store,
            &engine,
            spec(&fake.base, 10, false),
            probes(&prompts),
            None,
            None,
        )
        .await
        .unwrap();
        assert!(store.mark_probe_sent(&c.id, 1, None).await.unwrap());
        store.close().await;
        c.id
    };
    let state = server::AppState::open(cfg).await.unwrap();
    let t0 = Instant::now();
    let c = loop {
        let c = state.store.get_campaign(&id).await.unwrap().unwrap();
        if c.state.is_terminal() {
            break c;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "campaign not resumed: {c:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((c.state, c.probes.answered, c.probes.failed), (JobState::Done, 5, 1), "{c:?}");
    let failed = state.store.campaign_probes(&id, Some(ProbeState::Failed), 0, 10).await.unwrap();
    assert_eq!(failed[0].seq, 1);
    assert!(failed[0].error.as_deref().unwrap().contains("not re-sent"));
    assert_eq!(fake.replay.requests_for(&prompts[0]), 0, "the in-flight probe was not re-sent");
    assert!(fake.counts().values().all(|&n| n == 1));
}

/// Answers can go to an existing suspect: they join its samples and its verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_join_an_existing_suspect() {
    let prompts: Vec<String> = (0..3).map(|i| format!("existing suspect question {i}")).collect();
    let fake = FakeOpenAi::start(MODEL, answers(&prompts), vec![], 0);
    let l = local().await;
    let (profile, _) = l.engine.resolve(None).unwrap();
    l.store.create_suspect("sus_known", "known", "", &profile).await.unwrap();
    let sample = server::store::NewSample {
        content_hash: "h0".into(),
        text: "an earlier sample".into(),
        prompt: None,
        source: "t".into(),
        score: None,
    };
    l.store.add_samples("sus_known", vec![sample]).await.unwrap();
    let c = campaign::create(
        l.store.as_ref(),
        &l.engine,
        spec(&fake.base, 10, false),
        probes(&prompts),
        Some("sus_known".into()),
        None,
    )
    .await
    .unwrap();
    assert_eq!(c.suspect_id, "sus_known");
    assert_eq!(c.spec["profile"], profile.as_str(), "scored with the suspect's profile");
    let c = run_to_end(&l, &c.id, &[fake.entry.as_str()]).await;
    assert_eq!(c.probes.answered, 3);
    assert_eq!(l.store.get_suspect("sus_known").await.unwrap().unwrap().samples, 4);
    let missing = campaign::create(
        l.store.as_ref(),
        &l.engine,
        spec(&fake.base, 10, false),
        probes(&prompts),
        Some("sus_nope".into()),
        None,
    )
    .await;
    assert!(matches!(missing, Err(server::service::ServiceError::NotFound(_))));
}
