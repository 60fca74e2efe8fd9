#!/usr/bin/env bash
# Install the pinned OpenHands packages for the contract tests, every dependency hash-checked,
# each in its own venv:
#   /opt/openhands         requirements.lock: openhands-sdk and openhands-agent-server (mcp.json)
#   /opt/openhands-legacy  requirements-legacy.lock: openhands-ai 1.6.0, the last release that
#                          reads the config.toml [mcp] tables (1.7.0 removed them)
#   /opt/openhands-cli     requirements-cli.lock: the openhands CLI 1.16.0 (~/.openhands/mcp.json).
#                          It declares Python ==3.12.* and no Python 3.12 can be had here (no
#                          Debian suite has one; a standalone build would be a download from
#                          outside the registries), so it goes onto the root's 3.13 with
#                          --ignore-requires-python, its lock resolved for 3.12 (lock.sh 3.12).
# (lock.sh regenerates a lock from its .in file.)
#
# OpenHands needs Python >= 3.12 and the host has 3.11, so the packages live in a Debian
# trixie root (Python 3.13) made by debootstrap, in a venv at /opt/openhands inside it. Tests
# run its Python with chroot (see tests/support/openhands.py); chroot shares the host's
# network, so servers on 127.0.0.1 reach each other both ways. Never part of the operator's
# own dependencies.
#
# The root lives OUTSIDE the clone, keyed by the sha256 of this script and the lock files:
#   ${DEVSERVER_CACHE_DIR:-$HOME/.cache/devserver-operator}/openhands-<sha12>/root
# A marker is written last; an interrupted install is redone on the next run. pip's wheel
# cache is kept beside it (openhands-pip-cache), so a changed lock downloads only what changed.
#
# Needs root (debootstrap, chroot). Progress goes to stderr; the last line on stdout is the
# root's path:   OPENHANDS_ROOT="$(bash hack/openhands/install.sh)"
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${DEVSERVER_CACHE_DIR:-${HOME}/.cache/devserver-operator}"
locks=(requirements.lock requirements-legacy.lock requirements-cli.lock)
sha="$(cd "${here}" && cat install.sh "${locks[@]}" | sha256sum | cut -c1-12)"
dest="${cache}/openhands-${sha}"
root="${dest}/root"
marker="${dest}/.install-complete"
pip_cache="${cache}/openhands-pip-cache"
suite="trixie"
mirror="${DEVSERVER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ca_bundle="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"

log() { printf '[openhands-install] %s\n' "$*" >&2; }

if [[ -f "${marker}" ]]; then
  log "already installed: ${dest} ($(cat "${marker}"))"
  printf '%s\n' "${root}"
  exit 0
fi
[[ "$(id -u)" == 0 ]] || { log "needs root (debootstrap and chroot)"; exit 1; }
if ! command -v debootstrap >/dev/null && [[ ! -x /usr/sbin/debootstrap ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
fi
mkdir -p "${cache}" "${pip_cache}"

# One installer at a time (two pytest workers, CI + a developer shell).
exec 9>"${cache}/.openhands-${sha}.lock"
flock -w 1800 9 || { log "timed out waiting for another install"; exit 1; }
if [[ -f "${marker}" ]]; then
  printf '%s\n' "${root}"
  exit 0
fi

start=${SECONDS}
rm -rf "${dest}"
mkdir -p "${dest}"
log "debootstrap --variant=minbase ${suite} (Python 3.13) into ${root}"
PATH="/usr/sbin:/sbin:${PATH}" nice -n 10 debootstrap --variant=minbase \
  --include=python3,python3-venv,ca-certificates "${suite}" "${root}" "${mirror}" \
  >"${dest}/debootstrap.log" 2>&1 || { tail -n 20 "${dest}/debootstrap.log" >&2; exit 1; }
rm -rf "${root}"/var/cache/apt/archives/*.deb "${root}"/var/lib/apt/lists/*
log "debootstrap done in $((SECONDS - start))s"

# The host's CA bundle: it may hold the CA of a proxy between this machine and PyPI.
cp "${ca_bundle}" "${root}/etc/ssl/certs/host-ca-bundle.crt"
mkdir -p "${root}/opt/lock" "${root}/root/.cache/pip"
for lock in "${locks[@]}"; do cp "${here}/${lock}" "${root}/opt/lock/"; done
# One venv per lock, in a private mount namespace: the pip cache's bind mount and /proc vanish
# with the process. $3 is the venv, $4 its lock, $5 a module that must import afterwards,
# $6 more pip options.
install_venv() {
  local started=${SECONDS}
  unshare --mount --propagation private --fork bash -euo pipefail -c '
    root="$1"; pip_cache="$2"
    mount --bind "${pip_cache}" "${root}/root/.cache/pip"
    mount -t proc proc "${root}/proc"
    chroot "${root}" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
      PIP_DEFAULT_TIMEOUT=180 OPENHANDS_SUPPRESS_BANNER=1 LITELLM_LOCAL_MODEL_COST_MAP=True \
      bash -euo pipefail -c "
        python3 -m venv $3
        nice -n 10 $3/bin/pip install --quiet --require-hashes --no-deps $6 -r /opt/lock/$4
        $3/bin/python -c \"import $5\"
      "
  ' _ "${root}" "${pip_cache}" "$1" "$2" "$3" "${4:-}" >&2
  log "$1: pip install done in $((SECONDS - started))s ($(du -sh "${root}$1" | cut -f1))"
}
install_venv /opt/openhands requirements.lock "openhands.sdk.mcp, openhands.agent_server.api"
install_venv /opt/openhands-legacy requirements-legacy.lock \
  "openhands.core.config, openhands.mcp.utils"
install_venv /opt/openhands-cli requirements-cli.lock "openhands_cli.mcp.mcp_utils" \
  --ignore-requires-python
rm -rf "${root}/opt/lock"
versions="$(chroot "${root}" /opt/openhands/bin/python -c '
from importlib.metadata import version
print(" ".join(f"{p} {version(p)}" for p in ("openhands-sdk", "openhands-agent-server")))')"
versions+=", $(chroot "${root}" /opt/openhands-legacy/bin/python -c '
from importlib.metadata import version
print("openhands-ai", version("openhands-ai"))')"
versions+=", $(chroot "${root}" /opt/openhands-cli/bin/python -c '
from importlib.metadata import version
print("openhands (CLI)", version("openhands"), "with openhands-sdk", version("openhands-sdk"))')"
printf '%s; installed in %ss on %s\n' "${versions}" "$((SECONDS - start))" \
  "$(date -u +%FT%TZ)" >"${marker}"
log "done: ${versions} in $((SECONDS - start))s ($(du -sh "${dest}" | cut -f1))"
printf '%s\n' "${root}"
