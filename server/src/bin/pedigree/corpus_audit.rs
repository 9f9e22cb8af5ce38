//! `pedigree audit`: estimate what fraction of a training corpus each model family generated.
//!
//! Streams the corpus (any format the `datasets` crate reads; memory is 8 + 4 × families bytes
//! per scored text plus a few top texts), scores every text (or a seeded reservoir sample of
//! `--sample K`) with the profile's fast path on a reader thread + parallel scorer, and estimates
//! every family's fraction with a 95% interval with [`detector::audit::estimate_families`]
//! (one-vs-rest mixture MLEs against the profile's leave-one-model-out calibration
//! distributions, over the plausible model-level shifts of the corpus's sources: the fraction is
//! the lower end of the identified set; see that module for the method). Progress is an indicatif bar on stderr, by
//! bytes. The JSON summary is printed alone on the last line of stdout.
//!
//! The pipeline itself ([`audit_records`], [`audit_summary`]) is `service::audit`, shared with
//! the HTTP `audit` job.

use anyhow::Context;
use clap::Args;
use detector::audit::AuditOptions;
use indicatif::{ProgressBar, ProgressStyle};
use server::service::audit::{audit_records, audit_summary};
use server::service::profiles::load as load_profile;
use std::path::PathBuf;
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
    /// Assumed number of distinct models behind each mixture component of the corpus, for the
    /// bootstrap's model draws (`--model-mix`, single-model families' lower bounds); 0 ignores
    /// model-level variation altogether, the shift box of the identified set included (which
    /// otherwise always assumes one unseen source model, the widest box).
    #[arg(long, default_value_t = AuditOptions::default().source_models)]
    pub source_models: usize,
    /// Model-level term by composition as well (each bootstrap replicate draws `--source-models`
    /// calibration models per component, then shifts them to the ends of the identified set):
    /// honest when the corpus's other text may come from a few models unlike the calibration
    /// mix; wider.
    #[arg(long)]
    pub model_mix: bool,
    /// How many most upstream-like texts to list as evidence.
    #[arg(long, default_value_t = AuditOptions::default().top)]
    pub top: usize,
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
    let (summary, _) =
        audit_summary(&profile, &run, &opts, bytes, start.elapsed().as_secs_f64(), read_secs);
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
        let set = if v["bounds"].is_array() {
            format!(
                "; identified set {}–{}, MLE at no shift {}",
                num(&v["bounds"][0]),
                num(&v["bounds"][1]),
                num(&v["fraction_mle"])
            )
        } else {
            String::new()
        };
        eprintln!(
            "  {fam}: fraction {} (95% CI {}–{}{set}){tag}",
            num(&v["fraction"]),
            num(&v["ci95"][0]),
            num(&v["ci95"][1])
        );
    }
    println!("{summary}");
    Ok(())
}
