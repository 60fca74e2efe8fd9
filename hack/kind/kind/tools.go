//go:build tools

// Package tools pins kind (sigs.k8s.io/kind) for hack/controlplane/build.sh: it creates the
// e2e and demo clusters from the node image that hack/kind/build-images.sh assembles.
package tools

import _ "sigs.k8s.io/kind"
