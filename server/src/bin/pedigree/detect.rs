//! Detection subcommands of the `pedigree` CLI: `profile build`, `score`, `verdict`, `bench`.
//! (`main.rs` flattens [`DetectCommand`] into the CLI.) The logic lives in the `detector` and
//! `datasets` crates; this module only parses flags, streams files and prints.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use datasets::bench::BenchDir;
use detector::features::FeatureConfig;
use detector::linear::TrainOptions;
use detector::{FitOptions, Profile, TextScore, VerdictOptions};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum DetectCommand {
    /// Build or inspect profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Score texts: JSONL (or any format `datasets` reads) in, one JSON result per line out.
    Score(ScoreArgs),
    /// The set-level view of a suspect from a file of its responses: identity evidence first
    /// (explicit self-identification by family, style cues apart), then the style triage (rank
    /// among known independent models; always undecided: the decision needs the served-output
    /// membership test, `pedigree membership`).
    Verdict(VerdictArgs),
    /// Run the bench protocol on a benchmark directory and print its metrics.
    Bench(BenchArgs),
    /// Estimate what fraction of a corpus each family generated (training-data audit).
    Audit(crate::corpus_audit::AuditArgs),
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Fit a profile on a benchmark directory's known models (train prompts) and calibrate it
    /// leave-one-model-out on their test-prompt answers.
    Build(BuildArgs),
    /// Print a profile's metadata as JSON (the built-in one when no file is given).
    Show {
        #[arg(env = "PEDIGREE_PROFILE")]
        file: Option<PathBuf>,
    },
}

/// Model and feature settings shared by `profile build` and `bench`.
#[derive(Debug, Args, Clone)]
pub struct FitArgs {
    /// log2 of the word n-gram hash buckets.
    #[arg(long, default_value_t = FeatureConfig::default().word_bits, env = "PEDIGREE_WORD_BITS")]
    pub word_bits: u32,
    /// log2 of the character n-gram hash buckets (0 disables character n-grams).
    #[arg(long, default_value_t = FeatureConfig::default().char_bits, env = "PEDIGREE_CHAR_BITS")]
    pub char_bits: u32,
    /// SGD epochs.
    #[arg(long, default_value_t = TrainOptions::default().epochs, env = "PEDIGREE_EPOCHS")]
    pub epochs: usize,
    /// L2 penalty.
    #[arg(long, default_value_t = TrainOptions::default().alpha, env = "PEDIGREE_L2")]
    pub l2: f32,
    /// Weight of the style block.
    #[arg(long, default_value_t = FeatureConfig::default().style_scale, env = "PEDIGREE_STYLE_SCALE")]
    pub style_scale: f32,
    /// log2 of the edge-word buckets (the answer's first 1-4 and last 2-3 words, by position); 0
    /// disables the block.
    #[arg(long, default_value_t = FeatureConfig::default().edge_bits, env = "PEDIGREE_EDGE_BITS", value_parser = clap::value_parser!(u32).range(0..=i64::from(detector::features::MAX_BITS)))]
    pub edge_bits: u32,
    /// Weight of the edge-word block.
    #[arg(long, default_value_t = FeatureConfig::default().edge_scale, env = "PEDIGREE_EDGE_SCALE")]
    pub edge_scale: f32,
    /// Feature tiers: lexical (n-grams + style), neural (MiniLM embeddings, needs the weights of
    /// `scripts/fetch-models.sh`), or both.
    #[arg(long, value_enum, default_value_t = Tiers::Lexical, env = "PEDIGREE_TIERS")]
    pub tiers: Tiers,
    /// Expected norm of the standardised neural block (the lexical blocks have norm 1).
    #[arg(long, default_value_t = 1.0, env = "PEDIGREE_NEURAL_SCALE")]
    pub neural_scale: f32,
}

/// Which feature tiers a profile uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tiers {
    Lexical,
    Neural,
    Both,
}

impl Tiers {
    fn neural(self) -> bool {
        self != Tiers::Lexical
    }
}

impl FitArgs {
    fn options(&self, dir: &BenchDir) -> FitOptions {
        self.options_with(dir, self.tiers)
    }

    fn options_with(&self, dir: &BenchDir, tiers: Tiers) -> FitOptions {
        let dataset = serde_json::json!({
            "name": dir.manifest.name,
            "source": dir.manifest.source,
            "license": dir.manifest.license,
            "split": "train prompts for fitting, test prompts for calibration",
        });
        let name = format!("{}-{}", dir.manifest.upstream, dir.manifest.name);
        self.options_named(&name, &dir.manifest.upstream, tiers, dataset)
    }

    fn options_named(
        &self,
        name: &str,
        upstream: &str,
        tiers: Tiers,
        dataset: serde_json::Value,
    ) -> FitOptions {
        FitOptions {
            name: name.to_string(),
            upstream: upstream.to_string(),
            features: FeatureConfig {
                word_bits: self.word_bits,
                char_bits: self.char_bits,
                style_scale: self.style_scale,
                edge_bits: self.edge_bits,
                edge_scale: self.edge_scale,
                ..FeatureConfig::default()
            },
            train: TrainOptions { epochs: self.epochs, alpha: self.l2, ..TrainOptions::default() },
            lexical: tiers != Tiers::Neural,
            dense_tiers: if tiers.neural() {
                vec![detector::dense::TIER_EMBEDDING.to_string()]
            } else {
                Vec::new()
            },
            dense_scale: self.neural_scale,
            dataset,
        }
    }
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Benchmark directory (manifest.json + samples.jsonl; its prompt lists split the data), or
    /// a labelled JSONL file (`{"text", "model", "family", "prompt", "split"}` a line, the
    /// format of `POST /v1/profiles/build`, split by the same policy).
    #[arg(long, env = "PEDIGREE_DATASET")]
    pub dataset: PathBuf,
    /// Labelled file only: the profile's name (default: the file's stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Labelled file only: the upstream family the profile detects (default `openai`).
    #[arg(long)]
    pub upstream: Option<String>,
    /// Where to write the profile.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub fit: FitArgs,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Profile file (default: the built-in profile).
    #[arg(long, env = "PEDIGREE_PROFILE")]
    pub profile: Option<PathBuf>,
    /// Input file (`-` or absent: JSONL on stdin).
    pub input: Option<PathBuf>,
    /// Input format (default: detected). One of jsonl, alpaca-eval, fastchat, sharegpt, openai-chat, csv:COLUMN, bench.
    #[arg(long)]
    pub format: Option<String>,
    /// Leave out the evidence (faster, smaller output).
    #[arg(long)]
    pub no_evidence: bool,
}

#[derive(Debug, Args)]
pub struct VerdictArgs {
    /// Profile file (default: the built-in profile).
    #[arg(long, env = "PEDIGREE_PROFILE")]
    pub profile: Option<PathBuf>,
    /// The suspect's responses (any format `datasets` reads).
    pub samples: PathBuf,
    #[arg(long)]
    pub format: Option<String>,
    /// Significance level, in (0, 0.5).
    #[arg(long, default_value_t = 0.01, value_parser = parse_alpha)]
    pub alpha: f64,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Benchmark directory.
    pub dir: PathBuf,
    /// Also write a markdown report (with an SVG ROC plot beside it).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Exit with status 1 when a metric is below the published baseline.
    #[arg(long)]
    pub check: bool,
    /// Exit with status 1 when a metric falls below the figures recorded in FILE (a previous
    /// run's JSON line): the regression gate CI runs. The bench is deterministic (fixed seeds), so
    /// any drop beyond rounding is a real change.
    #[arg(long, value_name = "FILE")]
    pub no_regression_from: Option<PathBuf>,
    /// Also run the protocol with lexical only, neural only and both tiers, and report all three
    /// (the neural tier embeds every response once, ~10 texts/s on 2 cores, cached afterwards in
    /// `.cache/embeddings`).
    #[arg(long)]
    pub ablation: bool,
    #[command(flatten)]
    pub fit: FitArgs,
}

pub fn run(cmd: DetectCommand) -> anyhow::Result<()> {
    match cmd {
        DetectCommand::Profile(ProfileCommand::Build(a)) => build(a),
        DetectCommand::Profile(ProfileCommand::Show { file }) => {
            let p = load_profile(file.as_deref())?;
            out_line(&serde_json::to_string_pretty(p.meta())?)?;
            Ok(())
        }
        DetectCommand::Score(a) => score(a),
        DetectCommand::Verdict(a) => verdict(a),
        DetectCommand::Bench(a) => bench(a),
        DetectCommand::Audit(a) => crate::corpus_audit::run(a),
    }
}

/// Print one line to stdout, returning (rather than panicking on) a closed pipe.
fn out_line(s: &str) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    writeln!(o, "{s}")?;
    o.flush()
}

/// The named profile file, or the built-in one.
pub fn load_profile(path: Option<&Path>) -> anyhow::Result<Profile> {
    Ok(server::service::profiles::load(path)?)
}

fn spinner(msg: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("template"));
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb.set_message(msg.to_string());
    pb
}

fn build(a: BuildArgs) -> anyhow::Result<()> {
    let p = if a.dataset.is_file() {
        build_labelled(&a)?
    } else {
        if a.name.is_some() || a.upstream.is_some() {
            bail!("--name and --upstream are for a labelled file; a bench directory's manifest names both");
        }
        let dir = BenchDir::load(&a.dataset)?;
        let pb = spinner("fitting profile and leave-one-model-out calibration");
        let dense = bench_dense(&dir, a.fit.tiers.neural())?;
        let p = detector::bench::profile_from_bench(&dir, &a.fit.options(&dir), dense.as_ref())?;
        pb.finish_and_clear();
        p
    };
    p.save(&a.out)?;
    eprintln!("wrote {} ({} bytes)", a.out.display(), std::fs::metadata(&a.out)?.len());
    out_line(&serde_json::to_string_pretty(p.meta())?)?;
    Ok(())
}

/// A profile from a labelled JSONL file, split by the project's one policy (`datasets::labelled`).
fn build_labelled(a: &BuildArgs) -> anyhow::Result<Profile> {
    if a.fit.tiers != Tiers::Lexical {
        bail!("a labelled file fits lexical profiles only (--tiers lexical); neural tiers need a bench directory");
    }
    let rows = datasets::read_labelled(&a.dataset)?;
    let stem = a.dataset.file_stem().map(|s| s.to_string_lossy().to_string());
    let name = a.name.clone().or(stem).unwrap_or_else(|| "labelled".into());
    let upstream = a.upstream.as_deref().unwrap_or("openai");
    let opts = a.fit.options_named(&name, upstream, Tiers::Lexical, serde_json::Value::Null);
    let pb = spinner("fitting profile and leave-one-model-out calibration");
    let p = server::service::profiles::fit_labelled(&rows, &a.dataset.display().to_string(), opts)?;
    pb.finish_and_clear();
    Ok(p)
}

fn parse_format(f: &Option<String>) -> anyhow::Result<Option<datasets::Format>> {
    f.as_deref().map(|s| s.parse::<datasets::Format>().map_err(anyhow::Error::from)).transpose()
}

/// Stream records from a file (any supported format) or JSONL from stdin.
fn records(
    input: Option<&Path>,
    format: &Option<String>,
) -> anyhow::Result<Box<dyn Iterator<Item = anyhow::Result<datasets::TextRecord>>>> {
    match input {
        Some(p) if p != Path::new("-") => {
            let it = datasets::open(p, parse_format(format)?)?;
            Ok(Box::new(it.map(|r| r.map_err(anyhow::Error::from))))
        }
        // stdin goes through the same streaming reader as files (JSONL unless --format says
        // otherwise), so it gets the same validation and error messages.
        _ => {
            let fmt = parse_format(format)?.unwrap_or(datasets::Format::Jsonl);
            let it = datasets::open(Path::new("/dev/stdin"), Some(fmt))?;
            Ok(Box::new(it.map(|r| r.map_err(anyhow::Error::from))))
        }
    }
}

fn score(a: ScoreArgs) -> anyhow::Result<()> {
    let p = load_profile(a.profile.as_deref())?;
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    let mut batch: Vec<datasets::TextRecord> = Vec::with_capacity(1024);
    let mut tier = None;
    let mut flush = |batch: &mut Vec<datasets::TextRecord>,
                     out: &mut BufWriter<std::io::StdoutLock>|
     -> anyhow::Result<()> {
        let texts: Vec<(&str, Option<&str>)> =
            batch.iter().map(|r| (r.text.as_str(), r.prompt.as_deref())).collect();
        for (r, mut s) in
            batch.iter().zip(server::service::neural::score_batch(&p, &mut tier, &texts)?)
        {
            if a.no_evidence {
                s.evidence.clear();
            }
            let line = serde_json::json!({"id": r.id, "line": r.line, "score": s.score, "aligned": s.aligned, "fpr": s.fpr, "family": s.family, "families": s.families, "evidence": s.evidence, "claims": s.claims});
            writeln!(out, "{line}")?;
        }
        batch.clear();
        Ok(())
    };
    for r in records(a.input.as_deref(), &a.format)? {
        batch.push(r?);
        if batch.len() == batch.capacity() {
            flush(&mut batch, &mut out)?;
        }
    }
    flush(&mut batch, &mut out)?;
    out.flush()?;
    Ok(())
}

fn verdict(a: VerdictArgs) -> anyhow::Result<()> {
    let p = load_profile(a.profile.as_deref())?;
    let recs: Vec<datasets::TextRecord> =
        records(Some(&a.samples), &a.format)?.collect::<anyhow::Result<_>>()?;
    if recs.is_empty() {
        bail!("{}: no responses to judge", a.samples.display());
    }
    let texts: Vec<(&str, Option<&str>)> =
        recs.iter().map(|r| (r.text.as_str(), r.prompt.as_deref())).collect();
    let scores: Vec<TextScore> = server::service::neural::score_batch(&p, &mut None, &texts)?;
    let v = p.verdict(&scores, &VerdictOptions { alpha: a.alpha, ..VerdictOptions::default() });
    let top: Vec<serde_json::Value> = v
        .top_samples
        .iter()
        .map(|&i| serde_json::json!({"index": i, "id": recs[i].id, "score": scores[i].score, "fpr": scores[i].fpr, "evidence": scores[i].evidence.iter().take(5).collect::<Vec<_>>()}))
        .collect();
    // Identity evidence first (keys print sorted: `identity` < `top_samples` < `verdict`), and
    // the style verdict as what it is: triage, always undecided.
    let mut identity = detector::identity::IdentityEvidence::new("responses");
    for (r, s) in recs.iter().zip(&scores) {
        identity.add(r.prompt.as_deref(), &s.claims, true);
    }
    let identity = identity.finish();
    eprintln!("identity: {}", identity.summary);
    if let Some(t) = &v.triage {
        eprintln!("style triage: {}", t.summary);
    }
    out_line(&serde_json::to_string_pretty(
        &serde_json::json!({"identity": identity, "verdict": v, "top_samples": top}),
    )?)?;
    Ok(())
}

fn bench(a: BenchArgs) -> anyhow::Result<()> {
    let dir = BenchDir::load(&a.dir)?;
    let pb = spinner("bench");
    let dense = bench_dense(&dir, a.fit.tiers.neural() || a.ablation)?;
    let run = detector::bench::run(&dir, &a.fit.options(&dir), dense.as_ref(), &|m| {
        pb.set_message(m.to_string())
    })?;
    let mut ablation = Vec::new();
    if a.ablation {
        for t in [Tiers::Lexical, Tiers::Neural, Tiers::Both] {
            let m = if t == a.fit.tiers {
                run.metrics.clone()
            } else {
                pb.set_message(format!("ablation: {t:?} tiers"));
                detector::bench::run(&dir, &a.fit.options_with(&dir, t), dense.as_ref(), &|_| {})?
                    .metrics
            };
            ablation.push((t, m));
        }
    }
    pb.finish_and_clear();
    let mut run = run;
    if !ablation.is_empty() {
        run.metrics.extra.insert(
            "ablation".into(),
            serde_json::json!(ablation
                .iter()
                .map(|(t, m)| (format!("{t:?}").to_lowercase(), m))
                .collect::<std::collections::BTreeMap<_, _>>()),
        );
    }
    let table = server::report::bench_table(&run);
    eprintln!("{table}");
    if let Some(path) = &a.report {
        server::report::write_bench_report(path, &dir, &run)?;
        eprintln!("report written to {}", path.display());
    }
    out_line(&serde_json::to_string(&run.metrics)?)?;
    if let Some(path) = &a.no_regression_from {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let old: datasets::metrics::BenchMetrics = serde_json::from_str(text.trim())
            .with_context(|| format!("{}: not a bench JSON object", path.display()))?;
        let drops = regressions(&old, &run.metrics);
        if !drops.is_empty() {
            bail!("bench regressed against {}: {}", path.display(), drops.join(", "));
        }
        eprintln!("no regression against {}", path.display());
    }
    if a.check {
        let failed: Vec<_> = datasets::metrics::compare_to_baseline(&run.metrics)
            .into_iter()
            .filter(|c| !c.ok)
            .collect();
        if !failed.is_empty() {
            bail!(
                "below the baseline: {}",
                failed
                    .iter()
                    .map(|c| format!("{} {} < {}", c.key, c.ours, c.baseline))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(())
}

/// Neural vectors of every response in the bench directory when `needed` (cached on disk).
fn bench_dense(
    dir: &BenchDir,
    needed: bool,
) -> anyhow::Result<Option<detector::dense::DenseTable>> {
    if !needed {
        return Ok(None);
    }
    let tier = server::service::neural::NeuralTier::load()
        .context("the neural tier needs the model weights")?;
    let texts: Vec<&str> = dir.samples.iter().map(|s| s.response.as_str()).collect();
    let pb = ProgressBar::new(texts.len() as u64);
    pb.set_style(
        ProgressStyle::with_template("embedding {bar:30} {pos}/{len} ({per_sec}, eta {eta})")
            .expect("template"),
    );
    let table = tier.table(
        &[detector::dense::TIER_EMBEDDING.to_string()],
        texts,
        Some(&server::service::neural::default_cache_dir()),
        &|done, _| pb.set_position(done as u64),
    )?;
    pb.finish_and_clear();
    Ok(Some(table))
}

/// Metrics of `new` that are worse than `old` (numbers by more than 0.005; flagged counts by any).
// Comparisons are written negated on purpose: a NaN figure (a metric that could not be computed)
// counts as a regression.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
pub fn regressions(
    old: &datasets::metrics::BenchMetrics,
    new: &datasets::metrics::BenchMetrics,
) -> Vec<String> {
    use datasets::metrics::parse_fraction;
    let mut out = Vec::new();
    let nums = [
        ("sample_auroc_upstream", old.sample_auroc_upstream, new.sample_auroc_upstream),
        (
            "sample_tpr_at_1fpr_upstream",
            old.sample_tpr_at_1fpr_upstream,
            new.sample_tpr_at_1fpr_upstream,
        ),
        ("sample_auroc_student", old.sample_auroc_student, new.sample_auroc_student),
        (
            "sample_tpr_at_1fpr_student",
            old.sample_tpr_at_1fpr_student,
            new.sample_tpr_at_1fpr_student,
        ),
        ("suspect_auroc@10", old.suspect_auroc_at_10, new.suspect_auroc_at_10),
        ("suspect_auroc@50", old.suspect_auroc_at_50, new.suspect_auroc_at_50),
        ("suspect_auroc@all", old.suspect_auroc_at_all, new.suspect_auroc_at_all),
    ];
    for (k, o, n) in nums {
        if !(n >= o - 0.005) {
            out.push(format!("{k} {n:.3} < {o:.3}"));
        }
    }
    let frac = |s: &str| parse_fraction(s).map_or(f64::NAN, |(k, n)| k as f64 / n.max(1) as f64);
    for (k, o, n, higher_is_better) in [
        (
            "verdict_students_flagged",
            &old.verdict_students_flagged,
            &new.verdict_students_flagged,
            true,
        ),
        ("teacher_correct", &old.teacher_correct, &new.teacher_correct, true),
        (
            "verdict_independents_flagged",
            &old.verdict_independents_flagged,
            &new.verdict_independents_flagged,
            false,
        ),
    ] {
        let (o, n) = (frac(o), frac(n));
        let worse = if higher_is_better { !(n >= o) } else { !(n <= o) };
        if worse {
            out.push(format!("{k} {n:.3} vs {o:.3}"));
        }
    }
    // The held-out validation (unseen families vs unseen upstream versions) is gated like the dev
    // metrics whenever the recorded run has it: a change that helps the dev split by fitting its
    // quirks shows here as a drop.
    let held_out = |m: &datasets::metrics::BenchMetrics, k: &str| {
        m.extra.get("validation_lofo").and_then(|v| v[k].as_f64())
    };
    for k in ["sample_auroc", "model_auroc", "model_auroc@10", "model_auroc@50"] {
        if let Some(o) = held_out(old, k) {
            let n = held_out(new, k).unwrap_or(f64::NAN);
            if !(n >= o - 0.005) {
                out.push(format!("validation_lofo.{k} {n:.3} < {o:.3}"));
            }
        }
    }
    // The audit on families left out whole (issue 13's bar: an all-independent corpus read
    // ≤ 0.05, intervals covering the truth): gated when the recorded run has it.
    let audit = |m: &datasets::metrics::BenchMetrics| m.extra.get("audit_lofo").cloned();
    if let Some(o) = audit(old).filter(|o| o.is_object()) {
        let n = audit(new).unwrap_or_default();
        let (om, nm) = (
            o["max_estimate_all_independent"].as_f64().unwrap_or(f64::NAN),
            n["max_estimate_all_independent"].as_f64().unwrap_or(f64::NAN),
        );
        if !(nm <= om.max(0.05) + 0.005) {
            out.push(format!("audit_lofo.max_estimate_all_independent {nm:.3} > {om:.3}"));
        }
        let covered = |v: &serde_json::Value| {
            v["covered"]
                .as_str()
                .and_then(parse_fraction)
                .map_or(f64::NAN, |(k, n)| k as f64 / n.max(1) as f64)
        };
        let (oc, nc) = (covered(&o), covered(&n));
        if !(nc >= oc) {
            out.push(format!("audit_lofo.covered {nc:.3} < {oc:.3}"));
        }
    }
    out
}

/// `--alpha`: a number that [`VerdictOptions::check_alpha`] accepts.
fn parse_alpha(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .map_err(|e| format!("{s}: {e}"))
        .and_then(|a| VerdictOptions::check_alpha(a).map_err(|e| e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(auroc: f64, flagged: &str, indep: &str) -> datasets::metrics::BenchMetrics {
        serde_json::from_value(serde_json::json!({
            "sample_auroc_upstream": auroc, "sample_tpr_at_1fpr_upstream": 0.1, "sample_auroc_student": 0.7,
            "sample_tpr_at_1fpr_student": 0.02, "suspect_auroc@10": 0.9, "suspect_auroc@50": 0.9, "suspect_auroc@all": 0.9,
            "verdict_students_flagged": flagged, "verdict_independents_flagged": indep, "teacher_correct": "8/8"
        }))
        .expect("metrics")
    }

    #[test]
    fn regression_gate_catches_drops_and_false_alarms() {
        let old = m(0.83, "1/8", "0/4");
        assert!(
            regressions(&old, &m(0.828, "1/8", "0/4")).is_empty(),
            "rounding-level change is not a regression"
        );
        assert_eq!(regressions(&old, &m(0.80, "1/8", "0/4")).len(), 1);
        assert_eq!(regressions(&old, &m(0.83, "0/8", "0/4")).len(), 1);
        assert_eq!(regressions(&old, &m(0.83, "1/8", "1/4")).len(), 1);
        assert_eq!(regressions(&old, &m(f64::NAN, "1/8", "0/4")).len(), 1, "NaN must fail");
        // The held-out validation is gated when the recorded run has it, and missing counts as a
        // drop; a recorded run without it gates nothing there.
        let with = |x: f64| {
            let mut r = m(0.83, "1/8", "0/4");
            r.extra.insert(
                "validation_lofo".into(),
                serde_json::json!({"sample_auroc": 0.62, "model_auroc": x}),
            );
            r
        };
        assert!(regressions(&with(0.86), &with(0.858)).is_empty());
        assert_eq!(
            regressions(&with(0.86), &with(0.80)),
            vec!["validation_lofo.model_auroc 0.800 < 0.860"]
        );
        assert_eq!(regressions(&with(0.86), &old).len(), 2);
        assert!(regressions(&old, &with(0.1)).is_empty());
        // The family-held-out audit: a larger all-independent estimate (beyond 0.05) or fewer
        // covering intervals fail; the same or better passes.
        let audit = |max: f64, covered: &str| {
            let mut r = m(0.83, "1/8", "0/4");
            r.extra.insert(
                "audit_lofo".into(),
                serde_json::json!({"max_estimate_all_independent": max, "covered": covered}),
            );
            r
        };
        assert!(regressions(&audit(0.0, "24/24"), &audit(0.03, "24/24")).is_empty());
        assert_eq!(
            regressions(&audit(0.0, "24/24"), &audit(0.2, "24/24")),
            vec!["audit_lofo.max_estimate_all_independent 0.200 > 0.000"]
        );
        assert_eq!(regressions(&audit(0.0, "24/24"), &audit(0.0, "23/24")).len(), 1);
        assert_eq!(regressions(&audit(0.0, "24/24"), &old).len(), 2, "missing counts as a drop");
    }
}
