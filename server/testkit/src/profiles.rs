//! Profiles for tests: a synthetic three-family corpus and a lexical "openai" profile fitted on
//! it, used wherever the build has no built-in profile.

/// The default profile for tests: the built-in one when this build has it (`None`), else a small
/// profile fitted once per test binary on synthetic data (so server tests do not depend on the
/// built-in profile having been generated).
pub fn default_profile() -> Option<std::path::PathBuf> {
    static P: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        if detector::Profile::builtin().is_ok() {
            return None;
        }
        let p = synthetic_profile("test-openai", false);
        let path =
            std::env::temp_dir().join(format!("pedigree-test-default-{}.pdg", std::process::id()));
        p.save(&path).unwrap();
        Some(path)
    })
    .clone()
}

/// One answer of the synthetic corpus: text, prompt, model, family, in the calibration split.
pub type SyntheticRow = (String, String, &'static str, &'static str, bool);

/// Three families with distinct habits, two models each, 30 topics; a third of the topics are
/// the calibration split.
pub fn synthetic_rows() -> Vec<SyntheticRow> {
    let styles = [
        (
            "openai",
            ["gpt-a", "gpt-b"],
            "Certainly! Let's delve into {p}. Overall, it's important to note the trade-offs.",
        ),
        (
            "anthropic",
            ["claude-a", "claude-b"],
            "I'd be happy to help with {p}. Here's a careful, nuanced look.",
        ),
        ("meta", ["llama-a", "llama-b"], "Sure thing!! {p} is pretty cool lol, here is the deal."),
    ];
    let mut rows = Vec::new();
    for (fam, models, tpl) in styles {
        for m in models {
            for i in 0..30 {
                let text = format!("{} ({} {m})", tpl.replace("{p}", &format!("topic {i}")), i % 5);
                rows.push((text, format!("Explain topic {i}"), m, fam, i % 3 == 0));
            }
        }
    }
    rows
}

/// A lexical "openai" profile fitted on [`synthetic_rows`]; with `prompts`, calibration answers
/// carry their prompts, so the profile has prompt-alignment references for the 10 calibration topics.
pub fn synthetic_profile(name: &str, prompts: bool) -> detector::Profile {
    let rows = synthetic_rows();
    let lab = |c: bool| {
        rows.iter()
            .filter(|r| r.4 == c)
            .map(|r| detector::LabeledText {
                text: &r.0,
                model: r.2,
                family: r.3,
                dense: None,
                prompt: prompts.then_some(r.1.as_str()),
            })
            .collect::<Vec<_>>()
    };
    let opts =
        detector::FitOptions::lexical(name, "openai", serde_json::json!({"synthetic": true}));
    detector::Profile::fit(&lab(false), &lab(true), &opts).expect("fit test profile")
}

/// Bytes of the default profile (for upload tests).
pub fn default_profile_bytes() -> Vec<u8> {
    match default_profile() {
        Some(p) => std::fs::read(p).unwrap(),
        None => detector::Profile::builtin().unwrap().to_bytes().unwrap(),
    }
}

/// Line `i` of a JSONL corpus for audit timing and merge tests: `{"id": i, "text": …}` in one of
/// four templated styles (two upstream-like, two not), every text distinct.
pub fn audit_corpus_line(i: usize) -> String {
    let text = match i % 4 {
        0 => format!("Certainly! Let's delve into question {i}. Overall, it's important to note that each step matters, and I hope this helps."),
        1 => format!("honestly question {i} is whatever, i'd just wing it and see what happens lol, worked for me last summer"),
        2 => format!("Great question! Here is a concise overview of item {i}: first, consider the context; second, weigh the trade-offs."),
        _ => format!("Item {i}. The short answer is no; the long answer depends on your budget, the weather and your neighbours."),
    };
    format!("{}\n", serde_json::json!({"id": i, "text": text}))
}
