//! Throughput of both models on real-looking texts.
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release -p models --example throughput -- [N] [--dump FILE] [--minilm-only] [--quantized]
//! ```
//! Reads the first N (default 200) responses of
//! `$PEDIGREE_BENCH_SAMPLES` (default /work/shared/datasets/alpaca-eval-dev/samples.jsonl)
//! at run time. `--dump FILE` writes the SmolLM2 features of every text as JSON
//! lines, which `scripts/bench-models-torch.py --compare FILE` checks against PyTorch.

use models::{
    Device, Embedder, InferenceQueue, LogProbScorer, ModelPaths, QueueConfig, ScorerOptions,
    WeightFormat,
};
use std::io::{BufRead, Write};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200);
    let dump = args.iter().position(|a| a == "--dump").and_then(|i| args.get(i + 1)).cloned();
    let quantized_too = args.iter().any(|a| a == "--quantized");
    let samples = std::env::var("PEDIGREE_BENCH_SAMPLES")
        .unwrap_or_else(|_| "/work/shared/datasets/alpaca-eval-dev/samples.jsonl".into());
    let mut texts = Vec::new();
    for line in std::io::BufReader::new(std::fs::File::open(&samples)?).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        if let Some(r) = v.get("response").and_then(|r| r.as_str()) {
            if !r.trim().is_empty() {
                texts.push(r.to_string());
            }
        }
        if texts.len() == n {
            break;
        }
    }
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    let threads = candle_core::utils::get_num_threads();
    println!("texts: {} from {samples}; candle threads: {threads}", texts.len());

    let paths = ModelPaths::from_env_or_default();
    paths.check()?;

    // --- MiniLM ---
    let t = Instant::now();
    let mut emb = Embedder::load(&paths.minilm_dir, &Device::Cpu)?;
    if let Some(bt) = std::env::var("PEDIGREE_EMBED_BATCH_TOKENS").ok().and_then(|v| v.parse().ok())
    {
        emb.batch_tokens = bt;
    }
    println!("minilm batch_tokens: {}", emb.batch_tokens);
    println!("minilm load: {:.2}s", t.elapsed().as_secs_f64());
    let toks: usize = refs.iter().map(|s| emb.encode(s).map(|v| v.len()).unwrap_or(0)).sum();
    emb.embed(&refs[..refs.len().min(16)])?; // warm-up
    let t = Instant::now();
    let e = emb.embed(&refs)?;
    let dt = t.elapsed().as_secs_f64();
    println!(
        "candle minilm embed(): {:.1} texts/s ({:.0} tokens/s, {} tokens, max 256) dim {}",
        e.len() as f64 / dt,
        toks as f64 / dt,
        toks,
        e[0].len()
    );
    let q = InferenceQueue::new(emb, QueueConfig { tokenizer_workers: 1, ..Default::default() });
    let t = Instant::now();
    let r = q.run_all(texts.iter().cloned());
    let dt = t.elapsed().as_secs_f64();
    let ok = r.iter().filter(|x| x.is_ok()).count();
    println!("candle minilm via InferenceQueue: {:.1} texts/s ({ok} ok)", r.len() as f64 / dt);
    drop(q);

    if args.iter().any(|a| a == "--minilm-only") {
        return Ok(());
    }

    // --- SmolLM2 ---
    let mut formats = vec![WeightFormat::F32];
    if quantized_too {
        formats.push(WeightFormat::Quantized);
    }
    for fmt in formats {
        let t = Instant::now();
        let opts = ScorerOptions { weights: fmt, ..Default::default() };
        let sc = LogProbScorer::load_with(&paths.smollm_gguf, opts)?;
        println!("smollm2 load ({fmt:?}): {:.2}s", t.elapsed().as_secs_f64());
        let prepared: Vec<_> =
            refs.iter().map(|s| sc.prepare(s, None)).collect::<Result<_, _>>()?;
        let toks: usize = prepared.iter().map(|p| p.ids.len()).sum();
        sc.run_sorted(&prepared[..prepared.len().min(4)])?; // warm-up
        let t = Instant::now();
        let feats = sc.features_batch(&refs)?;
        let dt = t.elapsed().as_secs_f64();
        println!(
            "candle smollm2 features ({fmt:?}): {:.2} texts/s ({:.0} tokens/s, {} tokens incl. separator, max 256 text tokens)",
            feats.len() as f64 / dt,
            toks as f64 / dt,
            toks
        );
        let mean_lp = feats.iter().map(|f| f.mean_logprob as f64).sum::<f64>() / feats.len() as f64;
        println!("  mean of mean_logprob: {mean_lp:.4}");
        if let (Some(path), WeightFormat::F32) = (&dump, fmt) {
            let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
            for (p, ft) in prepared.iter().zip(&feats) {
                let row = serde_json::json!({"ids": p.ids, "features": ft});
                writeln!(f, "{row}")?;
            }
            println!("  wrote {path}");
        }
    }
    Ok(())
}
