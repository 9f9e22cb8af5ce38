//! Measures the membership test on the dev data: exactness on real null suspects, the guard
//! against a wrong snapshot, power against simulated students (with the IDF n-gram sign-flip
//! baseline measured in the same run), and throughput.
//!
//! `cargo run --release -p detector --example membership_eval -- ../shared/datasets`
//!
//! Simulated students (none exist in public data): for a base model B and a share ρ, ρ·n
//! prompts drawn at random are answered by a *desensitized* copy of the served answer, the
//! others by B's own answer. Desensitization, applied in this order:
//! 1. numbers (`\d+([.,]\d+)*`) become `[NUM]`; a capitalised word (or run of them) after a
//!    lower-case word or a comma becomes `[NAME]`;
//! 2. markdown is stripped: leading `#`, bullets and `N.` list markers, `**`, `__`, backticks;
//! 3. each sentence is dropped with probability `drop` (at least one is kept);
//! 4. each remaining word is reworded with probability `reword`: replaced by a random word of
//!    B's own answers (half the time) or deleted.
//!
//! Levels: light (drop 0, reword 0), medium (0.3, 0.15), heavy (0.5, 0.3), extreme (0.7, 0.5).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use detector::membership::{self, grams, stat, Answer, MembershipDecision, MembershipOptions};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn load(path: &Path) -> Vec<(String, String, Option<String>)> {
    datasets::open(path, None)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|r| {
            let r = r.expect("record");
            (r.prompt.expect("prompt"), r.text, r.model)
        })
        .collect()
}

fn desensitize(t: &str, rng: &mut ChaCha8Rng, drop: f64, reword: f64, vocab: &[&str]) -> String {
    // Numbers and names masked, markdown stripped: the library's deterministic steps.
    let t = detector::desensitize::Step::All.apply(t);
    // Sentences: end after . ! ? followed by white space, or at a newline.
    let mut sents: Vec<String> = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = t.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '\n' {
            if !cur.trim().is_empty() {
                sents.push(std::mem::take(&mut cur));
            }
            cur.clear();
            continue;
        }
        cur.push(c);
        if matches!(c, '.' | '!' | '?') && chars.get(i + 1).is_some_and(|n| n.is_whitespace()) {
            sents.push(std::mem::take(&mut cur));
        }
    }
    if !cur.trim().is_empty() {
        sents.push(cur);
    }
    let mut kept: Vec<String> =
        sents.iter().filter(|_| rng.gen::<f64>() >= drop).cloned().collect();
    if kept.is_empty() {
        kept = sents.into_iter().take(1).collect();
    }
    kept.iter()
        .map(|s| {
            s.split_whitespace()
                .filter_map(|w| {
                    if rng.gen::<f64>() < reword {
                        if rng.gen_bool(0.5) && !vocab.is_empty() {
                            Some(vocab[rng.gen_range(0..vocab.len())].to_string())
                        } else {
                            None
                        }
                    } else {
                        Some(w.to_string())
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A simulated student (module documentation): ρ·n served prompts drawn at random get the
/// desensitized served answer, the others the base model's own answer (prompts it did not
/// answer are left out).
fn simulate(
    served: &[Answer],
    own: &HashMap<String, String>,
    rho: f64,
    drop: f64,
    reword: f64,
    vocab: &[&str],
    rng: &mut ChaCha8Rng,
) -> Vec<Answer> {
    let k = (rho * served.len() as f64).round() as usize;
    let mut idx: Vec<usize> = (0..served.len()).collect();
    idx.shuffle(rng);
    let chosen: std::collections::HashSet<usize> = idx[..k].iter().copied().collect();
    served
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            if chosen.contains(&i) {
                Some(Answer::new(&s.prompt, desensitize(&s.text, rng, drop, reword, vocab)))
            } else {
                own.get(&membership::prompt_key(&s.prompt)).map(|t| Answer::new(&s.prompt, t))
            }
        })
        .collect()
}

/// The baseline the issue names: IDF-weighted n-gram overlap difference, sign-flip test.
fn baseline_p(
    served: &[Answer],
    fresh: &HashMap<String, String>,
    suspect: &HashMap<String, String>,
    rng: &mut ChaCha8Rng,
) -> f64 {
    let key = membership::prompt_key;
    let rows: Vec<(Vec<u64>, Vec<u64>, Vec<u64>)> = served
        .iter()
        .filter_map(|s| {
            let k = key(&s.prompt);
            Some((
                grams::grams(&s.text),
                grams::grams(fresh.get(&k)?),
                grams::grams(suspect.get(&k)?),
            ))
        })
        .collect();
    let idf = stat::idf_table(rows.iter().flat_map(|(a, b, _)| [a.as_slice(), b.as_slice()]));
    let e: Vec<Vec<f64>> =
        rows.iter().map(|(a, b, x)| stat::baseline_overlap(&[a, b], x, &idf)).collect();
    membership::randomization(&e, 9_999, rng).1
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "../shared/datasets".into());
    let dir = Path::new(&dir);
    let to_answers = |v: Vec<(String, String, Option<String>)>| -> Vec<Answer> {
        v.into_iter().map(|(p, t, _)| Answer::new(p, t)).collect()
    };
    let served = to_answers(load(&dir.join("membership-dev/served.jsonl")));
    let fresh = to_answers(load(&dir.join("membership-dev/fresh.jsonl")));
    let mut models: BTreeMap<String, Vec<Answer>> = BTreeMap::new();
    for (p, t, m) in load(&dir.join("alpaca-eval-dev/samples.jsonl")) {
        models.entry(m.expect("model")).or_default().push(Answer::new(p, t));
    }
    let opts = MembershipOptions::default();
    let by_key = |v: &[Answer]| -> HashMap<String, String> {
        v.iter().map(|a| (membership::prompt_key(&a.prompt), a.text.clone())).collect()
    };
    // `--write-student OUT [--base MODEL] [--rho R] [--level light|medium|heavy|extreme]
    // [--seed S]`: write one simulated student as JSONL {prompt, response} (the README's
    // campaign demo replays it) instead of measuring.
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--write-student") {
        let flag = |f: &str, d: &str| -> String {
            args.iter()
                .position(|a| a == f)
                .and_then(|j| args.get(j + 1))
                .cloned()
                .unwrap_or(d.into())
        };
        let out = args.get(i + 1).expect("--write-student OUT");
        let (base, level) = (flag("--base", "claude"), flag("--level", "medium"));
        let rho: f64 = flag("--rho", "0.25").parse().expect("--rho");
        let seed: u64 = flag("--seed", "1").parse().expect("--seed");
        let (drop, reword) = match level.as_str() {
            "light" => (0.0, 0.0),
            "medium" => (0.3, 0.15),
            "heavy" => (0.5, 0.3),
            "extreme" => (0.7, 0.5),
            l => panic!("--level {l}: light, medium, heavy or extreme"),
        };
        let own_answers = models.get(&base).unwrap_or_else(|| panic!("no model {base}"));
        let vocab: Vec<&str> =
            own_answers.iter().flat_map(|a| a.text.split_whitespace()).take(20_000).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let student = simulate(&served, &by_key(own_answers), rho, drop, reword, &vocab, &mut rng);
        let text: String = student
            .iter()
            .map(|a| serde_json::json!({"prompt": a.prompt, "response": a.text}).to_string() + "\n")
            .collect();
        std::fs::write(out, text).expect("write the student");
        println!(
            "wrote {} answers to {out}: base {base}, ρ = {rho} ({} served answers, desensitization {level})",
            student.len(),
            (rho * served.len() as f64).round()
        );
        return;
    }
    // `gpt4` in alpaca-eval-dev *is* the served sample: it is the perfect student, not a null
    // suspect.
    let null_models: Vec<&String> = models.keys().filter(|m| *m != "gpt4").collect();

    println!("## Exactness: served/fresh as given, each real model as the suspect");
    for (label, s, f) in [("served vs fresh", &served, &fresh), ("roles swapped", &fresh, &served)]
    {
        let mut ps = Vec::new();
        let mut invalid = 0;
        for m in &null_models {
            let r = membership::run(s, f, &models[*m], &[], &opts).expect("run");
            invalid += usize::from(r.decision == MembershipDecision::Invalid);
            ps.push((r.p_value, m.as_str()));
        }
        ps.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = ps.len() as f64;
        let ks = ps
            .iter()
            .enumerate()
            .map(|(i, (p, _))| ((i + 1) as f64 / n - p).abs().max((p - i as f64 / n).abs()))
            .fold(0.0, f64::max);
        let fa = |a: f64| ps.iter().filter(|(p, _)| *p <= a).count();
        println!(
            "{label}: {} null suspects; false alarms at 0.01: {}, at 0.05: {}; invalid: {invalid}; KS distance to uniform {ks:.3} (5% critical value {:.3})",
            ps.len(),
            fa(0.01),
            fa(0.05),
            1.36 / n.sqrt()
        );
        println!(
            "  p-values: {}",
            ps.iter().map(|(p, m)| format!("{m} {p:.3}")).collect::<Vec<_>>().join(", ")
        );
    }
    let r = membership::run(&served, &fresh, &models["gpt4"], &[], &opts).expect("run");
    println!(
        "gpt4 (the served sample itself) as suspect: {} p = {:.1e}",
        r.decision.as_str(),
        r.p_value
    );

    println!("\n## Guard: fresh answers from another snapshot (gpt4_0613)");
    let other = &models["gpt4_0613"];
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut naive_flags = 0;
    let mut guard_p = 0.0;
    for m in null_models.iter().filter(|m| m.as_str() != "gpt4_0613") {
        let r = membership::run(&served, other, &models[*m], &[], &opts).expect("run");
        *counts.entry(r.decision.as_str()).or_default() += 1;
        naive_flags += usize::from(r.p_value <= opts.alpha);
        guard_p = r.guard.p_value;
    }
    println!(
        "decisions {counts:?}; without the guard {naive_flags} would be flagged at α = 0.01; guard p = {guard_p}"
    );
    let r = membership::run(&served, &fresh, &models["claude"], &[], &opts).expect("run");
    println!(
        "correct snapshot (fresh = gpt4_0314): guard p = {:.3}, z = {:.2}",
        r.guard.p_value, r.guard.z
    );

    println!("\n## Power: simulated students, α = 0.01, {} base models each", null_models.len());
    let fresh_k = by_key(&fresh);
    let levels =
        [("light", 0.0, 0.0), ("medium", 0.3, 0.15), ("heavy", 0.5, 0.3), ("extreme", 0.7, 0.5)];
    println!("| desensitization | ρ | prompts copied | membership test | IDF n-gram baseline |");
    println!("| --- | --- | --- | --- | --- |");
    for (level, drop, reword) in levels {
        for rho in [0.02, 0.05, 0.1, 0.25] {
            let (mut hit, mut base_hit, mut n) = (0, 0, 0);
            for (bi, m) in null_models.iter().enumerate() {
                let mut rng = ChaCha8Rng::seed_from_u64(1000 + bi as u64);
                let own = by_key(&models[*m]);
                let vocab: Vec<&str> = models[*m]
                    .iter()
                    .flat_map(|a| a.text.split_whitespace())
                    .take(20_000)
                    .collect();
                let student = simulate(&served, &own, rho, drop, reword, &vocab, &mut rng);
                let r = membership::run(&served, &fresh, &student, &[], &opts).expect("run");
                hit += usize::from(r.decision == MembershipDecision::TrainedOnServed);
                base_hit +=
                    usize::from(baseline_p(&served, &fresh_k, &by_key(&student), &mut rng) <= 0.01);
                n += 1;
            }
            println!(
                "| {level} | {rho} | {} | {hit}/{n} | {base_hit}/{n} |",
                (rho * served.len() as f64).round()
            );
        }
    }

    println!("\n## Throughput");
    // 1,000 prompts: the dev prompts tiled with a suffix that makes each one distinct.
    let tile = |v: &[Answer]| -> Vec<Answer> {
        (0..1000)
            .map(|i| {
                let a = &v[i % v.len()];
                Answer::new(format!("{} (#{})", a.prompt, i / v.len()), a.text.clone())
            })
            .collect()
    };
    let (s1, f1, x1) = (tile(&served), tile(&fresh), tile(&models["claude"]));
    for _ in 0..2 {
        let t = Instant::now();
        let r = membership::run(&s1, &f1, &x1, &[], &opts).expect("run");
        let full = t.elapsed();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let t = Instant::now();
        let _ = baseline_p(&s1, &by_key(&f1), &by_key(&x1), &mut rng);
        let base = t.elapsed();
        println!(
            "1000 prompts: membership test (B = {}, guard B = {}) {:.1} ms; IDF baseline sign-flip (B = 9999) {:.1} ms; ratio {:.2} ({} prompts)",
            opts.permutations,
            opts.guard_permutations,
            full.as_secs_f64() * 1e3,
            base.as_secs_f64() * 1e3,
            full.as_secs_f64() / base.as_secs_f64(),
            r.prompts
        );
    }
}
