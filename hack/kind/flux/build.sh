#!/usr/bin/env bash
# Flux's controllers for the e2e suite, built from their Go modules at the versions flux2
# FLUX_VERSION pins (its manifests/bases), into images the kind cluster loads:
#   localhost/devserver/flux-source-controller:<version>
#   localhost/devserver/flux-kustomize-controller:<version>
#   localhost/devserver/flux-helm-controller:<version>
# and the Git server that the Flux scenario pushes to (Debian's git http-backend behind
# lighttpd): localhost/devserver/git-http:bookworm.
#
# A controller's module zip lacks its nested api/ module, which its go.mod replaces with ./api;
# the published api module of the same version is copied there, so the module's own go.mod and
# go.sum build it unchanged. Binaries and CRDs (config/crd/bases of the module) are cached in
#   ${DEVSERVER_CACHE_DIR:-$HOME/.cache/devserver-operator}/bin/<controller>-<version>/
# and a warm run only checks image labels. Prints `image=<tag>` lines (kind.py loads them).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "${here}/../lib.sh"
export CGO_ENABLED=0

module_dir() {  # MODULE@VERSION
  (cd "${TMPDIR:-/tmp}" && go mod download -json "$1") \
    | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'
}

# The controller versions must be the ones flux2 FLUX_VERSION deploys, or the docs' claim
# ("Flux v2.9.5") would not hold.
check_pin() {  # CONTROLLER VERSION
  local bases
  bases="$(module_dir "github.com/fluxcd/flux2/v2@${FLUX_VERSION}")/manifests/bases"
  if ! grep -q "fluxcd/$1/releases/download/$2/" "${bases}/$1/kustomization.yaml"; then
    echo "!!! flux2 ${FLUX_VERSION} does not deploy $1 $2 (${bases}/$1/kustomization.yaml);" \
      "update hack/controlplane/versions.env" >&2
    exit 1
  fi
}

controller() {  # NAME VERSION: builds bin/NAME-VERSION/{NAME,crds/} unless present
  local name="$1" version="$2" target="${cache_bin}/$1-$2"
  if [[ -x "${target}/${name}" && -d "${target}/crds" ]]; then
    echo "    ${name} ${version}: cached" >&2
    return
  fi
  [[ "${name}" == source-controller ]] || check_pin "${name}" "${version}"
  echo "    ${name} ${version}: go build (minutes on a cold cache)" >&2
  local source api work
  source="$(module_dir "github.com/fluxcd/${name}@${version}")"
  api="$(module_dir "github.com/fluxcd/${name}/api@${version}")"
  work="$(new_context)/${name}"
  cp -r "${source}" "${work}" && rm -rf "${work}/api" && cp -r "${api}" "${work}/api"
  chmod -R u+w "${work}"
  local started=${SECONDS}
  (cd "${work}" && nice -n 10 go build -trimpath -ldflags "-s -w" -o "${work}.bin" .)
  echo "    ${name} ${version}: built in $((SECONDS - started)) s" >&2
  mkdir -p "${target}.partial/crds"
  cp "${source}"/config/crd/bases/*.yaml "${target}.partial/crds/"
  mv "${work}.bin" "${target}.partial/${name}"
  rm -rf "${target}" && mv "${target}.partial" "${target}"
}

image() {  # NAME VERSION
  local tag="localhost/devserver/flux-$1:$2" context
  controller "$1" "$2"
  context="$(new_context)"
  cp -r "${kind_dir}/components/static/skel" "${context}/skel"
  cp "${cache_bin}/$1-$2/$1" "${context}/$1"
  build_image "${tag}" "${context}" -f "${here}/Dockerfile" --build-arg "BINARY=$1" >&2
  echo "image=${tag}"
}

step "Flux ${FLUX_VERSION} controllers (Go modules, cached by version)" >&2
image source-controller "${FLUX_SOURCE_CONTROLLER_VERSION}"
image kustomize-controller "${FLUX_KUSTOMIZE_CONTROLLER_VERSION}"
# The chart through a HelmRelease: Flux takes the operator over at the end of the e2e suite.
image helm-controller "${FLUX_HELM_CONTROLLER_VERSION}"

ensure_debian_image >&2
GIT_IMAGE="localhost/devserver/git-http:bookworm"
step "Git server ${GIT_IMAGE} (Debian's git http-backend behind lighttpd)" >&2
context="$(new_context)"
cp "${here}/lighttpd.conf" "${context}/"
build_image "${GIT_IMAGE}" "${context}" -f "${here}/git-http.Dockerfile" \
  --build-arg "DEBIAN_IMAGE=${DEBIAN_IMAGE}" >&2
echo "image=${GIT_IMAGE}"
