//! `pedigree-dev loadtest`: single-text `POST /v1/score` at N concurrent connections, loopback only,
//! bounded in request count and time. Prints p50/p90/p99/max latency and requests/s.
//!
//! Without `--url` it starts an in-process server on 127.0.0.1:0 with a temporary data directory
//! and a fresh analyst key, so `cargo run --release -p testkit --bin pedigree-dev -- loadtest` needs no set-up.

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use server::config::Config;
use server::state::AppState;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The text every request scores unless `--text` says otherwise.
pub const DEFAULT_TEXT: &str = "Certainly! Let's delve into the key factors. Overall, it's important to note that each option has trade-offs.";

#[derive(Debug, Clone, Args)]
pub struct LoadtestArgs {
    /// Base URL of a running server (loopback only), e.g. http://127.0.0.1:8080. Default: start one in-process.
    #[arg(long, env = "PEDIGREE_LOADTEST_URL")]
    pub url: Option<String>,
    /// API key (analyst or admin) for `--url`.
    #[arg(long, env = "PEDIGREE_LOADTEST_KEY")]
    pub key: Option<String>,
    /// Concurrent connections (one request in flight on each).
    #[arg(long, default_value_t = 200)]
    pub concurrency: usize,
    /// Total requests to send (after warm-up).
    #[arg(long, default_value_t = 20_000)]
    pub requests: u64,
    /// Warm-up requests (not measured).
    #[arg(long, default_value_t = 1_000)]
    pub warmup: u64,
    /// Stop after this many seconds even if `--requests` were not all sent.
    #[arg(long, default_value_t = 60)]
    pub max_secs: u64,
    /// Open-loop mode: send at this total rate (requests/s), spread over the connections, and
    /// measure latency from each request's scheduled time (no coordinated omission).
    /// Default: closed loop (each connection sends its next request as soon as the last returns).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Default profile file of the in-process server (default: the built-in profile).
    #[arg(long, env = "PEDIGREE_DEFAULT_PROFILE")]
    pub default_profile: Option<std::path::PathBuf>,
    /// The text to score.
    #[arg(long, default_value = DEFAULT_TEXT)]
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub requests: u64,
    pub errors: u64,
    pub status_429: u64,
    pub elapsed: Duration,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Report {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "requests: {} in {:.2}s ({} errors, {} x 429)",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.errors,
            self.status_429
        )?;
        writeln!(f, "throughput: {:.0} requests/s", self.rps())?;
        write!(
            f,
            "latency: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            self.p50_us as f64 / 1000.0,
            self.p90_us as f64 / 1000.0,
            self.p99_us as f64 / 1000.0,
            self.max_us as f64 / 1000.0
        )
    }
}

fn loopback_addr(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let rest = url.strip_prefix("http://").context("only http:// URLs are supported")?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let addr = hostport
        .to_socket_addrs()
        .with_context(|| format!("resolving {hostport}"))?
        .next()
        .context("no address")?;
    if !addr.ip().is_loopback() {
        bail!("loadtest only targets loopback addresses (127.0.0.0/8, ::1); {addr} is not one");
    }
    Ok((addr, hostport.to_string()))
}

/// Run the load test against `targets` (address and Host header; loopback only): connection i
/// goes to target i mod N, so several replicas share the load evenly.
pub async fn load(
    targets: &[(SocketAddr, String)],
    key: &str,
    args: &LoadtestArgs,
) -> anyhow::Result<Report> {
    if targets.is_empty() || targets.iter().any(|(a, _)| !a.ip().is_loopback()) {
        bail!("loadtest only targets loopback addresses");
    }
    let body =
        Bytes::from(serde_json::to_vec(&serde_json::json!({"texts": [{"text": args.text}]}))?);
    let auth = format!("Bearer {key}");
    let deadline = Instant::now() + Duration::from_secs(args.max_secs);
    let issued = Arc::new(AtomicU64::new(0));
    let total = args.warmup + args.requests;
    let errors = Arc::new(AtomicU64::new(0));
    let s429 = Arc::new(AtomicU64::new(0));
    let started = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let mut tasks = Vec::new();
    // Every connection is established before the clock starts (open loop schedules from then).
    let barrier = Arc::new(tokio::sync::Barrier::new(args.concurrency.max(1)));
    let t0 = Arc::new(std::sync::OnceLock::<Instant>::new());
    for conn_no in 0..args.concurrency.max(1) {
        let (addr, host) = targets[conn_no % targets.len()].clone();
        let (body, auth) = (body.clone(), auth.clone());
        let (issued, errors, s429, started) =
            (issued.clone(), errors.clone(), s429.clone(), started.clone());
        let warmup = args.warmup;
        let rate = args.rate;
        let (barrier, t0) = (barrier.clone(), t0.clone());
        let conns = args.concurrency.max(1) as f64;
        tasks.push(tokio::spawn(async move {
            let mut sent_here = 0u64;
            let mut lat = Vec::new();
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            barrier.wait().await;
            let t_start = *t0.get_or_init(|| Instant::now() + Duration::from_millis(20));
            loop {
                let i = issued.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() > deadline {
                    break;
                }
                if i == warmup {
                    *started.lock().expect("lock") = Some(Instant::now());
                }
                // Open loop: each connection sends at rate/conns, on a fixed schedule.
                let scheduled = match rate {
                    Some(r) if r > 0.0 => {
                        // Connections are staggered so that the total stream is evenly spaced.
                        let at = t_start
                            + Duration::from_secs_f64(
                                (sent_here as f64 * conns + conn_no as f64) / r,
                            );
                        sent_here += 1;
                        tokio::time::sleep_until(at.into()).await;
                        Some(at)
                    }
                    _ => None,
                };
                sender.ready().await?;
                let req = hyper::Request::post("/v1/score")
                    .header("host", &host)
                    .header("authorization", &auth)
                    .header("content-type", "application/json")
                    .body(Full::new(body.clone()))?;
                let t = scheduled.unwrap_or_else(Instant::now);
                let resp = sender.send_request(req).await?;
                let status = resp.status();
                resp.into_body().collect().await?;
                let us = t.elapsed().as_micros() as u64;
                if status.as_u16() == 429 {
                    s429.fetch_add(1, Ordering::Relaxed);
                }
                if !status.is_success() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                if i >= warmup {
                    lat.push(us);
                }
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let elapsed = started.lock().expect("lock").map(|s| s.elapsed()).unwrap_or_default();
    lat.sort_unstable();
    let pct = |p: f64| -> u64 {
        if lat.is_empty() {
            0
        } else {
            lat[((lat.len() as f64 - 1.0) * p).round() as usize]
        }
    };
    Ok(Report {
        requests: lat.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        status_429: s429.load(Ordering::Relaxed),
        elapsed,
        p50_us: pct(0.50),
        p90_us: pct(0.90),
        p99_us: pct(0.99),
        max_us: lat.last().copied().unwrap_or(0),
    })
}

pub async fn run(args: LoadtestArgs) -> anyhow::Result<()> {
    let (addr, host, key, _server) = match &args.url {
        Some(url) => {
            let (addr, host) = loopback_addr(url)?;
            let key = args.key.clone().context("--key is required with --url")?;
            (addr, host, key, None)
        }
        None => {
            let dir = std::env::temp_dir()
                .join(format!("pedigree-loadtest-{}", server::auth::random_base62(10)));
            let mut cfg = Config::with_data(&dir);
            cfg.default_profile = args.default_profile.clone();
            cfg.max_inflight = cfg.max_inflight.max(args.concurrency * 2);
            let state = AppState::open(cfg).await?;
            let (_, key) = server::auth::create_key(
                state.store.as_ref(),
                "loadtest",
                server::store::Role::Analyst,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let app = server::api::app(state);
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let handle = tokio::spawn(async move { axum::serve(listener, app).await });
            eprintln!("in-process server on http://{addr} (data {})", dir.display());
            (addr, addr.to_string(), key, Some((handle, dir)))
        }
    };
    let mode = match args.rate {
        Some(r) => format!("open loop at {r} requests/s"),
        None => "closed loop".to_string(),
    };
    println!(
        "loadtest: POST /v1/score, 1 text, {} connections, {mode}, {} requests (+{} warm-up), at most {}s",
        args.concurrency, args.requests, args.warmup, args.max_secs
    );
    let report = load(&[(addr, host)], &key, &args).await?;
    println!("{report}");
    if let Some((handle, dir)) = _server {
        handle.abort();
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}
