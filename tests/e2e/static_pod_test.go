//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const busyboxManifest = `apiVersion: v1
kind: Pod
metadata:
  name: busybox
  namespace: default
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: busybox
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; echo crib-e2e-hello from $(hostname); while true; do sleep 1; done"]
`

// TestStaticPod: a static busybox pod runs under kubelet on cribd, kubelet
// reports it Running with the IP cribd gave, its log line reads through
// crictl and kubelet's log path; removing the manifest stops and removes
// it and leaves nothing on the node.
func TestStaticPod(t *testing.T) {
	e := startEnv(t)
	k, c := e.Kubelet, e.Cribd
	mountsBefore := mountsUnder(e.Dir)

	start := time.Now()
	k.WriteManifest("busybox", busyboxManifest)

	var pod KubeletPod
	eventually(t, 120*time.Second, "kubelet /pods shows busybox Running", func() (bool, string) {
		p, ok, err := k.Pod("busybox")
		if err != nil {
			return false, err.Error()
		}
		if !ok {
			return false, "not listed"
		}
		pod = p
		ready := len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].Ready
		return p.Status.Phase == "Running" && p.Status.PodIP != "" && ready,
			fmt.Sprintf("phase %q, podIP %q, containers %+v", p.Status.Phase, p.Status.PodIP, p.Status.ContainerStatuses)
	})
	t.Logf("manifest written -> Running in kubelet's /pods: %s", time.Since(start).Round(time.Millisecond))

	// cribd's view of the same pod.
	var pods struct {
		Items []struct {
			ID       string `json:"id"`
			State    string `json:"state"`
			Metadata struct {
				Name, UID, Namespace string
			} `json:"metadata"`
		} `json:"items"`
	}
	c.CrictlJSON(&pods, "pods", "-o", "json")
	if len(pods.Items) != 1 {
		t.Fatalf("crictl pods: %d pods, want 1: %+v", len(pods.Items), pods.Items)
	}
	podID := pods.Items[0].ID
	if got := pods.Items[0].Metadata; got.Name != "busybox-"+k.NodeName || got.Namespace != "default" || got.UID != pod.Metadata.UID {
		t.Errorf("crictl pods metadata %+v, want name busybox-%s, namespace default, uid %s", got, k.NodeName, pod.Metadata.UID)
	}
	var insp struct {
		Status struct {
			Network struct {
				IP string `json:"ip"`
			} `json:"network"`
		} `json:"status"`
	}
	c.CrictlJSON(&insp, "inspectp", "-o", "json", podID)
	if insp.Status.Network.IP == "" || insp.Status.Network.IP != pod.Status.PodIP {
		t.Errorf("kubelet reports podIP %q, cribd's inspectp %q", pod.Status.PodIP, insp.Status.Network.IP)
	}
	if !strings.HasPrefix(pod.Status.PodIP, network.Prefix) {
		t.Errorf("podIP %q is not in the CNI subnet %s", pod.Status.PodIP, network.Subnet)
	}

	// The container and its log, through crictl and kubelet's log path.
	cid := strings.TrimSpace(c.Crictl("ps", "-q", "--pod", podID))
	if len(strings.Fields(cid)) != 1 {
		t.Fatalf("crictl ps --pod %s: %q, want one container", podID, cid)
	}
	if pod.Status.ContainerStatuses[0].ContainerID == "" {
		t.Errorf("kubelet reports no containerID (want <runtime>://%s)", cid)
	} else if !strings.HasSuffix(pod.Status.ContainerStatuses[0].ContainerID, "://"+cid) {
		t.Errorf("kubelet containerID %q, crictl's %s", pod.Status.ContainerStatuses[0].ContainerID, cid)
	}
	wantLine := "crib-e2e-hello from busybox-" + k.NodeName
	eventually(t, 20*time.Second, "crictl logs shows the line", func() (bool, string) {
		out, errOut, err := c.CrictlRaw("logs", cid)
		if err != nil {
			return false, fmt.Sprintf("%v: %s", err, errOut)
		}
		return strings.Contains(out, wantLine), fmt.Sprintf("stdout %q stderr %q", out, errOut)
	})
	logPath := filepath.Join(k.PodLogsDir, fmt.Sprintf("default_busybox-%s_%s", k.NodeName, pod.Metadata.UID), "busybox", "0.log")
	if b, err := os.ReadFile(logPath); err != nil {
		t.Errorf("kubelet's log path: %v", err)
	} else if !strings.Contains(string(b), " stdout F "+wantLine) {
		t.Errorf("%s: %q, want a CRI log line \"<time> stdout F %s\"", logPath, b, wantLine)
	}

	// Removing the manifest: kubelet stops and removes the pod.
	start = time.Now()
	removeStaticPod(t, e, "busybox")
	t.Logf("manifest removed -> pod and containers gone from cribd: %s", time.Since(start).Round(time.Millisecond))

	eventually(t, 60*time.Second, "nothing left on the node", func() (bool, string) {
		left := leftovers(e, podID, pod.Metadata.UID, mountsBefore)
		return len(left) == 0, strings.Join(left, "; ")
	})
}

// removeStaticPod removes manifest name and waits until kubelet no longer
// lists the pod and cribd has no pod or container left. Kubelet removes
// the containers and the sandbox of a deleted pod in its pod sandbox
// deleter / container GC (every minute at worst).
func removeStaticPod(t *testing.T, e *Env, name string) {
	t.Helper()
	k, c := e.Kubelet, e.Cribd
	k.RemoveManifest(name)
	eventually(t, 30*time.Second, "kubelet /pods drops "+name, func() (bool, string) {
		_, ok, err := k.Pod(name)
		if err != nil {
			return false, err.Error()
		}
		return !ok, "still listed"
	})
	eventually(t, 150*time.Second, "cribd has no pod or container left", func() (bool, string) {
		p, _, err1 := c.CrictlRaw("pods", "-q")
		ctrs, _, err2 := c.CrictlRaw("ps", "-a", "-q")
		if err1 != nil || err2 != nil {
			return false, fmt.Sprintf("crictl: %v %v", err1, err2)
		}
		return strings.TrimSpace(p) == "" && strings.TrimSpace(ctrs) == "",
			fmt.Sprintf("pods %q containers %q", strings.TrimSpace(p), strings.TrimSpace(ctrs))
	})
}

// leftovers names what a removed pod left on the node: its netns pin,
// mounts, cgroups below kubelet's QoS cgroups, crib processes, host veths on
// the bridge, IP leases.
func leftovers(e *Env, podID, podUID string, mountsBefore []string) []string {
	var left []string
	if _, err := os.Stat("/var/run/netns/crib-" + podID); err == nil {
		left = append(left, "netns pin /var/run/netns/crib-"+podID)
	}
	before := map[string]bool{}
	for _, m := range mountsBefore {
		before[m] = true
	}
	for _, m := range mountsUnder(e.Dir) {
		if !before[m] {
			left = append(left, "mount "+m)
		}
	}
	for _, line := range strings.Split(readFile("/proc/self/mountinfo"), "\n") {
		if strings.Contains(line, podID) {
			left = append(left, "mount "+strings.Fields(line)[4])
		}
	}
	qos := map[string]bool{"kubepods": true, "kubepods/burstable": true, "kubepods/besteffort": true}
	for _, d := range cgroupChildren(e.Kubelet.CgroupRoot) {
		rel := d[strings.Index(d, e.Kubelet.CgroupRoot)+len(e.Kubelet.CgroupRoot)+1:]
		if !qos[rel] {
			left = append(left, "cgroup "+d)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cg := readFile(filepath.Join(p, "cgroup"))
		cmdline := strings.ReplaceAll(readFile(filepath.Join(p, "cmdline")), "\x00", " ")
		if strings.Contains(cg, e.Kubelet.CgroupRoot+"/kubepods/") || (strings.Contains(cmdline, "crib-shim") && strings.Contains(cmdline, e.Dir)) {
			left = append(left, fmt.Sprintf("process %s %q", filepath.Base(p), strings.TrimSpace(cmdline)))
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show", "master", network.Bridge).Output(); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(line); len(f) > 1 {
				left = append(left, "veth "+strings.TrimSuffix(f[1], ":"))
			}
		}
	}
	leases, _ := filepath.Glob(filepath.Join(e.Cribd.IPAMDataDir, "*", network.Prefix+"*"))
	for _, l := range leases {
		left = append(left, "IP lease "+l)
	}
	return left
}
