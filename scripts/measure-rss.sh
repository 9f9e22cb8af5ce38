#!/usr/bin/env bash
# Peak memory (VmHWM of /proc/PID/status) of `pedigree serve` under the oversize inputs of
# issue 14 item 6, each against a fresh server and data directory:
#   idle        started, one /healthz
#   job-line    one 500 MB JSONL line as a job upload (POST /v1/jobs, application/x-ndjson)
#   multipart   one 300 MB multipart text field (POST /v1/jobs, multipart/form-data)
#   gzip-bomb   a ~1.2 MB profile file whose gzip body inflates to 1.2 GB (POST /v1/profiles)
# Prints one line per case: name, HTTP status (and the job's end state), peak RSS in MB.
# Usage: scripts/measure-rss.sh [BIN] (default target/release/pedigree, else target/debug).
# Needs ~1 GB of free disk in $TMPDIR for the inputs; takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-}"
if [ -z "$BIN" ]; then
  BIN=target/release/pedigree
  [ -x "$BIN" ] || BIN=target/debug/pedigree
fi
[ -x "$BIN" ] || { echo "measure-rss: no pedigree binary (cargo build -p server)" >&2; exit 1; }
work="$(mktemp -d)"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

python3 - "$work" <<'PY'
import gzip, struct, sys, zlib
w = sys.argv[1]
with open(f"{w}/line.jsonl", "wb") as f:          # one 500 MB line
    f.write(b'{"text": "')
    chunk = b"a" * (1 << 20)
    for _ in range(500):
        f.write(chunk)
    f.write(b'"}\n')
with open(f"{w}/field.txt", "wb") as f:           # a 300 MB text field
    chunk = b"x" * (1 << 20)
    for _ in range(300):
        f.write(chunk)
with open(f"{w}/bomb.pdg", "wb") as f:            # PDGPROF1, version 3, gzip of 1.2 GB zeros
    f.write(b"PDGPROF1" + struct.pack("<I", 3))
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    for _ in range(1200):
        f.write(z.compress(zeros))
    f.write(z.flush())
PY

start() { # fresh data dir; sets pid, base, key, admin
  local d="$work/data-$1"
  mkdir -p "$d"
  admin=$("$BIN" keys create --role admin --data "$d" 2>/dev/null | tail -n1)
  key=$("$BIN" keys create --role analyst --data "$d" 2>/dev/null | tail -n1)
  RUST_LOG=warn PEDIGREE_MAX_UPLOAD_BYTES=$((2 << 30)) "$BIN" serve --listen 127.0.0.1:0 --data "$d" \
    >"$work/out-$1" 2>"$work/err-$1" &
  pid=$!
  for _ in $(seq 1 300); do
    base=$(sed -n 's/^listening on //p' "$work/out-$1" | head -n1)
    [ -n "$base" ] && break
    sleep 0.1
  done
  [ -n "$base" ] || { echo "measure-rss: server did not start" >&2; cat "$work/err-$1" >&2; exit 1; }
}
peak() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status"; }
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
suspect() {
  curl -s "$base/v1/suspects" -H "Authorization: Bearer $key" -H 'content-type: application/json' \
    -d '{"name": "rss"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}

start idle
curl -s "$base/healthz" >/dev/null
printf '%-10s %-22s peak RSS %s MB\n' idle "200" "$(peak)"
stop

start line
sus=$(suspect)
resp=$(curl -s -w '\n%{http_code}' "$base/v1/jobs?suspect=$sus" -H "Authorization: Bearer $key" \
  -H 'content-type: application/x-ndjson' --data-binary @"$work/line.jsonl")
code=$(tail -n1 <<<"$resp")
job=$(head -n1 <<<"$resp" | python3 -c 'import json,sys; print(json.load(sys.stdin)["job"]["id"])' 2>/dev/null || true)
state=none
if [ -n "$job" ]; then
  for _ in $(seq 1 600); do
    state=$(curl -s "$base/v1/jobs/$job" -H "Authorization: Bearer $key" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    case "$state" in done | failed | cancelled) break ;; esac
    sleep 0.2
  done
fi
printf '%-10s %-22s peak RSS %s MB\n' job-line "$code, job $state" "$(peak)"
stop

start multipart
sus=$(suspect)
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/jobs" -H "Authorization: Bearer $key" \
  -F "suspect=$sus" -F "kind=<$work/field.txt" -F 'file=@-;filename=in.jsonl' <<<'{"text": "a"}')
printf '%-10s %-22s peak RSS %s MB\n' multipart "$code" "$(peak)"
stop

start bomb
code=$(curl -s -o "$work/bomb-reply" -w '%{http_code}' "$base/v1/profiles?name=bomb" \
  -H "Authorization: Bearer $admin" -H 'content-type: application/octet-stream' \
  --data-binary @"$work/bomb.pdg")
printf '%-10s %-22s peak RSS %s MB  (%s bytes file: %s)\n' gzip-bomb "$code" "$(peak)" \
  "$(stat -c %s "$work/bomb.pdg")" "$(head -c 160 "$work/bomb-reply")"
stop
