#!/usr/bin/env bash
# Build the console's web UI (console-ui/, Preact + Vite) into
# operator/devserver_operator/console/ui/, where `devserver-operator console` serves it.
# Packages come from the npm registry by console-ui/package-lock.json; npm's cache lives
# outside the clone (${DEVSERVER_CACHE_DIR:-~/.cache/devserver-operator}/npm), and
# node_modules is reinstalled only when the lock file changed. The output is not committed.
set -euo pipefail
cd "$(dirname "$0")/../../console-ui"

cache_root="${DEVSERVER_CACHE_DIR:-${HOME}/.cache/devserver-operator}"
export npm_config_cache="${cache_root}/npm"
export SCARF_ANALYTICS=false  # swagger-ui-dist's install hook must not phone home
out="../operator/devserver_operator/console/ui"

log() { printf '[console-ui] %s\n' "$*" >&2; }
command -v npm >/dev/null || { log "npm is not on PATH"; exit 1; }

sha="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ "$(cat node_modules/.lock-sha256 2>/dev/null)" != "${sha}" ]]; then
  log "npm ci (lock ${sha:0:12})"
  npm ci --no-audit --no-fund --loglevel=error
  printf '%s\n' "${sha}" > node_modules/.lock-sha256
fi

log "vite build -> ${out}"
npx --no-install vite build --logLevel warn
# Swagger UI for /api/v1/docs, from the npm package (no CDN).
mkdir -p "${out}/swagger"
cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css "${out}/swagger/"
log "built: $(du -sh "${out}" | cut -f1)"
