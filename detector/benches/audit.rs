//! Cost of the corpus audit's estimates, per corpus (not per text: an audit reads only its
//! corpus histograms, see `detector::audit::CorpusHist`).
//!
//! `cargo bench -p detector --bench audit` — the built-in profile, a corpus of up to 2,000 real
//! responses from `../shared/datasets/alpaca-eval-dev/samples.jsonl` when present (otherwise
//! synthetic texts), default options (200 bootstrap replicates): the upstream's estimate alone
//! and every family's estimate (what `pedigree audit` computes once at the end of a corpus).

mod common;
use common::texts;
use criterion::{criterion_group, criterion_main, Criterion};
use detector::audit::{score_batch_families, AuditOptions, AuditStats};
use detector::Profile;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let profile = Profile::builtin().expect("built-in profile");
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let scored = score_batch_families(&profile, &refs);
    let up: Vec<f64> = scored.iter().map(|(_, s)| *s).collect();
    let fam: Vec<f32> = scored
        .iter()
        .flat_map(|(p, _)| p.iter().map(|&x| detector::audit::family_log_odds(x)))
        .collect();
    let opts = AuditOptions::default();
    let (fams, upstream, cal) = (profile.families(), profile.upstream(), profile.calibration());
    let stats = AuditStats::of_scores(&up, &fam, fams, upstream, cal, &opts);
    eprintln!("{} texts, {} families, {} bootstrap reps", up.len(), fams.len(), opts.bootstrap);
    let mut g = c.benchmark_group("audit_estimate");
    g.sample_size(10);
    g.bench_function("upstream", |b| b.iter(|| black_box(stats.estimate(cal, &opts)).fraction));
    g.bench_function("every_family", |b| {
        b.iter(|| black_box(stats.estimate_families(fams, upstream, cal, &opts)).len())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
