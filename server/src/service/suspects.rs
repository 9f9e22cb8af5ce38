//! Suspects and their set-level verdicts: lookup, the verdict refresh (computed from the
//! stored scores and cached on the suspect for the listing), and the content hash that
//! deduplicates samples.

use detector::identity::IdentityEvidence;
use detector::verdict::strength;
use detector::{TextScore, Verdict, VerdictOptions};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ServiceError, ServiceResult};
use crate::service::engine::Engine;
use crate::store::{Store, SuspectRecord};

/// The suspect, or `NotFound`.
pub async fn suspect_or_404(store: &dyn Store, id: &str) -> ServiceResult<SuspectRecord> {
    store.get_suspect(id).await?.ok_or_else(|| ServiceError::NotFound(format!("suspect `{id}`")))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopEvidence {
    pub sample_id: i64,
    pub text: String,
    pub prompt: Option<String>,
    pub source: String,
    #[schema(value_type = Object)]
    pub score: TextScore,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerdictResponse {
    pub suspect_id: String,
    /// Identity evidence, first: explicit self-identification ("I am ChatGPT", "developed by
    /// OpenAI", "我是由OpenAI开发的") counted by family over the suspect's samples, the share of
    /// samples with one, up to 3 examples, and generic style cues ("As an AI language model",
    /// knowledge cutoffs) counted by kind only. Strong evidence to report, not a decision (models
    /// trained on web text sometimes claim to be ChatGPT); no style figure below overrides it.
    #[schema(value_type = Object)]
    pub identity: IdentityEvidence,
    pub profile: String,
    /// −log10 p of the style test: the ordering key of the dashboard listing (a ranking, not a
    /// decision).
    pub strength: f64,
    /// The style verdict, which is triage: `decision` is always `undecided`; `triage` gives the
    /// suspect's rank and percentile among the known independent reference models, the smallest
    /// p-value they support (1/(K+1)), the p-value and the prompt-aligned effect, and a sentence
    /// for reports. Also `n`, `statistic`, `effect_size`, `p_value`, `alpha`, `teacher` (the
    /// style-nearest family), `families`, `growth`, `top_samples` (indices into the suspect's
    /// scored samples), `error_check`. The decision comes from `membership`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub verdict: Verdict,
    /// The most upstream-like samples with their evidence spans, strongest first.
    pub top_evidence: Vec<TopEvidence>,
    /// The latest served-output membership result (`POST /v1/suspects/{id}/membership` or a
    /// served-log campaign), if any: the decision an exact test supports, beside the style
    /// evidence above (which is triage).
    pub membership: Option<crate::service::membership::MembershipSummary>,
}

/// Compute a suspect's verdict from its stored scores and cache it on the suspect.
pub async fn refresh_verdict(
    store: &dyn Store,
    engine: &Engine,
    id: &str,
    opts: VerdictOptions,
) -> ServiceResult<VerdictResponse> {
    let suspect = suspect_or_404(store, id).await?;
    let (profile_name, profile) = engine.resolve(Some(&suspect.profile))?;
    let rows = store.sample_scores(id).await?;
    if rows.is_empty() {
        return Err(ServiceError::Conflict(format!(
            "suspect `{id}` has no scored samples yet; add samples first"
        )));
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut scores = Vec::with_capacity(rows.len());
    for (sid, v) in rows {
        ids.push(sid);
        scores.push(
            serde_json::from_value::<TextScore>(v)
                .map_err(|e| ServiceError::Internal(format!("stored score: {e}")))?,
        );
    }
    let verdict = engine.verdict(profile, scores.clone(), opts).await?;
    let strength = strength(verdict.p_value);
    let identity = identity_evidence(store, &ids, &scores).await?;
    let mut json =
        serde_json::to_value(&verdict).map_err(|e| ServiceError::Internal(e.to_string()))?;
    // The listing shows the identity evidence beside the cached verdict.
    json["identity"] =
        serde_json::to_value(&identity).map_err(|e| ServiceError::Internal(e.to_string()))?;
    store.set_verdict(id, json, ids.len() as i64, strength).await?;
    let mut top_evidence = Vec::new();
    for &i in &verdict.top_samples {
        let (Some(&sid), Some(score)) = (ids.get(i), scores.get(i)) else { continue };
        if let Some(s) = store.get_sample(sid).await? {
            top_evidence.push(TopEvidence {
                sample_id: sid,
                text: s.text,
                prompt: s.prompt,
                source: s.source,
                score: score.clone(),
            });
        }
    }
    Ok(VerdictResponse {
        suspect_id: id.to_string(),
        identity,
        profile: profile_name,
        strength,
        verdict,
        top_evidence,
        membership: crate::service::membership::latest(store, id).await?,
    })
}

/// The identity evidence over a suspect's scored samples (`ids[i]` is the sample of
/// `scores[i]`); only the samples shown as examples are read back, for their prompts.
async fn identity_evidence(
    store: &dyn Store,
    ids: &[i64],
    scores: &[TextScore],
) -> ServiceResult<IdentityEvidence> {
    let mut e = IdentityEvidence::new("samples");
    for (&sid, s) in ids.iter().zip(scores) {
        let example = e.examples.len() < IdentityEvidence::MAX_EXAMPLES
            && s.claims.iter().any(|c| c.is_explicit());
        let prompt =
            if example { store.get_sample(sid).await?.and_then(|r| r.prompt) } else { None };
        e.add(prompt.as_deref(), &s.claims, true);
    }
    Ok(e.finish())
}

/// Content hash used to deduplicate samples: sha256 over the prompt and the text.
pub fn content_hash(text: &str, prompt: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(prompt.unwrap_or("").as_bytes());
    h.update([0u8]);
    h.update(text.as_bytes());
    hex::encode(h.finalize())
}
