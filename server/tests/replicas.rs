//! Horizontal scale (issue 16): three replicas of the real binary on one PostgreSQL database and
//! one shared uploads directory. Jobs and probe campaigns submitted through different replicas
//! are claimed by any of them under leases; replicas holding leases are killed with SIGKILL at
//! two different moments (the first one mid-campaign), and the survivor finishes every job with
//! exactly one result per input line and every campaign with no probe sent twice, while the
//! campaigns' own rate and the endpoint's admin ceiling held across replicas (the replay
//! server's arrival times). Two of the score jobs and an audit are large enough to be cut into
//! parts that several replicas run at once; the audit's merged summary must equal what
//! `pedigree audit` computes over the same corpus in one pass.

mod common;
#[path = "common/fake_openai.rs"]
mod fake_openai;

use common::proc::{create_key_env, start, Server};
use fake_openai::FakeOpenAi;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const JOBS: usize = 3;
const LINES: usize = 5000;
const LEASE_MS: &str = "1500";
/// Two campaigns of this many probes, each at its own rate, both under the endpoint's ceiling.
const PROBES: usize = 120;
const OWN_RATE: f64 = 15.0;
const CEILING: f64 = 20.0;
const MODEL: &str = "replica-suspect";
/// Parts of about this size: jobs 0 and 1 (long lines, 857 kB) are cut into three parts, the
/// audit (533 kB) into two, and job 2 (short lines, 412 kB: under one part) runs whole.
const PART_BYTES: &str = "420000";
/// Texts of the audited corpus.
const AUDIT_TEXTS: usize = 4000;

async fn get(c: &reqwest::Client, url: String, key: &str) -> Value {
    c.get(url).bearer_auth(key).send().await.unwrap().json().await.unwrap()
}

/// The replica index (`r0`, `r1`, `r2`) holding a lease on an unfinished job or campaign
/// (`what` = `jobs` or `campaigns`), if any.
async fn lease_holder(
    c: &reqwest::Client,
    base: &str,
    key: &str,
    what: &str,
    ids: &[String],
) -> Option<usize> {
    for id in ids {
        let v = get(c, format!("{base}/v1/{what}/{id}"), key).await;
        if v["state"] != "done" {
            let parts = v["part_list"].as_array().into_iter().flatten();
            let part_owners = parts.filter(|p| p["state"] != "done").map(|p| &p["lease_owner"]);
            for owner in std::iter::once(&v["lease_owner"]).chain(part_owners) {
                if let Some(owner) = owner.as_str() {
                    return owner.strip_prefix('r').and_then(|n| n.parse().ok());
                }
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

/// Arrival times (ms) must not run faster than `rate`: any `k + 1` consecutive requests span at
/// least `k` intervals, less `slack_ms`. Reserved slots are at least an interval apart, and an
/// arrival is its slot plus a delay d (0 ≤ d ≤ J: the sender's task woken late, the request's
/// way to the endpoint), so k + 1 arrivals span at least k intervals − J whatever k is. On this
/// loaded 2-core machine (three replicas scoring, PostgreSQL, the kills) J reaches a few hundred
/// ms, so the slack is 400 ms and k is large enough (40) that a rate 1.5× too fast (two senders
/// of one campaign, or two campaigns under no shared ceiling) still fails by far: 40 intervals
/// at 1.5× span 1333 ms against the 1600 ms asked at 20/s.
fn assert_paced(label: &str, times: &[i64], rate: f64, k: usize, slack_ms: f64) {
    let interval = 1000.0 / rate;
    for w in times.windows(k + 1) {
        let span = (w[k] - w[0]) as f64;
        assert!(
            span >= k as f64 * interval - slack_ms,
            "{label}: {} requests in {span} ms, faster than {rate}/s (gaps {:?})",
            k + 1,
            w.windows(2).map(|p| p[1] - p[0]).collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_jobs_and_campaigns_and_survive_two_kill_9s() {
    let db = common::pg::fresh_db().await;
    let shared = tempfile::tempdir().unwrap();
    let uploads = shared.path().to_str().unwrap().to_string();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let store_env = [("PEDIGREE_DATABASE_URL", db.url.as_str())];
    let key = create_key_env(dirs[0].path(), "analyst", &store_env);
    let admin = create_key_env(dirs[0].path(), "admin", &store_env);
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
                // A key cache that would outlive the test: a revocation through another
                // replica must reach it by the revocation watch, not by the TTL.
                ("PEDIGREE_KEY_CACHE_SECS", "3600"),
                ("PEDIGREE_JOB_PART_BYTES", PART_BYTES),
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

    // A key revoked through r0 stops working on r2, whose cache held it, within a few seconds.
    let doomed = create_key_env(dirs[0].path(), "viewer", &store_env);
    let who = get(&c, format!("{}/v1/whoami", bases[2]), &doomed).await;
    let doomed_id = who["key_id"].as_str().expect("whoami on r2 (now cached there)").to_string();
    let r = c
        .delete(format!("{}/v1/keys/{doomed_id}", bases[0]))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let t0 = Instant::now();
    loop {
        let st =
            c.get(format!("{}/v1/whoami", bases[2])).bearer_auth(&doomed).send().await.unwrap();
        if st.status() == 401 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "revoked key still accepted by r2");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("revocation through r0 reached r2 in {:?}", t0.elapsed());

    // The suspect endpoint: a replay server in this process (it outlives every replica), with
    // the admin's ceiling on its allowlist entry.
    let prompts: Vec<String> =
        (0..2 * PROBES).map(|i| format!("replica probe {i}: explain tides")).collect();
    let answers: HashMap<String, String> = prompts
        .iter()
        .map(|p| (p.clone(), format!("Certainly! Tides are the answer to {p}.")))
        .collect();
    let fake = FakeOpenAi::start(MODEL, answers, vec![], 30);
    let r = c
        .post(format!("{}/v1/allowlist", bases[0]))
        .bearer_auth(&admin)
        .json(&json!({"entry": fake.entry, "max_rate_per_sec": CEILING}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // One job through each replica; every text is distinct, so the suspect ends with exactly
    // JOBS × LINES samples if no line was lost or stored twice.
    let mut ids = Vec::new();
    for (j, base) in bases.iter().enumerate() {
        let mut body = String::new();
        for i in 0..LINES {
            let mut text =
                format!("Job {j} line {i}: certainly, let's delve into topic {i} of {j}.");
            if j < 2 {
                text.push_str(" Overall, it is worth noting the details that follow, step by step, with care and nuance.");
            }
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
    // An audit of a corpus cut into parts, through r2; the same corpus is audited by the CLI below.
    let corpus_dir = tempfile::tempdir().unwrap();
    let corpus_path = corpus_dir.path().join("corpus.jsonl");
    let corpus: String = (0..AUDIT_TEXTS).map(testkit::profiles::audit_corpus_line).collect();
    std::fs::write(&corpus_path, &corpus).unwrap();
    let r = c
        .post(format!("{}/v1/jobs?kind=audit", bases[2]))
        .bearer_auth(&key)
        .header("content-type", "application/x-ndjson")
        .body(corpus.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let audit_id = r.json::<Value>().await.unwrap()["job"]["id"].as_str().unwrap().to_string();

    // Two campaigns through two other replicas, one retry-free attempt per probe (so that the
    // replay log shows every request a probe caused).
    let mut cids = Vec::new();
    for (k, base) in bases[1..].iter().enumerate() {
        let list: Vec<Value> =
            prompts[k * PROBES..(k + 1) * PROBES].iter().map(|p| json!({"prompt": p})).collect();
        let body = json!({
            "endpoint": {"base_url": fake.base, "model": MODEL},
            "probe_list": list,
            "budget": {"max_requests": PROBES},
            "concurrency": 4,
            "batch": 10,
            "client": {"rate_per_sec": OWN_RATE, "max_attempts": 1, "timeout_ms": 10_000},
        });
        let r = c
            .post(format!("{base}/v1/campaigns"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        cids.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }

    // Kill -9 a campaign's lease holder once the jobs are ~10% done and the campaigns have sent
    // some probes, then a lease holder (a campaign's while one runs) at ~40%.
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
            let sent = fake.log().len();
            if done as f64 >= fraction * all as f64 && sent >= 20 {
                let camp = lease_holder(&c, &bases[alive], &key, "campaigns", &cids).await;
                let job = lease_holder(&c, &bases[alive], &key, "jobs", &ids).await;
                if killed.is_empty() {
                    assert!(sent < 2 * PROBES, "the campaigns ended before the first kill");
                }
                let holder = camp.or(job).filter(|h| replicas[*h].is_some());
                if let Some(h) = holder {
                    let mut srv = replicas[h].take().unwrap();
                    srv.child.kill().unwrap(); // SIGKILL
                    srv.child.wait().unwrap();
                    killed.push((h, done, sent, camp.is_some()));
                    break;
                }
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "no progress to {fraction}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(killed.len(), 2);
    assert!(killed[0].3, "the first kill hit a replica sending a campaign: {killed:?}");
    let survivor = (0..3).find(|i| replicas[*i].is_some()).unwrap();
    let base = &bases[survivor];

    // The survivor takes over the dead replicas' jobs and campaigns once their leases expire.
    let t0 = Instant::now();
    loop {
        let mut finished = 0;
        let jobs = ids.iter().chain(std::iter::once(&audit_id)).map(|i| ("jobs", i));
        for (what, id) in jobs.chain(cids.iter().map(|i| ("campaigns", i))) {
            let v = get(&c, format!("{base}/v1/{what}/{id}"), &key).await;
            assert!(v["state"] != "failed" && v["state"] != "cancelled", "{v}");
            if v["state"] == "done" {
                finished += 1;
            }
        }
        if finished == JOBS + 1 + cids.len() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(240), "work did not finish on the survivor");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (j, id) in ids.iter().enumerate() {
        let v = get(&c, format!("{base}/v1/jobs/{id}"), &key).await;
        assert_eq!(
            (v["done"].as_u64(), v["total"].as_u64()),
            (Some(LINES as u64), Some(LINES as u64)),
            "{v}"
        );
        let parts = v["part_list"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(parts >= 2, j < 2, "job {j}: {parts} parts");
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

    // Campaigns: every probe sent once at most (one request per idempotency key, each key a
    // probe of ours), the budget spent exactly, the requests in flight at a kill recorded as
    // failed, and the rates held: each campaign's own, and the ceiling over both together.
    let log = fake.log();
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for l in &log {
        assert_eq!(l.outcome, "ok", "{l:?}");
        *per_key.entry(l.idempotency_key.clone().expect("a key")).or_default() += 1;
    }
    let twice: Vec<_> = per_key.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "probes sent twice: {twice:?}");
    let mut all_times = Vec::new();
    for cid in &cids {
        let v = get(&c, format!("{base}/v1/campaigns/{cid}"), &key).await;
        let p = &v["probes"];
        assert_eq!(v["stop_reason"], "budget_requests", "{v}");
        assert_eq!(p["sent"].as_u64(), Some(PROBES as u64), "{v}");
        assert_eq!(p["answered"].as_u64().unwrap() + p["failed"].as_u64().unwrap(), PROBES as u64);
        // Failed: the probes in flight at each take-over (4 at most each: at the kills, and
        // whenever a loaded replica missed its renewals for a whole lease).
        eprintln!("campaign {cid}: {p}");
        assert!(p["failed"].as_u64().unwrap() <= 16, "{v}");
        assert!(v["lease_owner"].is_null(), "a finished campaign holds no lease: {v}");
        let mut times: Vec<i64> = log
            .iter()
            .filter(|l| {
                l.idempotency_key.as_deref().is_some_and(|k| k.starts_with(&format!("{cid}:")))
            })
            .map(|l| l.at_ms)
            .collect();
        // Requests reached the endpoint for every answered probe and at most every sent one.
        assert!(
            times.len() as u64 >= p["answered"].as_u64().unwrap() && times.len() <= PROBES,
            "{v}"
        );
        times.sort_unstable();
        assert_paced(cid, &times, OWN_RATE, 40, 400.0);
        all_times.extend(times);
    }
    assert_eq!(all_times.len(), log.len(), "every request came from one of the two campaigns");
    all_times.sort_unstable();
    // Without the shared ceiling the two campaigns together would send 2 × 15/s.
    assert_paced("endpoint ceiling", &all_times, CEILING, 40, 400.0);
    eprintln!(
        "killed (replica, lines done, requests sent, held a campaign): {killed:?}; survivor r{survivor}; {} requests",
        log.len()
    );

    // The audit, merged from parts run on several replicas, is the one-pass audit of the CLI.
    let v = get(&c, format!("{base}/v1/jobs/{audit_id}"), &key).await;
    let parts = v["part_list"].as_array().expect("the audit was cut into parts");
    let states: std::collections::BTreeSet<&str> =
        parts.iter().filter_map(|p| p["state"].as_str()).collect();
    assert!(parts.len() >= 2 && states == ["done"].into(), "{v}");
    let out = std::process::Command::new(common::proc::BIN)
        .arg("audit")
        .arg(&corpus_path)
        .envs(common::default_profile().map(|p| ("PEDIGREE_PROFILE", p)))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let cli: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let comparable = common::audit_summary_sans_timings;
    assert_eq!(v["result"]["texts"].as_u64(), Some(AUDIT_TEXTS as u64), "{v}");
    assert!(
        comparable(&v["result"]) == comparable(&cli),
        "merged parts and the one-pass audit differ:\n{:#}\n{:#}",
        comparable(&v["result"]),
        comparable(&cli)
    );
}
