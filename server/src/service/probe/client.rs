//! A client for OpenAI-compatible chat APIs (`POST {base}/chat/completions`) that survives real
//! endpoints: per-request timeout, retries with exponential backoff and jitter on 429 / 5xx /
//! timeouts / dropped connections / malformed bodies (honouring `Retry-After`), a per-endpoint
//! rate limit shared by every request to that endpoint, streaming (SSE) and non-streaming
//! responses. Every failure is a value ([`Failure`]), never a panic.
//!
//! Each request carries `Idempotency-Key: <campaign>:<seq>` (the same for the retries of one
//! probe), so an endpoint that honours the header can de-duplicate the retry of a request whose
//! answer was lost on the way back.

use super::allowlist::Target;
use crate::service::{ServiceError, ServiceResult};
use crate::store::Store;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How to talk to one endpoint. Durations are in milliseconds so that the struct is plain JSON.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientOptions {
    /// Per-request timeout (connect + whole response), ms.
    #[serde(default = "d_timeout")]
    pub timeout_ms: u64,
    /// Attempts per probe, first try included.
    #[serde(default = "d_attempts")]
    pub max_attempts: u32,
    /// Backoff before retry k (k = 1, 2, …) is base·2^(k−1), capped, with ±50% jitter, ms.
    #[serde(default = "d_backoff")]
    pub backoff_base_ms: u64,
    #[serde(default = "d_backoff_max")]
    pub backoff_max_ms: u64,
    /// Longest `Retry-After` honoured, ms; a longer one fails the attempt sequence.
    #[serde(default = "d_retry_after_max")]
    pub retry_after_max_ms: u64,
    /// Requests per second to this endpoint (every attempt counts).
    #[serde(default = "d_rate")]
    pub rate_per_sec: f64,
    /// Ask for a streamed (SSE) answer.
    #[serde(default)]
    pub stream: bool,
    /// `max_tokens` of each request.
    #[serde(default = "d_answer_tokens")]
    pub answer_max_tokens: u32,
    /// Sampling temperature sent with each request (default: the endpoint's).
    #[serde(default)]
    pub temperature: Option<f64>,
}

fn d_timeout() -> u64 {
    60_000
}
fn d_attempts() -> u32 {
    4
}
fn d_backoff() -> u64 {
    500
}
fn d_backoff_max() -> u64 {
    30_000
}
fn d_retry_after_max() -> u64 {
    300_000
}
fn d_rate() -> f64 {
    2.0
}
fn d_answer_tokens() -> u32 {
    512
}

impl ClientOptions {
    /// Every numeric field within its documented range (README "Security and limits"); the
    /// error names the field.
    pub fn validate(&self) -> ServiceResult<()> {
        let int = |name: &str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(ServiceError::Invalid(format!(
                    "`client.{name}` must be between {lo} and {hi} (got {v})"
                )))
            }
        };
        int("timeout_ms", self.timeout_ms, 100, 600_000)?;
        int("max_attempts", self.max_attempts.into(), 1, 20)?;
        int("backoff_base_ms", self.backoff_base_ms, 0, 60_000)?;
        int("backoff_max_ms", self.backoff_max_ms, 0, 600_000)?;
        int("retry_after_max_ms", self.retry_after_max_ms, 0, 3_600_000)?;
        int("answer_max_tokens", self.answer_max_tokens.into(), 1, 32_768)?;
        if !(MIN_RATE..=MAX_RATE).contains(&self.rate_per_sec) {
            return Err(ServiceError::Invalid(format!(
                "`client.rate_per_sec` must be between {MIN_RATE} and {MAX_RATE} (got {})",
                self.rate_per_sec
            )));
        }
        if self.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
            return Err(ServiceError::Invalid(
                "`client.temperature` must be between 0 and 2".into(),
            ));
        }
        Ok(())
    }
}

/// Bounds of `client.rate_per_sec` (requests per second).
pub const MIN_RATE: f64 = 0.001;
pub const MAX_RATE: f64 = 1000.0;

impl Default for ClientOptions {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults")
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub text: String,
    /// Tokens used: the endpoint's `usage.total_tokens`, else an estimate (characters / 4).
    pub tokens: i64,
    pub attempts: u32,
}

/// A probe that could not be answered.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: String,
    pub attempts: u32,
}

enum AttemptError {
    /// Worth retrying (429, 5xx, timeout, connection dropped, malformed body).
    Retry { msg: String, retry_after: Option<Duration> },
    /// Not worth retrying (other 4xx, refused redirects).
    Fatal(String),
}

/// Spaces requests to one endpoint at least `1 / rate` apart (a reservation queue: each caller
/// takes the next free slot and sleeps until it).
pub struct RateLimiter {
    /// `(interval, next free slot)`.
    state: Mutex<(Duration, Instant)>,
}

/// The longest spacing a limiter applies (a rate below 1/3600 per second is treated as that):
/// `1 / 1e-300` seconds is not a `Duration`, and an `Instant` that far ahead overflows.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

fn interval_of(rate_per_sec: f64) -> Duration {
    if rate_per_sec > 0.0 && rate_per_sec.is_finite() {
        Duration::try_from_secs_f64(1.0 / rate_per_sec).unwrap_or(MAX_INTERVAL).min(MAX_INTERVAL)
    } else {
        Duration::ZERO
    }
}

/// The limiter state lock. Nothing that can panic runs under it, and a poisoned lock (a panic
/// elsewhere while it was held) still holds a valid `(interval, slot)` pair, so it is taken
/// over instead of poisoning every later campaign.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RateLimiter {
    pub fn new(rate_per_sec: f64) -> RateLimiter {
        RateLimiter { state: Mutex::new((interval_of(rate_per_sec), Instant::now())) }
    }

    /// The process-wide ceiling of endpoint `host:port` that an admin set on its allowlist entry
    /// (`max_rate_per_sec`): every campaign talking to the endpoint shares it, on top of its own
    /// limiter. The rate is the admin's latest value (it is set again each time a campaign
    /// connects), never the strictest a campaign asked for.
    pub fn for_endpoint(entry: &str, rate_per_sec: f64) -> std::sync::Arc<RateLimiter> {
        static ALL: std::sync::OnceLock<
            Mutex<std::collections::HashMap<String, std::sync::Arc<RateLimiter>>>,
        > = std::sync::OnceLock::new();
        let mut all = lock(ALL.get_or_init(Default::default));
        let l = all
            .entry(entry.to_string())
            .or_insert_with(|| std::sync::Arc::new(RateLimiter::new(rate_per_sec)))
            .clone();
        {
            let mut st = lock(&l.state);
            st.0 = interval_of(rate_per_sec);
        }
        l
    }

    pub async fn acquire(&self) {
        Self::acquire_all(&[self]).await
    }

    /// One slot free under every limiter of `all` at once; each limiter's next slot moves on by
    /// its own interval from there (taking them one after the other would let a request held
    /// back by the second bunch the first's later requests up behind it). The locks are taken
    /// in address order (no deadlock between callers naming the same limiters in another order)
    /// and nothing under them can panic.
    pub async fn acquire_all(all: &[&RateLimiter]) {
        let mut sorted: Vec<&RateLimiter> = all.to_vec();
        sorted.sort_by_key(|l| *l as *const RateLimiter as usize);
        sorted.dedup_by_key(|l| *l as *const RateLimiter as usize);
        let slot = {
            let mut guards: Vec<_> = sorted.iter().map(|l| lock(&l.state)).collect();
            let slot = guards.iter().map(|g| g.1).fold(Instant::now(), Instant::max);
            for g in guards.iter_mut() {
                g.1 = slot.checked_add(g.0).unwrap_or(slot);
            }
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Where a client's send slots come from: one slot per attempt, free under the client's own
/// limiter and the endpoint's ceiling at once.
enum Pace {
    /// This process's limiters.
    Local { own: RateLimiter, ceiling: Option<std::sync::Arc<RateLimiter>> },
    /// Limiter rows in the store ([`Store::reserve_rate_slot`]), shared by every replica and
    /// every CLI run on the same database: a campaign taken over by another replica, or two
    /// campaigns on two replicas sending to one endpoint, keep their rates.
    Shared {
        store: std::sync::Arc<dyn Store>,
        /// `(key, interval_us)` of the client's own limiter and of the ceiling, if any.
        limits: Vec<(String, i64)>,
        /// Used while the database cannot be reached (the send itself then usually fails).
        fallback: RateLimiter,
    },
}

fn interval_us(rate_per_sec: f64) -> i64 {
    i64::try_from(interval_of(rate_per_sec).as_micros()).unwrap_or(i64::MAX)
}

impl Pace {
    async fn acquire(&self) {
        match self {
            Pace::Local { own, ceiling } => {
                let mut all = vec![own];
                all.extend(ceiling.as_deref());
                RateLimiter::acquire_all(&all).await
            }
            Pace::Shared { store, limits, fallback } => match store.reserve_rate_slot(limits).await
            {
                // The wait is bounded by the reservations queued before this one; each is at
                // most MAX_INTERVAL.
                Ok(wait_us) => {
                    tokio::time::sleep(Duration::from_micros(wait_us.max(0) as u64)).await
                }
                Err(e) => {
                    tracing::warn!(limiter = %limits[0].0, error = %e, "shared rate limiter unavailable; pacing locally");
                    fallback.acquire().await
                }
            },
        }
    }
}

pub struct ChatClient {
    http: reqwest::Client,
    url: reqwest::Url,
    model: String,
    api_key: Option<String>,
    opts: ClientOptions,
    /// This client's own limiter (one campaign's side, at its `rate_per_sec`) and the
    /// endpoint's admin ceiling, if any.
    pace: Pace,
}

/// `{base}/chat/completions`, unless the URL already ends with it.
pub fn completions_url(base: &reqwest::Url) -> reqwest::Url {
    let s = base.as_str().trim_end_matches('/');
    if s.ends_with("/chat/completions") {
        base.clone()
    } else {
        reqwest::Url::parse(&format!("{s}/chat/completions")).unwrap_or_else(|_| base.clone())
    }
}

/// `Retry-After`: delta-seconds or an HTTP date, bounded ([`super::retry_after`]).
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    super::retry_after::parse(v, std::time::SystemTime::now())
}

fn snippet(s: &str) -> String {
    let t: String = s.chars().take(200).collect();
    if t.len() < s.len() {
        format!("{t}…")
    } else {
        t
    }
}

/// The most tokens one answer's `usage.total_tokens` is believed (far above any real request).
const MAX_REPORTED_TOKENS: i64 = 1 << 32;

fn estimate_tokens(prompt: &str, answer: &str) -> i64 {
    ((prompt.chars().count() + answer.chars().count()) as i64 + 3) / 4
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    total_tokens: Option<i64>,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<Msg>,
    #[serde(default)]
    delta: Option<Msg>,
}

#[derive(Deserialize)]
struct Msg {
    #[serde(default)]
    content: Option<String>,
}

impl ChatClient {
    /// A client for a checked target. The host's checked addresses are pinned (no second DNS
    /// look-up that could answer differently) and redirects are refused.
    pub fn new(
        target: &Target,
        model: &str,
        api_key: Option<String>,
        opts: ClientOptions,
    ) -> ServiceResult<ChatClient> {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_millis(opts.timeout_ms.max(1)))
            .connect_timeout(Duration::from_millis(opts.timeout_ms.clamp(1, 10_000)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pedigree-probe/", env!("CARGO_PKG_VERSION")));
        if target.host.parse::<std::net::IpAddr>().is_err() && !target.host.starts_with('[') {
            b = b.resolve_to_addrs(&target.host, &target.addrs);
        }
        let http = b.build().map_err(|e| ServiceError::Internal(format!("HTTP client: {e}")))?;
        Ok(ChatClient {
            http,
            url: completions_url(&target.url),
            model: model.to_string(),
            api_key,
            pace: Pace::Local { own: RateLimiter::new(opts.rate_per_sec), ceiling: None },
            opts,
        })
    }

    /// Also respect the admin's ceiling for endpoint `entry` (`None`: no ceiling).
    pub fn with_ceiling(mut self, entry: &str, max_rate_per_sec: Option<f64>) -> ChatClient {
        let ceiling = max_rate_per_sec.map(|r| RateLimiter::for_endpoint(entry, r));
        self.pace = Pace::Local { own: RateLimiter::new(self.opts.rate_per_sec), ceiling };
        self
    }

    /// Pace through limiters in `store`, shared by every replica: this client's own rate under
    /// `key`, and the admin's ceiling for endpoint `entry` (`None`: no ceiling) under
    /// `endpoint:{entry}`, reserved together.
    pub fn with_shared_pacing(
        mut self,
        store: &std::sync::Arc<dyn Store>,
        key: &str,
        entry: &str,
        max_rate_per_sec: Option<f64>,
    ) -> ChatClient {
        let mut limits = vec![(key.to_string(), interval_us(self.opts.rate_per_sec))];
        limits.extend(max_rate_per_sec.map(|r| (format!("endpoint:{entry}"), interval_us(r))));
        self.pace = Pace::Shared {
            store: store.clone(),
            limits,
            fallback: RateLimiter::new(self.opts.rate_per_sec),
        };
        self
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Ask one prompt, retrying as configured. `on_attempt(k)` is called before attempt k.
    pub async fn ask(
        &self,
        prompt: &str,
        idempotency_key: &str,
        mut on_attempt: impl FnMut(u32),
    ) -> Result<Answer, Failure> {
        let mut last = String::new();
        let max = self.opts.max_attempts.max(1);
        for attempt in 1..=max {
            on_attempt(attempt);
            self.pace.acquire().await;
            match self.attempt(prompt, idempotency_key).await {
                Ok((text, tokens)) => return Ok(Answer { text, tokens, attempts: attempt }),
                Err(AttemptError::Fatal(msg)) => {
                    return Err(Failure { error: msg, attempts: attempt })
                }
                Err(AttemptError::Retry { msg, retry_after }) => {
                    last = msg;
                    if attempt == max {
                        break;
                    }
                    let exp = self
                        .opts
                        .backoff_base_ms
                        .saturating_mul(1u64 << (attempt - 1).min(20))
                        .min(self.opts.backoff_max_ms);
                    let jittered =
                        Duration::from_millis(exp).mul_f64(rand::thread_rng().gen_range(0.5..=1.0));
                    let wait = match retry_after {
                        Some(ra) if ra > Duration::from_millis(self.opts.retry_after_max_ms) => {
                            return Err(Failure {
                                error: format!(
                                    "{last}; Retry-After {}s exceeds the limit",
                                    ra.as_secs()
                                ),
                                attempts: attempt,
                            });
                        }
                        Some(ra) => ra.max(jittered),
                        None => jittered,
                    };
                    tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %last, "probe attempt failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Err(Failure { error: format!("gave up after {max} attempts: {last}"), attempts: max })
    }

    /// One attempt. Its error messages quote the endpoint's body, which may hold U+0000 (that
    /// PostgreSQL cannot store, failing the whole campaign): replaced by U+FFFD, so the failure
    /// is recorded like any other.
    async fn attempt(
        &self,
        prompt: &str,
        idempotency_key: &str,
    ) -> Result<(String, i64), AttemptError> {
        // The endpoint may echo the API key (in an error, or in the answer itself): it is
        // redacted before anything is stored, logged or returned.
        let redact = |s: String| match &self.api_key {
            Some(k) if !k.is_empty() => s.replace(k.as_str(), "[REDACTED]"),
            _ => s,
        };
        match self.attempt_raw(prompt, idempotency_key).await {
            Ok((text, tokens)) => Ok((redact(text), tokens)),
            Err(AttemptError::Retry { msg, retry_after }) => {
                Err(AttemptError::Retry { msg: redact(msg).replace('\0', "\u{FFFD}"), retry_after })
            }
            Err(AttemptError::Fatal(msg)) => {
                Err(AttemptError::Fatal(redact(msg).replace('\0', "\u{FFFD}")))
            }
        }
    }

    async fn attempt_raw(
        &self,
        prompt: &str,
        idempotency_key: &str,
    ) -> Result<(String, i64), AttemptError> {
        let mut body = serde_json::json!({
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": self.opts.answer_max_tokens,
            "stream": self.opts.stream,
        });
        if let Some(t) = self.opts.temperature {
            body["temperature"] = t.into();
        }
        let mut req =
            self.http.post(self.url.clone()).json(&body).header("Idempotency-Key", idempotency_key);
        if let Some(k) = &self.api_key {
            req = req.bearer_auth(k);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| AttemptError::Retry { msg: describe(&e), retry_after: None })?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(AttemptError::Fatal(format!("HTTP {status}: redirects are not followed")));
        }
        if status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error() {
            let ra = retry_after(resp.headers());
            let text = resp.text().await.unwrap_or_default();
            return Err(AttemptError::Retry {
                msg: format!("HTTP {status}: {}", snippet(&text)),
                retry_after: ra,
            });
        }
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(AttemptError::Fatal(format!("HTTP {status}: {}", snippet(&text))));
        }
        let is_sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let (text, usage) =
            if is_sse { self.read_stream(resp).await? } else { read_json(resp).await? };
        if text.trim().is_empty() {
            return Err(AttemptError::Retry {
                msg: "malformed answer: empty content".into(),
                retry_after: None,
            });
        }
        if text.contains('\0') {
            return Err(AttemptError::Retry {
                msg: "malformed answer: content holds a NUL character".into(),
                retry_after: None,
            });
        }
        // The endpoint's own count, bounded: a bogus huge value would overflow the campaign's
        // token sum (BIGINT on PostgreSQL, turned to REAL by SQLite).
        let tokens = usage
            .map(|u| u.clamp(0, MAX_REPORTED_TOKENS))
            .unwrap_or_else(|| estimate_tokens(prompt, &text));
        Ok((text, tokens))
    }

    /// Server-sent events: `data: {chunk}` lines until `data: [DONE]`. A stream that ends without
    /// `[DONE]` (dropped connection, truncation) is an error, not a short answer.
    async fn read_stream(
        &self,
        resp: reqwest::Response,
    ) -> Result<(String, Option<i64>), AttemptError> {
        use futures_util::StreamExt;
        let mut stream = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut text = String::new();
        let mut usage = None;
        loop {
            let chunk = match stream.next().await {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    return Err(AttemptError::Retry {
                        msg: format!("stream interrupted: {}", describe(&e)),
                        retry_after: None,
                    })
                }
                None => {
                    return Err(AttemptError::Retry {
                        msg: "malformed answer: stream ended before [DONE]".into(),
                        retry_after: None,
                    })
                }
            };
            buf.extend_from_slice(&chunk);
            while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim();
                let Some(data) = line.strip_prefix("data:") else { continue };
                let data = data.trim();
                if data == "[DONE]" {
                    return Ok((text, usage));
                }
                let c: Completion =
                    serde_json::from_str(data).map_err(|e| AttemptError::Retry {
                        msg: format!("malformed stream chunk: {e}: {}", snippet(data)),
                        retry_after: None,
                    })?;
                if let Some(u) = c.usage.and_then(|u| u.total_tokens) {
                    usage = Some(u);
                }
                for ch in c.choices {
                    if let Some(s) = ch
                        .delta
                        .and_then(|d| d.content)
                        .or_else(|| ch.message.and_then(|m| m.content))
                    {
                        text.push_str(&s);
                    }
                }
            }
        }
    }
}

async fn read_json(resp: reqwest::Response) -> Result<(String, Option<i64>), AttemptError> {
    let bytes = resp.bytes().await.map_err(|e| AttemptError::Retry {
        msg: format!("reading the answer: {}", describe(&e)),
        retry_after: None,
    })?;
    let c: Completion = serde_json::from_slice(&bytes).map_err(|e| AttemptError::Retry {
        msg: format!("malformed answer: {e}: {}", snippet(&String::from_utf8_lossy(&bytes))),
        retry_after: None,
    })?;
    let text =
        c.choices.into_iter().next().and_then(|ch| ch.message.and_then(|m| m.content)).ok_or(
            AttemptError::Retry {
                msg: "malformed answer: no choices[0].message.content".into(),
                retry_after: None,
            },
        )?;
    Ok((text, c.usage.and_then(|u| u.total_tokens)))
}

/// A transport error with its cause chain (reqwest's top-level message alone is vague).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "connection dropped"
    } else {
        "request failed"
    };
    let mut msg = kind.to_string();
    for c in crate::service::causes(e) {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_url_appends_once() {
        let u = |s: &str| completions_url(&reqwest::Url::parse(s).unwrap()).to_string();
        assert_eq!(u("http://h:1/v1"), "http://h:1/v1/chat/completions");
        assert_eq!(u("http://h:1/v1/"), "http://h:1/v1/chat/completions");
        assert_eq!(u("http://h:1/v1/chat/completions"), "http://h:1/v1/chat/completions");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        h.insert("retry-after", httpdate::fmt_http_date(later).parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120), "{d:?}");
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    /// Issue 14 item 1: `1 / 1e-300` s is no `Duration`, and `now + 1e19 s` overflows `Instant`:
    /// both panicked while the limiter's lock was held.
    #[tokio::test]
    async fn tiny_rates_neither_panic_nor_poison_the_limiter() {
        for rate in [1e-300, 1e-19, f64::MIN_POSITIVE] {
            let l = RateLimiter::new(rate);
            l.acquire().await;
            let next = tokio::time::timeout(Duration::from_millis(20), l.acquire()).await;
            assert!(next.is_err(), "the second slot is far away ({rate})");
        }
    }

    #[tokio::test]
    async fn rate_limiter_spaces_requests() {
        let l = RateLimiter::new(50.0);
        let t0 = Instant::now();
        for _ in 0..5 {
            l.acquire().await;
        }
        // First slot at once, then one every 20 ms: at least 80 ms for five (a lower bound, so
        // a slow machine cannot make it flaky).
        assert!(t0.elapsed() >= Duration::from_millis(80), "{:?}", t0.elapsed());
    }

    /// The endpoint ceiling is shared and follows the admin's latest value (it used to keep the
    /// strictest rate any campaign had asked for, for ever).
    #[tokio::test]
    async fn endpoint_ceilings_are_shared_at_the_latest_rate() {
        let strict = RateLimiter::for_endpoint("limiter-test:1", 0.001);
        let a = RateLimiter::for_endpoint("limiter-test:1", 1000.0);
        let b = RateLimiter::for_endpoint("limiter-test:1", 50.0);
        assert!(std::sync::Arc::ptr_eq(&a, &b) && std::sync::Arc::ptr_eq(&a, &strict));
        assert_eq!(lock(&a.state).0, Duration::from_millis(20), "not the strictest (1000 s)");
        let t0 = Instant::now();
        for _ in 0..3 {
            a.acquire().await;
            b.acquire().await;
        }
        // Six requests through either handle: five 20 ms gaps at least.
        assert!(t0.elapsed() >= Duration::from_millis(100), "{:?}", t0.elapsed());
        assert!(!std::sync::Arc::ptr_eq(&a, &RateLimiter::for_endpoint("limiter-test:2", 1000.0)));
    }
}
