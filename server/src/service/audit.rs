//! The corpus-audit pipeline, shared by `pedigree audit` and the HTTP `audit` job: stream the
//! records of a corpus (read and sampled on a reader thread), score them in parallel batches on
//! the profile's lexical fast path into a [`detector::audit::Auditor`], and build the JSON
//! summary (every family's fraction with its interval, the top texts with evidence).

use std::sync::mpsc;

use detector::audit::{AuditOptions, AuditStats, Auditor, Reservoir};
use detector::Profile;

use super::{ServiceError, ServiceResult};

/// Result of streaming a corpus (or a part of one) through the auditor: what its estimates and
/// evidence need ([`AuditStats`]) and the record counts. Runs over disjoint parts of a corpus
/// [`merge`](AuditRun::merge) into the run over the whole.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AuditRun {
    pub stats: AuditStats,
    /// Records read (texts in the corpus).
    pub texts: u64,
    /// Malformed records skipped.
    pub skipped: u64,
    /// Empty texts ignored.
    pub empty: u64,
}

const BATCH: usize = 512;

/// Score a stream of records into an [`Auditor`]: records are read (and sampled) on a separate
/// thread and scored in parallel batches. `progress` is called after each batch.
pub fn audit_records<I>(
    profile: &Profile,
    records: I,
    opts: &AuditOptions,
    progress: &dyn Fn(u64),
) -> ServiceResult<AuditRun>
where
    I: Iterator<Item = datasets::Result<datasets::TextRecord>> + Send,
{
    // Audits score millions of texts on the lexical fast path; neural vectors at a few texts per
    // second would make that hours, so such profiles are refused here rather than scored NaN.
    if !profile.neural_tiers().is_empty() {
        return Err(ServiceError::Invalid(format!(
            "profile {:?} needs the neural tier(s) {:?}; audits run on lexical profiles only (build one with `--tiers lexical`)",
            profile.meta().name,
            profile.neural_tiers()
        )));
    }
    type Batch = Vec<(Option<usize>, datasets::TextRecord)>;
    let (tx, rx) = mpsc::sync_channel::<Batch>(4);
    // Without sampling nothing per text is kept: memory stays constant whatever the corpus size.
    let mut auditor = match opts.sample {
        None => Auditor::streaming(profile, opts),
        Some(_) => Auditor::new(opts),
    };
    let sample = opts.sample;
    let seed = opts.seed;
    std::thread::scope(|s| -> ServiceResult<AuditRun> {
        let reader = s.spawn(move || -> ServiceResult<(u64, u64, u64)> {
            let mut res = sample.map(|k| Reservoir::new(k, seed));
            let (mut texts, mut skipped, mut empty) = (0u64, 0u64, 0u64);
            let mut batch: Batch = Vec::with_capacity(BATCH);
            for r in records {
                let r = match r {
                    Ok(r) => r,
                    Err(e) if e.is_record_error() => {
                        skipped += 1;
                        if skipped <= 5 {
                            eprintln!("skipping: {e}");
                        }
                        continue;
                    }
                    Err(e) => return Err(ServiceError::Invalid(e.to_string())),
                };
                if r.text.trim().is_empty() {
                    empty += 1;
                    continue;
                }
                texts += 1;
                let slot = match res.as_mut() {
                    None => None,
                    Some(res) => match res.offer() {
                        None => continue,
                        Some(i) => Some(i),
                    },
                };
                batch.push((slot, r));
                if batch.len() == BATCH
                    && tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).is_err()
                {
                    break;
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
            Ok((texts, skipped, empty))
        });
        let mut done = 0u64;
        for batch in rx {
            let texts: Vec<&str> = batch.iter().map(|(_, r)| r.text.as_str()).collect();
            let scores = detector::audit::score_batch_families(profile, &texts);
            for ((slot, r), (post, sc)) in batch.iter().zip(scores) {
                auditor.record(
                    *slot,
                    sc,
                    &post,
                    &r.text,
                    r.id.as_deref(),
                    r.source.as_deref(),
                    r.line,
                );
            }
            done += batch.len() as u64;
            progress(done);
        }
        let (texts, skipped, empty) = reader
            .join()
            .map_err(|_| ServiceError::Internal("reader thread panicked".into()))??;
        Ok(AuditRun { stats: auditor.stats(profile, opts), texts, skipped, empty })
    })
}

impl AuditRun {
    /// Add the run over another, disjoint part of the same corpus (same profile and options).
    pub fn merge(&mut self, o: &AuditRun) -> ServiceResult<()> {
        self.stats.merge(&o.stats).map_err(ServiceError::Internal)?;
        self.texts += o.texts;
        self.skipped += o.skipped;
        self.empty += o.empty;
        Ok(())
    }
}

/// The JSON summary of an audit (what `pedigree audit` prints, and what an HTTP `audit` job
/// stores as its result): every family's fraction with its 95% interval and the top texts with
/// evidence; the second value is the upstream's estimate. `bytes`, `seconds` (since the audit began) and `read_secs` (scoring) feed the timing fields.
pub fn audit_summary(
    profile: &Profile,
    run: &AuditRun,
    opts: &AuditOptions,
    bytes: u64,
    seconds: f64,
    read_secs: f64,
) -> (serde_json::Value, detector::audit::AuditEstimate) {
    let fams = run.stats.estimate_families(
        profile.families(),
        profile.upstream(),
        profile.calibration(),
        opts,
    );
    let up = profile.upstream().to_string();
    let est = fams
        .iter()
        .find(|f| f.family == up)
        .map(|f| f.estimate.clone())
        .unwrap_or_else(|| run.stats.estimate(profile.calibration(), opts));
    let total_secs = seconds;
    let top: Vec<serde_json::Value> = run
        .stats
        .top
        .iter()
        .map(|t| {
            // Full scoring (with evidence) only for the few listed texts.
            let full = profile.score(&t.text, None);
            let evidence: Vec<_> = full.evidence.iter().take(5).collect();
            serde_json::json!({"score": t.score, "fpr": full.fpr, "family": full.family, "id": t.id, "source": t.source, "line": t.line, "text": t.text, "evidence": evidence})
        })
        .collect();
    let mut families = serde_json::Map::new();
    for f in &fams {
        let e = &f.estimate;
        families.insert(
            f.family.clone(),
            serde_json::json!({
                "fraction": e.fraction, "ci95": e.ci95, "se": e.se,
                "bounds": e.bounds, "fraction_mle": e.fraction_mle, "shift_box": e.shift_box,
                "calibrated_models": f.calibrated_models, "identified": f.identified,
                "model_shift_sd": {"own": e.own_shift_sd, "rest": e.rest_shift_sd},
                "method": e.method,
            }),
        );
    }
    let single: Vec<&str> =
        fams.iter().filter(|f| !f.identified).map(|f| f.family.as_str()).collect();
    let summary = serde_json::json!({
        "texts": run.texts,
        "scored": run.stats.scored,
        "estimated_from": est.n,
        "sampled": opts.sample.is_some(),
        "skipped_records": run.skipped,
        "empty_texts": run.empty,
        "families": families,
        "upstream": up,
        "families_note": format!(
            "each family's fraction is a one-vs-rest mixture estimate on its own (they need not sum to 1: \
             text of no known family counts for none). For a family calibrated on two or more models it is the \
             lower end of the identified set `bounds` (the least share over the plausible model-level shifts of \
             the corpus's unseen source models; `fraction_mle` is the estimate at no shift): style cannot tell \
             an unseen family as upstream-like as the known ones' spread allows from the upstream, so the set \
             can be wide. Families calibrated on fewer than two models ({}) \
             cannot be: with their only model left out the profile knows nothing of them, so their \
             fraction is a lower bound and their interval reaches 1 (identified: false)",
            if single.is_empty() { "none here".to_string() } else { single.join(", ") }
        ),
        "method": est.method,
        "bootstrap": est.bootstrap,
        "source_models": opts.source_models,
        "model_mix": opts.model_mix,
        "profile": profile.meta().name,
        "bytes": bytes,
        "seconds": total_secs,
        "scoring_seconds": read_secs,
        "bytes_per_second": bytes as f64 / read_secs.max(1e-9),
        "top_texts": top,
    });
    (summary, est)
}
