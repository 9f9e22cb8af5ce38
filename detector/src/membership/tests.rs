use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn flip(xs: &[f64]) -> Vec<Vec<f64>> {
    xs.iter().map(|&x| vec![x, -x]).collect()
}

#[test]
fn exact_p_values_on_hand_built_cases() {
    // Only the all-positive pattern of 8 reaches T = 6.
    let (t, p, method, res, n) = randomization(&flip(&[1.0, 2.0, 3.0]), 999, &mut rng(1));
    assert_eq!((t, p, method, res, n), (6.0, 0.125, "exact", 0.125, 3));
    // {+3, -1, -2}: T = 0; patterns with T >= 0: 3 of the 6 non-zero patterns... enumerate:
    // signs of (1,2,3): sums 6,4,2,0,0,-2,-4,-6 → 5 of 8 are >= 0 (ties count).
    let (_, p, ..) = randomization(&flip(&[-1.0, -2.0, 3.0]), 999, &mut rng(1));
    assert_eq!(p, 5.0 / 8.0);
    // Prompts without evidence are dropped: one informative prompt, p = 1/2.
    let (_, p, _, _, n) = randomization(&flip(&[0.0, 0.0, 5.0]), 999, &mut rng(1));
    assert_eq!((p, n), (0.5, 1));
    // No evidence at all: p = 1.
    let (_, p, ..) = randomization(&flip(&[0.0, 0.0]), 999, &mut rng(1));
    assert_eq!(p, 1.0);
}

#[test]
fn monte_carlo_resolution_and_multi_fresh() {
    // 40 prompts all pointing the same way: no relabelling reaches T, p = 1 / (1 + B).
    let (_, p, method, res, _) = randomization(&flip(&[1.0; 40]), 999, &mut rng(2));
    assert_eq!((p, method, res), (1.0 / 1000.0, "monte_carlo", 1.0 / 1000.0));
    // Two fresh answers per prompt: the served label is one of three.
    let e: Vec<Vec<f64>> = (0..20).map(|_| vec![2.0, -1.0, -1.0]).collect();
    let (t, p, method, ..) = randomization(&e, 999, &mut rng(3));
    assert_eq!((t, p, method), (40.0, 1.0 / 1000.0, "monte_carlo"));
    // A labelling that is not special: p is far from significant.
    let e: Vec<Vec<f64>> = (0..20)
        .map(|i| if i % 3 == 0 { vec![2.0, -1.0, -1.0] } else { vec![-1.0, 2.0, -1.0] })
        .collect();
    let (_, p, ..) = randomization(&e, 999, &mut rng(3));
    assert!(p > 0.2, "{p}");
}

/// Under the null (each prompt's sign is a fair coin) the p-value is uniform: over 400
/// simulated data sets the share below 0.05 and 0.2 is near 0.05 and 0.2.
#[test]
fn p_values_are_uniform_under_the_null() {
    let mut r = rng(4);
    let mut ps = Vec::new();
    for _ in 0..400 {
        let xs: Vec<f64> = (0..30)
            .map(|_| {
                let mag = r.gen::<f64>().powi(3) * 10.0;
                if r.gen_bool(0.5) {
                    mag
                } else {
                    -mag
                }
            })
            .collect();
        ps.push(randomization(&flip(&xs), 199, &mut r).1);
    }
    let share = |a: f64| ps.iter().filter(|&&p| p <= a).count() as f64 / ps.len() as f64;
    assert!((0.02..=0.09).contains(&share(0.05)), "{}", share(0.05));
    assert!((0.14..=0.27).contains(&share(0.2)), "{}", share(0.2));
}

// ----- end to end on synthetic answers -------------------------------------------------------

/// A letters-only pseudo-word (the view drops digits).
fn word(i: usize) -> String {
    let mut i = i;
    let mut s = String::new();
    loop {
        s.push((b'a' + (i % 26) as u8) as char);
        i /= 26;
        if i == 0 {
            break;
        }
    }
    s
}

fn sentence(r: &mut ChaCha8Rng, topic: usize, len: usize) -> String {
    // A few topic words shared by every answer to the prompt, the rest free vocabulary.
    let mut ws: Vec<String> = (0..len)
        .map(|j| {
            if j % 4 == 0 {
                word(1000 + topic * 3 + r.gen_range(0..3))
            } else {
                word(r.gen_range(30..900))
            }
        })
        .collect();
    ws[0] = {
        let mut c = ws[0].chars();
        let f = c.next().unwrap().to_ascii_uppercase();
        std::iter::once(f).chain(c).collect()
    };
    ws.join(" ") + "."
}

fn answer(r: &mut ChaCha8Rng, topic: usize) -> String {
    (0..4).map(|_| sentence(r, topic, 12)).collect::<Vec<_>>().join(" ")
}

struct World {
    served: Vec<Answer>,
    fresh: Vec<Answer>,
    own: Vec<Answer>,
}

fn world(n: usize, seed: u64) -> World {
    let mut r = rng(seed);
    let mut w = World { served: vec![], fresh: vec![], own: vec![] };
    for i in 0..n {
        let prompt = format!("Question {} about {}?", word(i), word(2000 + i));
        w.served.push(Answer::new(&prompt, answer(&mut r, i)));
        w.fresh.push(Answer::new(&prompt, answer(&mut r, i)));
        w.own.push(Answer::new(&prompt, answer(&mut r, i)));
    }
    w
}

/// A student: for the first `copied` prompts the answer is the served one, lower-cased with
/// its last sentence dropped (a crude desensitization), else the suspect's own answer.
fn student(w: &World, copied: usize) -> Vec<Answer> {
    w.own
        .iter()
        .enumerate()
        .map(|(i, a)| {
            if i < copied {
                let s = &w.served[i].text;
                let cut = s[..s.len() - 1].rfind('.').unwrap();
                // Prompt re-quoted with other case and white space: still matched.
                Answer::new(format!("  {}\n", a.prompt.to_uppercase()), s[..cut].to_lowercase())
            } else {
                a.clone()
            }
        })
        .collect()
}

#[test]
fn a_student_is_detected_and_an_independent_suspect_is_not() {
    let w = world(60, 10);
    let opts = MembershipOptions { permutations: 999, ..Default::default() };
    let r = run(&w.served, &w.fresh, &student(&w, 10), &[], &opts).unwrap();
    assert_eq!(r.decision, MembershipDecision::TrainedOnServed, "{}", r.reason);
    assert_eq!(r.prompts, 60);
    assert!(r.p_value <= 0.002 && r.effect > 0.05, "{r:?}");
    // The evidence names copied prompts, with spans that point at the same words.
    assert!(!r.evidence.is_empty());
    let top = &r.evidence[0];
    assert!(top.served_specific[0] > 10 && top.fresh_specific[0] < 3, "{top:?}");
    let i = w.served.iter().position(|a| a.prompt.starts_with(&top.prompt[..12])).unwrap();
    assert!(i < 10);
    let seg = &top.segments[0];
    let served_chars: Vec<char> = w.served[i].text.chars().collect();
    let served_seg: String = served_chars[seg.served[0]..seg.served[1]].iter().collect();
    assert_eq!(served_seg.to_lowercase(), seg.text.to_lowercase(), "{seg:?}");

    let r = run(&w.served, &w.fresh, &w.own, &[], &opts).unwrap();
    assert_eq!(r.decision, MembershipDecision::NotDetected, "{}", r.reason);
    assert!(r.reason.contains("not evidence of independence"));
    // Roles swapped: the student of `served` is not a student of `fresh`.
    let r = run(&w.fresh, &w.served, &student(&w, 10), &[], &opts).unwrap();
    assert_ne!(r.decision, MembershipDecision::TrainedOnServed);
}

#[test]
fn fresh_answers_from_another_snapshot_are_refused() {
    let w = world(60, 11);
    // "Another snapshot": the fresh answers are systematically formatted and padded.
    let shifted: Vec<Answer> = w
        .fresh
        .iter()
        .map(|a| {
            Answer::new(&a.prompt, format!("## Answer\n\n- {}\n\nIn summary, that is all.", a.text))
        })
        .collect();
    let opts = MembershipOptions { permutations: 999, ..Default::default() };
    let r = run(&w.served, &shifted, &w.own, &[], &opts).unwrap();
    assert_eq!(r.decision, MembershipDecision::Invalid, "{r:?}");
    assert!(r.reason.contains("not exchangeable"), "{}", r.reason);
    // Even a real student is not called trained when the null does not hold.
    let r = run(&w.served, &shifted, &student(&w, 30), &[], &opts).unwrap();
    assert_eq!(r.decision, MembershipDecision::Invalid);
}

#[test]
fn a_flagged_negative_control_makes_the_test_invalid() {
    let w = world(60, 12);
    let opts = MembershipOptions { permutations: 999, ..Default::default() };
    let ok = Control { name: "ref-a".into(), answers: w.own.clone() };
    let r = run(&w.served, &w.fresh, &student(&w, 10), std::slice::from_ref(&ok), &opts).unwrap();
    assert_eq!(r.decision, MembershipDecision::TrainedOnServed, "{}", r.reason);
    assert_eq!(r.controls.len(), 1);
    // A "control" that did see the served answers: the null is broken for this setup.
    let bad = Control { name: "ref-b".into(), answers: student(&w, 20) };
    let r = run(&w.served, &w.fresh, &student(&w, 10), &[ok, bad], &opts).unwrap();
    assert_eq!(r.decision, MembershipDecision::Invalid);
    assert!(r.reason.contains("ref-b"), "{}", r.reason);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let w = world(30, 13);
    let opts = MembershipOptions::default();
    let e = run(&w.served[..10], &w.fresh, &w.own, &[], &opts).unwrap_err().to_string();
    assert!(e.contains("10 prompts") && e.contains("at least 20"), "{e}");
    let e = run(&w.served, &w.fresh[..5], &w.own, &[], &opts).unwrap_err().to_string();
    assert!(e.contains("25 without a fresh answer"), "{e}");
    for (o, want) in [
        (MembershipOptions { alpha: 0.0, ..Default::default() }, "alpha"),
        (MembershipOptions { alpha: f64::NAN, ..Default::default() }, "alpha"),
        (MembershipOptions { guard_alpha: 0.7, ..Default::default() }, "guard_alpha"),
        (MembershipOptions { permutations: 10, ..Default::default() }, "permutations"),
        (MembershipOptions { min_prompts: 1, ..Default::default() }, "min_prompts"),
        (MembershipOptions { top_evidence: 1000, ..Default::default() }, "top_evidence"),
    ] {
        let e = run(&w.served, &w.fresh, &w.own, &[], &o).unwrap_err().to_string();
        assert!(e.contains(want), "{want}: {e}");
    }
    let c = Control { name: "tiny".into(), answers: w.own[..3].to_vec() };
    let e = run(&w.served, &w.fresh, &w.own, &[c], &opts).unwrap_err().to_string();
    assert!(e.contains("tiny"), "{e}");
}

#[test]
fn several_fresh_answers_per_prompt() {
    let w = world(40, 14);
    let mut r = rng(99);
    let mut fresh = w.fresh.clone();
    fresh
        .extend(w.fresh.iter().enumerate().map(|(i, a)| Answer::new(&a.prompt, answer(&mut r, i))));
    let opts = MembershipOptions { permutations: 999, ..Default::default() };
    let rep = run(&w.served, &fresh, &student(&w, 8), &[], &opts).unwrap();
    assert_eq!(rep.matched.fresh_per_prompt, 2.0);
    assert_eq!(rep.decision, MembershipDecision::TrainedOnServed, "{}", rep.reason);
    let rep = run(&w.served, &fresh, &w.own, &[], &opts).unwrap();
    assert_eq!(rep.decision, MembershipDecision::NotDetected);
}

#[test]
fn the_result_is_a_function_of_input_and_seed() {
    let w = world(40, 15);
    let opts = MembershipOptions { permutations: 999, ..Default::default() };
    let a = run(&w.served, &w.fresh, &w.own, &[], &opts).unwrap();
    let b = run(&w.served, &w.fresh, &w.own, &[], &opts).unwrap();
    assert_eq!(a, b);
    let c = run(&w.served, &w.fresh, &w.own, &[], &MembershipOptions { seed: 1, ..opts }).unwrap();
    assert_eq!(a.statistic, c.statistic);
}

/// A deterministic upstream (temperature 0) answers a prompt the same way every time: the copies
/// are one sample seen twice, and must not hide a student.
#[test]
fn identical_fresh_answers_count_once() {
    let w = world(40, 15);
    let mut fresh = w.fresh.clone();
    fresh.extend(w.fresh.iter().cloned());
    let opts = MembershipOptions { permutations: 999, ..Default::default() };
    let rep = run(&w.served, &fresh, &student(&w, 8), &[], &opts).unwrap();
    assert_eq!(rep.matched.fresh_per_prompt, 1.0, "{:?}", rep.matched);
    assert_eq!(rep.matched.duplicates_ignored, 40);
    assert_eq!(rep.decision, MembershipDecision::TrainedOnServed, "{}", rep.reason);
}
