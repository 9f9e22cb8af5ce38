//! `pedigree membership`: the served-output membership test from files.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use detector::membership::{self, Answer, Control, MembershipOptions};

/// Did the suspect train on the answers we served? Compares the suspect's answers with the
/// served answers and with fresh answers of the same snapshot to the same prompts (an exact
/// randomisation test; see `detector::membership`). Prints a summary, then the JSON report
/// alone on the last stdout line: {"decision": "trained_on_served"|"not_detected"|"invalid",
/// "p_value", "prompts", "effect", "evidence", …}.
#[derive(Debug, Args)]
pub struct MembershipArgs {
    /// The served log: the answers the provider served (any format with prompts: OpenAI chat
    /// logs, JSONL {prompt, response}, AlpacaEval, ShareGPT, CSV).
    #[arg(long, env = "PEDIGREE_SERVED")]
    pub served: PathBuf,
    /// Fresh answers of the same snapshot with the same settings to the same prompts. Repeat
    /// for several files (several fresh answers per prompt).
    #[arg(long, required = true, num_args = 1)]
    pub fresh: Vec<PathBuf>,
    /// Keep only the served answers logged for this account.
    #[arg(long, env = "PEDIGREE_ACCOUNT")]
    pub account: Option<String>,
    /// Negative control: answers of a model that cannot have seen the served log, to the same
    /// prompts. Repeatable. The test is refused (`invalid`) when a control is flagged.
    #[arg(long)]
    pub control: Vec<PathBuf>,
    /// Significance level, in (0, 0.5).
    #[arg(long, default_value_t = MembershipOptions::default().alpha, env = "PEDIGREE_ALPHA")]
    pub alpha: f64,
    /// Monte-Carlo relabellings of the test (99..=1000000); p-value resolution 1/(1+B).
    #[arg(long, default_value_t = MembershipOptions::default().permutations, env = "PEDIGREE_MEMBERSHIP_PERMUTATIONS")]
    pub permutations: usize,
    /// The exchangeability guard refuses to decide below this p-value, in (0, 0.5).
    #[arg(long, default_value_t = MembershipOptions::default().guard_alpha, env = "PEDIGREE_GUARD_ALPHA")]
    pub guard_alpha: f64,
    /// Relabellings of the guard (99..=100000).
    #[arg(long, default_value_t = MembershipOptions::default().guard_permutations, env = "PEDIGREE_GUARD_PERMUTATIONS")]
    pub guard_permutations: usize,
    /// Fewest matched prompts (5..=1000000).
    #[arg(long, default_value_t = MembershipOptions::default().min_prompts, env = "PEDIGREE_MIN_PROMPTS")]
    pub min_prompts: usize,
    /// Prompts listed as evidence (0..=100).
    #[arg(long, default_value_t = MembershipOptions::default().top_evidence, env = "PEDIGREE_TOP_EVIDENCE")]
    pub top: usize,
    /// Seed of the relabellings.
    #[arg(long, default_value_t = MembershipOptions::default().seed, env = "PEDIGREE_SEED")]
    pub seed: u64,
    /// The suspect's answers to the logged prompts.
    pub suspect: PathBuf,
}

fn read(path: &Path, account: Option<&str>) -> anyhow::Result<Vec<Answer>> {
    let answers = datasets::read_answers(path, None, account)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(answers.into_iter().map(|a| Answer { prompt: a.prompt, text: a.response }).collect())
}

pub fn run(args: MembershipArgs) -> anyhow::Result<()> {
    let opts = MembershipOptions {
        alpha: args.alpha,
        permutations: args.permutations,
        guard_permutations: args.guard_permutations,
        guard_alpha: args.guard_alpha,
        min_prompts: args.min_prompts,
        top_evidence: args.top,
        seed: args.seed,
    };
    opts.check()?;
    let served = read(&args.served, args.account.as_deref())?;
    let mut fresh = Vec::new();
    for f in &args.fresh {
        fresh.extend(read(f, None)?);
    }
    let suspect = read(&args.suspect, None)?;
    let controls = args
        .control
        .iter()
        .map(|p| {
            let name = p
                .file_stem()
                .map_or_else(|| p.display().to_string(), |s| s.to_string_lossy().into_owned());
            Ok(Control { name, answers: read(p, None)? })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = membership::run(&served, &fresh, &suspect, &controls, &opts)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "membership: {} (p = {:.3e}, {} prompts compared, {} informative; effect {:+.4}: served-specific reuse {:.4} vs fresh-specific {:.4})",
        report.decision.as_str(),
        report.p_value,
        report.prompts,
        report.informative_prompts,
        report.effect,
        report.served_reuse,
        report.fresh_reuse
    )?;
    writeln!(
        out,
        "guard: exchangeability p = {:.4} (shift z = {:.1}); {}",
        report.guard.p_value, report.guard.z, report.reason
    )?;
    for c in &report.controls {
        writeln!(out, "control {}: p = {:.4} on {} prompts", c.name, c.p_value, c.prompts)?;
    }
    for e in &report.evidence {
        writeln!(
            out,
            "evidence {:.1}: {:?}: {}/{} served-specific n-grams reused, {}/{} fresh-specific",
            e.evidence,
            e.prompt,
            e.served_specific[0],
            e.served_specific[1],
            e.fresh_specific[0],
            e.fresh_specific[1]
        )?;
    }
    writeln!(out, "{}", serde_json::to_string(&report)?)?;
    Ok(())
}

/// Summarise a served log per account: answers, distinct prompts, time span. Prints one JSON
/// object per account, then a JSON total alone on the last line.
#[derive(Debug, Args)]
pub struct ServedLogArgs {
    /// Only this account.
    #[arg(long, env = "PEDIGREE_ACCOUNT")]
    pub account: Option<String>,
    /// The served log (any format with prompts).
    pub file: PathBuf,
}

pub fn run_served_log(args: ServedLogArgs) -> anyhow::Result<()> {
    let answers = datasets::read_answers(&args.file, None, args.account.as_deref())
        .with_context(|| format!("reading {}", args.file.display()))?;
    let summary = datasets::summarize(&answers);
    let mut out = std::io::stdout().lock();
    for s in &summary {
        writeln!(out, "{}", serde_json::to_string(s)?)?;
    }
    let prompts: std::collections::HashSet<String> =
        answers.iter().map(|a| datasets::normalize_prompt(&a.prompt)).collect();
    let total = serde_json::json!({
        "accounts": summary.iter().filter(|s| s.account.is_some()).count(),
        "answers": answers.len(),
        "prompts": prompts.len(),
        "without_account": answers.iter().filter(|a| a.account.is_none()).count(),
    });
    writeln!(out, "{total}")?;
    Ok(())
}
