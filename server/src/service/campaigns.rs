//! The campaign runner: durable, resumable, at-most-once.
//!
//! Every probe is a row of `campaign_probes` (`pending` → `sent` → `answered` | `failed`). The
//! runner takes the next batch of pending probes (at most the remaining request budget), sends them
//! with the configured concurrency and rate limit, and records each outcome as it arrives: an
//! answer is scored and written, with its sample for the suspect, in one transaction. After each
//! batch the suspect's p-value is recomputed; when a planned look of the group-sequential test
//! ([`detector::sequential`]) is due, the test is run at that look's spent level. Only an exact
//! test stops a campaign early: a served-log campaign's membership test rejecting
//! (`stop_reason = "decision"`). A style campaign's looks are triage (style evidence ranks
//! suspects but cannot decide distillation), so it ends when the request budget
//! (`budget_requests`) or token budget (`budget_tokens`) is spent or no probe is left
//! (`probes_exhausted`), with a final look that spends the rest of α; too many consecutive
//! failures end any campaign as `endpoint_failing`.
//!
//! **Restart policy (at most once).** A probe is marked `sent` and committed *before* its first
//! request leaves. After a crash or restart, probes still `sent` are the only ones whose fate is
//! unknown (the endpoint may or may not have answered): they are recorded as `failed` with the
//! error "interrupted in flight; not re-sent" and are never sent again. Answered and failed
//! probes are never re-sent either, so no probe reaches the endpoint twice across restarts; the
//! only repeated requests are the retries of one probe within one run (429 / 5xx / timeouts),
//! which carry the same `Idempotency-Key` header. The α already spent lives in the campaign row
//! (`sequential`), so resumed looks continue the same spending plan.
//!
//! **Replicas (leases).** A campaign is sent by whoever holds its lease ([`Lease`]: a server
//! replica's `--replica-id`, or a `pedigree probe` run), renewed every third of the lease time.
//! Marking a probe sent is fenced by the lease in the same statement, so a replica that lost it
//! (it died, or stalled past the expiry) sends nothing more; the replica that takes the campaign
//! over applies the restart policy above to what was in flight, and a late answer of the old
//! holder is refused ([`Store::finish_probe`] records only probes still `sent`). Request pacing
//! (the campaign's `client.rate_per_sec` and the endpoints' admin ceilings) is reserved in the
//! database ([`Store::reserve_rate_slot`]), so it holds across replicas and take-overs.

use crate::service::engine::Engine;
use crate::service::probe::allowlist::{self, Target};
use crate::service::probe::client::{ChatClient, ClientOptions};
use crate::service::probe::probesets::Probe;
use crate::service::{ServiceError, ServiceResult};
use crate::store::{
    CampaignProgress, CampaignRecord, JobState, NewCampaign, NewProbe, NewSample, ProbeOutcome,
    ProbeRecord, ProbeState, Store,
};
use detector::identity::IdentityEvidence;
use detector::sequential::{Sequential, Spending};
use detector::{Decision, IdentityClaim, TextScore, Verdict, VerdictOptions};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// Who sends a campaign's probes, and how long its claim lasts unless renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub ms: i64,
}

impl Lease {
    /// A server replica's lease (`--replica-id`, `--job-lease-ms`).
    pub fn for_replica(config: &crate::config::Config) -> Lease {
        Lease { owner: config.replica_id(), ms: config.job_lease_ms.clamp(1000, 3_600_000) as i64 }
    }

    /// A `pedigree probe` run's lease: an owner of its own, distinct from any server's, and
    /// stable across runs on the same data (a re-run after a crash takes its campaign back at
    /// once instead of after the expiry).
    pub fn for_cli(config: &crate::config::Config) -> Lease {
        Lease { owner: format!("cli-{}", config.replica_id()), ms: 30_000 }
    }
}

/// An OpenAI-compatible chat endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct EndpointSpec {
    /// Base URL, e.g. `https://api.example.com/v1` (`/chat/completions` is appended).
    pub base_url: String,
    /// The `model` field of each request.
    pub model: String,
    /// Name of the secret holding the API key (`POST /v1/secrets` or env `PEDIGREE_SECRET_<NAME>`);
    /// the key itself is never stored in the campaign nor returned.
    #[serde(default)]
    pub api_key_secret: Option<String>,
}

/// Budget of a campaign.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Budget {
    /// Probes sent to the suspect at most (retries of one probe count once).
    pub max_requests: usize,
    /// Tokens of the suspect's answers at most (reported `usage.total_tokens`, else estimated).
    #[serde(default)]
    pub max_tokens: Option<i64>,
}

/// Everything that defines a campaign (stored as JSON; secret names only).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CampaignSpec {
    pub endpoint: EndpointSpec,
    /// Optional upstream endpoint that receives the same probes (its answers are stored per probe
    /// for prompt-aligned comparison).
    #[serde(default)]
    pub upstream: Option<EndpointSpec>,
    /// The probe set's name (`identity`, `general`, `identity+general`, or `custom`).
    pub probes: String,
    pub budget: Budget,
    /// Probes in flight at once.
    #[serde(default = "d_concurrency")]
    pub concurrency: usize,
    /// Overall significance level of the sequential test.
    #[serde(default = "d_alpha")]
    pub alpha: f64,
    /// Answers per batch (and the smallest planned look).
    #[serde(default = "d_batch")]
    pub batch: usize,
    /// Stop after this many consecutive failed probes.
    #[serde(default = "d_max_fail")]
    pub max_consecutive_failures: usize,
    /// Profile to score with (default: the built-in one).
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub client: ClientOptions,
    /// A served-log campaign: the probes are the prompts of a served log, the upstream's answers
    /// are the fresh answers, and the set-level test is the membership test (not the style
    /// verdict). Absent for style campaigns (and from their stored spec and fingerprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership: Option<MembershipCampaign>,
}

/// The membership side of a served-log campaign.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MembershipCampaign {
    /// The served log (`srv_…`, kind `served`) whose prompts are sent.
    pub served_log: String,
    /// Only the prompts served to this account.
    #[serde(default)]
    pub account: Option<String>,
    /// Fresh answers asked of the upstream per prompt, 1..=8 (same settings as when served:
    /// the campaign's `client.temperature` and `answer_max_tokens` go to both endpoints).
    #[serde(default = "d_fresh")]
    pub fresh_per_prompt: usize,
    /// The test's options; `alpha` is the campaign's own `alpha` (spent over the looks), so it
    /// cannot be set here.
    #[serde(default)]
    pub options: crate::service::membership::OptionsIn,
}

fn d_fresh() -> usize {
    1
}

fn d_concurrency() -> usize {
    4
}
fn d_alpha() -> f64 {
    0.01
}
fn d_batch() -> usize {
    10
}
fn d_max_fail() -> usize {
    20
}

impl CampaignSpec {
    pub fn validate(&self) -> ServiceResult<()> {
        if self.budget.max_requests == 0 || self.budget.max_requests > 100_000 {
            return Err(ServiceError::Invalid(
                "`budget.max_requests` must be between 1 and 100000".into(),
            ));
        }
        if self.budget.max_tokens.is_some_and(|t| !(1..=1_000_000_000_000).contains(&t)) {
            return Err(ServiceError::Invalid(
                "`budget.max_tokens` must be between 1 and 10^12".into(),
            ));
        }
        VerdictOptions::check_alpha(self.alpha)
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        if self.concurrency == 0 || self.concurrency > 64 {
            return Err(ServiceError::Invalid("`concurrency` must be between 1 and 64".into()));
        }
        if self.batch == 0 || self.batch > 1000 {
            return Err(ServiceError::Invalid("`batch` must be between 1 and 1000".into()));
        }
        if self.max_consecutive_failures == 0 || self.max_consecutive_failures > 100_000 {
            return Err(ServiceError::Invalid(
                "`max_consecutive_failures` must be between 1 and 100000".into(),
            ));
        }
        self.client.validate()?;
        if let Some(m) = &self.membership {
            if self.upstream.is_none() {
                return Err(ServiceError::Invalid("a served-log campaign needs `upstream`: its answers are the fresh answers the test compares with".into()));
            }
            if !(1..=8).contains(&m.fresh_per_prompt) {
                return Err(ServiceError::Invalid(
                    "`membership.fresh_per_prompt` must be between 1 and 8".into(),
                ));
            }
            if m.options.alpha.is_some() {
                return Err(ServiceError::Invalid("set the campaign's `alpha`, not `membership.options.alpha`: it is spent over the looks".into()));
            }
            m.options.resolve()?;
        }
        for e in std::iter::once(&self.endpoint).chain(self.upstream.as_ref()) {
            if e.model.trim().is_empty() {
                return Err(ServiceError::Invalid("endpoint `model` is empty".into()));
            }
            if let Some(s) = &e.api_key_secret {
                if !crate::service::secrets::valid_secret_name(s) {
                    return Err(ServiceError::Invalid(format!(
                        "`{s}` is not a secret name ([A-Za-z0-9_-], at most 64)"
                    )));
                }
            }
        }
        Ok(())
    }

    /// What identifies "the same campaign" for the CLI's resume: the spec and the probes.
    pub fn fingerprint(&self, probes: &[Probe]) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(serde_json::to_string(self).unwrap_or_default().as_bytes());
        for p in probes {
            h.update([0]);
            h.update(p.prompt.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// Create the campaign (and, without `suspect_id`, a suspect named after the model).
pub async fn create(
    store: &dyn Store,
    engine: &Engine,
    spec: CampaignSpec,
    probes: Vec<Probe>,
    suspect_id: Option<String>,
    created_by: Option<String>,
) -> ServiceResult<CampaignRecord> {
    let mut spec = spec;
    spec.validate()?;
    let existing = match &suspect_id {
        Some(id) => Some(crate::service::suspects::suspect_or_404(store, id).await?),
        None => None,
    };
    // Answers added to an existing suspect are scored with that suspect's profile, so that its
    // verdict compares like with like.
    if let (Some(s), None) = (&existing, &spec.profile) {
        spec.profile = Some(s.profile.clone());
    }
    let (profile, _) = engine.resolve(spec.profile.as_deref())?;
    let suspect_id = match existing {
        Some(s) => s.id,
        None => {
            let id = format!("sus_{}", crate::ids::random_base62(16));
            let desc = format!("probed at {} by a campaign", spec.endpoint.base_url);
            store.create_suspect(&id, &spec.endpoint.model, &desc, &profile).await?;
            id
        }
    };
    let fingerprint = spec.fingerprint(&probes);
    let upstream = spec.upstream.is_some();
    let new = NewCampaign {
        id: format!("cmp_{}", crate::ids::random_base62(16)),
        suspect_id,
        spec: serde_json::to_value(&spec).map_err(|e| ServiceError::Internal(e.to_string()))?,
        fingerprint,
        created_by,
        probes: probes
            .into_iter()
            .map(|p| NewProbe { probe_id: p.id, kind: p.kind, prompt: p.prompt })
            .collect(),
        upstream,
    };
    Ok(store.create_campaign(new).await?)
}

/// The set-level test of a campaign at a look's level. The ONE call site of the verdict. Answers
/// were scored with their prompts, so the detector aligns them against the profile's reference
/// answers to the same prompts when it has them (`Verdict::prompt_aligned`). `upstream_refs` holds
/// the campaign's own upstream answers keyed by prompt, for a detector test that compares content
/// with them (none does today: content similarity separated suspects worse than the classifier).
pub async fn campaign_verdict(
    engine: &Engine,
    profile: Arc<detector::Profile>,
    scores: Vec<TextScore>,
    upstream_refs: HashMap<String, String>,
    level: f64,
) -> ServiceResult<Verdict> {
    let _ = upstream_refs;
    engine.verdict(profile, scores, VerdictOptions::for_look(level)).await
}

/// A campaign's summary: the identity evidence first (it is what an analyst reads first and
/// reports), then the rest by key. Indexable like the JSON it serialises to.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignSummary {
    /// Explicit self-identification by family, its rate per identity probe, examples, and the
    /// style cues by kind ([`IdentityEvidence`] plus `identity_probes_answered`).
    pub identity: serde_json::Value,
    /// Everything else (a JSON object).
    #[serde(flatten)]
    pub rest: serde_json::Value,
}

impl std::ops::Index<&str> for CampaignSummary {
    type Output = serde_json::Value;
    fn index(&self, key: &str) -> &serde_json::Value {
        if key == "identity" {
            &self.identity
        } else {
            &self.rest[key]
        }
    }
}

impl std::fmt::Display for CampaignSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
    }
}

/// The identity evidence of a campaign's answered probes: explicit claims counted over every
/// answer, the rate over the identity probes (where a claim is what the question asks for).
pub fn identity_evidence(probes: &[ProbeRecord]) -> IdentityEvidence {
    let mut e = IdentityEvidence::new("identity probes");
    for p in probes {
        // Claims stored by older versions read with the class of their kind.
        let claims: Vec<IdentityClaim> =
            p.claims.clone().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
        e.add(Some(&p.prompt), &claims, p.kind == "identity");
    }
    e.finish()
}

/// What a style campaign's decision means, for the summary.
const STYLE_CAMPAIGN_NOTE: &str = "Style is triage: it ranks suspects but cannot decide distillation (a style campaign is always undecided and ends on its budget). The decision comes from the served-output membership test (a campaign with `membership`).";

/// The summary printed by `pedigree probe` and returned by `GET /v1/campaigns/{id}` (`summary`).
pub async fn summary(store: &dyn Store, c: &CampaignRecord) -> ServiceResult<CampaignSummary> {
    let probes = all_probes(store, &c.id, Some(ProbeState::Answered)).await?;
    let evidence = identity_evidence(&probes);
    let mut identity =
        serde_json::to_value(&evidence).map_err(|e| ServiceError::Internal(e.to_string()))?;
    identity["identity_probes_answered"] = evidence.answers.into();
    let seq: Option<Sequential> = c.sequential.clone().and_then(|v| serde_json::from_value(v).ok());
    let membership = c.spec.get("membership").cloned();
    // A style campaign reports the suspect's latest style triage (over all its samples; the
    // campaign refreshes it when it ends).
    let style = match membership {
        Some(_) => serde_json::Value::Null,
        None => {
            let verdict = store.get_suspect(&c.suspect_id).await?.and_then(|s| s.verdict);
            let triage = verdict.as_ref().map_or(serde_json::Value::Null, |v| v["triage"].clone());
            serde_json::json!({
                "decision": "undecided",
                "triage": triage,
                "nearest_family": c.teacher,
                "note": STYLE_CAMPAIGN_NOTE,
            })
        }
    };
    let rest = serde_json::json!({
        "campaign": c.id,
        "suspect": c.suspect_id,
        // `membership` (a served-log campaign: decision trained_on_served / not_detected /
        // invalid, from an exact test) or `style` (triage: always undecided, see `style`).
        "test": if membership.is_some() { "membership" } else { "style" },
        "membership": membership,
        "style": style,
        "state": c.state,
        "decision": c.decision.clone().unwrap_or_else(|| "undecided".into()),
        // The style-nearest family: a style label, never an override of `identity`.
        "teacher": c.teacher,
        "p_value": c.p_value,
        "probes_sent": c.probes.sent,
        "probes_answered": c.probes.answered,
        "probes_failed": c.probes.failed,
        "upstream_answered": c.probes.upstream_answered,
        "tokens": c.tokens,
        "looks": seq.as_ref().map_or(0, |s| s.looks.len()),
        "alpha_spent": seq.as_ref().map_or(0.0, |s| s.spent),
        // Explicit self-identification only (style cues are in `identity.cues`).
        "identity_claims": evidence.explicit_claims,
        "stop_reason": c.stop_reason,
        "error": c.error,
    });
    Ok(CampaignSummary { identity, rest })
}

async fn all_probes(
    store: &dyn Store,
    id: &str,
    state: Option<ProbeState>,
) -> ServiceResult<Vec<ProbeRecord>> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.campaign_probes(id, state, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        out.extend(page);
    }
    Ok(out)
}

/// Progress callback (CLI progress bar): called after every recorded probe.
pub type OnProgress = Arc<dyn Fn(&CampaignRecord) + Send + Sync>;

/// Run (or resume) a campaign to its end under `lease` (claimed here; a campaign another owner
/// holds is a conflict). `extra_allow` adds allowlist entries for this run only (the CLI's
/// `--allow`). Returns the final record, or the record as it is when the lease was lost
/// (another replica goes on with the campaign).
pub async fn run(
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    id: &str,
    extra_allow: &HashSet<String>,
    cancel: Arc<AtomicBool>,
    on_progress: Option<OnProgress>,
    lease: &Lease,
) -> ServiceResult<CampaignRecord> {
    let c = store
        .get_campaign(id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("campaign `{id}`")))?;
    if c.state.is_terminal() {
        return Ok(c);
    }
    let Some(c) = store.claim_campaign(&lease.owner, lease.ms, Some(id)).await? else {
        let now = store.get_campaign(id).await?.unwrap_or(c);
        if now.state.is_terminal() {
            return Ok(now);
        }
        return Err(ServiceError::Conflict(format!(
            "campaign `{id}` is being sent by `{}` (its lease holds until it stops or expires)",
            now.lease_owner.as_deref().unwrap_or("another process")
        )));
    };
    let lost = Arc::new(AtomicBool::new(false));
    let heartbeat = {
        let (store, id, lease) = (store.clone(), id.to_string(), lease.clone());
        let (cancel, lost) = (cancel.clone(), lost.clone());
        tokio::spawn(async move {
            let every = Duration::from_millis((lease.ms / 3).max(1) as u64);
            loop {
                tokio::time::sleep(every).await;
                match store.renew_campaign_lease(&id, &lease.owner, lease.ms).await {
                    Ok(true) => {}
                    // Taken over, or cancelled (through any replica): stop sending.
                    Ok(false) => {
                        lost.store(true, Ordering::SeqCst);
                        cancel.store(true, Ordering::SeqCst);
                        return;
                    }
                    // Retried; the fenced sends are the safety net.
                    Err(e) => {
                        tracing::warn!(campaign = %id, error = %e, "could not renew the campaign lease")
                    }
                }
            }
        })
    };
    let res =
        run_claimed(&store, &engine, c, extra_allow, &cancel, on_progress, lease, &lost).await;
    heartbeat.abort();
    res
}

#[allow(clippy::too_many_arguments)]
async fn run_claimed(
    store: &Arc<dyn Store>,
    engine: &Arc<Engine>,
    c: CampaignRecord,
    extra_allow: &HashSet<String>,
    cancel: &AtomicBool,
    on_progress: Option<OnProgress>,
    lease: &Lease,
    lost_flag: &AtomicBool,
) -> ServiceResult<CampaignRecord> {
    let id = c.id.as_str();
    let lost = store
        .fail_in_flight_probes(
            id,
            "interrupted in flight by a restart; not re-sent (at-most-once policy)",
        )
        .await?;
    if lost > 0 {
        tracing::warn!(campaign = %id, lost, "probes in flight at the last stop were recorded as failed");
    }
    if !store.set_campaign_state(id, JobState::Running, None).await? {
        return Ok(store.get_campaign(id).await?.unwrap_or(c));
    }
    let outcome = crate::service::guard::catch_panic(drive(
        store,
        engine,
        &c,
        extra_allow,
        cancel,
        on_progress,
        &lease.owner,
    ))
    .await;
    if lost_flag.load(Ordering::SeqCst)
        || matches!(outcome, Err(ServiceError::Store(crate::store::StoreError::LeaseLost(_))))
    {
        // Another replica holds the campaign now (or it was cancelled elsewhere, which wrote
        // its state): write nothing more.
        tracing::info!(campaign = %id, owner = %lease.owner, "campaign lease lost; stopped sending");
        metrics::counter!("pedigree_campaign_leases_lost_total").increment(1);
        return Ok(store.get_campaign(id).await?.unwrap_or(c));
    }
    let (state, err, reason) = match outcome {
        Ok(Some(reason)) => (JobState::Done, None, reason),
        Ok(None) => {
            // Stopped by the flag: a cancel (whose handler records the state and reason), or a
            // shutdown (the campaign stays `running` for the next claimer). Either way only the
            // lease is given back, at once.
            if let Err(e) = store.release_campaign_leases(&lease.owner, Some(id)).await {
                tracing::warn!(campaign = %id, error = %e, "could not give back the campaign lease");
            }
            return Ok(store.get_campaign(id).await?.unwrap_or(c));
        }
        Err(e) => (JobState::Failed, Some(e.to_string()), StopReason::Error),
    };
    let stop_reason = Some(reason.as_str().to_string());
    let fenced = CampaignProgress {
        stop_reason,
        lease_owner: Some(lease.owner.clone()),
        ..Default::default()
    };
    match store.update_campaign_progress(id, fenced).await {
        Err(crate::store::StoreError::LeaseLost(_)) => {
            metrics::counter!("pedigree_campaign_leases_lost_total").increment(1);
            return Ok(store.get_campaign(id).await?.unwrap_or(c));
        }
        r => r?,
    }
    store.set_campaign_state(id, state, err).await?;
    if let Err(e) = store.release_campaign_leases(&lease.owner, Some(id)).await {
        tracing::warn!(campaign = %id, error = %e, "could not give back the campaign lease");
    }
    if let Err(e) = store.delete_rate_slots(&format!("campaign:{id}:")).await {
        tracing::info!(campaign = %id, error = %e, "campaign limiters not removed");
    }
    // The suspect's cached verdict (dashboard listing) now includes the answers (best effort).
    if let Err(e) = crate::service::suspects::refresh_verdict(
        store.as_ref(),
        engine,
        &c.suspect_id,
        Default::default(),
    )
    .await
    {
        tracing::info!(campaign = %id, error = %e, "suspect verdict not refreshed");
    }
    Ok(store.get_campaign(id).await?.unwrap_or(c))
}

struct Clients {
    suspect: ChatClient,
    upstream: Option<ChatClient>,
    /// The `host:port` allowlist entries the clients talk to (re-checked before every probe).
    entries: Vec<String>,
}

/// The campaign's clients. With `shared` (the store and the campaign's id) they pace through the
/// store's shared limiters (`campaign:{id}:suspect`, `campaign:{id}:upstream`, and
/// `endpoint:{host:port}` for an admin ceiling); without (a check before creation), locally.
async fn connect(
    store: &dyn Store,
    spec: &CampaignSpec,
    extra_allow: &HashSet<String>,
    shared: Option<(&Arc<dyn Store>, &str)>,
) -> ServiceResult<Clients> {
    let list = store.list_allowlist().await?;
    let ceilings: HashMap<String, f64> =
        list.iter().filter_map(|e| Some((e.entry.clone(), e.max_rate_per_sec?))).collect();
    let mut allowed: HashSet<String> = list.into_iter().map(|e| e.entry).collect();
    allowed.extend(extra_allow.iter().cloned());
    let mut entries = Vec::new();
    let client = |t: Target, e: &EndpointSpec, key: Option<String>| {
        ChatClient::new(&t, &e.model, key, spec.client.clone())
    };
    let mut out = Vec::new();
    for (side, e) in
        [("suspect", Some(&spec.endpoint)), ("upstream", spec.upstream.as_ref())].into_iter()
    {
        let Some(e) = e else { continue };
        let t = allowlist::check(&e.base_url, &allowed).await?;
        let entry = format!("{}:{}", t.host, t.port);
        let key = match &e.api_key_secret {
            Some(name) => {
                Some(crate::service::secrets::resolve_secret_for(store, name, &entry).await?)
            }
            None => None,
        };
        let ceiling = ceilings.get(&entry).copied();
        out.push(match shared {
            Some((s, id)) => client(t, e, key)?.with_shared_pacing(
                s,
                &format!("campaign:{id}:{side}"),
                &entry,
                ceiling,
            ),
            None => client(t, e, key)?.with_ceiling(&entry, ceiling),
        });
        entries.push(entry);
    }
    let upstream = if out.len() > 1 { out.pop() } else { None };
    Ok(Clients { suspect: out.pop().expect("suspect client"), upstream, entries })
}

/// Check the targets of a spec against the allowlist now (creation time), without sending.
pub async fn check_targets(
    store: &dyn Store,
    spec: &CampaignSpec,
    extra_allow: &HashSet<String>,
) -> ServiceResult<()> {
    connect(store, spec, extra_allow, None).await.map(|_| ())
}

/// Why a campaign stopped (stored as the campaign's `stop_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The exact test (a served-log campaign's membership test) decided; style looks never do.
    Decision,
    /// `budget.max_requests` probes were sent.
    BudgetRequests,
    /// `budget.max_tokens` tokens were spent.
    BudgetTokens,
    /// `max_consecutive_failures` probes in a row failed.
    EndpointFailing,
    /// Every probe was sent.
    ProbesExhausted,
    Cancelled,
    /// The campaign failed (its `error` says why).
    Error,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Decision => "decision",
            StopReason::BudgetRequests => "budget_requests",
            StopReason::BudgetTokens => "budget_tokens",
            StopReason::EndpointFailing => "endpoint_failing",
            StopReason::ProbesExhausted => "probes_exhausted",
            StopReason::Cancelled => "cancelled",
            StopReason::Error => "error",
        }
    }
}

/// The campaign loop; `Ok(Some(stop_reason))` when it ended, `Ok(None)` when cancelled.
async fn drive(
    shared: &Arc<dyn Store>,
    engine: &Arc<Engine>,
    c: &CampaignRecord,
    extra_allow: &HashSet<String>,
    cancel: &AtomicBool,
    on_progress: Option<OnProgress>,
    owner: &str,
) -> ServiceResult<Option<StopReason>> {
    let store = shared.as_ref();
    let spec: CampaignSpec = serde_json::from_value(c.spec.clone())
        .map_err(|e| ServiceError::Internal(format!("stored campaign spec: {e}")))?;
    // A campaign stored by an older version (or written to the store by hand) is checked again:
    // its values reach the limiter and the client.
    spec.validate().map_err(|e| ServiceError::Invalid(format!("stored campaign spec: {e}")))?;
    let (_, profile) = engine.resolve(spec.profile.as_deref())?;
    let clients = connect(store, &spec, extra_allow, Some((shared, &c.id))).await?;
    // A membership look needs `min_prompts` compared prompts: no look is planned before that.
    let first_look = match &spec.membership {
        Some(m) => spec.batch.max(m.options.resolve()?.min_prompts),
        None => spec.batch,
    };
    let mut seq: Sequential = match c.sequential.clone() {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| ServiceError::Internal(format!("stored sequential state: {e}")))?,
        None => {
            Sequential::new(spec.alpha, spec.budget.max_requests, first_look, Spending::default())
        }
    };
    let membership = match &spec.membership {
        Some(m) => Some((
            m,
            crate::service::membership::served_by_prompt(
                store,
                &m.served_log,
                m.account.as_deref(),
            )
            .await?,
        )),
        None => None,
    };
    let consecutive_failed = AtomicUsize::new(0);
    let ctx = ProbeCtx {
        store,
        engine,
        profile: profile.clone(),
        clients: &clients,
        campaign: &c.id,
        cancel,
        source: format!("campaign:{}", c.id),
        extra_allow,
        fresh_per_prompt: spec.membership.as_ref().map_or(1, |m| m.fresh_per_prompt),
        membership,
        suspect_id: c.suspect_id.clone(),
        owner,
    };
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let now =
            store.get_campaign(&c.id).await?.ok_or_else(|| ServiceError::not_found("campaign"))?;
        if now.state == JobState::Cancelled {
            return Ok(None);
        }
        let remaining = spec.budget.max_requests.saturating_sub(now.probes.sent as usize);
        let stop = if remaining == 0 {
            Some(StopReason::BudgetRequests)
        } else if spec.budget.max_tokens.is_some_and(|t| now.tokens >= t) {
            Some(StopReason::BudgetTokens)
        } else if consecutive_failed.load(Ordering::SeqCst) >= spec.max_consecutive_failures {
            Some(StopReason::EndpointFailing)
        } else {
            None
        };
        let batch = if stop.is_none() {
            store
                .campaign_probes(
                    &c.id,
                    Some(ProbeState::Pending),
                    0,
                    remaining.min(spec.batch) as i64,
                )
                .await?
        } else {
            vec![]
        };
        let stop = stop.or(batch.is_empty().then_some(StopReason::ProbesExhausted));
        if let Some(reason) = stop {
            ctx.look(&mut seq, true).await?;
            return Ok(Some(reason));
        }
        let results = futures_util::stream::iter(batch)
            .map(|p| ctx.probe(p))
            .buffer_unordered(spec.concurrency)
            .collect::<Vec<_>>()
            .await;
        for r in results {
            match r? {
                Some(true) => consecutive_failed.store(0, Ordering::SeqCst),
                Some(false) => {
                    consecutive_failed.fetch_add(1, Ordering::SeqCst);
                }
                None => {}
            }
        }
        if let Some(cb) = &on_progress {
            if let Some(rec) = store.get_campaign(&c.id).await? {
                cb(&rec);
            }
        }
        if ctx.look(&mut seq, false).await? {
            return Ok(Some(StopReason::Decision));
        }
    }
}

struct ProbeCtx<'a> {
    store: &'a dyn Store,
    engine: &'a Arc<Engine>,
    profile: Arc<detector::Profile>,
    clients: &'a Clients,
    campaign: &'a str,
    cancel: &'a AtomicBool,
    source: String,
    extra_allow: &'a HashSet<String>,
    /// Requests to the upstream per probe (a served-log campaign's `fresh_per_prompt`).
    fresh_per_prompt: usize,
    /// A served-log campaign's test: its spec and the served answers by prompt key.
    membership: Option<(&'a MembershipCampaign, HashMap<String, String>)>,
    suspect_id: String,
    /// The lease owner: sends and progress writes are fenced by it.
    owner: &'a str,
}

impl ProbeCtx<'_> {
    /// A progress write under this run's lease.
    fn progress(&self) -> CampaignProgress {
        CampaignProgress { lease_owner: Some(self.owner.to_string()), ..Default::default() }
    }

    /// The look of whichever test the campaign runs; `true` when it decided (stop).
    async fn look(&self, seq: &mut Sequential, final_look: bool) -> ServiceResult<bool> {
        match &self.membership {
            Some((m, served)) => membership_look(self, m, served, seq, final_look).await,
            None => {
                // The style look is triage: it records the p-value trajectory but never stops
                // the campaign (style alone cannot decide distillation; the budget ends it).
                look(self, seq, final_look).await?;
                Ok(false)
            }
        }
    }

    /// Send one probe (and its upstream twin). `Some(answered?)`, or `None` when it was not sent.
    async fn probe(&self, p: ProbeRecord) -> ServiceResult<Option<bool>> {
        // An admin who removes a target from the allowlist stops the campaigns sending to it
        // (issue 14 item 8): checked before each probe, so at most the probes in flight finish.
        if !self.cancel.load(Ordering::SeqCst) {
            let listed: HashSet<String> =
                self.store.list_allowlist().await?.into_iter().map(|e| e.entry).collect();
            if let Some(gone) = self
                .clients
                .entries
                .iter()
                .find(|e| !listed.contains(*e) && !self.extra_allow.contains(*e))
            {
                return Err(ServiceError::TargetRefused(format!(
                    "`{gone}` was removed from the allowlist; the campaign stopped"
                )));
            }
        }
        if self.cancel.load(Ordering::SeqCst)
            || !self.store.mark_probe_sent(self.campaign, p.seq, Some(self.owner)).await?
        {
            return Ok(None);
        }
        let key = format!("{}:{}", self.campaign, p.seq);
        let outcome = match self.clients.suspect.ask(&p.prompt, &key, |_| {}).await {
            Ok(a) => {
                let score = self
                    .engine
                    .score(self.profile.clone(), vec![(a.text.clone(), Some(p.prompt.clone()))])
                    .await?
                    .pop();
                let score = score.ok_or_else(|| ServiceError::Internal("no score".into()))?;
                let claims = serde_json::to_value(&score.claims).ok();
                let sample = NewSample {
                    content_hash: crate::service::suspects::content_hash(&a.text, Some(&p.prompt)),
                    text: a.text.clone(),
                    prompt: Some(p.prompt.clone()),
                    source: self.source.clone(),
                    score: serde_json::to_value(&score).ok(),
                };
                ProbeOutcome {
                    answered: true,
                    attempts: a.attempts as i64,
                    answer: Some(a.text),
                    error: None,
                    tokens: Some(a.tokens),
                    claims,
                    sample: Some(sample),
                }
            }
            Err(f) => ProbeOutcome {
                answered: false,
                attempts: f.attempts as i64,
                answer: None,
                error: Some(f.error),
                tokens: None,
                claims: None,
                sample: None,
            },
        };
        let answered = outcome.answered;
        self.store.finish_probe(self.campaign, p.seq, outcome).await?;
        if let Some(up) = &self.clients.upstream {
            if p.upstream_state == Some(ProbeState::Pending)
                && self.store.mark_upstream_sent(self.campaign, p.seq, Some(self.owner)).await?
            {
                let (mut answers, mut error) = (Vec::new(), None);
                for i in 0..self.fresh_per_prompt {
                    // The first request keeps the key style campaigns always used.
                    let k = if i == 0 {
                        format!("{key}:upstream")
                    } else {
                        format!("{key}:upstream:{i}")
                    };
                    match up.ask(&p.prompt, &k, |_| {}).await {
                        Ok(a) => answers.push(a.text),
                        Err(f) => error = Some(f.error),
                    }
                }
                let first = (!answers.is_empty()).then(|| answers.remove(0));
                let error = if first.is_some() { None } else { error };
                self.store.finish_upstream(self.campaign, p.seq, first, answers, error).await?;
            }
        }
        Ok(Some(answered))
    }
}

/// Recompute the suspect's p-value (for progress) and, when a planned look is due (or this is the
/// final look), run the style test and persist the sequential state. The look is recorded for
/// its p-value trajectory; its decision is the style verdict's, always `undecided`.
async fn look(ctx: &ProbeCtx<'_>, seq: &mut Sequential, final_look: bool) -> ServiceResult<()> {
    let c = ctx
        .store
        .get_campaign(ctx.campaign)
        .await?
        .ok_or_else(|| ServiceError::not_found("campaign"))?;
    let answered = c.probes.answered as usize;
    let rows = ctx.store.sample_scores(&c.suspect_id).await?;
    if rows.len() < 2 {
        return Ok(());
    }
    let scores: Vec<TextScore> =
        rows.into_iter().filter_map(|(_, v)| serde_json::from_value(v).ok()).collect();
    // Upstream reference answers keyed by prompt (read only when there is an upstream).
    let refs: HashMap<String, String> = if ctx.clients.upstream.is_some() {
        all_probes(ctx.store, ctx.campaign, Some(ProbeState::Answered))
            .await?
            .into_iter()
            .filter_map(|p| p.upstream_answer.map(|a| (p.prompt, a)))
            .collect()
    } else {
        HashMap::new()
    };
    // The final look spends what is left of α, unless the plan already ended with a look at the
    // full budget (then nothing is left and another look would decide nothing).
    let due = (final_look && seq.next_look().is_some()) || seq.due(answered);
    let mut progress = ctx.progress();
    if due && seq.stopped().is_none() && !seq.looks.last().is_some_and(|l| l.final_look) {
        let level = seq.level_at(answered, final_look);
        let verdict =
            campaign_verdict(ctx.engine, ctx.profile.clone(), scores, refs, level).await?;
        let (l, v) = seq.look(answered, final_look, |_| verdict).expect("look allowed");
        tracing::info!(campaign = %ctx.campaign, n = l.n, level = l.level, p = l.p_value, decision = ?l.decision, "sequential look");
        progress.sequential = serde_json::to_value(&*seq).ok();
        progress.p_value = Some(v.p_value);
        progress.teacher = v.teacher.clone();
        progress.decision = Some(
            serde_json::to_value(l.decision)
                .ok()
                .and_then(|d| d.as_str().map(String::from))
                .unwrap_or_default(),
        );
    } else {
        // Between looks: the current p-value at the full α, for progress only (no decision).
        let v = campaign_verdict(ctx.engine, ctx.profile.clone(), scores, refs, seq.alpha).await?;
        progress.p_value = Some(v.p_value);
        progress.teacher = v.teacher;
    }
    ctx.store.update_campaign_progress(ctx.campaign, progress).await?;
    Ok(())
}

/// A served-log campaign's look: the membership test on the prompts that both the suspect and
/// the upstream answered (the upstream's answers are the fresh ones). At a planned look the test
/// runs at the look's spent level, with enough relabellings to resolve it; a rejection whose
/// exchangeability checks pass stops the campaign `trained_on_served`, a rejection whose checks
/// fail stops it `invalid` (the fresh answers do not match the served snapshot: more probes would
/// not help). The final look decides `not_detected` (or `invalid`). Between looks the p-value is
/// recomputed with 999 relabellings for progress only. The look that stops the campaign is
/// stored as a membership result of the suspect, with the looks as its trajectory. No look is
/// taken before `min_prompts` prompts are compared: none spends α.
async fn membership_look(
    ctx: &ProbeCtx<'_>,
    m: &MembershipCampaign,
    served_by_key: &HashMap<String, String>,
    seq: &mut Sequential,
    final_look: bool,
) -> ServiceResult<bool> {
    use crate::service::membership::{evidence_texts, record, StoredReport, TrajectoryPoint};
    use detector::membership::{self, prompt_key, Answer, MembershipDecision};
    let (mut served, mut fresh, mut suspect) = (Vec::new(), Vec::new(), Vec::new());
    for p in all_probes(ctx.store, ctx.campaign, Some(ProbeState::Answered)).await? {
        let (Some(answer), Some(up)) = (p.answer, p.upstream_answer) else { continue };
        let Some(sv) = served_by_key.get(&prompt_key(&p.prompt)) else { continue };
        served.push(Answer::new(p.prompt.clone(), sv.clone()));
        fresh.push(Answer::new(p.prompt.clone(), up));
        fresh.extend(p.upstream_extra.into_iter().map(|x| Answer::new(p.prompt.clone(), x)));
        suspect.push(Answer::new(p.prompt, answer));
    }
    let n = suspect.len();
    let base = m.options.resolve()?;
    if n < base.min_prompts {
        return Ok(false);
    }
    let can_look = ((final_look && seq.next_look().is_some()) || seq.due(n))
        && seq.stopped().is_none()
        && !seq.looks.last().is_some_and(|l| l.final_look);
    let mut opts = base.clone();
    let level = seq.level_at(n, final_look);
    if can_look {
        opts.alpha = level.clamp(1e-300, 0.49);
        // Monte-Carlo resolution 1/(1+B) well below the level (the exact test needs none).
        opts.permutations =
            ((20.0 / level.max(1e-6)).ceil() as usize).clamp(base.permutations, 1_000_000);
    } else {
        (opts.permutations, opts.guard_permutations, opts.top_evidence) = (999, 99, 0);
    }
    let inputs = (served, fresh, suspect);
    let (report, inputs) = ctx
        .engine
        .run_cpu(move || {
            let r = membership::run(&inputs.0, &inputs.1, &inputs.2, &[], &opts);
            (r, inputs)
        })
        .await?;
    let report = report.map_err(|e| ServiceError::Invalid(format!("membership test: {e}")))?;
    let mut progress = CampaignProgress { p_value: Some(report.p_value), ..ctx.progress() };
    if !can_look {
        ctx.store.update_campaign_progress(ctx.campaign, progress).await?;
        return Ok(false);
    }
    let flagged = report.decision == MembershipDecision::TrainedOnServed;
    let d = if flagged { Decision::Distilled } else { Decision::Undecided };
    let look = seq.look_with(n, final_look, |_| (report.p_value, d)).expect("look allowed");
    let decided = look.decision == Decision::Distilled;
    // The plan's last point spends the rest of α like a final look: no look can follow it.
    let final_look = final_look || seq.next_look().is_none();
    let refused =
        report.decision == MembershipDecision::Invalid && (report.p_value <= level || final_look);
    tracing::info!(campaign = %ctx.campaign, n, level, p = report.p_value, decided, refused, "membership look");
    // `None` = undecided (more looks follow).
    let decision = if decided {
        Some(MembershipDecision::TrainedOnServed)
    } else if refused {
        Some(MembershipDecision::Invalid)
    } else if final_look {
        Some(MembershipDecision::NotDetected)
    } else {
        None
    };
    progress.sequential = serde_json::to_value(&*seq).ok();
    progress.decision = Some(decision.map_or("undecided", |d| d.as_str()).to_string());
    let stop = decided || refused;
    if stop || final_look {
        let trajectory = seq
            .looks
            .iter()
            .map(|l| TrajectoryPoint { prompts: l.n, p_value: l.p_value })
            .collect();
        let evidence_texts = evidence_texts(&report, &inputs.0, &inputs.2);
        let mut report = report;
        // The stored decision is the campaign's (a final look's non-rejection is not_detected).
        report.decision = decision.unwrap_or(MembershipDecision::NotDetected);
        let inputs = serde_json::json!({
            "campaign": ctx.campaign,
            "served_log": m.served_log,
            "account": m.account,
            "fresh_per_prompt": m.fresh_per_prompt,
            "look": seq.looks.len(),
            "level": level,
            "alpha_spent": seq.spent,
        });
        let stored = StoredReport { report, inputs, trajectory, evidence_texts };
        let rec = record(
            &ctx.suspect_id,
            &m.served_log,
            m.account.clone(),
            Some(ctx.campaign.to_string()),
            stored,
            None,
        )?;
        ctx.store.add_membership_result(rec).await?;
    }
    ctx.store.update_campaign_progress(ctx.campaign, progress).await?;
    Ok(stop)
}

/// Background campaigns of the HTTP service (like [`crate::service::jobs::JobManager`]): each
/// replica claims unfinished campaigns whose lease is free or expired, whoever created them, up
/// to `--max-campaigns` at once: at once when this replica creates one, else every
/// `--job-poll-ms`. Cancellable through any replica.
pub struct CampaignManager {
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    cancels: crate::service::jobs::CancelFlags,
    lease: Lease,
    claims: crate::service::claims::ClaimLoop,
}

impl CampaignManager {
    pub fn new(
        store: Arc<dyn Store>,
        engine: Arc<Engine>,
        config: &crate::config::Config,
    ) -> CampaignManager {
        CampaignManager {
            store,
            engine,
            cancels: Default::default(),
            lease: Lease::for_replica(config),
            claims: crate::service::claims::ClaimLoop::new(
                config.max_campaigns.clamp(1, 1000) as usize,
                Duration::from_millis(config.job_poll_ms.clamp(50, 600_000)),
            ),
        }
    }

    /// Start claiming: first give back the campaign leases this replica id held before a
    /// restart (its campaigns resume at once), then claim as slots free up.
    pub async fn start(self: &Arc<Self>) -> ServiceResult<()> {
        let n = self.store.release_campaign_leases(&self.lease.owner, None).await?;
        if n > 0 {
            tracing::info!(replica = %self.lease.owner, leases = n, "took back this replica's campaign leases from before its restart");
        }
        let me = self.clone();
        tokio::spawn(async move { me.claim_loop().await });
        Ok(())
    }

    /// Look for claimable campaigns now (after a create).
    pub fn wake(&self) {
        self.claims.wake();
    }

    async fn claim_loop(self: Arc<Self>) {
        let claim = || self.store.claim_campaign(&self.lease.owner, self.lease.ms, None);
        let start = |c: CampaignRecord, slot| {
            metrics::counter!("pedigree_campaigns_claimed_total").increment(1);
            if c.state == JobState::Running {
                metrics::counter!("pedigree_campaign_leases_taken_over_total").increment(1);
            }
            tracing::info!(campaign = %c.id, sent = c.probes.sent, replica = %self.lease.owner, "claimed campaign");
            self.run_claimed(c.id, slot);
        };
        self.claims.run("campaigns", claim, start).await
    }

    fn run_claimed(self: &Arc<Self>, id: String, slot: tokio::sync::OwnedSemaphorePermit) {
        let flag = self.cancels.register(&id);
        let me = self.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let res = run(
                me.store.clone(),
                me.engine.clone(),
                &id,
                &HashSet::new(),
                flag,
                None,
                &me.lease,
            )
            .await;
            match res {
                // Another owner holds the lease (it took the campaign over between this
                // replica's claim and its run): that owner sends it; failing it here would end
                // a campaign that is still running elsewhere.
                Err(ServiceError::Conflict(e)) => {
                    tracing::info!(campaign = %id, error = %e, "campaign held by another owner; left to it");
                }
                Err(e) => {
                    tracing::warn!(campaign = %id, error = %e, "campaign failed");
                    let _ = me
                        .store
                        .set_campaign_state(&id, JobState::Failed, Some(e.to_string()))
                        .await;
                    let _ = me.store.release_campaign_leases(&me.lease.owner, Some(&id)).await;
                }
                Ok(_) => {}
            }
            me.cancels.remove(&id);
        });
    }

    /// Stop claiming, stop the campaigns after their probes in flight, wait up to `grace` for
    /// them, and give every lease back at once (another replica resumes them without waiting
    /// for the expiry; a stopped campaign stays `running`, to be resumed).
    pub async fn shutdown(&self, grace: Duration) {
        self.claims.stop(grace, || self.cancels.signal_all()).await;
        match self.store.release_campaign_leases(&self.lease.owner, None).await {
            Ok(n) => {
                tracing::info!(replica = %self.lease.owner, leases = n, "campaign leases given back")
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not give back campaign leases; they expire")
            }
        }
    }

    /// Cancel: no new probe is sent; probes in flight finish and are recorded.
    pub async fn cancel(&self, id: &str) -> ServiceResult<CampaignRecord> {
        let c = self
            .store
            .get_campaign(id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("campaign `{id}`")))?;
        crate::service::jobs::ensure_cancellable("campaign", id, c.state)?;
        self.cancels.signal(id);
        self.store.set_campaign_state(id, JobState::Cancelled, None).await?;
        self.store
            .update_campaign_progress(
                id,
                CampaignProgress {
                    stop_reason: Some(StopReason::Cancelled.as_str().into()),
                    ..Default::default()
                },
            )
            .await?;
        Ok(self.store.get_campaign(id).await?.unwrap_or(c))
    }
}
