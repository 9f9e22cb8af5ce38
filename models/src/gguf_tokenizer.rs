//! Build a Hugging Face `tokenizers` BPE tokenizer from GGUF metadata.
//!
//! The GGUF of SmolLM2 ships no `tokenizer.json`; it stores the vocabulary in
//! `tokenizer.ggml.tokens` (byte-level GPT-2 alphabet, e.g. `Ġthe`), the merge
//! rules in `tokenizer.ggml.merges` (`"Ġ t"`), the token kinds in
//! `tokenizer.ggml.token_type` (3 = control/special) and the pre-tokenizer
//! name in `tokenizer.ggml.pre` (`smollm`). We rebuild the same pipeline as
//! SmolLM2's own `tokenizer.json`: a `Digits(individual_digits)` split then a
//! GPT-2 `ByteLevel` pre-tokenizer (llama.cpp's `LLAMA_VOCAB_PRE_TYPE_SMOLLM`
//! uses the same two regexes), a BPE model without unk token, and a ByteLevel
//! decoder; control tokens such as `<|im_start|>` become special added tokens.

use candle_core::quantized::gguf_file::{Content, Value};
use serde_json::json;
use std::str::FromStr;
use tokenizers::Tokenizer;

use crate::{ModelError, Result};

fn strings(ct: &Content, key: &str) -> Result<Vec<String>> {
    match ct.metadata.get(key) {
        Some(Value::Array(a)) => {
            a.iter().map(|v| v.to_string().cloned().map_err(ModelError::from)).collect()
        }
        _ => Err(ModelError::Config(format!("GGUF metadata lacks string array {key}"))),
    }
}

/// Build the tokenizer described by a GGUF file's `tokenizer.ggml.*` metadata
/// (`tokenizer.ggml.model` must be `gpt2`, i.e. byte-level BPE).
pub fn tokenizer_from_gguf(ct: &Content) -> Result<Tokenizer> {
    let model = ct
        .metadata
        .get("tokenizer.ggml.model")
        .and_then(|v| v.to_string().ok().cloned())
        .unwrap_or_default();
    if model != "gpt2" {
        return Err(ModelError::Config(format!(
            "only byte-level BPE (tokenizer.ggml.model = gpt2) is supported, got {model:?}"
        )));
    }
    let pre = ct
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok().cloned())
        .unwrap_or_default();
    let tokens = strings(ct, "tokenizer.ggml.tokens")?;
    let merges = strings(ct, "tokenizer.ggml.merges")?;
    let types: Vec<i64> = match ct.metadata.get("tokenizer.ggml.token_type") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::I32(x) => *x as i64,
                Value::U32(x) => *x as i64,
                Value::I8(x) => *x as i64,
                Value::U8(x) => *x as i64,
                _ => 1,
            })
            .collect(),
        _ => vec![1; tokens.len()],
    };

    let mut vocab = serde_json::Map::with_capacity(tokens.len());
    let mut added = Vec::new();
    for (id, tok) in tokens.iter().enumerate() {
        vocab.insert(tok.clone(), json!(id));
        // 3 = CONTROL, 4 = USER_DEFINED (llama.cpp's llama_token_type)
        let ty = types.get(id).copied().unwrap_or(1);
        if ty == 3 || ty == 4 {
            added.push(json!({
                "id": id, "content": tok, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": ty == 3,
            }));
        }
    }
    let merges: Vec<serde_json::Value> = merges
        .iter()
        .map(|m| {
            let (a, b) =
                m.split_once(' ').ok_or_else(|| ModelError::Config(format!("bad merge {m:?}")))?;
            Ok(json!([a, b]))
        })
        .collect::<Result<_>>()?;

    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    // "smollm" / "starcoder"-style vocabularies split every digit on its own.
    let pre_tokenizer = if pre.is_empty() || pre == "gpt-2" {
        byte_level.clone()
    } else {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            byte_level.clone(),
        ]})
    };
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges,
        },
    });
    Tokenizer::from_str(&spec.to_string()).map_err(ModelError::from)
}
