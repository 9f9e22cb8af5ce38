//! `pedigree-dev replay-server`: a local OpenAI-compatible endpoint replaying a benchmark model's
//! recorded answers (or any answers file), for demos and probe tests.

use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

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

pub async fn run(a: ReplayArgs) -> anyhow::Result<()> {
    let mut replay = match (&a.data, &a.answers) {
        (Some(dir), _) => testkit::replay::Replay::from_bench(dir, &a.model)?,
        (None, Some(file)) => {
            let mut answers = std::collections::HashMap::new();
            for x in datasets::read_answers(file, None, None)? {
                answers.entry(x.prompt).or_insert(x.response);
            }
            testkit::replay::Replay::new(&a.model, answers)
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
    testkit::replay::serve(listener, Arc::new(replay)).await?;
    Ok(())
}
