//! The real binary on port 0: CLI keys, HTTP over loopback, env config, graceful shutdown.

mod common;

use common::proc::{create_key, start, BIN};
use serde_json::json;
use std::process::Command;

#[tokio::test]
async fn real_server_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let analyst = create_key(dir.path(), "analyst");
    let viewer = create_key(dir.path(), "viewer");
    let admin = create_key(dir.path(), "admin");
    let mut srv = start(dir.path(), &[("PEDIGREE_MAX_TEXTS", "2")]);
    let c = reqwest::Client::new();
    let base = srv.base.clone();
    assert_eq!(c.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
    let r = c
        .post(format!("{base}/v1/score"))
        .bearer_auth(&analyst)
        .json(
            &json!({"texts": [{"text": "Certainly! Let's delve into it.", "prompt": "Explain."}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    for f in ["score", "fpr", "family", "evidence"] {
        assert!(v["results"][0].get(f).is_some(), "missing {f}: {v}");
    }
    // env config applies (PEDIGREE_MAX_TEXTS=2)
    let r = c
        .post(format!("{base}/v1/score"))
        .bearer_auth(&analyst)
        .json(&json!({"texts": [{"text": "a"}, {"text": "b"}, {"text": "c"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = c
        .post(format!("{base}/v1/score"))
        .bearer_auth(&viewer)
        .json(&json!({"texts": [{"text": "a"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(format!("{base}/v1/score"))
        .json(&json!({"texts": [{"text": "a"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unauthorized");
    let r = c
        .post(format!("{base}/v1/score"))
        .bearer_auth(&analyst)
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c.get(format!("{base}/metrics")).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("pedigree_http_requests_total"));
    assert_eq!(c.get(format!("{base}/docs/")).send().await.unwrap().status(), 200);
    // CLI key management against the same data dir while the server runs
    let out = Command::new(BIN).args(["keys", "list", "--data"]).arg(dir.path()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    // graceful shutdown on SIGTERM: exit code 0, audit flushed
    let pid = srv.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = srv.child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let srv = start(dir.path(), &[]);
    let r = c
        .get(format!("{}/v1/audit?action=/v1/score", srv.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["entries"].as_array().unwrap().len(), 5, "{v}");
}

#[test]
fn serve_reads_env_vars_and_keys_create_rejects_bad_role() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["keys", "create", "--role", "root"])
        .env("PEDIGREE_DATA", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    // PEDIGREE_DATA is honoured by keys create
    let out = Command::new(BIN)
        .args(["keys", "create", "--role", "viewer"])
        .env("PEDIGREE_DATA", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(dir.path().join("pedigree.sqlite").exists());
    // PEDIGREE_LISTEN / PEDIGREE_DATA are honoured by serve
    let data2 = dir.path().join("d2");
    let mut cmd = Command::new(BIN);
    if let Some(p) = common::default_profile() {
        cmd.env("PEDIGREE_DEFAULT_PROFILE", p);
    }
    let mut child = cmd
        .arg("serve")
        .env("PEDIGREE_LISTEN", "127.0.0.1:0")
        .env("PEDIGREE_DATA", &data2)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    assert!(data2.join("pedigree.sqlite").exists());
    child.kill().unwrap();
    child.wait().unwrap();
}
