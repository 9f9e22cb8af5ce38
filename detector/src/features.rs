//! Per-text features: hashed word uni/bigrams, character n-grams and the answer's opening and
//! closing words (the lexical blocks), and a dense style block (formatting habits, length and sentence statistics, punctuation, function
//! words, identity claims).
//!
//! The lexical blocks follow the classic authorship-attribution recipe (sublinear term
//! frequencies, L2-normalised per block; cf. Stamatatos 2009, "A survey of modern authorship
//! attribution methods") with the hashing trick (Weinberger et al. 2009) so a profile needs no
//! vocabulary.

use crate::text::{self, combine, mix, Token};
use serde::{Deserialize, Serialize};

/// Which features a profile uses and how many hash buckets each lexical block has.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeatureConfig {
    /// log2 of the word n-gram buckets.
    pub word_bits: u32,
    /// log2 of the character n-gram buckets (0 disables the block).
    pub char_bits: u32,
    /// Character n-gram lengths, inclusive.
    pub char_min: usize,
    pub char_max: usize,
    /// Weight of the standardised style block relative to the unit-norm lexical blocks.
    pub style_scale: f32,
    /// log2 of the edge-word buckets, the answer's opening and closing words (see
    /// [`edge_tokens`]); 0 disables the block (profiles of format 3, from before it, read as 0).
    pub edge_bits: u32,
    /// Weight of the unit-norm edge-word block.
    pub edge_scale: f32,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            word_bits: 18,
            char_bits: 0,
            char_min: 3,
            char_max: 5,
            // 0.05, not the 0.15 the upstream-version validation alone preferred: the style
            // block (formatting, length, function-word rates) ranks unseen upstream versions
            // above unseen families, but at 0.10-0.15 it also lifts human-data independents
            // (humpback, guanaco) among OpenAI's students at the model level; 0.05 is the
            // largest weight at which the bench keys beat the baseline averaged over five
            // prompt splits (README, "How the style weight was chosen").
            style_scale: 0.05,
            edge_bits: 16,
            edge_scale: 1.0,
        }
    }
}

/// Largest log2 bucket count of a hashed block (2^24 weights per model component).
pub const MAX_BITS: u32 = 24;
/// Longest character n-gram.
pub const MAX_CHAR_NGRAM: usize = 16;

/// Buckets of an optional hashed block: none when `bits` is 0.
fn optional_buckets(bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        1 << bits
    }
}

impl FeatureConfig {
    /// The ranges every profile's features must lie in, whether fitted or loaded from a file (a
    /// file is user input): hash sizes up to 2^[`MAX_BITS`], character n-grams of length
    /// 1..=[`MAX_CHAR_NGRAM`] with `char_min ≤ char_max` (extraction sizes its counter from
    /// their difference), and finite, non-negative block weights (a NaN weight would make every
    /// score NaN).
    pub fn check(&self) -> Result<(), String> {
        let bits = [
            ("word_bits", self.word_bits),
            ("char_bits", self.char_bits),
            ("edge_bits", self.edge_bits),
        ];
        for (name, bits) in bits {
            if bits > MAX_BITS {
                return Err(format!("{name} {bits} outside 0..={MAX_BITS}"));
            }
        }
        if self.char_bits > 0
            && !(1 <= self.char_min
                && self.char_min <= self.char_max
                && self.char_max <= MAX_CHAR_NGRAM)
        {
            return Err(format!(
                "character n-gram lengths {}..={} outside 1..={MAX_CHAR_NGRAM}",
                self.char_min, self.char_max
            ));
        }
        for (name, w) in [("style_scale", self.style_scale), ("edge_scale", self.edge_scale)] {
            if !(w.is_finite() && w >= 0.0) {
                return Err(format!("{name} {w} is not a finite weight ≥ 0"));
            }
        }
        Ok(())
    }
    pub fn word_buckets(&self) -> usize {
        1 << self.word_bits
    }
    pub fn char_buckets(&self) -> usize {
        optional_buckets(self.char_bits)
    }
    pub fn edge_buckets(&self) -> usize {
        optional_buckets(self.edge_bits)
    }
    /// First index of the edge-word block.
    pub fn edge_offset(&self) -> usize {
        self.word_buckets() + self.char_buckets()
    }
    /// First index of the style block.
    pub fn style_offset(&self) -> usize {
        self.edge_offset() + self.edge_buckets()
    }
    /// Total dimension.
    pub fn dim(&self) -> usize {
        self.style_offset() + STYLE_NAMES.len()
    }
    /// Names of the feature blocks, as recorded in profile metadata.
    pub fn block_names(&self) -> Vec<String> {
        let mut v = vec![format!("word_ngrams(1-2, 2^{})", self.word_bits)];
        if self.char_bits > 0 {
            v.push(format!(
                "char_ngrams({}-{}, 2^{})",
                self.char_min, self.char_max, self.char_bits
            ));
        }
        if self.edge_bits > 0 {
            v.push(format!(
                "edge_words(first 1-4, last 2-3, 2^{}, x{})",
                self.edge_bits, self.edge_scale
            ));
        }
        v.push(format!("style({})", STYLE_NAMES.len()));
        v
    }
}

/// A sparse feature vector with unique indices (sorted only after [`SparseVec::sort`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVec {
    pub idx: Vec<u32>,
    pub val: Vec<f32>,
}

/// Function words whose relative frequencies are a classic stylometric signal.
pub const FUNCTION_WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "that",
    "it",
    "for",
    "you",
    "this",
    "with",
    "as",
    "are",
    "be",
    "can",
    "or",
    "on",
    "your",
    "an",
    "by",
    "not",
    "if",
    "will",
    "may",
    "also",
    "more",
    "some",
    "such",
    "these",
    "which",
    "their",
    "i",
    "however",
    "additionally",
    "overall",
    "here",
    "there",
    "so",
    "but",
    "would",
    "should",
    "could",
    "very",
    "just",
    "really",
    "we",
    "my",
    "me",
];

/// Names of the dense style features, in order.
pub static STYLE_NAMES: once_cell::sync::Lazy<Vec<String>> = once_cell::sync::Lazy::new(|| {
    let mut v: Vec<String> = [
        "log_chars",
        "log_words",
        "log_lines",
        "log_paragraphs",
        "header_lines",
        "bullet_lines",
        "numbered_lines",
        "bold_per_100w",
        "code_fences",
        "table_lines",
        "emoji_per_100w",
        "mean_sentence_words",
        "sd_sentence_words",
        "commas_per_100w",
        "semicolons_per_100w",
        "colons_per_100w",
        "exclamations_per_100w",
        "questions_per_100w",
        "parens_per_100w",
        "double_quotes_per_100w",
        "em_dashes_per_100w",
        "en_dashes_per_100w",
        "ellipses_per_100w",
        "opens_with_affirmation",
        "ends_with_question",
        "ends_with_offer",
        "intro_colon",
        "uppercase_ratio",
        "digit_ratio",
        "mean_word_len",
        "type_token_ratio",
        "first_person_rate",
        "second_person_rate",
        "claims_openai",
        "claims_other_family",
        "ai_disclaimer",
        "knowledge_cutoff",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(FUNCTION_WORDS.iter().map(|w| format!("fw_{w}")));
    v
});

/// Reusable scratch space so feature extraction allocates nothing per text once warm.
#[derive(Default)]
pub struct Scratch {
    tokens: Vec<Token>,
    chars: Vec<u32>,
    counts: Counter,
    /// Identity claims of the last extracted text (the style block counts them; evidence lists
    /// them): found once per text.
    claims: Vec<crate::IdentityClaim>,
}

impl Scratch {
    /// The identity claims found by the last [`extract`], taken out of the scratch space.
    pub fn take_claims(&mut self) -> Vec<crate::IdentityClaim> {
        std::mem::take(&mut self.claims)
    }
}

/// Open-addressing counter keyed by bucket index, cleared in O(used) between texts.
#[derive(Default)]
struct Counter {
    keys: Vec<u32>,
    vals: Vec<f32>,
    used: Vec<u32>,
}

impl Counter {
    const EMPTY: u32 = u32::MAX;
    fn reset(&mut self, expected: usize) {
        let want = (expected * 2).next_power_of_two().max(1024);
        if self.keys.len() < want {
            self.keys = vec![Self::EMPTY; want];
            self.vals = vec![0.0; want];
        } else {
            for &s in &self.used {
                self.keys[s as usize] = Self::EMPTY;
            }
        }
        self.used.clear();
    }
    #[inline]
    fn add(&mut self, key: u32) {
        let mask = self.keys.len() - 1;
        let mut s = (mix(key) as usize) & mask;
        loop {
            let k = self.keys[s];
            if k == key {
                self.vals[s] += 1.0;
                return;
            }
            if k == Self::EMPTY {
                self.keys[s] = key;
                self.vals[s] = 1.0;
                self.used.push(s as u32);
                return;
            }
            s = (s + 1) & mask;
        }
    }
    /// Append sublinear (log1p) term frequencies, L2-normalised to norm `scale`, to `out`.
    fn drain_normalised(&mut self, out: &mut SparseVec, scale: f32) {
        let start = out.idx.len();
        let mut norm = 0.0f32;
        for &s in &self.used {
            let v = (1.0 + self.vals[s as usize]).ln();
            norm += v * v;
            out.idx.push(self.keys[s as usize]);
            out.val.push(v);
        }
        let inv = if norm > 0.0 { scale / norm.sqrt() } else { 0.0 };
        for v in &mut out.val[start..] {
            *v *= inv;
        }
    }
}

/// Extract the lexical blocks (sparse) and the raw (unstandardised) style block.
pub fn extract(
    cfg: &FeatureConfig,
    text: &str,
    scratch: &mut Scratch,
    style: &mut Vec<f32>,
) -> SparseVec {
    let mut out = SparseVec::default();
    text::tokens(text, &mut scratch.tokens);

    // Word unigrams and bigrams.
    let wmask = (cfg.word_buckets() - 1) as u32;
    scratch.counts.reset(scratch.tokens.len() * 2);
    let mut prev: Option<u32> = None;
    for t in &scratch.tokens {
        scratch.counts.add(t.hash & wmask);
        if let Some(p) = prev {
            scratch.counts.add(mix(combine(p, t.hash)) & wmask);
        }
        prev = Some(t.hash);
    }
    scratch.counts.drain_normalised(&mut out, 1.0);

    // Character n-grams over the raw text (case and white space kept: both are style).
    if cfg.char_bits > 0 {
        let cmask = (cfg.char_buckets() - 1) as u32;
        let off = cfg.word_buckets() as u32;
        scratch.chars.clear();
        scratch.chars.extend(text.chars().map(|c| c as u32));
        let n = scratch.chars.len();
        scratch.counts.reset(n * (cfg.char_max - cfg.char_min + 1));
        for i in 0..n {
            let mut h = 0x2545_f491u32;
            for (len, &c) in scratch.chars[i..n.min(i + cfg.char_max)].iter().enumerate() {
                h = combine(h, c);
                if len + 1 >= cfg.char_min {
                    scratch.counts.add(off + (mix(h ^ (len as u32 + 1)) & cmask));
                }
            }
        }
        scratch.counts.drain_normalised(&mut out, 1.0);
    }
    // Edge words: their own unit-norm block, weighted by `edge_scale`.
    if cfg.edge_bits > 0 {
        let emask = (cfg.edge_buckets() - 1) as u32;
        let off = cfg.edge_offset() as u32;
        scratch.counts.reset(8);
        let counts = &mut scratch.counts;
        edge_tokens(&scratch.tokens, &mut |h| counts.add(off + (mix(h) & emask)));
        scratch.counts.drain_normalised(&mut out, cfg.edge_scale);
    }
    scratch.claims = crate::identity::find_claims(text);
    style_features(text, &scratch.tokens, &scratch.claims, style);
    out
}

impl SparseVec {
    /// Sort by index (extraction leaves entries in hash-table order: scoring does not care, look-ups
    /// by index do). Indices are unique: each block's counter deduplicates and blocks are disjoint.
    pub fn sort(&mut self) {
        let mut pairs: Vec<(u32, f32)> =
            self.idx.iter().copied().zip(self.val.iter().copied()).collect();
        pairs.sort_unstable_by_key(|p| p.0);
        self.idx = pairs.iter().map(|p| p.0).collect();
        self.val = pairs.iter().map(|p| p.1).collect();
    }
}

/// Seeds of the two edge-word kinds (any distinct constants: they keep an opening "thank you"
/// apart from a closing one, and both apart from the word block's n-grams).
const EDGE_OPEN: u32 = 0x0f1e_2d3c;
const EDGE_CLOSE: u32 = 0x4b5a_6978;

/// The edge words of a text, as hashes: its first 1–4 tokens and its last 2–3, each n-gram
/// marked with where it stands. Openings ("Certainly! Here are") and closings ("let me know if")
/// are among the most model-specific cues (Sun et al. 2025, "Idiosyncrasies in Large Language
/// Models", classify models well from the first words alone); the word block sees the same
/// n-grams but not their position, and a long answer dilutes them among hundreds of others.
///
/// Chosen by the held-out validation (`validation_lofo` of `pedigree bench`, unseen upstream
/// versions vs whole families left out, averaged over the manifest's prompt split and two random
/// re-splits), not by the dev suspects: per-response AUROC 0.605 → 0.676 and model-level AUROC
/// 0.866 → 0.921 with this block at weight 1. Two other cues measured with it were dropped:
/// markdown line-type n-grams (validation 0.653 / 0.889 with them, no gain) and each paragraph's
/// first words (0.667 / 0.908: per response a little higher, per model lower).
pub fn edge_tokens(toks: &[Token], emit: &mut impl FnMut(u32)) {
    let chain = |seed: u32, ts: &[Token]| ts.iter().fold(seed, |h, t| combine(h, t.hash));
    for k in 1..=4.min(toks.len()) {
        emit(chain(EDGE_OPEN ^ k as u32, &toks[..k]));
    }
    for k in 2..=3.min(toks.len()) {
        emit(chain(EDGE_CLOSE ^ k as u32, &toks[toks.len() - k..]));
    }
}

fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x1F300..=0x1FAFF | 0x2600..=0x27BF | 0x1F000..=0x1F2FF)
}

/// The dense style block (raw values; the profile standardises them). One pass over the
/// characters, one over the lines and one over the tokens: this runs on every scored text.
pub fn style_features(
    text: &str,
    toks: &[Token],
    claims: &[crate::IdentityClaim],
    out: &mut Vec<f32>,
) {
    out.clear();
    // Character pass: punctuation, case, digits, emoji.
    let (mut chars, mut upper, mut digits, mut emoji) = (0usize, 0usize, 0usize, 0usize);
    let mut punct = [0usize; 11];
    for c in text.chars() {
        chars += 1;
        if c.is_ascii() {
            upper += c.is_ascii_uppercase() as usize;
            digits += c.is_ascii_digit() as usize;
        } else {
            upper += c.is_uppercase() as usize;
            emoji += is_emoji(c) as usize;
        }
        let slot = match c {
            ',' | '，' => 0,
            ';' | '；' => 1,
            ':' | '：' => 2,
            '!' | '！' => 3,
            '?' | '？' => 4,
            '(' | '（' => 5,
            '"' | '“' | '”' => 6,
            '—' => 7,
            '–' => 8,
            '…' => 9,
            _ => 10,
        };
        punct[slot] += 1;
    }
    let chars_f = chars.max(1) as f32;

    // Token pass: words, sentence lengths, person, function words, vocabulary richness.
    let (mut nw, mut word_chars, mut first_person, mut second_person) =
        (0usize, 0usize, 0usize, 0usize);
    let mut fw = [0u32; FUNCTION_WORDS.len()];
    let (mut sent_n, mut sent_sum, mut sent_sq, mut cur) = (0usize, 0f32, 0f32, 0usize);
    let mut vocab: Vec<u32> = Vec::with_capacity(toks.len());
    let ph = &*PERSON_HASHES;
    for t in toks {
        let s = &text[t.start..t.end];
        if s.as_bytes()[0].is_ascii_alphanumeric()
            || s.chars().next().is_some_and(char::is_alphanumeric)
        {
            nw += 1;
            cur += 1;
            word_chars += s.len();
            vocab.push(t.hash);
            first_person += ph[..5].contains(&t.hash) as usize;
            second_person += ph[5..].contains(&t.hash) as usize;
            if let Some(i) = FUNCTION_WORD_HASHES.iter().position(|&h| h == t.hash) {
                fw[i] += 1;
            }
        } else if matches!(s, "." | "!" | "?" | "。" | "！" | "？") && cur > 0 {
            sent_n += 1;
            sent_sum += cur as f32;
            sent_sq += (cur * cur) as f32;
            cur = 0;
        }
    }
    if cur > 0 {
        sent_n += 1;
        sent_sum += cur as f32;
        sent_sq += (cur * cur) as f32;
    }
    let ms = if sent_n == 0 { 0.0 } else { sent_sum / sent_n as f32 };
    let sds = if sent_n < 2 {
        0.0
    } else {
        ((sent_sq - sent_n as f32 * ms * ms) / (sent_n - 1) as f32).max(0.0).sqrt()
    };
    vocab.sort_unstable();
    vocab.dedup();
    let nwf = nw.max(1) as f32;
    let per100 = |n: usize| n as f32 * 100.0 / nwf;

    // Line pass: markdown structure.
    let (mut nl, mut headers, mut bullets, mut numbered, mut tables, mut fences) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    for l in text.lines() {
        let l = l.trim_start();
        if l.is_empty() {
            continue;
        }
        nl += 1;
        headers += l.starts_with('#') as usize;
        bullets += (l.starts_with("- ") || l.starts_with("* ") || l.starts_with("• ")) as usize;
        tables += l.starts_with('|') as usize;
        fences += l.starts_with("```") as usize;
        let d = l.bytes().take_while(u8::is_ascii_digit).count();
        numbered +=
            (d > 0 && d < 4 && matches!(l.as_bytes().get(d), Some(b'.') | Some(b')'))) as usize;
    }
    let nlf = nl.max(1) as f32;
    let paragraphs = text.split("\n\n").filter(|p| !p.trim().is_empty()).count();

    let trimmed = text.trim();
    let lower_start: String = trimmed.chars().take(40).collect::<String>().to_lowercase();
    let first_line = trimmed.lines().next().unwrap_or("");
    let last_line = trimmed.lines().last().unwrap_or("").to_lowercase();
    let claim =
        |f: &dyn Fn(&crate::IdentityClaim) -> bool| claims.iter().filter(|c| f(c)).count() as f32;

    out.extend_from_slice(&[
        (1.0 + chars as f32).ln(),
        (1.0 + nw as f32).ln(),
        (1.0 + nl as f32).ln(),
        (1.0 + paragraphs as f32).ln(),
        headers as f32 / nlf,
        bullets as f32 / nlf,
        numbered as f32 / nlf,
        per100(text.matches("**").count() / 2),
        (fences / 2) as f32,
        tables as f32 / nlf,
        per100(emoji),
        ms,
        sds,
        per100(punct[0]),
        per100(punct[1]),
        per100(punct[2]),
        per100(punct[3]),
        per100(punct[4]),
        per100(punct[5]),
        per100(punct[6]),
        per100(punct[7]),
        per100(punct[8]),
        per100(punct[9] + text.matches("...").count()),
        ["sure", "certainly", "of course", "absolutely", "great question", "yes", "no problem"]
            .iter()
            .any(|a| lower_start.starts_with(a)) as u8 as f32,
        trimmed.ends_with('?') as u8 as f32,
        ["let me know", "hope this helps", "feel free", "happy to help", "any other questions"]
            .iter()
            .any(|a| last_line.contains(a)) as u8 as f32,
        (first_line.trim_end().ends_with(':') && nl > 1) as u8 as f32,
        upper as f32 / chars_f,
        digits as f32 / chars_f,
        word_chars as f32 / nwf,
        if nw == 0 { 0.0 } else { vocab.len() as f32 / (nw as f32).sqrt() },
        per100(first_person),
        per100(second_person),
        // The counts these two had before cues stopped naming families (issue 13), kept so that
        // profiles see the same inputs: explicit claims by family, plus ChatGPT's cutoff years.
        claim(&|c| {
            (c.is_explicit() && c.family == "openai") || crate::identity::cutoff_suggests_openai(c)
        }),
        claim(&|c| c.is_explicit() && c.family != "openai" && c.family != "unknown"),
        claim(&|c| c.kind == "ai_disclaimer"),
        claim(&|c| c.kind == "knowledge_cutoff"),
    ]);
    out.extend(fw.iter().map(|&c| c as f32 / nwf));
    debug_assert_eq!(out.len(), STYLE_NAMES.len());
}

/// "i me my i'm i've" then "you your you're yours".
static PERSON_HASHES: once_cell::sync::Lazy<Vec<u32>> = once_cell::sync::Lazy::new(|| {
    ["i", "me", "my", "i'm", "i've", "you", "your", "you're", "yours"]
        .iter()
        .map(|w| text::word_hash(w))
        .collect()
});

static FUNCTION_WORD_HASHES: once_cell::sync::Lazy<Vec<u32>> =
    once_cell::sync::Lazy::new(|| FUNCTION_WORDS.iter().map(|w| text::word_hash(w)).collect());

#[cfg(test)]
mod tests {
    use super::*;

    fn style_of(t: &str) -> Vec<f32> {
        let mut s = Scratch::default();
        let mut st = Vec::new();
        extract(&FeatureConfig::default(), t, &mut s, &mut st);
        st
    }
    fn style(t: &str, name: &str) -> f32 {
        style_of(t)[STYLE_NAMES.iter().position(|n| n == name).expect("name")]
    }

    #[test]
    fn lexical_blocks_are_unit_norm_sorted_and_in_range() {
        let cfg = FeatureConfig { char_bits: 16, ..FeatureConfig::default() };
        let mut s = Scratch::default();
        let mut st = Vec::new();
        let mut v = extract(&cfg, "The cat sat on the mat. The cat!", &mut s, &mut st);
        v.sort();
        assert!(v.idx.windows(2).all(|w| w[0] < w[1]), "indices must be unique");
        // Squared norm of the entries whose index lies in `block`.
        let norm2 = |block: std::ops::Range<usize>| -> f32 {
            v.idx
                .iter()
                .zip(&v.val)
                .filter(|(i, _)| block.contains(&(**i as usize)))
                .map(|(_, x)| x * x)
                .sum()
        };
        let word = norm2(0..cfg.word_buckets());
        let chr = norm2(cfg.word_buckets()..cfg.edge_offset());
        let edge = norm2(cfg.edge_offset()..cfg.style_offset());
        assert!((word - 1.0).abs() < 1e-4 && (chr - 1.0).abs() < 1e-4, "{word} {chr}");
        assert!((edge - cfg.edge_scale * cfg.edge_scale).abs() < 1e-4, "{edge}");
        assert!(v.idx.iter().all(|&i| (i as usize) < cfg.style_offset()));
        // "the" appears 3 times, "cat" twice: sublinear weights keep their order.
        let m = (cfg.word_buckets() - 1) as u32;
        let the = v.idx.iter().position(|&i| i == text::word_hash("the") & m).expect("the");
        let sat = v.idx.iter().position(|&i| i == text::word_hash("sat") & m).expect("sat");
        assert!(v.val[the] > v.val[sat]);
    }

    #[test]
    fn scratch_reuse_gives_identical_vectors() {
        let cfg = FeatureConfig::default();
        let mut s = Scratch::default();
        let mut st = Vec::new();
        let a = extract(&cfg, "Hello world, hello again.", &mut s, &mut st);
        let _ = extract(&cfg, &"long text ".repeat(500), &mut s, &mut st);
        let b = extract(&cfg, "Hello world, hello again.", &mut s, &mut st);
        assert_eq!(a, b);
    }

    #[test]
    fn style_features_measure_formatting() {
        let md = "Sure! Here are some tips:\n\n## Tips\n\n1. **Sleep** well.\n2. Eat well.\n- one\n- two\n\nI hope this helps!";
        assert_eq!(style(md, "opens_with_affirmation"), 1.0);
        assert_eq!(style(md, "ends_with_offer"), 1.0);
        assert!((style(md, "header_lines") - 1.0 / 7.0).abs() < 1e-6);
        assert!((style(md, "numbered_lines") - 2.0 / 7.0).abs() < 1e-6);
        assert!((style(md, "bullet_lines") - 2.0 / 7.0).abs() < 1e-6);
        assert_eq!(style("plain words only", "header_lines"), 0.0);
        assert_eq!(style("As an AI language model, I can't.", "ai_disclaimer"), 1.0);
        assert_eq!(style("I was created by OpenAI.", "claims_openai"), 1.0);
        assert_eq!(
            style("Three short words. And two. Then four more words!", "mean_sentence_words"),
            3.0
        );
        assert_eq!(style_of("x").len(), STYLE_NAMES.len());
    }

    /// The four identity features, pinned to the values they had before identity claims were
    /// split into explicit claims and style cues (issue 13): the split changes what is reported
    /// to analysts, never a profile's inputs, so bench figures and saved profiles keep meaning
    /// the same. Columns: claims_openai, claims_other_family, ai_disclaimer, knowledge_cutoff.
    #[test]
    fn identity_features_keep_their_pre_split_values() {
        let cases: &[(&str, [f32; 4])] = &[
            ("As an AI language model, I can't browse.", [0.0, 0.0, 1.0, 0.0]),
            ("As an AI language model developed by OpenAI, I cannot.", [1.0, 0.0, 1.0, 0.0]),
            ("As an AI assistant developed by Anthropic, I try to help.", [0.0, 1.0, 1.0, 0.0]),
            ("Hi! I'm Claude, made by Anthropic.", [0.0, 2.0, 0.0, 0.0]),
            ("I am ChatGPT. My knowledge cutoff is September 2021.", [2.0, 0.0, 0.0, 1.0]),
            ("My knowledge cutoff is 2023, as of my last update.", [0.0, 0.0, 0.0, 2.0]),
            ("I'm a fine-tuned version of LLaMA 2.", [0.0, 1.0, 0.0, 0.0]),
            ("作为一个人工智能语言模型，我是由OpenAI开发的。", [1.0, 0.0, 1.0, 0.0]),
            ("我的知识截止日期是2022年。我是通义千问。", [1.0, 1.0, 0.0, 1.0]),
            (
                "Google is a company. As an AI product, they're currently working on search.",
                [0.0, 0.0, 1.0, 0.0],
            ),
            ("The model was developed by researchers in 1998.", [0.0, 0.0, 0.0, 0.0]),
        ];
        let names = ["claims_openai", "claims_other_family", "ai_disclaimer", "knowledge_cutoff"];
        for (text, want) in cases {
            let got: Vec<f32> = names.iter().map(|n| style(text, n)).collect();
            assert_eq!(got, want.to_vec(), "{text}");
        }
    }
}
