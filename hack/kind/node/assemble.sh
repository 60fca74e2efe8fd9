#!/usr/bin/env bash
# Assembles the kind node image the way `kind build node-image` does, with commands that
# Debian's containerd 1.6 has (kind's own builder needs `ctr info` and a registry):
#   the base image + kubeadm, kubelet and kubectl; /kind/version; the CNI manifest; the
#   component images imported into containerd and pinned (kubelet's image GC keeps them).
# Usage: assemble.sh BASE NODE INPUTS VERSION KUBE_PROXY_IMAGE KUBE_ROUTER_IMAGE KUBEADM KUBELET
#                    KUBECTL CNI IMAGE...
set -euo pipefail
base="$1" node="$2" inputs="$3" version="$4" kube_proxy_image="$5" kube_router_image="$6"
kubeadm="$7" kubelet="$8" kubectl="$9" cni="${10}"
shift 10
images=("$@")

container="$(docker run -d --entrypoint=sleep --security-opt seccomp=unconfined "${base}" infinity)"
trap 'docker rm -f -v "${container}" >/dev/null 2>&1 || true' EXIT
in_node() { docker exec -i "${container}" "$@"; }

for binary in "${kubeadm}" "${kubelet}" "${kubectl}"; do
  docker cp "${binary}" "${container}:/usr/bin/$(basename "${binary}")"
done
in_node chmod 0755 /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl
in_node mkdir -p /kind/manifests
printf '%s' "${version}" | in_node tee /kind/version >/dev/null
sed -e "s#@KUBE_PROXY_IMAGE@#${kube_proxy_image}#" -e "s#@KUBE_ROUTER_IMAGE@#${kube_router_image}#" "${cni}" | in_node tee /kind/manifests/default-cni.yaml >/dev/null
# kubelet >= 1.35 refuses cgroup v1 hosts unless told otherwise; the flag is harmless on v2.
echo 'KUBELET_EXTRA_ARGS=--runtime-cgroups=/system.slice/containerd.service --fail-cgroupv1=false' \
  | in_node tee /etc/default/kubelet >/dev/null

in_node bash -c 'nohup containerd >/tmp/containerd.log 2>&1 &'
in_node bash -c 'for _ in $(seq 1 60); do [ -S /run/containerd/containerd.sock ] && exit 0; sleep 0.5; done; exit 1'
docker save "${images[@]}" | in_node ctr --namespace=k8s.io images import --all-platforms --no-unpack -
for image in "${images[@]}"; do
  in_node ctr --namespace=k8s.io images label "${image}" io.cri-containerd.pinned=pinned >/dev/null
done
in_node bash -c 'kill "$(pidof containerd)"; for _ in $(seq 1 40); do pidof containerd >/dev/null || exit 0; sleep 0.5; done; exit 1'
in_node rm -f /tmp/containerd.log
docker commit \
  --change 'ENTRYPOINT [ "/usr/local/bin/host-adapter", "/usr/local/bin/entrypoint", "/sbin/init" ]' \
  --change "LABEL devserver.inputs=${inputs}" \
  "${container}" "${node}" >/dev/null
echo "    ${node}: assembled"
