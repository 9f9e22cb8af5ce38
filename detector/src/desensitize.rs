//! Deterministic "desensitization": what a lab does to upstream outputs to hide their origin
//! before training on them (the 2023 suspension story: data "desensitized" by masking names and
//! numbers and stripping the upstream's formatting). `pedigree bench` rescores the suspects'
//! answers after each step to show how much of the per-text signal survives it; the membership
//! evaluation builds its simulated students from the same steps (plus random sentence drops and
//! rewording, which it adds itself).
//!
//! Each step is a pure function of the text, so a bench table is reproducible.

use once_cell::sync::Lazy;
use regex::Regex;

/// One desensitization step, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Every number (`3`, `1,024`, `2.5`) becomes `[NUM]`.
    MaskNumbers,
    /// Capitalised words inside a sentence (names of people, places, products) become `[NAME]`.
    MaskNames,
    /// Markdown removed: headings, list markers, bold/italic markers, backticks.
    StripMarkdown,
    /// All three, in the order numbers → markdown → names.
    All,
}

impl Step {
    pub const EACH: [Step; 4] =
        [Step::MaskNumbers, Step::MaskNames, Step::StripMarkdown, Step::All];

    pub fn name(&self) -> &'static str {
        match self {
            Step::MaskNumbers => "mask_numbers",
            Step::MaskNames => "mask_names",
            Step::StripMarkdown => "strip_markdown",
            Step::All => "all",
        }
    }

    pub fn apply(&self, text: &str) -> String {
        match self {
            Step::MaskNumbers => mask_numbers(text),
            Step::MaskNames => mask_names(text),
            Step::StripMarkdown => strip_markdown(text),
            Step::All => mask_names(&strip_markdown(&mask_numbers(text))),
        }
    }
}

static NUM: Lazy<Regex> = Lazy::new(|| Regex::new(r"\d+(?:[.,]\d+)*").expect("number regex"));
// A list or heading marker at the start of a line; `[NUM].` is a numbered item after masking.
static MARKER: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?m)^[ \t]*(?:#+|[-*+•]|\d+[.)]|\[NUM\][.)])[ \t]+").expect("marker regex")
});

pub fn mask_numbers(text: &str) -> String {
    NUM.replace_all(text, "[NUM]").into_owned()
}

pub fn strip_markdown(text: &str) -> String {
    MARKER.replace_all(text, "").replace("**", "").replace("__", "").replace('`', "")
}

/// A capitalised word (upper-case first letter, some lower-case after it) that follows a
/// lower-case word or a comma is taken for a name; runs of names become one `[NAME]`.
/// Sentence-initial words are kept: telling "The" from "Paris" there needs a dictionary, and a
/// desensitizing lab would not have better than this either.
pub fn mask_names(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev_lower = false;
    let mut in_name = false;
    for (i, tok) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let cap = tok.chars().next().is_some_and(char::is_uppercase)
            && tok.chars().skip(1).any(char::is_lowercase);
        if cap && (prev_lower || in_name) {
            let tail: String = tok.chars().skip_while(|c| c.is_alphabetic()).collect();
            if in_name {
                // Extend the run: drop the separating space just written.
                out.pop();
            } else {
                out.push_str("[NAME]");
            }
            out.push_str(&tail);
            // A name that ends a clause ("Paris, ...") ends the run.
            in_name = tail.is_empty();
            prev_lower = tail.ends_with(',') || tail.ends_with(';');
            continue;
        }
        in_name = false;
        prev_lower = tok.ends_with(|c: char| c.is_lowercase() || c == ',' || c == ';');
        out.push_str(tok);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_does_what_it_says() {
        let t = "## Plan\n1. Fly to New York City with 2,500 dollars.\n- Meet **Alice** at `9`.";
        assert_eq!(
            mask_numbers(t),
            "## Plan\n[NUM]. Fly to New York City with [NUM] dollars.\n- Meet **Alice** at `[NUM]`."
        );
        assert_eq!(
            strip_markdown(t),
            "Plan\nFly to New York City with 2,500 dollars.\nMeet Alice at 9."
        );
        assert_eq!(
            Step::All.apply(t),
            "Plan\nFly to [NAME] with [NUM] dollars.\nMeet [NAME] at [NUM]."
        );
        // Sentence-initial capitals are not names; a comma ends a run.
        assert_eq!(
            mask_names("The trip to Rome, Paris and Berlin."),
            "The trip to [NAME], [NAME] and [NAME]."
        );
    }

    #[test]
    fn plain_text_is_unchanged() {
        let t = "no numbers, no names, no markup here.";
        for s in Step::EACH {
            assert_eq!(s.apply(t), t, "{}", s.name());
        }
    }
}
