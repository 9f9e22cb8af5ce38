//! `pedigree probe`: run a campaign in-process against the data directory's store. (The local
//! OpenAI-compatible replay of a benchmark model's answers is `pedigree-dev replay-server`.)

use clap::Args;
use server::config::StoreArgs;
use server::service::campaigns::{self as campaign, Budget, CampaignSpec, EndpointSpec};
use server::service::engine::Engine;
use server::service::probe::client::ClientOptions;
use server::service::probe::{allowlist, probesets};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// The same store as `pedigree serve` (--data, --database-url): campaign state, answers as samples.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Base URL of the suspect's OpenAI-compatible API, e.g. https://api.example.com/v1.
    #[arg(long, env = "PEDIGREE_PROBE_ENDPOINT")]
    pub endpoint: String,
    /// The `model` to ask.
    #[arg(long, env = "PEDIGREE_PROBE_MODEL")]
    pub model: String,
    /// Name of the secret with the suspect's API key (env PEDIGREE_SECRET_<NAME> or a stored
    /// secret). It is sent only to an endpoint it is bound to: the stored secret's `hosts`, or
    /// PEDIGREE_SECRET_<NAME>_HOSTS (comma-separated HOST:PORT) for one from the environment.
    #[arg(long, env = "PEDIGREE_PROBE_API_KEY_SECRET")]
    pub api_key_secret: Option<String>,
    /// `identity`, `general`, `identity+general` or a JSONL file (`{"prompt": …}` per line).
    #[arg(long, env = "PEDIGREE_PROBE_SET", default_value = "identity+general")]
    pub probes: String,
    /// Maximum number of probes sent to the suspect.
    #[arg(long, env = "PEDIGREE_PROBE_BUDGET")]
    pub budget: usize,
    /// Maximum tokens of the suspect's answers (reported usage, else estimated).
    #[arg(long, env = "PEDIGREE_PROBE_MAX_TOKENS")]
    pub max_tokens: Option<i64>,
    /// Upstream endpoint that receives the same probes (for prompt-aligned comparison).
    #[arg(long, env = "PEDIGREE_PROBE_UPSTREAM_ENDPOINT", requires = "upstream_model")]
    pub upstream_endpoint: Option<String>,
    #[arg(long, env = "PEDIGREE_PROBE_UPSTREAM_MODEL", requires = "upstream_endpoint")]
    pub upstream_model: Option<String>,
    /// Name of the secret with the upstream's API key (bound to its hosts like --api-key-secret).
    #[arg(long, env = "PEDIGREE_PROBE_UPSTREAM_API_KEY_SECRET")]
    pub upstream_api_key_secret: Option<String>,
    /// Allow this HOST:PORT for this run in addition to the stored allowlist (repeatable).
    #[arg(long, env = "PEDIGREE_PROBE_ALLOW", value_delimiter = ',')]
    pub allow: Vec<String>,
    /// Probes in flight at once.
    #[arg(long, env = "PEDIGREE_PROBE_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
    /// Requests per second to each endpoint (retries included).
    #[arg(long, env = "PEDIGREE_PROBE_RATE", default_value_t = 2.0)]
    pub rate: f64,
    /// Per-request timeout in milliseconds.
    #[arg(long, env = "PEDIGREE_PROBE_TIMEOUT_MS", default_value_t = 60_000)]
    pub timeout_ms: u64,
    /// Attempts per probe (429 / 5xx / timeouts / malformed answers are retried).
    #[arg(long, env = "PEDIGREE_PROBE_MAX_ATTEMPTS", default_value_t = 4)]
    pub max_attempts: u32,
    /// Base of the exponential backoff between attempts, in milliseconds.
    #[arg(long, env = "PEDIGREE_PROBE_BACKOFF_MS", default_value_t = 500)]
    pub backoff_ms: u64,
    /// Ask for streamed (SSE) answers.
    #[arg(long, env = "PEDIGREE_PROBE_STREAM")]
    pub stream: bool,
    /// `max_tokens` of each request.
    #[arg(long, env = "PEDIGREE_PROBE_ANSWER_MAX_TOKENS", default_value_t = 512)]
    pub answer_max_tokens: u32,
    /// Overall significance level of the sequential test.
    #[arg(long, env = "PEDIGREE_PROBE_ALPHA", default_value_t = 0.01)]
    pub alpha: f64,
    /// Answers per batch (the test is updated after each; decision looks on a doubling plan).
    #[arg(long, env = "PEDIGREE_PROBE_BATCH", default_value_t = 10)]
    pub batch: usize,
    /// Profile to score with (a stored profile name; default: the default profile).
    #[arg(long, env = "PEDIGREE_PROBE_PROFILE")]
    pub profile: Option<String>,
    /// A profile file to use as the default profile instead of the built-in one.
    #[arg(long, env = "PEDIGREE_DEFAULT_PROFILE")]
    pub default_profile: Option<PathBuf>,
    /// Add the answers to this existing suspect (default: a new suspect named after the model).
    #[arg(long, env = "PEDIGREE_PROBE_SUSPECT")]
    pub suspect: Option<String>,
    /// Start a new campaign even if one with the same parameters exists in the data directory.
    #[arg(long)]
    pub new: bool,
}

/// Run a campaign and print its JSON summary alone on the last line of stdout. Re-running the
/// same command with the same `--data` (or `--database-url`) resumes the unfinished campaign with
/// the same parameters (no probe is sent twice); a finished one is reported again unless `--new`
/// is given.
pub async fn run_probe(a: ProbeArgs) -> anyhow::Result<()> {
    let config = server::config::Config::with_store(a.store.clone());
    let store = a.store.open().await?;
    let engine = Arc::new(Engine::with_default(config.cpu_workers(), a.default_profile.as_deref()));
    if let Some(e) = engine.builtin_error() {
        anyhow::bail!("{e}");
    }
    let probes = probesets::load(&a.probes).map_err(|e| anyhow::anyhow!(e))?;
    let set_name = if probesets::builtin(&a.probes).is_some() {
        a.probes.clone()
    } else {
        "custom".to_string()
    };
    let mut allow = HashSet::new();
    for e in &a.allow {
        allow.insert(allowlist::normalize_entry(e).map_err(|m| anyhow::anyhow!("--allow: {m}"))?);
    }
    let spec = CampaignSpec {
        endpoint: EndpointSpec {
            base_url: a.endpoint.clone(),
            model: a.model.clone(),
            api_key_secret: a.api_key_secret.clone(),
        },
        upstream: match (&a.upstream_endpoint, &a.upstream_model) {
            (Some(u), Some(m)) => Some(EndpointSpec {
                base_url: u.clone(),
                model: m.clone(),
                api_key_secret: a.upstream_api_key_secret.clone(),
            }),
            _ => None,
        },
        probes: set_name,
        budget: Budget { max_requests: a.budget, max_tokens: a.max_tokens },
        concurrency: a.concurrency,
        alpha: a.alpha,
        batch: a.batch,
        max_consecutive_failures: 20,
        profile: a.profile.clone(),
        client: ClientOptions {
            timeout_ms: a.timeout_ms,
            max_attempts: a.max_attempts,
            backoff_base_ms: a.backoff_ms,
            rate_per_sec: a.rate,
            stream: a.stream,
            answer_max_tokens: a.answer_max_tokens,
            ..Default::default()
        },
        membership: None,
    };
    spec.validate().map_err(|e| anyhow::anyhow!(e))?;
    // Refuse an off-allowlist target before anything is stored or sent.
    campaign::check_targets(store.as_ref(), &spec, &allow)
        .await
        .map_err(|e| anyhow::anyhow!("refused: {e}"))?;
    let existing = if a.new {
        None
    } else {
        store.campaign_by_fingerprint(&spec.fingerprint(&probes)).await?
    };
    let rec = match existing {
        Some(c) if !c.state.is_terminal() => {
            eprintln!(
                "resuming campaign {} ({} of {} probes sent)",
                c.id, c.probes.sent, c.probes.total
            );
            c
        }
        Some(c) => {
            eprintln!(
                "campaign {} with these parameters already ended ({}); pass --new to run another",
                c.id,
                c.state.as_str()
            );
            c
        }
        None => {
            let c = campaign::create(
                store.as_ref(),
                &engine,
                spec,
                probes,
                a.suspect.clone(),
                Some("cli".into()),
            )
            .await?;
            eprintln!(
                "campaign {} against {} ({}): {} probes, budget {}",
                c.id, a.endpoint, a.model, c.probes.total, a.budget
            );
            c
        }
    };
    let total = (rec.probes.total as u64).min(a.budget as u64);
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} probes {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let bar = pb.clone();
    let on_progress: campaign::OnProgress = Arc::new(move |c| {
        bar.set_position(c.probes.sent as u64);
        let p = c.p_value.map_or("-".to_string(), |p| format!("{p:.4}"));
        bar.set_message(format!("answered {} failed {} p={p}", c.probes.answered, c.probes.failed));
    });
    let done = campaign::run(
        store.clone(),
        engine,
        &rec.id,
        &allow,
        Arc::new(AtomicBool::new(false)),
        Some(on_progress),
        &campaign::Lease::for_cli(&config),
    )
    .await?;
    pb.finish_and_clear();
    let summary = campaign::summary(store.as_ref(), &done).await?;
    store.close().await?;
    // The human-readable lines on stderr, identity first; stdout keeps the JSON alone.
    if let Some(s) = summary["identity"]["summary"].as_str() {
        eprintln!("identity: {s}");
    }
    if let Some(s) = summary["style"]["triage"]["summary"].as_str() {
        eprintln!("style triage: {s}");
    }
    println!("{summary}");
    if let Some(e) = &done.error {
        anyhow::bail!("campaign {} failed: {e}", done.id);
    }
    Ok(())
}
