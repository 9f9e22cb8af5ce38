//! Lexical-tier scoring throughput, against a simple baseline timed in the same run.
//!
//! `cargo bench -p detector --bench score` — reads real responses from
//! `../shared/datasets/alpaca-eval-dev/samples.jsonl` when present (never copied into the repo),
//! otherwise synthesises texts. The baseline is the textbook bag-of-words linear scorer: split on
//! white space, look each lowercased word up in a `HashMap<String, f32>`, sum.

mod common;
use common::texts;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use detector::Profile;
use rayon::prelude::*;
use std::collections::HashMap;
use std::hint::black_box;

fn baseline_weights(texts: &[String]) -> HashMap<String, f32> {
    let mut m = HashMap::new();
    for (i, t) in texts.iter().enumerate() {
        for w in t.split_whitespace() {
            m.entry(w.to_lowercase()).or_insert((i % 7) as f32 * 0.01);
        }
    }
    m
}

fn baseline_score(w: &HashMap<String, f32>, t: &str) -> f32 {
    t.split_whitespace().map(|x| w.get(&x.to_lowercase()).copied().unwrap_or(0.0)).sum()
}

fn bench(c: &mut Criterion) {
    let texts = texts();
    let profile = Profile::builtin().expect("built-in profile");
    let bw = baseline_weights(&texts);
    let mb = texts.iter().map(|t| t.len()).sum::<usize>() as f64 / 1e6;
    eprintln!(
        "{} texts, {:.1} MB, mean {:.0} chars",
        texts.len(),
        mb,
        mb * 1e6 / texts.len() as f64
    );
    let mut g = c.benchmark_group("score_responses");
    g.throughput(Throughput::Elements(texts.len() as u64));
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("pedigree_lexical", "2 threads"), |b| {
        b.iter(|| texts.par_iter().map(|t| profile.score_fast(t)).sum::<f64>())
    });
    g.bench_function(BenchmarkId::new("baseline_bow", "2 threads"), |b| {
        b.iter(|| texts.par_iter().map(|t| baseline_score(&bw, t)).sum::<f32>())
    });
    g.bench_function(BenchmarkId::new("pedigree_with_evidence", "2 threads"), |b| {
        b.iter(|| texts.par_iter().map(|t| black_box(profile.score(t, None)).score).sum::<f64>())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
