//go:build tools

// Package tools pins crictl (sigs.k8s.io/cri-tools), which kind's node image carries for
// kubeadm's preflight checks and for debugging the node's containerd.
package tools

import _ "sigs.k8s.io/cri-tools/cmd/crictl"
