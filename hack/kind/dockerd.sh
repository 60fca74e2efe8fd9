#!/usr/bin/env bash
# A running Docker engine: Debian's docker.io is installed when no dockerd exists, and dockerd
# is started in the background when nothing answers (no init system runs it on CI machines).
# Exits non-zero, with the reason, when the engine cannot start; callers skip kind then.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "${here}/lib.sh"

if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null; then
  step "installing Debian's docker.io"
  apt_install docker.io iptables
fi
command -v docker >/dev/null || { echo "dockerd.sh: no docker client after install" >&2; exit 1; }
log="${cache_dir}/logs/dockerd.log"
mkdir -p "$(dirname "${log}")"
step "starting dockerd (log: ${log})"
# setsid: the engine outlives this script and the test session that started it, as a service
# would; the e2e fixtures remove every container they create, not the engine.
setsid dockerd >>"${log}" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "dockerd.sh: dockerd did not answer within 60 s; last lines of ${log}:" >&2
tail -n 20 "${log}" >&2
exit 1
