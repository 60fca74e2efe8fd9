//go:build tools

// Package tools pins the Kubernetes control-plane commands that build.sh compiles.
// The blank imports keep `go mod tidy` from dropping their dependencies; nothing here is
// ever compiled (the "tools" build tag is never set).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
