//! Self-identification claims: "As an AI language model developed by OpenAI", "I'm ChatGPT",
//! "我是由OpenAI开发的", knowledge-cutoff statements. A student trained on an upstream's
//! conversations often repeats the upstream's identity verbatim, which makes these claims the most
//! explainable evidence there is.

use crate::IdentityClaim;
use once_cell::sync::Lazy;
use regex::Regex;

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

/// Known cutoff years of the upstream chat models, to attribute a bare cutoff statement.
fn cutoff_family(year: Option<&str>) -> &'static str {
    match year {
        // ChatGPT's famous "September 2021" and GPT-4's 2021-2023 cutoffs.
        Some("2021") | Some("2022") => "openai",
        _ => "unknown",
    }
}

fn family_of(name: &str) -> &'static str {
    let name = name.trim();
    NAME_RES.iter().find(|(_, re)| re.is_match(name)).map_or("unknown", |(f, _)| f)
}

/// All identity claims in a text, in order of appearance, with character spans.
pub fn find_claims(text: &str) -> Vec<IdentityClaim> {
    let mut out: Vec<IdentityClaim> = Vec::new();
    let mut possible = vec![false; PATTERNS.len()];
    for m in TRIGGERS.0.find_overlapping_iter(text) {
        possible[TRIGGERS.1[m.pattern().as_usize()]] = true;
    }
    for (p, _) in PATTERNS.iter().zip(&possible).filter(|(_, &ok)| ok) {
        for c in p.re.captures_iter(text) {
            let m = c.get(0).expect("whole match");
            let family = if let Some(n) = c.name("name") {
                family_of(n.as_str())
            } else if p.kind == "knowledge_cutoff" {
                cutoff_family(c.name("year").map(|y| y.as_str()))
            } else {
                // "As an AI language model" is ChatGPT's signature disclaimer (it is what the
                // 2023 "desensitised" datasets scrubbed), so it is attributed to OpenAI.
                "openai"
            };
            let span = [
                crate::text::char_offset(text, m.start()),
                crate::text::char_offset(text, m.end()),
            ];
            // Overlapping patterns ("As an AI language model developed by OpenAI"): keep both only
            // when they are different kinds.
            if out.iter().any(|o| o.kind == p.kind && o.span[0] < span[1] && span[0] < o.span[1]) {
                continue;
            }
            out.push(IdentityClaim {
                family: family.to_string(),
                kind: p.kind.to_string(),
                text: m.as_str().to_string(),
                span,
            });
        }
    }
    out.sort_by_key(|c| c.span[0]);
    out
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
        assert_eq!(
            (c[0].kind.as_str(), c[0].family.as_str(), c[0].span),
            ("ai_disclaimer", "openai", [0, 23])
        );
        assert_eq!((c[1].kind.as_str(), c[1].family.as_str()), ("creator", "openai"));
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
        assert_eq!((c[0].kind.as_str(), c[0].family.as_str()), ("knowledge_cutoff", "openai"));
        assert!(c[0].text.ends_with("2021"));
    }

    #[test]
    fn chinese_claims_have_char_spans() {
        let t = "你好，我是由OpenAI开发的人工智能助手。";
        let c = find_claims(t);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!((c[0].kind.as_str(), c[0].family.as_str()), ("creator", "openai"));
        let chars: Vec<char> = t.chars().collect();
        let s: String = chars[c[0].span[0]..c[0].span[1]].iter().collect();
        assert_eq!(s, c[0].text);
        assert_eq!(
            fams("作为一个人工智能语言模型，我不能"),
            vec![("ai_disclaimer".into(), "openai".into())]
        );
        assert_eq!(fams("我是通义千问"), vec![("model_name".into(), "alibaba".into())]);
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
