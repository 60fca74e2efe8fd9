#!/usr/bin/env bash
# Lints the GitHub Actions workflows with actionlint, built from its Go module at a pinned
# version into the same cache as the control plane binaries (nothing downloaded from a
# release page):
#
#   ${DEVSERVER_CACHE_DIR:-$HOME/.cache/devserver-operator}/bin/actionlint-<version>/actionlint
#
# Usage: hack/actionlint.sh [--build-only] [actionlint args...]
# Without arguments it checks every file in .github/workflows/. shellcheck, when installed,
# is used by actionlint for the `run:` scripts.
set -euo pipefail

ACTIONLINT_VERSION="v1.7.12"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${DEVSERVER_CACHE_DIR:-${HOME}/.cache/devserver-operator}/bin/actionlint-${ACTIONLINT_VERSION}"
binary="${out_dir}/actionlint"

go_bin="$(command -v go || true)"
if [[ -z "${go_bin}" && -x /usr/local/go/bin/go ]]; then
  go_bin=/usr/local/go/bin/go
fi

if [[ ! -x "${binary}" ]]; then
  if [[ -z "${go_bin}" ]]; then
    echo "actionlint.sh: no Go toolchain found (looked on PATH and at /usr/local/go/bin/go)" >&2
    exit 1
  fi
  mkdir -p "${out_dir}"
  exec {lock_fd}>"${out_dir}/.lock"
  flock "${lock_fd}"
  if [[ ! -x "${binary}" ]]; then
    echo "==> actionlint ${ACTIONLINT_VERSION}: building from github.com/rhysd/actionlint" >&2
    # `go install module@version` builds with the module's own go.mod and go.sum, checked
    # against the checksum database: the pin is the version, nothing drifts.
    # Build into a scratch GOBIN and move the result: an interrupted build must not leave a
    # file that the next run takes for a finished binary.
    scratch="$(mktemp -d "${out_dir}/.build.XXXXXX")"
    GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath" GOBIN="${scratch}" \
      "${go_bin}" install -ldflags "-s -w -X=main.version=${ACTIONLINT_VERSION}" \
      "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}"
    mv -f "${scratch}/actionlint" "${binary}"
    rm -rf "${scratch}"
  fi
  exec {lock_fd}>&-
fi

if [[ "${1:-}" == "--build-only" ]]; then
  echo "${binary}"
  exit 0
fi

cd "${repo}"
if [[ $# -eq 0 ]]; then
  exec "${binary}" -no-color .github/workflows/*.yml
fi
exec "${binary}" "$@"
