package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/sandbox"
)

// Inventory lists the pods and containers cribd knows; *sandbox.Manager is
// one.
type Inventory interface {
	List(sandbox.Filter) []sandbox.View
	Containers(sandbox.ContainerFilter) []sandbox.ContainerView
}

// RegisterInventory registers on reg the gauges of pods and containers by
// state. They are counted from inv at each scrape, so they cannot drift
// from what ListPodSandbox and ListContainers report.
func RegisterInventory(reg prometheus.Registerer, inv Inventory) error {
	return reg.Register(inventoryCollector{
		inv: inv,
		pods: prometheus.NewDesc(namespace+"_pods", "Pod sandboxes by CRI state (ready, notready).",
			[]string{"state"}, nil),
		containers: prometheus.NewDesc(namespace+"_containers", "Containers by CRI state (created, running, exited, unknown).",
			[]string{"state"}, nil),
	})
}

// inventoryCollector reports the gauges of RegisterInventory.
type inventoryCollector struct {
	inv              Inventory
	pods, containers *prometheus.Desc
}

func (c inventoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pods
	ch <- c.containers
}

func (c inventoryCollector) Collect(ch chan<- prometheus.Metric) {
	pods, containers := countStates(c.inv)
	for _, s := range []runtimeapi.PodSandboxState{runtimeapi.PodSandboxState_SANDBOX_READY, runtimeapi.PodSandboxState_SANDBOX_NOTREADY} {
		ch <- prometheus.MustNewConstMetric(c.pods, prometheus.GaugeValue, float64(pods[s]), podStateLabel(s))
	}
	for _, s := range []sandbox.ContainerState{
		sandbox.ContainerCreated, sandbox.ContainerRunning, sandbox.ContainerExited, sandbox.ContainerUnknown,
	} {
		ch <- prometheus.MustNewConstMetric(c.containers, prometheus.GaugeValue, float64(containers[s]), s.String())
	}
}

// countStates counts inv's pods by CRI state and its containers by state
// (crib's states are the CRI's, named alike).
func countStates(inv Inventory) (map[runtimeapi.PodSandboxState]int, map[sandbox.ContainerState]int) {
	pods := map[runtimeapi.PodSandboxState]int{}
	for _, v := range inv.List(sandbox.Filter{}) {
		if v.Ready {
			pods[runtimeapi.PodSandboxState_SANDBOX_READY]++
		} else {
			pods[runtimeapi.PodSandboxState_SANDBOX_NOTREADY]++
		}
	}
	containers := map[sandbox.ContainerState]int{}
	for _, v := range inv.Containers(sandbox.ContainerFilter{}) {
		containers[v.State()]++
	}
	return pods, containers
}

// podStateLabel is "ready" for SANDBOX_READY, "notready" for SANDBOX_NOTREADY.
func podStateLabel(s runtimeapi.PodSandboxState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SANDBOX_"))
}
