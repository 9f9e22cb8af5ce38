//! One set of store tests, run against every backend: each test body below takes an
//! `Arc<dyn Store>` and is instantiated by `on_both_backends!` as `sqlite::NAME` (a temporary
//! SQLite file) and `postgres::NAME` (a fresh database in the throwaway cluster of
//! `tests/common/pg.rs`; the test fails if PostgreSQL is not installed).

use super::*;
use serde_json::json;
use std::sync::Arc;

async fn sqlite_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("t.sqlite")).await.unwrap();
    (Arc::new(s), dir)
}

async fn pg_store() -> Arc<dyn Store> {
    let db = super::test_pg::fresh_db().await;
    Arc::new(PgStore::connect(&db.url).await.unwrap())
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (s, _dir) = super::sqlite_store().await;
                    super::$name(s).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let s = super::pg_store().await;
                    super::$name(s).await;
                }
            )*
        }
    };
}

on_both_backends!(
    samples_are_deduplicated_per_suspect_and_cascade,
    job_chunks_are_atomic_and_idempotent,
    terminal_job_states_are_final,
    probes_leave_pending_once_and_in_flight_ones_fail_on_restart,
    secrets_list_names_only,
    keys_and_audit,
    lists_order_and_page_alike,
    json_and_text_round_trip,
    missing_rows_and_constraint_errors,
    concurrent_probe_sends_are_at_most_once,
    concurrent_overlapping_sample_inserts_dedup_without_errors,
    concurrent_job_chunks_count_every_result,
    repeated_probe_answers_point_at_one_sample,
    served_logs_round_trip_filter_page_and_cascade,
    job_leases_are_exclusive_expire_and_fence_commits,
    concurrent_claims_take_each_job_once,
    campaign_leases_are_exclusive_expire_and_fence_sends,
    concurrent_campaign_claims_take_each_once,
    rate_slots_space_reservations_from_any_caller,
    job_parts_are_claimed_once_fenced_and_finish_the_job,
    concurrent_part_claims_take_each_part_once,
    profile_files_round_trip_replace_and_cascade,
);

fn sample(h: &str) -> NewSample {
    NewSample {
        content_hash: h.into(),
        text: format!("text {h}"),
        prompt: None,
        source: "t".into(),
        score: None,
    }
}

fn new_job(id: &str, total: Option<i64>) -> NewJob {
    NewJob {
        id: id.into(),
        kind: "score".into(),
        params: json!({}),
        input_path: None,
        total,
        created_by: None,
        parts: Vec::new(),
    }
}

/// A job over 300 bytes in `n` parts of 100 (10 lines each).
fn parted_job(id: &str, n: i64) -> NewJob {
    let parts = (0..n)
        .map(|k| NewPart { start_offset: k * 100, end_offset: (k + 1) * 100, lines_before: k * 10 })
        .collect();
    NewJob { parts, ..new_job(id, Some(n * 10)) }
}

fn new_campaign(id: &str, suspect: &str, n: usize, upstream: bool) -> NewCampaign {
    let probes = (0..n)
        .map(|i| NewProbe {
            probe_id: format!("p{i}"),
            kind: "general".into(),
            prompt: format!("q{i}"),
        })
        .collect();
    NewCampaign {
        id: id.into(),
        suspect_id: suspect.into(),
        spec: json!({}),
        fingerprint: format!("f-{id}"),
        created_by: None,
        probes,
        upstream,
    }
}

async fn samples_are_deduplicated_per_suspect_and_cascade(s: Arc<dyn Store>) {
    s.create_suspect("a", "A", "", "p").await.unwrap();
    s.create_suspect("b", "B", "", "p").await.unwrap();
    let o = s.add_samples("a", vec![sample("h1"), sample("h2"), sample("h1")]).await.unwrap();
    assert!(o.ids[0].is_some() && o.ids[1].is_some() && o.ids[2].is_none());
    let o = s.add_samples("b", vec![sample("h1")]).await.unwrap();
    assert!(o.ids[0].is_some(), "the same content may belong to another suspect");
    assert_eq!(s.get_suspect("a").await.unwrap().unwrap().samples, 2);
    assert!(s.delete_suspect("a").await.unwrap());
    assert!(s.list_samples("a", 10, 0).await.unwrap().is_empty());
    assert!(s.add_samples("nope", vec![sample("x")]).await.is_err(), "foreign key enforced");
}

async fn job_chunks_are_atomic_and_idempotent(s: Arc<dyn Store>) {
    s.create_suspect("a", "A", "", "p").await.unwrap();
    s.create_job(new_job("j", Some(4))).await.unwrap();
    let chunk = |lines: std::ops::Range<i64>, off: i64| JobChunk {
        cursor_offset: off,
        cursor_line: lines.end - 1,
        results: lines.clone().map(|l| (l, json!({"l": l}))).collect(),
        samples: Some(("a".into(), lines.map(|l| sample(&format!("h{l}"))).collect())),
        lease_owner: None,
    };
    s.commit_job_chunk("j", chunk(1..3, 10)).await.unwrap();
    // Re-processing the same lines (e.g. after a crash) neither duplicates results nor samples.
    s.commit_job_chunk("j", chunk(1..3, 10)).await.unwrap();
    s.commit_job_chunk("j", chunk(3..5, 20)).await.unwrap();
    let j = s.get_job("j").await.unwrap().unwrap();
    assert_eq!((j.done, j.cursor_offset, j.cursor_line), (4, 20, 4));
    assert_eq!(s.job_results("j", 0, 100).await.unwrap().len(), 4);
    assert_eq!(s.job_results("j", 2, 100).await.unwrap().len(), 2);
    assert_eq!(s.get_suspect("a").await.unwrap().unwrap().samples, 4);
    // A failing chunk (unknown suspect) rolls back entirely, cursor included.
    let bad = JobChunk {
        cursor_offset: 99,
        cursor_line: 9,
        results: vec![(9, json!({}))],
        samples: Some(("zz".into(), vec![sample("q")])),
        lease_owner: None,
    };
    assert!(s.commit_job_chunk("j", bad).await.is_err());
    let j = s.get_job("j").await.unwrap().unwrap();
    assert_eq!((j.done, j.cursor_offset), (4, 20));
    assert_eq!(
        s.job_results("j", 0, 100).await.unwrap().len(),
        4,
        "the failed chunk's result was rolled back"
    );
}

async fn terminal_job_states_are_final(s: Arc<dyn Store>) {
    s.create_job(new_job("j", None)).await.unwrap();
    assert_eq!(s.unfinished_jobs().await.unwrap().len(), 1);
    assert!(s.set_job_state("j", JobState::Running, None).await.unwrap());
    assert!(s.set_job_state("j", JobState::Cancelled, None).await.unwrap());
    assert!(!s.set_job_state("j", JobState::Done, None).await.unwrap());
    assert_eq!(s.get_job("j").await.unwrap().unwrap().state, JobState::Cancelled);
    assert!(s.unfinished_jobs().await.unwrap().is_empty());
    // The error is kept unless a new one is given.
    s.create_job(new_job("k", None)).await.unwrap();
    assert!(s.set_job_state("k", JobState::Running, Some("boom".into())).await.unwrap());
    assert!(s.set_job_state("k", JobState::Failed, None).await.unwrap());
    assert_eq!(s.get_job("k").await.unwrap().unwrap().error.as_deref(), Some("boom"));
}

async fn probes_leave_pending_once_and_in_flight_ones_fail_on_restart(s: Arc<dyn Store>) {
    s.create_suspect("a", "A", "", "p").await.unwrap();
    let c = NewCampaign { fingerprint: "f".into(), ..new_campaign("c", "a", 3, true) };
    let rec = s.create_campaign(c).await.unwrap();
    assert_eq!((rec.probes.total, rec.probes.pending, rec.state), (3, 3, JobState::Queued));
    assert!(s.mark_probe_sent("c", 1, None).await.unwrap());
    assert!(!s.mark_probe_sent("c", 1, None).await.unwrap(), "a probe is sent at most once");
    let sample = NewSample {
        content_hash: "h".into(),
        text: "answer".into(),
        prompt: Some("q0".into()),
        source: "campaign:c".into(),
        score: None,
    };
    let o = ProbeOutcome {
        answered: true,
        attempts: 2,
        answer: Some("answer".into()),
        error: None,
        tokens: Some(7),
        claims: None,
        sample: Some(sample),
    };
    s.finish_probe("c", 1, o).await.unwrap();
    assert!(s.mark_probe_sent("c", 2, None).await.unwrap());
    assert!(s.mark_upstream_sent("c", 2, None).await.unwrap());
    // Crash here: probe 2 (both sides) is in flight. The restart policy fails it, never re-sends it.
    assert_eq!(s.fail_in_flight_probes("c", "lost").await.unwrap(), 2);
    assert!(!s.mark_probe_sent("c", 2, None).await.unwrap());
    let c = s.get_campaign("c").await.unwrap().unwrap();
    assert_eq!(
        (c.probes.answered, c.probes.failed, c.probes.pending, c.probes.sent, c.tokens),
        (1, 1, 1, 2, 7)
    );
    assert_eq!(c.probes.upstream_failed, 1);
    let p = s.campaign_probes("c", Some(ProbeState::Answered), 0, 10).await.unwrap();
    assert_eq!(p.len(), 1);
    assert!(p[0].sample_id.is_some());
    assert_eq!(s.get_suspect("a").await.unwrap().unwrap().samples, 1);
    assert_eq!(s.campaign_by_fingerprint("f").await.unwrap().unwrap().id, "c");
    assert!(s.set_campaign_state("c", JobState::Done, None).await.unwrap());
    assert!(s.unfinished_campaigns().await.unwrap().is_empty());
}

async fn secrets_list_names_only(s: Arc<dyn Store>) {
    s.put_secret("OPENAI", "sk-123", None).await.unwrap();
    s.put_secret("OPENAI", "sk-456", None).await.unwrap();
    assert_eq!(s.get_secret("OPENAI").await.unwrap().as_deref(), Some("sk-456"));
    let l = serde_json::to_string(&s.list_secrets().await.unwrap()).unwrap();
    assert!(l.contains("OPENAI") && !l.contains("sk-"));
    // Hosts a secret is bound to (issue 14 item 5): kept when the value is replaced.
    assert_eq!(s.secret_hosts("OPENAI").await.unwrap(), Some(vec![]));
    let hosts = vec!["api.example:443".to_string(), "[::1]:8080".to_string()];
    assert!(s.set_secret_hosts("OPENAI", hosts.clone()).await.unwrap());
    assert!(!s.set_secret_hosts("NOPE", hosts.clone()).await.unwrap());
    assert_eq!(s.secret_hosts("NOPE").await.unwrap(), None);
    assert_eq!(s.put_secret("OPENAI", "sk-789", None).await.unwrap().hosts, hosts);
    assert_eq!(s.secret_hosts("OPENAI").await.unwrap(), Some(hosts.clone()));
    assert_eq!(s.list_secrets().await.unwrap()[0].hosts, hosts);
    assert!(s.delete_secret("OPENAI").await.unwrap());
    assert!(s.get_secret("OPENAI").await.unwrap().is_none());
}

async fn keys_and_audit(s: Arc<dyn Store>) {
    s.create_key("k1", "n", Role::Admin, "abc").await.unwrap();
    assert!(s.create_key("k2", "n", Role::Admin, "abc").await.is_err(), "hash is unique");
    assert_eq!(s.key_by_hash("abc").await.unwrap().unwrap().role, Role::Admin);
    assert!(s.revoke_key("k1").await.unwrap());
    assert!(!s.revoke_key("k1").await.unwrap());
    let e = |k: Option<&str>, a: &str| AuditEntry {
        id: 0,
        at_ms: now_ms(),
        key_id: k.map(Into::into),
        role: None,
        action: a.into(),
        target: "/".into(),
        detail: json!({"x": 1}),
        status: 200,
    };
    s.append_audit(vec![
        e(Some("k1"), "POST /v1/score"),
        e(None, "POST /v1/suspects"),
        e(Some("k1"), "DELETE /v1/x"),
    ])
    .await
    .unwrap();
    let all = s.list_audit(AuditQuery::default()).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].action, "DELETE /v1/x");
    assert_eq!(all[2].detail["x"], 1);
    let q = AuditQuery { key_id: Some("k1".into()), ..Default::default() };
    assert_eq!(s.list_audit(q).await.unwrap().len(), 2);
    let q = AuditQuery { before_id: Some(all[0].id), limit: Some(1), ..Default::default() };
    assert_eq!(s.list_audit(q).await.unwrap()[0].id, all[1].id);
    // `action` is a plain, case-sensitive substring (no LIKE wildcards).
    let q = |a: &str| AuditQuery { action: Some(a.into()), ..Default::default() };
    assert_eq!(s.list_audit(q("POST")).await.unwrap().len(), 2);
    assert_eq!(s.list_audit(q("post")).await.unwrap().len(), 0);
    assert_eq!(s.list_audit(q("%")).await.unwrap().len(), 0);
    assert_eq!(s.list_audit(q("/v1/s")).await.unwrap().len(), 2);
    let q = AuditQuery { since_ms: Some(now_ms() + 60_000), ..Default::default() };
    assert!(s.list_audit(q).await.unwrap().is_empty());
}

/// Byte order for names and ids (SQLite's BINARY collation) whatever the database's locale;
/// NULL strengths last; paging, negative limits (none) and offsets (zero) as SQLite has them.
async fn lists_order_and_page_alike(s: Arc<dyn Store>) {
    for (id, name) in
        [("s1", "b"), ("s2", "B"), ("s3", "a"), ("s4", "A"), ("s5", "_x"), ("s6", "é"), ("s7", "a")]
    {
        s.create_suspect(id, name, "", "p").await.unwrap();
    }
    let names = |v: Vec<SuspectRecord>| v.into_iter().map(|r| r.name).collect::<Vec<_>>();
    assert_eq!(
        names(s.list_suspects(SuspectOrder::Name, 100, 0).await.unwrap()),
        ["A", "B", "_x", "a", "a", "b", "é"]
    );
    let ids = |v: Vec<SuspectRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_suspects(SuspectOrder::Name, 2, 3).await.unwrap()),
        ["s3", "s7"],
        "equal names: by id"
    );
    assert_eq!(
        s.list_suspects(SuspectOrder::Name, -1, 0).await.unwrap().len(),
        7,
        "a negative limit is no limit"
    );
    assert_eq!(
        s.list_suspects(SuspectOrder::Name, 100, -5).await.unwrap().len(),
        7,
        "a negative offset is 0"
    );
    assert_eq!(s.list_suspects(SuspectOrder::Name, 0, 0).await.unwrap().len(), 0);
    // Strength: strongest first, unscored (and NaN, stored as NULL) last.
    s.set_verdict("s1", json!({"v": 1}), 3, 1.5).await.unwrap();
    s.set_verdict("s2", json!({"v": 2}), 3, f64::INFINITY).await.unwrap();
    s.set_verdict("s3", json!({"v": 3}), 3, f64::NAN).await.unwrap();
    s.set_verdict("s4", json!({"v": 4}), 3, 0.0).await.unwrap();
    let by_strength = s.list_suspects(SuspectOrder::Strength, 100, 0).await.unwrap();
    assert_eq!(
        by_strength[..3].iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["s2", "s1", "s4"]
    );
    assert_eq!(by_strength[1].strength, Some(1.5));
    assert_eq!(by_strength[0].strength, Some(f64::INFINITY));
    let nan = s.get_suspect("s3").await.unwrap().unwrap();
    assert_eq!((nan.strength, nan.verdict_n), (None, Some(3)), "NaN strength reads back as none");
    assert!(by_strength[3..].iter().all(|r| r.strength.is_none()));
    // Created: newest first, ties by id.
    let created = s.list_suspects(SuspectOrder::Created, 100, 0).await.unwrap();
    assert!(created.windows(2).all(|w| w[0].created_ms > w[1].created_ms
        || (w[0].created_ms == w[1].created_ms && w[0].id < w[1].id)));

    for id in ["jb", "jA", "ja"] {
        s.create_job(new_job(id, None)).await.unwrap();
    }
    let jobs = s.list_jobs(i64::MAX, 0).await.unwrap();
    assert_eq!(jobs.len(), 3);
    assert!(jobs.windows(2).all(|w| w[0].created_ms > w[1].created_ms
        || (w[0].created_ms == w[1].created_ms && w[0].id < w[1].id)));
    assert_eq!(s.list_jobs(1, 1).await.unwrap()[0].id, jobs[1].id);
    assert_eq!(s.unfinished_jobs().await.unwrap().len(), 3);

    s.create_campaign(new_campaign("cb", "s1", 3, false)).await.unwrap();
    s.create_campaign(new_campaign("cA", "s1", 0, false)).await.unwrap();
    let cs = s.list_campaigns(10, 0).await.unwrap();
    assert_eq!(cs.len(), 2);
    assert!(cs.iter().any(|c| c.id == "cA" && c.probes.total == 0 && c.probes.pending == 0));
    assert!(s.list_campaigns(-1, 0).await.unwrap().is_empty(), "campaigns: a negative limit is 0");
    assert_eq!(s.list_campaigns(10, -1).await.unwrap().len(), 2);
    let probes = s.campaign_probes("cb", None, 1, -1).await.unwrap();
    assert_eq!(probes.iter().map(|p| p.seq).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(s.campaign_probes("cb", Some(ProbeState::Pending), 0, 2).await.unwrap().len(), 2);
    assert!(s
        .campaign_probes("cb", None, 0, 10)
        .await
        .unwrap()
        .iter()
        .all(|p| p.upstream_state.is_none()));

    for (e, note) in [("b.example:443", "1"), ("A.example:443", "2"), ("a.example:443", "3")] {
        s.add_allowlist(AllowEntry {
            entry: e.into(),
            note: note.into(),
            created_by: None,
            created_ms: 1,
            max_rate_per_sec: None,
        })
        .await
        .unwrap();
    }
    s.add_allowlist(AllowEntry {
        entry: "a.example:443".into(),
        note: "new".into(),
        created_by: None,
        created_ms: 2,
        max_rate_per_sec: Some(0.5),
    })
    .await
    .unwrap();
    let al = s.list_allowlist().await.unwrap();
    assert_eq!(
        al.iter().map(|e| e.entry.as_str()).collect::<Vec<_>>(),
        ["A.example:443", "a.example:443", "b.example:443"]
    );
    assert_eq!(
        (al[1].note.as_str(), al[1].created_ms),
        ("new", 1),
        "an existing entry only gets the new note"
    );
    assert_eq!((al[1].max_rate_per_sec, al[0].max_rate_per_sec), (Some(0.5), None), "and ceiling");
    assert!(s.delete_allowlist("a.example:443").await.unwrap());
    assert!(!s.delete_allowlist("a.example:443").await.unwrap());

    for n in ["b", "B", "a"] {
        s.put_secret(n, "v", Some("me".into())).await.unwrap();
    }
    assert_eq!(
        s.list_secrets().await.unwrap().iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        ["B", "a", "b"]
    );

    s.create_key("kb", "n", Role::Viewer, "h1").await.unwrap();
    s.create_key("kA", "n", Role::Analyst, "h2").await.unwrap();
    let keys = s.list_keys().await.unwrap();
    assert!(keys.windows(2).all(|w| w[0].created_ms < w[1].created_ms
        || (w[0].created_ms == w[1].created_ms && w[0].id < w[1].id)));

    // Profiles: built-in first, then by name; the built-in one cannot be deleted.
    let prof = |name: &str, builtin: bool| ProfileRecord {
        name: name.into(),
        upstream: "openai".into(),
        meta: json!({"n": name}),
        path: (!builtin).then(|| format!("profiles/{name}.pdg")),
        builtin,
        created_ms: 5,
    };
    for (n, b) in [("b", false), ("z-builtin", true), ("B", false)] {
        s.upsert_profile(prof(n, b)).await.unwrap();
    }
    s.upsert_profile(ProfileRecord { upstream: "anthropic".into(), ..prof("b", false) })
        .await
        .unwrap();
    let ps = s.list_profiles().await.unwrap();
    assert_eq!(ps.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["z-builtin", "B", "b"]);
    assert!(ps[0].builtin && !ps[1].builtin);
    assert_eq!(s.get_profile("b").await.unwrap().unwrap().upstream, "anthropic");
    assert_eq!(s.get_profile("b").await.unwrap().unwrap().path.as_deref(), Some("profiles/b.pdg"));
    assert!(!s.delete_profile("z-builtin").await.unwrap());
    assert!(s.delete_profile("B").await.unwrap());
    assert!(s.get_profile("B").await.unwrap().is_none());
}

/// JSON comes back as it went in (stored as text by both); text is kept byte for byte.
async fn json_and_text_round_trip(s: Arc<dyn Store>) {
    let doc = json!({
        "float": 0.1, "tiny": 1e-300, "huge": 1.7976931348623157e308, "neg": -2.5e-7,
        "big": u64::MAX, "small": i64::MIN, "s": "é \u{1F30D} \"q\" \\ \u{0001}",
        "z": [1, {"b": null, "a": true}], "a": {}
    });
    s.create_suspect("x", "名前 \u{1F30D}", "multi\nline\t", "p").await.unwrap();
    s.set_verdict("x", doc.clone(), 1, 2.0).await.unwrap();
    let r = s.get_suspect("x").await.unwrap().unwrap();
    assert_eq!(r.verdict.as_ref(), Some(&doc));
    assert_eq!((r.name.as_str(), r.description.as_str()), ("名前 \u{1F30D}", "multi\nline\t"));
    let text = "Bonjour — ça va? \u{1F600}\r\n\ttabs & 'quotes' \\ \u{7f}".to_string();
    let n = NewSample {
        content_hash: "h".into(),
        text: text.clone(),
        prompt: Some("p\u{e9}".into()),
        source: "src".into(),
        score: Some(doc.clone()),
    };
    let id = s.add_samples("x", vec![n]).await.unwrap().ids[0].unwrap();
    let got = s.get_sample(id).await.unwrap().unwrap();
    assert_eq!(
        (got.text.as_str(), got.prompt.as_deref(), got.score.as_ref()),
        (text.as_str(), Some("pé"), Some(&doc))
    );
    assert_eq!(s.sample_scores("x").await.unwrap(), vec![(id, doc.clone())]);
    s.create_job(NewJob { params: doc.clone(), ..new_job("j", None) }).await.unwrap();
    s.commit_job_chunk(
        "j",
        JobChunk {
            cursor_offset: 1,
            cursor_line: 1,
            results: vec![(1, doc.clone())],
            samples: None,
            lease_owner: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(s.get_job("j").await.unwrap().unwrap().params, doc);
    assert_eq!(s.job_results("j", 0, 10).await.unwrap()[0].result, doc);
    s.append_audit(vec![AuditEntry {
        id: 0,
        at_ms: 1,
        key_id: None,
        role: Some("admin".into()),
        action: "GET /".into(),
        target: "/".into(),
        detail: doc.clone(),
        status: 599,
    }])
    .await
    .unwrap();
    let a = &s.list_audit(AuditQuery::default()).await.unwrap()[0];
    assert_eq!((&a.detail, a.status, a.role.as_deref()), (&doc, 599, Some("admin")));
    s.create_campaign(NewCampaign { spec: doc.clone(), ..new_campaign("c", "x", 1, false) })
        .await
        .unwrap();
    let p = CampaignProgress {
        sequential: Some(doc.clone()),
        p_value: Some(0.01),
        decision: Some("undecided".into()),
        ..Default::default()
    };
    s.update_campaign_progress("c", p).await.unwrap();
    // Fields not given keep their values; NaN is stored as none.
    let p = CampaignProgress {
        p_value: Some(f64::NAN),
        teacher: Some("gpt".into()),
        ..Default::default()
    };
    s.update_campaign_progress("c", p).await.unwrap();
    let c = s.get_campaign("c").await.unwrap().unwrap();
    assert_eq!(
        (c.spec, c.sequential, c.p_value, c.decision.as_deref(), c.teacher.as_deref()),
        (doc.clone(), Some(doc.clone()), Some(0.01), Some("undecided"), Some("gpt"))
    );
}

async fn missing_rows_and_constraint_errors(s: Arc<dyn Store>) {
    assert!(s.get_suspect("nope").await.unwrap().is_none());
    assert!(s.get_job("nope").await.unwrap().is_none());
    assert!(s.get_sample(123_456).await.unwrap().is_none());
    assert!(s.get_campaign("nope").await.unwrap().is_none());
    assert!(s.campaign_by_fingerprint("nope").await.unwrap().is_none());
    assert!(s.key_by_hash("nope").await.unwrap().is_none());
    assert!(s.get_profile("nope").await.unwrap().is_none());
    assert!(s.get_secret("nope").await.unwrap().is_none());
    assert!(!s.revoke_key("nope").await.unwrap());
    assert!(!s.delete_suspect("nope").await.unwrap());
    assert!(!s.delete_profile("nope").await.unwrap());
    assert!(!s.delete_secret("nope").await.unwrap());
    assert!(!s.set_job_state("nope", JobState::Done, None).await.unwrap());
    assert!(!s.set_campaign_state("nope", JobState::Done, None).await.unwrap());
    assert!(!s.mark_probe_sent("nope", 1, None).await.unwrap());
    assert!(!s.mark_upstream_sent("nope", 1, None).await.unwrap());
    assert_eq!(s.fail_in_flight_probes("nope", "x").await.unwrap(), 0);
    assert!(s.job_results("nope", 0, 10).await.unwrap().is_empty());
    assert!(s.list_samples("nope", 10, 0).await.unwrap().is_empty());
    let o = ProbeOutcome {
        answered: false,
        attempts: 1,
        answer: None,
        error: Some("e".into()),
        tokens: None,
        claims: None,
        sample: None,
    };
    assert!(
        s.finish_probe("nope", 1, o).await.is_err(),
        "finishing a probe of an unknown campaign is an error"
    );
    // Unique and foreign keys.
    s.create_suspect("a", "A", "", "p").await.unwrap();
    assert!(s.create_suspect("a", "again", "", "p").await.is_err());
    s.create_job(new_job("j", None)).await.unwrap();
    assert!(s.create_job(new_job("j", None)).await.is_err());
    assert!(
        s.create_campaign(new_campaign("c", "nope", 2, false)).await.is_err(),
        "campaign of an unknown suspect"
    );
    assert!(s.get_campaign("c").await.unwrap().is_none(), "nothing of it was kept");
    assert!(s.create_campaign(new_campaign("c", "a", 2, false)).await.is_ok());
    assert!(s.create_campaign(new_campaign("c", "a", 2, false)).await.is_err());
    let chunk = JobChunk {
        cursor_offset: 1,
        cursor_line: 1,
        results: vec![(1, json!({}))],
        samples: None,
        lease_owner: None,
    };
    assert!(s.commit_job_chunk("nope", chunk).await.is_err(), "results of an unknown job");
    // Deleting a suspect removes its samples and campaigns (and their probes).
    assert!(s.delete_suspect("a").await.unwrap());
    assert!(s.get_campaign("c").await.unwrap().is_none());
    assert!(s.campaign_probes("c", None, 0, 10).await.unwrap().is_empty());
}

async fn concurrent_probe_sends_are_at_most_once(s: Arc<dyn Store>) {
    s.create_suspect("a", "A", "", "p").await.unwrap();
    s.create_campaign(new_campaign("c", "a", 4, true)).await.unwrap();
    for seq in 1..=4 {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        s.mark_probe_sent("c", seq, None).await
                    } else {
                        s.mark_upstream_sent("c", seq, None).await
                    }
                })
            })
            .collect();
        let mut won = (0, 0);
        for (i, t) in tasks.into_iter().enumerate() {
            if t.await.unwrap().unwrap() {
                if i % 2 == 0 {
                    won.0 += 1
                } else {
                    won.1 += 1
                }
            }
        }
        assert_eq!(won, (1, 1), "probe {seq}: exactly one send per side");
    }
    // Finishing and failing in flight concurrently: every probe ends answered or failed, once.
    let mut tasks = Vec::new();
    for seq in 1..=4 {
        let s2 = s.clone();
        tasks.push(tokio::spawn(async move {
            let sample = NewSample {
                content_hash: format!("h{seq}"),
                text: format!("a{seq}"),
                prompt: None,
                source: "c".into(),
                score: None,
            };
            let o = ProbeOutcome {
                answered: true,
                attempts: 1,
                answer: Some("x".into()),
                error: None,
                tokens: Some(1),
                claims: None,
                sample: Some(sample),
            };
            // A finish that comes after the restart policy failed its probe writes nothing.
            match s2.finish_probe("c", seq, o).await {
                Ok(()) => Ok(0),
                Err(StoreError::LeaseLost(_)) => Ok(1),
                Err(e) => Err(e),
            }
        }));
    }
    let s2 = s.clone();
    tasks.push(tokio::spawn(async move { s2.fail_in_flight_probes("c", "restart").await }));
    let mut refused = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        let n = t.await.unwrap().unwrap();
        if i < 4 {
            refused += n;
        }
    }
    let c = s.get_campaign("c").await.unwrap().unwrap();
    assert_eq!(c.probes.answered + c.probes.failed, 4, "{:?}", c.probes);
    assert_eq!(c.probes.failed as u64, refused, "a refused finish is exactly a failed probe");
    assert_eq!(c.probes.upstream_failed, 4);
    // Tokens and samples only of the finishes that were recorded.
    assert_eq!(c.tokens, c.probes.answered);
    assert_eq!(s.get_suspect("a").await.unwrap().unwrap().samples, c.probes.answered);
}

/// Two writers adding overlapping samples in opposite orders: every sample once, no error (on
/// PostgreSQL this would deadlock without the suspect row lock).
async fn concurrent_overlapping_sample_inserts_dedup_without_errors(s: Arc<dyn Store>) {
    s.create_suspect("a", "A", "", "p").await.unwrap();
    let hashes: Vec<String> = (0..40).map(|i| format!("h{i}")).collect();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let s = s.clone();
        let mut hs = hashes.clone();
        if w % 2 == 1 {
            hs.reverse();
        }
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for part in hs.chunks(10) {
                let o = s.add_samples("a", part.iter().map(|h| sample(h)).collect()).await.unwrap();
                out.extend(o.ids.into_iter().flatten());
            }
            out
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "each sample inserted exactly once");
    let listed = s.list_samples("a", 1000, 0).await.unwrap();
    assert_eq!(listed.len(), 40);
    assert!(listed.windows(2).all(|w| w[0].id < w[1].id), "samples list in insertion (id) order");
    assert_eq!(listed.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
}

/// Chunks of one job committed concurrently: `done` counts every committed result.
async fn concurrent_job_chunks_count_every_result(s: Arc<dyn Store>) {
    s.create_suspect("a", "A", "", "p").await.unwrap();
    s.create_job(new_job("j", Some(200))).await.unwrap();
    let tasks: Vec<_> = (0..8i64)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                for k in 0..5i64 {
                    let first = w * 25 + k * 5 + 1;
                    let lines = first..first + 5;
                    let chunk = JobChunk {
                        cursor_offset: lines.end,
                        cursor_line: lines.end,
                        results: lines.clone().map(|l| (l, json!({"l": l}))).collect(),
                        samples: Some((
                            "a".into(),
                            lines.map(|l| sample(&format!("h{l}"))).collect(),
                        )),
                        lease_owner: None,
                    };
                    s.commit_job_chunk("j", chunk).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let j = s.get_job("j").await.unwrap().unwrap();
    assert_eq!(j.done, 200);
    let rows = s.job_results("j", 0, 1000).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.line_no).collect::<Vec<_>>(), (1..=200).collect::<Vec<_>>());
    assert_eq!(s.get_suspect("a").await.unwrap().unwrap().samples, 200);
}

async fn repeated_probe_answers_point_at_one_sample(s: Arc<dyn Store>) {
    s.create_suspect("a", "A", "", "p").await.unwrap();
    s.create_campaign(new_campaign("c", "a", 2, false)).await.unwrap();
    let outcome = || ProbeOutcome {
        answered: true,
        attempts: 1,
        answer: Some("same".into()),
        error: None,
        tokens: None,
        claims: Some(json!(["claims", 1])),
        sample: Some(NewSample {
            content_hash: "same".into(),
            text: "same".into(),
            prompt: None,
            source: "c".into(),
            score: None,
        }),
    };
    for seq in [1, 2] {
        assert!(s.mark_probe_sent("c", seq, None).await.unwrap());
        s.finish_probe("c", seq, outcome()).await.unwrap();
    }
    let p = s.campaign_probes("c", None, 0, 10).await.unwrap();
    assert!(p[0].sample_id.is_some());
    assert_eq!(p[0].sample_id, p[1].sample_id);
    assert_eq!(p[1].claims, Some(json!(["claims", 1])));
    assert!(p
        .iter()
        .all(|p| p.sent_ms.is_some() && p.done_ms.is_some() && p.state == ProbeState::Answered));
    let c = s.get_campaign("c").await.unwrap().unwrap();
    assert_eq!((c.tokens, c.probes.answered, c.probes.upstream_answered), (0, 2, 0));
    assert_eq!(s.get_suspect("a").await.unwrap().unwrap().samples, 1);
}

/// `store::open` picks the backend from the configuration, and never shows the password.
#[tokio::test]
async fn open_selects_the_backend_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = StoreArgs { data: data.clone(), database_url: None };
    let s = open(&cfg).await.unwrap();
    s.create_suspect("a", "A", "", "p").await.unwrap();
    s.close().await.unwrap();
    assert!(data.join("pedigree.sqlite").exists(), "no URL: SQLite under --data");
    assert!(describe(&cfg).starts_with("SQLite "));

    let db = super::test_pg::fresh_db().await;
    let data2 = dir.path().join("data2");
    let mut cfg = StoreArgs { data: data2.clone(), database_url: None };
    cfg.database_url = Some(DatabaseUrl::new(db.url.replacen("postgres@", "postgres:hunter2@", 1)));
    let s = open(&cfg).await.unwrap();
    assert!(s.get_suspect("a").await.unwrap().is_none(), "a fresh PostgreSQL database");
    s.create_suspect("b", "B", "", "p").await.unwrap();
    s.close().await.unwrap();
    assert!(!data2.join("pedigree.sqlite").exists(), "PostgreSQL: no SQLite file");
    let d = describe(&cfg);
    assert!(d.starts_with("PostgreSQL postgres://postgres:***@") && !d.contains("hunter2"), "{d}");
    let again = open(&cfg).await.unwrap();
    assert_eq!(
        again.get_suspect("b").await.unwrap().unwrap().name,
        "B",
        "reopened: migrations are idempotent"
    );

    // An empty URL is no URL; another scheme is refused, redacted.
    cfg.database_url = Some(DatabaseUrl::new(""));
    assert!(describe(&cfg).starts_with("SQLite "));
    cfg.database_url = Some(DatabaseUrl::new("mysql://root:hunter2@db/x"));
    let e = open(&cfg).await.err().expect("mysql is refused").to_string();
    assert!(e.contains("mysql://root:***@db/x") && !e.contains("hunter2"), "{e}");
    // A server that is not there: the error does not show the password either.
    cfg.database_url =
        Some(DatabaseUrl::new("postgres://u:hunter2@localhost/x?host=/nonexistent-dir"));
    let e = open(&cfg).await.err().expect("no server").to_string();
    assert!(!e.contains("hunter2"), "{e}");
}

/// Served logs: answers kept in order with accounts and times (NUL-free Unicode round-trips),
/// the account filter and paging, newest-first listing, the upstream's further fresh answers,
/// membership results newest first and kept when their suspect's log is deleted, gone with
/// the suspect.
async fn served_logs_round_trip_filter_page_and_cascade(s: Arc<dyn Store>) {
    use crate::{MembershipRecord, ServedAnswerRow, ServedKind, ServedLogRecord};
    let log = |id: &str, ms: i64| ServedLogRecord {
        id: id.into(),
        name: format!("log {id}"),
        kind: ServedKind::Served,
        format: "jsonl".into(),
        answers: 3,
        prompts: 2,
        accounts: vec![datasets::AccountSummary {
            account: Some("a".into()),
            answers: 2,
            prompts: 2,
            first_created: Some(1),
            last_created: Some(2),
        }],
        created_by: Some("k".into()),
        created_ms: ms,
    };
    let rows = vec![
        ServedAnswerRow {
            seq: 1,
            prompt: "p1 ünï".into(),
            response: "r1 — 😀".into(),
            account: Some("a".into()),
            created: Some(1),
        },
        ServedAnswerRow {
            seq: 2,
            prompt: "p2".into(),
            response: "r2".into(),
            account: None,
            created: None,
        },
        ServedAnswerRow {
            seq: 3,
            prompt: "p1".into(),
            response: "r3".into(),
            account: Some("a".into()),
            created: Some(2),
        },
    ];
    let got = s.create_served_log(log("srv_1", 10), rows.clone()).await.unwrap();
    assert_eq!(got.id, "srv_1");
    s.create_served_log(log("srv_2", 20), vec![]).await.unwrap();
    assert!(s.create_served_log(log("srv_1", 30), vec![]).await.is_err(), "duplicate id");
    let back = s.get_served_log("srv_1").await.unwrap().unwrap();
    assert_eq!((back.kind, back.answers, back.prompts), (ServedKind::Served, 3, 2));
    assert_eq!(back.accounts[0].last_created, Some(2));
    assert!(s.get_served_log("srv_x").await.unwrap().is_none());
    let ids: Vec<String> =
        s.list_served_logs(10, 0).await.unwrap().into_iter().map(|l| l.id).collect();
    assert_eq!(ids, ["srv_2", "srv_1"]);
    assert_eq!(s.list_served_logs(1, 1).await.unwrap()[0].id, "srv_1");
    assert_eq!(s.served_answers("srv_1", None, 0, 100).await.unwrap(), rows);
    let a = s.served_answers("srv_1", Some("a".into()), 0, 100).await.unwrap();
    assert_eq!(a.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 3]);
    let page = s.served_answers("srv_1", None, 1, 1).await.unwrap();
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);

    s.create_suspect("sus_m", "m", "", "p").await.unwrap();
    let rec = |id: &str, ms: i64| MembershipRecord {
        id: id.into(),
        suspect_id: "sus_m".into(),
        served_log: "srv_1".into(),
        account: Some("a".into()),
        campaign_id: None,
        decision: "not_detected".into(),
        p_value: 0.5,
        prompts: 20,
        report: json!({"effect": 0.01, "evidence": [{"prompt": "p1 ünï"}]}),
        created_by: None,
        created_ms: ms,
    };
    s.add_membership_result(rec("mem_1", 1)).await.unwrap();
    s.add_membership_result(rec("mem_2", 2)).await.unwrap();
    let r = s.membership_results("sus_m", 10).await.unwrap();
    assert_eq!(r.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["mem_2", "mem_1"]);
    assert_eq!(r[0].report["evidence"][0]["prompt"], "p1 ünï");
    assert_eq!(s.membership_results("sus_m", 1).await.unwrap().len(), 1);
    assert!(s.delete_served_log("srv_1").await.unwrap());
    assert!(!s.delete_served_log("srv_1").await.unwrap());
    assert!(s.served_answers("srv_1", None, 0, 100).await.unwrap().is_empty(), "answers cascade");
    assert_eq!(
        s.membership_results("sus_m", 10).await.unwrap().len(),
        2,
        "results outlive the log"
    );
    assert!(s.delete_suspect("sus_m").await.unwrap());
    assert!(
        s.membership_results("sus_m", 10).await.unwrap().is_empty(),
        "results go with the suspect"
    );

    // The upstream's further fresh answers round-trip on the probe.
    s.create_suspect("sus_c", "c", "", "p").await.unwrap();
    s.create_campaign(new_campaign("cmp_u", "sus_c", 1, true)).await.unwrap();
    assert!(s.mark_upstream_sent("cmp_u", 1, None).await.unwrap());
    s.finish_upstream("cmp_u", 1, Some("f1".into()), vec!["f2".into(), "f3 ü".into()], None)
        .await
        .unwrap();
    let p = &s.campaign_probes("cmp_u", None, 0, 10).await.unwrap()[0];
    assert_eq!(
        (p.upstream_answer.as_deref(), p.upstream_extra.clone()),
        (Some("f1"), vec!["f2".to_string(), "f3 ü".to_string()])
    );
}

async fn job_leases_are_exclusive_expire_and_fence_commits(s: Arc<dyn Store>) {
    for id in ["j1", "j2"] {
        s.create_job(new_job(id, Some(2))).await.unwrap();
        // Distinct creation times: claims take the oldest first.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let a = s.claim_job("rep-a", 60_000).await.unwrap().expect("a job to claim");
    assert_eq!((a.id.as_str(), a.lease_owner.as_deref()), ("j1", Some("rep-a")));
    assert!(a.lease_expires_ms.is_some_and(|t| t > now_ms() + 50_000), "{a:?}");
    let b = s.claim_job("rep-b", 60_000).await.unwrap().expect("the other job");
    assert_eq!(b.id, "j2", "a held lease is not claimed again");
    assert!(s.claim_job("rep-c", 60_000).await.unwrap().is_none(), "every lease is held");

    // Only the holder renews; the holder commits, anyone else writes nothing.
    assert!(s.renew_job_lease("j1", "rep-a", 60_000).await.unwrap());
    assert!(!s.renew_job_lease("j1", "rep-b", 60_000).await.unwrap());
    let chunk = |owner: &str, line: i64| JobChunk {
        cursor_offset: line * 10,
        cursor_line: line,
        results: vec![(line, json!({"line": line}))],
        samples: None,
        lease_owner: Some(owner.into()),
    };
    s.commit_job_chunk("j1", chunk("rep-a", 1)).await.unwrap();
    let e = s.commit_job_chunk("j1", chunk("rep-b", 2)).await.unwrap_err();
    assert!(matches!(e, StoreError::LeaseLost(ref id) if id == "j1"), "{e:?}");
    let j1 = s.get_job("j1").await.unwrap().unwrap();
    assert_eq!((j1.done, j1.cursor_line), (1, 1), "the fenced commit wrote nothing");

    // An expired lease (renewed to end in the past) goes to the next claimer, and the old holder
    // can neither renew nor commit.
    assert!(s.renew_job_lease("j1", "rep-a", -1).await.unwrap());
    let c = s.claim_job("rep-c", 60_000).await.unwrap().expect("the expired job");
    assert_eq!((c.id.as_str(), c.cursor_line), ("j1", 1), "resumed from the committed cursor");
    assert!(!s.renew_job_lease("j1", "rep-a", 60_000).await.unwrap());
    assert!(s.commit_job_chunk("j1", chunk("rep-a", 2)).await.is_err());
    s.commit_job_chunk("j1", chunk("rep-c", 2)).await.unwrap();

    // Released leases are claimable at once; a finished job is never claimed nor renewed.
    assert_eq!(s.release_job_leases("rep-b", Some("j1")).await.unwrap(), 0, "not rep-b's");
    assert_eq!(s.release_job_leases("rep-b", None).await.unwrap(), 1);
    assert_eq!(s.claim_job("rep-d", 60_000).await.unwrap().map(|j| j.id), Some("j2".into()));
    assert!(s.set_job_state("j2", JobState::Done, None).await.unwrap());
    assert!(!s.renew_job_lease("j2", "rep-d", 60_000).await.unwrap());
    assert_eq!(s.release_job_leases("rep-d", None).await.unwrap(), 1);
    assert!(s.claim_job("rep-e", 60_000).await.unwrap().is_none(), "j2 is done, j1 is held");
}

async fn concurrent_claims_take_each_job_once(s: Arc<dyn Store>) {
    for i in 0..6 {
        s.create_job(new_job(&format!("c{i}"), None)).await.unwrap();
    }
    let claims = (0..12).map(|i| {
        let s = s.clone();
        tokio::spawn(async move { s.claim_job(&format!("rep-{i}"), 60_000).await.unwrap() })
    });
    let mut got: Vec<String> = Vec::new();
    for c in claims {
        if let Some(j) = c.await.unwrap() {
            got.push(j.id);
        }
    }
    got.sort();
    assert_eq!(got, ["c0", "c1", "c2", "c3", "c4", "c5"], "each job claimed exactly once");
}

async fn campaign_leases_are_exclusive_expire_and_fence_sends(s: Arc<dyn Store>) {
    s.create_suspect("a", "A", "", "p").await.unwrap();
    for id in ["c1", "c2"] {
        s.create_campaign(new_campaign(id, "a", 3, true)).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let a = s.claim_campaign("rep-a", 60_000, None).await.unwrap().expect("a campaign");
    assert_eq!((a.id.as_str(), a.lease_owner.as_deref()), ("c1", Some("rep-a")));
    assert!(a.lease_expires_ms.is_some_and(|t| t > now_ms() + 50_000), "{a:?}");
    // The claim loop never takes back what it holds; a named claim by the holder does.
    assert_eq!(
        s.claim_campaign("rep-a", 60_000, None).await.unwrap().map(|c| c.id),
        Some("c2".into())
    );
    assert!(s.claim_campaign("rep-b", 60_000, None).await.unwrap().is_none(), "both held");
    assert!(s.claim_campaign("rep-b", 60_000, Some("c1")).await.unwrap().is_none());
    assert!(s.claim_campaign("rep-a", 60_000, Some("c1")).await.unwrap().is_some());

    // Sends are fenced by the lease: only the holder marks a probe sent.
    assert!(!s.mark_probe_sent("c1", 1, Some("rep-b")).await.unwrap());
    assert!(!s.mark_upstream_sent("c1", 1, Some("rep-b")).await.unwrap());
    assert!(s.mark_probe_sent("c1", 1, Some("rep-a")).await.unwrap());
    assert!(s.mark_upstream_sent("c1", 1, Some("rep-a")).await.unwrap());
    let fenced = CampaignProgress {
        p_value: Some(0.5),
        lease_owner: Some("rep-b".into()),
        ..Default::default()
    };
    assert!(matches!(
        s.update_campaign_progress("c1", fenced).await,
        Err(StoreError::LeaseLost(_))
    ));
    let mine = CampaignProgress {
        p_value: Some(0.25),
        lease_owner: Some("rep-a".into()),
        ..Default::default()
    };
    s.update_campaign_progress("c1", mine).await.unwrap();
    assert_eq!(s.get_campaign("c1").await.unwrap().unwrap().p_value, Some(0.25));

    // The lease expires (renewed into the past): the holder can send nothing more, and the next
    // claimer fails the probe that was in flight; the old holder's late finish is refused.
    assert!(s.renew_campaign_lease("c1", "rep-a", -1).await.unwrap());
    assert!(!s.mark_probe_sent("c1", 2, Some("rep-a")).await.unwrap(), "expired lease");
    let b = s.claim_campaign("rep-b", 60_000, None).await.unwrap().expect("the expired campaign");
    assert_eq!(b.id, "c1");
    assert!(!s.renew_campaign_lease("c1", "rep-a", 60_000).await.unwrap());
    assert_eq!(s.fail_in_flight_probes("c1", "taken over").await.unwrap(), 2);
    let late = ProbeOutcome {
        answered: true,
        attempts: 1,
        answer: Some("late".into()),
        error: None,
        tokens: Some(5),
        claims: None,
        sample: Some(sample("late")),
    };
    assert!(matches!(s.finish_probe("c1", 1, late).await, Err(StoreError::LeaseLost(_))));
    s.finish_upstream("c1", 1, Some("late".into()), vec![], None).await.unwrap();
    let c1 = s.get_campaign("c1").await.unwrap().unwrap();
    assert_eq!((c1.probes.failed, c1.probes.answered, c1.tokens), (1, 0, 0), "{:?}", c1.probes);
    assert_eq!(c1.probes.upstream_failed, 1, "the late upstream answer is not recorded");
    assert_eq!(s.get_suspect("a").await.unwrap().unwrap().samples, 0, "its sample rolled back");
    assert!(s.mark_probe_sent("c1", 2, Some("rep-b")).await.unwrap());

    // Release: every lease of an owner, or one; finished campaigns are neither claimed nor renewed.
    assert_eq!(s.release_campaign_leases("rep-b", Some("c2")).await.unwrap(), 0, "not rep-b's");
    assert_eq!(s.release_campaign_leases("rep-a", None).await.unwrap(), 1);
    assert!(s.set_campaign_state("c2", JobState::Done, None).await.unwrap());
    assert!(s.claim_campaign("rep-c", 60_000, None).await.unwrap().is_none(), "c2 done, c1 held");
    assert!(s.set_campaign_state("c1", JobState::Cancelled, None).await.unwrap());
    assert!(!s.renew_campaign_lease("c1", "rep-b", 60_000).await.unwrap(), "cancelled elsewhere");

    // A campaign `pedigree probe` created is left to its re-runs (its targets may be allowed by
    // the run's `--allow` only), even with its lease free; the run itself claims it by name.
    let cli = NewCampaign { created_by: Some("cli".into()), ..new_campaign("c3", "a", 1, false) };
    s.create_campaign(cli).await.unwrap();
    assert!(s.claim_campaign("rep-c", 60_000, None).await.unwrap().is_none());
    assert!(s.claim_campaign("cli-x", 60_000, Some("c3")).await.unwrap().is_some());
}

async fn concurrent_campaign_claims_take_each_once(s: Arc<dyn Store>) {
    s.create_suspect("a", "A", "", "p").await.unwrap();
    for i in 0..4 {
        s.create_campaign(new_campaign(&format!("k{i}"), "a", 1, false)).await.unwrap();
    }
    let claims = (0..8).map(|i| {
        let s = s.clone();
        tokio::spawn(
            async move { s.claim_campaign(&format!("rep-{i}"), 60_000, None).await.unwrap() },
        )
    });
    let mut got: Vec<String> = Vec::new();
    for c in claims {
        if let Some(c) = c.await.unwrap() {
            got.push(c.id);
        }
    }
    got.sort();
    assert_eq!(got, ["k0", "k1", "k2", "k3"], "each campaign claimed exactly once");
}

async fn rate_slots_space_reservations_from_any_caller(s: Arc<dyn Store>) {
    // Reservation k of a limiter gets the slot S0 + k·I of the database's clock and is told to
    // wait w_k = S0 + k·I − t_k, t_k being the time it was made. One caller in sequence: t
    // grows, so consecutive waits grow by at most I, and by at least I minus the time between
    // the two calls.
    const I: i64 = 50_000;
    let key = "campaign:x:suspect";
    let one = |k: &str, i: i64| vec![(k.to_string(), i)];
    let mut last: Option<(i64, std::time::Instant)> = None;
    for _ in 0..6 {
        let before = std::time::Instant::now();
        let w = s.reserve_rate_slot(&one(key, I)).await.unwrap();
        if let Some((prev, at)) = last {
            let between = at.elapsed().as_micros() as i64;
            assert!(
                w - prev <= I && w - prev >= I - between - 2_000,
                "{prev} → {w} ({between} µs)"
            );
        } else {
            assert_eq!(w, 0, "a new limiter's first slot is now");
        }
        last = Some((w, before));
    }
    assert_eq!(s.delete_rate_slots("campaign:x:").await.unwrap(), 1);
    // 16 concurrent callers (as replicas would be): 16 distinct slots, the last 15 intervals
    // after the first, less the time the reservations took.
    let t0 = std::time::Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (s, l) = (s.clone(), one(key, I));
            tokio::spawn(async move { s.reserve_rate_slot(&l).await.unwrap() })
        })
        .collect();
    let mut waits = Vec::new();
    for t in tasks {
        waits.push(t.await.unwrap());
    }
    let took = t0.elapsed().as_micros() as i64;
    waits.sort_unstable();
    assert!(waits[0] >= 0 && waits[0] <= took, "{waits:?}");
    let span = waits[15] - waits[0];
    assert!(span >= 15 * I - took - 2_000 && span <= 15 * I + took, "{waits:?} in {took} µs");
    assert_eq!(s.delete_rate_slots("campaign:x:").await.unwrap(), 1);

    // Two limiters reserved together (a campaign's own rate and its endpoint's ceiling): the
    // slot is free under both and moves both on. A ceiling kept busy by another campaign holds
    // this one back without letting its own requests bunch up behind the ceiling afterwards.
    let (own, ceiling) = ("campaign:y:suspect", "endpoint:h:1");
    let both = vec![(own.to_string(), 10 * I), (ceiling.to_string(), I)];
    assert_eq!(s.reserve_rate_slot(&both).await.unwrap(), 0);
    for _ in 0..4 {
        s.reserve_rate_slot(&one(ceiling, I)).await.unwrap(); // another campaign
    }
    let t0 = std::time::Instant::now();
    let w1 = s.reserve_rate_slot(&both).await.unwrap();
    let w2 = s.reserve_rate_slot(&both).await.unwrap();
    let took = t0.elapsed().as_micros() as i64;
    // w1: the own limiter's 10·I (the ceiling is free again by then); w2 another 10·I later.
    assert!(w1 <= 10 * I && w1 >= 10 * I - took - 50_000, "{w1}");
    // (2 ms: SQLite's clock counts whole milliseconds.)
    assert!(w2 - w1 >= 10 * I - took - 2_000 && w2 - w1 <= 10 * I, "{w1} {w2}");
    // …and the ceiling moved on with them: the next ceiling-only slot is after w2 (a wait is
    // counted from its own call: w3 − w2 = I less the time between the two calls, which the
    // elapsed time through the w3 call bounds).
    let w3 = s.reserve_rate_slot(&one(ceiling, I)).await.unwrap();
    let took = t0.elapsed().as_micros() as i64;
    assert!(w3 >= w2 + I - took - 2_000, "{w2} {w3} ({took} µs)");
    assert_eq!(s.delete_rate_slots("campaign:").await.unwrap(), 1);
    assert_eq!(s.reserve_rate_slot(&one(own, I)).await.unwrap(), 0, "deleted: free again");
}

async fn job_parts_are_claimed_once_fenced_and_finish_the_job(s: Arc<dyn Store>) {
    s.create_job(parted_job("pj", 3)).await.unwrap();
    let job = s.get_job("pj").await.unwrap().unwrap();
    assert_eq!((job.parts, job.parts_done), (3, 0));
    // A job with parts is not claimed whole while parts are open.
    assert!(s.claim_job("rep-a", 60_000).await.unwrap().is_none());
    let (j, p0) = s.claim_job_part("rep-a", 60_000).await.unwrap().expect("part 0");
    assert_eq!((j.id.as_str(), p0.part_no, p0.cursor_offset, p0.cursor_line), ("pj", 0, 0, 0));
    assert_eq!(p0.lease_owner.as_deref(), Some("rep-a"));
    let (_, p1) = s.claim_job_part("rep-b", 400).await.unwrap().expect("part 1");
    let (_, p2) = s.claim_job_part("rep-a", 60_000).await.unwrap().expect("part 2");
    assert_eq!((p1.part_no, p1.start_offset, p1.lines_before, p2.part_no), (1, 100, 10, 2));
    assert!(s.claim_job_part("rep-c", 60_000).await.unwrap().is_none(), "every part is held");

    let chunk = |owner: &str, lines: std::ops::Range<i64>, off: i64, finished: bool| PartChunk {
        owner: owner.into(),
        cursor_offset: off,
        cursor_line: lines.end - 1,
        results: lines.map(|l| (l, json!({"line": l}))).collect(),
        samples: None,
        finished,
        stats: finished.then(|| json!({"texts": off})),
    };
    // Only the holder writes; a repeated chunk adds no result twice.
    let e = s.commit_part_chunk("pj", 0, chunk("rep-b", 1..4, 30, false)).await.unwrap_err();
    assert!(matches!(e, StoreError::LeaseLost(_)), "{e:?}");
    s.commit_part_chunk("pj", 0, chunk("rep-a", 1..4, 30, false)).await.unwrap();
    s.commit_part_chunk("pj", 0, chunk("rep-a", 1..4, 30, false)).await.unwrap();
    let job = s.get_job("pj").await.unwrap().unwrap();
    assert_eq!((job.done, job.cursor_offset, job.cursor_line), (3, 30, 3), "{job:?}");
    assert!(s.renew_part_lease("pj", 0, "rep-a", 60_000).await.unwrap());
    assert!(!s.renew_part_lease("pj", 0, "rep-b", 60_000).await.unwrap());

    // Part 1's lease (400 ms) expires: the next claimer resumes it, the old holder is fenced out.
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    let (_, again) = s.claim_job_part("rep-c", 60_000).await.unwrap().expect("expired part 1");
    assert_eq!((again.part_no, again.state), (1, JobState::Running));
    assert!(!s.renew_part_lease("pj", 1, "rep-b", 60_000).await.unwrap());
    assert!(s.commit_part_chunk("pj", 1, chunk("rep-b", 11..21, 200, true)).await.is_err());

    // Each part finishes once; then the job is claimable whole (to finish it) and holds every
    // part's statistics.
    s.commit_part_chunk("pj", 0, chunk("rep-a", 4..11, 100, true)).await.unwrap();
    assert!(s.commit_part_chunk("pj", 0, chunk("rep-a", 4..11, 100, true)).await.is_err(), "done");
    s.commit_part_chunk("pj", 1, chunk("rep-c", 11..21, 200, true)).await.unwrap();
    assert!(s.claim_job("rep-d", 60_000).await.unwrap().is_none(), "part 2 is open");
    s.commit_part_chunk("pj", 2, chunk("rep-a", 21..31, 300, true)).await.unwrap();
    let job = s.get_job("pj").await.unwrap().unwrap();
    assert_eq!((job.done, job.parts_done, job.cursor_offset, job.cursor_line), (30, 3, 300, 30));
    let parts = s.job_parts("pj").await.unwrap();
    assert!(parts.iter().all(|p| p.state == JobState::Done && p.lease_owner.is_none()));
    assert!(parts.iter().all(|p| p.stats.is_none()), "listed without their statistics");
    let page = s.part_stats("pj", -1, 2).await.unwrap();
    let rest = s.part_stats("pj", page[1].0, 2).await.unwrap();
    let stats: Vec<_> =
        page.iter().chain(&rest).map(|(n, v)| (*n, v.clone().unwrap()["texts"].clone())).collect();
    assert_eq!(stats, [(0, json!(100)), (1, json!(200)), (2, json!(300))]);
    assert!(s.claim_job_part("rep-d", 60_000).await.unwrap().is_none());
    let whole = s.claim_job("rep-d", 60_000).await.unwrap().expect("the finished parts' job");
    assert_eq!(whole.id, "pj");
    let results = s.job_results("pj", 0, 100).await.unwrap();
    assert_eq!(results.iter().map(|r| r.line_no).collect::<Vec<_>>(), (1..31).collect::<Vec<_>>());

    // A cancelled job's parts are neither claimed nor renewed; released leases are claimable.
    s.create_job(parted_job("pk", 2)).await.unwrap();
    let (_, k0) = s.claim_job_part("rep-e", 60_000).await.unwrap().expect("pk part 0");
    assert_eq!(s.release_part_leases("rep-f", None).await.unwrap(), 0, "not rep-f's");
    assert_eq!(s.release_part_leases("rep-e", Some(("pk", k0.part_no))).await.unwrap(), 1);
    let (_, k0b) = s.claim_job_part("rep-f", 60_000).await.unwrap().expect("released part");
    assert_eq!(k0b.part_no, 0);
    assert!(s.set_job_state("pk", JobState::Cancelled, None).await.unwrap());
    assert!(!s.renew_part_lease("pk", 0, "rep-f", 60_000).await.unwrap());
    let e = s.commit_part_chunk("pk", 0, chunk("rep-f", 1..3, 20, false)).await.unwrap_err();
    assert!(matches!(e, StoreError::Finished(ref id) if id == "pk"), "{e:?}");
    assert_eq!(s.get_job("pk").await.unwrap().unwrap().done, 0, "nothing written");
    assert!(s.claim_job_part("rep-g", 60_000).await.unwrap().is_none());
}

async fn concurrent_part_claims_take_each_part_once(s: Arc<dyn Store>) {
    s.create_job(parted_job("big", 6)).await.unwrap();
    let claims = (0..10).map(|i| {
        let s = s.clone();
        tokio::spawn(async move { s.claim_job_part(&format!("rep-{i}"), 60_000).await.unwrap() })
    });
    let mut got: Vec<i64> = Vec::new();
    for c in claims {
        if let Some((_, p)) = c.await.unwrap() {
            got.push(p.part_no);
        }
    }
    got.sort();
    assert_eq!(got, [0, 1, 2, 3, 4, 5], "each part claimed exactly once");
}

async fn profile_files_round_trip_replace_and_cascade(s: Arc<dyn Store>) {
    let rec = |created_ms: i64| ProfileRecord {
        name: "shared".into(),
        upstream: "openai".into(),
        meta: json!({"name": "shared"}),
        path: Some("profiles/shared.pdg".into()),
        builtin: false,
        created_ms,
    };
    assert_eq!(s.profile_file("shared").await.unwrap(), None);
    // Binary bytes, NUL and invalid UTF-8 included, come back as they were.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    s.save_profile(rec(1), bytes.clone()).await.unwrap();
    assert_eq!(s.profile_file("shared").await.unwrap().as_deref(), Some(&bytes[..]));
    assert_eq!(s.get_profile("shared").await.unwrap().unwrap().created_ms, 1);
    s.save_profile(rec(2), vec![0, 1, 2]).await.unwrap();
    assert_eq!(s.profile_file("shared").await.unwrap(), Some(vec![0, 1, 2]));
    assert_eq!(s.get_profile("shared").await.unwrap().unwrap().created_ms, 2);
    // A record written without a file (older servers, the built-in one) keeps the last file.
    s.upsert_profile(rec(3)).await.unwrap();
    assert_eq!(s.profile_file("shared").await.unwrap(), Some(vec![0, 1, 2]));
    assert!(s.delete_profile("shared").await.unwrap());
    assert_eq!(s.profile_file("shared").await.unwrap(), None, "the file goes with its record");
}

/// PostgreSQL only (SQLite's single writer has no row locks): a named re-claim by the lease's
/// holder waits for a row another transaction has locked instead of skipping it. With the
/// claim loop's `SKIP LOCKED` it came back empty whenever a concurrent claimer held the row for
/// an instant, and the campaign manager failed a campaign it was itself running (replicas test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_named_campaign_claim_waits_for_a_locked_row() {
    let db = super::test_pg::fresh_db().await;
    let pg = PgStore::connect(&db.url).await.unwrap();
    pg.create_suspect("a", "A", "", "p").await.unwrap();
    pg.create_campaign(new_campaign("c1", "a", 2, false)).await.unwrap();
    assert!(pg.claim_campaign("rep-a", 60_000, None).await.unwrap().is_some());
    let mut tx = pg.pool().begin().await.unwrap();
    sqlx::query("SELECT id FROM campaigns WHERE id = 'c1' FOR UPDATE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let s: Arc<dyn Store> = Arc::new(pg);
    let claim = {
        let s = s.clone();
        tokio::spawn(async move { s.claim_campaign("rep-a", 60_000, Some("c1")).await.unwrap() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!claim.is_finished(), "the named claim waits for the lock");
    tx.commit().await.unwrap();
    let got = claim.await.unwrap().expect("the holder's named claim succeeds");
    assert_eq!(got.lease_owner.as_deref(), Some("rep-a"));
    // Another owner's named claim still fails while the lease holds, without waiting for long.
    assert!(s.claim_campaign("rep-b", 60_000, Some("c1")).await.unwrap().is_none());
}
