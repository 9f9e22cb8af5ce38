//! Issue 14 item 13, against the real binary: a busy address is named in the error, logs that
//! are not a terminal carry no ANSI colour codes, and `profile --help` offers only what exists;
//! item 6: peak RSS stays bounded under oversize uploads.

mod common;

use common::proc::BIN;
use std::process::Command;

#[test]
fn address_in_use_is_named_and_logs_have_no_ansi_codes() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", &addr, "--data"]).arg(dir.path()).env("RUST_LOG", "info");
    if let Some(p) = common::default_profile() {
        cmd.env("PEDIGREE_DEFAULT_PROFILE", p);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&addr) && stderr.contains("cannot listen"), "{stderr}");
    assert!(stderr.contains("store opened"), "info logs were written: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "ANSI escape codes in a non-terminal log: {stderr:?}");
}

#[test]
fn profile_help_lists_only_existing_subcommands() {
    let out = Command::new(BIN).args(["profile", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(out.status.success() && help.contains("build") && help.contains("show"), "{help}");
    assert!(!help.contains("export"), "{help}");
}

/// Peak resident memory of process `pid` (VmHWM), in MB.
fn peak_rss_mb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kb / 1024
}

/// Issue 14 item 6, against the real binary: memory is bounded by the limits, not by what a
/// client sends (before the fix one 500 MB job line peaked at 1.11 GB, a 300 MB multipart field
/// at 688 MB, a 1 MB gzip profile at 1.2 GB). Smaller inputs here, same shapes: a 200 MB job
/// line, a 100 MB multipart text field, a profile that inflates to 140 MB (over the 128 MiB cap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_inputs_keep_the_server_rss_bounded() {
    use serde_json::{json, Value};
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let admin = common::proc::create_key(dir.path(), "admin");
    let analyst = common::proc::create_key(dir.path(), "analyst");
    let server = common::proc::start(dir.path(), &[]);
    let pid = server.child.id();
    let base = server.base.clone();
    let c = reqwest::Client::new();
    let r = c.post(format!("{base}/v1/suspects")).bearer_auth(&analyst);
    let r = r.json(&json!({"name": "rss"})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let sus = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let idle = peak_rss_mb(pid);

    // One 200 MB line: that line's error, the job finishes, nothing holds the line.
    let mut line = b"{\"text\": \"".to_vec();
    line.resize(line.len() + (200 << 20), b'a');
    line.extend_from_slice(b"\"}\n{\"text\": \"a short line after it\"}\n");
    let r = c
        .post(format!("{base}/v1/jobs?suspect={sus}"))
        .bearer_auth(&analyst)
        .header("content-type", "application/x-ndjson")
        .body(line)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job = r.json::<Value>().await.unwrap()["job"]["id"].as_str().unwrap().to_string();
    let t0 = std::time::Instant::now();
    let state = loop {
        let v: Value = c
            .get(format!("{base}/v1/jobs/{job}"))
            .bearer_auth(&analyst)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ["done", "failed", "cancelled"].contains(&v["state"].as_str().unwrap()) {
            break v["state"].as_str().unwrap().to_string();
        }
        assert!(t0.elapsed().as_secs() < 120, "job did not finish: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(state, "done");

    // A 100 MB multipart text field: 413 while reading it.
    let boundary = "RSSBOUNDARY";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"suspect\"\r\n\r\n{sus}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\n"
    )
    .into_bytes();
    body.resize(body.len() + (100 << 20), b'x');
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = c
        .post(format!("{base}/v1/jobs"))
        .bearer_auth(&analyst)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let after_uploads = peak_rss_mb(pid);
    assert!(
        after_uploads < idle + 64,
        "peak RSS {after_uploads} MB after the oversize uploads (idle: {idle} MB)"
    );

    // A profile that inflates past the decompression cap: 422 while inflating.
    let mut bomb = b"PDGPROF1".to_vec();
    bomb.extend_from_slice(&3u32.to_le_bytes());
    let mut gz = flate2::write::GzEncoder::new(bomb, flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..140 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    let r = c
        .post(format!("{base}/v1/profiles?name=bomb"))
        .bearer_auth(&admin)
        .header("content-type", "application/octet-stream")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("exceeds"));
    let after_bomb = peak_rss_mb(pid);
    // The cap (128 MiB) plus the decoder's growing buffer; without the cap: over 140 MB of
    // output plus the profile's structures.
    assert!(after_bomb < idle + 300, "peak RSS {after_bomb} MB after the gzip bomb (idle {idle})");
    eprintln!("peak RSS: idle {idle} MB, uploads {after_uploads} MB, gzip bomb {after_bomb} MB");
}
