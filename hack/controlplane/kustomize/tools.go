//go:build tools

// Package tools pins the kustomize command that build.sh compiles. The blank import keeps
// `go mod tidy` from dropping its dependencies; this file is never compiled.
package tools

import _ "sigs.k8s.io/kustomize/kustomize/v5"
