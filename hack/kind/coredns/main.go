// Command coredns is CoreDNS built with the plugins that kubeadm's default Corefile names
// (errors, health, ready, kubernetes, prometheus, forward, cache, loop, reload,
// loadbalance) and log, so the build skips the cloud providers' SDKs. Its version is the
// one kubeadm deploys (hack/controlplane/versions.env, COREDNS_VERSION).
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func main() { coremain.Run() }
