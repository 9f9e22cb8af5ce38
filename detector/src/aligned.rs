//! Prompt-aligned comparison. How upstream-like an answer looks depends heavily on the prompt:
//! "write a numbered list of tips" draws list-heavy, upstream-looking answers from every model.
//! When the profile holds reference answers of known models to the same prompt, a response is
//! compared with them: its *aligned* score is its upstream score minus the mean upstream score of
//! the references on that prompt, so the prompt's own pull cancels and what remains is how much
//! more upstream-like this answer is than known models' answers to the same request.
//!
//! References come from the profile's calibration set (known models' answers on held-out
//! prompts); the calibration null is aligned the same way, so aligned scores have their own
//! false-positive rates and set-level null.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Fewest reference answers a prompt needs before responses to it are aligned: a mean of one or
/// two answers is mostly that answer's own noise.
pub const MIN_REFERENCES: u32 = 3;

/// Key of a prompt: FNV-1a of its lower-cased, whitespace-collapsed text, so trivial formatting
/// differences between a probe set and the reference data don't break the match.
pub fn prompt_key(prompt: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut space = false;
    let mut started = false;
    for c in prompt.chars().flat_map(char::to_lowercase) {
        if c.is_whitespace() {
            space = started;
            continue;
        }
        if space {
            h = (h ^ u64::from(b' ')).wrapping_mul(0x100_0000_01b3);
            space = false;
        }
        started = true;
        let mut buf = [0u8; 4];
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

/// Mean reference score per prompt.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PromptRefs {
    /// prompt key → (mean score of the references, number of references)
    pub means: BTreeMap<u64, (f32, u32)>,
}

impl PromptRefs {
    /// From (prompt key, reference score) pairs; prompts with fewer than [`MIN_REFERENCES`]
    /// answers are left out.
    pub fn from_scores(pairs: impl IntoIterator<Item = (u64, f64)>) -> PromptRefs {
        let mut acc: BTreeMap<u64, (f64, u32)> = BTreeMap::new();
        for (k, s) in pairs {
            let e = acc.entry(k).or_default();
            e.0 += s;
            e.1 += 1;
        }
        let means = acc
            .into_iter()
            .filter(|(_, (_, n))| *n >= MIN_REFERENCES)
            .map(|(k, (sum, n))| (k, ((sum / n as f64) as f32, n)))
            .collect();
        PromptRefs { means }
    }

    pub fn len(&self) -> usize {
        self.means.len()
    }

    pub fn is_empty(&self) -> bool {
        self.means.is_empty()
    }

    /// The reference mean for a prompt, if the profile has references for it.
    pub fn mean(&self, prompt: &str) -> Option<f64> {
        self.mean_by_key(prompt_key(prompt))
    }

    pub fn mean_by_key(&self, key: u64) -> Option<f64> {
        self.means.get(&key).map(|&(m, _)| m as f64)
    }

    /// The reference mean for one of the references itself, without its own score `own`: what
    /// it would have been measured against as an unseen answer (a suspect's answer is never among
    /// the references). `None` if fewer than [`MIN_REFERENCES`] others remain, as for a suspect.
    pub fn mean_without_own(&self, key: u64, own: f64) -> Option<f64> {
        let &(m, n) = self.means.get(&key)?;
        (n > MIN_REFERENCES).then(|| (m as f64 * n as f64 - own) / (n - 1) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_case_and_spacing_but_not_words() {
        assert_eq!(
            prompt_key("Write a poem  about\n the sea."),
            prompt_key(" write a POEM about the sea.")
        );
        assert_ne!(
            prompt_key("Write a poem about the sea."),
            prompt_key("Write a poem about the sky.")
        );
        assert_ne!(prompt_key("ab c"), prompt_key("a bc"));
    }

    #[test]
    fn means_need_enough_references() {
        let (a, b) = (prompt_key("a"), prompt_key("b"));
        let r = PromptRefs::from_scores([(a, 1.0), (a, 2.0), (a, 3.0), (b, 5.0), (b, 7.0)]);
        assert_eq!(r.mean("a"), Some(2.0));
        assert_eq!(r.mean("b"), None, "two references are too few");
        assert_eq!(r.len(), 1);
        // Leave-self-out: (1 + 2 + 3 − 3) / 2, but only 2 others remain: too few.
        assert_eq!(r.mean_without_own(a, 3.0), None);
        let r = PromptRefs::from_scores([(a, 1.0), (a, 2.0), (a, 3.0), (a, 6.0)]);
        assert!((r.mean_without_own(a, 6.0).unwrap() - 2.0).abs() < 1e-6);
    }
}
