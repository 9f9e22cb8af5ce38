//! Suspects and their set-level verdicts: lookup, the verdict refresh (computed from the
//! stored scores and cached on the suspect for the listing), and the content hash that
//! deduplicates samples.

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
    pub profile: String,
    /// −log10 p: the ordering key of the dashboard listing.
    pub strength: f64,
    /// `n`, `statistic`, `effect_size`, `p_value`, `alpha`, `decision`, `teacher`, `families`,
    /// `growth`, `top_samples` (indices into the suspect's scored samples).
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
    let json = serde_json::to_value(&verdict).map_err(|e| ServiceError::Internal(e.to_string()))?;
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
        profile: profile_name,
        strength,
        verdict,
        top_evidence,
        membership: crate::service::membership::latest(store, id).await?,
    })
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
