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
  source "$(dirname "$0")/apt-install.sh"
  need_root install-browser "install ${missing[*]} by hand"
  apt_install install-browser "${missing[@]}"
fi
# Debian's chromium wrapper script prints a harmless shell warning on some machines: keep stderr quiet.
echo "install-browser: $(chromium --version 2>/dev/null | head -n1); $(chromedriver --version 2>/dev/null | head -n1)"
