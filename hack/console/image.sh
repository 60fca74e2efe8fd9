#!/usr/bin/env bash
# Builds the console image locally: the Dockerfile's `console` target (the operator's package
# with the extra [console] and the web UI), tagged ${DEVSERVER_CONSOLE_IMAGE:-ghcr.io/
# ecospherenetwork/devserver-console:dev}. Like hack/kind/images.sh: a context of what git
# tracks (plus the UI that hack/console/build.sh builds first), the local stand-in of the
# Python base unless DEVSERVER_OFFICIAL_BASE_IMAGES=1, and no rebuild while nothing changed.
# Not part of the kind e2e suite.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../kind/lib.sh
source "${here}/../kind/lib.sh"

CONSOLE_IMAGE="${DEVSERVER_CONSOLE_IMAGE:-ghcr.io/ecospherenetwork/devserver-console:dev}"
PYTHON_IMAGE="localhost/devserver/python:3.11-bookworm"
if [[ -n "${DEVSERVER_OFFICIAL_BASE_IMAGES:-}" ]]; then
  PYTHON_IMAGE="python-base"
else
  ensure_debian_image
  step "Python base (stand-in for python:3.11-slim-bookworm)"
  build_image "${PYTHON_IMAGE}" "$(new_context)" -f "${kind_dir}/images/python/Dockerfile" \
    --build-arg "DEBIAN_IMAGE=${DEBIAN_IMAGE}"
fi

step "console UI (hack/console/build.sh)"
bash "${here}/build.sh"

step "console image ${CONSOLE_IMAGE} (./Dockerfile, target console)"
context="$(new_context)"
git -C "${repo}" ls-files -z --cached --others --exclude-standard -- \
    Dockerfile .dockerignore pyproject.toml uv.lock README.md operator \
  | (cd "${repo}" && xargs -0 cp --parents -t "${context}")
# The built UI is git-ignored; the package carries it into the image.
(cd "${repo}" && cp -r --parents operator/devserver_operator/console/ui "${context}")
build_image "${CONSOLE_IMAGE}" "${context}" -f "${context}/Dockerfile" --target console \
  --build-arg "PYTHON_IMAGE=${PYTHON_IMAGE}"
docker image inspect --format '{{.Size}}' "${CONSOLE_IMAGE}" \
  | awk -v tag="${CONSOLE_IMAGE}" '{ printf "    %s: %.0f MB\n", tag, $1 / 1000000 }'
