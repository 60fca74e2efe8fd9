#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager, etcd), helm and
# kustomize from their Go modules, at the versions pinned in versions.env, into a cache outside the
# clone. On request it also builds what the kind node image needs (kubelet, kubeadm, kubectl,
# kube-scheduler, kube-proxy, crictl, coredns, kube-router) and kind itself (hack/kind/):
#
#   ${DEVSERVER_CACHE_DIR:-$HOME/.cache/devserver-operator}/bin/<binary>-<version>/<binary>
#
# Idempotent: a binary that is already in the cache is not rebuilt. The directory name
# carries the pinned version, so bumping a pin rebuilds just that binary.
#
# The GitOps checks' programs (hack/gitops/: kstatus, argocd-health) are small commands of
# the project's own on top of a pinned library; their directory name also carries a hash of
# their source (go.mod, go.sum, main.go), so editing a program rebuilds it.
#
# Usage: hack/controlplane/build.sh [binary...]   (default: the control plane, helm, kustomize;
# `dex` builds the OIDC provider of the console's login test)
# A cold build of all four takes about 13 minutes on 2 cores (docs/testing.md); a warm
# run takes milliseconds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "${here}/versions.env"

kind_dir="$(cd "${here}/../kind" && pwd)"
cache_bin="${DEVSERVER_CACHE_DIR:-${HOME}/.cache/devserver-operator}/bin"

go_bin="$(command -v go || true)"
if [[ -z "${go_bin}" && -x /usr/local/go/bin/go ]]; then
  go_bin=/usr/local/go/bin/go
fi
if [[ -z "${go_bin}" ]]; then
  echo "build.sh: no Go toolchain found (looked on PATH and at /usr/local/go/bin/go)" >&2
  exit 1
fi

# Use the toolchain at hand instead of silently fetching another one, and never let a
# build rewrite go.mod/go.sum: the pins are reviewed, not drifted.
export GOTOOLCHAIN=local
export GOFLAGS="-mod=readonly -buildvcs=false"
# The control-plane binaries are pure Go; static binaries run on any Linux host.
export CGO_ENABLED=0

kube_ldflags() {
  local version="${KUBERNETES_VERSION}" minor
  minor="$(cut -d. -f2 <<<"${version}")"
  local flags=(-s -w)
  # Both version packages are set, as kubernetes' hack/lib/version.sh does. component-base's
  # gitVersion is the binary version from which the apiserver derives its default
  # emulation and compatibility versions; /version reports it.
  local pkg
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=(
      "-X=${pkg}.gitVersion=${version}"
      "-X=${pkg}.gitMajor=1"
      "-X=${pkg}.gitMinor=${minor}"
      "-X=${pkg}.gitTreeState=clean"
      # The module proxy does not tell the release commit; an empty value is honest,
      # the default placeholder "$Format:%H$" would not be.
      "-X=${pkg}.gitCommit="
      "-X=${pkg}.buildDate=${KUBERNETES_BUILD_DATE}"
    )
  done
  echo "${flags[*]}"
}

helm_ldflags() {
  # Helm derives the Kubernetes version it assumes for `helm template` and lint
  # deprecation checks from its client-go version (as its Makefile does): v0.37.x -> 1.37.
  local client_go minor
  client_go="$(cd "${here}/helm" && "${go_bin}" list -m -f '{{.Version}}' k8s.io/client-go)"
  minor="$(cut -d. -f2 <<<"${client_go}")"
  local flags=(
    -s -w
    "-X=helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
    "-X=helm.sh/helm/v3/internal/version.gitTreeState=clean"
    "-X=helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
    "-X=helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${minor}"
    "-X=helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
    "-X=helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${minor}"
  )
  echo "${flags[*]}"
}

# The versions go.mod really selects (following replace directives) must be the ones
# versions.env names: the cache directory and the version stamps come from versions.env,
# the code from go.mod, and a mismatch would cache one version under another's name.
selected_version() {  # MODULE_DIR MODULE
  (cd "$1" && GOTOOLCHAIN="${build_toolchain:-local}" "${go_bin}" list -m \
    -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$2")
}

require_pin() {  # MODULE_DIR MODULE VERSION
  local selected
  selected="$(selected_version "$1" "$2")"
  if [[ "${selected}" != "$3" ]]; then
    echo "!!! ${1#"${here}"/}/go.mod selects $2 ${selected}, but versions.env pins $3;" \
      "update both together (docs/testing.md, 'Pinned versions')" >&2
    exit 1
  fi
}

kube_pins() {
  require_pin "${here}" k8s.io/kubernetes "${KUBERNETES_VERSION}"
  # Every staging module must be the release that matches k8s.io/kubernetes.
  local staging="v0.${KUBERNETES_VERSION#v1.}" module
  for module in k8s.io/api k8s.io/apimachinery k8s.io/apiserver k8s.io/client-go \
    k8s.io/component-base k8s.io/controller-manager k8s.io/kube-aggregator; do
    require_pin "${here}" "${module}" "${staging}"
  done
  if grep -E '^\s+k8s\.io/\S+ => k8s\.io/\S+ v' "${here}/go.mod" | grep -vq " ${staging}\$"; then
    echo "!!! go.mod replaces a k8s.io module with another version than ${staging}" >&2
    exit 1
  fi
}
etcd_pins() { require_pin "${here}/etcd" go.etcd.io/etcd/server/v3 "${ETCD_VERSION}"; }
helm_pins() { require_pin "${here}/helm" helm.sh/helm/v3 "${HELM_VERSION}"; }
# Dex builds from its own module, as its repository does, with one change. Its go.mod replaces
# github.com/dexidp/dex/api/v2 with ./api/v2, a nested module that the module proxy leaves out
# of Dex's zip, and master's server/apiserver (the gRPC admin API) needs a newer api/v2 than
# the proxy's newest (v2.4.0). So the copy requires api/v2 v2.4.0 from the proxy (checked
# against sum.golang.org) and its server/apiserver is a stub answering "unimplemented": the
# admin API, which the console's test never enables. The OIDC provider itself is unchanged.
dex_src="${DEVSERVER_CACHE_DIR:-${HOME}/.cache/devserver-operator}/src/dex-${DEX_VERSION}"
dex_pins() {
  local module
  module="$(cd / && GOFLAGS=-mod=mod "${go_bin}" mod download -json "github.com/dexidp/dex@${DEX_VERSION}" \
    | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [[ -d "${module}" ]] || { echo "!!! dex ${DEX_VERSION}: the module proxy did not serve it" >&2; exit 1; }
  rm -rf "${dex_src}"
  mkdir -p "$(dirname "${dex_src}")"
  cp -r "${module}" "${dex_src}"
  chmod -R u+w "${dex_src}"
  (cd "${dex_src}" && "${go_bin}" mod edit -dropreplace github.com/dexidp/dex/api/v2 \
    -require github.com/dexidp/dex/api/v2@v2.4.0)
  rm -f "${dex_src}"/server/apiserver/*.go
  cat > "${dex_src}/server/apiserver/api.go" <<'GO'
// Package apiserver is Dex's gRPC admin API, left out of this build (hack/controlplane/build.sh).
package apiserver

import (
	"log/slog"

	"github.com/dexidp/dex/api/v2"
	"github.com/dexidp/dex/server/backchannel"
	"github.com/dexidp/dex/server/connectors"
	"github.com/dexidp/dex/server/discovery"
	"github.com/dexidp/dex/storage"
)

func NewAPI(storage.Storage, *slog.Logger, string, *connectors.Cache, *discovery.Handler, *backchannel.Notifier) api.DexServer {
	return api.UnimplementedDexServer{}
}
GO
  # go.sum gains api/v2's two lines, verified against the checksum database.
  (cd "${dex_src}" && GOFLAGS=-mod=mod "${go_bin}" list -deps ./cmd/dex >/dev/null)
}
kustomize_pins() {
  require_pin "${here}/kustomize" sigs.k8s.io/kustomize/kustomize/v5 "${KUSTOMIZE_VERSION}"
}
# `kustomize version` reports the provenance version, which release builds stamp.
kustomize_ldflags() {
  echo "-s -w -X=sigs.k8s.io/kustomize/api/provenance.version=${KUSTOMIZE_VERSION}"
}

kind_pins() { require_pin "${kind_dir}/kind" sigs.k8s.io/kind "${KIND_VERSION}"; }
crictl_pins() { require_pin "${kind_dir}/crictl" sigs.k8s.io/cri-tools "${CRICTL_VERSION}"; }
kube_router_pins() {
  require_pin "${kind_dir}/kube-router" github.com/cloudnativelabs/kube-router/v2 "${KUBE_ROUTER_VERSION}"
}
gitops_dir="$(cd "${here}/../gitops" && pwd)"
kstatus_pins() { require_pin "${gitops_dir}/kstatus" sigs.k8s.io/cli-utils "${CLI_UTILS_VERSION}"; }
argocd_health_pins() {
  require_pin "${gitops_dir}/argocd-health" github.com/argoproj/argo-cd/v3 "${ARGOCD_VERSION}"
}
# The cache key of a GitOps program: the library pin and the first 12 hex digits of the
# sha256 of go.mod, go.sum and main.go, concatenated in that order
# (devserver_operator.localcluster.binaries computes the same).
source_key() {  # VERSION MODULE_DIR
  local digest
  digest="$(cat "$2/go.mod" "$2/go.sum" "$2/main.go" | sha256sum)"
  echo "$1-${digest:0:12}"
}
coredns_pins() { require_pin "${kind_dir}/coredns" github.com/coredns/coredns "${COREDNS_VERSION}"; }
plain_ldflags() { echo "-s -w"; }
crictl_ldflags() { echo "-s -w -X=sigs.k8s.io/cri-tools/pkg/version.Version=${CRICTL_VERSION}"; }
coredns_ldflags() { echo "-s -w -X=github.com/coredns/coredns/coremain.GitCommit=${COREDNS_VERSION}"; }

# etcd's version string is a constant in go.etcd.io/etcd/api/v3/version, so it needs no
# ldflags; only the git SHA is stamped by etcd's own build script, and we do not know it.
etcd_ldflags() { echo "-s -w"; }

# build_one BINARY VERSION MODULE_DIR PACKAGE PINS_FUNCTION LDFLAGS_FUNCTION
# Pins and ldflags are only worked out when a build is due: both ask `go list`, which
# fetches module metadata on a machine whose Go module cache is empty.
build_one() {
  local binary="$1" version="$2" module_dir="$3" package="$4" pins_function="$5"
  local ldflags_function="$6"
  local out_dir="${cache_bin}/${binary}-${version}"
  local out="${out_dir}/${binary}"
  if [[ -x "${out}" ]]; then
    echo "==> ${binary} ${version}: cached"
    built_dirs+=("${out_dir}")
    return
  fi
  mkdir -p "${out_dir}"
  # Two runs at once (two test sessions, a CI job beside a developer) would write the
  # same files; the second waits for the first and then finds the binary cached.
  local lock_fd
  exec {lock_fd}>"${out_dir}/.lock"
  if ! flock --nonblock "${lock_fd}"; then
    echo "==> ${binary} ${version}: another build.sh is building it; waiting"
    flock "${lock_fd}"
  fi
  if [[ -x "${out}" ]]; then
    exec {lock_fd}>&-
    echo "==> ${binary} ${version}: cached"
    built_dirs+=("${out_dir}")
    return
  fi
  "${pins_function}"
  local ldflags
  ldflags="$("${ldflags_function}")"
  local log="${out_dir}/build.log"
  echo "==> ${binary} ${version}: building from ${package} (log: ${log})"
  local started=${SECONDS}
  # -v names each package as it is compiled; we print a count every 100 packages so a
  # long cold build visibly makes progress without flooding the terminal.
  # Build into a temporary name and rename at the end: an interrupted build must not
  # leave a file that the next run would take for a finished binary.
  if ! (cd "${module_dir}" && GOTOOLCHAIN="${build_toolchain:-local}" "${go_bin}" build -v -trimpath -ldflags "${ldflags}" \
        -o "${out}.partial" "${package}") 2>&1 \
      | tee "${log}" \
      | awk '{ n++ } n % 100 == 0 { printf "    ... %d packages compiled\n", n; fflush() }'; then
    echo "!!! ${binary} ${version}: build failed; last lines of ${log}:" >&2
    tail -n 40 "${log}" >&2
    rm -f "${out}.partial"
    exit 1
  fi
  mv -f "${out}.partial" "${out}"
  exec {lock_fd}>&-
  echo "==> ${binary} ${version}: built in $((SECONDS - started))s"
  built_dirs+=("${out_dir}")
}

wanted=("$@")
if [[ ${#wanted[@]} -eq 0 ]]; then
  wanted=(etcd kube-apiserver kube-controller-manager helm kustomize)
fi

built_dirs=()
for binary in "${wanted[@]}"; do
  case "${binary}" in
    etcd)
      build_one etcd "${ETCD_VERSION}" "${here}/etcd" . etcd_pins etcd_ldflags ;;
    kube-apiserver | kube-controller-manager | kube-scheduler | kube-proxy | kubelet | kubeadm \
      | kubectl)
      build_one "${binary}" "${KUBERNETES_VERSION}" "${here}" \
        "k8s.io/kubernetes/cmd/${binary}" kube_pins kube_ldflags ;;
    helm)
      build_one helm "${HELM_VERSION}" "${here}/helm" helm.sh/helm/v3/cmd/helm helm_pins \
        helm_ldflags ;;
    kustomize)
      build_one kustomize "${KUSTOMIZE_VERSION}" "${here}/kustomize" \
        sigs.k8s.io/kustomize/kustomize/v5 kustomize_pins kustomize_ldflags ;;
    dex)
      build_one dex "${DEX_VERSION}" "${dex_src}" ./cmd/dex dex_pins plain_ldflags ;;
    kind)
      build_one kind "${KIND_VERSION}" "${kind_dir}/kind" sigs.k8s.io/kind kind_pins \
        plain_ldflags ;;
    crictl)
      build_one crictl "${CRICTL_VERSION}" "${kind_dir}/crictl" \
        sigs.k8s.io/cri-tools/cmd/crictl crictl_pins crictl_ldflags ;;
    kube-router)
      build_one kube-router "${KUBE_ROUTER_VERSION}" "${kind_dir}/kube-router" \
        github.com/cloudnativelabs/kube-router/v2/cmd/kube-router kube_router_pins plain_ldflags ;;
    coredns)
      build_one coredns "${COREDNS_VERSION}" "${kind_dir}/coredns" . coredns_pins \
        coredns_ldflags ;;
    kstatus)
      build_one kstatus "$(source_key "${CLI_UTILS_VERSION}" "${gitops_dir}/kstatus")" \
        "${gitops_dir}/kstatus" . kstatus_pins plain_ldflags ;;
    argocd-health)
      # Argo CD needs a newer Go than the machine may have: the go command fetches the pinned
      # toolchain as a module (golang.org/toolchain, checked against the checksum database).
      build_toolchain="${ARGOCD_GO_TOOLCHAIN}" build_one argocd-health \
        "$(source_key "${ARGOCD_VERSION}" "${gitops_dir}/argocd-health")" \
        "${gitops_dir}/argocd-health" . argocd_health_pins plain_ldflags ;;
    *)
      echo "build.sh: unknown binary '${binary}' (known: etcd kube-apiserver" \
        "kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl helm" \
        "kustomize dex kind crictl coredns kube-router kstatus argocd-health)" >&2
      exit 2 ;;
  esac
done

echo "Binaries:"
for dir in "${built_dirs[@]}"; do
  echo "  ${dir}"
done
