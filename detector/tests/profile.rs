//! Profile fitting, persistence, scoring and verdicts on small hand-written fixtures, plus the
//! built-in profile.

use detector::profile::FORMAT_VERSION;
use detector::{
    Decision, DetectorError, EvidenceKind, FitOptions, LabeledText, Profile, VerdictOptions,
};

/// Two families with unmistakable habits: "up" models open with "Certainly!" and use lists,
/// the others answer tersely in plain sentences.
fn corpus(split: usize) -> Vec<(String, &'static str, &'static str)> {
    let topics = [
        "rivers",
        "bread",
        "chess",
        "volcanoes",
        "jazz",
        "tides",
        "bees",
        "glass",
        "maps",
        "clocks",
    ];
    let mut v = Vec::new();
    for (i, t) in topics.iter().enumerate() {
        let k = i + split * 100;
        v.push((format!("Certainly! Here are some facts about {t}:\n\n1. **First**, {t} matter.\n2. Additionally, {t} are fascinating.\n\nI hope this helps! ({k})"), "up-a", "up"));
        v.push((format!("Certainly! Let me explain {t}.\n\n- {t} are important.\n- Furthermore, {t} vary.\n\nOverall, {t} are great. ({k})"), "up-b", "up"));
        v.push((
            format!("{t} are simple. people like {t} a lot, i think. ({k})"),
            "other-a",
            "other",
        ));
        v.push((
            format!("well {t} is a thing. not much more to say about {t} really ({k})"),
            "other-b",
            "other",
        ));
        v.push((format!("{t}: it depends. ask an expert on {t} ({k})"), "third-a", "third"));
    }
    v
}

fn fit() -> Profile {
    fit_with(FitOptions::lexical("test", "up", serde_json::json!({"name": "fixture"})))
}

fn fit_with(opts: FitOptions) -> Profile {
    let train = corpus(0);
    let calib = corpus(1);
    let lt =
        |v: &[(String, &'static str, &'static str)]| -> Vec<(String, &'static str, &'static str)> {
            v.to_vec()
        };
    let (train, calib) = (lt(&train), lt(&calib));
    let tr: Vec<LabeledText> = train
        .iter()
        .map(|(t, m, f)| LabeledText { text: t, model: m, family: f, dense: None, prompt: None })
        .collect();
    let ca: Vec<LabeledText> = calib
        .iter()
        .map(|(t, m, f)| LabeledText { text: t, model: m, family: f, dense: None, prompt: None })
        .collect();
    Profile::fit(&tr, &ca, &opts).expect("fit")
}

/// A profile saved in format 3 (before the edge-word block) still loads and scores exactly as
/// it did. The format-3 file is made the way format 3 wrote it: the body without the block's two
/// fields (8 bytes after the feature configuration's first five).
#[test]
fn format_3_profiles_load_and_score_as_before() {
    use std::io::{Read, Write};
    let mut opts = FitOptions::lexical("test", "up", serde_json::json!({"name": "fixture"}));
    opts.features.edge_bits = 0;
    opts.features.edge_scale = 0.0;
    let p = fit_with(opts);
    let v4 = p.to_bytes().expect("bytes");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&v4[12..]).read_to_end(&mut raw).expect("gunzip");
    let meta_len = u64::from_le_bytes(raw[..8].try_into().expect("8")) as usize;
    let at = 8 + meta_len + 28;
    assert_eq!(&raw[at..at + 8], &[0u8; 8], "edge_bits and edge_scale are zero");
    raw.drain(at..at + 8);
    let mut v3 = b"PDGPROF1".to_vec();
    v3.extend_from_slice(&3u32.to_le_bytes());
    let mut gz = flate2::write::GzEncoder::new(v3, flate2::Compression::fast());
    gz.write_all(&raw).expect("gzip");
    let v3 = gz.finish().expect("gzip");
    let old = Profile::from_bytes(&v3).expect("a format-3 profile loads");
    for t in ["Certainly! Here are some facts about rivers:\n\n1. **First**", "bees: it depends"] {
        assert_eq!(old.score(t, None).score, p.score(t, None).score, "{t}");
    }
    // The same bytes labelled format 4 are refused (the block's fields are missing), and so is
    // a format-3 file cut short inside its feature configuration.
    let mut relabelled = v3.clone();
    relabelled[8..12].copy_from_slice(&4u32.to_le_bytes());
    assert!(Profile::from_bytes(&relabelled).is_err());
    let mut short = b"PDGPROF1".to_vec();
    short.extend_from_slice(&3u32.to_le_bytes());
    let mut gz = flate2::write::GzEncoder::new(short, flate2::Compression::fast());
    gz.write_all(&raw[..at - 4]).expect("gzip");
    assert!(Profile::from_bytes(&gz.finish().expect("gzip")).is_err());
}

/// Fit options out of the features' ranges are refused with an error naming the field (the CLI's
/// `--edge-scale` / `--style-scale` reach the fit unparsed beyond being numbers).
#[test]
fn fit_refuses_features_out_of_range() {
    let mut opts = FitOptions::lexical("test", "up", serde_json::json!({"name": "fixture"}));
    opts.features.edge_scale = f32::NAN;
    let (t, m, f) = ("Certainly! Rivers.", "up-a", "up");
    let one = [LabeledText { text: t, model: m, family: f, dense: None, prompt: None }];
    let Err(e) = Profile::fit(&one, &one, &opts) else { panic!("a NaN weight was fitted") };
    let e = e.to_string();
    assert!(e.contains("edge_scale"), "{e}");
}

/// The edge-word block: unit norm times its weight, and position-aware (an answer that opens
/// with "Certainly!" and one that says it mid-sentence differ in this block only by position).
#[test]
fn edge_words_mark_openings_and_closings() {
    use detector::features::{extract, FeatureConfig, Scratch};
    let cfg = FeatureConfig { edge_scale: 0.5, ..FeatureConfig::default() };
    let block = |t: &str| {
        let mut st = Vec::new();
        let mut v = extract(&cfg, t, &mut Scratch::default(), &mut st);
        v.sort();
        let lo = cfg.edge_offset() as u32;
        let hi = cfg.style_offset() as u32;
        v.idx
            .iter()
            .zip(&v.val)
            .filter(|(i, _)| (lo..hi).contains(*i))
            .map(|(&i, &x)| (i, x))
            .collect::<Vec<_>>()
    };
    let a = block("Certainly! Rivers flow to the sea. Let me know.");
    let b = block("Rivers flow to the sea, certainly! Let me know.");
    // 4 opening n-grams + 2 closing ones, all distinct.
    assert_eq!(a.len(), 6, "{a:?}");
    let norm: f32 = a.iter().map(|(_, x)| x * x).sum::<f32>().sqrt();
    assert!((norm - 0.5).abs() < 1e-5, "{norm}");
    let shared = a.iter().filter(|(i, _)| b.iter().any(|(j, _)| j == i)).count();
    assert_eq!(shared, 2, "only the closings are shared");
    assert!(block("").is_empty());
    assert_eq!(block("Hi").len(), 1);
}

/// Neural tiers: texts whose words say nothing about their family, with a dense vector that
/// does (as if an embedding model had seen what the words alone don't).
#[test]
fn neural_block_is_fitted_required_and_round_trips() {
    let fam = ["up", "up", "other", "other", "third"];
    let model = ["up-a", "up-b", "other-a", "other-b", "third-a"];
    let mk = |split: usize| -> Vec<(String, &'static str, &'static str, Vec<f32>)> {
        (0..40)
            .map(|i| {
                let k = i % 5;
                // deterministic jitter so the block has variance in every dimension
                let j = ((i * 7 + split * 13) % 11) as f32 / 11.0 - 0.5;
                let v = match fam[k] {
                    "up" => vec![1.0 + 0.3 * j, 0.2 * j, 0.1],
                    "other" => vec![0.2 * j, 1.0 + 0.3 * j, 0.1 * j],
                    _ => vec![0.3 * j, 0.3 * j, 1.0 + 0.2 * j],
                };
                (
                    format!("a plain sentence about item {} of split {split}", i / 5),
                    model[k],
                    fam[k],
                    v,
                )
            })
            .collect()
    };
    let (train, calib) = (mk(0), mk(1));
    fn lt<'a>(v: &'a [(String, &'static str, &'static str, Vec<f32>)]) -> Vec<LabeledText<'a>> {
        v.iter()
            .map(|(t, m, f, d)| LabeledText {
                text: t,
                model: m,
                family: f,
                dense: Some(d),
                prompt: None,
            })
            .collect()
    }
    let mut opts = FitOptions::lexical("neural", "up", serde_json::json!({"name": "fixture"}));
    opts.dense_tiers = vec![detector::dense::TIER_EMBEDDING.into()];
    opts.dense_scale = 3.0;
    let p = Profile::fit(&lt(&train), &lt(&calib), &opts).expect("fit with a neural block");
    assert_eq!(p.tiers(), vec!["lexical".to_string(), "minilm-embedding".to_string()]);
    let text = "a plain sentence about item 9 of split 2";
    let up = p.score_with(text, None, Some(&[1.0, 0.0, 0.1])).expect("score with dense");
    let other = p.score_with(text, None, Some(&[0.0, 1.0, 0.0])).expect("score with dense");
    assert!(up.score > other.score + 1.0, "{} vs {}", up.score, other.score);
    assert_eq!(up.family, "up");
    assert!(
        up.evidence.iter().any(|e| e.label == "neural: minilm-embedding" && e.weight > 0.0),
        "{:?}",
        up.evidence
    );
    // Missing or mis-sized neural features are errors, never a silent lexical-only score.
    assert!(matches!(p.score_with(text, None, None), Err(DetectorError::TierMissing { .. })));
    assert!(p.score_fast(text).is_nan());
    assert!(matches!(p.score_with(text, None, Some(&[1.0])), Err(DetectorError::Invalid(_))));
    // A calibration text without its vector is refused at fit time.
    let mut bad = lt(&calib);
    bad[3].dense = None;
    assert!(Profile::fit(&lt(&train), &bad, &opts).is_err());
    // Round trip keeps the block.
    let q = Profile::from_bytes(&p.to_bytes().expect("bytes")).expect("load");
    assert_eq!(q.tiers(), p.tiers());
    assert_eq!(q.score_with(text, None, Some(&[1.0, 0.0, 0.1])).unwrap().score, up.score);
    // Neural only: no lexical block at all.
    opts.lexical = false;
    let n = Profile::fit(&lt(&train), &lt(&calib), &opts).expect("neural-only fit");
    assert_eq!(n.tiers(), vec!["minilm-embedding".to_string()]);
    let a = n.score_with(text, None, Some(&[1.0, 0.0, 0.1])).unwrap().score;
    let b = n
        .score_with("completely different words here", None, Some(&[1.0, 0.0, 0.1]))
        .unwrap()
        .score;
    assert_eq!(a, b, "a neural-only profile ignores the words");
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
    let texts_other: Vec<String> =
        (0..30).map(|i| format!("topic{i} is simple. people like it a lot, i think.")).collect();
    let s_up: Vec<_> = texts_up.iter().map(|t| p.score(t, None)).collect();
    let s_other: Vec<_> = texts_other.iter().map(|t| p.score(t, None)).collect();
    let v_up = p.verdict(&s_up, &VerdictOptions::default());
    let v_other = p.verdict(&s_other, &VerdictOptions::default());
    assert!(v_up.statistic > v_other.statistic);
    assert!(v_up.p_value < v_other.p_value);
    // Style is triage: it ranks the upstream-like suspect above the terse one and decides
    // neither (the old rule flagged the first and could call the second independent).
    assert_eq!((v_up.decision, v_other.decision), (Decision::Undecided, Decision::Undecided));
    let (t_up, t_other) = (v_up.triage.as_ref().unwrap(), v_other.triage.as_ref().unwrap());
    assert!(
        t_up.rank <= t_other.rank && t_up.percentile >= t_other.percentile,
        "{t_up:?} {t_other:?}"
    );
    assert_eq!(t_up.reference_models, p.calibration().null_models.len());
    assert!((t_up.min_p_value - 1.0 / (t_up.reference_models as f64 + 1.0)).abs() < 1e-12);
    assert_eq!(v_up.teacher.as_deref(), Some("up"));
    assert_eq!(v_up.n, 30);
    assert_eq!(v_up.growth.last().map(|g| g.n), Some(30));
    assert_eq!(v_up.top_samples.len(), 5);
    // The verdict carries its rule's leave-one-model-out error check, computed on the null it used.
    let cal = p.calibration();
    let expect: detector::ErrorCheck =
        detector::verdict::NullCheck::run(&cal.null_models, &cal.upstream_models, 0.01).into();
    assert_eq!(v_up.error_check.as_ref(), Some(&expect));
    // Each null model is tested against the null models of the *other* families; one whose
    // other families hold fewer than two models cannot be tested.
    let testable = cal
        .null_models
        .iter()
        .filter(|m| cal.null_models.iter().filter(|o| o.family != m.family).count() >= 2)
        .count();
    assert_eq!(
        (expect.independents, expect.upstream_models),
        (testable, cal.upstream_models.len())
    );
}

#[test]
fn loading_rejects_other_versions_and_non_profiles() {
    let p = fit();
    let mut bytes = p.to_bytes().expect("bytes");
    bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    match Profile::from_bytes(&bytes) {
        Err(DetectorError::Version { found, expected }) => {
            assert_eq!((found, expected), (FORMAT_VERSION + 1, FORMAT_VERSION))
        }
        other => panic!("expected a version error, got {other:?}"),
    }
    assert!(matches!(
        Profile::from_bytes(b"not a profile at all"),
        Err(DetectorError::NotAProfile)
    ));
    let mut cut = p.to_bytes().expect("bytes");
    cut.truncate(cut.len() / 2);
    assert!(matches!(Profile::from_bytes(&cut), Err(DetectorError::Corrupt(_))));
}

#[test]
fn builtin_profile_loads_and_reads_identity_claims() {
    let p = Profile::builtin().expect("the built-in profile is compiled in");
    assert_eq!(p.upstream(), "openai");
    assert!(p.meta().families.len() >= 5);
    let s =
        p.score("As an AI language model developed by OpenAI, I cannot browse the internet.", None);
    assert!(s.claims.iter().any(|c| c.family == "openai" && c.kind == "creator"));
    assert!(s.evidence.iter().any(|e| e.kind == EvidenceKind::Identity && e.span == Some([0, 23])));
    assert!(s.fpr > 0.0 && s.fpr <= 1.0);
    // The explicit claim pulls towards the upstream; the disclaimer is a cue that pulls neither
    // way (it once read as evidence against the upstream, weight −1, with family "unknown").
    let ids: Vec<_> = s.evidence.iter().filter(|e| e.kind == EvidenceKind::Identity).collect();
    assert!(ids.iter().any(|e| e.label.starts_with("creator claim (openai)") && e.weight == 1.0));
    assert!(ids.iter().any(|e| e.label.starts_with("ai_disclaimer cue") && e.weight == 0.0));
    // Its metadata carries the verdict's own error check on the calibration models, each left out.
    let check = &p.meta().calibration["verdict_check"];
    assert_eq!(check["models"].as_u64(), Some(p.calibration().null_models.len() as u64), "{check}");
    assert!(
        check["flagged_model_level"].is_array() && check["upstream_flagged_model_level"].is_array(),
        "{check}"
    );
}

/// Prompt alignment: calibration texts that answer shared prompts become references; a response
/// to one of those prompts gets `aligned = score − mean reference score`, its FPR on the aligned
/// null, and a verdict over such responses runs on the aligned scale.
#[test]
fn prompt_aligned_scores_and_verdicts() {
    let train = corpus(0);
    let calib = corpus(1);
    // corpus() writes 5 answers (one per model) per topic: the topic is the shared prompt.
    let prompts: Vec<String> = calib
        .iter()
        .map(|(t, _, _)| {
            format!(
                "Tell me about {}",
                t.split_whitespace()
                    .find(|w| [
                        "rivers",
                        "bread",
                        "chess",
                        "volcanoes",
                        "jazz",
                        "tides",
                        "bees",
                        "glass",
                        "maps",
                        "clocks"
                    ]
                    .iter()
                    .any(|k| w.trim_matches(|c: char| !c.is_alphanumeric()) == *k))
                    .unwrap_or("?")
                    .trim_matches(|c: char| !c.is_alphanumeric())
            )
        })
        .collect();
    let tr: Vec<LabeledText> = train
        .iter()
        .map(|(t, m, f)| LabeledText { text: t, model: m, family: f, dense: None, prompt: None })
        .collect();
    let ca: Vec<LabeledText> = calib
        .iter()
        .zip(&prompts)
        .map(|((t, m, f), p)| LabeledText {
            text: t,
            model: m,
            family: f,
            dense: None,
            prompt: Some(p),
        })
        .collect();
    let p = Profile::fit(&tr, &ca, &FitOptions::lexical("aligned", "up", serde_json::json!({})))
        .expect("fit");
    assert_eq!(p.reference_prompts(), 10);

    let text = "Certainly! Here are some facts about jazz:\n\n1. **First**, jazz matters.\n\nI hope this helps!";
    let raw = p.score(text, None);
    assert_eq!(raw.aligned, None, "no prompt, no alignment");
    // The reference mean for the prompt: the calibration's held-out scores of the five answers
    // to it (each model scored by a fit without its family, or without itself for an upstream
    // model). Those fits cannot be redone here (a fit without a family leaves too few null
    // models for `Profile::fit`), so check that the mean is one over five held-out answers
    // rather than the full profile's in-sample scores, which pull each answer to its family.
    let cal = p.calibration().aligned.as_ref().expect("aligned calibration");
    let mean = cal.refs.mean("Tell me about jazz").expect("references for jazz");
    let in_sample: Vec<f64> = ca
        .iter()
        .filter(|t| t.prompt == Some("Tell me about jazz"))
        .map(|t| p.score(t.text, None).score)
        .collect();
    assert_eq!(in_sample.len(), 5);
    let in_sample_mean = in_sample.iter().sum::<f64>() / 5.0;
    assert!((mean - in_sample_mean).abs() > 1e-6, "{mean} is the in-sample mean");
    let al = p.score(text, Some("  tell me ABOUT jazz ")); // matched despite case and spacing
    let a = al.aligned.expect("aligned");
    assert!((a - (raw.score - mean)).abs() < 1e-3, "{a} vs {} − {mean}", raw.score);
    assert_eq!(p.score(text, Some("Tell me about owls")).aligned, None, "unknown prompt");

    let up: Vec<_> = (0..10).map(|i| p.score(&format!("Certainly! Here are some facts about x{i}:\n\n1. **First**, it matters.\n\nI hope this helps!"), Some("Tell me about jazz"))).collect();
    let v = p.verdict(&up, &VerdictOptions::default());
    assert!(v.prompt_aligned);
    assert!((v.statistic - up.iter().map(|t| t.aligned.unwrap()).sum::<f64>() / 10.0).abs() < 1e-9);
    let mut mixed = up.clone();
    mixed.push(p.score(text, None));
    assert!(
        !p.verdict(&mixed, &VerdictOptions::default()).prompt_aligned,
        "one unaligned response: raw scale for all"
    );
}
