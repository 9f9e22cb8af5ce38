#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the dashboard's end-to-end test
# (server/tests/dashboard_e2e.rs), plus fonts so that screenshots show text and emoji.
# Idempotent: installs only the packages that are missing. Needs root (or sudo) and Debian's
# package registry; never downloads a browser build of its own.
set -euo pipefail

packages=(chromium chromium-driver fonts-dejavu-core fonts-noto-color-emoji)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "install-browser: not root and no sudo: install ${missing[*]} by hand" >&2
      exit 1
    fi
  fi
  echo "install-browser: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian's chromium wrapper script prints a harmless shell warning on some machines: keep stderr quiet.
echo "install-browser: $(chromium --version 2>/dev/null | head -n1); $(chromedriver --version 2>/dev/null | head -n1)"
