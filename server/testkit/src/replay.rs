//! A local OpenAI-compatible chat server that replays recorded answers and injects faults:
//! `pedigree-dev replay-server` (demos: replay a model of a benchmark directory) and the
//! integration tests' fake endpoint (`server/tests/common/fake_openai.rs`).
//!
//! `POST /v1/chat/completions` answers the last user message with the recorded answer to that
//! prompt (404 when there is none and no fallback), streamed as SSE when the request says
//! `"stream": true`. Faults are scripted per prompt: the k-th request for a prompt containing a
//! rule's marker gets the rule's k-th fault (429 with `Retry-After`, 500, a response slower than
//! any sensible timeout, truncated JSON, a dropped connection, 400); later requests are answered.
//! Every request is logged (prompt, attempt number, outcome, idempotency key) so tests can check
//! what the prober really sent.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "fault")]
pub enum Fault {
    /// 429 with `Retry-After: secs`.
    RateLimit { retry_after_secs: u64 },
    /// 429 with `Retry-After: <value>` verbatim (hostile values: `1e300`, `inf`, year 9999).
    RetryAfterRaw { value: String },
    /// 401 whose body echoes the request's `Authorization` header (a careless endpoint).
    EchoAuthorization,
    /// 500 with a JSON error body.
    ServerError,
    /// Answer normally, but only after `ms` milliseconds.
    Slow { ms: u64 },
    /// 200 with a JSON body cut in the middle.
    TruncatedJson,
    /// Headers, then the connection is dropped mid-body.
    Drop,
    /// 400 (not worth retrying).
    BadRequest,
    /// 400 whose body holds a raw U+0000 (a hostile or broken endpoint's error text).
    NulBody,
    /// Answer normally, but report `usage.total_tokens` = i64::MAX.
    HugeUsage,
}

/// One logged request.
#[derive(Debug, Clone, Serialize)]
pub struct Logged {
    pub prompt: String,
    pub model: String,
    /// 1 for the first request with this prompt, 2 for the second, …
    pub attempt: u32,
    /// `ok`, or the fault's name, or `unknown_prompt` / `wrong_model`.
    pub outcome: String,
    pub stream: bool,
    pub idempotency_key: Option<String>,
    pub authorization: Option<String>,
    /// When the request arrived (unix milliseconds).
    pub at_ms: i64,
}

#[derive(Default)]
pub struct Replay {
    pub model: String,
    /// Prompt → recorded answer.
    pub answers: HashMap<String, String>,
    /// Answer for prompts without a recorded one (`None`: 404).
    pub fallback: Option<String>,
    /// Prompt → further recorded answers: the k-th request (k ≥ 2) for the prompt gets the
    /// (k−1)-th of them when there is one (a sampling model answers differently each time).
    pub variants: HashMap<String, Vec<String>>,
    /// `(marker, faults)`: requests whose prompt contains `marker` get these faults in order.
    pub faults: Vec<(String, Vec<Fault>)>,
    /// Delay before every answer (ms).
    pub latency_ms: u64,
    log: Mutex<Vec<Logged>>,
    counts: Mutex<HashMap<String, u32>>,
}

impl Replay {
    pub fn new(model: &str, answers: HashMap<String, String>) -> Replay {
        Replay { model: model.to_string(), answers, ..Default::default() }
    }

    /// Answers of `model` in a benchmark directory (every split).
    pub fn from_bench(dir: &std::path::Path, model: &str) -> crate::Result<Replay> {
        let bench = datasets::BenchDir::load(dir)?;
        let answers: HashMap<String, String> = bench
            .all_samples_for(model)
            .into_iter()
            .map(|s| (s.prompt.clone(), s.response.clone()))
            .collect();
        if answers.is_empty() {
            return Err(crate::Error::Usage(format!(
                "no answers of model `{model}` in {} (models: {})",
                dir.display(),
                bench.known_models().join(", ")
            )));
        }
        Ok(Replay::new(model, answers))
    }

    pub fn log(&self) -> Vec<Logged> {
        self.log.lock().expect("log").clone()
    }

    /// How many requests carried `prompt`.
    pub fn requests_for(&self, prompt: &str) -> u32 {
        self.counts.lock().expect("counts").get(prompt).copied().unwrap_or(0)
    }
}

#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
}

#[derive(Deserialize)]
struct ChatMessage {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: serde_json::Value,
}

pub fn router(replay: Arc<Replay>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .with_state(replay)
}

/// Serve on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, replay: Arc<Replay>) -> std::io::Result<()> {
    axum::serve(listener, router(replay)).await
}

async fn models(State(r): State<Arc<Replay>>) -> Response {
    axum::Json(serde_json::json!({"object": "list", "data": [{"id": r.model, "object": "model"}]}))
        .into_response()
}

fn error(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(serde_json::json!({"error": {"message": msg, "type": "replay_error"}})))
        .into_response()
}

fn words(s: &str) -> i64 {
    s.split_whitespace().count() as i64
}

async fn chat(
    State(r): State<Arc<Replay>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(req) = serde_json::from_slice::<ChatRequest>(&body) else {
        return error(StatusCode::BAD_REQUEST, "malformed request");
    };
    let prompt = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .and_then(|m| m.content.as_str())
        .unwrap_or("")
        .to_string();
    let attempt = {
        let mut c = r.counts.lock().expect("counts");
        let n = c.entry(prompt.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let fault = r
        .faults
        .iter()
        .find(|(marker, _)| prompt.contains(marker.as_str()))
        .and_then(|(_, f)| f.get(attempt as usize - 1).cloned());
    let variant = (attempt >= 2)
        .then(|| r.variants.get(&prompt).and_then(|v| v.get(attempt as usize - 2)))
        .flatten();
    let answer = variant.or_else(|| r.answers.get(&prompt)).cloned().or_else(|| r.fallback.clone());
    let outcome = if req.model != r.model {
        "wrong_model".to_string()
    } else if let Some(f) = &fault {
        serde_json::to_value(f)
            .ok()
            .and_then(|v| v["fault"].as_str().map(String::from))
            .unwrap_or_default()
    } else if answer.is_none() {
        "unknown_prompt".to_string()
    } else {
        "ok".to_string()
    };
    let hdr = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).map(String::from);
    r.log.lock().expect("log").push(Logged {
        prompt: prompt.clone(),
        model: req.model.clone(),
        attempt,
        outcome: outcome.clone(),
        stream: req.stream,
        idempotency_key: hdr("idempotency-key"),
        authorization: hdr("authorization"),
        at_ms: server::store::now_ms(),
    });
    if r.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(r.latency_ms)).await;
    }
    if req.model != r.model {
        return error(StatusCode::NOT_FOUND, &format!("model `{}` not found", req.model));
    }
    match fault {
        Some(Fault::RateLimit { retry_after_secs }) => {
            let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "rate limited");
            resp.headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs.to_string().parse().expect("header"));
            return resp;
        }
        Some(Fault::RetryAfterRaw { ref value }) => {
            let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "rate limited");
            if let Ok(v) = header::HeaderValue::from_str(value) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return resp;
        }
        Some(Fault::EchoAuthorization) => {
            let auth = hdr("authorization").unwrap_or_default();
            return error(StatusCode::UNAUTHORIZED, &format!("invalid API key: {auth}"));
        }
        Some(Fault::ServerError) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
        Some(Fault::BadRequest) => return error(StatusCode::BAD_REQUEST, "bad request"),
        Some(Fault::NulBody) => return (StatusCode::BAD_REQUEST, "bad\0request").into_response(),
        Some(Fault::Slow { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        _ => {}
    }
    let Some(answer) = answer else {
        return error(StatusCode::NOT_FOUND, "no recorded answer for this prompt");
    };
    let total_tokens =
        if fault == Some(Fault::HugeUsage) { i64::MAX } else { words(&prompt) + words(&answer) };
    let full = serde_json::json!({
        "id": format!("chatcmpl-replay-{attempt}"),
        "object": "chat.completion",
        "model": r.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": words(&prompt), "completion_tokens": words(&answer), "total_tokens": total_tokens},
    })
    .to_string();
    match fault {
        Some(Fault::TruncatedJson) => {
            let cut = full.char_indices().nth(full.chars().count() / 2).map_or(0, |(i, _)| i);
            ([(header::CONTENT_TYPE, "application/json")], full[..cut].to_string()).into_response()
        }
        Some(Fault::Drop) => {
            // Some bytes, then an error: hyper aborts the connection mid-body.
            let head = full[..full.len().min(20)].to_string();
            let chunks: Vec<Result<String, std::io::Error>> =
                vec![Ok(head), Err(std::io::Error::other("dropped"))];
            let ct = if req.stream { "text/event-stream" } else { "application/json" };
            ([(header::CONTENT_TYPE, ct)], Body::from_stream(futures_util::stream::iter(chunks)))
                .into_response()
        }
        _ if req.stream => {
            // One chunk per word, then usage and [DONE].
            let mut sse = String::new();
            let mut first = true;
            for w in answer.split_inclusive(' ') {
                let delta = if first {
                    serde_json::json!({"role": "assistant", "content": w})
                } else {
                    serde_json::json!({"content": w})
                };
                first = false;
                sse.push_str(&format!("data: {}\n\n", serde_json::json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]})));
            }
            let usage = serde_json::json!({"object": "chat.completion.chunk", "choices": [], "usage": {"total_tokens": words(&prompt) + words(&answer)}});
            sse.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
            ([(header::CONTENT_TYPE, "text/event-stream")], sse).into_response()
        }
        _ => ([(header::CONTENT_TYPE, "application/json")], full).into_response(),
    }
}
