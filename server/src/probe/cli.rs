//! `pedigree probe` (run a campaign in-process against the data directory's store) and
//! `pedigree replay-server` (a local OpenAI-compatible replay of a benchmark model's answers).

use super::campaign::{self, Budget, CampaignSpec, EndpointSpec};
use super::client::ClientOptions;
use super::{allowlist, probesets};
use crate::config::StoreArgs;
use crate::service::engine::Engine;
use clap::Args;
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
    let config = a.store.config();
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
    )
    .await?;
    pb.finish_and_clear();
    let summary = campaign::summary(store.as_ref(), &done).await?;
    store.close().await?;
    println!("{summary}");
    if let Some(e) = &done.error {
        anyhow::bail!("campaign {} failed: {e}", done.id);
    }
    Ok(())
}

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// A benchmark directory (manifest.json + samples.jsonl), e.g. ../shared/datasets/alpaca-eval-dev.
    #[arg(
        long,
        env = "PEDIGREE_REPLAY_DATA",
        required_unless_present = "answers",
        conflicts_with = "answers"
    )]
    pub data: Option<PathBuf>,
    /// Instead of `--data`: a file of answers with prompts in any format the datasets crate
    /// reads (JSONL {prompt, response}, OpenAI chat logs, AlpacaEval, …); the first answer to a
    /// prompt is replayed.
    #[arg(long, env = "PEDIGREE_REPLAY_ANSWERS")]
    pub answers: Option<PathBuf>,
    /// The model whose recorded answers are replayed (also the only `model` accepted).
    #[arg(long, env = "PEDIGREE_REPLAY_MODEL")]
    pub model: String,
    /// Address to listen on (port 0: a free port; the URL is printed on stdout).
    #[arg(long, env = "PEDIGREE_REPLAY_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Answer for prompts without a recorded answer (default: 404).
    #[arg(long, env = "PEDIGREE_REPLAY_FALLBACK")]
    pub fallback: Option<String>,
    /// Delay before every answer, in milliseconds.
    #[arg(long, env = "PEDIGREE_REPLAY_LATENCY_MS", default_value_t = 0)]
    pub latency_ms: u64,
    /// Write the prompts of `--split` that the model answered as a probe file (JSONL), then serve.
    #[arg(long, env = "PEDIGREE_REPLAY_WRITE_PROBES")]
    pub write_probes: Option<PathBuf>,
    /// `test`, `train` or `all`.
    #[arg(long, env = "PEDIGREE_REPLAY_SPLIT", default_value = "test")]
    pub split: String,
}

pub async fn run_replay(a: ReplayArgs) -> anyhow::Result<()> {
    let mut replay = match (&a.data, &a.answers) {
        (Some(dir), _) => super::replay::Replay::from_bench(dir, &a.model)?,
        (None, Some(file)) => {
            let mut answers = std::collections::HashMap::new();
            for x in datasets::read_answers(file, None, None)? {
                answers.entry(x.prompt).or_insert(x.response);
            }
            super::replay::Replay::new(&a.model, answers)
        }
        (None, None) => anyhow::bail!("give --data DIR or --answers FILE"),
    };
    replay.fallback = a.fallback.clone();
    replay.latency_ms = a.latency_ms;
    if let Some(out) = &a.write_probes {
        let Some(dir) = &a.data else {
            anyhow::bail!("--write-probes needs --data (a benchmark directory)");
        };
        let bench = datasets::BenchDir::load(dir)?;
        let samples = match a.split.as_str() {
            "test" => bench.samples_for(&a.model, datasets::Split::Test),
            "train" => bench.samples_for(&a.model, datasets::Split::Train),
            "all" => bench.all_samples_for(&a.model),
            s => anyhow::bail!("--split must be test, train or all, not `{s}`"),
        };
        let mut text = String::new();
        for s in &samples {
            text.push_str(
                &serde_json::json!({"id": s.prompt_id, "prompt": s.prompt, "kind": "bench"})
                    .to_string(),
            );
            text.push('\n');
        }
        std::fs::write(out, text)?;
        eprintln!("wrote {} probes to {}", samples.len(), out.display());
    }
    let n = replay.answers.len();
    let listener = tokio::net::TcpListener::bind(a.listen).await?;
    let addr = listener.local_addr()?;
    eprintln!("replaying {n} answers of `{}`", a.model);
    println!("listening on http://{addr}/v1");
    super::replay::serve(listener, Arc::new(replay)).await?;
    Ok(())
}
