//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pingCmd pings ip once: ping if the host has it, else busybox's.
func pingCmd(ip string) []string {
	if _, err := exec.LookPath("ping"); err == nil {
		return []string{"ping", "-c1", "-W1", ip}
	}
	return []string{"busybox", "ping", "-c1", "-W1", ip}
}

// inPodNet prefixes cmd to run it in the pod's pinned network namespace.
func (h *Harness) inPodNet(id string, cmd []string) []string {
	if h.NetNSDir == "/var/run/netns" || h.NetNSDir == "/run/netns" {
		return append([]string{"ip", "netns", "exec", "crib-" + id}, cmd...)
	}
	return append([]string{"nsenter", "--net=" + h.pinPath(id, "net"), "--"}, cmd...)
}

// pingOK pings until it answers (ARP and the bridge's forwarding delay may
// lose the first ones), for at most 10s.
func pingOK(t *testing.T, what string, cmd []string) {
	t.Helper()
	eventually(t, 10*time.Second, what, func() (bool, string) {
		out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
		return err == nil, fmt.Sprintf("%s: %v: %s", strings.Join(cmd, " "), err, out)
	})
}

// TestPodNetworking: the host reaches a pod's IP, and a second pod reaches
// the first over the bridge. Pings go only to the pods' own addresses.
func TestPodNetworking(t *testing.T) {
	h := start(t, Options{})
	a := h.RunPod(podConfig("net-a"))
	b := h.RunPod(podConfig("net-b"))
	ipA, ipB := h.Inspect(a).Status.Network.IP, h.Inspect(b).Status.Network.IP
	if ipA == "" || ipB == "" || ipA == ipB {
		t.Fatalf("pod IPs %q and %q: want two different addresses", ipA, ipB)
	}
	pingOK(t, "host → pod "+ipA, pingCmd(ipA))
	pingOK(t, "pod "+ipB+" → pod "+ipA, h.inPodNet(b, pingCmd(ipA)))

	// Inside, the pod has eth0 with its IP, and lo up (containerd and
	// CRI-O bring it up; probes and sidecars talk over localhost).
	cmd := h.inPodNet(a, []string{"ip", "-o", "addr", "show", "eth0"})
	out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "inet "+ipA+"/") {
		t.Errorf("pod %s: ip addr show eth0: %v\n%s\nwant %s", a, err, out, ipA)
	}
	cmd = h.inPodNet(a, []string{"ip", "-o", "link", "show", "lo"})
	out, err = exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ",UP") {
		t.Errorf("pod %s: loopback is not up: ip link show lo: %v: %s", a, err, strings.TrimSpace(string(out)))
	}
}

// recordPlugin is a CNI plugin that appends each call to @DIR@/cni-calls and,
// chained last, passes its prevResult through.
const recordPlugin = `#!/bin/sh
input=$(cat)
echo "$CNI_COMMAND $CNI_CONTAINERID" >> @DIR@/cni-calls
case "$CNI_COMMAND" in
ADD) printf '%s' "$input" | jq -c '.prevResult // {"cniVersion":"1.0.0"}' ;;
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}' ;;
esac
exit 0
`

// recordingConflist is the default network with crib-record chained last.
var recordingConflist = strings.Replace(defaultConflist,
	`{"type": "portmap", "capabilities": {"portMappings": true}}`,
	`{"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "crib-record"}`, 1)

func (h *Harness) cniCalls() string {
	b, _ := os.ReadFile(filepath.Join(h.Dir, "cni-calls"))
	return string(b)
}

// TestHostNetworkPod: a pod with namespace_options.network=NODE is Ready,
// shares the host's network namespace, and CNI is never called for it.
func TestHostNetworkPod(t *testing.T) {
	h := start(t, Options{
		Plugins:   map[string]string{"crib-record": recordPlugin},
		ConfFiles: map[string]string{"10-cribit.conflist": recordingConflist},
	})

	// Control: a pod network pod goes through the recorder.
	ctl := h.RunPod(podConfig("ctl"))
	if !strings.Contains(h.cniCalls(), "ADD "+ctl) {
		t.Fatalf("the recording plugin saw no ADD for pod network pod %s; calls:\n%s", ctl, h.cniCalls())
	}
	h.Crictl("stopp", ctl)
	h.Crictl("rmp", ctl)
	before := h.snapshot()

	cfg := podConfig("hostnet")
	cfg["linux"] = map[string]any{
		"security_context": map[string]any{
			"namespace_options": map[string]any{"network": 2}, // NODE
		},
	}
	id := h.RunPod(cfg)
	if st := h.Inspect(id); st.Status.State != "SANDBOX_READY" {
		t.Errorf("host network pod: state %q, want SANDBOX_READY", st.Status.State)
	}
	pid := h.PausePID(id)
	if got, host := procNS(t, pid, "net"), procNS(t, os.Getpid(), "net"); got != host {
		t.Errorf("host network pod: pause's netns %v, host's %v", got, host)
	}
	if n := len(h.snapshot()[kindIPAM]); n != 0 {
		t.Errorf("host network pod: %d host-local leases exist, want 0", n)
	}
	if calls := h.cniCalls(); strings.Contains(calls, id) {
		t.Errorf("CNI was called for host network pod %s:\n%s", id, calls)
	}

	h.Crictl("stopp", id)
	h.Crictl("rmp", id)
	if calls := h.cniCalls(); strings.Contains(calls, id) {
		t.Errorf("CNI was called for host network pod %s:\n%s", id, calls)
	}
	h.checkLeaks(t, before, "after rmp of the host network pod")
}

// failPlugin fails every ADD with a CNI error and succeeds at the rest.
const failPlugin = `#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
ADD) echo '{"cniVersion":"1.0.0","code":100,"msg":"boom from test plugin"}'; exit 1 ;;
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}' ;;
esac
exit 0
`

// TestCNIAddFails: when CNI ADD fails, crictl runp fails with the plugin's
// message and the pod leaves nothing behind: alone, and chained after the
// bridge plugin so that an IP, a veth and nat rules were already made.
func TestCNIAddFails(t *testing.T) {
	afterBridge := strings.Replace(defaultConflist,
		`{"type": "portmap", "capabilities": {"portMappings": true}}`,
		`{"type": "crib-fail"}`, 1)
	for _, tc := range []struct {
		name     string
		conflist string
		userns   bool // the pod has its own user namespace (pinned too)
	}{
		{"alone", `{"cniVersion": "1.0.0", "name": "cribit-fail", "plugins": [{"type": "crib-fail"}]}`, false},
		{"after-bridge", afterBridge, false},
		{"after-bridge-userns", afterBridge, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, Options{
				Plugins:   map[string]string{"crib-fail": failPlugin},
				ConfFiles: map[string]string{"10-fail.conflist": tc.conflist},
			})
			before := h.snapshot()
			pod := podConfig("cnifail")
			if tc.userns {
				pod["linux"] = map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"userns_options": usernsOptions()}}}
			}
			cfg := h.WritePodConfig(pod)
			for try := 1; try <= 2; try++ {
				out, errOut, err := h.crictlRaw("runp", cfg)
				if err == nil {
					t.Fatalf("try %d: crictl runp succeeded (%q); want the plugin's failure", try, strings.TrimSpace(out))
				}
				if !strings.Contains(errOut, "boom from test plugin") {
					t.Errorf("try %d: crictl runp failed with %q; want the plugin's message %q", try, crictlError(errOut), "boom from test plugin")
				}
				if pods := h.Pods(); len(pods) != 0 {
					t.Errorf("try %d: crictl pods lists %v after a failed runp", try, pods)
				}
				h.checkLeaks(t, before, fmt.Sprintf("after failed runp (try %d)", try))
			}
		})
	}
}
