# Sourced by the install-*.sh scripts (Debian packages, non-interactive, as root or via sudo).
#   need_root TAG HINT   sets $sudo ("" as root, "sudo" otherwise); without root or sudo prints
#                        "TAG: not root and no sudo: HINT" and exits 1.
#   apt_install TAG PACKAGE…   installs the packages with $sudo (call need_root first).
need_root() {
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "$1: not root and no sudo: $2" >&2
      exit 1
    fi
  fi
}

apt_install() {
  local tag="$1"
  shift
  echo "$tag: installing $*"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "$@"
}
