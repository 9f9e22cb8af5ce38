//! PLACEHOLDER API (being implemented): signatures are stable, bodies are not.

use crate::{Result, TextScore, Verdict};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Options of the set-level test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerdictOptions {
    /// Significance level of the decision (default 0.01).
    pub alpha: f64,
    /// How many top samples to return as evidence.
    pub top: usize,
}

impl Default for VerdictOptions {
    fn default() -> Self {
        Self { alpha: 0.01, top: 5 }
    }
}

/// Metadata of a profile: what it detects and how it was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileMeta {
    pub format_version: u32,
    pub name: String,
    pub upstream: String,
    pub families: Vec<String>,
    pub created: String,
    /// Free-form training summary: dataset name, models per family, samples, prompts.
    pub training: serde_json::Value,
    /// Feature blocks the profile uses (`lexical`, `style`, `identity`, later `minilm`, `smollm2`).
    pub features: Vec<String>,
    /// Calibration summary: null models, sample counts, score quantiles.
    pub calibration: serde_json::Value,
}

/// A fitted fingerprint of an upstream family.
#[derive(Debug, Clone)]
pub struct Profile {
    meta: ProfileMeta,
}

impl Profile {
    /// The built-in profile for upstream "openai", compiled into the binary.
    pub fn builtin() -> Result<Profile> {
        unimplemented!("being implemented")
    }
    pub fn load(path: &Path) -> Result<Profile> {
        let _ = path;
        unimplemented!("being implemented")
    }
    pub fn from_bytes(bytes: &[u8]) -> Result<Profile> {
        let _ = bytes;
        unimplemented!("being implemented")
    }
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        unimplemented!("being implemented")
    }
    pub fn save(&self, path: &Path) -> Result<()> {
        let _ = path;
        unimplemented!("being implemented")
    }
    pub fn meta(&self) -> &ProfileMeta {
        &self.meta
    }
    /// Score one text (the prompt, when known, enables prompt-aware features).
    pub fn score(&self, text: &str, prompt: Option<&str>) -> TextScore {
        let _ = (text, prompt);
        unimplemented!("being implemented")
    }
    /// Score many texts in parallel.
    pub fn score_batch(&self, texts: &[(&str, Option<&str>)]) -> Vec<TextScore> {
        texts.iter().map(|(t, p)| self.score(t, *p)).collect()
    }
    /// The set-level verdict about a suspect from the scores of its responses.
    pub fn verdict(&self, scores: &[TextScore], opts: &VerdictOptions) -> Verdict {
        let _ = (scores, opts);
        unimplemented!("being implemented")
    }
}
