#!/usr/bin/env bash
# Probe-campaign demo: replay recorded answers of benchmark models as local OpenAI-compatible
# endpoints and run `pedigree probe` against each, with the dataset's test prompts as the probe
# set (generated here from ../shared, never committed). Prints one result line per model.
#
#   scripts/probe-demo.sh [MODEL ...]        (default: zephyr-7b-alpha openchat-13b claude-2.1)
#
# Env: PEDIGREE (binary, default target/release/pedigree), PEDIGREE_DEV (default
# target/release/pedigree-dev), DATASET (default
# ../shared/datasets/alpaca-eval-dev), BUDGET (default 134 = every test prompt), ALPHA (0.01).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PEDIGREE:-target/release/pedigree}
DEV=${PEDIGREE_DEV:-target/release/pedigree-dev} # replay-server: a dev-only tool
DATASET=${DATASET:-../shared/datasets/alpaca-eval-dev}
BUDGET=${BUDGET:-134}
ALPHA=${ALPHA:-0.01}
{ [ -x "$BIN" ] && [ -x "$DEV" ]; } || cargo build --release -q -p server -p testkit
[ $# -gt 0 ] || set -- zephyr-7b-alpha openchat-13b claude-2.1
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
for model in "$@"; do
  out="$work/$model.url"
  "$DEV" replay-server --data "$DATASET" --model "$model" --write-probes "$work/$model.probes.jsonl" >"$out" 2>/dev/null &
  for _ in $(seq 100); do grep -q listening "$out" 2>/dev/null && break; sleep 0.1; done
  url=$(sed -n 's/^listening on //p' "$out")
  hostport=${url#http://}; hostport=${hostport%/v1}
  summary=$("$BIN" probe --data "$work/data-$model" --endpoint "$url" --model "$model" \
      --probes "$work/$model.probes.jsonl" --budget "$BUDGET" --alpha "$ALPHA" --allow "$hostport" \
      --rate 100 --concurrency 4 2>/dev/null | tail -n1)
  echo "$model $summary"
done
