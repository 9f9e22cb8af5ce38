//! Served logs and answer files for the membership test.
//!
//! A served log is what a provider's API logged: the prompts an account sent and the answers
//! it was served. Any format [`open`](crate::open) reads that carries a prompt works: OpenAI
//! chat-completions logs (`messages` + `choices`, or `{"request", "response"}`; the account is
//! the request's `user`, the time the response's `created`), JSONL
//! `{"prompt", "response"[, "account"][, "created"]}`, AlpacaEval, ShareGPT, CSV with a prompt
//! column. Fresh answers and suspect answers are read the same way.
//!
//! Unlike corpus scoring, which skips bad records, every bad record here is an error naming
//! file and line: a served log is evidence, and silently dropping part of it would change the
//! test.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DatasetError, Result};
use crate::format::Format;

/// One logged (or collected) answer to one prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedAnswer {
    pub prompt: String,
    pub response: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    /// File and 1-based line it came from.
    pub source: String,
    pub line: u64,
}

/// Reads every answer of `path` (format detected unless given). With `account`, keeps the
/// answers served to that account only; it is an error if none are left. A record without a
/// prompt, or any malformed record, is an error naming file and line.
pub fn read_answers(
    path: &Path,
    format: Option<Format>,
    account: Option<&str>,
) -> Result<Vec<ServedAnswer>> {
    let mut out = Vec::new();
    let mut accounts: BTreeMap<String, usize> = BTreeMap::new();
    for rec in crate::open(path, format)? {
        let rec = rec?;
        let Some(prompt) = rec.prompt else {
            return Err(DatasetError::parse(
                path,
                rec.line,
                Some("prompt"),
                "missing: the membership test matches answers by prompt, so every answer needs \
                 one (JSONL `prompt`, AlpacaEval `instruction`, OpenAI `messages`)",
            ));
        };
        if let Some(a) = &rec.account {
            *accounts.entry(a.clone()).or_default() += 1;
        }
        if account.is_some() && rec.account.as_deref() != account {
            continue;
        }
        out.push(ServedAnswer {
            prompt,
            response: rec.text,
            account: rec.account,
            created: rec.created,
            source: rec.source.unwrap_or_else(|| path.display().to_string()),
            line: rec.line,
        });
    }
    if let Some(a) = account {
        if out.is_empty() {
            let known: Vec<&str> = accounts.keys().take(20).map(String::as_str).collect();
            return Err(DatasetError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "no answers served to account {a:?}; accounts in this file: {}",
                    if known.is_empty() { "none recorded".to_string() } else { known.join(", ") }
                ),
            });
        }
    }
    Ok(out)
}

/// Normalised prompt text used to match answers across files and formats: Unicode white space
/// runs become one space, leading and trailing white space is dropped, letters are lower-cased.
/// Formats quote the same prompt differently (a trailing newline in a chat log, CRLF in CSV);
/// anything beyond white space and case is a different prompt.
pub fn normalize_prompt(prompt: &str) -> String {
    let mut out = String::with_capacity(prompt.len());
    for w in prompt.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(w.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Volume, time span and distinct prompts of one account in a served log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    /// `None` for answers logged without an account.
    pub account: Option<String>,
    pub answers: usize,
    pub prompts: usize,
    pub first_created: Option<i64>,
    pub last_created: Option<i64>,
}

/// Per-account summary, accounts in lexical order (answers without an account last).
pub fn summarize(answers: &[ServedAnswer]) -> Vec<AccountSummary> {
    /// answers, distinct prompts, first and last `created`
    type Acc = (usize, HashSet<String>, Option<i64>, Option<i64>);
    let mut by: BTreeMap<Option<&str>, Acc> = BTreeMap::new();
    for a in answers {
        let e = by.entry(a.account.as_deref()).or_default();
        e.0 += 1;
        e.1.insert(normalize_prompt(&a.prompt));
        if let Some(t) = a.created {
            e.2 = Some(e.2.map_or(t, |x: i64| x.min(t)));
            e.3 = Some(e.3.map_or(t, |x: i64| x.max(t)));
        }
    }
    let mut out: Vec<AccountSummary> = by
        .into_iter()
        .map(|(a, (n, p, f, l))| AccountSummary {
            account: a.map(str::to_owned),
            answers: n,
            prompts: p.len(),
            first_created: f,
            last_created: l,
        })
        .collect();
    // BTreeMap puts None first; list it last.
    if out.first().is_some_and(|s| s.account.is_none()) {
        let none = out.remove(0);
        out.push(none);
    }
    out
}

/// Parses an RFC 3339 time (`2023-05-01T12:00:00Z`, `…+02:00`, fractional seconds; a space
/// instead of `T` is accepted) into Unix seconds. `None` if it is not one.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    if b.len() < 19 || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = std::str::from_utf8(b.get(r)?).ok()?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i) {
        None => 0,
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if c == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm, proleptic Gregorian).
    let (y2, m2) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, content: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-05-01T12:00:00Z"), Some(1_682_942_400));
        assert_eq!(parse_rfc3339("2023-05-01 14:00:00.123+02:00"), Some(1_682_942_400));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00-00:30"), Some(951_784_200));
        for bad in [
            "",
            "2023-05-01",
            "2023-13-01T00:00:00Z",
            "2023-05-01T00:00:00Zjunk",
            "2023-05-01T00:00:00+2",
            "２０２３-05-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn prompts_match_across_white_space_and_case() {
        assert_eq!(normalize_prompt("  What is\r\n2+2?\t"), "what is 2+2?");
        assert_eq!(normalize_prompt("WHAT IS 2+2?"), normalize_prompt("what is  2+2?"));
        assert_ne!(normalize_prompt("what is 2+2?"), normalize_prompt("what is 2+2"));
    }

    #[test]
    fn openai_log_and_jsonl_with_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let log = write(
            dir.path(),
            "log.jsonl",
            concat!(
                r#"{"request": {"model": "m", "user": "acct-1", "messages": [{"role": "user", "content": "Q one\n"}]}, "response": {"id": "r1", "created": 1700000000, "choices": [{"message": {"content": "A1"}}]}}"#,
                "\n",
                r#"{"request": {"model": "m", "user": "acct-2", "messages": [{"role": "user", "content": "Q two"}]}, "response": {"id": "r2", "created": 1700000100, "choices": [{"message": {"content": "A2"}}]}}"#,
                "\n",
                r#"{"request": {"model": "m", "user": "acct-1", "messages": [{"role": "user", "content": "Q three"}]}, "response": {"id": "r3", "created": 1700000200, "choices": [{"message": {"content": "A3"}}]}}"#,
                "\n"
            ),
        );
        let all = read_answers(&log, None, None).unwrap();
        assert_eq!(all.len(), 3);
        let one = read_answers(&log, None, Some("acct-1")).unwrap();
        assert_eq!(one.iter().map(|a| a.response.as_str()).collect::<Vec<_>>(), ["A1", "A3"]);
        assert_eq!(one[0].prompt, "Q one\n");
        let s = summarize(&all);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].account.as_deref(), Some("acct-1"));
        assert_eq!((s[0].answers, s[0].prompts), (2, 2));
        assert_eq!(
            (s[0].first_created, s[0].last_created),
            (Some(1_700_000_000), Some(1_700_000_200))
        );
        let e = read_answers(&log, None, Some("nobody")).unwrap_err().to_string();
        assert!(e.contains("acct-1, acct-2") && e.contains("nobody"), "{e}");

        let jl = write(
            dir.path(),
            "s.jsonl",
            concat!(
                r#"{"prompt": "q one", "response": "x", "account": "acct-1", "created": "2023-11-14T22:13:20Z"}"#,
                "\n",
                r#"{"prompt": "q two", "response": "y"}"#,
                "\n"
            ),
        );
        let a = read_answers(&jl, None, None).unwrap();
        assert_eq!(a[0].created, Some(1_700_000_000));
        assert_eq!(a[1].account, None);
        // Matched to the chat log's "Q one\n".
        assert_eq!(normalize_prompt(&a[0].prompt), normalize_prompt(&all[0].prompt));
        assert_eq!(summarize(&a).last().unwrap().account, None);
    }

    #[test]
    fn bad_records_are_errors_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "bad.jsonl",
            "{\"prompt\": \"q\", \"response\": \"a\"}\n{\"response\": \"no prompt\"}\n",
        );
        let e = read_answers(&p, None, None).unwrap_err().to_string();
        assert!(e.contains("bad.jsonl:2") && e.contains("prompt"), "{e}");
        let p =
            write(dir.path(), "bad2.jsonl", "{\"prompt\": \"q\", \"response\": \"a\"}\nnot json\n");
        let e = read_answers(&p, None, None).unwrap_err().to_string();
        assert!(e.contains("bad2.jsonl:2"), "{e}");
        let p = write(
            dir.path(),
            "bad3.jsonl",
            "{\"prompt\": \"q\", \"response\": \"a\", \"created\": \"yesterday\"}\n",
        );
        let e = read_answers(&p, None, None).unwrap_err().to_string();
        assert!(e.contains("bad3.jsonl:1") && e.contains("created"), "{e}");
        assert!(read_answers(&dir.path().join("missing.jsonl"), None, None).is_err());
    }
}
