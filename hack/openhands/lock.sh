#!/usr/bin/env bash
# Regenerate a lock file of hack/openhands from its .in file, for the platform of the trixie
# root (CPython 3.13 unless told, x86_64, glibc 2.41), every file pinned by hash:
#   bash hack/openhands/lock.sh requirements-legacy   # -> requirements-legacy.lock
#   bash hack/openhands/lock.sh requirements-cli 3.12 # the CLI declares Python ==3.12.*
# The lock holds the hashes of every file of each pinned version, so the 3.13 wheels of a
# lock resolved for 3.12 are in it too.
# Changing a lock changes install.sh's cache key: the next run installs afresh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="${1:?usage: lock.sh NAME [PYTHON_VERSION] (NAME: requirements, requirements-legacy, ...)}"
python="${2:-3.13}"
uv="${DEVSERVER_CACHE_DIR:-${HOME}/.cache/devserver-operator}/uv-0.13.9/bin/uv"
UV_NATIVE_TLS=1 "${uv}" pip compile "${here}/${name}.in" --quiet --no-header \
  --generate-hashes --python-version "${python}" --python-platform x86_64-manylinux_2_39 \
  -o "${here}/${name}.lock"
