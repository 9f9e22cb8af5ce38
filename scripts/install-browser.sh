#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the dashboard's end-to-end tests
# (server/tests/dashboard_e2e.rs). Idempotent: does nothing when both are already there.
# Needs root (or sudo) and Debian's package registry; never downloads a browser build of its own.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have chromium && have chromedriver; then
  echo "install-browser: $(chromium --version 2>/dev/null | head -n1); $(chromedriver --version 2>/dev/null | head -n1)"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if have sudo; then sudo="sudo"; else
    echo "install-browser: not root and no sudo: install the Debian packages chromium and chromium-driver by hand" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core
echo "install-browser: $(chromium --version | head -n1); $(chromedriver --version | head -n1)"
