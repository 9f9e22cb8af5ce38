//! Self-identification: explicit claims ("developed by OpenAI", "I'm ChatGPT", "我是由OpenAI开发的")
//! and style cues (generic "As an AI language model" disclaimers, knowledge-cutoff statements).
//! A student trained on an upstream's conversations often repeats the upstream's identity
//! verbatim, which makes explicit claims the most explainable evidence there is. They are kept
//! apart from cues ([`ClaimClass`]) because a generic disclaimer is written by many families'
//! models: counting it as a claim to be OpenAI once told an analyst that SmolLM2 ("As an AI
//! product, they're …") claimed to be an OpenAI model. Claims can also be false (models trained
//! on web text sometimes claim to be ChatGPT): [`IdentityEvidence`] reports them, it decides
//! nothing.

use crate::{ClaimClass, IdentityClaim};
use once_cell::sync::Lazy;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which family each name points at. Order matters only for readability.
const FAMILY_NAMES: &[(&str, &str)] = &[
    ("openai", r"open\s?ai|chat\s?gpt|gpt-?[345](?:\.5)?(?:-turbo|o)?|text-davinci|davinci"),
    ("anthropic", r"anthropic|claude"),
    ("google", r"google|gemini|bard|palm ?2?|deepmind"),
    ("meta", r"meta(?: ai)?|llama ?[0-9]?|facebook"),
    ("mistral", r"mistral(?: ai)?|mixtral"),
    ("cohere", r"cohere|command[- ]r"),
    ("alibaba", r"alibaba|qwen|通义千问|阿里"),
    ("deepseek", r"deepseek|深度求索"),
    ("baidu", r"baidu|ernie|文心一言|百度"),
    ("zhipu", r"zhipu|chatglm|智谱"),
    ("microsoft", r"microsoft|bing|copilot|微软"),
];

struct Pattern {
    kind: &'static str,
    /// Literals one of which every match contains: a cheap prefilter, since most texts make no
    /// claim and the full regexes are comparatively slow.
    triggers: &'static [&'static str],
    /// When the pattern names no family itself, the family is read from the `name` group.
    re: Regex,
}

static NAME_RES: Lazy<Vec<(&'static str, Regex)>> = Lazy::new(|| {
    FAMILY_NAMES
        .iter()
        .map(|(f, p)| (*f, Regex::new(&format!(r"(?i)^(?:{p})$")).expect("family regex")))
        .collect()
});

static PATTERNS: Lazy<Vec<Pattern>> = Lazy::new(|| {
    let names: Vec<&str> = FAMILY_NAMES.iter().map(|(_, p)| *p).collect();
    let any = names.join("|");
    let mk = |kind, triggers, p: String| Pattern {
        kind,
        triggers,
        re: Regex::new(&p).expect("identity regex"),
    };
    vec![
        // "developed by OpenAI", "trained by Anthropic", "created by Google"
        mk("creator", &["by "], format!(r"(?i)\b(?:developed|created|trained|built|made|designed|programmed)\s+by\s+(?:the\s+)?(?:team\s+at\s+)?(?P<name>{any})\b")),
        // "I am ChatGPT", "I'm Claude", "my name is Bard", "I am a large language model called GPT-4"
        mk("model_name", &["i am", "i'm", "i’m", "my name", "this is"], format!(r"(?i)\b(?:i\s+am|i'm|i’m|my\s+name\s+is|this\s+is)\s+(?:an?\s+)?(?:(?:ai|large\s+language|language)\s+model\s+(?:called|named)\s+)?(?P<name>{any})\b")),
        // "As an AI language model", "As an AI developed by OpenAI" (family named only sometimes)
        mk("ai_disclaimer", &["as an ai"], r"(?i)\bas an ai(?:\s+language)?\s+model\b|\bas an ai(?:\s+assistant)?\b".to_string()),
        // Knowledge cutoff statements: "my knowledge cutoff is September 2021", "as of my last update in 2021"
        mk("knowledge_cutoff", &["cutoff", "cut-off", "as of my", "my training"], r"(?i)\b(?:knowledge\s+cut-?off|training\s+(?:data\s+)?cut-?off|as\s+of\s+my\s+(?:last\s+)?(?:knowledge\s+)?update|my\s+training\s+data\s+(?:only\s+)?(?:goes|extends)\s+(?:up\s+)?(?:to|until))\b(?:[^.\n]{0,40}?(?:(?:january|february|march|april|may|june|july|august|september|october|november|december)\s+)?(?P<year>20[0-9]{2}))?".to_string()),
        // Chinese: 我是由OpenAI开发的 / 我是ChatGPT / 作为一个人工智能语言模型
        mk("creator", &["由", "被"], format!(r"(?i)(?:由|被)\s*(?P<name>{any})\s*(?:公司)?\s*(?:开发|训练|创建|打造|研发)")),
        mk("model_name", &["我是", "我叫"], format!(r"(?i)我(?:是|叫)\s*(?:一个)?\s*(?P<name>{any})")),
        mk("ai_disclaimer", &["作为"], r"作为一个?(?:人工智能|AI)(?:语言)?模型".to_string()),
        // Indirect answers (to "which company's technology are you built on?"): "I'm based on
        // GPT-4", "powered by OpenAI's models", "a fine-tuned version of LLaMA".
        mk("base_model", &["based on", "built on", "powered by", "version of", "variant of", "fine-tuned", "finetuned"], format!(r"(?i)\b(?:based\s+on|built\s+on(?:\s+top\s+of)?|powered\s+by|(?:a\s+)?(?:fine-?tuned\s+)?(?:version|variant)\s+of|fine-?tuned\s+(?:from|on))\s+(?:the\s+|an?\s+)?(?P<name>{any})\b")),
        // "The company that created me is OpenAI", "the team who trained me was Anthropic".
        mk("creator", &[" me "], format!(r"(?i)\b(?:created|developed|trained|made|built|designed)\s+me\s+(?:is|was|are|were)\s+(?:the\s+)?(?:team\s+at\s+)?(?P<name>{any})\b")),
        // 基于GPT-4 / 我的开发者是OpenAI
        mk("base_model", &["基于"], format!(r"(?i)基于\s*(?P<name>{any})")),
        mk("creator", &["我的"], format!(r"(?i)我的(?:开发者|创造者|创建者|训练者|开发团队|开发公司)(?:是|为)\s*(?P<name>{any})")),
        mk("knowledge_cutoff", &["知识", "训练数据"], r"(?:我的)?(?:知识|训练数据)(?:截止|更新)(?:日期|时间)?(?:[^。\n]{0,10}?(?P<year>20[0-9]{2}))?".to_string()),
    ]
});

/// One automaton over every pattern's triggers, mapping each trigger back to its pattern.
static TRIGGERS: Lazy<(aho_corasick::AhoCorasick, Vec<usize>)> = Lazy::new(|| {
    let mut lits = Vec::new();
    let mut owner = Vec::new();
    for (i, p) in PATTERNS.iter().enumerate() {
        for t in p.triggers {
            lits.push(*t);
            owner.push(i);
        }
    }
    let ac = aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(&lits)
        .expect("triggers");
    (ac, owner)
});

/// Whether a `knowledge_cutoff` cue states ChatGPT's famous "September 2021" or GPT-4's 2022
/// cutoff. The style features count such a cue with the OpenAI claims (as they always did, so
/// profiles keep their inputs), but it is no claim: other models trained on data of those years
/// say the same, so the cue's `family` stays `unknown`. The year, when the pattern found one, is
/// the last four characters of the match (both cutoff patterns end with it).
pub fn cutoff_suggests_openai(c: &IdentityClaim) -> bool {
    c.kind == "knowledge_cutoff" && (c.text.ends_with("2021") || c.text.ends_with("2022"))
}

fn family_of(name: &str) -> &'static str {
    let name = name.trim();
    NAME_RES.iter().find(|(_, re)| re.is_match(name)).map_or("unknown", |(f, _)| f)
}

/// Sentence ends for attaching a disclaimer to an explicit claim in the same sentence.
fn ends_sentence(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '\n' | '。' | '！' | '？')
}

/// All identity claims and cues in a text, in order of appearance, with character spans.
pub fn find_claims(text: &str) -> Vec<IdentityClaim> {
    // Byte spans while matching (the sentence test slices the text), characters in the output.
    let mut out: Vec<(IdentityClaim, [usize; 2])> = Vec::new();
    let mut possible = vec![false; PATTERNS.len()];
    for m in TRIGGERS.0.find_overlapping_iter(text) {
        possible[TRIGGERS.1[m.pattern().as_usize()]] = true;
    }
    for (p, _) in PATTERNS.iter().zip(&possible).filter(|(_, &ok)| ok) {
        for c in p.re.captures_iter(text) {
            let m = c.get(0).expect("whole match");
            // Only explicit patterns have a `name` group; a cue names no family by itself.
            let family = c.name("name").map_or("unknown", |n| family_of(n.as_str()));
            let bytes = [m.start(), m.end()];
            // Overlapping patterns ("As an AI language model developed by OpenAI"): keep both only
            // when they are different kinds.
            if out.iter().any(|(o, b)| o.kind == p.kind && b[0] < bytes[1] && bytes[0] < b[1]) {
                continue;
            }
            let claim = IdentityClaim {
                family: family.to_string(),
                kind: p.kind.to_string(),
                class: ClaimClass::of_kind(p.kind),
                text: m.as_str().to_string(),
                span: [
                    crate::text::char_offset(text, m.start()),
                    crate::text::char_offset(text, m.end()),
                ],
            };
            out.push((claim, bytes));
        }
    }
    out.sort_by_key(|(c, _)| c.span[0]);
    // A disclaimer takes the family of an explicit claim in its own sentence ("As an AI
    // developed by Anthropic"): the family is then in the text, and it is the explicit claim that
    // counts as evidence for it.
    let same_sentence = |a: [usize; 2], b: [usize; 2]| {
        // The gap between the two matches (empty when they overlap); a sentence end inside a
        // match ("GPT-3.5") does not count.
        let (from, to) = (a[1].min(b[1]), a[0].max(b[0]));
        from >= to || !text[from..to].chars().any(ends_sentence)
    };
    let named: Vec<(String, [usize; 2])> = out
        .iter()
        .filter(|(c, _)| c.is_explicit() && c.family != "unknown")
        .map(|(c, b)| (c.family.clone(), *b))
        .collect();
    for (c, b) in out.iter_mut().filter(|(c, _)| c.kind == "ai_disclaimer") {
        if let Some((f, _)) = named.iter().find(|(_, nb)| same_sentence(*b, *nb)) {
            c.family = f.clone();
        }
    }
    out.into_iter().map(|(c, _)| c).collect()
}

/// One example of explicit self-identification, for reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdentityExample {
    /// The prompt (probe) the answer replied to, when known.
    pub prompt: Option<String>,
    /// The matched text of the claim.
    pub text: String,
    pub family: String,
    pub kind: String,
}

/// Identity evidence over a suspect's answers: explicit self-identification counted by family,
/// kept apart from style cues (counted by kind only, since they name no family). Shown before
/// any style figure, and never overridden by one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct IdentityEvidence {
    /// Explicit claims by the family they name, over every answer.
    pub explicit_claims: BTreeMap<String, usize>,
    /// What `answers` counts: `identity probes` (campaigns) or `samples` (a suspect's samples).
    pub scope: String,
    /// Answers the rate is over.
    pub answers: usize,
    /// Of those, answers with at least one explicit claim.
    pub answers_with_explicit_claim: usize,
    /// `answers_with_explicit_claim / answers`; `None` without answers.
    pub explicit_rate: Option<f64>,
    /// Up to [`IdentityEvidence::MAX_EXAMPLES`] explicit claims, one per answer, first found first.
    pub examples: Vec<IdentityExample>,
    /// Style cues by kind (`ai_disclaimer`, `knowledge_cutoff`): never attributed to a family.
    pub cues: BTreeMap<String, usize>,
    /// One sentence for a report, saying what the claims are and are not.
    pub summary: String,
}

/// What every identity summary says about claims, in the words an analyst can report.
pub const CLAIMS_ARE_EVIDENCE_NOT_A_DECISION: &str = "Explicit self-identification is strong evidence to report, but not a decision by itself: models trained on web text sometimes claim to be ChatGPT.";

impl IdentityEvidence {
    pub const MAX_EXAMPLES: usize = 3;

    /// Empty evidence whose rate counts `scope` (`identity probes`, `samples`).
    pub fn new(scope: &str) -> IdentityEvidence {
        IdentityEvidence { scope: scope.to_string(), ..Default::default() }
    }

    /// Add one answer's claims. `in_rate`: whether the answer counts towards the rate (a campaign
    /// counts only its identity probes, where a claim is what the question asks for).
    pub fn add(&mut self, prompt: Option<&str>, claims: &[IdentityClaim], in_rate: bool) {
        let mut explicit = claims.iter().filter(|c| c.is_explicit()).peekable();
        let first = explicit.peek().map(|c| (*c).clone());
        for c in explicit {
            *self.explicit_claims.entry(c.family.clone()).or_default() += 1;
        }
        for c in claims.iter().filter(|c| !c.is_explicit()) {
            *self.cues.entry(c.kind.clone()).or_default() += 1;
        }
        if in_rate {
            self.answers += 1;
            self.answers_with_explicit_claim += first.is_some() as usize;
        }
        if let Some(c) = first.filter(|_| self.examples.len() < Self::MAX_EXAMPLES) {
            self.examples.push(IdentityExample {
                prompt: prompt.map(String::from),
                text: c.text,
                family: c.family,
                kind: c.kind,
            });
        }
    }

    /// Compute the rate and the summary once every answer was added.
    pub fn finish(mut self) -> IdentityEvidence {
        self.explicit_rate = (self.answers > 0)
            .then(|| self.answers_with_explicit_claim as f64 / self.answers as f64);
        let list = |m: &BTreeMap<String, usize>| {
            let mut v: Vec<(&String, &usize)> = m.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            v.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
        };
        let cues: usize = self.cues.values().sum();
        let cue_part = if cues == 0 {
            String::new()
        } else {
            format!(
                " Style cues ({}) name no family and are not counted as claims.",
                list(&self.cues)
            )
        };
        let rate_part = if self.answers == 0 {
            String::new()
        } else {
            format!(
                " ({} of {} {} with an explicit claim)",
                self.answers_with_explicit_claim, self.answers, self.scope
            )
        };
        self.summary = if self.explicit_claims.is_empty() {
            format!("No explicit self-identification{rate_part}.{cue_part}")
        } else {
            format!(
                "Explicit self-identification by family: {}{rate_part}.{cue_part} {CLAIMS_ARE_EVIDENCE_NOT_A_DECISION}",
                list(&self.explicit_claims)
            )
        };
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fams(t: &str) -> Vec<(String, String)> {
        find_claims(t).into_iter().map(|c| (c.kind, c.family)).collect()
    }

    #[test]
    fn english_claims() {
        let c = find_claims("As an AI language model developed by OpenAI, I cannot browse.");
        assert_eq!(c.len(), 2);
        // The disclaimer is a cue; it names OpenAI only because the same sentence does, and it
        // is the explicit creator claim that carries the evidence.
        assert_eq!(
            (c[0].kind.as_str(), c[0].family.as_str(), c[0].class, c[0].span),
            ("ai_disclaimer", "openai", ClaimClass::Cue, [0, 23])
        );
        assert_eq!(
            (c[1].kind.as_str(), c[1].family.as_str(), c[1].class),
            ("creator", "openai", ClaimClass::Explicit)
        );
        assert_eq!(c[1].text, "developed by OpenAI");
        assert_eq!(
            fams("Hi! I'm Claude, made by Anthropic."),
            vec![("model_name".into(), "anthropic".into()), ("creator".into(), "anthropic".into())]
        );
        assert_eq!(fams("I am ChatGPT."), vec![("model_name".into(), "openai".into())]);
        assert_eq!(
            fams("I'm a large language model trained by Google."),
            vec![("creator".into(), "google".into())]
        );
    }

    #[test]
    fn knowledge_cutoff() {
        let c = find_claims("My knowledge cutoff is September 2021, so I may be out of date.");
        assert_eq!(c.len(), 1);
        // A cutoff year names no family: the cue stays `unknown` (the style features still
        // count ChatGPT's years with the OpenAI claims, see `cutoff_suggests_openai`).
        assert_eq!(
            (c[0].kind.as_str(), c[0].family.as_str(), c[0].class),
            ("knowledge_cutoff", "unknown", ClaimClass::Cue)
        );
        assert!(c[0].text.ends_with("2021"));
        assert!(cutoff_suggests_openai(&c[0]));
        let c = find_claims("My knowledge cutoff is 2023.");
        assert!(!cutoff_suggests_openai(&c[0]), "{c:?}");
        let c = find_claims("As of my last update, I can't say.");
        assert_eq!(c[0].kind, "knowledge_cutoff");
        assert!(!cutoff_suggests_openai(&c[0]), "{c:?}");
    }

    #[test]
    fn chinese_claims_have_char_spans() {
        let t = "你好，我是由OpenAI开发的人工智能助手。";
        let c = find_claims(t);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            (c[0].kind.as_str(), c[0].family.as_str(), c[0].class),
            ("creator", "openai", ClaimClass::Explicit)
        );
        let chars: Vec<char> = t.chars().collect();
        let s: String = chars[c[0].span[0]..c[0].span[1]].iter().collect();
        assert_eq!(s, c[0].text);
        assert_eq!(
            fams("作为一个人工智能语言模型，我不能"),
            vec![("ai_disclaimer".into(), "unknown".into())]
        );
        assert_eq!(fams("我是通义千问"), vec![("model_name".into(), "alibaba".into())]);
    }

    #[test]
    fn a_disclaimer_alone_is_a_cue_of_no_family() {
        let c = find_claims("As an AI language model, I cannot browse the internet.");
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            (c[0].kind.as_str(), c[0].family.as_str(), c[0].class),
            ("ai_disclaimer", "unknown", ClaimClass::Cue)
        );
        // A claim in another sentence does not lend the disclaimer its family.
        let c = find_claims("As an AI, I have no opinions. I was trained by Anthropic.");
        assert_eq!(
            c.iter().map(|c| (c.kind.as_str(), c.family.as_str())).collect::<Vec<_>>(),
            vec![("ai_disclaimer", "unknown"), ("creator", "anthropic")]
        );
        // The same sentence does, even across a dot inside the claim.
        assert_eq!(
            fams("As an AI language model based on GPT-3.5, I can't."),
            vec![("ai_disclaimer".into(), "openai".into()), ("base_model".into(), "openai".into())]
        );
    }

    /// The answer of SmolLM2-135M-Instruct (a real llama.cpp server) that was once reported as
    /// an OpenAI claim: a generic "As an AI" names no family.
    #[test]
    fn smollm2_product_sentence_is_no_explicit_claim() {
        let t = "Google has many products. As an AI product, they're currently working on new features to make search better.";
        let c = find_claims(t);
        assert!(c.iter().all(|c| !c.is_explicit()), "{c:?}");
        assert!(c.iter().all(|c| c.family == "unknown"), "{c:?}");
        let mut e = IdentityEvidence::new("identity probes");
        e.add(Some("Who made you?"), &c, true);
        let e = e.finish();
        assert!(e.explicit_claims.is_empty(), "{e:?}");
        assert_eq!(e.cues.get("ai_disclaimer"), Some(&1), "{e:?}");
        assert_eq!(e.explicit_rate, Some(0.0));
        assert!(
            e.summary.starts_with(
                "No explicit self-identification (0 of 1 identity probes with an explicit claim)."
            ),
            "{}",
            e.summary
        );
    }

    #[test]
    fn chinese_explicit_claims_are_explicit() {
        for (t, kind, fam) in [
            ("我是由OpenAI开发的。", "creator", "openai"),
            ("我是ChatGPT。", "model_name", "openai"),
            ("我的开发者是Anthropic。", "creator", "anthropic"),
        ] {
            let c = find_claims(t);
            assert!(
                c.iter().any(|c| c.is_explicit() && c.kind == kind && c.family == fam),
                "{t}: {c:?}"
            );
        }
        assert!(find_claims("作为一个AI模型，我无法上网。").iter().all(|c| !c.is_explicit()));
    }

    #[test]
    fn evidence_counts_explicit_claims_by_family_and_cues_by_kind() {
        let answers = [
            ("Who are you?", "As an AI language model developed by OpenAI, I help.", true),
            ("Who made you?", "I am ChatGPT, created by OpenAI.", true),
            ("Name?", "As an AI, I have no name.", true),
            ("Write a poem", "I'm Claude. My knowledge cutoff is 2021.", false),
            ("Sum 2+2", "4", false),
        ];
        let mut e = IdentityEvidence::new("identity probes");
        for (p, a, identity) in answers {
            e.add(Some(p), &find_claims(a), identity);
        }
        let e = e.finish();
        assert_eq!(
            e.explicit_claims,
            BTreeMap::from([("openai".to_string(), 3), ("anthropic".to_string(), 1)])
        );
        assert_eq!(
            e.cues,
            BTreeMap::from([("ai_disclaimer".to_string(), 2), ("knowledge_cutoff".to_string(), 1)])
        );
        assert_eq!((e.answers, e.answers_with_explicit_claim), (3, 2));
        assert!((e.explicit_rate.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(e.examples.len(), 3);
        assert_eq!(
            (
                e.examples[0].prompt.as_deref(),
                e.examples[0].text.as_str(),
                e.examples[0].kind.as_str()
            ),
            (Some("Who are you?"), "developed by OpenAI", "creator")
        );
        assert_eq!(e.examples[2].family, "anthropic");
        assert!(
            e.summary.starts_with("Explicit self-identification by family: openai 3, anthropic 1 (2 of 3 identity probes with an explicit claim)."),
            "{}",
            e.summary
        );
        assert!(e.summary.contains("not a decision"), "{}", e.summary);
        assert_eq!(IdentityEvidence::new("samples").finish().explicit_rate, None);
    }

    #[test]
    fn claims_stored_without_a_class_read_with_the_class_of_their_kind() {
        let old: Vec<IdentityClaim> = serde_json::from_str(
            r#"[{"family":"openai","kind":"ai_disclaimer","text":"As an AI","span":[0,8]},
                {"family":"openai","kind":"creator","text":"developed by OpenAI","span":[9,28]}]"#,
        )
        .unwrap();
        assert_eq!(old[0].class, ClaimClass::Cue);
        assert_eq!(old[1].class, ClaimClass::Explicit);
        let c = find_claims("I am ChatGPT.");
        let back: Vec<IdentityClaim> =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert!(serde_json::to_string(&c).unwrap().contains(r#""class":"explicit""#));
    }

    #[test]
    fn indirect_claims() {
        assert_eq!(
            fams("I'm based on GPT-4, a model by another company."),
            vec![("base_model".into(), "openai".into())]
        );
        assert_eq!(
            fams("I am powered by OpenAI's technology."),
            vec![("base_model".into(), "openai".into())]
        );
        assert_eq!(
            fams("I'm a fine-tuned version of LLaMA 2."),
            vec![("base_model".into(), "meta".into())]
        );
        assert_eq!(
            fams("The company that created me is Anthropic."),
            vec![("creator".into(), "anthropic".into())]
        );
        assert_eq!(fams("我基于GPT-4。"), vec![("base_model".into(), "openai".into())]);
        assert_eq!(fams("我的开发者是OpenAI。"), vec![("creator".into(), "openai".into())]);
        // Ordinary uses of the same words are not claims.
        assert!(find_claims("The film is based on a true story and built on solid research.")
            .is_empty());
        assert!(find_claims("Tell me about the team that made me laugh.").is_empty());
    }

    #[test]
    fn ordinary_text_has_no_claims() {
        assert!(find_claims("The model was developed by researchers in 1998. I am happy to help.")
            .is_empty());
        assert!(find_claims("Meta-analysis shows that exercise helps.").is_empty());
    }
}
