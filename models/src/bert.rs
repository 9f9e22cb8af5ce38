//! A compact BERT encoder for sentence embeddings on CPU.
//!
//! Same weights and maths as `candle_transformers::models::bert`
//! (<https://github.com/huggingface/candle/blob/main/candle-transformers/src/models/bert.rs>,
//! itself following `transformers/models/bert/modeling_bert.py`), restructured
//! for CPU throughput: the linears run on 2-D `[tokens, hidden]` matrices, Q/K/V
//! are one fused matmul, the softmax is candle's multi-threaded
//! `softmax_last_dim` (the upstream model uses the generic, op-by-op softmax)
//! and GELU(erf) is a multi-threaded kernel (candle's unary ops run on one
//! thread).

use candle_core::{CpuStorage, CustomOp1, Layout, Module, Shape, Tensor};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};
use candle_transformers::models::bert::{Config, HiddenAct};

use crate::{ModelError, Result};

struct Layer {
    qkv: Linear,
    attn_out: Linear,
    attn_ln: LayerNorm,
    inter: Linear,
    out: Linear,
    out_ln: LayerNorm,
}

/// BERT encoder returning the last hidden states.
pub struct Bert {
    word: Embedding,
    pos: Embedding,
    token_type: Embedding,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
    n_heads: usize,
    hidden: usize,
}

fn load_linear_cat(vbs: &[VarBuilder], i: usize, o: usize) -> candle_core::Result<Linear> {
    let mut ws = Vec::new();
    let mut bs = Vec::new();
    for vb in vbs {
        ws.push(vb.get((o, i), "weight")?);
        bs.push(vb.get(o, "bias")?);
    }
    Ok(Linear::new(Tensor::cat(&ws, 0)?, Some(Tensor::cat(&bs, 0)?)))
}

impl Bert {
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        if !matches!(cfg.hidden_act, HiddenAct::Gelu) {
            return Err(ModelError::Config(format!("unsupported hidden_act {:?}", cfg.hidden_act)));
        }
        // checkpoints saved from BertModel have no prefix, BertFor* ones use "bert."
        let vb = if vb.contains_tensor("embeddings.word_embeddings.weight") {
            vb
        } else {
            vb.pp("bert")
        };
        let h = cfg.hidden_size;
        let e = vb.pp("embeddings");
        let word = embedding(cfg.vocab_size, h, e.pp("word_embeddings"))?;
        let pos = embedding(cfg.max_position_embeddings, h, e.pp("position_embeddings"))?;
        let token_type = embedding(cfg.type_vocab_size, h, e.pp("token_type_embeddings"))?;
        let emb_ln = layer_norm(h, cfg.layer_norm_eps, e.pp("LayerNorm"))?;
        let mut layers = Vec::new();
        for i in 0..cfg.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            let s = a.pp("self");
            layers.push(Layer {
                qkv: load_linear_cat(&[s.pp("query"), s.pp("key"), s.pp("value")], h, h)?,
                attn_out: linear(h, h, a.pp("output").pp("dense"))?,
                attn_ln: layer_norm(h, cfg.layer_norm_eps, a.pp("output").pp("LayerNorm"))?,
                inter: linear(h, cfg.intermediate_size, l.pp("intermediate").pp("dense"))?,
                out: linear(cfg.intermediate_size, h, l.pp("output").pp("dense"))?,
                out_ln: layer_norm(h, cfg.layer_norm_eps, l.pp("output").pp("LayerNorm"))?,
            });
        }
        Ok(Self {
            word,
            pos,
            token_type,
            emb_ln,
            layers,
            n_heads: cfg.num_attention_heads,
            hidden: h,
        })
    }

    /// Hidden states `[b, t, hidden]` for right-padded `ids` `[b, t]` with a
    /// 0/1 `mask` `[b, t]` (u32); token type ids are all 0.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let (h, nh) = (self.hidden, self.n_heads);
        let hd = h / nh;
        let dev = ids.device();
        let pos_ids = Tensor::arange(0u32, t as u32, dev)?;
        let x = self.word.forward(&ids.flatten_all()?)?.reshape((b, t, h))?;
        let x = x.broadcast_add(&self.pos.forward(&pos_ids)?)?;
        let x = x.broadcast_add(&self.token_type.forward(&Tensor::zeros(
            1,
            candle_core::DType::U32,
            dev,
        )?)?)?;
        let mut x = self.emb_ln.forward(&x)?.reshape((b * t, h))?;
        // additive mask [b, 1, 1, t]: 0 for tokens, large negative for padding
        let neg =
            ((mask.to_dtype(candle_core::DType::F32)? - 1.0)? * 1e9)?.reshape((b, 1, 1, t))?;
        let scale = 1.0 / (hd as f64).sqrt();
        for l in &self.layers {
            let qkv = l.qkv.forward(&x)?; // [b*t, 3h]
            let split = |i: usize| -> candle_core::Result<Tensor> {
                qkv.narrow(1, i * h, h)?.reshape((b, t, nh, hd))?.transpose(1, 2)?.contiguous()
            };
            let q = (split(0)? * scale)?;
            let k = split(1)?;
            let v = split(2)?;
            let att = q.matmul(&k.t()?)?.broadcast_add(&neg)?;
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let ctx = att.matmul(&v)?.transpose(1, 2)?.reshape((b * t, h))?;
            let a = l.attn_out.forward(&ctx)?;
            x = l.attn_ln.forward(&(a + x)?)?;
            let i = l.inter.forward(&x)?.apply_op1_no_bwd(&GeluErf)?;
            let o = l.out.forward(&i)?;
            x = l.out_ln.forward(&(o + x)?)?;
        }
        Ok(x.reshape((b, t, h))?)
    }
}

/// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26).
#[inline]
fn erf(x: f32) -> f32 {
    let s = x.signum();
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let y = 1.0
        - (((((1.061_405_4 * t - 1.453_152_1) * t) + 1.421_413_8) * t - 0.284_496_74) * t
            + 0.254_829_6)
            * t
            * (-a * a).exp();
    s * y
}

/// Multi-threaded GELU with the exact (erf) formulation, as BERT's "gelu".
struct GeluErf;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf-mt"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = s else { candle_core::bail!("gelu-erf-mt: f32 only") };
        let Some((start, end)) = l.contiguous_offsets() else {
            candle_core::bail!("gelu-erf-mt: contiguous only")
        };
        let src = &data[start..end];
        let mut out = vec![0f32; src.len()];
        let threads = candle_core::utils::get_num_threads().max(1);
        let chunk = src.len().div_ceil(threads).max(4096);
        std::thread::scope(|sc| {
            for (o, i) in out.chunks_mut(chunk).zip(src.chunks(chunk)) {
                sc.spawn(move || {
                    for (o, &v) in o.iter_mut().zip(i) {
                        *o = 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
                    }
                });
            }
        });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}
