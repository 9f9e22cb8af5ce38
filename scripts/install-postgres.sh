#!/usr/bin/env bash
# Installs Debian's PostgreSQL server for the PostgreSQL store tests (server/tests/common/pg.rs
# starts a throwaway cluster with initdb + postgres on a unix socket in a temp dir; they FAIL, not
# skip, without it). Idempotent: installs only when no initdb is found, on PATH or in Debian's
# /usr/lib/postgresql/*/bin. Needs root (or sudo) and Debian's package registry.
#
# No system cluster is created or started: the tests make their own, and a `pedigree` deployment
# points --database-url at whatever server it uses.
set -euo pipefail

find_initdb() {
  if command -v initdb >/dev/null 2>&1; then
    command -v initdb
    return 0
  fi
  ls -1d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n1 | grep . || return 1
}

if ! find_initdb >/dev/null; then
  source "$(dirname "$0")/apt-install.sh"
  need_root install-postgres "install Debian's postgresql package by hand"
  # Debian's package would create and start a `main` cluster on port 5432: not wanted here.
  $sudo mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.d/pedigree-no-main-cluster.conf >/dev/null
  apt_install install-postgres postgresql
fi

initdb="$(find_initdb)" || { echo "install-postgres: initdb still not found after installing postgresql" >&2; exit 1; }
bindir="$(dirname "$initdb")"
if [ ! -x "$bindir/postgres" ]; then
  echo "install-postgres: $bindir has initdb but no postgres server binary" >&2
  exit 1
fi
echo "install-postgres: $("$bindir/postgres" --version) ($bindir)"
