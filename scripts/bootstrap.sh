#!/usr/bin/env bash
# Make this machine ready for botpool (Debian 12, root, maybe no systemd), idempotently:
#   1. Debian packages that are missing: the Docker engine, debootstrap (local base images),
#      python3-venv, openssh-client (SSH tests);
#   2. a running Docker engine: started in the background when nothing answers;
#   3. $REPO/.venv with botpool and its pinned dependencies (`uv pip install -e '.[test]'`:
#      a fresh one took 79 s with pip here, 11 s with uv), reinstalled only when pyproject.toml
#      changed. Bytecode is not compiled at install: the Makefile lets Python write it as
#      modules are first imported (about 2,600 of the 8,900 files are ever imported; compiling
#      them all took `make up` 13 s more on a fresh machine; `make test`'s first unit run
#      compiles what it imports instead, about as long).
# When everything is there it asks a few questions and changes nothing (well under a second).
# Called by `make up` and `make test`. Settings (environment):
#   BOTPOOL_DOCKER_TIMEOUT  seconds to wait for a starting engine (default 60)
#   PYTHON                  the interpreter the virtualenv is made from (default python3)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV="$REPO/.venv"
STAMP="$VENV/.botpool-installed"  # holds the sha256 of the pyproject.toml last installed
TIMEOUT=${BOTPOOL_DOCKER_TIMEOUT:-60}
PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.9  # installs the virtualenv's packages (pip only installs uv)

say() { echo "bootstrap: $*"; }
fail() { echo "bootstrap: $*" >&2; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || fail "$1 needs root: run me as root"; }

# --- 1. packages: each one checked by the command it provides -----------------------------
missing=()
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v "$PYTHON" >/dev/null 2>&1 || missing+=(python3)
"$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if ((${#missing[@]})); then
  need_root "installing ${missing[*]}"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || fail "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]} failed"
fi
# the engine and its client, as a converge installs them on a host (Debian 13 ships the client
# apart, in docker-cli)
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  need_root "installing the Docker engine"
  say "installing the Docker engine (docker.io)"
  sh "$REPO/botpool/payloads/install-engine.sh" >/dev/null || fail "installing docker.io failed"
fi

# --- 2. the Docker engine -----------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  need_root "starting the Docker engine"
  say "starting the Docker engine (log: /var/log/dockerd.log)"
  timeout=$TIMEOUT sh "$REPO/botpool/payloads/start-engine.sh" || fail "the Docker engine did not start"
fi

# --- 3. the virtualenv --------------------------------------------------------------------
want=$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  [ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
  say "installing botpool and its pinned dependencies into $VENV"
  "$VENV/bin/pip" install -q "uv==$UV_VERSION" || fail "pip install uv failed"
  # the system's certificates, as pip uses them (a TLS-intercepting proxy's CA among them)
  (cd "$REPO" && UV_NATIVE_TLS=1 "$VENV/bin/uv" pip install -q \
    --python "$VENV/bin/python" -e '.[test]') || fail "uv pip install failed"
  echo "$want" >"$STAMP"
fi
