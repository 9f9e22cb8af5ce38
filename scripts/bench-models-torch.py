#!/usr/bin/env python3
"""PyTorch CPU baseline for the `models` crate's throughput example.

Runs the same two models on the same texts with the same limits as
`cargo run --release -p models --example throughput`:
  * all-MiniLM-L6-v2 with sentence-transformers, loaded from the unpacked
    hub-layout dir (max_seq_length 256, normalised embeddings);
  * SmolLM2-135M-Instruct with transformers from the GGUF (`gguf_file=`,
    dequantized to f32), `<|endoftext|>` + text truncated to 256 text tokens,
    one forward pass per padded batch (<= 2048 padded tokens), and the same
    per-token features (mean log-prob, entropy, log-rank, top-k, Fast-DetectGPT).

Setup (not part of CI; torch is large):
  python3 -m venv .cache/torchvenv
  .cache/torchvenv/bin/pip install torch transformers sentence-transformers gguf
Usage:
  .cache/torchvenv/bin/python scripts/bench-models-torch.py [--n 200] [--threads 2] \
      [--compare /tmp/candle-feats.jsonl]
"""
import argparse
import json
import math
import os
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_texts(path, n):
    texts = []
    with open(path) as f:
        for line in f:
            r = json.loads(line).get("response")
            if isinstance(r, str) and r.strip():
                texts.append(r)
            if len(texts) == n:
                break
    return texts


def features_from_logits(torch, logits, targets):
    """logits [n, V] predicting targets [n] -> dict of features (as the Rust code)."""
    logp = torch.log_softmax(logits.double(), dim=-1)
    p = logp.exp()
    lp_t = logp.gather(1, targets[:, None])[:, 0]
    mu = (p * logp).sum(-1)
    var = (p * logp * logp).sum(-1) - mu * mu
    tgt_logit = logits.gather(1, targets[:, None])
    rank = 1 + (logits > tgt_logit).sum(-1)
    log_rank = rank.double().log()
    return {
        "mean_logprob": lp_t.mean().item(),
        "mean_entropy": (-mu).mean().item(),
        "mean_log_rank": log_rank.mean().item(),
        "median_log_rank": float(log_rank.sort().values.quantile(0.5).item()),
        "top1_frac": (rank == 1).double().mean().item(),
        "top10_frac": (rank <= 10).double().mean().item(),
        "fast_detectgpt": ((lp_t.sum() - mu.sum()) / var.clamp(min=0).sum().clamp(min=1e-12).sqrt()).item(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--batch-tokens", type=int, default=2048)
    ap.add_argument("--samples", default=os.environ.get(
        "PEDIGREE_BENCH_SAMPLES", "/work/shared/datasets/alpaca-eval-dev/samples.jsonl"))
    ap.add_argument("--models-dir", default=os.environ.get(
        "PEDIGREE_MODELS_DIR", os.path.join(ROOT, ".cache", "models")))
    ap.add_argument("--compare", help="JSON lines written by the throughput example's --dump")
    ap.add_argument("--skip-minilm", action="store_true")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    texts = load_texts(args.samples, args.n)
    print(f"texts: {len(texts)}; torch {torch.__version__} threads {torch.get_num_threads()}")

    # --- MiniLM via sentence-transformers ---
    if not args.skip_minilm:
        from sentence_transformers import SentenceTransformer
        t = time.time()
        st = SentenceTransformer(os.path.join(args.models_dir, "all-minilm-l6-v2"), device="cpu")
        st.max_seq_length = 256
        print(f"minilm load: {time.time() - t:.2f}s")
        a = st.encode(["A man is eating food.", "A man is eating a piece of bread.",
                       "The stock market fell sharply today."], normalize_embeddings=True)
        print(f"  cos(food, bread) = {float(a[0] @ a[1]):.5f}, cos(food, stock) = {float(a[0] @ a[2]):.5f}")
        st.encode(texts[:16], batch_size=32)  # warm-up
        t = time.time()
        e = st.encode(texts, batch_size=32, normalize_embeddings=True)
        dt = time.time() - t
        print(f"torch minilm (sentence-transformers, batch 32): {len(e) / dt:.1f} texts/s")

    # --- SmolLM2 via transformers GGUF loader ---
    from transformers import AutoModelForCausalLM, AutoTokenizer
    gdir = os.path.join(args.models_dir, "smollm2")
    gfile = "SmolLM2-135M-Instruct.Q4_1.gguf"
    t = time.time()
    tok = AutoTokenizer.from_pretrained(gdir, gguf_file=gfile)
    model = AutoModelForCausalLM.from_pretrained(gdir, gguf_file=gfile, dtype=torch.float32)
    model.eval()
    print(f"smollm2 load (dequantized f32): {time.time() - t:.2f}s")
    sep = tok.convert_tokens_to_ids("<|endoftext|>")
    prepared = []
    for s in texts:
        ids = tok(s, add_special_tokens=False)["input_ids"][: args.max_tokens]
        prepared.append([sep] + ids)
    if args.compare:
        # transformers' GGUF tokenizer conversion ignores tokenizer.ggml.pre = "smollm"
        # (digits split one by one before the GPT-2 regex, as llama.cpp and SmolLM2's
        # tokenizer.json do), so e.g. ":\n\n1." tokenizes differently. Score the candle
        # token ids so that both sides run the same sequences.
        rows = [json.loads(l) for l in open(args.compare)]
        same = sum(1 for r, p in zip(rows, prepared) if r["ids"] == p)
        print(f"tokenizer: transformers' GGUF tokenizer == candle's for {same}/{len(prepared)} texts; using candle's ids")
        prepared = [r["ids"] for r in rows[: len(prepared)]]
    ntok = sum(len(p) for p in prepared)

    def run(items):
        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        out = [None] * len(items)
        start = 0
        while start < len(order):
            width = len(items[order[start]])
            n = max(1, min(args.batch_tokens // width, len(order) - start))
            idx = order[start:start + n]
            ids = torch.full((n, width), sep, dtype=torch.long)
            mask = torch.zeros((n, width), dtype=torch.long)
            for k, i in enumerate(idx):
                ids[k, : len(items[i])] = torch.tensor(items[i])
                mask[k, : len(items[i])] = 1
            hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
            for k, i in enumerate(idx):
                L = len(items[i])
                logits = model.lm_head(hidden[k, : L - 1])
                out[i] = features_from_logits(torch, logits.float(), torch.tensor(items[i][1:]))
            start += n
        return out

    run(prepared[:4])  # warm-up
    t = time.time()
    feats = run(prepared)
    dt = time.time() - t
    print(f"torch smollm2 features (f32): {len(feats) / dt:.2f} texts/s ({ntok / dt:.0f} tokens/s, {ntok} tokens)")
    print(f"  mean of mean_logprob: {sum(f['mean_logprob'] for f in feats) / len(feats):.4f}")

    if args.compare:
        worst = {}
        for r, f in zip(rows, feats):
            for k, v in f.items():
                worst[k] = max(worst.get(k, 0.0), abs(v - r["features"][k]))
        print("compare: max |candle - torch| per feature over all texts: " +
              ", ".join(f"{k}={v:.2e}" for k, v in worst.items()))


if __name__ == "__main__":
    main()
