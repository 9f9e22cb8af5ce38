//! Horizontal scale (issue 16): three replicas of the real binary on one PostgreSQL database and
//! one shared uploads directory. Jobs submitted through different replicas are claimed by any of
//! them under leases; two replicas holding leases are killed with SIGKILL at different moments,
//! and the survivor finishes every job with exactly one result per input line.

mod common;

use common::proc::{create_key_env, start, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const JOBS: usize = 3;
const LINES: usize = 5000;
const LEASE_MS: &str = "1500";

async fn get(c: &reqwest::Client, url: String, key: &str) -> Value {
    c.get(url).bearer_auth(key).send().await.unwrap().json().await.unwrap()
}

/// The replica index (`r0`, `r1`, `r2`) holding a lease on an unfinished job, if any.
async fn lease_holder(c: &reqwest::Client, base: &str, key: &str, ids: &[String]) -> Option<usize> {
    for id in ids {
        let v = get(c, format!("{base}/v1/jobs/{id}"), key).await;
        if v["state"] != "done" {
            if let Some(owner) = v["lease_owner"].as_str() {
                return owner.strip_prefix('r').and_then(|n| n.parse().ok());
            }
        }
    }
    None
}

async fn total_done(c: &reqwest::Client, base: &str, key: &str, ids: &[String]) -> u64 {
    let mut n = 0;
    for id in ids {
        n += get(c, format!("{base}/v1/jobs/{id}"), key).await["done"].as_u64().unwrap_or(0);
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_jobs_and_survive_two_kill_9s() {
    let db = common::pg::fresh_db().await;
    let shared = tempfile::tempdir().unwrap();
    let uploads = shared.path().to_str().unwrap().to_string();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let store_env = [("PEDIGREE_DATABASE_URL", db.url.as_str())];
    let key = create_key_env(dirs[0].path(), "analyst", &store_env);
    let mut replicas: Vec<Option<Server>> = (0..3)
        .map(|i| {
            let id = format!("r{i}");
            let env = [
                ("PEDIGREE_DATABASE_URL", db.url.as_str()),
                ("PEDIGREE_UPLOADS_DIR", uploads.as_str()),
                ("PEDIGREE_REPLICA_ID", id.as_str()),
                ("PEDIGREE_JOB_LEASE_MS", LEASE_MS),
                ("PEDIGREE_JOB_POLL_MS", "100"),
                ("PEDIGREE_MAX_JOBS", "1"),
                // Small chunks and a pause so that the kills land mid-job.
                ("PEDIGREE_JOB_CHUNK", "25"),
                ("PEDIGREE_JOB_PAUSE_MS", "10"),
            ];
            Some(start(dirs[i].path(), &env))
        })
        .collect();
    let bases: Vec<String> = replicas.iter().map(|r| r.as_ref().unwrap().base.clone()).collect();
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/v1/suspects", bases[0]))
        .bearer_auth(&key)
        .json(&json!({"name": "scaled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let sus = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    // One job through each replica; every text is distinct, so the suspect ends with exactly
    // JOBS × LINES samples if no line was lost or stored twice.
    let mut ids = Vec::new();
    for (j, base) in bases.iter().enumerate() {
        let mut body = String::new();
        for i in 0..LINES {
            let text = format!("Job {j} line {i}: certainly, let's delve into topic {i} of {j}.");
            body.push_str(&json!({"text": text, "id": i}).to_string());
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
        ids.push(r.json::<Value>().await.unwrap()["job"]["id"].as_str().unwrap().to_string());
    }

    // Kill -9 a lease holder after ~10% of the work, and another after ~40%.
    let all = (JOBS * LINES) as u64;
    let mut killed = Vec::new();
    for fraction in [0.1, 0.4] {
        let t0 = Instant::now();
        loop {
            let alive = (0..3).find(|i| replicas[*i].is_some()).unwrap();
            let done = total_done(&c, &bases[alive], &key, &ids).await;
            assert!(
                done < all,
                "the jobs finished before kill {}; slow them down",
                killed.len() + 1
            );
            if done as f64 >= fraction * all as f64 {
                let holder = lease_holder(&c, &bases[alive], &key, &ids).await;
                if let Some(h) = holder.filter(|h| replicas[*h].is_some()) {
                    let mut srv = replicas[h].take().unwrap();
                    srv.child.kill().unwrap(); // SIGKILL
                    srv.child.wait().unwrap();
                    killed.push((h, done));
                    break;
                }
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "no progress to {fraction}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(killed.len(), 2);
    let survivor = (0..3).find(|i| replicas[*i].is_some()).unwrap();
    let base = &bases[survivor];

    // The survivor takes over the dead replicas' jobs once their leases expire.
    let t0 = Instant::now();
    loop {
        let mut finished = 0;
        for id in &ids {
            let v = get(&c, format!("{base}/v1/jobs/{id}"), &key).await;
            assert_ne!(v["state"], "failed", "{v}");
            if v["state"] == "done" {
                finished += 1;
            }
        }
        if finished == JOBS {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(240), "jobs did not finish on the survivor");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in &ids {
        let v = get(&c, format!("{base}/v1/jobs/{id}"), &key).await;
        assert_eq!(
            (v["done"].as_u64(), v["total"].as_u64()),
            (Some(LINES as u64), Some(LINES as u64)),
            "{v}"
        );
        let text = c
            .get(format!("{base}/v1/jobs/{id}/results"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut lines: Vec<u64> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["line"].as_u64().unwrap())
            .collect();
        lines.sort_unstable();
        assert_eq!(lines, (1..=LINES as u64).collect::<Vec<_>>(), "job {id}: one result per line");
    }
    let s = get(&c, format!("{base}/v1/suspects/{sus}"), &key).await;
    assert_eq!(
        s["samples"].as_u64(),
        Some((JOBS * LINES) as u64),
        "no sample lost or doubled: {s}"
    );
    eprintln!("killed (replica, lines done at the kill): {killed:?}; survivor r{survivor}");
}
