//! Loads the real bench directory (`../shared/datasets/alpaca-eval-dev` relative to the
//! workspace root) when it is present, and checks the loader's view is consistent with the
//! manifest. Skipped with a note when the data is not there (e.g. CI without the share).
//! Counts are derived from the data, never copied from it (the data is CC BY-NC).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use datasets::{BenchDir, Format, Split};

fn bench_dir() -> Option<PathBuf> {
    // CARGO_MANIFEST_DIR = <workspace>/datasets
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("../shared/datasets/alpaca-eval-dev");
    if dir.join("manifest.json").is_file() {
        Some(dir)
    } else {
        eprintln!("note: {} not found; skipping the real-bench test", dir.display());
        None
    }
}

#[test]
fn real_bench_is_consistent_with_manifest() {
    let Some(dir) = bench_dir() else { return };
    let b = BenchDir::load(&dir).expect("bench dir loads and validates");
    let m = &b.manifest;

    // Every manifest model has samples, and only manifest models do (load validated that).
    let mut per_model: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &b.samples {
        *per_model.entry(s.model.as_str()).or_default() += 1;
    }
    assert_eq!(per_model.len(), m.models.len(), "every manifest model has samples");

    // Each model answers each prompt at most once, and only prompts of the split lists.
    let mut seen = BTreeSet::new();
    for s in &b.samples {
        assert!(
            seen.insert((s.model.as_str(), s.prompt_id.as_str())),
            "duplicate {} {}",
            s.model,
            s.prompt_id
        );
        assert!(b.prompt_split(&s.prompt_id).is_some(), "prompt {} in no split", s.prompt_id);
    }
    let n_prompts = m.train_prompts.len() + m.test_prompts.len();
    for (model, n) in &per_model {
        assert!(*n <= n_prompts, "{model}: {n} samples > {n_prompts} prompts");
        let train = b.samples_for(model, Split::Train).len();
        let test = b.samples_for(model, Split::Test).len();
        assert_eq!(train + test, *n, "{model}: split counts add up");
        assert!(train <= m.train_prompts.len() && test <= m.test_prompts.len());
        assert!(test > 0, "{model} has no test samples");
    }

    // Labels: families and suspects partition the models; positives and negatives are
    // disjoint suspects, and upstream-kind suspects are neither.
    assert_eq!(b.known_models().len() + b.suspects().len(), m.models.len());
    let pos: BTreeSet<&str> = b.positives().into_iter().collect();
    let neg: BTreeSet<&str> = b.negatives().into_iter().collect();
    assert!(pos.is_disjoint(&neg));
    assert!(!pos.is_empty() && !neg.is_empty());
    assert_eq!(pos.len() + neg.len() + b.upstream_suspects().len(), b.suspects().len());
    for k in b.known_models() {
        assert!(!b.is_positive(k) && !b.is_negative(k));
    }
    // The README's bench: 8 positive students and 4 negatives ("0/8", "0/4" baseline).
    assert_eq!(pos.len(), 8);
    assert_eq!(neg.len(), 4);

    // The generic reader sees the same number of records, detected as a bench dir.
    let it = datasets::open(&dir, None).unwrap();
    assert_eq!(it.format(), &Format::Bench);
    let total = it.total_bytes();
    let mut it = it;
    let mut n = 0;
    for r in it.by_ref() {
        r.expect("every real sample line parses");
        n += 1;
    }
    assert_eq!(n, b.samples.len());
    assert_eq!(Some(it.bytes_read()), total);
    println!(
        "{}: {} samples, {} models ({} known, {} suspects), {} train / {} test prompts",
        m.name,
        b.samples.len(),
        m.models.len(),
        b.known_models().len(),
        b.suspects().len(),
        m.train_prompts.len(),
        m.test_prompts.len()
    );
}

#[test]
fn real_samples_file_detected_as_bench() {
    let Some(dir) = bench_dir() else { return };
    assert_eq!(datasets::detect_format(&dir.join("samples.jsonl")).unwrap(), Format::Bench);
}
