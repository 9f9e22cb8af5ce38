//! `audit` jobs over HTTP: upload a corpus, poll to completion, read the summary.

mod common;

use axum::http::Method;
use common::TestApp;
use serde_json::json;
use std::time::{Duration, Instant};

const ND: Option<&str> = Some("application/x-ndjson");

/// A few dozen short texts: half in the upstream's ("openai") house style, half casual.
fn corpus() -> String {
    let topics =
        ["gardening", "tax forms", "bread", "chess", "rust lifetimes", "sleep", "bikes", "tea"];
    let mut s = String::new();
    for i in 0..40 {
        let t = topics[i % topics.len()];
        let text = if i % 2 == 0 {
            format!("Certainly! Let's delve into {t}. Overall, it's important to note that consistency matters ({i}).")
        } else {
            format!("honestly {t} is whatever, i just wing it most days lol ({i})")
        };
        s.push_str(&json!({"id": i, "text": text}).to_string());
        s.push('\n');
    }
    s
}

async fn wait_done(t: &TestApp, id: &str) -> serde_json::Value {
    let t0 = Instant::now();
    loop {
        let r = t.get(&format!("/v1/jobs/{id}"), &t.viewer).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        match v["state"].as_str().unwrap() {
            "done" => return v,
            "queued" | "running" => {}
            other => panic!("audit job ended {other}: {v}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "audit job did not finish: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn check_summary(s: &serde_json::Value, texts: u64) {
    assert_eq!(s["texts"], texts, "{s}");
    // Every profile family has a fraction inside its interval; the upstream is one of them.
    let profile = match common::default_profile() {
        Some(p) => detector::Profile::load(&p).unwrap(),
        None => detector::Profile::builtin().unwrap(),
    };
    let fams = s["families"].as_object().expect("families");
    let mut names: Vec<&String> = fams.keys().collect();
    names.sort();
    let mut want: Vec<&String> = profile.families().iter().collect();
    want.sort();
    assert_eq!(names, want, "{s}");
    assert_eq!(s["upstream"], profile.upstream(), "{s}");
    for (name, fam) in fams {
        let f = fam["fraction"].as_f64().unwrap_or_else(|| panic!("{name}: no fraction: {s}"));
        let lo = fam["ci95"][0].as_f64().unwrap();
        let hi = fam["ci95"][1].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&f), "{s}");
        assert!(lo <= f && f <= hi, "{name}: ci95 [{lo}, {hi}] does not contain {f}");
        assert!(
            fam["calibrated_models"].is_u64() && fam["identified"].is_boolean(),
            "{name}: {fam}"
        );
        if fam["identified"] == false {
            assert_eq!(hi, 1.0, "an uncalibrated family's interval reaches 1: {name}: {fam}");
        }
    }
    let top = s["top_texts"].as_array().expect("top_texts");
    assert!(!top.is_empty() && top[0]["text"].is_string(), "{s}");
    for t in top {
        // The server's upload path is not shown; such texts are attributed to the job.
        assert!(t["source"].as_str().is_some_and(|src| src.starts_with("job:")), "{t}");
    }
}

#[tokio::test]
async fn audit_job_runs_to_a_summary() {
    let t = TestApp::new().await;
    let r = t.raw(Method::POST, "/v1/jobs?kind=audit", Some(&t.analyst), ND, corpus()).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let job = r.json()["job"].clone();
    assert_eq!(job["kind"], "audit");
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(r.headers["location"], format!("/v1/jobs/{id}"));

    let v = wait_done(&t, &id).await;
    assert_eq!(v["progress"], 1.0, "{v}");
    assert_eq!(v["done"], 40, "texts scored: {v}");
    let summary = &v["result"];
    check_summary(summary, 40);
    // With the built-in profile the upstream family is `openai` (as the brief's example says).
    if common::default_profile().is_none() {
        assert!(summary["families"]["openai"]["fraction"].is_f64(), "{summary}");
    }

    // The same summary through the results endpoint (JSONL: one line; JSON page: line 1).
    let r = t.get(&format!("/v1/jobs/{id}/results"), &t.viewer).await;
    assert_eq!(r.status, 200);
    let lines: Vec<serde_json::Value> =
        r.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{}", r.text());
    check_summary(&lines[0], 40);
    let r = t.get(&format!("/v1/jobs/{id}/results?format=json"), &t.viewer).await;
    let page = r.json();
    assert_eq!(page["results"][0]["line_no"], 1);
    assert_eq!(page["results"][0]["result"], *summary);

    // Listed among the jobs; a finished job cannot be cancelled.
    let jobs = t.get("/v1/jobs", &t.viewer).await.json();
    assert!(jobs["jobs"].as_array().unwrap().iter().any(|j| j["id"] == id.as_str()));
    t.raw(Method::POST, &format!("/v1/jobs/{id}/cancel"), Some(&t.analyst), None, "")
        .await
        .expect_error(409);
}

/// An audit cut into parts (4 KiB, run side by side) merges its parts' statistics into exactly
/// the summary of the same audit run whole: every family's fraction, interval and method, the
/// counts (a malformed record and an empty text in some part) and the evidence.
#[tokio::test]
async fn an_audit_in_parts_merges_into_the_whole_audit() {
    let mut body = String::new();
    for k in 0..12 {
        body.push_str(&corpus().replace("\"id\":", &format!("\"batch\":{k},\"id\":")));
        body.push_str(if k == 3 { "{broken\n" } else { "{\"text\": \"  \"}\n" });
    }
    let mut summaries = Vec::new();
    for part_bytes in [None, Some(4096)] {
        let t = TestApp::with_parts(part_bytes).await;
        let r =
            t.raw(Method::POST, "/v1/jobs?kind=audit", Some(&t.analyst), ND, body.clone()).await;
        assert_eq!(r.status, 202, "{}", r.text());
        let id = r.json()["job"]["id"].as_str().unwrap().to_string();
        let v = wait_done(&t, &id).await;
        let parts = v["parts"].as_u64().unwrap();
        assert_eq!(parts > 1, part_bytes.is_some(), "{v}");
        assert_eq!((v["done"].as_u64(), v["progress"].as_f64()), (Some(480), Some(1.0)), "{v}");
        check_summary(&v["result"], 480);
        summaries.push(v["result"].clone());
    }
    assert_eq!(
        (summaries[0]["skipped_records"].as_u64(), summaries[0]["empty_texts"].as_u64()),
        (Some(1), Some(11))
    );
    let comparable = common::audit_summary_sans_timings;
    let (whole, parts) = (comparable(&summaries[0]), comparable(&summaries[1]));
    assert!(whole == parts, "parts merged into another summary:\n{whole:#}\n{parts:#}");
}

#[tokio::test]
async fn audit_job_with_sample_and_explicit_format() {
    let t = TestApp::new().await;
    let r = t
        .raw(
            Method::POST,
            "/v1/jobs?kind=audit&format=jsonl&sample=25&seed=7",
            Some(&t.analyst),
            ND,
            corpus(),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["job"]["id"].as_str().unwrap().to_string();
    let v = wait_done(&t, &id).await;
    let s = &v["result"];
    check_summary(s, 40);
    assert_eq!(s["sampled"], true);
    assert_eq!(s["estimated_from"], 25, "{s}");
    assert_eq!(v["params"]["sample"], 25);
    assert_eq!(v["params"]["seed"], 7);
}

#[tokio::test]
async fn audit_job_errors() {
    let t = TestApp::new().await;
    // viewer: forbidden before the body is read
    let r = t.raw(Method::POST, "/v1/jobs?kind=audit", Some(&t.viewer), ND, corpus()).await;
    assert_eq!(r.expect_error(403), "forbidden");
    // bad parameters: JSON 4xx errors
    let r =
        t.raw(Method::POST, "/v1/jobs?kind=audit&sample=abc", Some(&t.analyst), ND, corpus()).await;
    assert!([400, 422].contains(&r.status.as_u16()), "{}", r.text());
    r.expect_error(r.status.as_u16());
    t.raw(Method::POST, "/v1/jobs?kind=audit&sample=0", Some(&t.analyst), ND, corpus())
        .await
        .expect_error(422);
    t.raw(Method::POST, "/v1/jobs?kind=audit&format=parquet", Some(&t.analyst), ND, corpus())
        .await
        .expect_error(422);
    t.raw(Method::POST, "/v1/jobs?kind=audit&profile=nope", Some(&t.analyst), ND, corpus())
        .await
        .expect_error(404);
    t.raw(Method::POST, "/v1/jobs?kind=audit", Some(&t.analyst), ND, "").await.expect_error(422);
    // A corpus with no usable texts: the job fails with a message (no summary).
    let r = t
        .raw(
            Method::POST,
            "/v1/jobs?kind=audit&format=jsonl",
            Some(&t.analyst),
            ND,
            "{\"text\": \"   \"}\n",
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["job"]["id"].as_str().unwrap().to_string();
    let t0 = Instant::now();
    let v = loop {
        let v = t.get(&format!("/v1/jobs/{id}"), &t.viewer).await.json();
        if v["state"] == "failed" {
            break v;
        }
        assert_ne!(v["state"], "done", "{v}");
        assert!(t0.elapsed() < Duration::from_secs(60), "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(v["error"].as_str().unwrap().contains("no texts"), "{v}");
    assert!(v.get("result").is_none());
}

#[tokio::test]
async fn audit_job_can_be_cancelled() {
    // One job slot, filled by a first (larger) audit, so the second one is still queued.
    let t = TestApp::with(|c| c.max_jobs = 1).await;
    let mut big = String::new();
    for _ in 0..200 {
        big.push_str(&corpus());
    }
    let r = t.raw(Method::POST, "/v1/jobs?kind=audit", Some(&t.analyst), ND, big).await;
    let first = r.json()["job"]["id"].as_str().unwrap().to_string();
    let r = t.raw(Method::POST, "/v1/jobs?kind=audit", Some(&t.analyst), ND, corpus()).await;
    let second = r.json()["job"]["id"].as_str().unwrap().to_string();
    for id in [&second, &first] {
        let r =
            t.raw(Method::POST, &format!("/v1/jobs/{id}/cancel"), Some(&t.analyst), None, "").await;
        if r.status == 409 {
            continue; // the first one may already have finished on a fast machine
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["state"], "cancelled");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = t.get(&format!("/v1/jobs/{second}"), &t.viewer).await.json();
    assert_eq!(v["state"], "cancelled", "{v}");
    assert!(v.get("result").is_none());
}

/// Cancelling an audit that runs in parts stops its parts (those running and those not claimed
/// yet): the job stays cancelled, no summary is written, and no part is claimed afterwards.
#[tokio::test]
async fn an_audit_in_parts_can_be_cancelled() {
    let t = TestApp::with(|c| {
        c.max_jobs = 1;
        c.job_part_bytes = 4096;
    })
    .await;
    let mut big = String::new();
    for _ in 0..100 {
        big.push_str(&corpus());
    }
    let r = t.raw(Method::POST, "/v1/jobs?kind=audit", Some(&t.analyst), ND, big).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["job"]["id"].as_str().unwrap().to_string();
    let t0 = Instant::now();
    // Wait until some part is done, so that the cancel lands mid-job.
    loop {
        let v = t.get(&format!("/v1/jobs/{id}"), &t.viewer).await.json();
        assert!(v["parts"].as_u64().unwrap() > 20, "{v}");
        if v["parts_done"].as_u64().unwrap() >= 1 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "no part finished: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = t.raw(Method::POST, &format!("/v1/jobs/{id}/cancel"), Some(&t.analyst), None, "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let v = t.get(&format!("/v1/jobs/{id}"), &t.viewer).await.json();
    assert_eq!(v["state"], "cancelled", "{v}");
    assert!(v.get("result").is_none(), "{v}");
    let done = v["parts_done"].as_u64().unwrap();
    assert!(done < v["parts"].as_u64().unwrap(), "cancelled after every part ran: {v}");
    let held =
        v["part_list"].as_array().unwrap().iter().filter(|p| !p["lease_owner"].is_null()).count();
    assert_eq!(held, 0, "a cancelled job's parts hold no lease: {v}");
    assert!(t.state.store.claim_job_part("another", 60_000).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = t.get(&format!("/v1/jobs/{id}"), &t.viewer).await.json();
    assert_eq!(later["parts_done"].as_u64(), Some(done), "parts ran on after the cancel: {later}");
}

#[tokio::test]
async fn unfinished_audit_job_restarts_from_scratch() {
    // A job left `running` by a replica that crashed, with a stale progress cursor: what a
    // replica claims once the dead one's lease expires. (No polling here: the test wakes the
    // claim loop itself once the lease is over.)
    use server::store::{JobChunk, JobState, NewJob};
    let t = TestApp::with(|c| c.job_poll_ms = 600_000).await;
    let path = t.state.config.uploads_dir().join("crashed.jsonl");
    let body = corpus();
    std::fs::write(&path, &body).unwrap();
    let (profile, _) = t.state.engine.resolve(None).unwrap();
    let params =
        json!({"profile": profile, "format": null, "sample": null, "seed": 1, "bytes": body.len()});
    let store = &t.state.store;
    store
        .create_job(NewJob {
            id: "job_crashed".into(),
            kind: "audit".into(),
            params,
            input_path: Some(t.state.config.stored_path(&path)),
            total: None,
            created_by: None,
            parts: Vec::new(),
        })
        .await
        .unwrap();
    let lease = store.claim_job("crashed-replica", 1500).await.unwrap().expect("claimable");
    assert_eq!(lease.id, "job_crashed");
    assert!(store.set_job_state("job_crashed", JobState::Running, None).await.unwrap());
    store
        .commit_job_chunk(
            "job_crashed",
            JobChunk { cursor_offset: 999, cursor_line: 17, ..Default::default() },
        )
        .await
        .unwrap();
    let v = t.get("/v1/jobs/job_crashed", &t.viewer).await.json();
    assert_eq!(v["done"], 17);
    assert!(v.get("result").is_none());

    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    t.state.jobs.wake();
    let v = wait_done(&t, "job_crashed").await;
    // Rerun over the whole corpus, not from the stale cursor.
    assert_eq!(v["done"], 40, "{v}");
    check_summary(&v["result"], 40);
    let r = t.get("/v1/jobs/job_crashed/results", &t.viewer).await;
    assert_eq!(r.text().lines().count(), 1);
}
