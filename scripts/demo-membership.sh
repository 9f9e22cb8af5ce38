#!/usr/bin/env bash
# The README's served-log campaign demo: a real `pedigree serve` (fresh SQLite data directory,
# port 0) runs two campaigns whose probe set is a served log (../shared/datasets/membership-dev
# served.jsonl: real GPT-4 answers), with the upstream's fresh answers replayed from fresh.jsonl
# (the same snapshot, sampled again), against local OpenAI-compatible replays of
#   1. a simulated student (detector/examples/membership_eval.rs --write-student: a share ρ of
#      the prompts answered with a desensitized served answer, the rest by a real model), and
#   2. that real model itself (an independent model that never saw the served answers).
# Prints each campaign's decision and the probes it needed.
#
#   scripts/demo-membership.sh [DATASETS_DIR]     (default ../shared/datasets)
#   DEMO_BASE=claude DEMO_RHO=0.25 DEMO_LEVEL=medium DEMO_SEED=1 scripts/demo-membership.sh
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/datasets}"
base_model="${DEMO_BASE:-claude}"
rho="${DEMO_RHO:-0.25}"
level="${DEMO_LEVEL:-medium}"
seed="${DEMO_SEED:-1}"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

cargo build --release -q -p server -p testkit
cargo run --release -q -p detector --example membership_eval -- "$data" \
  --write-student "$tmp/student.jsonl" --base "$base_model" --rho "$rho" --level "$level" --seed "$seed"
bin=target/release/pedigree
dev=target/release/pedigree-dev # replay-server: a dev-only tool

# Start a process that prints "listening on URL"; echo the URL.
start() {
  local name=$1 exe=$2
  shift 2
  "$exe" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  for _ in $(seq 1 200); do
    if grep -q "listening on" "$tmp/$name.out" 2>/dev/null; then
      grep -m1 -o 'http://[^ ]*' "$tmp/$name.out"
      return
    fi
    sleep 0.1
  done
  echo "$name did not start: $(cat "$tmp/$name.err")" >&2
  exit 1
}
json() { python3 -c "import json,sys; v=json.load(sys.stdin); print(eval(sys.argv[1], {'v': v}))" "$1"; }

student=$(start student "$dev" replay-server --answers "$tmp/student.jsonl" --model student)
independent=$(start independent "$dev" replay-server --data "$data/alpaca-eval-dev" --model "$base_model")
upstream=$(start upstream "$dev" replay-server --answers "$data/membership-dev/fresh.jsonl" --model gpt-4)
mkdir -p "$tmp/data"
key=$("$bin" keys create --data "$tmp/data" --role admin --name demo | tail -1)
api=$(start serve "$bin" serve --listen 127.0.0.1:0 --data "$tmp/data")
auth=(-H "authorization: Bearer $key")
for url in "$student" "$independent" "$upstream"; do
  hostport=${url#http://}
  hostport=${hostport%%/*}
  curl -sf "${auth[@]}" -H 'content-type: application/json' -d "{\"entry\": \"$hostport\"}" "$api/v1/allowlist" >/dev/null
done
log=$(curl -sf "${auth[@]}" -H 'content-type: application/x-ndjson' \
  --data-binary "@$data/membership-dev/served.jsonl" "$api/v1/served-logs?name=gpt-4%20served" | json "v['id']")
echo "served log $log uploaded ($(wc -l <"$data/membership-dev/served.jsonl") answers)"

campaign() {
  local label=$1 url=$2 model=$3
  local body
  body=$(printf '{"endpoint": {"base_url": "%s", "model": "%s"}, "upstream": {"base_url": "%s", "model": "gpt-4"}, "membership": {"served_log": "%s"}, "budget": {"max_requests": 403}, "batch": 25, "concurrency": 8, "client": {"rate_per_sec": 200, "max_attempts": 2}}' \
    "$url" "$model" "$upstream" "$log")
  local id
  id=$(curl -sf "${auth[@]}" -H 'content-type: application/json' -d "$body" "$api/v1/campaigns" | json "v['id']")
  local state=queued
  while [ "$state" = queued ] || [ "$state" = running ]; do
    sleep 1
    state=$(curl -sf "${auth[@]}" "$api/v1/campaigns/$id" | json "v['state']")
  done
  curl -sf "${auth[@]}" "$api/v1/campaigns/$id" | json "v['summary']" >"$tmp/$id.summary"
  curl -sf "${auth[@]}" "$api/v1/campaigns/$id" | python3 -c "
import json, sys
c = json.load(sys.stdin); s = c['summary']; q = c.get('sequential') or {}
looks = ', '.join('n=%d p=%.2g at level %.2g' % (l['n'], l['p_value'], l['level']) for l in q.get('looks', []))
print('%s: decision %s after %d probes (stop: %s); looks: %s' % ('$label', s['decision'], s['probes_sent'], s['stop_reason'], looks))
"
}
campaign "student (base $base_model, rho $rho, $level desensitization)" "$student" student
campaign "independent ($base_model)" "$independent" "$base_model"
