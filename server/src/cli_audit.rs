//! `pedigree audit`: estimate what fraction of a training corpus each model family generated.
//!
//! Streams the corpus (any format the `datasets` crate reads; memory is 8 + 4 × families bytes
//! per scored text plus a few top texts), scores every text (or a seeded reservoir sample of
//! `--sample K`) with the profile's fast path on a reader thread + parallel scorer, and estimates
//! every family's fraction with a 95% interval with [`detector::audit::estimate_families`]
//! (one-vs-rest mixture MLEs against the profile's leave-one-model-out calibration
//! distributions; see that module for the method). Progress is an indicatif bar on stderr, by
//! bytes. The JSON summary is printed alone on the last line of stdout.
//!
//! Note for the HTTP side: an `audit` job type can reuse [`audit_records`] unchanged (it takes
//! any iterator of records and a progress callback).

use crate::cli_detect::load_profile;
use anyhow::Context;
use clap::Args;
use detector::audit::{AuditOptions, Auditor, Reservoir};
use detector::Profile;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Profile file (default: the built-in profile).
    #[arg(long, env = "PEDIGREE_PROFILE")]
    pub profile: Option<PathBuf>,
    /// The corpus to audit (any format the datasets crate reads).
    pub corpus: PathBuf,
    /// Corpus format (default: detected). One of jsonl, alpaca-eval, fastchat, sharegpt, openai-chat, csv:COLUMN, bench.
    #[arg(long)]
    pub format: Option<String>,
    /// Score only a uniform random sample of K texts (seeded reservoir sampling).
    #[arg(long)]
    pub sample: Option<usize>,
    /// Seed of the sample and of the bootstrap.
    #[arg(long, default_value_t = AuditOptions::default().seed)]
    pub seed: u64,
    /// Bootstrap replicates of the confidence interval.
    #[arg(long, default_value_t = AuditOptions::default().bootstrap)]
    pub bootstrap: usize,
    /// Assumed number of distinct models behind each mixture component of the corpus (sets the
    /// between-model term of the interval; smaller = wider; 0 = ignore model-level variation).
    #[arg(long, default_value_t = AuditOptions::default().source_models)]
    pub source_models: usize,
    /// Model-level term by composition (each bootstrap replicate draws `--source-models`
    /// calibration models per component) instead of a location shift: honest when the corpus's
    /// other text may come from a few models unlike the calibration mix; much wider.
    #[arg(long)]
    pub model_mix: bool,
    /// How many most upstream-like texts to list as evidence.
    #[arg(long, default_value_t = AuditOptions::default().top)]
    pub top: usize,
}

/// Result of streaming a corpus through the auditor.
pub struct AuditRun {
    pub auditor: Auditor,
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
) -> anyhow::Result<AuditRun>
where
    I: Iterator<Item = datasets::Result<datasets::TextRecord>> + Send,
{
    // Audits score millions of texts on the lexical fast path; neural vectors at a few texts per
    // second would make that hours, so such profiles are refused here rather than scored NaN.
    if !profile.neural_tiers().is_empty() {
        anyhow::bail!(
            "profile {:?} needs the neural tier(s) {:?}; audits run on lexical profiles only (build one with `--tiers lexical`)",
            profile.meta().name,
            profile.neural_tiers()
        );
    }
    type Batch = Vec<(Option<usize>, datasets::TextRecord)>;
    let (tx, rx) = mpsc::sync_channel::<Batch>(4);
    let mut auditor = Auditor::new(opts);
    let sample = opts.sample;
    let seed = opts.seed;
    std::thread::scope(|s| -> anyhow::Result<AuditRun> {
        let reader = s.spawn(move || -> anyhow::Result<(u64, u64, u64)> {
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
                    Err(e) => return Err(e.into()),
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
        let (texts, skipped, empty) =
            reader.join().map_err(|_| anyhow::anyhow!("reader thread panicked"))??;
        Ok(AuditRun { auditor, texts, skipped, empty })
    })
}

/// The JSON summary of an audit (what `pedigree audit` prints, and what an HTTP `audit` job
/// stores as its result): every family's fraction with its 95% interval and the top texts with
/// evidence; the second value is the upstream's estimate. `bytes`, `start` (when the audit began) and `read_secs` feed the timing fields.
pub fn audit_summary(
    profile: &Profile,
    run: &AuditRun,
    opts: &AuditOptions,
    bytes: u64,
    start: Instant,
    read_secs: f64,
) -> (serde_json::Value, detector::audit::AuditEstimate) {
    let fams = run.auditor.estimate_families(profile, opts);
    let up = profile.upstream().to_string();
    let est = fams
        .iter()
        .find(|f| f.family == up)
        .map(|f| f.estimate.clone())
        .unwrap_or_else(|| run.auditor.estimate(profile.calibration(), opts));
    let total_secs = start.elapsed().as_secs_f64();
    let top: Vec<serde_json::Value> = run
        .auditor
        .top_texts()
        .into_iter()
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
        "scored": run.auditor.scored(),
        "estimated_from": est.n,
        "sampled": opts.sample.is_some(),
        "skipped_records": run.skipped,
        "empty_texts": run.empty,
        "families": families,
        "upstream": up,
        "families_note": format!(
            "each family's fraction is a one-vs-rest mixture estimate on its own (they need not sum to 1: \
             text of no known family counts for none). Families calibrated on fewer than two models ({}) \
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

pub fn run(a: AuditArgs) -> anyhow::Result<()> {
    let profile = load_profile(a.profile.as_deref())?;
    let opts = AuditOptions {
        bootstrap: a.bootstrap,
        seed: a.seed,
        source_models: a.source_models,
        top: a.top,
        sample: a.sample,
        model_mix: a.model_mix,
        ..AuditOptions::default()
    };
    let format = a.format.as_deref().map(|s| s.parse::<datasets::Format>()).transpose()?;
    let records = datasets::open(&a.corpus, format)
        .with_context(|| format!("opening {}", a.corpus.display()))?;
    let total = records.total_bytes();
    let counter = records.progress_counter();
    let pb = match total {
        Some(t) => {
            let pb = ProgressBar::new(t);
            pb.set_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}")
                    .expect("template")
                    .progress_chars("=> "),
            );
            pb
        }
        None => ProgressBar::new_spinner(),
    };
    pb.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let start = Instant::now();
    let run = audit_records(&profile, records, &opts, &|n| {
        pb.set_position(counter.load(std::sync::atomic::Ordering::Relaxed));
        pb.set_message(format!("{n} texts scored"));
    })?;
    let read_secs = start.elapsed().as_secs_f64();
    let bytes = counter.load(std::sync::atomic::Ordering::Relaxed).max(total.unwrap_or(0));
    pb.finish_and_clear();
    if run.texts == 0 {
        anyhow::bail!("{}: no texts to audit", a.corpus.display());
    }
    let (summary, _) = audit_summary(&profile, &run, &opts, bytes, start, read_secs);
    // Human-readable summary on stderr; the machine-readable one alone on stdout's last line.
    eprintln!(
        "{}: {} texts, {:.1} MB/s",
        a.corpus.display(),
        run.texts,
        bytes as f64 / read_secs.max(1e-9) / 1e6
    );
    for (fam, v) in summary["families"].as_object().into_iter().flatten() {
        let num =
            |x: &serde_json::Value| x.as_f64().map_or("–".to_string(), |x| format!("{x:.3}"));
        let tag =
            if v["identified"] == true { "" } else { " (lower bound: family not calibrated)" };
        eprintln!(
            "  {fam}: fraction {} (95% CI {}–{}){tag}",
            num(&v["fraction"]),
            num(&v["ci95"][0]),
            num(&v["ci95"][1])
        );
    }
    println!("{summary}");
    Ok(())
}
