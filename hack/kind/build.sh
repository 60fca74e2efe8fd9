#!/usr/bin/env bash
# The project's kind toolchain, from local sources only (no image registry):
#   1. a Docker engine (Debian's docker.io), started when it is not running;
#   2. kind, crictl and the Kubernetes node binaries, built from their Go modules by
#      hack/controlplane/build.sh at the pins in hack/controlplane/versions.env;
#   3. images: a Debian bookworm root from debootstrap, the kind node base (node/), the
#      component images kubeadm expects (components/), and the node image that holds them;
#   4. the project's images (hack/kind/images.sh): the operator from the Dockerfile, the stdio
#      bridge, and the MCP server images the e2e suite and the demo run;
#   5. Flux's controllers from their Go modules and a Git server (hack/kind/flux/build.sh),
#      for the e2e suite's Flux scenario;
#   6. Argo CD's application controller and repo server from the argo-cd module, and Redis
#      (hack/kind/argocd/build.sh), for the e2e suite's Argo CD scenario.
# Idempotent: an image is rebuilt only when the hash of its inputs changed (the label
# devserver.inputs); Go binaries are cached by version under ~/.cache/devserver-operator.
# Prints, last, `node-image=<tag>` for the callers (kind_cluster.py, hack/demo.sh).
#
# Usage: hack/kind/build.sh [--node-only]
# DEVSERVER_KIND_NODE_IMAGE=kindest/node:vX names a published node image instead (GitHub's
# runners, with an image registry): then only kind and kubectl are built here.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "${here}/lib.sh"

bash "${here}/dockerd.sh"

if [[ -n "${DEVSERVER_KIND_NODE_IMAGE:-}" ]]; then
  step "kind and kubectl (Go modules); node image ${DEVSERVER_KIND_NODE_IMAGE}"
  bash "${repo}/hack/controlplane/build.sh" kind kubectl >/dev/null
  [[ "${1:-}" == "--node-only" ]] || {
    bash "${here}/images.sh" && bash "${here}/flux/build.sh" && bash "${here}/argocd/build.sh"
  }
  echo "node-image=${DEVSERVER_KIND_NODE_IMAGE}"
  exit 0
fi

step "kind and the node binaries (Go modules, cached by version)"
bash "${repo}/hack/controlplane/build.sh" kind crictl coredns kube-router kubelet kubeadm \
  kubectl kube-scheduler kube-proxy kube-apiserver kube-controller-manager etcd >/dev/null
bin() { echo "${cache_bin}/$1-$2/$1"; }

step "Debian bookworm root (debootstrap)"
ensure_debian_image

kube_image() { echo "registry.k8s.io/$1:$2"; }
pause_image="$(kube_image pause "${KUBEADM_PAUSE_TAG}")"

step "component images kubeadm expects"
component_images=()
static_image() {  # BINARY VERSION TAG
  local context
  context="$(new_context)"
  cp -r "${here}/components/static/skel" "${context}/skel"
  cp "$(bin "$1" "$2")" "${context}/$1"
  build_image "$3" "${context}" -f "${here}/components/static/Dockerfile" --build-arg "BINARY=$1"
  component_images+=("$3")
}
static_image kube-apiserver "${KUBERNETES_VERSION}" "$(kube_image kube-apiserver "${KUBERNETES_VERSION}")"
static_image kube-controller-manager "${KUBERNETES_VERSION}" \
  "$(kube_image kube-controller-manager "${KUBERNETES_VERSION}")"
static_image kube-scheduler "${KUBERNETES_VERSION}" "$(kube_image kube-scheduler "${KUBERNETES_VERSION}")"
static_image etcd "${ETCD_VERSION}" "$(kube_image etcd "${KUBEADM_ETCD_TAG}")"

context="$(new_context)"
cp -r "${here}/components/static/skel" "${context}/skel"
cp "$(bin coredns "${COREDNS_VERSION}")" "${context}/coredns"
build_image "$(kube_image coredns/coredns "${COREDNS_VERSION}")" "${context}" \
  -f "${here}/components/coredns/Dockerfile"
component_images+=("$(kube_image coredns/coredns "${COREDNS_VERSION}")")

context="$(new_context)"
cp "$(bin kube-proxy "${KUBERNETES_VERSION}")" "${context}/kube-proxy"
build_image "$(kube_image kube-proxy "${KUBERNETES_VERSION}")" "${context}" \
  -f "${here}/components/kube-proxy/Dockerfile" --build-arg "DEBIAN_IMAGE=${DEBIAN_IMAGE}"
component_images+=("$(kube_image kube-proxy "${KUBERNETES_VERSION}")")

kube_router_image="localhost/devserver/kube-router:${KUBE_ROUTER_VERSION}"
context="$(new_context)"
cp "$(bin kube-router "${KUBE_ROUTER_VERSION}")" "${context}/kube-router"
build_image "${kube_router_image}" "${context}" -f "${here}/components/kube-router/Dockerfile" \
  --build-arg "DEBIAN_IMAGE=${DEBIAN_IMAGE}"
component_images+=("${kube_router_image}")

context="$(new_context)"
cc -Os -static -o "${context}/pause" "${here}/components/pause/pause.c"
strip "${context}/pause"
build_image "${pause_image}" "${context}" -f "${here}/components/pause/Dockerfile"
component_images+=("${pause_image}")

step "kind node base image (Debian's systemd, containerd, runc and CNI plugins)"
kind_module="$(cd "${here}/kind" && go list -m -f '{{.Dir}}' sigs.k8s.io/kind)"
context="$(new_context)"
cp -r "${kind_module}/images/base/files" "${context}/files"
chmod -R u+w "${context}/files"
cp "$(bin crictl "${CRICTL_VERSION}")" "${context}/crictl"
cp "${here}/node/host-adapter" "${context}/host-adapter"
sed "s#@PAUSE_IMAGE@#${pause_image}#" "${here}/node/containerd.toml" >"${context}/containerd.toml"
build_image "${NODE_BASE_IMAGE}" "${context}" -f "${here}/node/Dockerfile" \
  --build-arg "DEBIAN_IMAGE=${DEBIAN_IMAGE}"

step "kind node image ${NODE_IMAGE}"
node_inputs="$(
  {
    image_id "${NODE_BASE_IMAGE}"
    for image in "${component_images[@]}"; do image_id "${image}"; done
    for binary in kubeadm kubelet kubectl; do sha256sum "$(bin "${binary}" "${KUBERNETES_VERSION}")"; done
    cat "${here}/node/cni.yaml" "${here}/node/assemble.sh"
  } | sha256sum | cut -c1-16
)"
if [[ "$(image_label "${NODE_IMAGE}")" == "${node_inputs}" ]]; then
  echo "    ${NODE_IMAGE}: current"
else
  bash "${here}/node/assemble.sh" "${NODE_BASE_IMAGE}" "${NODE_IMAGE}" "${node_inputs}" \
    "${KUBERNETES_VERSION}" "$(kube_image kube-proxy "${KUBERNETES_VERSION}")" "${kube_router_image}" \
    "$(bin kubeadm "${KUBERNETES_VERSION}")" "$(bin kubelet "${KUBERNETES_VERSION}")" \
    "$(bin kubectl "${KUBERNETES_VERSION}")" "${here}/node/cni.yaml" "${component_images[@]}"
fi

if [[ "${1:-}" != "--node-only" ]]; then
  bash "${here}/images.sh"
  bash "${here}/flux/build.sh"
  bash "${here}/argocd/build.sh"
fi
echo "node-image=${NODE_IMAGE}"
