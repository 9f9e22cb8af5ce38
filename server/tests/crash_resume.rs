//! kill -9 the server mid-job, restart it, and count results: exactly one per input line. The
//! same test runs on the default SQLite store and on PostgreSQL (`--database-url`).

mod common;

use common::proc::{create_key_env, start};
use serde_json::json;
use std::time::{Duration, Instant};

const LINES: usize = 300;

async fn job(c: &reqwest::Client, base: &str, key: &str, id: &str) -> serde_json::Value {
    c.get(format!("{base}/v1/jobs/{id}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn job_survives_kill_9_with_no_lost_or_duplicated_results() {
    kill_9_mid_job(&[]).await;
}

#[tokio::test]
async fn job_survives_kill_9_on_postgres() {
    let db = common::pg::fresh_db().await;
    let dir = kill_9_mid_job(&[("PEDIGREE_DATABASE_URL", &db.url)]).await;
    assert!(!dir.path().join("pedigree.sqlite").exists(), "the job ran on PostgreSQL, not SQLite");
}

/// Run a job, kill -9 the server mid-job, restart it; `store_env` selects the store.
async fn kill_9_mid_job(store_env: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key_env(dir.path(), "analyst", store_env);
    // Small chunks and a pause between them so that the kill lands mid-job.
    let env = [store_env, &[("PEDIGREE_JOB_CHUNK", "5"), ("PEDIGREE_JOB_PAUSE_MS", "25")]].concat();
    let mut srv = start(dir.path(), &env);
    let c = reqwest::Client::new();
    let base = srv.base.clone();
    let r = c
        .post(format!("{base}/v1/suspects"))
        .bearer_auth(&key)
        .json(&json!({"name": "crashy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let sus = r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let mut body = String::new();
    for i in 0..LINES {
        body.push_str(&json!({"text": format!("Response number {i}: certainly, let's delve into topic {i}."), "id": i}).to_string());
        body.push('\n');
    }
    let r = c
        .post(format!("{base}/v1/jobs?suspect={sus}"))
        .bearer_auth(&key)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id =
        r.json::<serde_json::Value>().await.unwrap()["job"]["id"].as_str().unwrap().to_string();

    // Wait until the job is part-way, then kill -9.
    let t0 = Instant::now();
    let done_before = loop {
        let v = job(&c, &base, &key, &id).await;
        let done = v["done"].as_u64().unwrap() as usize;
        assert_ne!(v["state"], "done", "job finished before the kill; slow it down");
        if done >= 20 {
            break done;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "job made no progress: {v}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    srv.child.kill().unwrap(); // SIGKILL
    srv.child.wait().unwrap();
    assert!(done_before < LINES);

    // Restart on the same data directory: the job resumes from its cursor.
    let srv2 = start(dir.path(), &[store_env, &[("PEDIGREE_JOB_CHUNK", "5")]].concat());
    let base = srv2.base.clone();
    let t0 = Instant::now();
    let v = loop {
        let v = job(&c, &base, &key, &id).await;
        if v["state"] == "done" {
            break v;
        }
        assert!(["running", "queued"].contains(&v["state"].as_str().unwrap()), "{v}");
        assert!(t0.elapsed() < Duration::from_secs(180), "job did not finish after restart: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(v["done"], LINES as u64);
    let text = c
        .get(format!("{base}/v1/jobs/{id}/results"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), LINES, "exactly one result per input line");
    let mut seen = vec![0usize; LINES];
    for l in &lines {
        assert!(l.get("error").is_none(), "{l}");
        let id = l["id"].as_u64().unwrap() as usize;
        assert_eq!(l["line"].as_u64().unwrap() as usize, id + 1);
        seen[id] += 1;
    }
    assert!(seen.iter().all(|&n| n == 1), "every line exactly once");
    // …and exactly one sample per line in the suspect.
    let s: serde_json::Value = c
        .get(format!("{base}/v1/suspects/{sus}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["samples"], LINES as u64);
    drop(srv2);
    dir
}
