//! `pedigree-dev replicas`: what 1 and N replicas of `pedigree serve` on one PostgreSQL do, measured
//! in one run so the figures compare (issue 16's load benchmark).
//!
//! For each replica count: a fresh database in the throwaway PostgreSQL cluster ([`testkit::pg`]),
//! that many replicas of the real binary with one shared uploads directory, then
//! 1. `/v1/score` load spread evenly over the replicas (closed loop, `--concurrency` connections),
//! 2. job throughput: `--jobs` jobs of `--lines` distinct texts submitted round robin through the
//!    replicas, timed from the first submit until every job is done (any replica claims any job).
//!
//! Prints one JSON line per replica count and a last line with the ratios against the first count.
//! All replicas share the machine's cores, so on one machine more replicas add no compute: the
//! figures show the cost of sharing (claims, leases, one database) rather than a speed-up.

use crate::loadtest::{self, LoadtestArgs};
use anyhow::{bail, ensure, Context};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct ReplicasArgs {
    /// The `pedigree` binary (default: the one beside this executable).
    #[arg(long, env = "PEDIGREE_BIN")]
    pub pedigree: Option<PathBuf>,
    /// Replica counts to measure, 1–8 each, e.g. `1,3`.
    #[arg(long, default_value = "1,3", value_delimiter = ',',
          value_parser = clap::value_parser!(u8).range(1..=8))]
    pub replicas: Vec<u8>,
    /// Jobs submitted per replica count (1–100).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub jobs: u16,
    /// Lines per job (1–100000).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub lines: u32,
    /// `/v1/score` requests of the load phase (after 500 warm-up requests).
    #[arg(long, default_value_t = 20_000)]
    pub requests: u64,
    /// Concurrent connections of the load phase, spread over the replicas.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

type Target = (SocketAddr, String);

pub async fn run(a: ReplicasArgs) -> anyhow::Result<()> {
    let bin = match &a.pedigree {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("pedigree"),
    };
    ensure!(
        bin.is_file(),
        "no pedigree binary at {} (cargo build --release -p server, or pass --pedigree)",
        bin.display()
    );
    let mut rows: Vec<Value> = Vec::new();
    for &n in &a.replicas {
        let row = measure(&bin, n as usize, &a).await?;
        println!("{row}");
        rows.push(row);
    }
    if let Some(first) = rows.first() {
        let ratio = |r: &Value, k: &str| {
            r[k].as_f64().unwrap_or(f64::NAN) / first[k].as_f64().unwrap_or(f64::NAN)
        };
        let ratios: Vec<Value> = rows
            .iter()
            .map(|r| json!({"replicas": r["replicas"], "score_rps_ratio": ratio(r, "score_rps"), "job_lines_per_second_ratio": ratio(r, "job_lines_per_second")}))
            .collect();
        println!("{}", json!({"baseline_replicas": first["replicas"], "ratios": ratios}));
    }
    Ok(())
}

async fn measure(bin: &Path, n: usize, a: &ReplicasArgs) -> anyhow::Result<Value> {
    let db = testkit::pg::fresh_db().await;
    let shared = tempfile::tempdir()?;
    let uploads = shared.path().to_string_lossy().into_owned();
    let dirs = (0..n).map(|_| tempfile::tempdir()).collect::<Result<Vec<_>, _>>()?;
    let key = testkit::proc::create_key(
        bin,
        dirs[0].path(),
        "analyst",
        &[("PEDIGREE_DATABASE_URL", db.url.as_str())],
    )?;
    let inflight = (a.concurrency * 2).to_string();
    let mut servers = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let id = format!("r{i}");
        let env = [
            ("PEDIGREE_DATABASE_URL", db.url.as_str()),
            ("PEDIGREE_UPLOADS_DIR", uploads.as_str()),
            ("PEDIGREE_REPLICA_ID", id.as_str()),
            ("PEDIGREE_JOB_POLL_MS", "100"),
            ("PEDIGREE_MAX_INFLIGHT", inflight.as_str()),
        ];
        servers.push(testkit::proc::start(bin, d.path(), &env, Stdio::null())?);
    }
    let targets: Vec<Target> = servers
        .iter()
        .map(|s| {
            let hp = s.base.trim_start_matches("http://").to_string();
            Ok((hp.parse().with_context(|| format!("address {hp}"))?, hp))
        })
        .collect::<anyhow::Result<_>>()?;

    let largs = LoadtestArgs {
        url: None,
        key: None,
        concurrency: a.concurrency,
        requests: a.requests,
        warmup: 500,
        max_secs: 120,
        rate: None,
        default_profile: None,
        text: loadtest::DEFAULT_TEXT.to_string(),
    };
    let score = loadtest::load(&targets, &key, &largs).await?;

    let (status, v) = request(
        &targets[0],
        &key,
        "POST",
        "/v1/suspects",
        "application/json",
        json!({"name": "bench"}).to_string(),
    )
    .await?;
    ensure!(status == 201, "creating the suspect: {status} {v}");
    let sus = v["id"].as_str().context("suspect id")?.to_string();
    let t0 = Instant::now();
    let mut ids = Vec::new();
    for j in 0..a.jobs as usize {
        let mut body = String::new();
        for i in 0..a.lines {
            let text =
                format!("Job {j} line {i}: certainly, let's delve into topic {i} of job {j}.");
            body.push_str(&json!({"text": text}).to_string());
            body.push('\n');
        }
        let t = &targets[j % n];
        let path = format!("/v1/jobs?suspect={sus}");
        let (status, v) = request(t, &key, "POST", &path, "application/x-ndjson", body).await?;
        ensure!(status == 202, "submitting job {j}: {status} {v}");
        ids.push(v["job"]["id"].as_str().context("job id")?.to_string());
    }
    loop {
        let mut done = 0;
        for id in &ids {
            let (_, v) = request(
                &targets[0],
                &key,
                "GET",
                &format!("/v1/jobs/{id}"),
                "application/json",
                String::new(),
            )
            .await?;
            match v["state"].as_str() {
                Some("done") => done += 1,
                Some("failed") | Some("cancelled") => bail!("job {id} ended {v}"),
                _ => {}
            }
        }
        if done == ids.len() {
            break;
        }
        ensure!(t0.elapsed() < Duration::from_secs(900), "jobs not done after 15 minutes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let lines = a.jobs as f64 * a.lines as f64;
    drop(servers);
    Ok(json!({
        "replicas": n,
        "score_requests": score.requests,
        "score_errors": score.errors,
        "score_rps": (score.rps() * 10.0).round() / 10.0,
        "score_p50_ms": score.p50_us as f64 / 1000.0,
        "score_p99_ms": score.p99_us as f64 / 1000.0,
        "jobs": a.jobs,
        "job_lines": lines,
        "job_seconds": (secs * 1000.0).round() / 1000.0,
        "job_lines_per_second": (lines / secs).round(),
        "cores": std::thread::available_parallelism().map(|c| c.get()).unwrap_or(1),
    }))
}

/// One HTTP/1.1 request on a fresh connection; the body parsed as JSON (null if it is not).
async fn request(
    target: &Target,
    key: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: String,
) -> anyhow::Result<(u16, Value)> {
    let stream = tokio::net::TcpStream::connect(target.0).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", &target.1)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}
