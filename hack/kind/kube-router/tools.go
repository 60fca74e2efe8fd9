//go:build tools

// Package tools pins kube-router (github.com/cloudnativelabs/kube-router/v2), run in the kind
// cluster as a NetworkPolicy engine only (iptables and ipsets): the bridge CNI of the node image
// enforces no policies, and the nftables-queue engine kindnetd embeds needs a kernel feature
// (nft_queue) that some hosts lack.
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
