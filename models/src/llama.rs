//! A small llama-architecture decoder over GGUF weights that returns logits
//! for **every** position in one forward pass.
//!
//! `candle_transformers::models::quantized_llama::ModelWeights::forward` only
//! returns the last position's logits (it is built for generation with a KV
//! cache: `x.i((.., seq_len - 1, ..))` before the output projection), so
//! scoring a text with it would need a token-by-token loop. This module
//! follows that implementation closely —
//! <https://github.com/huggingface/candle/blob/main/candle-transformers/src/models/quantized_llama.rs>
//! — (same GGUF tensor names, interleaved RoPE `rope_i` as llama.cpp permutes
//! q/k in GGUF, RmsNorm, SwiGLU MLP, grouped-query attention via `repeat_kv`)
//! but without a KV cache, with a causal mask over the whole sequence, and
//! with the output head applied to the hidden states of selected positions.
//! The HF reference is `transformers/models/llama/modeling_llama.py`.
//!
//! Batches are right-padded: with a causal mask, real positions never attend
//! to the padding that follows them, so no padding mask is needed and each
//! row's logits equal its unbatched logits (up to float rounding).

use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Module, Shape, Tensor};
use candle_nn::Embedding;
use candle_transformers::quantized_nn::RmsNorm;
use std::sync::Arc;

use crate::{ModelError, Result};

/// How the linear layers are stored in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightFormat {
    /// Keep the GGUF quantized blocks (Q4_1 here) and use candle's quantized
    /// matmul kernels: smallest memory (~100 MB), but candle 0.9's CPU kernels
    /// are vec-dot based and ~30-40× slower than the f32 gemm on whole
    /// sequences (measured 0.8 vs 23-39 GFLOP/s for 2048×576×1536 here), so
    /// only worth it when memory is the constraint.
    Quantized,
    /// Dequantize every matrix to f32 at load time and use the f32 gemm
    /// (~540 MB for SmolLM2-135M); this is what `transformers` does with
    /// `gguf_file=`, and it is faster for whole-sequence scoring on CPU.
    #[default]
    F32,
}

/// Hyper-parameters read from the GGUF metadata (`llama.*` keys).
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub n_layer: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub hidden: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub rms_norm_eps: f64,
    pub rope_freq_base: f32,
    pub context_length: usize,
}

impl LlamaConfig {
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self> {
        let get = |k: &str| {
            ct.metadata.get(k).ok_or_else(|| ModelError::Config(format!("GGUF metadata lacks {k}")))
        };
        let arch = get("general.architecture")?.to_string()?.clone();
        if arch != "llama" {
            return Err(ModelError::Config(format!("expected llama architecture, got {arch}")));
        }
        let u = |k: &str| -> Result<usize> { Ok(get(k)?.to_u32()? as usize) };
        let n_head = u("llama.attention.head_count")?;
        let hidden = u("llama.embedding_length")?;
        let vocab = match ct.metadata.get("tokenizer.ggml.tokens") {
            Some(gguf_file::Value::Array(a)) => a.len(),
            _ => ct
                .tensor_infos
                .get("token_embd.weight")
                .map(|t| t.shape.dims()[0])
                .ok_or_else(|| ModelError::Config("no token_embd.weight".into()))?,
        };
        Ok(Self {
            n_layer: u("llama.block_count")?,
            n_head,
            n_kv_head: u("llama.attention.head_count_kv")?,
            hidden,
            head_dim: ct
                .metadata
                .get("llama.rope.dimension_count")
                .and_then(|v| v.to_u32().ok())
                .map(|v| v as usize)
                .unwrap_or(hidden / n_head),
            vocab,
            rms_norm_eps: get("llama.attention.layer_norm_rms_epsilon")?.to_f32()? as f64,
            rope_freq_base: ct
                .metadata
                .get("llama.rope.freq_base")
                .and_then(|v| v.to_f32().ok())
                .unwrap_or(10000.0),
            context_length: u("llama.context_length").unwrap_or(2048),
        })
    }
}

/// Q/K/V and gate/up projections: fused into one matmul when the weights are
/// f32 (one bigger gemm is faster), separate when quantized.
#[derive(Debug, Clone)]
enum Proj {
    Fused(QMatMul, Vec<usize>),
    Separate(Vec<QMatMul>),
}

impl Proj {
    fn new(ts: Vec<QTensor>, fmt: WeightFormat, device: &Device) -> Result<Self> {
        Ok(match fmt {
            WeightFormat::F32 => {
                let ws = ts
                    .iter()
                    .map(|t| t.dequantize(device))
                    .collect::<candle_core::Result<Vec<_>>>()?;
                let sizes = ws.iter().map(|w| w.dim(0)).collect::<candle_core::Result<Vec<_>>>()?;
                Proj::Fused(QMatMul::Tensor(Tensor::cat(&ws, 0)?), sizes)
            }
            WeightFormat::Quantized => Proj::Separate(
                ts.into_iter()
                    .map(|t| QMatMul::from_arc(Arc::new(t)))
                    .collect::<candle_core::Result<_>>()?,
            ),
        })
    }

    /// `x` `[n, hidden]` -> one output per projection.
    fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        Ok(match self {
            Proj::Fused(m, sizes) => {
                let y = m.forward(x)?;
                let mut out = Vec::with_capacity(sizes.len());
                let mut off = 0;
                for &s in sizes {
                    out.push(y.narrow(1, off, s)?);
                    off += s;
                }
                out
            }
            Proj::Separate(ms) => {
                ms.iter().map(|m| m.forward(x)).collect::<candle_core::Result<_>>()?
            }
        })
    }
}

#[derive(Debug, Clone)]
struct Layer {
    qkv: Proj,
    wo: QMatMul,
    attn_norm: RmsNorm,
    gate_up: Proj,
    w_down: QMatMul,
    ffn_norm: RmsNorm,
}

/// Llama decoder returning per-position logits. Immutable after load, so it
/// can be shared between threads.
#[derive(Debug, Clone)]
pub struct QLlama {
    cfg: LlamaConfig,
    embed: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
    device: Device,
}

fn qmm(t: QTensor, fmt: WeightFormat, device: &Device) -> Result<QMatMul> {
    Ok(match fmt {
        WeightFormat::Quantized => QMatMul::from_arc(Arc::new(t))?,
        WeightFormat::F32 => QMatMul::Tensor(t.dequantize(device)?),
    })
}

impl QLlama {
    /// Load from a parsed GGUF file.
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        ct: &gguf_file::Content,
        reader: &mut R,
        fmt: WeightFormat,
        device: &Device,
    ) -> Result<Self> {
        let cfg = LlamaConfig::from_gguf(ct)?;
        let mut t = |name: &str| -> Result<QTensor> { Ok(ct.tensor(reader, name, device)?) };
        let embed_q = t("token_embd.weight")?;
        let embed_w = embed_q.dequantize(device)?;
        let output = match t("output.weight") {
            Ok(o) => qmm(o, fmt, device)?,
            // tied embeddings (SmolLM2)
            Err(_) => match fmt {
                WeightFormat::F32 => QMatMul::Tensor(embed_w.clone()),
                WeightFormat::Quantized => QMatMul::from_arc(Arc::new(embed_q))?,
            },
        };
        let norm = RmsNorm::from_qtensor(t("output_norm.weight")?, cfg.rms_norm_eps)?;
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let p = format!("blk.{i}");
            let qkv = vec![
                t(&format!("{p}.attn_q.weight"))?,
                t(&format!("{p}.attn_k.weight"))?,
                t(&format!("{p}.attn_v.weight"))?,
            ];
            let gate_up =
                vec![t(&format!("{p}.ffn_gate.weight"))?, t(&format!("{p}.ffn_up.weight"))?];
            layers.push(Layer {
                qkv: Proj::new(qkv, fmt, device)?,
                wo: qmm(t(&format!("{p}.attn_output.weight"))?, fmt, device)?,
                attn_norm: RmsNorm::from_qtensor(
                    t(&format!("{p}.attn_norm.weight"))?,
                    cfg.rms_norm_eps,
                )?,
                gate_up: Proj::new(gate_up, fmt, device)?,
                w_down: qmm(t(&format!("{p}.ffn_down.weight"))?, fmt, device)?,
                ffn_norm: RmsNorm::from_qtensor(
                    t(&format!("{p}.ffn_norm.weight"))?,
                    cfg.rms_norm_eps,
                )?,
            });
        }
        // RoPE tables, as precomput_freqs_cis in quantized_llama.rs.
        let half = cfg.head_dim / 2;
        let theta: Vec<f32> = (0..half)
            .map(|i| 1f32 / cfg.rope_freq_base.powf((2 * i) as f32 / cfg.head_dim as f32))
            .collect();
        let max_pos = cfg.context_length.max(1);
        let theta = Tensor::from_vec(theta, (1, half), device)?;
        let pos = Tensor::arange(0u32, max_pos as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((max_pos, 1))?;
        let idx_theta = pos.matmul(&theta)?;
        let embed = Embedding::new(embed_w, cfg.hidden);
        Ok(Self {
            cos: idx_theta.cos()?,
            sin: idx_theta.sin()?,
            cfg,
            embed,
            layers,
            norm,
            output,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Final hidden states (after the output RmsNorm), shape `[b, t, hidden]`,
    /// for right-padded token ids of shape `[b, t]`.
    pub fn hidden_states(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if t > self.cfg.context_length {
            return Err(ModelError::Input(format!(
                "sequence of {t} tokens exceeds the context length {}",
                self.cfg.context_length
            )));
        }
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (1, 1, t, t), &self.device)?;
        let cos = self.cos.narrow(0, 0, t)?;
        let sin = self.sin.narrow(0, 0, t)?;
        let (nh, nkv, hd) = (self.cfg.n_head, self.cfg.n_kv_head, self.cfg.head_dim);
        let scale = 1.0 / (hd as f64).sqrt();
        // Linears run on 2-D [b*t, hidden] matrices (plain gemm, no broadcast).
        let mut x = self.embed.forward(&ids.flatten_all()?)?; // [b*t, hidden]
        for l in &self.layers {
            let h = l.attn_norm.forward(&x)?;
            let qkv = l.qkv.forward(&h)?;
            let heads = |y: &Tensor, n: usize| -> candle_core::Result<Tensor> {
                y.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous()
            };
            let q = candle_nn::rotary_emb::rope_i(&heads(&qkv[0], nh)?, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope_i(&heads(&qkv[1], nkv)?, &cos, &sin)?;
            let v = heads(&qkv[2], nkv)?;
            let k = candle_transformers::utils::repeat_kv(k, nh / nkv)?.contiguous()?;
            let v = candle_transformers::utils::repeat_kv(v, nh / nkv)?.contiguous()?;
            let att = ((q * scale)?.matmul(&k.t()?)?).broadcast_add(&mask)?;
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att.matmul(&v)?.transpose(1, 2)?.reshape((b * t, nh * hd))?;
            x = (l.wo.forward(&y)? + x)?;
            let h = l.ffn_norm.forward(&x)?;
            let act = match &l.gate_up {
                Proj::Fused(m, _) => m.forward(&h)?.apply_op1_no_bwd(&SiluMulHalves)?,
                sep => Tensor::cat(&sep.forward(&h)?, 1)?.apply_op1_no_bwd(&SiluMulHalves)?,
            };
            x = (l.w_down.forward(&act)? + x)?;
        }
        let x = x.reshape((b, t, self.cfg.hidden))?;
        Ok(self.norm.forward(&x)?)
    }

    /// Logits `[n, vocab]` for the given rows of a `[n_total, hidden]` matrix
    /// of flattened hidden states.
    pub fn logits_rows(&self, hidden_flat: &Tensor, rows: &[u32]) -> Result<Tensor> {
        let idx = Tensor::new(rows, &self.device)?;
        let h = hidden_flat.index_select(&idx, 0)?;
        Ok(self.output.forward(&h)?)
    }

    /// Logits for every position, shape `[b, t, vocab]`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let h = self.hidden_states(ids)?;
        Ok(self.output.forward(&h)?)
    }
}

/// `silu(gate) * up` for a `[n, 2d]` matrix holding `[gate | up]` per row,
/// multi-threaded (candle's unary CPU ops run on one thread) and without
/// materialising the two halves.
struct SiluMulHalves;

impl CustomOp1 for SiluMulHalves {
    fn name(&self) -> &'static str {
        "silu-mul-halves"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = s else { candle_core::bail!("silu-mul: f32 only") };
        let Some((start, end)) = l.contiguous_offsets() else {
            candle_core::bail!("silu-mul: contiguous only")
        };
        let (n, d2) = l.shape().dims2()?;
        let d = d2 / 2;
        let src = &data[start..end];
        let mut out = vec![0f32; n * d];
        let threads = candle_core::utils::get_num_threads().max(1);
        let rows = n.div_ceil(threads).max(1);
        std::thread::scope(|sc| {
            for (o, i) in out.chunks_mut(rows * d).zip(src.chunks(rows * d2)) {
                sc.spawn(move || {
                    for (o, i) in o.chunks_mut(d).zip(i.chunks(d2)) {
                        let (g, u) = i.split_at(d);
                        for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                            *o = g / (1.0 + (-g).exp()) * u;
                        }
                    }
                });
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, d))))
    }
}
