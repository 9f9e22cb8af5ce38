//! Probe campaigns, the probe-target allowlist and named secrets.

use crate::api::suspects::{paging, with_detail};
use crate::auth::{Need, ADMIN, ANALYST, VIEWER};
use crate::error::{Json, Path, Query};
use crate::service::campaigns::{
    self as campaign, Budget, CampaignSpec, EndpointSpec, MembershipCampaign,
};
use crate::service::probe::client::ClientOptions;
use crate::service::probe::{allowlist, probesets};
use crate::service::{ServiceError, ServiceResult};
use crate::state::AppState;
use crate::store::{now_ms, AllowEntry, CampaignRecord, ProbeRecord, ProbeState, SecretInfo};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa::{IntoParams, ToSchema};

type ErrorBody = crate::error::ErrorBody;

/// A user-supplied probe.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ProbeIn {
    pub prompt: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateCampaign {
    pub endpoint: EndpointSpec,
    #[serde(default)]
    pub upstream: Option<EndpointSpec>,
    /// `identity`, `general` or `identity+general` (default), unless `probe_list` is given.
    #[serde(default)]
    pub probes: Option<String>,
    /// User-supplied probes (instead of a built-in set).
    #[serde(default)]
    pub probe_list: Option<Vec<ProbeIn>>,
    pub budget: Budget,
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub alpha: Option<f64>,
    #[serde(default)]
    pub batch: Option<usize>,
    #[serde(default)]
    pub profile: Option<String>,
    /// Add the answers to this existing suspect (default: a new suspect named after the model).
    #[serde(default)]
    pub suspect_id: Option<String>,
    /// Timeouts, retries, rate limit (requests/s), streaming, `max_tokens` per answer.
    #[serde(default)]
    pub client: Option<ClientOptions>,
    /// A served-log campaign: probe with the prompts of this served log, take the `upstream`'s
    /// answers as fresh answers, and decide with the membership test (instead of `probes`).
    #[serde(default)]
    pub membership: Option<MembershipCampaign>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignView {
    #[serde(flatten)]
    pub campaign: CampaignRecord,
    /// `identity` first (explicit self-identification by family, its rate per identity probe,
    /// up to 3 examples, style cues by kind), then decision (style campaigns: always
    /// `undecided`, with the triage in `style`; membership campaigns: the exact test's),
    /// teacher (style-nearest family), p_value, probes_sent/answered/failed, looks, alpha_spent,
    /// identity_claims (explicit claims per family), stop_reason (as printed by `pedigree probe`).
    #[schema(value_type = Object)]
    pub summary: campaign::CampaignSummary,
}

async fn view(state: &AppState, c: CampaignRecord) -> ServiceResult<CampaignView> {
    let summary = campaign::summary(state.store.as_ref(), &c).await?;
    Ok(CampaignView { campaign: c, summary })
}

/// Start a probe campaign against an allowlisted endpoint (runs in the background).
#[utoipa::path(post, path = "/v1/campaigns", tag = "campaigns", request_body = CreateCampaign,
    responses((status = 202, body = CampaignView), (status = 403, description = "Role too low, or target not on the allowlist", body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Need(caller): Need<ANALYST>,
    Json(req): Json<CreateCampaign>,
) -> ServiceResult<Response> {
    let (name, probes) = campaign_probes(&state, &req).await?;
    if probes.len() > 100_000 {
        return Err(ServiceError::TooLarge("at most 100000 probes".into()));
    }
    let spec = CampaignSpec {
        endpoint: req.endpoint,
        upstream: req.upstream,
        probes: name,
        budget: req.budget,
        concurrency: req.concurrency.unwrap_or(4),
        alpha: req.alpha.unwrap_or(0.01),
        batch: req.batch.unwrap_or(10),
        max_consecutive_failures: 20,
        profile: req.profile,
        client: req.client.unwrap_or_default(),
        membership: req.membership,
    };
    spec.validate()?;
    // Refuse an off-allowlist target now, before anything is stored.
    campaign::check_targets(state.store.as_ref(), &spec, &HashSet::new()).await?;
    let rec = campaign::create(
        state.store.as_ref(),
        &state.engine,
        spec,
        probes,
        req.suspect_id,
        Some(caller.key_id),
    )
    .await?;
    state.campaigns.wake();
    let detail = serde_json::json!({"campaign_id": rec.id, "suspect_id": rec.suspect_id, "probes": rec.probes.total});
    let v = view(&state, rec).await?;
    Ok(with_detail((StatusCode::ACCEPTED, Json(v)), detail))
}

/// The probes a campaign request names: a served log's prompts, an inline list or a built-in set.
async fn campaign_probes(
    state: &AppState,
    req: &CreateCampaign,
) -> ServiceResult<(String, Vec<probesets::Probe>)> {
    Ok(match (&req.probe_list, &req.probes) {
        _ if req.membership.is_some() => served_log_probes(state, req).await?,
        (Some(list), None) => {
            let text: String = list
                .iter()
                .map(|p| {
                    serde_json::json!({"prompt": p.prompt, "id": p.id, "kind": p.kind}).to_string()
                        + "\n"
                })
                .collect();
            (
                "custom".to_string(),
                probesets::parse(&text, "custom", "probe_list").map_err(ServiceError::Invalid)?,
            )
        }
        (None, name) => {
            let name = name.clone().unwrap_or_else(|| "identity+general".into());
            let set = probesets::builtin(&name).ok_or_else(|| {
                ServiceError::Invalid(format!(
                    "unknown probe set `{name}` (built-in: {})",
                    probesets::BUILTIN.join(", ")
                ))
            })?;
            (name, set)
        }
        (Some(_), Some(_)) => {
            return Err(ServiceError::Invalid(
                "give either `probes` or `probe_list`, not both".into(),
            ))
        }
    })
}

/// The probes of a served-log campaign: the log's distinct prompts, at most the request budget.
async fn served_log_probes(
    state: &AppState,
    req: &CreateCampaign,
) -> ServiceResult<(String, Vec<probesets::Probe>)> {
    let m = req.membership.as_ref().expect("a served-log campaign");
    if req.probes.is_some() || req.probe_list.is_some() {
        return Err(ServiceError::Invalid(
            "a served-log campaign probes with the served log's prompts: give `membership` or `probes`/`probe_list`, not both".into(),
        ));
    }
    let prompts = crate::service::membership::campaign_prompts(
        state.store.as_ref(),
        &m.served_log,
        m.account.as_deref(),
        req.budget.max_requests.min(100_000),
    )
    .await?;
    let probes = prompts
        .into_iter()
        .enumerate()
        .map(|(i, prompt)| probesets::Probe {
            id: format!("served-{}", i + 1),
            kind: "served".into(),
            prompt,
        })
        .collect();
    Ok((format!("served_log:{}", m.served_log), probes))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct Paging {
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignList {
    pub campaigns: Vec<CampaignRecord>,
}

/// List campaigns, newest first.
#[utoipa::path(get, path = "/v1/campaigns", tag = "campaigns", params(Paging),
    responses((status = 200, body = CampaignList), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Need(_c): Need<VIEWER>,
    Query(p): Query<Paging>,
) -> ServiceResult<Json<CampaignList>> {
    let (limit, offset) = paging(p.limit, p.offset)?;
    Ok(Json(CampaignList { campaigns: state.store.list_campaigns(limit, offset).await? }))
}

async fn campaign_or_404(state: &AppState, id: &str) -> ServiceResult<CampaignRecord> {
    state
        .store
        .get_campaign(id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("campaign `{id}`")))
}

/// A campaign's progress: probe counts, current p-value, decision, stop reason, summary.
#[utoipa::path(get, path = "/v1/campaigns/{id}", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = CampaignView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Need(_c): Need<VIEWER>,
    Path(id): Path<String>,
) -> ServiceResult<Json<CampaignView>> {
    let c = campaign_or_404(&state, &id).await?;
    Ok(Json(view(&state, c).await?))
}

/// Cancel a campaign: no further probe is sent; answers so far are kept.
#[utoipa::path(post, path = "/v1/campaigns/{id}/cancel", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = CampaignRecord), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    Need(_c): Need<ANALYST>,
    Path(id): Path<String>,
) -> ServiceResult<Response> {
    let rec = state.campaigns.cancel(&id).await?;
    Ok(with_detail(Json(rec), serde_json::json!({"campaign_id": id})))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ProbeQuery {
    /// Only probes in this state (`pending`, `sent`, `answered`, `failed`).
    #[serde(default)]
    pub state: Option<String>,
    /// Probes after this sequence number (paging).
    #[serde(default)]
    pub after: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProbeList {
    pub probes: Vec<ProbeRecord>,
}

/// A campaign's probes with their state, attempts, answers, errors and identity claims.
#[utoipa::path(get, path = "/v1/campaigns/{id}/probes", tag = "campaigns", params(("id" = String, Path), ProbeQuery),
    responses((status = 200, body = ProbeList), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn probes(
    State(state): State<AppState>,
    Need(_c): Need<VIEWER>,
    Path(id): Path<String>,
    Query(q): Query<ProbeQuery>,
) -> ServiceResult<Json<ProbeList>> {
    campaign_or_404(&state, &id).await?;
    let st = match q.state.as_deref() {
        None => None,
        Some(s) => Some(
            ProbeState::parse(s)
                .ok_or_else(|| ServiceError::Invalid(format!("unknown probe state `{s}`")))?,
        ),
    };
    let limit = q.limit.unwrap_or(1000);
    if !(1..=1000).contains(&limit) {
        return Err(ServiceError::Invalid("`limit` must be between 1 and 1000".into()));
    }
    Ok(Json(ProbeList {
        probes: state.store.campaign_probes(&id, st, q.after.unwrap_or(0), limit).await?,
    }))
}

// --- allowlist

#[derive(Debug, Deserialize, ToSchema)]
pub struct AllowIn {
    /// `host:port` (IPv6 as `[addr]:port`).
    pub entry: String,
    #[serde(default)]
    pub note: String,
    /// Ceiling on the requests per second all campaigns together send to this endpoint
    /// (0.001–1000; default: none, each campaign keeps its own `client.rate_per_sec`).
    #[serde(default)]
    pub max_rate_per_sec: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AllowList {
    pub entries: Vec<AllowEntry>,
}

/// The probe-target allowlist.
#[utoipa::path(get, path = "/v1/allowlist", tag = "campaigns",
    responses((status = 200, body = AllowList), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn allow_list(
    State(state): State<AppState>,
    Need(_c): Need<VIEWER>,
) -> ServiceResult<Json<AllowList>> {
    Ok(Json(AllowList { entries: state.store.list_allowlist().await? }))
}

/// Allow a probe target (`host:port`). Internal addresses must be listed as `ip:port` themselves.
#[utoipa::path(post, path = "/v1/allowlist", tag = "campaigns", request_body = AllowIn,
    responses((status = 201, body = AllowEntry), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn allow_add(
    State(state): State<AppState>,
    Need(caller): Need<ADMIN>,
    Json(req): Json<AllowIn>,
) -> ServiceResult<Response> {
    let entry = allowlist::normalize_entry(&req.entry)?;
    use crate::service::probe::client::{MAX_RATE, MIN_RATE};
    if req.max_rate_per_sec.is_some_and(|r| !(MIN_RATE..=MAX_RATE).contains(&r)) {
        return Err(ServiceError::Invalid(format!(
            "`max_rate_per_sec` must be between {MIN_RATE} and {MAX_RATE}"
        )));
    }
    let e = AllowEntry {
        entry: entry.clone(),
        note: req.note,
        created_by: Some(caller.key_id),
        created_ms: now_ms(),
        max_rate_per_sec: req.max_rate_per_sec,
    };
    state.store.add_allowlist(e.clone()).await?;
    Ok(with_detail((StatusCode::CREATED, Json(e)), serde_json::json!({"entry": entry})))
}

/// Remove a probe target.
#[utoipa::path(delete, path = "/v1/allowlist/{entry}", tag = "campaigns", params(("entry" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn allow_delete(
    State(state): State<AppState>,
    Need(_c): Need<ADMIN>,
    Path(entry): Path<String>,
) -> ServiceResult<Response> {
    let entry = allowlist::normalize_entry(&entry)?;
    if !state.store.delete_allowlist(&entry).await? {
        return Err(ServiceError::not_found(format!("allowlist entry `{entry}`")));
    }
    Ok(with_detail(StatusCode::NO_CONTENT, serde_json::json!({"entry": entry})))
}

// --- secrets

#[derive(Deserialize, ToSchema)]
pub struct SecretIn {
    /// `[A-Za-z0-9_-]`, at most 64 characters.
    pub name: String,
    /// The secret (e.g. an API key). Stored in the data directory's database; never returned.
    pub value: String,
    /// The endpoints (`host:port`) campaigns may send it to (at least one; at most 64).
    #[serde(default)]
    pub hosts: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretList {
    /// Names only, never values. Secrets given as `PEDIGREE_SECRET_<NAME>` environment variables
    /// are not listed.
    pub secrets: Vec<SecretInfo>,
}

/// Store a named secret (an endpoint's API key). The value is never returned by any route.
#[utoipa::path(post, path = "/v1/secrets", tag = "campaigns", request_body = SecretIn,
    responses((status = 201, body = SecretInfo), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn secret_put(
    State(state): State<AppState>,
    Need(caller): Need<ADMIN>,
    Json(req): Json<SecretIn>,
) -> ServiceResult<Response> {
    if !crate::service::secrets::valid_secret_name(&req.name) {
        return Err(ServiceError::Invalid(
            "`name` must be 1–64 characters of [A-Za-z0-9_-]".into(),
        ));
    }
    if req.value.is_empty() || req.value.len() > 16_384 {
        return Err(ServiceError::Invalid("`value` must be 1–16384 bytes".into()));
    }
    if req.hosts.is_empty() || req.hosts.len() > 64 {
        return Err(ServiceError::Invalid(
            "`hosts` must list 1–64 endpoints (host:port) the secret may be sent to".into(),
        ));
    }
    let hosts = req
        .hosts
        .iter()
        .map(|h| {
            allowlist::normalize_entry(h)
                .map_err(|e| ServiceError::Invalid(format!("`hosts`: {e}")))
        })
        .collect::<ServiceResult<Vec<_>>>()?;
    let info = state.store.put_secret(&req.name, &req.value, Some(caller.key_id)).await?;
    state.store.set_secret_hosts(&req.name, hosts.clone()).await?;
    let info = SecretInfo { hosts, ..info };
    Ok(with_detail((StatusCode::CREATED, Json(info)), serde_json::json!({"name": req.name})))
}

/// Names of stored secrets.
#[utoipa::path(get, path = "/v1/secrets", tag = "campaigns",
    responses((status = 200, body = SecretList), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn secret_list(
    State(state): State<AppState>,
    Need(_c): Need<ADMIN>,
) -> ServiceResult<Json<SecretList>> {
    Ok(Json(SecretList { secrets: state.store.list_secrets().await? }))
}

/// Delete a stored secret.
#[utoipa::path(delete, path = "/v1/secrets/{name}", tag = "campaigns", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn secret_delete(
    State(state): State<AppState>,
    Need(_c): Need<ADMIN>,
    Path(name): Path<String>,
) -> ServiceResult<Response> {
    if !state.store.delete_secret(&name).await? {
        return Err(ServiceError::not_found(format!("secret `{name}`")));
    }
    Ok(with_detail(StatusCode::NO_CONTENT, serde_json::json!({"name": name})))
}
