#!/usr/bin/env bash
# Installs everything the project needs, idempotently, with every cache outside the clone:
# uv (into ~/.cache/devserver-operator), the locked Python environment (.venv, from uv.lock),
# and, with --all, the local control plane binaries (built from Go modules), n8n and
# supergateway with the MCP reference servers (npm), OpenHands (PyPI, in a debootstrapped
# Python 3.13 root), and the kind toolchain with its images (Docker, Go modules, Debian
# packages; hack/kind/).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE_DIR="${DEVSERVER_CACHE_DIR:-$HOME/.cache/devserver-operator}"
UV_VERSION="0.13.9"
UV_HOME="$CACHE_DIR/uv-$UV_VERSION"
export UV_PYTHON_DOWNLOADS=never

step() { printf '\n==> %s\n' "$*"; }

if [ ! -x "$UV_HOME/bin/uv" ]; then
  step "installing uv $UV_VERSION into $UV_HOME"
  python3.11 -m venv "$UV_HOME"
  "$UV_HOME/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

step "Python environment from uv.lock (.venv)"
"$UV_HOME/bin/uv" sync --frozen --python python3.11 --quiet

if [ "${1:-}" = "--all" ]; then
  if [ -f hack/install-debian-packages.sh ]; then
    step "Debian packages (Prometheus and promtool for the AlertRule tests)"
    bash hack/install-debian-packages.sh
  fi
  if [ -f hack/controlplane/build.sh ]; then
    step "local control plane binaries (kube-apiserver, etcd, ...; built once, then cached)"
    bash hack/controlplane/build.sh
    step "GitOps checks: kstatus (cli-utils) and Argo CD's health assessment (built once, then cached)"
    bash hack/controlplane/build.sh kstatus argocd-health
  fi
  if [ -f hack/n8n/install.sh ]; then
    step "n8n (npm, cached by lock file)"
    bash hack/n8n/install.sh
  fi
  if [ -f hack/mcp-servers/install.sh ]; then
    step "supergateway and the MCP reference servers (npm, cached by lock file)"
    bash hack/mcp-servers/install.sh >/dev/null
  fi
  if [ -f hack/openhands/install.sh ]; then
    step "OpenHands (SDK + agent-server, openhands-ai 1.6.0, CLI 1.16.0; Python 3.13 in a Debian root, cached by locks)"
    bash hack/openhands/install.sh >/dev/null
  fi
  if [ -f hack/console/build.sh ]; then
    step "console web UI (npm, Vite; cached by lock file)"
    bash hack/console/build.sh
  fi
  if [ -f hack/kind/build.sh ]; then
    step "kind: Docker, the node image and the project's images (hack/kind/build.sh)"
    # Without a Docker engine the e2e tests skip and say why; everything else still runs.
    if bash hack/kind/dockerd.sh; then
      bash hack/kind/build.sh
    else
      echo "!!! no Docker engine could start: the kind e2e tests will be skipped" >&2
    fi
  fi
fi
