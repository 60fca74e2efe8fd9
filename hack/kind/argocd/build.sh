#!/usr/bin/env bash
# Argo CD for the e2e suite's Argo CD scenario, from the argo-cd module at ARGOCD_VERSION:
#   localhost/devserver/argocd:<ARGOCD_VERSION>   application controller + repo server (main.go
#                                                 here: upstream's cobra commands, no API
#                                                 server, UI, Dex or notifications), git, kustomize
#   localhost/devserver/redis:bookworm            Debian's redis-server, Argo CD's cache
# The binary, the module's CRDs (manifests/crds) and its git and gpg wrapper scripts (which
# the repo server runs) are cached in
#   ${DEVSERVER_CACHE_DIR:-$HOME/.cache/devserver-operator}/bin/argocd-<ARGOCD_VERSION>-<source hash>/
# (the hash of go.mod, go.sum and main.go, as hack/controlplane/build.sh keys its GitOps
# programs), so a warm run only checks image labels. Prints `image=<tag>` lines (kind.py loads
# them). Argo CD needs Go >= 1.27: the go command fetches ARGOCD_GO_TOOLCHAIN as a module.
# Measured cold, with the Go build cache warm from hack/gitops/argocd-health: 278 new packages,
# 161 s wall, 101 s CPU at load 7 on 2 cores (docs/testing.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "${here}/../lib.sh"
export CGO_ENABLED=0 GOTOOLCHAIN="${ARGOCD_GO_TOOLCHAIN}"

source_hash() {
  local digest
  digest="$(cat "${here}/go.mod" "${here}/go.sum" "${here}/main.go" | sha256sum)"
  echo "${digest:0:12}"
}

binary() {  # builds bin/argocd-<version>-<hash>/{argocd,crds/} unless present; prints the dir
  local target
  target="${cache_bin}/argocd-${ARGOCD_VERSION}-$(source_hash)"
  if [[ -x "${target}/argocd" && -d "${target}/crds" && -f "${target}/git-verify-wrapper.sh" ]]; then
    echo "    argocd ${ARGOCD_VERSION}: cached" >&2
    echo "${target}"
    return
  fi
  local selected
  selected="$(cd "${here}" && go list -m -f '{{.Version}}' github.com/argoproj/argo-cd/v3)"
  if [[ "${selected}" != "${ARGOCD_VERSION}" ]]; then
    echo "!!! hack/kind/argocd/go.mod selects argo-cd ${selected}, versions.env pins" \
      "${ARGOCD_VERSION}; update both together" >&2
    exit 1
  fi
  echo "    argocd ${ARGOCD_VERSION}: go build (minutes on a cold cache)" >&2
  local work started=${SECONDS}
  work="$(new_context)"
  # The version that Argo CD logs and reports ("v3.6.2+unknown": no commit, as with any build
  # outside its release pipeline).
  local ldflags="-s -w -X=github.com/argoproj/argo-cd/v3/common.version=${ARGOCD_VERSION#v}"
  (cd "${here}" && nice -n 10 go build -trimpath -ldflags "${ldflags}" -o "${work}/argocd" .)
  echo "    argocd ${ARGOCD_VERSION}: built in $((SECONDS - started)) s" >&2
  local module
  module="$(cd "${here}" && go list -m -f '{{.Dir}}' github.com/argoproj/argo-cd/v3)"
  rm -rf "${target}.partial" && mkdir -p "${target}.partial/crds"
  # The scenario's kinds only (no ApplicationSet controller runs).
  cp "${module}"/manifests/crds/{application,appproject}-crd.yaml "${target}.partial/crds/"
  # The repo server runs git-verify-wrapper.sh on every revision it renders and fails the
  # manifest generation ("permission denied") when it cannot; upstream's image ships both
  # wrappers from the module's hack/.
  cp "${module}"/hack/{git-verify-wrapper,gpg-wrapper}.sh "${target}.partial/"
  chmod -R u+w "${target}.partial"
  mv "${work}/argocd" "${target}.partial/argocd"
  rm -rf "${target}" && mv "${target}.partial" "${target}"
  echo "${target}"
}

step "Argo CD ${ARGOCD_VERSION} application controller and repo server (Go module, cached)" >&2
built="$(binary)"
kustomize="${cache_bin}/kustomize-${KUSTOMIZE_VERSION}/kustomize"
[[ -x "${kustomize}" ]] || GOTOOLCHAIN=local bash "${repo}/hack/controlplane/build.sh" kustomize >&2
ensure_debian_image >&2
ARGOCD_IMAGE="localhost/devserver/argocd:${ARGOCD_VERSION}"
context="$(new_context)"
cp "${built}/argocd" "${built}"/*-wrapper.sh "${kustomize}" "${context}/"
build_image "${ARGOCD_IMAGE}" "${context}" -f "${here}/Dockerfile" \
  --build-arg "DEBIAN_IMAGE=${DEBIAN_IMAGE}" >&2
echo "image=${ARGOCD_IMAGE}"

REDIS_IMAGE="localhost/devserver/redis:bookworm"
step "Redis ${REDIS_IMAGE} (Debian's redis-server)" >&2
build_image "${REDIS_IMAGE}" "$(new_context)" -f "${here}/redis.Dockerfile" \
  --build-arg "DEBIAN_IMAGE=${DEBIAN_IMAGE}" >&2
echo "image=${REDIS_IMAGE}"
