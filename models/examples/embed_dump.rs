//! Embed every response of a bench directory's samples.jsonl and write raw little-endian f32
//! rows (384 per text, file order) to OUT — for offline experiments with the neural tier.
//! `cargo run --release -p models --example embed_dump -- SAMPLES OUT [MAX_TOKENS]`
use models::{Device, Embedder, ModelPaths};
use std::io::{BufRead, Write};
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let max: usize = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(128);
    let mut texts = Vec::new();
    for line in std::io::BufReader::new(std::fs::File::open(&a[0])?).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        texts.push(v["response"].as_str().unwrap_or("").to_string());
    }
    let emb = Embedder::load(&ModelPaths::from_env_or_default().minilm_dir, &Device::Cpu)?
        .with_max_tokens(max);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&a[1])?);
    let t = std::time::Instant::now();
    for (k, chunk) in texts.chunks(256).enumerate() {
        let refs: Vec<&str> = chunk.iter().map(|s| s.as_str()).collect();
        for e in emb.embed(&refs)? {
            for x in e {
                out.write_all(&x.to_le_bytes())?;
            }
        }
        eprintln!(
            "{} / {} ({:.1} texts/s)",
            (k + 1) * 256,
            texts.len(),
            ((k + 1) * 256) as f64 / t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
