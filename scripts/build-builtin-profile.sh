#!/usr/bin/env bash
# Rebuilds the built-in profile (upstream "openai") that ships inside the `pedigree` binary.
# Reproducible: fixed seed, fixed defaults, single input. Data: ../shared/datasets/alpaca-eval-dev
# (AlpacaEval model outputs, CC BY-NC 4.0; see README "Built-in profile").
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/datasets/alpaca-eval-dev}"
cargo build --release -p server
./target/release/pedigree profile build --dataset "$data" --out detector/profiles/openai-alpaca-eval-dev.pdg >/dev/null
ls -l detector/profiles/openai-alpaca-eval-dev.pdg
echo "rebuild the binary (cargo build --release) to embed it"
