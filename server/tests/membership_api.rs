//! The membership test over HTTP: served logs as a resource (upload in two formats, per-account
//! summary, answers, errors that name the line), `POST /v1/suspects/{id}/membership` for a
//! student, an independent suspect and fresh answers from "another snapshot", and served-log
//! campaigns against local replays of a student and of an independent model (the campaign stops
//! at the first look that decides; no probe is sent twice).

#[path = "common/answers.rs"]
mod answers;
mod common;
#[path = "common/fake_openai.rs"]
mod fake_openai;

use axum::http::{Method, StatusCode};
use common::TestApp;
use fake_openai::FakeOpenAi;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// 40 prompts served to `acct-1` and 5 to `acct-2`, as an OpenAI chat log.
fn served_log(rows: &[answers::Row]) -> String {
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let account = if i < 40 { "acct-1" } else { "acct-2" };
            json!({
                "request": {"model": "up-1", "user": account, "messages": [{"role": "user", "content": r.prompt}]},
                "response": {"id": format!("r{i}"), "created": 1_700_000_000 + i, "choices": [{"message": {"role": "assistant", "content": r.served}}]}
            })
            .to_string()
                + "\n"
        })
        .collect()
}

/// Fresh answers as AlpacaEval JSON; `shifted`: as from another snapshot (its own formatting).
fn fresh_log(rows: &[answers::Row], shifted: bool) -> String {
    let v: Vec<Value> = rows
        .iter()
        .map(|r| {
            let out = if shifted {
                format!("## Answer\n\n- {}\n\nIn summary, that is all.", r.fresh)
            } else {
                r.fresh.clone()
            };
            json!({"instruction": r.prompt, "output": out, "generator": "up-1"})
        })
        .collect();
    serde_json::to_string(&v).unwrap()
}

/// The student copied every other served answer (desensitized); the others are its own.
fn student(r: &answers::Row, i: usize) -> String {
    if i.is_multiple_of(2) {
        answers::copied(&r.served)
    } else {
        r.own.clone()
    }
}

async fn upload(app: &TestApp, query: &str, ct: &str, body: String) -> common::Resp {
    app.raw(Method::POST, &format!("/v1/served-logs{query}"), Some(&app.analyst), Some(ct), body)
        .await
}

async fn suspect_with(app: &TestApp, name: &str, answers: Vec<(String, String)>) -> String {
    let id = app.create_suspect(name).await;
    let samples: Vec<Value> =
        answers.into_iter().map(|(p, t)| json!({"prompt": p.to_uppercase(), "text": t})).collect();
    let r =
        app.post_json(&format!("/v1/suspects/{id}/samples"), &app.analyst, json!(samples)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    id
}

#[tokio::test]
async fn served_logs_and_the_membership_test_over_http() {
    let app = TestApp::new().await;
    let rows = answers::rows(45, 42);
    let r = upload(&app, "?name=acct%20log", "application/x-ndjson", served_log(&rows)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let served = r.json();
    let sid = served["id"].as_str().unwrap().to_string();
    assert_eq!((served["answers"].as_i64(), served["prompts"].as_i64()), (Some(45), Some(45)));
    assert_eq!(
        (served["kind"].as_str(), served["format"].as_str()),
        (Some("served"), Some("openai-chat"))
    );
    let acc = served["accounts"].as_array().unwrap();
    assert_eq!(acc[0]["account"], "acct-1");
    assert_eq!(
        (acc[0]["answers"].as_u64(), acc[0]["first_created"].as_u64()),
        (Some(40), Some(1_700_000_000))
    );
    assert_eq!((acc[1]["account"].as_str(), acc[1]["prompts"].as_u64()), (Some("acct-2"), Some(5)));

    let r = upload(&app, "?kind=fresh", "application/json", fresh_log(&rows, false)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let fid = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["format"], "alpaca-eval");
    let r = upload(&app, "?kind=fresh", "application/json", fresh_log(&rows, true)).await;
    let shifted = r.json()["id"].as_str().unwrap().to_string();

    // Listing, one log, its answers filtered by account (the viewer can read).
    let r = app.get("/v1/served-logs", &app.viewer).await;
    assert_eq!(r.json()["served_logs"].as_array().unwrap().len(), 3);
    let r = app
        .get(&format!("/v1/served-logs/{sid}/answers?account=acct-2&limit=3"), &app.viewer)
        .await;
    let a = r.json()["answers"].as_array().unwrap().clone();
    assert_eq!(a.len(), 3, "{}", r.text());
    assert_eq!((a[0]["seq"].as_i64(), a[0]["account"].as_str()), (Some(41), Some("acct-2")));
    assert_eq!(a[0]["prompt"], rows[40].prompt);

    let student_id = suspect_with(
        &app,
        "student",
        rows.iter().enumerate().map(|(i, r)| (r.prompt.clone(), student(r, i))).collect(),
    )
    .await;
    let own_id = suspect_with(
        &app,
        "independent",
        rows.iter().map(|r| (r.prompt.clone(), r.own.clone())).collect(),
    )
    .await;

    let test = |suspect: &str, fresh: &str, extra: Value| {
        let mut body = json!({"served_log": sid, "account": "acct-1", "fresh_logs": [fresh], "options": {"permutations": 999}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        (format!("/v1/suspects/{suspect}/membership"), body)
    };
    let (uri, body) = test(&student_id, &fid, json!({}));
    let r = app.post_json(&uri, &app.analyst, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let m = r.json();
    assert_eq!(m["decision"], "trained_on_served", "{m}");
    assert_eq!(m["prompts"], 40);
    assert!(m["p_value"].as_f64().unwrap() <= 0.01);
    let rep = &m["report"];
    assert!(
        rep["effect"].as_f64().unwrap() > 0.0 && rep["guard"]["p_value"].as_f64().unwrap() > 0.05
    );
    let ev = rep["evidence"].as_array().unwrap();
    let seg = &ev[0]["segments"][0];
    let texts = &rep["evidence_texts"][0];
    assert_eq!(texts["prompt"], ev[0]["prompt"]);
    // The spans point at the shared text in both answers (char offsets).
    let span = |t: &Value, s: &Value| -> String {
        let (a, b) = (s[0].as_u64().unwrap() as usize, s[1].as_u64().unwrap() as usize);
        t.as_str().unwrap().chars().skip(a).take(b - a).collect()
    };
    assert_eq!(span(&texts["suspect"], &seg["suspect"]), seg["text"].as_str().unwrap());
    assert_eq!(
        span(&texts["served"], &seg["served"]).to_lowercase(),
        seg["text"].as_str().unwrap()
    );
    let traj = rep["trajectory"].as_array().unwrap();
    assert_eq!(traj.last().unwrap()["prompts"], 40);
    assert_eq!(traj[0]["prompts"], 20);
    assert_eq!(rep["inputs"]["suspect_answers"], 45);

    let (uri, body) = test(&own_id, &fid, json!({}));
    let m = app.post_json(&uri, &app.analyst, body).await.json();
    assert_eq!(m["decision"], "not_detected", "{m}");
    let (uri, body) = test(&student_id, &shifted, json!({}));
    let m = app.post_json(&uri, &app.analyst, body).await.json();
    assert_eq!(m["decision"], "invalid", "{m}");
    assert!(m["report"]["reason"].as_str().unwrap().contains("not exchangeable"), "{m}");
    // A negative control (the independent suspect) passes, so the student is still flagged.
    let (uri, body) = test(&student_id, &fid, json!({"controls": [own_id]}));
    let m = app.post_json(&uri, &app.analyst, body).await.json();
    assert_eq!(m["decision"], "trained_on_served", "{m}");
    assert_eq!(m["report"]["controls"][0]["name"], own_id.as_str());

    let r = app.get(&format!("/v1/suspects/{student_id}/membership"), &app.viewer).await;
    assert_eq!(r.json()["results"].as_array().unwrap().len(), 3, "{}", r.text());
    assert_eq!(r.json()["results"][0]["report"]["controls"][0]["name"], own_id.as_str());
    // The verdict shows the latest membership result beside the style evidence.
    let v = app.get(&format!("/v1/suspects/{student_id}/verdict"), &app.viewer).await.json();
    assert_eq!(v["membership"]["decision"], "trained_on_served", "{v}");
    assert!(v["decision"].is_string());

    // Errors: each a 4xx with a JSON body that says what is wrong.
    let bad = [
        (json!({"account": "acct-2"}), 422, "at least 20"),
        (json!({"account": "nobody"}), 422, "acct-1, acct-2"),
        (json!({"fresh_logs": []}), 422, "fresh_logs"),
        (json!({"fresh_logs": [sid]}), 422, "cannot also be a fresh log"),
        (json!({"fresh_logs": ["srv_missing"]}), 404, "srv_missing"),
        (json!({"served_log": "srv_missing"}), 404, "srv_missing"),
        (json!({"options": {"alpha": 0.7}}), 422, "alpha"),
        (json!({"options": {"permutations": 5}}), 422, "permutations"),
        (json!({"options": {"alhpa": 0.01}}), 422, "alhpa"),
        (json!({"controls": [student_id]}), 422, "own negative control"),
        (json!({"controls": ["sus_missing"]}), 404, "sus_missing"),
    ];
    for (extra, status, needle) in bad {
        let (uri, body) = test(&student_id, &fid, extra.clone());
        let r = app.post_json(&uri, &app.analyst, body).await;
        assert_eq!(r.status.as_u16(), status, "{extra}: {}", r.text());
        assert!(r.text().contains(needle), "{extra}: {}", r.text());
    }
    let (uri, body) = test("sus_missing", &fid, json!({}));
    assert_eq!(app.post_json(&uri, &app.analyst, body.clone()).await.status, StatusCode::NOT_FOUND);
    let (uri, _) = test(&student_id, &fid, json!({}));
    assert_eq!(app.post_json(&uri, &app.viewer, body).await.status, StatusCode::FORBIDDEN);

    // Upload errors name the line, never the server's upload path.
    let body =
        "{\"prompt\": \"q\", \"response\": \"a\"}\n{\"response\": \"no prompt\"}\n".to_string();
    let r = upload(&app, "", "application/x-ndjson", body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let msg = r.expect_error(422);
    assert_eq!(msg, "invalid_input");
    assert!(
        r.text().contains(":2") && r.text().contains("prompt") && !r.text().contains("uploads"),
        "{}",
        r.text()
    );
    let r = upload(&app, "?kind=stale", "application/x-ndjson", "{}".into()).await;
    assert!(
        r.status == StatusCode::UNPROCESSABLE_ENTITY && r.text().contains("served"),
        "{}",
        r.text()
    );
    let r = upload(&app, "?format=xml", "application/x-ndjson", served_log(&rows)).await;
    assert!(
        r.status == StatusCode::UNPROCESSABLE_ENTITY && r.text().contains("format"),
        "{}",
        r.text()
    );
    let r = upload(&app, "", "application/x-ndjson", String::new()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let r = app
        .raw(
            Method::POST,
            "/v1/served-logs",
            Some(&app.viewer),
            Some("application/x-ndjson"),
            served_log(&rows),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let uploads = std::fs::read_dir(app.dir.path().join("uploads")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(uploads, 0, "every upload file was removed");

    // Deleting a log keeps the results that used it.
    assert_eq!(
        app.delete(&format!("/v1/served-logs/{sid}"), &app.analyst).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/v1/served-logs/{sid}"), &app.viewer).await.status,
        StatusCode::NOT_FOUND
    );
    let r = app.get(&format!("/v1/suspects/{student_id}/membership"), &app.viewer).await;
    assert_eq!(r.json()["results"].as_array().unwrap().len(), 3);
}

/// Campaigns whose probe set is a served log: the student is caught at the first look (20
/// probes of a budget of 40); the independent model answers all 40 and is `not_detected`; fresh
/// answers from another snapshot make it `invalid`. Every prompt reaches each endpoint once.
#[tokio::test]
async fn served_log_campaigns_stop_when_the_membership_test_decides() {
    let app = TestApp::new().await;
    let rows = answers::rows(45, 7);
    let r = upload(&app, "", "application/x-ndjson", served_log(&rows)).await;
    let sid = r.json()["id"].as_str().unwrap().to_string();
    let by_prompt = |f: &dyn Fn(usize, &answers::Row) -> String| -> HashMap<String, String> {
        rows.iter().enumerate().map(|(i, r)| (r.prompt.clone(), f(i, r))).collect()
    };
    let student_ep = FakeOpenAi::start("student-1", by_prompt(&|i, r| student(r, i)), vec![], 0);
    let own_ep = FakeOpenAi::start("indep-1", by_prompt(&|_, r| r.own.clone()), vec![], 0);
    let upstream = FakeOpenAi::start("up-1", by_prompt(&|_, r| r.fresh.clone()), vec![], 0);
    let other_snapshot = FakeOpenAi::start(
        "up-2",
        by_prompt(&|_, r| format!("## Answer\n\n- {}\n\nIn summary, that is all.", r.fresh)),
        vec![],
        0,
    );
    for e in [&student_ep, &own_ep, &upstream, &other_snapshot] {
        let r = app.post_json("/v1/allowlist", &app.admin, json!({"entry": e.entry})).await;
        assert!(r.status.is_success(), "{}", r.text());
    }
    let run = |ep: &FakeOpenAi, up: &FakeOpenAi, membership: Value| {
        json!({
            "endpoint": {"base_url": ep.base, "model": ep.replay.model},
            "upstream": {"base_url": up.base, "model": up.replay.model},
            "membership": membership,
            "budget": {"max_requests": 40},
            "batch": 10,
            "client": {"max_attempts": 1},
        })
    };
    let m = json!({"served_log": sid, "account": "acct-1"});
    let start = |body: Value| async {
        let r = app.post_json("/v1/campaigns", &app.analyst, body).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        app.wait_finished(&format!("/v1/campaigns/{id}"), Duration::from_secs(120)).await
    };

    let c = start(run(&student_ep, &upstream, m.clone())).await;
    let s = &c["summary"];
    assert_eq!(
        (c["state"].as_str(), s["decision"].as_str()),
        (Some("done"), Some("trained_on_served")),
        "{c}"
    );
    assert_eq!(
        (s["test"].as_str(), s["stop_reason"].as_str()),
        (Some("membership"), Some("decision"))
    );
    assert_eq!(s["probes_sent"], 20, "{c}");
    assert!(s["p_value"].as_f64().unwrap() < 0.01);
    assert!(
        student_ep.counts().values().all(|&n| n == 1)
            && upstream.counts().values().all(|&n| n == 1)
    );
    assert_eq!(student_ep.log().len(), 20);
    let suspect = c["suspect_id"].as_str().unwrap();
    let res = app.get(&format!("/v1/suspects/{suspect}/membership"), &app.viewer).await.json();
    let rec = &res["results"][0];
    assert_eq!(
        (rec["decision"].as_str(), rec["campaign_id"].as_str()),
        (Some("trained_on_served"), c["id"].as_str())
    );
    assert_eq!(rec["report"]["trajectory"][0]["prompts"], 20);
    assert!(!rec["report"]["evidence_texts"].as_array().unwrap().is_empty());

    let c = start(run(&own_ep, &upstream, m.clone())).await;
    let s = &c["summary"];
    assert_eq!(s["decision"], "not_detected", "{c}");
    assert_eq!((s["probes_sent"].as_i64(), s["looks"].as_i64()), (Some(40), Some(2)), "{c}");
    assert!(s["alpha_spent"].as_f64().unwrap() <= 0.01 + 1e-12);

    let c = start(run(&student_ep, &other_snapshot, m.clone())).await;
    assert_eq!(c["summary"]["decision"], "invalid", "{c}");

    // Two fresh answers per prompt: the upstream gets every prompt twice, under two keys.
    let m2 = json!({"served_log": sid, "account": "acct-1", "fresh_per_prompt": 2});
    let mut replay = testkit::replay::Replay::new("up-1", by_prompt(&|_, r| r.fresh.clone()));
    let mut gen = answers::Lcg(99);
    replay.variants =
        (0..45u64).map(|i| (answers::prompt(i), vec![answers::answer(&mut gen, i)])).collect();
    let up2 = FakeOpenAi::serve(replay);
    app.post_json("/v1/allowlist", &app.admin, json!({"entry": up2.entry})).await;
    let c = start(run(&student_ep, &up2, m2)).await;
    assert_eq!(c["summary"]["decision"], "trained_on_served", "{c}");
    assert!(up2.counts().values().all(|&n| n == 2), "{:?}", up2.counts());
    let keys: std::collections::HashSet<_> =
        up2.log().into_iter().filter_map(|l| l.idempotency_key).collect();
    assert_eq!(keys.len(), up2.log().len(), "each fresh request has its own idempotency key");

    // Bad campaign specs.
    let bad = [
        (json!({"served_log": sid, "fresh_per_prompt": 9}), "fresh_per_prompt"),
        (json!({"served_log": sid, "options": {"alpha": 0.05}}), "campaign's `alpha`"),
        (json!({"served_log": "srv_missing"}), "srv_missing"),
        (json!({"served_log": sid, "account": "nobody"}), "acct-1"),
        (json!({"served_log": sid, "extra": 1}), "extra"),
    ];
    for (m, needle) in bad {
        let r = app
            .post_json("/v1/campaigns", &app.analyst, run(&student_ep, &upstream, m.clone()))
            .await;
        assert!(r.status.is_client_error() && r.text().contains(needle), "{m}: {}", r.text());
    }
    let mut body = run(&student_ep, &upstream, m.clone());
    body.as_object_mut().unwrap().remove("upstream");
    let r = app.post_json("/v1/campaigns", &app.analyst, body).await;
    assert!(
        r.status == StatusCode::UNPROCESSABLE_ENTITY && r.text().contains("upstream"),
        "{}",
        r.text()
    );
}
