//! Streaming record readers: `open` turns a file (or directory) in any `Format` into an
//! iterator of `TextRecord`s.
//!
//! Contract shared by all formats: nothing is loaded whole (memory is bounded by the largest
//! single record); a malformed record yields one `Err(DatasetError::Parse{..})` naming file,
//! line and field, and iteration then continues with the next record; an I/O error or a broken
//! JSON array structure ends the iteration after yielding the error.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{DatasetError, Result};
use crate::format::{detect_format, Format};
use crate::source::{is_gzip, logical_name, open_counted, open_range_counted, DynBufRead, Units};

/// One text (a model response) with whatever context the format carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextRecord {
    /// Record id. For formats where one JSON record yields several texts (FastChat turns,
    /// ShareGPT assistant turns, OpenAI choices) the id is `BASE#k` (k = 0-based index of the
    /// text within the record) unless the record yields exactly one text, then it is `BASE`.
    pub id: Option<String>,
    /// The prompt the text answers, when known.
    pub prompt: Option<String>,
    /// The text to analyse.
    pub text: String,
    /// The model that produced the text, when the format says.
    pub model: Option<String>,
    /// The file the record came from (useful when a directory is read).
    pub source: Option<String>,
    /// 1-based line of the record's start in `source` (CSV: the row's line).
    pub line: u64,
    /// The API account the text was served to, when the format says (JSONL `account`/`user`,
    /// OpenAI logs `user`). Used to filter served logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// When the text was created, Unix seconds (JSONL `created` as a number or an RFC 3339
    /// string; OpenAI logs `created`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
}

type BoxIter = Box<dyn Iterator<Item = Result<TextRecord>> + Send>;

/// Iterator over the records of one input. `Send`, so it can be moved into a worker thread;
/// progress can be polled through `bytes_read` / `progress_counter` (on-disk bytes, so it
/// compares to `total_bytes` even for `.gz` input).
pub struct RecordIter {
    inner: BoxIter,
    bytes_read: Arc<AtomicU64>,
    total_bytes: Option<u64>,
    format: Format,
}

impl RecordIter {
    /// On-disk bytes consumed so far (read-ahead buffering makes it run slightly ahead).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// Shared counter behind `bytes_read`, for a progress bar polled from another thread.
    pub fn progress_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.bytes_read)
    }

    /// Total on-disk size of the input (sum over files for a directory), if known.
    pub fn total_bytes(&self) -> Option<u64> {
        self.total_bytes
    }

    /// The format being read (detected or given).
    pub fn format(&self) -> &Format {
        &self.format
    }
}

impl Iterator for RecordIter {
    type Item = Result<TextRecord>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

impl std::fmt::Debug for RecordIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordIter")
            .field("format", &self.format)
            .field("bytes_read", &self.bytes_read())
            .field("total_bytes", &self.total_bytes)
            .finish()
    }
}

/// Opens `path` as `format` (detected with `detect_format` when `None`).
///
/// `path` may be a file (`.gz` is decompressed transparently), a directory of FastChat
/// `*.jsonl[.gz]` files (read in name order), or a bench directory (its `samples.jsonl`).
/// Errors here are about the input as a whole (missing file, unknown CSV column, undetectable
/// format); per-record errors come from the iterator.
pub fn open(path: &Path, format: Option<Format>) -> Result<RecordIter> {
    let format = match format {
        Some(f) => f,
        None => detect_format(path)?,
    };
    let counter = Arc::new(AtomicU64::new(0));
    let is_dir = std::fs::metadata(path).map_err(|e| DatasetError::io(path, e))?.is_dir();
    let files: Vec<PathBuf> = if is_dir {
        match format {
            Format::Bench => {
                let gz = path.join("samples.jsonl.gz");
                let plain = path.join("samples.jsonl");
                vec![if !plain.exists() && gz.exists() { gz } else { plain }]
            }
            _ => {
                let files = json_files_in(path)?;
                if files.is_empty() {
                    return Err(DatasetError::Detect {
                        path: path.to_path_buf(),
                        message: "directory contains no *.jsonl / *.json files".into(),
                    });
                }
                files
            }
        }
    } else {
        vec![path.to_path_buf()]
    };
    let total_bytes = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()))
        .sum::<std::io::Result<u64>>()
        .ok();
    let inner: BoxIter = if files.len() == 1 {
        open_file(&files[0], &format, counter.clone())?
    } else {
        Box::new(MultiFile {
            files: files.into(),
            format: format.clone(),
            counter: counter.clone(),
            current: None,
        })
    };
    Ok(RecordIter { inner, bytes_read: counter, total_bytes, format })
}

/// Whether `path` read as `format` can be cut into parts at line starts, each part read on its
/// own by [`open_part`] with exactly the records a whole-file read gives for those lines: a
/// plain (not gzipped) file of a JSON-based format written as JSONL (not a top-level array).
/// CSV is not (a quoted field may span lines, and only the first part has the header).
pub fn splits_at_lines(path: &Path, format: Option<&Format>) -> Result<bool> {
    let format = match format {
        Some(f) => f.clone(),
        None => detect_format(path)?,
    };
    if matches!(format, Format::Csv { .. }) || is_gzip(path) || path.is_dir() {
        return Ok(false);
    }
    Units::is_lines(open_counted(path, Arc::new(AtomicU64::new(0)))?, path)
}

/// Opens the part `range` (bytes; it starts at a line start, after `lines_before` lines, and
/// ends after a newline or at the end of the file) of a file for which [`splits_at_lines`]
/// holds. The records of consecutive parts, concatenated, are the records of the whole file
/// (same ids, texts and line numbers); progress counts the part's bytes.
pub fn open_part(
    path: &Path,
    format: Option<Format>,
    range: std::ops::Range<u64>,
    lines_before: u64,
) -> Result<RecordIter> {
    let format = match format {
        Some(f) => f,
        None => detect_format(path)?,
    };
    if matches!(format, Format::Csv { .. }) || is_gzip(path) {
        return Err(DatasetError::Detect {
            path: path.to_path_buf(),
            message: format!("a {format} input cannot be read in parts"),
        });
    }
    let counter = Arc::new(AtomicU64::new(0));
    let r = open_range_counted(path, range.clone(), counter.clone())?;
    // The file's first part sniffs as a whole-file read does (BOM, leading blank lines).
    let units = if range.start == 0 {
        Units::new(r, path)?
    } else {
        Units::lines_after(r, path, lines_before)
    };
    let convert = converter(&format);
    let inner: BoxIter = Box::new(JsonRecords {
        units,
        ctx: Ctx { path: path.to_path_buf(), source: path.display().to_string(), line: 0 },
        convert,
        pending: VecDeque::new(),
    });
    Ok(RecordIter {
        inner,
        bytes_read: counter,
        total_bytes: Some(range.end - range.start),
        format,
    })
}

/// `*.jsonl`, `*.json` (and `.gz` of them) directly inside `dir`, sorted by name.
pub(crate) fn json_files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| DatasetError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DatasetError::io(dir, e))?;
        let p = entry.path();
        let name = logical_name(&p);
        if p.is_file() && (name.ends_with(".jsonl") || name.ends_with(".json")) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Reads several files in turn; an unopenable file yields its error and the next one is read.
struct MultiFile {
    files: VecDeque<PathBuf>,
    format: Format,
    counter: Arc<AtomicU64>,
    current: Option<BoxIter>,
}

impl Iterator for MultiFile {
    type Item = Result<TextRecord>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(cur) = &mut self.current {
                if let Some(x) = cur.next() {
                    return Some(x);
                }
                self.current = None;
            }
            let f = self.files.pop_front()?;
            match open_file(&f, &self.format, self.counter.clone()) {
                Ok(it) => self.current = Some(it),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

fn open_file(path: &Path, format: &Format, counter: Arc<AtomicU64>) -> Result<BoxIter> {
    let r = open_counted(path, counter)?;
    if let Format::Csv { column, prompt_column } = format {
        return Ok(Box::new(CsvRecords::new(r, path, column, prompt_column.as_deref())?));
    }
    Ok(Box::new(JsonRecords {
        units: Units::new(r, path)?,
        ctx: Ctx { path: path.to_path_buf(), source: path.display().to_string(), line: 0 },
        convert: converter(format),
        pending: VecDeque::new(),
    }))
}

/// The record converter of a JSON-based format.
fn converter(format: &Format) -> ConvertFn {
    match format {
        Format::Jsonl => convert_jsonl,
        Format::AlpacaEval => convert_alpaca,
        Format::FastChat => convert_fastchat,
        Format::ShareGpt => convert_sharegpt,
        Format::OpenAiChat => convert_openai,
        Format::Bench => convert_bench,
        Format::Csv { .. } => unreachable!("CSV has its own reader"),
    }
}

/// Where a unit came from, for records and error messages.
struct Ctx {
    path: PathBuf,
    source: String,
    line: u64,
}

impl Ctx {
    fn err(&self, field: &str, message: impl Into<String>) -> DatasetError {
        DatasetError::parse(&self.path, self.line, Some(field), message)
    }

    fn record(
        &self,
        id: Option<String>,
        prompt: Option<String>,
        text: String,
        model: Option<String>,
    ) -> TextRecord {
        TextRecord {
            id,
            prompt,
            text,
            model,
            source: Some(self.source.clone()),
            line: self.line,
            account: None,
            created: None,
        }
    }
}

type ConvertFn = fn(&Ctx, Value) -> Result<Vec<TextRecord>>;

struct JsonRecords {
    units: Units,
    ctx: Ctx,
    convert: ConvertFn,
    pending: VecDeque<TextRecord>,
}

impl Iterator for JsonRecords {
    type Item = Result<TextRecord>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Some(Ok(r));
            }
            let unit = match self.units.next_unit()? {
                Ok(u) => u,
                Err(e) => return Some(Err(e)),
            };
            self.ctx.line = unit.line;
            let value: Value = match serde_json::from_slice(&unit.bytes) {
                Ok(v) => v,
                Err(e) => {
                    return Some(Err(DatasetError::parse(
                        &self.ctx.path,
                        unit.line,
                        None,
                        format!("invalid JSON: {e}"),
                    )))
                }
            };
            match (self.convert)(&self.ctx, value) {
                Ok(recs) => self.pending.extend(recs),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Field helpers

fn as_object(ctx: &Ctx, v: Value) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(DatasetError::parse(
            &ctx.path,
            ctx.line,
            None,
            format!("expected a JSON object, found {}", kind(&other)),
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Required string field.
fn req_str(ctx: &Ctx, obj: &mut Map<String, Value>, key: &str) -> Result<String> {
    match obj.remove(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(ctx.err(key, format!("expected a string, found {}", kind(&other)))),
        None => Err(ctx.err(key, "missing")),
    }
}

/// First present key among `keys` that is a string; present-but-not-string is an error
/// (null counts as absent).
fn opt_str(ctx: &Ctx, obj: &mut Map<String, Value>, keys: &[&str]) -> Result<Option<String>> {
    for &k in keys {
        match obj.remove(k) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => return Ok(Some(s)),
            Some(other) => {
                return Err(ctx.err(k, format!("expected a string, found {}", kind(&other))))
            }
        }
    }
    Ok(None)
}

/// Optional id: string or number.
fn opt_id(ctx: &Ctx, obj: &mut Map<String, Value>, keys: &[&str]) -> Result<Option<String>> {
    for &k in keys {
        match obj.remove(k) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => return Ok(Some(s)),
            Some(Value::Number(n)) => return Ok(Some(n.to_string())),
            Some(other) => {
                return Err(
                    ctx.err(k, format!("expected a string or number, found {}", kind(&other)))
                )
            }
        }
    }
    Ok(None)
}

/// Applies the `BASE` / `BASE#k` id rule (see `TextRecord::id`).
fn number_ids(mut recs: Vec<TextRecord>, base: Option<String>) -> Vec<TextRecord> {
    if let Some(base) = base {
        let single = recs.len() == 1;
        for (k, r) in recs.iter_mut().enumerate() {
            r.id = Some(if single { base.clone() } else { format!("{base}#{k}") });
        }
    }
    recs
}

// ---------------------------------------------------------------------------------------------
// Per-format converters: one JSON unit → zero or more records.

fn convert_jsonl(ctx: &Ctx, v: Value) -> Result<Vec<TextRecord>> {
    let mut obj = as_object(ctx, v)?;
    let text_keys = ["text", "response", "output", "completion"];
    let text = match opt_str(ctx, &mut obj, &text_keys)? {
        Some(t) => t,
        None => {
            return Err(
                ctx.err("text", "missing (expected one of text, response, output, completion)")
            )
        }
    };
    let prompt = opt_str(ctx, &mut obj, &["prompt", "instruction"])?;
    let id = opt_id(ctx, &mut obj, &["id", "prompt_id"])?;
    let model = opt_str(ctx, &mut obj, &["model", "generator", "model_id"])?;
    // Lenient: some corpora use `user` for other things (an object, a turn); only a string or a
    // number is an account.
    let account = ["account", "account_id", "user"].iter().find_map(|k| match obj.get(*k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    });
    let created = opt_time(ctx, &mut obj, &["created", "created_at", "timestamp"])?;
    let mut rec = ctx.record(id, prompt, text, model);
    (rec.account, rec.created) = (account, created);
    Ok(vec![rec])
}

/// Optional time: Unix seconds (integer) or an RFC 3339 string; anything else is an error.
fn opt_time(ctx: &Ctx, obj: &mut Map<String, Value>, keys: &[&str]) -> Result<Option<i64>> {
    for &k in keys {
        match obj.remove(k) {
            None | Some(Value::Null) => continue,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(t) => return Ok(Some(t)),
                None => match n.as_f64() {
                    Some(f) if f.is_finite() && f.abs() < 1e15 => return Ok(Some(f as i64)),
                    _ => return Err(ctx.err(k, format!("time {n} is out of range"))),
                },
            },
            Some(Value::String(s)) => match crate::served::parse_rfc3339(&s) {
                Some(t) => return Ok(Some(t)),
                None => {
                    return Err(ctx.err(
                        k,
                        format!("{s:?} is not a time (expected Unix seconds or RFC 3339)"),
                    ))
                }
            },
            Some(other) => {
                return Err(ctx.err(k, format!("expected a time, found {}", kind(&other))))
            }
        }
    }
    Ok(None)
}

fn convert_alpaca(ctx: &Ctx, v: Value) -> Result<Vec<TextRecord>> {
    let mut obj = as_object(ctx, v)?;
    let text = req_str(ctx, &mut obj, "output")?;
    let prompt = opt_str(ctx, &mut obj, &["instruction"])?;
    let model = opt_str(ctx, &mut obj, &["generator"])?;
    let id = opt_id(ctx, &mut obj, &["id"])?;
    Ok(vec![ctx.record(id, prompt, text, model)])
}

fn convert_bench(ctx: &Ctx, v: Value) -> Result<Vec<TextRecord>> {
    let mut obj = as_object(ctx, v)?;
    let id = req_str(ctx, &mut obj, "prompt_id")?;
    let prompt = req_str(ctx, &mut obj, "prompt")?;
    let text = req_str(ctx, &mut obj, "response")?;
    let model = req_str(ctx, &mut obj, "model")?;
    Ok(vec![ctx.record(Some(id), Some(prompt), text, Some(model))])
}

fn convert_fastchat(ctx: &Ctx, v: Value) -> Result<Vec<TextRecord>> {
    let mut obj = as_object(ctx, v)?;
    let id = opt_id(ctx, &mut obj, &["question_id", "id"])?;
    let model = opt_str(ctx, &mut obj, &["model_id", "model"])?;
    let choices = match obj.remove("choices") {
        Some(Value::Array(c)) => c,
        Some(other) => {
            return Err(ctx.err("choices", format!("expected an array, found {}", kind(&other))))
        }
        None => return Err(ctx.err("choices", "missing")),
    };
    let mut out = Vec::new();
    for (ci, choice) in choices.into_iter().enumerate() {
        let field = format!("choices[{ci}].turns");
        let turns = match choice.get("turns") {
            Some(Value::Array(t)) => t,
            Some(other) => {
                return Err(ctx.err(&field, format!("expected an array, found {}", kind(other))))
            }
            None => return Err(ctx.err(&field, "missing")),
        };
        for (ti, turn) in turns.iter().enumerate() {
            match turn {
                Value::String(s) => out.push(ctx.record(None, None, s.clone(), model.clone())),
                other => {
                    return Err(ctx.err(
                        &format!("{field}[{ti}]"),
                        format!("expected a string, found {}", kind(other)),
                    ))
                }
            }
        }
    }
    Ok(number_ids(out, id))
}

/// Roles whose turns are model outputs in ShareGPT dumps.
const ASSISTANT_ROLES: &[&str] =
    &["gpt", "chatgpt", "bard", "assistant", "model", "bing", "claude"];
const HUMAN_ROLES: &[&str] = &["human", "user"];

fn convert_sharegpt(ctx: &Ctx, v: Value) -> Result<Vec<TextRecord>> {
    let mut obj = as_object(ctx, v)?;
    let id = opt_id(ctx, &mut obj, &["id"])?;
    let model = opt_str(ctx, &mut obj, &["model"])?;
    let (key, turns) = match (obj.remove("conversations"), obj.remove("conversation")) {
        (Some(Value::Array(t)), _) => ("conversations", t),
        (None, Some(Value::Array(t))) => ("conversation", t),
        (Some(other), _) | (None, Some(other)) => {
            return Err(
                ctx.err("conversations", format!("expected an array, found {}", kind(&other)))
            )
        }
        (None, None) => return Err(ctx.err("conversations", "missing")),
    };
    let mut out = Vec::new();
    let mut last_human: Option<String> = None;
    for (i, turn) in turns.into_iter().enumerate() {
        let mut t = match turn {
            Value::Object(m) => m,
            other => {
                return Err(ctx.err(
                    &format!("{key}[{i}]"),
                    format!("expected an object, found {}", kind(&other)),
                ))
            }
        };
        let role = match opt_str(ctx, &mut t, &["from", "role"]) {
            Ok(Some(r)) => r.to_ascii_lowercase(),
            Ok(None) => return Err(ctx.err(&format!("{key}[{i}].from"), "missing")),
            Err(_) => return Err(ctx.err(&format!("{key}[{i}].from"), "expected a string")),
        };
        let value = match opt_str(ctx, &mut t, &["value", "content", "text"]) {
            Ok(Some(v)) => v,
            Ok(None) => return Err(ctx.err(&format!("{key}[{i}].value"), "missing")),
            Err(_) => return Err(ctx.err(&format!("{key}[{i}].value"), "expected a string")),
        };
        if HUMAN_ROLES.contains(&role.as_str()) {
            last_human = Some(value);
        } else if ASSISTANT_ROLES.contains(&role.as_str()) {
            out.push(ctx.record(None, last_human.clone(), value, model.clone()));
        }
        // system / tool / other roles are context, not outputs.
    }
    Ok(number_ids(out, id))
}

/// Text of a chat message `content`: a string, or an array of parts whose `text`s are joined.
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str).or_else(|| p.as_str()))
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

fn convert_openai(ctx: &Ctx, v: Value) -> Result<Vec<TextRecord>> {
    let obj = Value::Object(as_object(ctx, v)?);
    // Request part: `request` object, or the line itself (flat logs).
    let request = obj.get("request").filter(|r| r.is_object()).unwrap_or(&Value::Null);
    let messages = request.get("messages").or_else(|| obj.get("messages"));
    // Response part: `response` (batch API: `response.body`), or the line itself.
    let response = match obj.get("response").filter(|r| r.is_object()) {
        Some(r) => r.get("body").filter(|b| b.is_object()).unwrap_or(r),
        None => &obj,
    };
    let prompt = match messages {
        None | Some(Value::Null) => None,
        Some(Value::Array(msgs)) => msgs
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .and_then(|m| m.get("content"))
            .and_then(content_text),
        Some(other) => {
            return Err(ctx.err("messages", format!("expected an array, found {}", kind(other))))
        }
    };
    let model = response
        .get("model")
        .and_then(Value::as_str)
        .or_else(|| request.get("model").and_then(Value::as_str))
        .map(str::to_owned);
    let id = response
        .get("id")
        .and_then(Value::as_str)
        .or_else(|| obj.get("custom_id").and_then(Value::as_str))
        .map(str::to_owned);
    let account =
        request.get("user").or_else(|| obj.get("user")).and_then(Value::as_str).map(str::to_owned);
    let created = response.get("created").and_then(Value::as_i64);
    let choices = match response.get("choices") {
        Some(Value::Array(c)) => c,
        Some(other) => {
            return Err(ctx.err("choices", format!("expected an array, found {}", kind(other))))
        }
        None => return Err(ctx.err("choices", "missing (no response in this log line)")),
    };
    let mut out = Vec::new();
    for (i, choice) in choices.iter().enumerate() {
        let content =
            choice.get("message").and_then(|m| m.get("content")).or_else(|| choice.get("text"));
        match content {
            // A tool call or refusal-only choice has no text: nothing to analyse.
            None | Some(Value::Null) => continue,
            Some(c) => match content_text(c) {
                Some(t) => {
                    let mut rec = ctx.record(None, prompt.clone(), t, model.clone());
                    (rec.account, rec.created) = (account.clone(), created);
                    out.push(rec)
                }
                None => {
                    return Err(ctx.err(
                        &format!("choices[{i}].message.content"),
                        format!("expected a string, found {}", kind(c)),
                    ))
                }
            },
        }
    }
    Ok(number_ids(out, id))
}

// ---------------------------------------------------------------------------------------------
// CSV

/// Reads only the header row of a CSV input.
pub(crate) fn csv_headers(r: DynBufRead, path: &Path) -> Result<Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(r);
    let h = rdr.headers().map_err(|e| csv_error(path, e))?;
    Ok(h.iter().enumerate().map(|(i, s)| clean_header(i, s)).collect())
}

fn clean_header(i: usize, s: &str) -> String {
    let s = if i == 0 { s.trim_start_matches('\u{feff}') } else { s };
    s.trim().to_string()
}

fn csv_error(path: &Path, e: csv::Error) -> DatasetError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let message = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Io(io) => DatasetError::io(path, io),
        _ => DatasetError::parse(path, line, None, message),
    }
}

struct CsvRecords {
    rdr: csv::Reader<DynBufRead>,
    path: PathBuf,
    source: String,
    column: (String, usize),
    prompt: Option<(String, usize)>,
    id: Option<usize>,
    model: Option<usize>,
    record: csv::StringRecord,
    done: bool,
}

impl CsvRecords {
    fn new(r: DynBufRead, path: &Path, column: &str, prompt_column: Option<&str>) -> Result<Self> {
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(r);
        let headers: Vec<String> = rdr
            .headers()
            .map_err(|e| csv_error(path, e))?
            .iter()
            .enumerate()
            .map(|(i, s)| clean_header(i, s))
            .collect();
        let find = |c: &str| -> Result<usize> {
            headers.iter().position(|h| h == c).ok_or_else(|| DatasetError::MissingColumn {
                path: path.to_path_buf(),
                column: c.to_string(),
                available: headers.clone(),
            })
        };
        let col = find(column)?;
        let prompt = match prompt_column {
            Some(p) => Some((p.to_string(), find(p)?)),
            None => None,
        };
        let id = headers.iter().position(|h| h == "id");
        let model = headers.iter().position(|h| h == "model");
        Ok(CsvRecords {
            rdr,
            path: path.to_path_buf(),
            source: path.display().to_string(),
            column: (column.to_string(), col),
            prompt,
            id,
            model,
            record: csv::StringRecord::new(),
            done: false,
        })
    }
}

impl Iterator for CsvRecords {
    type Item = Result<TextRecord>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.rdr.read_record(&mut self.record) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                let line = self.record.position().map(|p| p.line()).unwrap_or(0);
                let get = |(name, i): &(String, usize)| -> Result<String> {
                    self.record.get(*i).map(str::to_owned).ok_or_else(|| {
                        DatasetError::parse(
                            &self.path,
                            line,
                            Some(name),
                            format!("missing (row has {} fields)", self.record.len()),
                        )
                    })
                };
                let text = match get(&self.column) {
                    Ok(t) => t,
                    Err(e) => return Some(Err(e)),
                };
                let prompt = match self.prompt.as_ref().map(get).transpose() {
                    Ok(p) => p,
                    Err(e) => return Some(Err(e)),
                };
                let opt = |i: Option<usize>| {
                    i.and_then(|i| self.record.get(i)).filter(|s| !s.is_empty()).map(str::to_owned)
                };
                Some(Ok(TextRecord {
                    id: opt(self.id),
                    prompt,
                    text,
                    model: opt(self.model),
                    source: Some(self.source.clone()),
                    line,
                    account: None,
                    created: None,
                }))
            }
            Err(e) => {
                let fatal = matches!(e.kind(), csv::ErrorKind::Io(_));
                if fatal {
                    self.done = true;
                }
                Some(Err(csv_error(&self.path, e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p).unwrap().write_all(content.as_bytes()).unwrap();
        p
    }

    /// (id, prompt, text, model, line) per record; errors as their Display.
    type Row = (Option<String>, Option<String>, String, Option<String>, u64);
    fn read(path: &Path, format: Option<Format>) -> Vec<std::result::Result<Row, String>> {
        open(path, format)
            .unwrap()
            .map(|r| {
                r.map(|r| (r.id, r.prompt, r.text, r.model, r.line)).map_err(|e| e.to_string())
            })
            .collect()
    }

    fn row(
        id: Option<&str>,
        prompt: Option<&str>,
        text: &str,
        model: Option<&str>,
        line: u64,
    ) -> Row {
        (id.map(Into::into), prompt.map(Into::into), text.into(), model.map(Into::into), line)
    }

    /// Cut at every pair of line starts, the parts' records concatenated are the whole file's:
    /// same rows, line numbers and errors (a BOM and leading blank lines in the first part).
    #[test]
    fn parts_cut_at_line_starts_read_as_the_whole_file() {
        let d = tempfile::tempdir().unwrap();
        let body = "\u{feff}\n{\"text\":\"a\",\"id\":1}\n\n{bad\n  {\"response\":\"b\",\"prompt\":\"p\"}\n{\"text\":\"c\"}\n{\"text\":5}\n{\"text\":\"d\"}";
        let p = write(d.path(), "c.jsonl", body);
        assert!(splits_at_lines(&p, None).unwrap());
        let whole = read(&p, None);
        assert_eq!(whole.len(), 6, "{whole:?}");
        let bytes = body.as_bytes();
        let starts: Vec<u64> = std::iter::once(0)
            .chain(bytes.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i as u64 + 1))
            .collect();
        let end = bytes.len() as u64;
        let lines_before =
            |at: u64| bytes[..at as usize].iter().filter(|&&b| b == b'\n').count() as u64;
        let part = |r: std::ops::Range<u64>| -> Vec<std::result::Result<Row, String>> {
            let lb = lines_before(r.start);
            open_part(&p, Some(Format::Jsonl), r, lb)
                .unwrap()
                .map(|r| {
                    r.map(|r| (r.id, r.prompt, r.text, r.model, r.line)).map_err(|e| e.to_string())
                })
                .collect()
        };
        for (i, &a) in starts.iter().enumerate() {
            for &b in &starts[i..] {
                let mut got = part(0..a);
                got.extend(part(a..b));
                got.extend(part(b..end));
                assert_eq!(got, whole, "cut at {a} and {b}");
            }
        }
        // Arrays, CSV and gzip are read whole.
        let arr = write(d.path(), "a.json", "[{\"text\":\"a\"}]");
        assert!(!splits_at_lines(&arr, Some(&Format::Jsonl)).unwrap());
        let csv = write(d.path(), "t.csv", "text\na\n");
        assert!(!splits_at_lines(&csv, None).unwrap());
        assert!(open_part(&csv, None, 0..4, 0).is_err());
    }

    #[test]
    fn jsonl_bad_line_then_continues() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "corpus.jsonl",
            concat!(
                "{\"text\": \"one\", \"id\": 7, \"model\": \"m\"}\n",
                "{\"prompt\": \"q\", \"response\": \"two\"}\n",
                "\n",
                "{\"text\": 5}\n",
                "{broken\n",
                "{\"output\": \"three\", \"instruction\": \"i\"}\n",
                "{\"completion\": \"four\"}\n",
                "[1]\n",
                "{\"id\": \"x\"}\n",
            ),
        );
        let got = read(&p, Some(Format::Jsonl));
        let path = p.display().to_string();
        assert_eq!(got.len(), 8);
        assert_eq!(got[0], Ok(row(Some("7"), None, "one", Some("m"), 1)));
        assert_eq!(got[1], Ok(row(None, Some("q"), "two", None, 2)));
        assert_eq!(
            got[2],
            Err(format!("{path}:4: field \"text\": expected a string, found a number"))
        );
        assert!(got[3].as_ref().unwrap_err().starts_with(&format!("{path}:5: invalid JSON")));
        assert_eq!(got[4], Ok(row(None, Some("i"), "three", None, 6)));
        assert_eq!(got[5], Ok(row(None, None, "four", None, 7)));
        assert_eq!(got[6], Err(format!("{path}:8: expected a JSON object, found an array")));
        assert!(got[7].as_ref().unwrap_err().contains(":9: field \"text\": missing"));
        // Detection agrees, and `source` is the file.
        let first = open(&p, None).unwrap().next().unwrap().unwrap();
        assert_eq!(first.source.as_deref(), Some(path.as_str()));
    }

    #[test]
    fn jsonl_gz_and_progress() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&p).unwrap(),
            flate2::Compression::default(),
        );
        for i in 0..1000 {
            writeln!(enc, "{{\"text\": \"text number {i}\"}}").unwrap();
        }
        enc.finish().unwrap();
        let size = std::fs::metadata(&p).unwrap().len();
        let mut it = open(&p, None).unwrap();
        assert_eq!(it.format(), &Format::Jsonl);
        assert_eq!(it.total_bytes(), Some(size));
        let texts: Vec<String> = it.by_ref().map(|r| r.unwrap().text).collect();
        assert_eq!(texts.len(), 1000);
        assert_eq!(texts[999], "text number 999");
        assert_eq!(it.bytes_read(), size);
    }

    #[test]
    fn alpaca_eval_array_streamed() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "model_outputs.json",
            r#"[
  {
    "dataset": "helpful_base",
    "instruction": "What is 2+2?",
    "output": "4, with \"quotes\" and ] brackets",
    "generator": "tiny-7b"
  },
  {
    "instruction": "Name a colour.",
    "output": null,
    "generator": "tiny-7b"
  },
  {
    "instruction": "Say hi.",
    "output": "Hi!",
    "generator": "tiny-7b"
  }
]
"#,
        );
        assert_eq!(detect_format(&p).unwrap(), Format::AlpacaEval);
        let got = read(&p, None);
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            Ok(row(
                None,
                Some("What is 2+2?"),
                "4, with \"quotes\" and ] brackets",
                Some("tiny-7b"),
                2
            ))
        );
        assert!(
            got[1]
                .as_ref()
                .unwrap_err()
                .ends_with(":8: field \"output\": expected a string, found null"),
            "{got:?}"
        );
        assert_eq!(got[2], Ok(row(None, Some("Say hi."), "Hi!", Some("tiny-7b"), 13)));

        // A syntactically broken element is one error; the next element is still read.
        let p = write(d.path(), "b.json", r#"[{"output": "a"}, {"output": tru}, {"output": "b"}]"#);
        let got = read(&p, Some(Format::AlpacaEval));
        assert_eq!(got.len(), 3);
        assert!(got[1].as_ref().unwrap_err().contains(":1: invalid JSON"), "{got:?}");
        assert_eq!(got[2], Ok(row(None, None, "b", None, 1)));
    }

    #[test]
    fn fastchat_file_and_directory() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("model_answer");
        std::fs::create_dir(&dir).unwrap();
        write(
            &dir,
            "b-model.jsonl",
            concat!(
                "{\"question_id\": 81, \"answer_id\": \"x\", \"model_id\": \"b\", \"choices\": [{\"index\": 0, \"turns\": [\"t1\", \"t2\"]}], \"tstamp\": 1.5}\n",
                "{\"question_id\": 82, \"model_id\": \"b\", \"choices\": [{\"index\": 0, \"turns\": [\"only\"]}]}\n",
            ),
        );
        write(
            &dir,
            "a-model.jsonl",
            concat!(
                "{\"question_id\": 81, \"model_id\": \"a\", \"choices\": [{\"turns\": [\"a1\", 3]}]}\n",
                "{\"question_id\": 83, \"model_id\": \"a\", \"choices\": [{\"turns\": [\"a3\"]}]}\n",
            ),
        );
        write(&dir, "notes.txt", "ignored");
        let got = read(&dir, None);
        assert_eq!(
            got,
            vec![
                Err(format!(
                    "{}:1: field \"choices[0].turns[1]\": expected a string, found a number",
                    dir.join("a-model.jsonl").display()
                )),
                Ok(row(Some("83"), None, "a3", Some("a"), 2)),
                Ok(row(Some("81#0"), None, "t1", Some("b"), 1)),
                Ok(row(Some("81#1"), None, "t2", Some("b"), 1)),
                Ok(row(Some("82"), None, "only", Some("b"), 2)),
            ]
        );
        let it = open(&dir, None).unwrap();
        assert_eq!(it.format(), &Format::FastChat);
        let single = read(&dir.join("b-model.jsonl"), Some(Format::FastChat));
        assert_eq!(single.len(), 3);
    }

    #[test]
    fn sharegpt_array_and_jsonl() {
        let d = tempfile::tempdir().unwrap();
        let conv = r#"{"id": "c1", "conversations": [
            {"from": "system", "value": "be nice"},
            {"from": "human", "value": "hello"},
            {"from": "gpt", "value": "hi there"},
            {"from": "human", "value": "how are you"},
            {"from": "chatgpt", "value": "fine"}]}"#;
        let conv2 = r#"{"id": "c2", "conversations": [{"from": "gpt", "value": "unprompted"}]}"#;
        let bad = r#"{"id": "c3", "conversations": [{"from": "human"}]}"#;
        let p = write(d.path(), "sg.json", &format!("[{conv},\n{bad},\n{conv2}]"));
        let got = read(&p, None);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], Ok(row(Some("c1#0"), Some("hello"), "hi there", None, 1)));
        assert_eq!(got[1], Ok(row(Some("c1#1"), Some("how are you"), "fine", None, 1)));
        assert!(
            got[2].as_ref().unwrap_err().ends_with(":7: field \"conversations[0].value\": missing"),
            "{got:?}"
        );
        assert_eq!(got[3], Ok(row(Some("c2"), None, "unprompted", None, 8)));

        let one_line = |s: &str| s.replace('\n', " ");
        let p = write(d.path(), "sg.jsonl", &format!("{}\n{}\n", one_line(conv), conv2));
        let got = read(&p, None);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], Ok(row(Some("c2"), None, "unprompted", None, 2)));
    }

    #[test]
    fn openai_chat_logs() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "log.jsonl",
            concat!(
                // flat: request messages + response choices on one line
                r#"{"model": "gpt-x", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "first"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "last"}], "id": "chatcmpl-1", "choices": [{"index": 0, "message": {"role": "assistant", "content": "r0"}}, {"index": 1, "message": {"role": "assistant", "content": "r1"}}]}"#,
                "\n",
                // request/response pair, content parts, model from response
                r#"{"request": {"model": "req-model", "messages": [{"role": "user", "content": [{"type": "text", "text": "part1"}, {"type": "text", "text": "part2"}]}]}, "response": {"id": "r2", "model": "resp-model", "choices": [{"message": {"content": "answer"}}]}}"#,
                "\n",
                // batch API output
                r#"{"custom_id": "job-9", "response": {"status_code": 200, "body": {"model": "b", "choices": [{"message": {"content": "batched"}}, {"message": {"content": null, "tool_calls": []}}]}}}"#,
                "\n",
                r#"{"messages": [{"role": "user", "content": "q"}]}"#,
                "\n",
                r#"{"messages": [{"role": "user", "content": "q"}], "choices": [{"message": {"content": 1}}]}"#,
                "\n",
            ),
        );
        assert_eq!(detect_format(&p).unwrap(), Format::OpenAiChat);
        let got = read(&p, None);
        assert_eq!(got.len(), 6);
        assert_eq!(got[0], Ok(row(Some("chatcmpl-1#0"), Some("last"), "r0", Some("gpt-x"), 1)));
        assert_eq!(got[1], Ok(row(Some("chatcmpl-1#1"), Some("last"), "r1", Some("gpt-x"), 1)));
        assert_eq!(
            got[2],
            Ok(row(Some("r2"), Some("part1\npart2"), "answer", Some("resp-model"), 2))
        );
        assert_eq!(got[3], Ok(row(Some("job-9"), None, "batched", Some("b"), 3)));
        assert!(got[4]
            .as_ref()
            .unwrap_err()
            .ends_with(":4: field \"choices\": missing (no response in this log line)"));
        assert!(got[5].as_ref().unwrap_err().ends_with(
            ":5: field \"choices[0].message.content\": expected a string, found a number"
        ));
    }

    #[test]
    fn openai_model_from_request_when_response_has_none() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "l.jsonl",
            r#"{"request": {"model": "req-only", "messages": []}, "response": {"choices": [{"message": {"content": "x"}}]}}"#,
        );
        assert_eq!(
            read(&p, Some(Format::OpenAiChat)),
            vec![Ok(row(None, None, "x", Some("req-only"), 1))]
        );
    }

    #[test]
    fn csv_columns_and_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "data.csv",
            "\u{feff}id,question,body,model\n1,Q1,\"multi\nline, with comma\",m1\n2,Q2\n3,Q3,plain,\n",
        );
        let f = Format::Csv { column: "body".into(), prompt_column: Some("question".into()) };
        let got = read(&p, Some(f));
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            Ok(row(Some("1"), Some("Q1"), "multi\nline, with comma", Some("m1"), 2))
        );
        assert_eq!(
            got[1],
            Err(format!("{}:4: field \"body\": missing (row has 2 fields)", p.display()))
        );
        assert_eq!(got[2], Ok(row(Some("3"), Some("Q3"), "plain", None, 5)));

        let e = open(&p, Some("csv:text".parse().unwrap())).unwrap_err();
        assert!(matches!(e, DatasetError::MissingColumn { .. }));
        assert!(
            e.to_string().contains(r#"available columns: "id", "question", "body", "model""#),
            "{e}"
        );
        // Without a `text` column detection asks for csv:COLUMN.
        assert!(open(&p, None).is_err());
    }

    #[test]
    fn bench_samples_and_dir() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "manifest.json", "{}");
        write(
            d.path(),
            "samples.jsonl",
            concat!(
                r#"{"prompt_id": "ae-1", "prompt": "P", "response": "R", "model": "m"}"#,
                "\n",
                r#"{"prompt_id": "ae-2", "prompt": "P2", "response": "R2"}"#,
                "\n",
            ),
        );
        let got = read(d.path(), None);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Ok(row(Some("ae-1"), Some("P"), "R", Some("m"), 1)));
        assert!(got[1].as_ref().unwrap_err().ends_with(":2: field \"model\": missing"));
    }

    #[test]
    fn missing_file_is_io_error() {
        let e = open(Path::new("/nonexistent/x.jsonl"), Some(Format::Jsonl)).unwrap_err();
        assert!(matches!(e, DatasetError::Io { .. }));
        assert!(e.to_string().starts_with("/nonexistent/x.jsonl: "));
    }

    #[test]
    fn record_iter_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<RecordIter>();
    }
}
