#!/usr/bin/env bash
# Install the pinned n8n (hack/n8n/package-lock.json) for the integration tests.
#
# The install lives OUTSIDE the clone, in a cache keyed by the lock file's sha256:
#   ${DEVSERVER_CACHE_DIR:-$HOME/.cache/devserver-operator}/n8n/<sha256 of package-lock.json>/
# so a fresh clone (CI) reuses it, and a changed lock file gets a new directory.
# A marker file is written last; an interrupted install is redone on the next run.
# npm's own cache (~/.npm) keeps the tarballs, so a re-install is mostly offline.
#
# Progress goes to stderr; the last line on stdout is the path of the n8n executable:
#   N8N_BIN="$(bash hack/n8n/install.sh)"
#
# Environment:
#   DEVSERVER_CACHE_DIR         cache root (default: $HOME/.cache/devserver-operator)
#   DEVSERVER_N8N_INSTALL_TIMEOUT  seconds allowed for `npm ci` (default: 1800)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${DEVSERVER_CACHE_DIR:-${HOME}/.cache/devserver-operator}/n8n"
install_timeout="${DEVSERVER_N8N_INSTALL_TIMEOUT:-1800}"
sha="$(sha256sum "${here}/package-lock.json" | cut -d' ' -f1)"
dest="${cache_root}/${sha}"
marker="${dest}/.install-complete"
n8n_bin="${dest}/node_modules/.bin/n8n"

log() { printf '[n8n-install] %s\n' "$*" >&2; }

is_complete() { [[ -f "${marker}" && -x "${n8n_bin}" ]]; }

if is_complete; then
  log "already installed: ${dest} ($(cat "${marker}"))"
  printf '%s\n' "${n8n_bin}"
  exit 0
fi

command -v node >/dev/null || { log "node is not on PATH"; exit 1; }
command -v npm >/dev/null || { log "npm is not on PATH"; exit 1; }
mkdir -p "${cache_root}"

# One installer at a time per lock file (parallel test runs, CI + a developer shell).
exec 9>"${cache_root}/.${sha}.lock"
if ! flock -n 9; then
  log "another install of ${sha:0:12} is running; waiting for it"
  flock -w "${install_timeout}" 9 || { log "timed out waiting for the other install"; exit 1; }
fi
if is_complete; then
  log "installed by a concurrent run: ${dest}"
  printf '%s\n' "${n8n_bin}"
  exit 0
fi

log "installing n8n from ${here}/package-lock.json (lock ${sha:0:12})"
log "into ${dest}"
log "node $(node --version), npm $(npm --version); a cold install takes several minutes"
rm -f "${marker}"
mkdir -p "${dest}"
cp "${here}/package.json" "${here}/package-lock.json" "${dest}/"

start=${SECONDS}
(
  # Heartbeat, so a CI log shows the install is alive.
  while sleep 30; do
    printf '[n8n-install] still installing (%ss)\n' "$((SECONDS - start))" >&2
  done
) &
heartbeat=$!
trap 'kill "${heartbeat}" 2>/dev/null || true' EXIT

cd "${dest}"
# npm ci removes any partial node_modules left by an interrupted run.
timeout "${install_timeout}" npm ci --prefer-offline --no-audit --no-fund --loglevel=error >&2
kill "${heartbeat}" 2>/dev/null || true

# Smoke checks: the CLI starts and the native SQLite binding loads.
version="$(node -e 'process.stdout.write(require("n8n/package.json").version)')"
node -e 'require("sqlite3")' || { log "sqlite3 native binding does not load"; exit 1; }
[[ -x "${n8n_bin}" ]] || { log "missing ${n8n_bin}"; exit 1; }

printf 'n8n %s installed in %ss on %s\n' "${version}" "$((SECONDS - start))" "$(date -u +%FT%TZ)" >"${marker}"
log "done: n8n ${version} in $((SECONDS - start))s ($(du -sh "${dest}" | cut -f1))"
printf '%s\n' "${n8n_bin}"
