//! `pedigree membership` as a user runs it: the real binary on fixtures written here, with the
//! served log, the fresh answers and the suspect's answers in three different formats.

use std::path::{Path, PathBuf};
use std::process::Command;

fn pedigree() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pedigree"))
}

#[path = "common/answers.rs"]
mod answers;
use answers::{answer, word, Lcg};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// 40 prompts served to `acct-1` and 5 to `acct-2` (OpenAI chat log), fresh answers
/// (AlpacaEval JSON), an independent suspect and a student that copied 12 served answers with
/// the last sentence dropped (JSONL), and fresh answers "from another snapshot".
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Lcg(42);
    let (mut log, mut fresh, mut shifted, mut own, mut student) =
        (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..45u64 {
        let prompt = format!("Question {} about {}?", word(i), word(2000 + i));
        let (s, f, o) = (answer(&mut r, i), answer(&mut r, i), answer(&mut r, i));
        let account = if i < 40 { "acct-1" } else { "acct-2" };
        log.push(serde_json::json!({
            "request": {"model": "up-1", "user": account, "messages": [{"role": "user", "content": format!("{prompt}\n")}]},
            "response": {"id": format!("r{i}"), "created": 1_700_000_000 + i, "choices": [{"message": {"role": "assistant", "content": s}}]}
        }).to_string());
        fresh.push(serde_json::json!({"instruction": prompt, "output": f, "generator": "up-1"}));
        shifted.push(serde_json::json!({"instruction": prompt, "output": format!("## Answer\n\n- {f}\n\nIn summary, that is all."), "generator": "up-2"}));
        own.push(serde_json::json!({"prompt": prompt, "response": o}).to_string());
        let copied =
            if i < 12 { s[..s[..s.len() - 1].rfind('.').unwrap()].to_lowercase() } else { o };
        student.push(
            serde_json::json!({"prompt": prompt.to_uppercase(), "response": copied}).to_string(),
        );
    }
    let w = |name: &str, body: String| std::fs::write(dir.path().join(name), body).unwrap();
    w("served.jsonl", log.join("\n") + "\n");
    w("fresh.json", serde_json::to_string_pretty(&fresh).unwrap());
    w("shifted.json", serde_json::to_string_pretty(&shifted).unwrap());
    w("own.jsonl", own.join("\n") + "\n");
    w("student.jsonl", student.join("\n") + "\n");
    Fixture { dir }
}

fn run(args: &[&str], dir: &Path) -> (bool, serde_json::Value, String) {
    let out = pedigree().arg("membership").args(args).current_dir(dir).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let last = stdout.lines().last().unwrap_or("null");
    (out.status.success(), serde_json::from_str(last).unwrap_or(serde_json::Value::Null), stderr)
}

#[test]
fn decides_for_a_student_and_not_for_an_independent_model() {
    let f = fixture();
    let d = f.dir.path();
    let (ok, j, err) = run(
        &[
            "--served",
            "served.jsonl",
            "--fresh",
            "fresh.json",
            "--account",
            "acct-1",
            "--permutations",
            "999",
            "student.jsonl",
        ],
        d,
    );
    assert!(ok, "{err}");
    assert_eq!(j["decision"], "trained_on_served", "{j}");
    assert_eq!(j["prompts"], 40);
    assert!(j["p_value"].as_f64().unwrap() <= 0.01 && j["effect"].as_f64().unwrap() > 0.0);
    let ev = j["evidence"].as_array().unwrap();
    assert!(!ev.is_empty() && !ev[0]["segments"].as_array().unwrap().is_empty(), "{j}");

    let (ok, j, err) = run(
        &["--served", "served.jsonl", "--fresh", "fresh.json", "--account", "acct-1", "own.jsonl"],
        d,
    );
    assert!(ok, "{err}");
    assert_eq!(j["decision"], "not_detected", "{j}");

    let (ok, j, err) =
        run(&["--served", "served.jsonl", "--fresh", "shifted.json", "student.jsonl"], d);
    assert!(ok, "{err}");
    assert_eq!(j["decision"], "invalid", "{j}");
    assert!(j["reason"].as_str().unwrap().contains("not exchangeable"));
}

#[test]
fn bad_input_is_a_clear_error() {
    let f = fixture();
    let d = f.dir.path();
    // Only 5 prompts were served to acct-2.
    let (ok, _, err) = run(
        &["--served", "served.jsonl", "--fresh", "fresh.json", "--account", "acct-2", "own.jsonl"],
        d,
    );
    assert!(!ok && err.contains("5 prompts") && err.contains("at least 20"), "{err}");
    let (ok, _, err) = run(
        &["--served", "served.jsonl", "--fresh", "fresh.json", "--account", "nobody", "own.jsonl"],
        d,
    );
    assert!(!ok && err.contains("acct-1, acct-2"), "{err}");
    let (ok, _, err) = run(
        &["--served", "served.jsonl", "--fresh", "fresh.json", "--alpha", "0.7", "own.jsonl"],
        d,
    );
    assert!(!ok && err.contains("alpha"), "{err}");
    std::fs::write(
        f.path("bad.jsonl"),
        "{\"prompt\": \"q\", \"response\": \"a\"}\n{\"response\": \"no prompt\"}\n",
    )
    .unwrap();
    let (ok, _, err) = run(&["--served", "bad.jsonl", "--fresh", "fresh.json", "own.jsonl"], d);
    assert!(!ok && err.contains("bad.jsonl:2") && err.contains("prompt"), "{err}");
    let (ok, _, err) = run(&["--served", "missing.jsonl", "--fresh", "fresh.json", "own.jsonl"], d);
    assert!(!ok && err.contains("missing.jsonl"), "{err}");
}

#[test]
fn served_log_summary_per_account() {
    let f = fixture();
    let out =
        pedigree().args(["served-log", "served.jsonl"]).current_dir(f.dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["account"], "acct-1");
    assert_eq!((lines[0]["answers"].as_u64(), lines[0]["prompts"].as_u64()), (Some(40), Some(40)));
    assert_eq!(lines[0]["first_created"], 1_700_000_000u64);
    assert_eq!(lines[0]["last_created"], 1_700_000_039u64);
    assert_eq!(lines[1]["account"], "acct-2");
    assert_eq!(lines[2]["answers"], 45);
}
