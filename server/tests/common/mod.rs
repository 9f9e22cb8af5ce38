#![allow(dead_code)]
//! Shared helpers: an app on a temporary data directory with one key per role, driven by `oneshot`.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use server::store::Role;
use server::{AppState, Config};
use tower::ServiceExt;

pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub viewer: String,
    pub analyst: String,
    pub admin: String,
    pub dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: bytes::Bytes,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// Assert the status and that the body is the JSON error shape; returns the error code.
    pub fn expect_error(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        let v = self.json();
        let code = v["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error.code in {v}"))
            .to_string();
        assert!(
            v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "no error.message in {v}"
        );
        code
    }
}

impl TestApp {
    pub async fn new() -> TestApp {
        Self::with(|_| {}).await
    }

    /// An app with three job slots and, when given, `--job-part-bytes` (else the default: the
    /// tests' uploads then run whole), to run one job in parts and whole.
    pub async fn with_parts(part_bytes: Option<u64>) -> TestApp {
        Self::with(|c| {
            c.max_jobs = 3;
            if let Some(b) = part_bytes {
                c.job_part_bytes = b;
            }
        })
        .await
    }

    pub async fn with(f: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::with_data(dir.path());
        cfg.default_profile = default_profile();
        f(&mut cfg);
        let state = AppState::open(cfg).await.unwrap();
        let mut keys = Vec::new();
        for role in [Role::Viewer, Role::Analyst, Role::Admin] {
            let (_, k) =
                server::auth::create_key(state.store.as_ref(), role.as_str(), role).await.unwrap();
            keys.push(k);
        }
        let router = server::app(state.clone());
        TestApp {
            state,
            router,
            admin: keys.pop().unwrap(),
            analyst: keys.pop().unwrap(),
            viewer: keys.pop().unwrap(),
            dir,
        }
    }

    pub async fn raw(
        &self,
        method: Method,
        uri: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        let resp = self.router.clone().oneshot(b.body(body.into()).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp { status, headers, body }
    }

    pub async fn get(&self, uri: &str, key: &str) -> Resp {
        self.raw(Method::GET, uri, Some(key), None, Body::empty()).await
    }

    pub async fn post_json(&self, uri: &str, key: &str, v: serde_json::Value) -> Resp {
        self.raw(Method::POST, uri, Some(key), Some("application/json"), v.to_string()).await
    }

    pub async fn delete(&self, uri: &str, key: &str) -> Resp {
        self.raw(Method::DELETE, uri, Some(key), None, Body::empty()).await
    }

    pub async fn create_suspect(&self, name: &str) -> String {
        let r =
            self.post_json("/v1/suspects", &self.analyst, serde_json::json!({"name": name})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_string()
    }

    /// Polls `GET path` (a job or a campaign) as the viewer every 50 ms until its state is
    /// final (`done`, `failed` or `cancelled`) and returns it; fails the test after `limit`.
    pub async fn wait_finished(&self, path: &str, limit: std::time::Duration) -> serde_json::Value {
        let t0 = std::time::Instant::now();
        loop {
            let v = self.get(path, &self.viewer).await.json();
            if ["done", "failed", "cancelled"].contains(&v["state"].as_str().unwrap()) {
                return v;
            }
            assert!(t0.elapsed() < limit, "{path} did not finish: {v}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// Distinct, realistic-looking responses; odd ones lean "upstream".
pub fn sample_text(i: usize) -> String {
    if i % 2 == 1 {
        format!("Certainly! Let's delve into point {i}. Overall, it's important to note that balance matters.")
    } else {
        format!("ok so number {i} is basically fine i think, nothing special there")
    }
}
// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use testkit::pg;
pub mod proc;

#[allow(unused_imports)]
pub use testkit::profiles::{
    default_profile, default_profile_bytes, synthetic_profile, synthetic_rows, SyntheticRow,
};

/// An audit summary without what differs between two runs over the same corpus: the timings,
/// and the evidence's `source` (the job id, or the CLI's file path).
pub fn audit_summary_sans_timings(s: &serde_json::Value) -> serde_json::Value {
    let mut s = s.clone();
    for k in ["seconds", "scoring_seconds", "bytes_per_second"] {
        s.as_object_mut().unwrap().remove(k);
    }
    for t in s["top_texts"].as_array_mut().unwrap() {
        t["source"] = serde_json::Value::Null;
    }
    s
}
