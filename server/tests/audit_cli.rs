//! `pedigree audit` end to end on synthetic mixtures of real model answers.
//!
//! Corpora are built from the alpaca-eval-dev bench's TEST-prompt answers of the *suspect*
//! models, which the built-in profile never saw (neither in fitting nor in calibration): the
//! unseen OpenAI versions (`"suspect": {"kind": "upstream"}`) mixed with independent models
//! (`"kind": "independent"`) at upstream fractions 0, 5, 25 and 50%. The real binary audits each
//! corpus; its 95% interval must contain the true fraction, and the all-independent corpus must
//! not be estimated above 5%. Identified families' fractions must be the lower ends of their
//! identified sets, inside the interval. Interval widths and sets are printed (run with
//! `--nocapture` to see them).
//!
//! Needs the bench at `../shared/datasets/alpaca-eval-dev` and a profile: the built-in one, or
//! the file named by `PEDIGREE_AUDIT_TEST_PROFILE`. Without them the tests print a note and pass.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/alpaca-eval-dev")
}

/// `--profile` arguments: none for the built-in profile, else the test profile; `None` = skip.
fn profile_args() -> Option<Vec<String>> {
    if let Ok(p) = std::env::var("PEDIGREE_AUDIT_TEST_PROFILE") {
        return Some(vec!["--profile".into(), p]);
    }
    if detector::Profile::builtin().is_ok() {
        return Some(vec![]);
    }
    eprintln!("NOTE: skipping: this build has no built-in profile and PEDIGREE_AUDIT_TEST_PROFILE is not set");
    None
}

/// The families of the profile `profile_args` names, sorted.
fn profile_families(profile: &[String]) -> Vec<String> {
    let p = match profile.get(1) {
        Some(path) => detector::Profile::load(Path::new(path)).unwrap(),
        None => detector::Profile::builtin().unwrap(),
    };
    let mut f = p.families().to_vec();
    f.sort();
    f
}

/// Run `pedigree audit` and parse the last stdout line.
fn audit(profile: &[String], corpus: &Path, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_pedigree"))
        .arg("audit")
        .args(profile)
        .args(extra)
        .arg(corpus)
        .env_remove("PEDIGREE_PROFILE")
        .output()
        .expect("run pedigree");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pedigree audit failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("a summary line");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

fn write_jsonl(path: &Path, texts: &[&str]) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for t in texts {
        writeln!(f, "{}", serde_json::json!({ "text": t })).unwrap();
    }
}

/// One TEST-prompt answer of a suspect model (`kind`: the bench's suspect kind).
struct Answer {
    model: String,
    kind: String,
    text: String,
}

/// TEST-prompt answers of the unseen upstream versions and of the independent suspects.
fn suspect_answers() -> Option<(Vec<Answer>, Vec<Answer>)> {
    let dir = bench_dir();
    let Ok(manifest) = std::fs::read_to_string(dir.join("manifest.json")) else {
        eprintln!("NOTE: skipping: no bench at {}", dir.display());
        return None;
    };
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let test: HashSet<&str> =
        m["test_prompts"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let kind: BTreeMap<&str, &str> = m["models"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, info)| info["suspect"]["kind"].as_str().map(|k| (name.as_str(), k)))
        .collect();
    let (mut up, mut ind) = (Vec::new(), Vec::new());
    let samples = std::fs::read_to_string(dir.join("samples.jsonl")).unwrap();
    for line in samples.lines().filter(|l| !l.trim().is_empty()) {
        let s: serde_json::Value = serde_json::from_str(line).unwrap();
        if !test.contains(s["prompt_id"].as_str().unwrap()) {
            continue;
        }
        let model = s["model"].as_str().unwrap();
        let Some(&k) = kind.get(model) else { continue };
        let a = Answer {
            model: model.to_string(),
            kind: k.to_string(),
            text: s["response"].as_str().unwrap().to_string(),
        };
        match k {
            "upstream" => up.push(a),
            "independent" => ind.push(a),
            _ => {}
        }
    }
    Some((up, ind))
}

/// Which profile family wrote an answer, as (family, certain): the bench's independent suspects
/// carry no family, so it is set here by provenance. `claude-2.1` is Anthropic's and
/// `Meta-Llama-3-8B-Instruct` Meta's; `humpback-llama2-70b` (Meta AI research, Llama-2 fine-tuned
/// on its own back-translated data) may or may not count as `meta`, and `guanaco-7b` (LLaMA-1
/// fine-tuned on the OpenAssistant conversations) may or may not count as `oasst-human`. The
/// upstream suspects are the upstream's (`openai` for the built-in profile).
fn family_of<'a>(a: &Answer, upstream: &'a str) -> Option<(&'a str, bool)> {
    match (a.model.as_str(), a.kind.as_str()) {
        (_, "upstream") => Some((upstream, true)),
        ("claude-2.1", _) => Some(("anthropic", true)),
        ("Meta-Llama-3-8B-Instruct", _) => Some(("meta", true)),
        ("humpback-llama2-70b", _) => Some(("meta", false)),
        ("guanaco-7b", _) => Some(("oasst-human", false)),
        _ => None,
    }
}

/// Audit corpora mixing `target` answers at shares 0, 5, 25 and 50% with as many `other` answers
/// as possible; print every family's estimate against its true share and return the failures:
/// an interval inconsistent with the truth (with every reading of it where a model's family is
/// ambiguous), or `target_family` estimated above 5% in the corpus without any of it.
fn run_mixtures(
    profile: &[String],
    name: &str,
    target_family: Option<&str>,
    target: &[&Answer],
    other: &[&Answer],
    seed: u64,
    extra: &[&str],
) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut failures = Vec::new();
    for &pi in &[0.0f64, 0.05, 0.25, 0.5] {
        let (k_t, k_o) = if pi == 0.0 {
            (0, other.len())
        } else {
            let k_o = other.len().min(((target.len() as f64) * (1.0 - pi) / pi).floor() as usize);
            (((k_o as f64) * pi / (1.0 - pi)).round() as usize, k_o)
        };
        let mut texts: Vec<&Answer> = target.choose_multiple(&mut rng, k_t).copied().collect();
        texts.extend(other.choose_multiple(&mut rng, k_o).copied());
        texts.shuffle(&mut rng);
        assert!(texts.len() <= 2000);
        let path = tmp.path().join(format!("mix-{pi}.jsonl"));
        write_jsonl(&path, &texts.iter().map(|a| a.text.as_str()).collect::<Vec<_>>());
        let s = audit(profile, &path, extra);
        assert_eq!(s["texts"].as_u64(), Some(texts.len() as u64));
        let mut names: Vec<&String> = s["families"].as_object().unwrap().keys().collect();
        names.sort();
        assert_eq!(
            names,
            profile_families(profile).iter().collect::<Vec<_>>(),
            "every profile family: {s}"
        );
        let up_fam = s["upstream"].as_str().unwrap();
        let target_family = target_family.unwrap_or(up_fam);
        // Per family: the share of answers certainly of it, and of those that may be.
        let n = texts.len() as f64;
        let mut truths: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for a in &texts {
            if let Some((fam, certain)) = family_of(a, up_fam) {
                let t = truths.entry(fam).or_default();
                t.0 += if certain { 1.0 / n } else { 0.0 };
                t.1 += 1.0 / n;
            }
        }
        for (fam, v) in s["families"].as_object().unwrap() {
            let f = v["fraction"].as_f64().unwrap_or_else(|| panic!("{fam} has no fraction: {s}"));
            let (lo, hi) = (v["ci95"][0].as_f64().unwrap(), v["ci95"][1].as_f64().unwrap());
            assert!((0.0..=1.0).contains(&f) && lo <= f && f <= hi, "{fam}: {s}");
            // An identified family's fraction is the lower end of its identified set, which the
            // interval contains.
            let set = if v["identified"] == true {
                let (b_lo, b_hi) =
                    (v["bounds"][0].as_f64().unwrap(), v["bounds"][1].as_f64().unwrap());
                let mle = v["fraction_mle"].as_f64().unwrap();
                assert!(
                    b_lo == f && b_lo <= mle && mle <= b_hi && lo <= b_lo && b_hi <= hi,
                    "{fam}: {s}"
                );
                format!(", set [{b_lo:.3}, {b_hi:.3}], MLE at δ = 0 {mle:.3}")
            } else {
                format!(" (lower bound; {} calibration model)", v["calibrated_models"])
            };
            let (t_lo, t_hi) = truths.get(fam.as_str()).copied().unwrap_or((0.0, 0.0));
            println!(
                "audit {name} mixture {pi:.2} ({} texts): {fam:<12} true {} -> estimate {f:.3}, 95% CI [{lo:.3}, {hi:.3}], width {:.3}{set}",
                texts.len(),
                if t_lo == t_hi { format!("{t_lo:.3}") } else { format!("{t_lo:.3}–{t_hi:.3}") },
                hi - lo,
            );
            if !(lo <= t_hi && t_lo <= hi) {
                failures.push(format!("{name} mixture {pi}: {fam} truth {t_lo:.3}–{t_hi:.3} outside [{lo:.3}, {hi:.3}]"));
            }
            if pi == 0.0 && fam == target_family && f > 0.05 {
                failures.push(format!("{name} mixture without {fam}: estimated at {f:.3} > 0.05"));
            }
        }
    }
    failures
}

#[test]
fn audit_interval_covers_true_upstream_fraction() {
    let (Some(profile), Some((up, ind))) = (profile_args(), suspect_answers()) else { return };
    assert!(
        up.len() >= 200 && ind.len() >= 400,
        "unexpected bench: {} upstream, {} independent answers",
        up.len(),
        ind.len()
    );
    let failures = run_mixtures(
        &profile,
        "upstream",
        None,
        &up.iter().collect::<Vec<_>>(),
        &ind.iter().collect::<Vec<_>>(),
        2024,
        &[],
    );
    assert!(failures.is_empty(), "{failures:?}");
}

/// The same for a non-upstream family with several calibration models: the unseen `claude-2.1`
/// (anthropic) mixed with the other suspects (upstream versions and the other independents).
/// Run with `--model-mix`: without claude-2.1 the corpus's independent text is only Llama-3-8B,
/// guanaco and humpback, none of them Claude-like, and the default (location-shift) upstream
/// interval misses the upstream share there (0.82 [0.61, 0.96] at a true 0.40; README).
#[test]
fn audit_interval_covers_true_anthropic_fraction() {
    let (Some(profile), Some((up, ind))) = (profile_args(), suspect_answers()) else { return };
    if !profile_families(&profile).iter().any(|f| f == "anthropic") {
        eprintln!("NOTE: skipping: the profile has no anthropic family");
        return;
    }
    let (claude, rest): (Vec<&Answer>, Vec<&Answer>) =
        up.iter().chain(&ind).partition(|a| a.model == "claude-2.1");
    assert!(claude.len() >= 100, "unexpected bench: {} claude-2.1 answers", claude.len());
    let failures =
        run_mixtures(&profile, "anthropic", Some("anthropic"), &claude, &rest, 7, &["--model-mix"]);
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn audit_summary_shape_sampling_and_formats() {
    let (Some(profile), Some((up, ind))) = (profile_args(), suspect_answers()) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let texts: Vec<&str> =
        up.iter().take(100).chain(ind.iter().take(300)).map(|a| a.text.as_str()).collect();
    let path = tmp.path().join("c.jsonl");
    write_jsonl(&path, &texts);
    let s = audit(&profile, &path, &["--top", "3", "--bootstrap", "50"]);
    assert_eq!(s["texts"], 400);
    assert_eq!(s["scored"], 400);
    let top = s["top_texts"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    assert!(top[0]["score"].as_f64() >= top[2]["score"].as_f64());
    assert!(
        top[0]["text"].as_str().is_some_and(|t| !t.is_empty()) && top[0]["evidence"].is_array(),
        "{}",
        top[0]
    );
    assert!(s["bytes_per_second"].as_f64().unwrap() > 0.0);
    assert!(s["method"].as_str().unwrap().contains("mixture"));

    // Reservoir sample: 150 of 400 texts scored, same seed = same answer.
    let a = audit(&profile, &path, &["--sample", "150", "--seed", "9", "--bootstrap", "50"]);
    let b = audit(&profile, &path, &["--sample", "150", "--seed", "9", "--bootstrap", "50"]);
    assert_eq!(a["texts"], 400);
    assert_eq!(a["estimated_from"], 150);
    assert_eq!(a["families"], b["families"]);

    // Another format the datasets crate reads (CSV with a text column), plus a malformed JSONL
    // record that is skipped rather than fatal.
    let csv = tmp.path().join("c.csv");
    let mut w = String::from("id,text\n");
    for (i, t) in texts.iter().take(50).enumerate() {
        w.push_str(&format!("{i},\"{}\"\n", t.replace('"', "\"\"")));
    }
    std::fs::write(&csv, w).unwrap();
    let c = audit(&profile, &csv, &["--format", "csv:text", "--bootstrap", "20"]);
    assert_eq!(c["texts"], 50);
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        format!(
            "{}\nnot json\n{}\n",
            serde_json::json!({"text": texts[0]}),
            serde_json::json!({"text": texts[1]})
        ),
    )
    .unwrap();
    let d = audit(&profile, &bad, &["--bootstrap", "20"]);
    assert_eq!(d["texts"], 2);
    assert_eq!(d["skipped_records"], 1);
}
