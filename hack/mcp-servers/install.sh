#!/usr/bin/env bash
# Install the stdio bridge (supergateway) and the MCP reference servers of the kind image
# (hack/kind/images/mcp-servers/package-lock.json) for the integration tests that probe them
# as real third-party MCP servers on loopback.
#
# Like hack/n8n/install.sh: a cache outside the clone, keyed by the lock file's sha256,
#   ${DEVSERVER_CACHE_DIR:-$HOME/.cache/devserver-operator}/mcp-servers/<sha256>/
# a marker written last (an interrupted install is redone), one installer at a time.
# The last line on stdout is the install directory (its node_modules/.bin has the commands).
set -euo pipefail

lock_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../kind/images/mcp-servers" && pwd)"
cache_root="${DEVSERVER_CACHE_DIR:-${HOME}/.cache/devserver-operator}/mcp-servers"
sha="$(sha256sum "${lock_dir}/package-lock.json" | cut -d' ' -f1)"
dest="${cache_root}/${sha}"
marker="${dest}/.install-complete"

log() { printf '[mcp-servers-install] %s\n' "$*" >&2; }
is_complete() { [[ -f "${marker}" && -x "${dest}/node_modules/.bin/supergateway" ]]; }

if ! is_complete; then
  command -v npm >/dev/null || { log "npm is not on PATH"; exit 1; }
  mkdir -p "${cache_root}"
  exec 9>"${cache_root}/.${sha}.lock"
  flock -w 600 9 || { log "timed out waiting for another install"; exit 1; }
  if ! is_complete; then
    log "installing ${lock_dir}/package-lock.json into ${dest}"
    rm -f "${marker}"
    mkdir -p "${dest}"
    cp "${lock_dir}/package.json" "${lock_dir}/package-lock.json" "${dest}/"
    # As the kind image installs it (hack/kind/images.sh): no install scripts, no dev tools.
    (cd "${dest}" && timeout 900 npm ci --prefer-offline --no-audit --no-fund --ignore-scripts \
      --omit=dev --loglevel=error >&2)
    "${dest}/node_modules/.bin/supergateway" --help >/dev/null
    date -u +%FT%TZ >"${marker}"
  fi
fi
log "installed: ${dest}"
printf '%s\n' "${dest}"
