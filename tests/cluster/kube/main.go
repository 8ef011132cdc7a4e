// Command kube is the Kubernetes control plane and node binaries crib's
// cluster tests run — kube-apiserver, kube-controller-manager,
// kube-scheduler, kube-proxy, kubectl, kubelet and an embedded etcd — as one
// multi-call binary: it runs the program named by the name it is called
// under (scripts/build-kube.sh makes a symlink per name), or by its first
// argument when called as kube (`kube kubectl get nodes`).
//
// One binary rather than seven because the seven share most of their code
// (the k8s.io staging packages, client-go, the API types): one link
// compiles and links those once. Measured at v1.34.4 on 2 cores: all six
// Kubernetes programs in one binary took 600 s from a cold cache, where
// kube-apiserver alone took 662 s under load and the others 157 s more
// built separately on top of it; the binary is about 138 MB, where the
// separate binaries would be several times that.
//
// Each entry does what the program's own main does (k8s.io/kubernetes
// cmd/<name>/<name>.go, go.etcd.io/etcd/server/v3's main.go), so flags,
// exit codes and logging are theirs.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	_ "time/tzdata" // for CronJob time zones, as kube-apiserver and kube-controller-manager import it

	"go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's client auth plugins
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	"k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

// programs maps each name the binary answers to onto its main. Each reads
// its arguments from os.Args, as the real programs do.
var programs = map[string]func() int{
	"kube-apiserver": func() int {
		return cli.Run(apiserver.NewAPIServerCommand())
	},
	"kube-controller-manager": func() int {
		return cli.Run(controllermanager.NewControllerManagerCommand())
	},
	"kube-scheduler": func() int {
		return cli.Run(scheduler.NewSchedulerCommand())
	},
	"kube-proxy": func() int {
		return cli.Run(proxy.NewProxyCommand())
	},
	"kubelet": func() int {
		return cli.Run(kubelet.NewKubeletCommand(context.Background()))
	},
	"kubectl": kubectl,
	"etcd": func() int {
		etcdmain.Main(os.Args)
		return 0
	},
}

// kubectl is k8s.io/kubernetes cmd/kubectl's main: the log verbosity is
// read from the arguments before the command is built, so that building it
// (plugins, .kuberc) already logs at that level.
func kubectl() int {
	logs.GlogSetter(cmd.GetLogVerbosity(os.Args)) //nolint:errcheck // as kubectl's main
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		kubectlutil.CheckErr(err) // prints the error and exits non-zero
	}
	return 0
}

func main() {
	name := filepath.Base(os.Args[0])
	if name == "kube" && len(os.Args) > 1 {
		// `kube <name> args...`: run <name> as if called under that name.
		os.Args = os.Args[1:]
		name = os.Args[0]
	}
	run, ok := programs[name]
	if !ok {
		usage(name)
		os.Exit(2)
	}
	os.Exit(run())
}

// usage tells which names the binary answers to.
func usage(name string) {
	names := make([]string, 0, len(programs))
	for n := range programs {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "kube: unknown program %q\n", name)
	fmt.Fprintf(os.Stderr, "usage: call this binary under one of these names (a symlink), or as kube <name> [args...]:\n")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %s\n", n)
	}
}
