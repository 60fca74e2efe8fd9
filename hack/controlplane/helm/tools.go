//go:build tools

// Package tools pins the helm command that build.sh compiles. The blank import keeps
// `go mod tidy` from dropping its dependencies; this file is never compiled.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
