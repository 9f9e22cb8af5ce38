//! Probe sets: the built-in `identity` and `general` sets (embedded from `server/probes/*.jsonl`)
//! and user-supplied JSONL files.
//!
//! A probe line is `{"prompt": "…", "id": "…", "kind": "…"}` (only `prompt` is required; a bare
//! JSON string is a prompt). `identity` probes ask who made the model, what it is and when its
//! knowledge ends, directly and indirectly, in English and Chinese: a distilled student often
//! answers with its teacher's identity. `general` probes are ordinary instructions written for
//! this project (not taken from any benchmark), whose answers carry the teacher's style.

use serde::Deserialize;

pub const IDENTITY: &str = include_str!("../../../probes/identity.jsonl");
pub const GENERAL: &str = include_str!("../../../probes/general.jsonl");

/// Names of the built-in sets, as accepted by `--probes` and the `probes` field of a campaign.
pub const BUILTIN: &[&str] = &["identity", "general", "identity+general"];

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Probe {
    pub id: String,
    pub kind: String,
    pub prompt: String,
}

#[derive(Deserialize)]
struct Line {
    prompt: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

/// Parse a JSONL probe set. `default_kind` is the kind of lines that name none. Errors name the
/// line. Blank lines are skipped; duplicate prompts are dropped (a probe is asked once).
pub fn parse(text: &str, default_kind: &str, what: &str) -> Result<Vec<Probe>, String> {
    let mut out: Vec<Probe> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("{what}:{}: malformed JSON: {e}", i + 1))?;
        let l = match v {
            serde_json::Value::String(prompt) => Line { prompt, id: None, kind: None },
            v => serde_json::from_value::<Line>(v)
                .map_err(|e| format!("{what}:{}: {e} (expected {{\"prompt\": \"…\"}})", i + 1))?,
        };
        if l.prompt.trim().is_empty() {
            return Err(format!("{what}:{}: `prompt` is empty", i + 1));
        }
        if !seen.insert(l.prompt.clone()) {
            continue;
        }
        out.push(Probe {
            id: l.id.unwrap_or_else(|| format!("{}-{}", default_kind, i + 1)),
            kind: l.kind.unwrap_or_else(|| default_kind.to_string()),
            prompt: l.prompt,
        });
    }
    if out.is_empty() {
        return Err(format!("{what}: no probes"));
    }
    Ok(out)
}

/// A built-in set by name (`identity`, `general`, `identity+general`).
pub fn builtin(name: &str) -> Option<Vec<Probe>> {
    let p = |t, k| parse(t, k, "built-in").expect("built-in probe sets parse");
    match name {
        "identity" => Some(p(IDENTITY, "identity")),
        "general" => Some(p(GENERAL, "general")),
        "identity+general" => {
            let mut v = p(IDENTITY, "identity");
            v.extend(p(GENERAL, "general"));
            Some(v)
        }
        _ => None,
    }
}

/// `--probes` of the CLI: a built-in name or a JSONL file.
pub fn load(spec: &str) -> Result<Vec<Probe>, String> {
    if let Some(v) = builtin(spec) {
        return Ok(v);
    }
    let text = std::fs::read_to_string(spec).map_err(|e| {
        format!("probe set `{spec}` is neither {} nor a readable file: {e}", BUILTIN.join(", "))
    })?;
    parse(&text, "custom", spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_sets_have_the_documented_content() {
        let id = builtin("identity").unwrap();
        assert!(id.len() >= 20);
        assert!(id.iter().any(|p| p.prompt.contains("knowledge cutoff")));
        assert!(id.iter().any(|p| p.prompt.contains("你是谁开发的")), "Chinese probes");
        assert!(id.iter().any(|p| p.id.contains("architecture")), "indirect probes");
        let gen = builtin("general").unwrap();
        assert!(gen.len() >= 60 && gen.iter().all(|p| p.kind == "general"));
        assert_eq!(builtin("identity+general").unwrap().len(), id.len() + gen.len());
        let mut ids: Vec<&str> = id.iter().chain(&gen).map(|p| p.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), id.len() + gen.len(), "probe ids are unique");
    }

    #[test]
    fn user_sets_parse_with_line_numbers() {
        let v = parse("{\"prompt\": \"a\"}\n\n\"b\"\n{\"prompt\": \"a\"}\n", "custom", "f.jsonl")
            .unwrap();
        assert_eq!(v.iter().map(|p| p.prompt.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(v[1].id, "custom-3");
        let e = parse("{\"prompt\": \"a\"}\n{\"text\": 1}\n", "custom", "f.jsonl").unwrap_err();
        assert!(e.starts_with("f.jsonl:2:"), "{e}");
        assert!(parse("{\"prompt\": \"  \"}", "c", "f").unwrap_err().contains("empty"));
        assert!(parse("\n", "c", "f").unwrap_err().contains("no probes"));
        assert!(load("/nonexistent/probes.jsonl").unwrap_err().contains("neither"));
    }
}
