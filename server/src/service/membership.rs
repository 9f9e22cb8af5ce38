//! The served-output membership test as a service: served logs (import, read back), the test of
//! a suspect's stored answers against a served log and fresh answers, and the pieces a
//! served-log campaign needs (its probe prompts, the served answers by prompt, one look).
//!
//! The statistics live in `detector::membership` (its module documentation states the null's
//! assumptions); this module only gathers the inputs from the store, checks them against their
//! documented ranges and records the result.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use detector::membership::{
    self, prompt_key, Answer, Control, MembershipOptions, MembershipReport,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{blocking, ServiceError, ServiceResult};
use crate::store::{now_ms, MembershipRecord, ServedAnswerRow, ServedKind, ServedLogRecord, Store};

/// Most answers one served log may hold (a bigger log: split it by account or by time).
pub const MAX_LOG_ANSWERS: usize = 1_000_000;
/// Most fresh logs and negative controls one test takes.
pub const MAX_FRESH_LOGS: usize = 16;
pub const MAX_CONTROLS: usize = 16;

/// What to import an uploaded file as.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// Display name (1..=200 characters; default: the kind and the time).
    pub name: Option<String>,
    pub kind: ServedKind,
    /// A `datasets::Format` name (`openai-chat`, `jsonl`, `alpaca-eval`, `sharegpt`,
    /// `csv:COLUMN[:PROMPT_COLUMN]`); `None`: detected from the content.
    pub format: Option<String>,
    pub created_by: Option<String>,
}

/// Read an uploaded served log (`path`, removed by the caller) and store it with its answers and
/// per-account summary. Every malformed record is an `Invalid` error naming its line.
pub async fn import_served_log(
    store: &dyn Store,
    path: PathBuf,
    req: ImportRequest,
) -> ServiceResult<ServedLogRecord> {
    let name = match req.name.as_deref().map(str::trim) {
        None | Some("") => format!("{} log {}", req.kind.as_str(), now_ms()),
        Some(n) if n.chars().count() > 200 => {
            return Err(ServiceError::Invalid("`name` is longer than 200 characters".into()))
        }
        Some(n) => n.to_string(),
    };
    let format = match req.format.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => Some(
            f.parse::<datasets::Format>()
                .map_err(|e| ServiceError::Invalid(format!("bad `format`: {e}")))?,
        ),
    };
    let shown = path.display().to_string();
    let (answers, format_name) = blocking(move || {
        let detected = match &format {
            Some(f) => f.clone(),
            None => datasets::detect_format(&path)?,
        };
        let answers = datasets::read_answers(&path, Some(detected.clone()), None)?;
        Ok::<_, datasets::DatasetError>((answers, detected.to_string()))
    })
    .await?
    // The upload's path is the server's business: the message names "the upload" instead.
    .map_err(|e| ServiceError::Invalid(e.to_string().replace(&shown, "the upload")))?;
    if answers.is_empty() {
        return Err(ServiceError::Invalid("the upload holds no answers".into()));
    }
    if answers.len() > MAX_LOG_ANSWERS {
        return Err(ServiceError::Invalid(format!(
            "the upload holds {} answers; a served log holds at most {MAX_LOG_ANSWERS} (split it by account or by time)",
            answers.len()
        )));
    }
    for (i, a) in answers.iter().enumerate() {
        let nul = |s: &str| s.contains('\0');
        if nul(&a.prompt) || nul(&a.response) || a.account.as_deref().is_some_and(nul) {
            return Err(ServiceError::Invalid(format!(
                "answer {} (line {}) holds a NUL character, which no text field can store",
                i + 1,
                a.line
            )));
        }
    }
    let accounts = datasets::summarize(&answers);
    let prompts: HashSet<String> =
        answers.iter().map(|a| datasets::normalize_prompt(&a.prompt)).collect();
    let rec = ServedLogRecord {
        id: format!("srv_{}", crate::ids::random_base62(16)),
        name,
        kind: req.kind,
        format: format_name,
        answers: answers.len() as i64,
        prompts: prompts.len() as i64,
        accounts,
        created_by: req.created_by,
        created_ms: now_ms(),
    };
    let rows = answers
        .into_iter()
        .enumerate()
        .map(|(i, a)| ServedAnswerRow {
            seq: i as i64 + 1,
            prompt: a.prompt,
            response: a.response,
            account: a.account,
            created: a.created,
        })
        .collect();
    Ok(store.create_served_log(rec, rows).await?)
}

pub async fn served_log(store: &dyn Store, id: &str) -> ServiceResult<ServedLogRecord> {
    store
        .get_served_log(id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("served log `{id}`")))
}

/// All answers of a log (only `account`'s when given; an account the log does not have is an
/// error listing the ones it has).
pub async fn load_answers(
    store: &dyn Store,
    log: &ServedLogRecord,
    account: Option<&str>,
) -> ServiceResult<Vec<ServedAnswerRow>> {
    if let Some(a) = account {
        if !log.accounts.iter().any(|s| s.account.as_deref() == Some(a)) {
            let known: Vec<&str> =
                log.accounts.iter().filter_map(|s| s.account.as_deref()).take(20).collect();
            return Err(ServiceError::Invalid(format!(
                "served log `{}` has no answers of account {a:?}; its accounts: {}",
                log.id,
                if known.is_empty() { "none recorded".to_string() } else { known.join(", ") }
            )));
        }
    }
    let mut out = Vec::with_capacity(log.answers as usize);
    let mut after = 0;
    loop {
        let page = store.served_answers(&log.id, account.map(str::to_string), after, 5000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        out.extend(page);
    }
    Ok(out)
}

fn answers(rows: Vec<ServedAnswerRow>) -> Vec<Answer> {
    rows.into_iter().map(|r| Answer { prompt: r.prompt, text: r.response }).collect()
}

/// The test's options as a request carries them: every field optional (the detector's default),
/// each checked against its documented range by [`MembershipOptions::check`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OptionsIn {
    /// Significance level, in (0, 0.5); default 0.01.
    pub alpha: Option<f64>,
    /// Monte-Carlo relabellings, 99..=1000000; default 9999 (p-value resolution 1/(1+B)).
    pub permutations: Option<usize>,
    /// The exchangeability guard refuses to decide below this p-value, in (0, 0.5); default 0.05.
    pub guard_alpha: Option<f64>,
    /// Relabellings of the guard, 99..=100000; default 999.
    pub guard_permutations: Option<usize>,
    /// Fewest matched prompts, 5..=1000000; default 20 (fewer: the request is refused).
    pub min_prompts: Option<usize>,
    /// Prompts listed as evidence, 0..=100; default 5.
    pub top: Option<usize>,
    /// Seed of the relabellings.
    pub seed: Option<u64>,
}

impl OptionsIn {
    pub fn resolve(&self) -> ServiceResult<MembershipOptions> {
        let d = MembershipOptions::default();
        let o = MembershipOptions {
            alpha: self.alpha.unwrap_or(d.alpha),
            permutations: self.permutations.unwrap_or(d.permutations),
            guard_permutations: self.guard_permutations.unwrap_or(d.guard_permutations),
            guard_alpha: self.guard_alpha.unwrap_or(d.guard_alpha),
            min_prompts: self.min_prompts.unwrap_or(d.min_prompts),
            top_evidence: self.top.unwrap_or(d.top_evidence),
            seed: self.seed.unwrap_or(d.seed),
        };
        o.check().map_err(|e| ServiceError::Invalid(e.to_string()))?;
        Ok(o)
    }
}

/// `POST /v1/suspects/{id}/membership`: which served log (and account) to test the suspect's
/// stored answers against, and where the fresh answers come from.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipRequest {
    /// The served log (`srv_…`).
    pub served_log: String,
    /// Only the answers served to this account.
    #[serde(default)]
    pub account: Option<String>,
    /// Logs of fresh answers of the same snapshot, same settings, to the same prompts (1..=16;
    /// several give several fresh answers per prompt).
    pub fresh_logs: Vec<String>,
    /// Negative controls: other suspects (`sus_…`) whose stored answers cannot have seen the
    /// served log (0..=16). A flagged control makes the result `invalid`.
    #[serde(default)]
    pub controls: Vec<String>,
    /// The test's options (each optional; unknown names are refused).
    #[serde(default)]
    pub options: OptionsIn,
}

/// One point of the p-value against the number of prompts compared (the first `prompts` matched
/// prompts in served-log order; fewer relabellings than the main test: for the plot only).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct TrajectoryPoint {
    pub prompts: usize,
    pub p_value: f64,
}

/// The stored record's `report`: the detector's report plus what it was run on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredReport {
    #[serde(flatten)]
    pub report: MembershipReport,
    pub inputs: serde_json::Value,
    #[serde(default)]
    pub trajectory: Vec<TrajectoryPoint>,
    /// The full served and suspect answers of each evidence prompt (same order as `evidence`),
    /// so that a reader can show the shared spans side by side.
    #[serde(default)]
    pub evidence_texts: Vec<EvidenceTexts>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EvidenceTexts {
    pub prompt: String,
    pub served: String,
    pub suspect: String,
}

/// The served and suspect answers (first of each, as the detector matches them) of every
/// evidence prompt of `report`.
pub fn evidence_texts(
    report: &MembershipReport,
    served: &[Answer],
    suspect: &[Answer],
) -> Vec<EvidenceTexts> {
    let first = |list: &[Answer]| {
        let mut m: HashMap<String, String> = HashMap::new();
        for a in list {
            m.entry(prompt_key(&a.prompt)).or_insert_with(|| a.text.clone());
        }
        m
    };
    let (s, u) = (first(served), first(suspect));
    report
        .evidence
        .iter()
        .map(|e| {
            let k = prompt_key(&e.prompt);
            EvidenceTexts {
                prompt: e.prompt.clone(),
                served: s.get(&k).cloned().unwrap_or_default(),
                suspect: u.get(&k).cloned().unwrap_or_default(),
            }
        })
        .collect()
}

/// The suspect's stored answers that have a prompt, and how many had none.
async fn suspect_answers(
    store: &dyn Store,
    suspect_id: &str,
) -> ServiceResult<(Vec<Answer>, usize)> {
    let (mut out, mut without) = (Vec::new(), 0);
    let mut offset = 0;
    loop {
        let page = store.list_samples(suspect_id, 1000, offset).await?;
        if page.is_empty() {
            break;
        }
        offset += page.len() as i64;
        for s in page {
            match s.prompt {
                Some(p) => out.push(Answer { prompt: p, text: s.text }),
                None => without += 1,
            }
        }
    }
    Ok((out, without))
}

/// Test suspect `suspect_id`'s stored answers against a served log and fresh answers, and store
/// the result (also when it is `invalid`: the record says why).
pub async fn test_suspect(
    store: &dyn Store,
    suspect_id: &str,
    req: MembershipRequest,
    created_by: Option<String>,
) -> ServiceResult<MembershipRecord> {
    let opts = req.options.resolve()?;
    super::suspects::suspect_or_404(store, suspect_id).await?;
    if req.fresh_logs.is_empty() || req.fresh_logs.len() > MAX_FRESH_LOGS {
        return Err(ServiceError::Invalid(format!(
            "`fresh_logs` must name 1..={MAX_FRESH_LOGS} served logs of fresh answers"
        )));
    }
    if req.controls.len() > MAX_CONTROLS {
        return Err(ServiceError::Invalid(format!("at most {MAX_CONTROLS} `controls`")));
    }
    if req.fresh_logs.contains(&req.served_log) {
        return Err(ServiceError::Invalid(
            "the served log cannot also be a fresh log: the test compares two different samples"
                .into(),
        ));
    }
    if req.controls.iter().any(|c| c == suspect_id) {
        return Err(ServiceError::Invalid("the suspect cannot be its own negative control".into()));
    }
    let log = served_log(store, &req.served_log).await?;
    let served = answers(load_answers(store, &log, req.account.as_deref()).await?);
    let mut fresh = Vec::new();
    for id in &req.fresh_logs {
        let f = served_log(store, id).await?;
        fresh.extend(answers(load_answers(store, &f, None).await?));
    }
    let (suspect, without_prompt) = suspect_answers(store, suspect_id).await?;
    let mut controls = Vec::new();
    for c in &req.controls {
        super::suspects::suspect_or_404(store, c).await?;
        controls.push(Control { name: c.clone(), answers: suspect_answers(store, c).await?.0 });
    }
    let suspect_n = suspect.len();
    let (report, trajectory, texts) = blocking(move || {
        let report = membership::run(&served, &fresh, &suspect, &controls, &opts)?;
        let trajectory = trajectory(&served, &fresh, &suspect, &opts, report.p_value);
        let texts = evidence_texts(&report, &served, &suspect);
        Ok::<_, detector::DetectorError>((report, trajectory, texts))
    })
    .await?
    .map_err(|e| ServiceError::Invalid(e.to_string()))?;
    let inputs = serde_json::json!({
        "served_log": log.id,
        "served_log_name": log.name,
        "account": req.account,
        "fresh_logs": req.fresh_logs,
        "controls": req.controls,
        "suspect_answers": suspect_n,
        "suspect_answers_without_prompt": without_prompt,
    });
    let stored = StoredReport { report, inputs, trajectory, evidence_texts: texts };
    let rec = record(suspect_id, &log.id, req.account, None, stored, created_by)?;
    store.add_membership_result(rec.clone()).await?;
    Ok(rec)
}

/// The stored form of a report.
pub fn record(
    suspect_id: &str,
    served_log: &str,
    account: Option<String>,
    campaign_id: Option<String>,
    stored: StoredReport,
    created_by: Option<String>,
) -> ServiceResult<MembershipRecord> {
    let r = &stored.report;
    let (decision, p_value, prompts) =
        (r.decision.as_str().to_string(), r.p_value, r.prompts as i64);
    Ok(MembershipRecord {
        id: format!("mem_{}", crate::ids::random_base62(16)),
        suspect_id: suspect_id.to_string(),
        served_log: served_log.to_string(),
        account,
        campaign_id,
        decision,
        p_value,
        prompts,
        report: serde_json::to_value(stored).map_err(|e| ServiceError::Internal(e.to_string()))?,
        created_by,
        created_ms: now_ms(),
    })
}

/// p-values of the test on the first n matched prompts (served-log order) for n = min_prompts ·
/// 2^k below the total, then the total's own p-value (`full_p`). Prefix runs use 999
/// relabellings (99 for the guard, whose result they do not report): a plot, not a decision.
pub fn trajectory(
    served: &[Answer],
    fresh: &[Answer],
    suspect: &[Answer],
    opts: &MembershipOptions,
    full_p: f64,
) -> Vec<TrajectoryPoint> {
    let fresh_keys: HashSet<String> = fresh.iter().map(|a| prompt_key(&a.prompt)).collect();
    let suspect_keys: HashSet<String> = suspect.iter().map(|a| prompt_key(&a.prompt)).collect();
    let mut seen = HashSet::new();
    let keys: Vec<String> = served
        .iter()
        .map(|a| prompt_key(&a.prompt))
        .filter(|k| fresh_keys.contains(k) && suspect_keys.contains(k) && seen.insert(k.clone()))
        .collect();
    let prefix_opts = MembershipOptions {
        permutations: opts.permutations.min(999),
        guard_permutations: 99,
        top_evidence: 0,
        ..opts.clone()
    };
    let mut out = Vec::new();
    let mut n = opts.min_prompts;
    while n < keys.len() && out.len() < 12 {
        let keep: HashSet<&String> = keys[..n].iter().collect();
        let prefix: Vec<Answer> =
            served.iter().filter(|a| keep.contains(&prompt_key(&a.prompt))).cloned().collect();
        if let Ok(r) = membership::run(&prefix, fresh, suspect, &[], &prefix_opts) {
            out.push(TrajectoryPoint { prompts: r.prompts, p_value: r.p_value });
        }
        n *= 2;
    }
    out.push(TrajectoryPoint { prompts: keys.len(), p_value: full_p });
    out
}

/// The probe prompts of a served-log campaign: the log's distinct prompts (normalised; the first
/// answer's wording is sent) in log order, at most `max`.
pub async fn campaign_prompts(
    store: &dyn Store,
    log_id: &str,
    account: Option<&str>,
    max: usize,
) -> ServiceResult<Vec<String>> {
    let log = served_log(store, log_id).await?;
    if log.kind != ServedKind::Served {
        return Err(ServiceError::Invalid(format!(
            "`{log_id}` is a log of fresh answers; a campaign probes with a served log"
        )));
    }
    let rows = load_answers(store, &log, account).await?;
    let mut seen = HashSet::new();
    Ok(rows
        .into_iter()
        .filter(|r| seen.insert(prompt_key(&r.prompt)))
        .map(|r| r.prompt)
        .take(max)
        .collect())
}

/// The served answers of a log (an account's), keyed by [`prompt_key`] (first answer kept, as
/// the detector does).
pub async fn served_by_prompt(
    store: &dyn Store,
    log_id: &str,
    account: Option<&str>,
) -> ServiceResult<HashMap<String, String>> {
    let log = served_log(store, log_id).await?;
    let mut out = HashMap::new();
    for r in load_answers(store, &log, account).await? {
        out.entry(prompt_key(&r.prompt)).or_insert(r.response);
    }
    Ok(out)
}

/// The latest membership result of a suspect, as the verdict shows it beside the style evidence.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MembershipSummary {
    pub id: String,
    /// `trained_on_served`, `not_detected` (never "independent") or `invalid`.
    pub decision: String,
    pub p_value: f64,
    pub prompts: i64,
    pub effect: Option<f64>,
    /// Why the decision is what it is (e.g. the guard's finding).
    pub reason: Option<String>,
    pub served_log: String,
    pub account: Option<String>,
    pub campaign_id: Option<String>,
    pub created_ms: i64,
}

impl From<&MembershipRecord> for MembershipSummary {
    fn from(r: &MembershipRecord) -> Self {
        MembershipSummary {
            id: r.id.clone(),
            decision: r.decision.clone(),
            p_value: r.p_value,
            prompts: r.prompts,
            effect: r.report["effect"].as_f64(),
            reason: r.report["reason"].as_str().map(str::to_string),
            served_log: r.served_log.clone(),
            account: r.account.clone(),
            campaign_id: r.campaign_id.clone(),
            created_ms: r.created_ms,
        }
    }
}

/// The latest membership result of a suspect, if any.
pub async fn latest(
    store: &dyn Store,
    suspect_id: &str,
) -> ServiceResult<Option<MembershipSummary>> {
    Ok(store.membership_results(suspect_id, 1).await?.first().map(MembershipSummary::from))
}
