// argocd is the part of Argo CD that the e2e suite's Argo CD scenario runs: the application
// controller and the repo server (and the Git askpass helper the repo server hands to git),
// from argo-cd's own cobra commands at the pinned version. A multi-call binary like upstream's
// cmd/main.go, but without the API server, the UI, Dex, notifications and the ApplicationSet
// controller, which the scenario does not use: their dependencies stay out of the build.
//
// The command is chosen by the name the binary is called by (argv[0]) or ARGOCD_BINARY_NAME,
// as upstream does, so the repo server's GIT_ASKPASS (the binary itself, with
// ARGOCD_BINARY_NAME=argocd-git-ask-pass) works unchanged.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	gitaskpass "github.com/argoproj/argo-cd/v3/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/util/grpc"
	"github.com/argoproj/argo-cd/v3/util/log"
)

func init() {
	// As upstream: klog (client-go's logger) goes through Argo CD's configured logrus.
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
}

// disableSRVLookups turns off grpc-go's DNS SRV lookups (_grpclb._tcp.<host>), as upstream's
// main does. Only grpc's grpclb balancer turns them on; upstream links it (through packages
// this build leaves out) and its DisableSRVLookups panics when it finds them off already. Here
// they are off unless grpclb gets linked some day: the panic then means "already off", which
// is the state wanted, and the call still switches them off in the other case.
func disableSRVLookups() {
	defer func() { _ = recover() }()
	grpc.DisableSRVLookups()
}

func main() {
	disableSRVLookups()
	name := filepath.Base(os.Args[0])
	if value := os.Getenv("ARGOCD_BINARY_NAME"); value != "" {
		name = value
	}
	var command *cobra.Command
	switch name {
	case common.CommandApplicationController:
		command = appcontroller.NewCommand()
	case common.CommandRepoServer:
		command = reposerver.NewCommand()
	case common.CommandGitAskPass:
		command = gitaskpass.NewCommand()
		command.SilenceUsage = true
	default:
		fmt.Fprintf(os.Stderr, "argocd: unknown command %q (this build has %s, %s, %s)\n", name,
			common.CommandApplicationController, common.CommandRepoServer, common.CommandGitAskPass)
		os.Exit(2)
	}
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
