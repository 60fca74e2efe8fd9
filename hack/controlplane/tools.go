//go:build tools

// Package tools pins the Kubernetes commands that build.sh compiles: the control plane for
// the local test cluster, and the node binaries (kubelet, kubeadm, kube-proxy, ...) that
// hack/kind/ puts into the kind node image. The blank imports keep `go mod tidy` from
// dropping their dependencies; nothing here is ever compiled (the "tools" build tag is
// never set).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
