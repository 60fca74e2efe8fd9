#!/usr/bin/env bash
# Regenerate a lock file of hack/openhands from its .in file, for the Python and platform of
# the trixie root (CPython 3.13, x86_64, glibc 2.41), every file pinned by hash:
#   bash hack/openhands/lock.sh requirements-legacy   # -> requirements-legacy.lock
# Changing a lock changes install.sh's cache key: the next run installs afresh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="${1:?usage: lock.sh NAME (requirements or requirements-legacy)}"
uv="${DEVSERVER_CACHE_DIR:-${HOME}/.cache/devserver-operator}/uv-0.13.9/bin/uv"
UV_NATIVE_TLS=1 "${uv}" pip compile "${here}/${name}.in" --quiet --no-header \
  --generate-hashes --python-version 3.13 --python-platform x86_64-manylinux_2_39 \
  -o "${here}/${name}.lock"
