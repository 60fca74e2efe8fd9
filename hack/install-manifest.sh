#!/usr/bin/env bash
# The single install manifest of a release (attached to it as install.yaml): the cluster-wide
# kustomize overlay -- CRDs, RBAC, admission webhook, the operator in devserver-system -- with
# the operator image pinned to the release's version and, when given, its digest. Rendered by
# the kustomize that hack/controlplane/build.sh builds from its Go module at the pinned version.
#
# Usage: hack/install-manifest.sh VERSION [sha256:DIGEST] > install.yaml
#   kubectl apply --server-side -f install.yaml
set -euo pipefail

version="${1:?usage: hack/install-manifest.sh VERSION [sha256:DIGEST]}"
digest="${2:-}"
if [[ ! "${version}" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]]; then
  echo "install-manifest.sh: ${version} is not a release version (X.Y.Z)" >&2
  exit 2
fi
if [[ -n "${digest}" && ! "${digest}" =~ ^sha256:[0-9a-f]{64}$ ]]; then
  echo "install-manifest.sh: ${digest} is not a digest (sha256:<64 hex>)" >&2
  exit 2
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=controlplane/versions.env
source "${repo}/hack/controlplane/versions.env"
kustomize="${DEVSERVER_CACHE_DIR:-${HOME}/.cache/devserver-operator}/bin/kustomize-${KUSTOMIZE_VERSION}/kustomize"
if [[ ! -x "${kustomize}" ]]; then
  bash "${repo}/hack/controlplane/build.sh" kustomize >&2
fi

# A throwaway overlay on top of cluster-wide: the repository is not touched.
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
cp -r "${repo}/manifests" "${work}/manifests"
mkdir "${work}/release"
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources:"
  echo "  - ../manifests/overlays/cluster-wide"
  echo "images:"
  echo "  - name: ghcr.io/ecospherenetwork/devserver-operator"
  echo "    newTag: \"${version}\""
  if [[ -n "${digest}" ]]; then
    echo "    digest: \"${digest}\""
  fi
} >"${work}/release/kustomization.yaml"

echo "# devserver-operator ${version}: CRDs and the cluster-wide install (kustomize overlay"
echo "# manifests/overlays/cluster-wide). kubectl apply --server-side -f install.yaml"
"${kustomize}" build "${work}/release"
