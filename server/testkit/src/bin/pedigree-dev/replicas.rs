//! `pedigree-dev replicas`: what 1 and N replicas of `pedigree serve` on one PostgreSQL do, measured
//! in one run so the figures compare (issue 16's load benchmark).
//!
//! For each replica count: a fresh database in the throwaway PostgreSQL cluster ([`testkit::pg`]),
//! that many replicas of the real binary with one shared uploads directory, then
//! 1. `/v1/score` load spread evenly over the replicas (closed loop, `--concurrency` connections),
//! 2. job throughput: `--jobs` jobs of `--lines` distinct texts submitted round robin through the
//!    replicas, timed from the first submit until every job is done (any replica claims any job);
//! 3. one large audit (`--audit-mb` MB of JSONL) submitted to one replica and cut into parts of
//!    `--part-bytes`, which all replicas claim, timed from the submit until its merged summary is
//!    stored (`seconds`: after the upload's 202, the upload's own time reported apart); the
//!    baseline is `pedigree audit` over the same file in one process, one pass, in the
//!    same run, so `(audit seconds with 1 replica − CLI seconds) / parts` is the cost of a part
//!    (claim, lease, progress and statistics commits, the merge).
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
    /// Size of the audited corpus in MB (1–4096; 0 skips the audit phase).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(0..=4096))]
    pub audit_mb: u32,
    /// The replicas' `--job-part-bytes` (4096–1099511627776).
    #[arg(long, default_value_t = 2 << 20, value_parser = clap::value_parser!(u64).range(4096..=1 << 40))]
    pub part_bytes: u64,
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
    let corpus_dir = tempfile::tempdir()?;
    let corpus = corpus_dir.path().join("corpus.jsonl");
    let mut cli = Value::Null;
    if a.audit_mb > 0 {
        std::fs::write(&corpus, audit_corpus((a.audit_mb as usize) << 20))?;
        cli = cli_audit(&bin, &corpus)?;
        println!("{}", json!({"baseline": "pedigree audit (one process, one pass)", "audit": cli}));
    }
    let mut rows: Vec<Value> = Vec::new();
    for &n in &a.replicas {
        let mut row = measure(&bin, n as usize, &a).await?;
        if a.audit_mb > 0 {
            row["audit"] = measure_audit(&bin, n as usize, &a, &corpus, &cli).await?;
        }
        println!("{row}");
        rows.push(row);
    }
    if let Some(first) = rows.first() {
        let ratio = |r: &Value, k: &str| {
            r[k].as_f64().unwrap_or(f64::NAN) / first[k].as_f64().unwrap_or(f64::NAN)
        };
        let ratios: Vec<Value> = rows
            .iter()
            .map(|r| {
                let audit = r["audit"]["seconds"].as_f64().unwrap_or(f64::NAN)
                    / first["audit"]["seconds"].as_f64().unwrap_or(f64::NAN);
                json!({"replicas": r["replicas"], "score_rps_ratio": ratio(r, "score_rps"),
                       "job_lines_per_second_ratio": ratio(r, "job_lines_per_second"),
                       "audit_speedup": 1.0 / audit})
            })
            .collect();
        println!("{}", json!({"baseline_replicas": first["replicas"], "ratios": ratios}));
    }
    Ok(())
}

/// `n` replicas of `bin` on a fresh database with one shared uploads directory, and an
/// analyst key. The directories live as long as the servers (the returned guard).
struct Cluster {
    servers: Vec<testkit::proc::Server>,
    targets: Vec<Target>,
    key: String,
    _dirs: (tempfile::TempDir, Vec<tempfile::TempDir>),
    _db: testkit::pg::PgDb,
}

async fn cluster(bin: &Path, n: usize, a: &ReplicasArgs) -> anyhow::Result<Cluster> {
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
    let part_bytes = a.part_bytes.to_string();
    let mut servers = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let id = format!("r{i}");
        let env = [
            ("PEDIGREE_DATABASE_URL", db.url.as_str()),
            ("PEDIGREE_UPLOADS_DIR", uploads.as_str()),
            ("PEDIGREE_REPLICA_ID", id.as_str()),
            ("PEDIGREE_JOB_POLL_MS", "100"),
            ("PEDIGREE_MAX_INFLIGHT", inflight.as_str()),
            ("PEDIGREE_JOB_PART_BYTES", part_bytes.as_str()),
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
    Ok(Cluster { servers, targets, key, _dirs: (shared, dirs), _db: db })
}

async fn measure(bin: &Path, n: usize, a: &ReplicasArgs) -> anyhow::Result<Value> {
    let c = cluster(bin, n, a).await?;
    let (targets, key) = (&c.targets, &c.key);

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
    let score = loadtest::load(targets, key, &largs).await?;

    let (status, v) = request(
        &targets[0],
        key,
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
        let (status, v) = request(t, key, "POST", &path, "application/x-ndjson", body).await?;
        ensure!(status == 202, "submitting job {j}: {status} {v}");
        ids.push(v["job"]["id"].as_str().context("job id")?.to_string());
    }
    for id in &ids {
        wait_done(&targets[0], key, id, t0 + Duration::from_secs(900)).await?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let lines = a.jobs as f64 * a.lines as f64;
    drop(c.servers);
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

/// Poll job `id` every 50 ms until it is done (its view), failing if it ends otherwise or is
/// still running at `deadline`.
async fn wait_done(
    target: &Target,
    key: &str,
    id: &str,
    deadline: Instant,
) -> anyhow::Result<Value> {
    loop {
        let path = format!("/v1/jobs/{id}");
        let (_, v) = request(target, key, "GET", &path, "application/json", String::new()).await?;
        match v["state"].as_str() {
            Some("done") => return Ok(v),
            Some("failed") | Some("cancelled") => bail!("job {id} ended {v}"),
            _ => {}
        }
        ensure!(Instant::now() < deadline, "job {id} not done in time: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

/// About `bytes` of JSONL ([`testkit::profiles::audit_corpus_line`]).
fn audit_corpus(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 512);
    let mut i = 0usize;
    while s.len() < bytes {
        s.push_str(&testkit::profiles::audit_corpus_line(i));
        i += 1;
    }
    s
}

/// `pedigree audit FILE`: its wall time and summary figures.
fn cli_audit(bin: &Path, corpus: &Path) -> anyhow::Result<Value> {
    let t0 = Instant::now();
    let mut cmd = std::process::Command::new(bin);
    // The replicas' default profile (inherited from this environment), so both audits agree.
    if let Some(p) = std::env::var_os("PEDIGREE_DEFAULT_PROFILE") {
        cmd.env("PEDIGREE_PROFILE", p);
    }
    let out = cmd.arg("audit").arg(corpus).output()?;
    let secs = t0.elapsed().as_secs_f64();
    ensure!(out.status.success(), "pedigree audit: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout)?;
    let v: Value = serde_json::from_str(stdout.lines().last().context("no summary")?)?;
    Ok(json!({"seconds": (secs * 1000.0).round() / 1000.0, "texts": v["texts"],
              "upstream_fraction": v["families"][v["upstream"].as_str().unwrap_or("")]["fraction"],
              "mb_per_second": (std::fs::metadata(corpus)?.len() as f64 / secs / 1e4).round() / 100.0}))
}

/// One audit job over `corpus` through replica 0 of a fresh cluster, cut into parts that every
/// replica claims: wall time from the submit to the stored summary, and the per-part cost
/// against the CLI's one pass.
async fn measure_audit(
    bin: &Path,
    n: usize,
    a: &ReplicasArgs,
    corpus: &Path,
    cli: &Value,
) -> anyhow::Result<Value> {
    let c = cluster(bin, n, a).await?;
    let body = std::fs::read_to_string(corpus)?;
    let bytes = body.len() as f64;
    let t0 = Instant::now();
    let (status, v) =
        request(&c.targets[0], &c.key, "POST", "/v1/jobs?kind=audit", "application/x-ndjson", body)
            .await?;
    ensure!(status == 202, "submitting the audit: {status} {v}");
    // The upload (streamed to the shared directory and fsynced) ends here; the parts run after.
    let upload_secs = t0.elapsed().as_secs_f64();
    let id = v["job"]["id"].as_str().context("job id")?.to_string();
    let v = wait_done(&c.targets[0], &c.key, &id, t0 + Duration::from_secs(1800)).await?;
    let total_secs = t0.elapsed().as_secs_f64();
    let secs = total_secs - upload_secs;
    let parts = v["part_list"].as_array().map(Vec::len).unwrap_or(0);
    let mut owners: Vec<&str> = v["part_list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["lease_owner"].as_str())
        .collect();
    owners.dedup();
    let up = v["result"]["upstream"].as_str().unwrap_or("").to_string();
    let fraction = &v["result"]["families"][up.as_str()]["fraction"];
    ensure!(
        *fraction == cli["upstream_fraction"] && v["result"]["texts"] == cli["texts"],
        "the merged audit differs from the CLI's: {fraction} vs {}",
        cli["upstream_fraction"]
    );
    let cli_secs = cli["seconds"].as_f64().unwrap_or(f64::NAN);
    let ms = |x: f64| (x * 1000.0).round() / 1000.0;
    Ok(json!({
        "parts": parts,
        "upload_seconds": ms(upload_secs),
        "seconds_with_upload": ms(total_secs),
        "seconds": ms(secs),
        "mb_per_second": (bytes / secs / 1e4).round() / 100.0,
        "vs_cli": ((secs / cli_secs) * 1000.0).round() / 1000.0,
        "ms_per_part_over_cli": (((secs - cli_secs) / parts.max(1) as f64) * 1e5).round() / 100.0,
        "upstream_fraction": fraction,
        "same_as_cli": true,
    }))
}
