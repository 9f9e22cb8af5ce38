//! Public result types of the detector, shared by the CLI, the HTTP service and the dashboard.
//! They are serde types so that every consumer serialises them the same way.

use serde::{Deserialize, Serialize};

/// A family (provider) and the posterior probability that a text came from it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FamilyProb {
    pub family: String,
    pub prob: f64,
}

/// Where a piece of evidence came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// A word or character n-gram that the profile weights towards (or away from) the upstream.
    Phrase,
    /// A style feature (formatting habits, length, punctuation, function words).
    Feature,
    /// A self-identification claim ("As an AI language model developed by OpenAI").
    Identity,
}

/// One explainable contribution to a score.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// Human-readable name: the phrase itself, or a feature name such as `markdown_headers`.
    pub label: String,
    /// Character (Unicode scalar) span `[start, end)` in the scored text, when the evidence is located.
    pub span: Option<[usize; 2]>,
    /// Contribution to the upstream score in log-odds units (positive = towards the upstream).
    pub weight: f64,
}

/// Whether an identity match is a claim to be some family's model or only a style cue.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ClaimClass {
    /// Explicit self-identification naming a family: `creator` ("developed by OpenAI"),
    /// `model_name` ("I am ChatGPT"), `base_model` ("I'm based on GPT-4"). Strong evidence to
    /// report, but not a decision: models trained on web text sometimes claim to be ChatGPT.
    Explicit,
    /// A style cue that names no family by itself: `ai_disclaimer` ("As an AI language model"),
    /// `knowledge_cutoff` ("my knowledge cutoff is 2021"). Generic disclaimers are written by
    /// many families' models, so a cue is never counted as a claim to be one of them.
    Cue,
}

impl ClaimClass {
    /// The class of a claim kind (unknown kinds are cues: they cannot have been matched by an
    /// explicit pattern, which all name a family).
    pub fn of_kind(kind: &str) -> ClaimClass {
        match kind {
            "creator" | "model_name" | "base_model" => ClaimClass::Explicit,
            _ => ClaimClass::Cue,
        }
    }
}

/// A self-identification claim or identity cue found in a text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(from = "IdentityClaimWire")]
pub struct IdentityClaim {
    /// The family the match names (`openai`, `anthropic`, `google`, `meta`, ...), or `unknown`:
    /// a cue never names a family it does not contain (a disclaimer takes the family of an
    /// explicit claim in the same sentence, else `unknown`).
    pub family: String,
    /// What kind of match: `creator`, `model_name`, `base_model` (explicit), `ai_disclaimer`,
    /// `knowledge_cutoff` (cues).
    pub kind: String,
    /// Explicit self-identification or a style cue.
    pub class: ClaimClass,
    /// The matched text.
    pub text: String,
    /// Character span `[start, end)`.
    pub span: [usize; 2],
}

impl IdentityClaim {
    pub fn is_explicit(&self) -> bool {
        self.class == ClaimClass::Explicit
    }
}

/// [`IdentityClaim`] as stored before claims had a class (scores kept in the store, saved score
/// files): the class is derived from the kind when absent, so old records read the same. Their
/// `ai_disclaimer` family may still say `openai`; consumers count cues by kind only.
#[derive(Deserialize)]
struct IdentityClaimWire {
    family: String,
    kind: String,
    #[serde(default)]
    class: Option<ClaimClass>,
    text: String,
    span: [usize; 2],
}

impl From<IdentityClaimWire> for IdentityClaim {
    fn from(w: IdentityClaimWire) -> Self {
        let class = w.class.unwrap_or_else(|| ClaimClass::of_kind(&w.kind));
        IdentityClaim { family: w.family, kind: w.kind, class, text: w.text, span: w.span }
    }
}

/// The score of one text against a profile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TextScore {
    /// Upstream score: log-odds that the text was written by the upstream family rather than any
    /// other family, at even prior odds between the two sides (profiles since the balanced score;
    /// older ones use a uniform prior over known models). Unbounded real number; higher = more
    /// upstream-like; 0 = even odds.
    pub score: f64,
    /// Prompt-aligned score, when the profile has reference answers to this text's prompt:
    /// `score` minus the mean score of known models' answers to the same prompt (0 = as
    /// upstream-like as the average known model on this request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aligned: Option<f64>,
    /// Calibrated false-positive rate: the fraction of held-out responses of known independent
    /// models (scored with profiles that never saw those models) scoring at least as high — on
    /// the aligned scale when `aligned` is present, else on `score`.
    pub fpr: f64,
    /// The most likely family.
    pub family: String,
    /// Posterior over all families of the profile, highest first.
    pub families: Vec<FamilyProb>,
    /// Top contributions, strongest first.
    pub evidence: Vec<Evidence>,
    /// Identity claims found in the text.
    pub claims: Vec<IdentityClaim>,
}

/// The set-level decision about a suspect. Only an exact test decides (the served-output
/// membership test: `Distilled` when it rejects); the style verdict is triage and always says
/// `Undecided`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// An exact test rejected at level alpha: the suspect's outputs carry the upstream's.
    Distilled,
    /// Kept so that results stored by older versions (whose style verdict could say it) still
    /// read; nothing produces it any more, since style evidence cannot rule distillation out (a
    /// student trained on "desensitized" data looks independent).
    Independent,
    /// No exact test has decided.
    Undecided,
}

/// How the evidence grows with the number of responses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GrowthPoint {
    pub n: usize,
    pub statistic: f64,
    pub p_value: f64,
}

/// The set-level verdict about a suspect model from N of its responses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub n: usize,
    /// The set statistic (mean upstream score of the suspect's responses, after prompt alignment
    /// when references are available).
    pub statistic: f64,
    /// Standardised effect size: (statistic − null mean) / √(τ² + σ²/n), the s.d. of an
    /// independent model's mean over n responses (between-model τ², within-model σ²).
    pub effect_size: f64,
    /// One-sided p-value of the statistic under the independent-model null.
    pub p_value: f64,
    pub alpha: f64,
    /// Always `undecided` for the style verdict: style evidence ranks suspects ([`StyleTriage`])
    /// but cannot decide distillation; the decision needs the served-output membership test.
    pub decision: Decision,
    /// The family whose style the suspect's responses are nearest (highest mean posterior), if
    /// any: a style label, never an override of explicit identity claims.
    pub teacher: Option<String>,
    /// Mean posterior per family over the suspect's responses, highest first.
    pub families: Vec<FamilyProb>,
    /// p-value after the first k responses, for k on a doubling grid up to n.
    pub growth: Vec<GrowthPoint>,
    /// Indices (into the input) of the most upstream-like responses, strongest first.
    pub top_samples: Vec<usize>,
    /// Whether the statistic and its null are on the prompt-aligned scale (every response
    /// answered a prompt the profile has reference answers for).
    #[serde(default)]
    pub prompt_aligned: bool,
    /// This decision rule's measured error rates at `alpha`, from the profile's calibration
    /// models each left out of the profile: known independents it flags (false alarms) and the
    /// upstream's own models it flags (power on unseen upstream versions).
    #[serde(default)]
    pub error_check: Option<ErrorCheck>,
    /// Where the suspect ranks among the calibration's known independent reference models
    /// (absent from verdicts stored by older versions).
    #[serde(default)]
    pub triage: Option<StyleTriage>,
}

/// Style triage: how upstream-like a suspect is compared with the known independent reference
/// models of the profile's calibration. It ranks suspects for follow-up; it never decides.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StyleTriage {
    /// The suspect's rank among the reference models and itself, 1 = more upstream-like than
    /// every reference model.
    pub rank: usize,
    /// Fraction of reference models whose mean score is below the suspect's statistic.
    pub percentile: f64,
    /// Known independent reference models (the null's models) and their families.
    pub reference_models: usize,
    pub reference_families: usize,
    /// The smallest p-value the reference set can support, 1/(K+1) for K reference models: if the
    /// suspect is just one more independent model, exchangeable with the K references, its rank
    /// among the K+1 is uniform, so even the most upstream-like rank has probability 1/(K+1). The
    /// parametric `p_value` can go lower only by trusting the assumed shape of the between-model
    /// spread beyond the data, which is why it is a ranking number, not a decision.
    pub min_p_value: f64,
    /// The style test's p-value against the random-effects null (for ranking).
    pub p_value: f64,
    /// The standardised effect on the prompt-aligned scale, when every response had a
    /// prompt-aligned score (the prompts' own pull cancels out); `None` otherwise.
    pub aligned_effect: Option<f64>,
    /// One sentence an analyst can paste in a report.
    pub summary: String,
}

/// Leave-one-model-out check of a verdict's decision rule on the profile's calibration models.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorCheck {
    pub independents: usize,
    pub independents_flagged: usize,
    pub upstream_models: usize,
    pub upstream_flagged: usize,
}
