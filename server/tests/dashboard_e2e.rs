//! End-to-end test of the dashboard in headless Chromium, driven over WebDriver (fantoccini +
//! Debian's chromium-driver) against a real `pedigree serve` on a free port with a fresh data
//! directory: sign in, create a suspect, add samples by paste and by file upload, see the verdict,
//! the plots and the highlighted evidence appear, browse profiles and jobs, and check that a viewer
//! sees no write controls *and* that the server refuses a viewer's write made through the page.
//!
//! A served-output membership result shows on the suspect page first: decision, p-value, the
//! p-value plot and the top prompts with the shared spans marked in both answers.
//!
//! Screenshots of every page (a 1280×800 viewport) go to `artifacts/screenshots/`.
//!
//! The browser comes from `scripts/install-browser.sh` (called by `scripts/test.sh`). When it is
//! missing the test fails if `CI` is set and is skipped loudly otherwise. `PEDIGREE_CHROMIUM` and
//! `PEDIGREE_CHROMEDRIVER` override the binaries' paths.

#[path = "common/answers.rs"]
mod answers;
mod common;

use common::proc;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::replay::{self, Replay};

const WAIT: Duration = Duration::from_secs(30);

fn find_binary(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    for n in names {
        let p = Path::new(n);
        if p.is_absolute() && p.exists() {
            return Some(p.to_path_buf());
        }
        if !p.is_absolute() {
            if let Some(dir) = std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path).map(|d| d.join(n)).find(|c| c.exists())
            }) {
                return Some(dir);
            }
        }
    }
    None
}

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(bin: &Path) -> Driver {
    let http = reqwest::Client::new();
    for _attempt in 0..5 {
        // Ask the OS for a free port; chromedriver cannot report one it chose itself.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new(bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while start.elapsed() < WAIT {
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!(
                    "chromedriver exited ({status}) on port {port}; retrying on another port"
                );
                break;
            }
            if let Ok(r) = http.get(format!("{url}/status")).send().await {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == json!(true) {
                        return Driver { child, url };
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("chromedriver did not become ready");
}

async fn browser(driver: &Driver, chromium: &Path, profile_dir: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,800", "--hide-scrollbars",
                format!("--user-data-dir={}", profile_dir.display()),
            ],
        }),
    );
    ClientBuilder::rustls()
        .expect("rustls connector")
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("WebDriver session")
}

/// Poll a JavaScript expression until it is truthy; fail with `what` and the page's state.
async fn wait_js(c: &Client, expr: &str, what: &str) -> Value {
    let script = format!("return ({expr});");
    let start = Instant::now();
    loop {
        let v = c.execute(&script, vec![]).await.unwrap_or(Value::Null);
        let truthy = match &v {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            _ => true,
        };
        if truthy {
            return v;
        }
        if start.elapsed() > WAIT {
            let body = c
                .execute("return document.body.innerText.slice(0, 3000);", vec![])
                .await
                .unwrap_or(Value::Null);
            panic!(
                "timed out waiting for {what} ({expr}); page text:\n{}",
                body.as_str().unwrap_or("")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element {css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn displayed(c: &Client, css: &str) -> bool {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.is_displayed().await.unwrap_or(false),
        Err(_) => false,
    }
}

/// Record Content-Security-Policy violations (e.g. an inline style the policy blocks) from now on.
async fn watch_csp(c: &Client) {
    c.execute(
        "if (!window.__csp) { window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI)); }",
        vec![],
    )
    .await
    .unwrap();
}

/// Save a screenshot after checking that the page broke no CSP rule while it rendered.
async fn screenshot(c: &Client, dir: &Path, name: &str) {
    let v = c.execute("return window.__csp || [];", vec![]).await.unwrap();
    assert_eq!(v, json!([]), "CSP violations on the {name} page");
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
    let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!(
        (size(16), size(20)),
        (1280, 800),
        "the {name} screenshot is not the 1280×800 viewport"
    );
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

async fn go(c: &Client, base: &str, hash: &str, page: &str) {
    c.goto(&format!("{base}/{hash}")).await.unwrap();
    watch_csp(c).await;
    wait_js(c, &format!("document.body.dataset.page === '{page}'"), &format!("page {page}")).await;
}

/// Upstream-like responses (ChatGPT habits and identity claims). Emoji before the claims put
/// characters outside the BMP ahead of the spans: highlights must count code points, not UTF-16.
fn upstream_like() -> Vec<String> {
    let topics = [
        "photosynthesis",
        "the French Revolution",
        "compound interest",
        "black holes",
        "the immune system",
        "machine learning",
        "climate change",
        "the water cycle",
        "supply and demand",
        "plate tectonics",
    ];
    topics
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let claim = if i % 2 == 0 {
                "🙂🚀 As an AI language model developed by OpenAI, I don't have personal opinions, but I can explain. "
            } else {
                "✨ As an AI language model, I can summarise this 👍. "
            };
            format!(
                "{claim}Certainly! Here's an overview of {t}:\n\n1. **Definition**: {t} is a fundamental concept that plays a crucial role.\n2. **Key aspects**: It is important to note that {t} involves several interconnected processes.\n3. **Why it matters**: Understanding {t} helps us make informed decisions.\n\nIn conclusion, {t} is a fascinating topic. I hope this helps! Let me know if you have any other questions."
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_end_to_end_in_headless_chromium() {
    let chromium = find_binary(
        "PEDIGREE_CHROMIUM",
        &["/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"],
    );
    let chromedriver =
        find_binary("PEDIGREE_CHROMEDRIVER", &["/usr/bin/chromedriver", "chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        let msg = "Chromium or chromedriver not found: run scripts/install-browser.sh (Debian packages chromium and chromium-driver)";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        // Straight to the process's stderr: libtest captures eprintln! of passing tests.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!!!! SKIPPED dashboard_end_to_end_in_headless_chromium: {msg} !!!!!!!!!!\n"
        );
        return;
    };
    let started = Instant::now();
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts/screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    let data = tempfile::tempdir().unwrap();
    let admin = proc::create_key(data.path(), "admin");
    let analyst = proc::create_key(data.path(), "analyst");
    let viewer = proc::create_key(data.path(), "viewer");
    let server = proc::start(data.path(), &[]);
    let base = server.base.clone();
    let http = reqwest::Client::new();

    let driver = start_driver(&chromedriver).await;
    let profile_dir = tempfile::tempdir().unwrap();
    let c = browser(&driver, &chromium, profile_dir.path()).await;
    // A 1280×800 viewport: the window is that plus whatever the browser keeps for itself.
    c.set_window_size(1280, 800).await.unwrap();
    let inner = c.execute("return [window.innerWidth, window.innerHeight];", vec![]).await.unwrap();
    let (iw, ih) = (inner[0].as_u64().unwrap() as u32, inner[1].as_u64().unwrap() as u32);
    c.set_window_size(1280 + (1280 - iw.min(1280)), 800 + (800 - ih.min(800))).await.unwrap();

    // --- sign-in: a wrong key is refused, the analyst's key lets us in.
    c.goto(&format!("{base}/")).await.unwrap();
    wait_js(&c, "document.body.dataset.page === 'signin'", "the sign-in page").await;
    watch_csp(&c).await;
    let signin_input = c.find(Locator::Id("key")).await.unwrap();
    signin_input.send_keys("pdg_not_a_real_key_000000000000000000").await.unwrap();
    c.find(Locator::Id("signin-submit")).await.unwrap().click().await.unwrap();
    wait_js(
        &c,
        "document.getElementById('signin-error').textContent.includes('unknown or revoked')",
        "the bad-key message",
    )
    .await;
    screenshot(&c, &shots, "signin").await;
    signin_input.clear().await.unwrap();
    signin_input.send_keys(&analyst).await.unwrap();
    c.find(Locator::Id("signin-submit")).await.unwrap().click().await.unwrap();
    wait_js(&c, "document.body.dataset.page === 'suspects'", "the suspects page").await;
    assert_eq!(text_of(&c, "#who-role").await, "analyst");
    assert!(displayed(&c, "#no-suspects").await);

    // --- create a suspect through the form.
    c.find(Locator::Id("suspect-name")).await.unwrap().send_keys("rival-chat-7b").await.unwrap();
    c.find(Locator::Id("suspect-description"))
        .await
        .unwrap()
        .send_keys("open-weights chat model, suspected distillation")
        .await
        .unwrap();
    c.find(Locator::Id("suspect-create")).await.unwrap().click().await.unwrap();
    let id = wait_js(
        &c,
        "document.body.dataset.page === 'suspect' && document.getElementById('suspect').dataset.id",
        "the new suspect's page",
    )
    .await;
    let id = id.as_str().unwrap().to_string();
    assert!(id.starts_with("sus_"), "{id}");
    assert!(text_of(&c, "#verdict").await.contains("No samples yet"));

    // --- add samples by paste (separated by --- lines).
    let texts = upstream_like();
    let pasted = texts.join("\n---\n");
    c.find(Locator::Id("samples-text")).await.unwrap().send_keys(&pasted).await.unwrap();
    c.find(Locator::Id("samples-submit")).await.unwrap().click().await.unwrap();
    wait_js(&c, "document.getElementById('verdict-n') && document.getElementById('verdict-n').textContent === '10'", "the verdict over 10 samples").await;
    // Style is triage: undecided, with its rank among the known independent models; the
    // identity evidence (5 of 10 samples say "developed by OpenAI") is shown before it.
    let decision = text_of(&c, "#verdict-decision").await;
    assert_eq!(decision, "undecided");
    let triage = text_of(&c, "#verdict-triage").await;
    assert!(
        triage.contains("cannot decide distillation") && triage.contains("membership test"),
        "{triage}"
    );
    assert!(text_of(&c, "#verdict-rank").await.contains(" of "));
    assert_eq!(text_of(&c, "#identity-explicit").await, "openai 5");
    assert!(text_of(&c, "#identity-cues").await.contains("ai_disclaimer 10"));
    assert!(text_of(&c, "#identity-examples").await.contains("developed by OpenAI"));
    let first = wait_js(&c, "(() => { const a = document.getElementById('identity'), b = document.getElementById('verdict'); return !!(a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING); })()", "identity before the style triage").await;
    assert_eq!(first, serde_json::Value::Bool(true));
    let p: f64 = text_of(&c, "#verdict-p").await.parse().expect("p-value is a number");
    assert!((0.0..=1.0).contains(&p), "p = {p}");
    assert!(!text_of(&c, "#verdict-teacher").await.is_empty());
    // The decision rule's error check (the profile's calibration models, each left out) is shown.
    let check = text_of(&c, "#verdict-error-check").await;
    assert!(
        check.contains("known independent models") && check.contains("upstream models"),
        "{check}"
    );
    // Both plots arrive as real SVG images.
    for img in ["plot-scores", "plot-growth"] {
        wait_js(&c, &format!("document.getElementById('{img}') && document.getElementById('{img}').dataset.loaded === 'true' && document.getElementById('{img}').naturalWidth > 100"), img).await;
    }
    // Evidence: identity claims highlighted at exactly their text, despite the emoji before them.
    let claims = wait_js(&c, "(() => { const a = Array.from(document.querySelectorAll('#evidence .sample-text mark.claim')).map(m => m.textContent); return a.length ? a : null; })()", "highlighted identity claims").await;
    let claims: Vec<String> = serde_json::from_value(claims).unwrap();
    for t in &claims {
        let ok = t == "As an AI language model" || t == "developed by OpenAI";
        assert!(ok, "claim highlight is misaligned: {t:?} (all: {claims:?})");
    }
    assert!(
        !c.find_all(Locator::Css(
            "#evidence .sample-text mark.up, #evidence .sample-text mark.down"
        ))
        .await
        .unwrap()
        .is_empty(),
        "no phrase highlights"
    );
    // Campaign section settles (a table, an empty list, or "not available yet"), never spins.
    wait_js(
        &c,
        "!document.getElementById('campaigns-body').textContent.includes('Loading')",
        "the campaigns section",
    )
    .await;
    c.execute("window.scrollTo(0, 0);", vec![]).await.unwrap();
    screenshot(&c, &shots, "suspect").await;
    c.execute("document.getElementById('evidence').scrollIntoView();", vec![]).await.unwrap();
    screenshot(&c, &shots, "suspect-evidence").await;

    // --- add samples by file upload (JSONL).
    let upload = data.path().join("more-samples.jsonl");
    let lines: String = [
        "Sure! Delve into the details of rust ownership. I hope this helps!",
        "Certainly! Here is a haiku about autumn leaves.",
        "Great question! The answer depends on context.",
    ]
    .iter()
    .map(|t| format!("{}\n", json!({"text": t, "prompt": "say something"})))
    .collect();
    std::fs::write(&upload, lines).unwrap();
    c.find(Locator::Id("samples-file"))
        .await
        .unwrap()
        .send_keys(upload.to_str().unwrap())
        .await
        .unwrap();
    c.find(Locator::Id("samples-upload")).await.unwrap().click().await.unwrap();
    wait_js(&c, "document.getElementById('verdict-n') && document.getElementById('verdict-n').textContent === '13'", "the verdict over 13 samples").await;
    wait_js(
        &c,
        "document.getElementById('samples-result').textContent.includes('from more-samples.jsonl')",
        "the upload's result line",
    )
    .await;
    let decision = text_of(&c, "#verdict-decision").await;

    // --- the suspects list ranks it, with verdict, p-value, samples, teacher.
    go(&c, &base, "#/suspects", "suspects").await;
    let row = format!("#suspects tr[data-suspect='{id}']");
    wait_js(&c, &format!("document.querySelector(\"{row}\")"), "the suspect's row").await;
    let row_text = text_of(&c, &row).await;
    assert!(row_text.contains("rival-chat-7b") && row_text.contains(&decision), "row: {row_text}");
    assert!(row_text.contains("openai"), "identity claims in the row: {row_text}");
    screenshot(&c, &shots, "suspects").await;

    // --- profiles: families, training summary, calibration ROC.
    go(&c, &base, "#/profiles", "profiles").await;
    wait_js(&c, "document.querySelector('img.roc') && document.querySelector('img.roc').dataset.loaded === 'true' && document.querySelector('img.roc').naturalWidth > 100", "the ROC plot").await;
    assert!(text_of(&c, "section.profile").await.contains("Training summary"));
    screenshot(&c, &shots, "profiles").await;

    // --- a batch job (API) so the jobs page has something to show.
    let job_body: String = (0..40)
        .map(|i| {
            format!(
                "{}\n",
                json!({"text": format!("Batch response number {i}: certainly, here is an answer.")})
            )
        })
        .collect();
    let r = http
        .post(format!("{base}/v1/jobs?suspect={id}"))
        .bearer_auth(&analyst)
        .header("content-type", "application/x-ndjson")
        .body(job_body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());

    // --- jobs: the batch job finishes and shows its progress.
    go(&c, &base, "#/jobs", "jobs").await;
    wait_js(&c, "Array.from(document.querySelectorAll('#jobs tr[data-job] .badge')).some(b => b.textContent === 'done')", "the job done (page polls)").await;
    assert!(text_of(&c, "#jobs").await.contains("40 / 40"));
    let filled = c
        .execute("const b = document.querySelector('#jobs .progress .bar'); return b.getBoundingClientRect().width / b.parentElement.getBoundingClientRect().width;", vec![])
        .await
        .unwrap();
    assert!(filled.as_f64().unwrap() > 0.99, "a finished job's progress bar is {filled} full");
    screenshot(&c, &shots, "jobs").await;

    // --- a viewer reads everything, sees no write controls, and the server refuses its writes.
    c.find(Locator::Id("signout")).await.unwrap().click().await.unwrap();
    wait_js(&c, "document.body.dataset.page === 'signin'", "signed out").await;
    c.find(Locator::Id("key")).await.unwrap().send_keys(&viewer).await.unwrap();
    c.find(Locator::Id("signin-submit")).await.unwrap().click().await.unwrap();
    wait_js(&c, "document.body.dataset.page === 'suspects' && document.getElementById('who-role').textContent === 'viewer'", "the viewer's suspects page").await;
    assert!(!displayed(&c, "#new-suspect").await, "a viewer must not see the new-suspect form");
    go(&c, &base, &format!("#/suspects/{id}"), "suspect").await;
    wait_js(&c, "document.getElementById('verdict-n') && document.getElementById('verdict-n').textContent === '53'", "the viewer's verdict (13 + 40 job samples)").await;
    wait_js(
        &c,
        "document.getElementById('plot-scores').dataset.loaded === 'true'",
        "the viewer's score plot",
    )
    .await;
    assert!(
        !displayed(&c, "#add-samples-card").await,
        "a viewer must not see the add-samples form"
    );
    assert!(!displayed(&c, "#suspect-delete").await, "a viewer must not see the delete button");
    // Reveal the hidden controls as a tampered page would, and try to write anyway.
    c.execute("document.querySelectorAll('.write').forEach(e => { e.hidden = false; });", vec![])
        .await
        .unwrap();
    c.find(Locator::Id("samples-text"))
        .await
        .unwrap()
        .send_keys("A viewer trying to add a sample.")
        .await
        .unwrap();
    c.find(Locator::Id("samples-submit")).await.unwrap().click().await.unwrap();
    let msg = wait_js(&c, "document.getElementById('samples-result').textContent.includes('403') && document.getElementById('samples-result').textContent", "the server's refusal").await;
    assert!(msg.as_str().unwrap().contains("forbidden"), "{msg}");
    c.execute(
        "document.getElementById('add-samples-card').scrollIntoView({block: 'center'});",
        vec![],
    )
    .await
    .unwrap();
    screenshot(&c, &shots, "viewer-refused").await;
    let n = http
        .get(format!("{base}/v1/suspects/{id}"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(n["samples"], json!(53), "the viewer's write must not have landed");

    // --- a probe campaign against a local replay of an OpenAI-compatible endpoint: the suspect
    // page shows its progress live (no reload), then the verdict over the new samples.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut replay = Replay::new("rival-7b", HashMap::new());
    replay.fallback = Some("Certainly! As an AI language model developed by OpenAI, I can help with that. I hope this helps!".into());
    replay.latency_ms = 600;
    tokio::spawn(replay::serve(listener, Arc::new(replay)));
    let r = http
        .post(format!("{base}/v1/allowlist"))
        .bearer_auth(&admin)
        .json(&json!({"entry": format!("127.0.0.1:{port}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    c.refresh().await.unwrap(); // the viewer's page, before the campaign exists
    wait_js(&c, "document.body.dataset.page === 'suspect' && document.getElementById('campaigns-body').textContent.includes('No probe campaigns')", "no campaigns yet").await;
    let r = http
        .post(format!("{base}/v1/campaigns"))
        .bearer_auth(&analyst)
        .json(&json!({
            "endpoint": {"base_url": format!("http://127.0.0.1:{port}/v1"), "model": "rival-7b"},
            "probes": "identity", "budget": {"max_requests": 12}, "concurrency": 1, "suspect_id": id,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
    c.refresh().await.unwrap();
    wait_js(&c, "document.body.dataset.page === 'suspect' && document.querySelector('#campaigns tr[data-campaign]')", "the campaign's row").await;
    // Mark the document: a reload would lose the mark, so progress seen with it is live.
    c.execute("window.__same_document = true;", vec![]).await.unwrap();
    let mut seen = Vec::new();
    let start = Instant::now();
    let final_state = loop {
        let v = c
            .execute("const r = document.querySelector('#campaigns tr[data-campaign]'); return [window.__same_document === true, r.dataset.state, r.querySelector('.campaign-progress').textContent];", vec![])
            .await
            .unwrap();
        assert_eq!(v[0], json!(true), "the page reloaded instead of updating");
        let (state, progress) =
            (v[1].as_str().unwrap().to_string(), v[2].as_str().unwrap().to_string());
        if seen.last() != Some(&progress) {
            seen.push(progress);
        }
        if ["done", "failed", "cancelled"].contains(&state.as_str()) {
            break state;
        }
        assert!(
            start.elapsed() < WAIT * 2,
            "campaign still {state} after {:?}; progress seen: {seen:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(final_state, "done", "progress seen: {seen:?}");
    assert!(seen.len() >= 2, "no live progress: the page showed only {seen:?}");
    // The campaign's answers are samples: the verdict refreshes by itself.
    wait_js(
        &c,
        "Number(document.getElementById('verdict-n').textContent) > 53",
        "the verdict over the campaign's answers",
    )
    .await;
    c.execute("document.getElementById('campaigns').scrollIntoView({block: 'center'});", vec![])
        .await
        .unwrap();
    screenshot(&c, &shots, "suspect-campaign").await;

    // --- the membership panel: a served log, fresh answers, a student's answers, one test.
    let rows = answers::rows(40, 5);
    let log: String = rows
        .iter()
        .map(|r| {
            json!({"prompt": r.prompt, "response": r.served, "account": "acct-9"}).to_string()
                + "\n"
        })
        .collect();
    let fresh: String = rows
        .iter()
        .map(|r| json!({"prompt": r.prompt, "response": r.fresh}).to_string() + "\n")
        .collect();
    let mut ids = Vec::new();
    for (kind, body) in [("served", log), ("fresh", fresh)] {
        let r = http
            .post(format!("{base}/v1/served-logs?kind={kind}"))
            .bearer_auth(&analyst)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        ids.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    let r = http
        .post(format!("{base}/v1/suspects"))
        .bearer_auth(&analyst)
        .json(&json!({"name": "student-of-served"}))
        .send()
        .await
        .unwrap();
    let sid = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let samples: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"prompt": r.prompt, "text": if i.is_multiple_of(2) { answers::copied(&r.served) } else { r.own.clone() }}))
        .collect();
    let r = http
        .post(format!("{base}/v1/suspects/{sid}/samples"))
        .bearer_auth(&analyst)
        .json(&samples)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let r = http
        .post(format!("{base}/v1/suspects/{sid}/membership"))
        .bearer_auth(&analyst)
        .json(&json!({"served_log": ids[0], "account": "acct-9", "fresh_logs": [ids[1]], "options": {"permutations": 999}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    go(&c, &base, &format!("#/suspects/{sid}"), "suspect").await;
    wait_js(&c, "document.getElementById('membership-decision') && document.getElementById('membership-decision').textContent === 'trained_on_served'", "the membership decision").await;
    let marks = wait_js(
        &c,
        "document.querySelectorAll('#membership .side-by-side mark.shared').length",
        "shared spans",
    )
    .await;
    assert!(marks.as_f64().unwrap() >= 2.0, "{marks}");
    // The marked text is the same words in both answers (the served one keeps its case).
    let pair = c
        .execute("const m = document.querySelectorAll('#membership .membership-evidence')[0].querySelectorAll('.side-by-side > div'); return [m[0].querySelector('mark').textContent, m[1].querySelector('mark').textContent];", vec![])
        .await
        .unwrap();
    assert_eq!(pair[0].as_str().unwrap(), pair[1].as_str().unwrap().to_lowercase(), "{pair}");
    wait_js(
        &c,
        "document.getElementById('plot-membership').naturalWidth > 0",
        "the membership plot",
    )
    .await;
    screenshot(&c, &shots, "suspect-membership").await;

    c.close().await.unwrap();
    drop(driver);
    drop(server);
    eprintln!(
        "dashboard e2e: {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        shots.display()
    );
}
