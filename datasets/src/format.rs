//! Corpus formats, their CLI names, and format sniffing.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{DatasetError, Result};
use crate::source::{logical_name, open_counted, Units};

/// The corpus formats `open` understands. JSON-based formats accept both JSONL and a top-level
/// JSON array (detected from the first significant byte), gzipped or not.
///
/// CLI names (`FromStr`/`Display`): `jsonl`, `alpaca-eval`, `fastchat`, `sharegpt`,
/// `openai-chat`, `csv:COLUMN` or `csv:COLUMN:PROMPT_COLUMN`, `bench`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Format {
    /// One object per line with `text` (or `response`/`output`/`completion`), optionally
    /// `prompt`/`instruction`, `id`/`prompt_id`, `model`/`generator`.
    Jsonl,
    /// AlpacaEval `model_outputs.json`: array of `{"instruction","output","generator",…}`.
    AlpacaEval,
    /// FastChat `model_answer/*.jsonl`: `{"question_id","model_id","choices":[{"turns":[…]}]}`;
    /// a file or a directory of them. Every turn is one text; the prompt is unknown.
    #[serde(rename = "fastchat")]
    FastChat,
    /// ShareGPT conversations: `{"id","conversations":[{"from","value"}]}`; every assistant
    /// turn is a text, the preceding human turn its prompt.
    #[serde(rename = "sharegpt")]
    ShareGpt,
    /// OpenAI chat-completions logs: `{"messages":[…],"choices":[…]}` per line, or
    /// `{"request":{…},"response":{…}}` (batch-API `response.body` too).
    #[serde(rename = "openai-chat")]
    OpenAiChat,
    /// CSV with a header; `column` holds the text, `prompt_column` the prompt if any.
    /// `id` and `model` columns are picked up when present.
    Csv {
        column: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt_column: Option<String>,
    },
    /// A bench directory (see `bench`) or its `samples.jsonl`.
    Bench,
}

impl Format {
    /// All CLI names, for help texts.
    pub const NAMES: &'static [&'static str] =
        &["jsonl", "alpaca-eval", "fastchat", "sharegpt", "openai-chat", "csv:COLUMN", "bench"];
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Jsonl => f.write_str("jsonl"),
            Format::AlpacaEval => f.write_str("alpaca-eval"),
            Format::FastChat => f.write_str("fastchat"),
            Format::ShareGpt => f.write_str("sharegpt"),
            Format::OpenAiChat => f.write_str("openai-chat"),
            Format::Csv { column, prompt_column: None } => write!(f, "csv:{column}"),
            Format::Csv { column, prompt_column: Some(p) } => write!(f, "csv:{column}:{p}"),
            Format::Bench => f.write_str("bench"),
        }
    }
}

impl FromStr for Format {
    type Err = DatasetError;

    /// Parses a CLI name. Case-insensitive for the format keyword; `csv` alone means column
    /// `text`. Column names are taken verbatim (they may not contain `:`).
    fn from_str(s: &str) -> Result<Format> {
        let unknown = || DatasetError::UnknownFormat { name: s.to_string() };
        let (head, rest) = match s.split_once(':') {
            Some((h, r)) => (h, Some(r)),
            None => (s, None),
        };
        let head = head.trim().to_ascii_lowercase();
        let simple = match head.as_str() {
            "jsonl" | "json" | "text" => Some(Format::Jsonl),
            "alpaca-eval" | "alpaca_eval" | "alpacaeval" => Some(Format::AlpacaEval),
            "fastchat" | "fast-chat" | "mt-bench" => Some(Format::FastChat),
            "sharegpt" | "share-gpt" => Some(Format::ShareGpt),
            "openai-chat" | "openai" | "openai_chat" => Some(Format::OpenAiChat),
            "bench" => Some(Format::Bench),
            "csv" => None,
            _ => return Err(unknown()),
        };
        if let Some(f) = simple {
            return if rest.is_some() { Err(unknown()) } else { Ok(f) };
        }
        let (column, prompt_column) = match rest {
            None => ("text".to_string(), None),
            Some(r) => match r.split_once(':') {
                Some((c, p)) if !c.is_empty() && !p.is_empty() && !p.contains(':') => {
                    (c.to_string(), Some(p.to_string()))
                }
                None if !r.is_empty() => (r.to_string(), None),
                _ => return Err(unknown()),
            },
        };
        Ok(Format::Csv { column, prompt_column })
    }
}

/// Guesses the format of `path` by looking at its start only (never the whole file):
/// * a directory with `manifest.json` → `Bench`; a directory of `*.jsonl[.gz]` → `FastChat`;
/// * `*.csv[.gz]` → `Csv` with column `text` (and `prompt_column` `prompt` if present); an
///   error listing the columns if there is no `text` column;
/// * otherwise the first JSON unit (first line, or first element of a top-level array) decides
///   by its keys: `conversations` → ShareGPT, `question_id`+`choices` → FastChat,
///   `messages`/`request`/`choices[].message` → OpenAI chat, `instruction`+`output` →
///   AlpacaEval, `prompt_id`+`prompt`+`response`+`model` → Bench, a string
///   `text`/`response`/`output`/`completion` → JSONL.
pub fn detect_format(path: &Path) -> Result<Format> {
    let detect = |message: String| DatasetError::Detect { path: path.to_path_buf(), message };
    let meta = std::fs::metadata(path).map_err(|e| DatasetError::io(path, e))?;
    if meta.is_dir() {
        if path.join("manifest.json").is_file() {
            return Ok(Format::Bench);
        }
        if !crate::reader::json_files_in(path)?.is_empty() {
            return Ok(Format::FastChat);
        }
        return Err(detect(
            "directory has neither manifest.json (bench) nor *.jsonl files (fastchat)".into(),
        ));
    }
    let counter = Arc::new(AtomicU64::new(0));
    if logical_name(path).ends_with(".csv") {
        let r = open_counted(path, counter)?;
        let headers = crate::reader::csv_headers(r, path)?;
        let has = |c: &str| headers.iter().any(|h| h == c);
        if !has("text") {
            return Err(detect(format!(
                "CSV without a \"text\" column; name the text column with csv:COLUMN (columns: {})",
                headers.join(", ")
            )));
        }
        let prompt_column = has("prompt").then(|| "prompt".to_string());
        return Ok(Format::Csv { column: "text".into(), prompt_column });
    }
    let r = open_counted(path, counter)?;
    let mut units = Units::new(r, path)?;
    let unit = match units.next_unit() {
        None => return Err(detect("the file is empty".into())),
        Some(u) => u?,
    };
    let v: Value = serde_json::from_slice(&unit.bytes).map_err(|e| {
        detect(format!(
            "line {} is not JSON ({e}); for CSV use a .csv name or csv:COLUMN",
            unit.line
        ))
    })?;
    let Some(obj) = v.as_object() else {
        return Err(detect(format!("line {}: expected a JSON object", unit.line)));
    };
    sniff_keys(obj).ok_or_else(|| {
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        detect(format!("no known format has the keys [{}]", keys.join(", ")))
    })
}

/// Decides the format of one JSON object by its keys (see `detect_format`).
pub(crate) fn sniff_keys(obj: &serde_json::Map<String, Value>) -> Option<Format> {
    let has = |k: &str| obj.contains_key(k);
    let is_str = |k: &str| obj.get(k).is_some_and(Value::is_string);
    if has("conversations") || has("conversation") {
        return Some(Format::ShareGpt);
    }
    if has("question_id") && has("choices") || has("model_id") && has("choices") {
        return Some(Format::FastChat);
    }
    let choice_has_message = obj
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .is_some_and(|c| c.get("message").is_some());
    if obj.get("messages").is_some_and(Value::is_array)
        || obj.get("request").is_some_and(Value::is_object)
        || obj.get("response").is_some_and(Value::is_object)
        || choice_has_message
    {
        return Some(Format::OpenAiChat);
    }
    if has("instruction") && is_str("output") {
        return Some(Format::AlpacaEval);
    }
    if is_str("prompt_id") && is_str("prompt") && is_str("response") && is_str("model") {
        return Some(Format::Bench);
    }
    if ["text", "response", "output", "completion"].iter().any(|k| is_str(k)) {
        return Some(Format::Jsonl);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn cli_names_round_trip() {
        for name in ["jsonl", "alpaca-eval", "fastchat", "sharegpt", "openai-chat", "bench"] {
            let f: Format = name.parse().unwrap();
            assert_eq!(f.to_string(), name);
        }
        assert_eq!(
            "csv:body".parse::<Format>().unwrap(),
            Format::Csv { column: "body".into(), prompt_column: None }
        );
        assert_eq!(
            "csv:body:question".parse::<Format>().unwrap(),
            Format::Csv { column: "body".into(), prompt_column: Some("question".into()) }
        );
        assert_eq!("csv:body:question".parse::<Format>().unwrap().to_string(), "csv:body:question");
        assert_eq!(
            "CSV".parse::<Format>().unwrap(),
            Format::Csv { column: "text".into(), prompt_column: None }
        );
        assert!("csv:".parse::<Format>().is_err());
        assert!("jsonl:x".parse::<Format>().is_err());
        let e = "parquet".parse::<Format>().unwrap_err();
        assert!(e.to_string().contains("\"parquet\""), "{e}");
    }

    #[test]
    fn serde_form() {
        let f = Format::Csv { column: "t".into(), prompt_column: None };
        assert_eq!(serde_json::to_string(&f).unwrap(), r#"{"kind":"csv","column":"t"}"#);
        assert_eq!(
            serde_json::to_string(&Format::OpenAiChat).unwrap(),
            r#"{"kind":"openai-chat"}"#
        );
        let back: Format = serde_json::from_str(r#"{"kind":"fastchat"}"#).unwrap();
        assert_eq!(back, Format::FastChat);
    }

    fn write(dir: &Path, name: &str, content: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p).unwrap().write_all(content.as_bytes()).unwrap();
        p
    }

    #[test]
    fn detects_by_content() {
        let d = tempfile::tempdir().unwrap();
        let cases = [
            ("a.json", "  [ {\"instruction\": \"q\", \"output\": \"a\", \"generator\": \"m\"} ]", Format::AlpacaEval),
            ("b.json", "[{\"id\": \"1\", \"conversations\": []}]", Format::ShareGpt),
            ("c.jsonl", "{\"id\": \"1\", \"conversations\": []}\n", Format::ShareGpt),
            ("d.jsonl", "{\"question_id\": 81, \"model_id\": \"m\", \"choices\": []}\n", Format::FastChat),
            ("e.jsonl", "{\"messages\": [], \"choices\": []}\n", Format::OpenAiChat),
            ("f.jsonl", "{\"request\": {}, \"response\": {}}\n", Format::OpenAiChat),
            ("g.jsonl", "\n{\"text\": \"hi\"}\n", Format::Jsonl),
            ("h.jsonl", "{\"prompt\": \"p\", \"response\": \"r\"}\n", Format::Jsonl),
            ("i.jsonl", "{\"prompt_id\": \"x\", \"prompt\": \"p\", \"response\": \"r\", \"model\": \"m\"}\n", Format::Bench),
        ];
        for (name, content, want) in cases {
            let p = write(d.path(), name, content);
            assert_eq!(detect_format(&p).unwrap(), want, "{name}");
        }
        let p = write(d.path(), "z.jsonl", "{\"foo\": 1}\n");
        let e = detect_format(&p).unwrap_err().to_string();
        assert!(e.contains("foo"), "{e}");
        let p = write(d.path(), "empty.jsonl", "\n\n");
        assert!(detect_format(&p).is_err());
    }

    #[test]
    fn detects_csv_and_dirs() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "a.csv", "id,prompt,text\n1,q,a\n");
        assert_eq!(
            detect_format(&p).unwrap(),
            Format::Csv { column: "text".into(), prompt_column: Some("prompt".into()) }
        );
        let p = write(d.path(), "b.csv", "id,body\n1,a\n");
        let e = detect_format(&p).unwrap_err().to_string();
        assert!(e.contains("id, body"), "{e}");

        let fc = d.path().join("model_answer");
        std::fs::create_dir(&fc).unwrap();
        write(&fc, "m.jsonl", "{}\n");
        assert_eq!(detect_format(&fc).unwrap(), Format::FastChat);
        let bench = d.path().join("bench");
        std::fs::create_dir(&bench).unwrap();
        write(&bench, "manifest.json", "{}");
        assert_eq!(detect_format(&bench).unwrap(), Format::Bench);
        let empty = d.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(detect_format(&empty).is_err());
    }
}
