//! Profile fitting, persistence, scoring and verdicts on small hand-written fixtures, plus the
//! built-in profile.

use detector::profile::FORMAT_VERSION;
use detector::{Decision, DetectorError, EvidenceKind, FitOptions, LabeledText, Profile, VerdictOptions};

/// Two families with unmistakable habits: "up" models open with "Certainly!" and use lists,
/// the others answer tersely in plain sentences.
fn corpus(split: usize) -> Vec<(String, &'static str, &'static str)> {
    let topics = ["rivers", "bread", "chess", "volcanoes", "jazz", "tides", "bees", "glass", "maps", "clocks"];
    let mut v = Vec::new();
    for (i, t) in topics.iter().enumerate() {
        let k = i + split * 100;
        v.push((format!("Certainly! Here are some facts about {t}:\n\n1. **First**, {t} matter.\n2. Additionally, {t} are fascinating.\n\nI hope this helps! ({k})"), "up-a", "up"));
        v.push((format!("Certainly! Let me explain {t}.\n\n- {t} are important.\n- Furthermore, {t} vary.\n\nOverall, {t} are great. ({k})"), "up-b", "up"));
        v.push((format!("{t} are simple. people like {t} a lot, i think. ({k})"), "other-a", "other"));
        v.push((format!("well {t} is a thing. not much more to say about {t} really ({k})"), "other-b", "other"));
        v.push((format!("{t}: it depends. ask an expert on {t} ({k})"), "third-a", "third"));
    }
    v
}

fn fit() -> Profile {
    let train = corpus(0);
    let calib = corpus(1);
    let lt = |v: &[(String, &'static str, &'static str)]| -> Vec<(String, &'static str, &'static str)> { v.to_vec() };
    let (train, calib) = (lt(&train), lt(&calib));
    let tr: Vec<LabeledText> = train.iter().map(|(t, m, f)| LabeledText { text: t, model: m, family: f }).collect();
    let ca: Vec<LabeledText> = calib.iter().map(|(t, m, f)| LabeledText { text: t, model: m, family: f }).collect();
    let opts = FitOptions {
        name: "test".into(),
        upstream: "up".into(),
        features: Default::default(),
        train: Default::default(),
        dataset: serde_json::json!({"name": "fixture"}),
    };
    Profile::fit(&tr, &ca, &opts).expect("fit")
}

#[test]
fn fitted_profile_separates_families_and_round_trips() {
    let p = fit();
    let up = p.score("Certainly! Here are some facts about owls:\n\n1. **First**, owls matter.\n\nI hope this helps!", None);
    let other = p.score("owls are simple. people like owls a lot, i think.", None);
    assert!(up.score > other.score, "{} vs {}", up.score, other.score);
    assert_eq!(up.family, "up");
    assert!(up.fpr < other.fpr);
    assert!((up.families.iter().map(|f| f.prob).sum::<f64>() - 1.0).abs() < 1e-6);
    // Phrase evidence points into the text.
    let text = "Certainly! Here are some facts about owls:\n\n1. **First**, owls matter.\n\nI hope this helps!";
    let chars: Vec<char> = text.chars().collect();
    let ev = p.score(text, None).evidence;
    let phrase = ev.iter().find(|e| e.kind == EvidenceKind::Phrase).expect("a phrase");
    let [a, b] = phrase.span.expect("span");
    assert_eq!(chars[a..b].iter().collect::<String>(), phrase.label);

    // Save / load gives identical scores.
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("p.pdg");
    p.save(&path).expect("save");
    let q = Profile::load(&path).expect("load");
    assert_eq!(q.score(text, None).score, p.score(text, None).score);
    assert_eq!(q.meta().families, vec!["other", "third", "up"]);
}

#[test]
fn verdict_flags_an_upstream_like_suspect_and_not_a_terse_one() {
    let p = fit();
    let texts_up: Vec<String> = (0..30).map(|i| format!("Certainly! Here are some facts about topic{i}:\n\n1. **First**, it matters.\n2. Additionally, it is fascinating.\n\nI hope this helps!")).collect();
    let texts_other: Vec<String> = (0..30).map(|i| format!("topic{i} is simple. people like it a lot, i think.")).collect();
    let s_up: Vec<_> = texts_up.iter().map(|t| p.score(t, None)).collect();
    let s_other: Vec<_> = texts_other.iter().map(|t| p.score(t, None)).collect();
    let v_up = p.verdict(&s_up, &VerdictOptions::default());
    let v_other = p.verdict(&s_other, &VerdictOptions::default());
    assert!(v_up.statistic > v_other.statistic);
    assert!(v_up.p_value < v_other.p_value);
    assert_ne!(v_other.decision, Decision::Distilled);
    assert_eq!(v_up.teacher.as_deref(), Some("up"));
    assert_eq!(v_up.n, 30);
    assert_eq!(v_up.growth.last().map(|g| g.n), Some(30));
    assert_eq!(v_up.top_samples.len(), 5);
}

#[test]
fn loading_rejects_other_versions_and_non_profiles() {
    let p = fit();
    let mut bytes = p.to_bytes().expect("bytes");
    bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    match Profile::from_bytes(&bytes) {
        Err(DetectorError::Version { found, expected }) => assert_eq!((found, expected), (FORMAT_VERSION + 1, FORMAT_VERSION)),
        other => panic!("expected a version error, got {other:?}"),
    }
    assert!(matches!(Profile::from_bytes(b"not a profile at all"), Err(DetectorError::NotAProfile)));
    let mut cut = p.to_bytes().expect("bytes");
    cut.truncate(cut.len() / 2);
    assert!(matches!(Profile::from_bytes(&cut), Err(DetectorError::Corrupt(_))));
}

#[test]
fn builtin_profile_loads_and_reads_identity_claims() {
    let p = Profile::builtin().expect("the built-in profile is compiled in");
    assert_eq!(p.upstream(), "openai");
    assert!(p.meta().families.len() >= 5);
    let s = p.score("As an AI language model developed by OpenAI, I cannot browse the internet.", None);
    assert!(s.claims.iter().any(|c| c.family == "openai" && c.kind == "creator"));
    assert!(s.evidence.iter().any(|e| e.kind == EvidenceKind::Identity && e.span == Some([0, 23])));
    assert!(s.fpr > 0.0 && s.fpr <= 1.0);
}
