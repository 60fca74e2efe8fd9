#!/usr/bin/env bash
# Debian packages the tests need, installed idempotently: `apt-get update` runs only when a
# command is missing, and nothing is downloaded from outside Debian's archive.
#   prometheus  -> prometheus, promtool (the real Prometheus the AlertRule tests run against)
#   chromium    -> chromium (the console's browser tests drive it with playwright-core)
# Run as root (CI and the development machines are), or with sudo available.
set -euo pipefail

# command -> Debian package that provides it
declare -A PROVIDERS=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [chromium]=chromium
)

missing=()
for command in "${!PROVIDERS[@]}"; do
  if ! command -v "$command" >/dev/null 2>&1; then
    missing+=("${PROVIDERS[$command]}")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

# Unique package names, stable order.
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  as_root=(sudo)
fi

printf '==> installing Debian packages: %s\n' "${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
# prometheus's maintainer script asks the init system to start the packaged service; without
# one (containers, CI) the request is refused and ignored. Tests start their own Prometheus.
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"

for command in "${!PROVIDERS[@]}"; do
  if ! command -v "$command" >/dev/null 2>&1; then
    echo "error: $command is still missing after installing ${PROVIDERS[$command]}" >&2
    exit 1
  fi
done
