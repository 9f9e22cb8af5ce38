//! The detection subcommands run as a user runs them: the real `pedigree` binary on small
//! fixtures written here (never the CC BY-NC bench data).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn pedigree() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pedigree"))
}

/// A tiny bench directory: two upstream models, two other-family models, and four suspects.
fn write_bench(dir: &Path) {
    let topics: Vec<String> = (0..24).map(|i| format!("topic{i}")).collect();
    let up = |t: &str, v: usize| {
        format!("Certainly! Here are some facts about {t}:\n\n1. **First**, {t} matters.\n2. Additionally, {t} is fascinating (v{v}).\n\nI hope this helps!")
    };
    let other = |t: &str, v: usize| {
        format!("{t} is simple. people like {t} a lot, i think. that is all (v{v}).")
    };
    let mut lines = Vec::new();
    for (i, t) in topics.iter().enumerate() {
        let pid = format!("p{i}");
        for (model, text) in [
            ("up-a", up(t, 1)),
            ("up-b", up(t, 2)),
            ("oth-a", other(t, 1)),
            ("oth-b", other(t, 2)),
            ("third", format!("{t}: it depends, ask an expert (v{i}).")),
            ("sus-up", up(t, 3)),
            ("sus-student", up(t, 4)),
            ("sus-indep", other(t, 3)),
            ("sus-indep2", format!("{t}? depends entirely on context, ask around (w{i}).")),
        ] {
            lines.push(serde_json::json!({"prompt_id": pid, "prompt": format!("Tell me about {t}"), "response": text, "model": model}).to_string());
        }
    }
    std::fs::write(dir.join("samples.jsonl"), lines.join("\n") + "\n").expect("samples");
    let manifest = serde_json::json!({
        "name": "fixture", "upstream": "up",
        "models": {
            "up-a": {"family": "up"}, "up-b": {"family": "up"},
            "oth-a": {"family": "other"}, "oth-b": {"family": "other"}, "third": {"family": "third"},
            "sus-up": {"suspect": {"kind": "upstream", "teacher": "up"}},
            "sus-student": {"suspect": {"kind": "student", "teacher": "up"}},
            "sus-indep": {"suspect": {"kind": "independent", "teacher": null}},
            "sus-indep2": {"suspect": {"kind": "independent", "teacher": null}}
        },
        "train_prompts": (0..16).map(|i| format!("p{i}")).collect::<Vec<_>>(),
        "test_prompts": (16..24).map(|i| format!("p{i}")).collect::<Vec<_>>(),
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("manifest");
}

fn run_with_stdin(args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = pedigree()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write");
    child.wait_with_output().expect("wait")
}

#[test]
fn bench_prints_every_protocol_key_and_writes_a_report() {
    let dir = tempfile::tempdir().expect("tmp");
    write_bench(dir.path());
    let report = dir.path().join("report.md");
    let out = pedigree()
        .args([
            "bench",
            dir.path().to_str().expect("utf8"),
            "--report",
            report.to_str().expect("utf8"),
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let last = String::from_utf8_lossy(&out.stdout).lines().last().expect("a line").to_string();
    let v: serde_json::Value = serde_json::from_str(&last).expect("JSON");
    for k in [
        "sample_auroc_upstream",
        "sample_tpr_at_1fpr_upstream",
        "sample_auroc_student",
        "sample_tpr_at_1fpr_student",
        "suspect_auroc@10",
        "suspect_auroc@50",
        "suspect_auroc@all",
        "verdict_students_flagged",
        "verdict_independents_flagged",
        "teacher_correct",
    ] {
        assert!(v.get(k).is_some(), "missing {k}: {last}");
    }
    // The fixture is trivially separable: the upstream suspect's answers outrank the independents'.
    assert!(v["sample_auroc_upstream"].as_f64().expect("number") > 0.9, "{last}");
    let md = std::fs::read_to_string(&report).expect("report");
    assert!(md.contains("Per-suspect verdicts"));
    assert!(md.contains("## Desensitization"), "{md}");
    // The verdict's own false-alarm check on the known independents (each left out) is printed and
    // tabled beside the pooled per-response null's.
    // (Each null model is tested against the other families' models: in this fixture the two
    // models of one family cannot be, the third family's can.)
    let nulls = v["null_check"]["models"].as_u64().expect("null_check.models");
    assert!(nulls >= 1, "{last}");
    // The held-out validation and the desensitization table are printed.
    assert!(v["validation_lofo"]["model_auroc"].as_f64().expect("validation") > 0.5, "{last}");
    for step in ["mask_numbers", "mask_names", "strip_markdown", "all"] {
        assert!(v["desensitization"][step]["sample_auroc_upstream"].is_number(), "{step}: {last}");
    }
    for k in ["verdict_null_models_flagged_lofo", "per_response_null_models_flagged_lofo"] {
        assert!(v[k].as_str().expect(k).ends_with(&format!("/{nulls}")), "{k}: {last}");
    }
    assert!(md.contains("Which null") && md.contains("pooled responses (not used)"), "{md}");
    assert!(std::fs::read_to_string(report.with_extension("svg")).expect("svg").contains("<svg"));

    // The regression gate fails when the recorded figures are better than this run's.
    let mut better = v.clone();
    better["sample_auroc_upstream"] = serde_json::json!(1.5);
    let rec = dir.path().join("recorded.json");
    std::fs::write(&rec, better.to_string()).expect("write");
    let out = pedigree()
        .args([
            "bench",
            dir.path().to_str().expect("utf8"),
            "--no-regression-from",
            rec.to_str().expect("utf8"),
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sample_auroc_upstream"));
}

/// `--ablation` fits lexical, neural-only and lexical+neural profiles with real MiniLM embeddings
/// (computed once, then read back from the cache) and reports all three.
#[test]
fn bench_ablation_reports_every_tier() {
    if models::ModelPaths::from_env_or_default().check().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must fetch the model weights first (scripts/fetch-models.sh)"
        );
        eprintln!("SKIPPED: model weights missing; run scripts/fetch-models.sh");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    write_bench(dir.path());
    let cache = dir.path().join("emb-cache");
    let report = dir.path().join("report.md");
    let run = || {
        pedigree()
            .env("PEDIGREE_EMBED_CACHE", &cache)
            .args([
                "bench",
                dir.path().to_str().expect("utf8"),
                "--ablation",
                "--report",
                report.to_str().expect("utf8"),
            ])
            .output()
            .expect("run")
    };
    let out = run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let last = String::from_utf8_lossy(&out.stdout).lines().last().expect("a line").to_string();
    let v: serde_json::Value = serde_json::from_str(&last).expect("JSON");
    for tier in ["lexical", "neural", "both"] {
        let auc = v["ablation"][tier]["sample_auroc_upstream"]
            .as_f64()
            .unwrap_or_else(|| panic!("no {tier} figures: {last}"));
        assert!((0.0..=1.0).contains(&auc), "{tier}: {auc}");
    }
    // The lexical column is the main run itself.
    assert_eq!(v["ablation"]["lexical"]["sample_auroc_upstream"], v["sample_auroc_upstream"]);
    let md = std::fs::read_to_string(&report).expect("report");
    assert!(
        md.contains("## Ablation: feature tiers")
            && md.contains("| metric | both | lexical | neural |"),
        "{md}"
    );
    // One cache file, reused by a second run with identical figures.
    let files: Vec<_> = std::fs::read_dir(&cache).expect("cache dir").collect();
    assert_eq!(files.len(), 1);
    let again = run();
    assert!(again.status.success());
    let last2 = String::from_utf8_lossy(&again.stdout).lines().last().expect("a line").to_string();
    let v2: serde_json::Value = serde_json::from_str(&last2).expect("JSON");
    assert_eq!(
        v2["ablation"]["neural"]["sample_auroc_upstream"],
        v["ablation"]["neural"]["sample_auroc_upstream"]
    );

    // A profile built with both tiers: `score` and `verdict` compute the embeddings themselves;
    // `audit` refuses it with a message naming the tier.
    let prof = dir.path().join("both.pdg");
    let out = pedigree()
        .env("PEDIGREE_EMBED_CACHE", &cache)
        .args([
            "profile",
            "build",
            "--tiers",
            "both",
            "--dataset",
            dir.path().to_str().expect("utf8"),
            "--out",
            prof.to_str().expect("utf8"),
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_with_stdin(
        &["score", "--profile", prof.to_str().expect("utf8")],
        "{\"text\": \"Certainly! Here are some facts about owls.\"}\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().expect("a line"))
            .expect("JSON");
    assert!(
        line["evidence"]
            .as_array()
            .expect("evidence")
            .iter()
            .any(|e| e["label"] == "neural: minilm-embedding"),
        "{line}"
    );
    let samples = dir.path().join("s.jsonl");
    std::fs::write(
        &samples,
        "{\"text\": \"Certainly! owls.\"}\n{\"text\": \"owls are fine i guess\"}\n",
    )
    .expect("write");
    let out = pedigree()
        .args([
            "verdict",
            "--profile",
            prof.to_str().expect("utf8"),
            samples.to_str().expect("utf8"),
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = pedigree()
        .args(["audit", "--profile", prof.to_str().expect("utf8"), samples.to_str().expect("utf8")])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("minilm-embedding"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn profile_build_then_score_and_verdict_with_it() {
    let dir = tempfile::tempdir().expect("tmp");
    write_bench(dir.path());
    let prof = dir.path().join("p.pdg");
    let out = pedigree()
        .args([
            "profile",
            "build",
            "--dataset",
            dir.path().to_str().expect("utf8"),
            "--out",
            prof.to_str().expect("utf8"),
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let show =
        pedigree().args(["profile", "show", prof.to_str().expect("utf8")]).output().expect("run");
    let meta: serde_json::Value = serde_json::from_slice(&show.stdout).expect("meta JSON");
    assert_eq!(meta["upstream"], "up");

    let input = "{\"text\": \"Certainly! Here are some facts about owls:\\n\\n1. **First**, owls matter.\\n\\nI hope this helps!\", \"id\": \"a\"}\n{\"text\": \"owls are simple. people like owls a lot, i think.\", \"id\": \"b\"}\n";
    let out = run_with_stdin(&["score", "--profile", prof.to_str().expect("utf8")], input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], "a");
    assert!(rows[0]["score"].as_f64() > rows[1]["score"].as_f64());
    assert_eq!(rows[0]["family"], "up");

    let samples = dir.path().join("suspect.jsonl");
    std::fs::write(&samples, input.repeat(5)).expect("write");
    let out = pedigree()
        .args([
            "verdict",
            "--profile",
            prof.to_str().expect("utf8"),
            samples.to_str().expect("utf8"),
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verdict JSON");
    assert_eq!(v["verdict"]["n"], 10);
    assert!(v["verdict"]["p_value"].as_f64().is_some_and(|p| (0.0..=1.0).contains(&p)));
    // Style is triage (never a decision) and the identity evidence comes first.
    assert_eq!(v["verdict"]["decision"], "undecided", "{v}");
    assert!(v["verdict"]["triage"]["rank"].as_u64().is_some(), "{v}");
    assert_eq!(
        (v["identity"]["scope"].as_str(), v["identity"]["answers"].as_u64()),
        (Some("responses"), Some(10))
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let at = |k: &str| stdout.find(&format!("\"{k}\"")).unwrap_or_else(|| panic!("{k}: {stdout}"));
    assert!(at("identity") < at("verdict"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("identity: No explicit self-identification"), "{stderr}");
    assert!(stderr.contains("style triage: ") && stderr.contains("membership test"), "{stderr}");
    // An alpha outside (0, 0.5) is refused by name (it panicked in statrs at 1.5 or NaN).
    for bad in ["1.5", "NaN", "0.7"] {
        let out = pedigree()
            .args([
                "verdict",
                "--alpha",
                bad,
                "--profile",
                prof.to_str().expect("utf8"),
                samples.to_str().expect("utf8"),
            ])
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success()
                && err.contains("alpha must be in (0, 0.5)")
                && !err.contains("panicked"),
            "{bad}: {err}"
        );
    }
}

/// A labelled JSONL file (the `POST /v1/profiles/build` format) builds a profile too, split by the
/// same policy; flags that only a bench directory can honour are refused by name.
#[test]
fn profile_build_from_a_labelled_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("labelled.jsonl");
    let mut text = String::new();
    for i in 0..30 {
        for (model, family, answer) in [
            (
                "gpt-a",
                "openai",
                format!(
                    "Certainly! Let's delve into topic {i}. Overall, it's important to note this."
                ),
            ),
            (
                "gpt-b",
                "openai",
                format!("Certainly! Here is topic {i}, delved into. It's important to note it."),
            ),
            (
                "llama-a",
                "meta",
                format!("Sure thing!! topic {i} is pretty cool lol, here is the deal."),
            ),
            (
                "claude-a",
                "anthropic",
                format!("I'd be happy to help with topic {i}. Here's a careful look."),
            ),
        ] {
            let prompt = format!("Explain topic {i}");
            let line = serde_json::json!({"text": answer, "model": model, "family": family, "prompt": prompt});
            text.push_str(&format!("{line}\n"));
        }
    }
    std::fs::write(&file, text).expect("write");
    let prof = dir.path().join("l.pdg");
    let (f, p) = (file.to_str().expect("utf8"), prof.to_str().expect("utf8"));
    let out = pedigree()
        .args(["profile", "build", "--dataset", f, "--out", p, "--upstream", "openai"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let show = pedigree().args(["profile", "show", p]).output().expect("run");
    let meta: serde_json::Value = serde_json::from_slice(&show.stdout).expect("meta JSON");
    assert_eq!(
        (meta["upstream"].as_str(), meta["name"].as_str()),
        (Some("openai"), Some("labelled"))
    );
    let (train, calib) = (
        meta["training"]["dataset"]["train"].as_u64(),
        meta["training"]["dataset"]["calib"].as_u64(),
    );
    assert_eq!(train.zip(calib).map(|(t, c)| t + c), Some(120), "{meta}");
    assert!(calib.is_some_and(|c| c > 0 && c < 120), "{meta}");
    let out = pedigree()
        .args(["profile", "build", "--dataset", f, "--out", p, "--tiers", "neural"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("lexical profiles only"), "{err}");
}

#[test]
fn bad_input_is_named_and_fails() {
    let out = run_with_stdin(&["score"], "{\"text\": \"fine\"}\n{\"txt\": \"typo\"}\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stdin:2") && err.contains("\"text\""), "{err}");

    let out = run_with_stdin(&["score"], "not json\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/dev/stdin:1"));

    let dir = tempfile::tempdir().expect("tmp");
    let junk = dir.path().join("junk.pdg");
    std::fs::write(&junk, b"definitely not a profile").expect("write");
    let out = pedigree()
        .args(["score", "--profile", junk.to_str().expect("utf8")])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pedigree profile"));

    let out = pedigree()
        .args(["bench", dir.path().join("missing").to_str().expect("utf8")])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifest.json"));
}
