package harness

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// CrictlRaw runs crictl against this cribd.
func (h *Cribd) CrictlRaw(args ...string) (stdout, stderr string, err error) {
	full := append([]string{
		"--config", filepath.Join(h.Dir, "crictl.yaml"),
		"--runtime-endpoint", "unix://" + h.Socket,
		"--image-endpoint", "unix://" + h.Socket,
		"--timeout", "30s",
	}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, CrictlPath(), full...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// Crictl runs crictl and fails the test if it fails; it returns stdout.
func (h *Cribd) Crictl(args ...string) string {
	h.t.Helper()
	out, errOut, err := h.CrictlRaw(args...)
	if err != nil {
		h.t.Fatalf("crictl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// CrictlJSON runs crictl and decodes its stdout into v.
func (h *Cribd) CrictlJSON(v any, args ...string) {
	h.t.Helper()
	out := h.Crictl(args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		h.t.Fatalf("crictl %s: decode %q: %v", strings.Join(args, " "), out, err)
	}
}

// CrictlError picks crictl's fatal message out of its stderr.
func CrictlError(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "level=fatal") {
			if i := strings.Index(line, "msg="); i >= 0 {
				return line[i+len("msg="):]
			}
			return line
		}
	}
	return strings.TrimSpace(stderr)
}

// WritePodConfig writes a pod config for crictl runp and returns its path.
func (h *Cribd) WritePodConfig(cfg map[string]any) string {
	h.t.Helper()
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		h.t.Fatal(err)
	}
	f, err := os.CreateTemp(h.Dir, "pod-*.json")
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		h.t.Fatal(err)
	}
	return f.Name()
}

// RunPod runs crictl runp with cfg and returns the pod ID.
func (h *Cribd) RunPod(cfg map[string]any) string {
	h.t.Helper()
	id := strings.TrimSpace(h.Crictl("runp", h.WritePodConfig(cfg)))
	if !IsPodID(id) {
		h.t.Fatalf("crictl runp printed %q, not a 64-hex pod ID", id)
	}
	return id
}

// IsPodID tells whether s looks like a pod (or container) ID: 64 hex digits.
func IsPodID(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// PodConfig is a minimal pod config with a unique name.
func PodConfig(name string) map[string]any {
	suffix := RandomHex(3)
	return map[string]any{
		"metadata": map[string]any{
			"name":      name + "-" + suffix,
			"uid":       "uid-" + name + "-" + suffix,
			"namespace": "crib-it",
			"attempt":   0,
		},
		"log_directory": "",
		"linux":         map[string]any{},
	}
}

// PodStatus is the part of `crictl inspectp -o json` the tests read.
type PodStatus struct {
	Status struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Metadata struct {
			Name      string `json:"name"`
			UID       string `json:"uid"`
			Namespace string `json:"namespace"`
			Attempt   int    `json:"attempt"`
		} `json:"metadata"`
		Network struct {
			IP            string `json:"ip"`
			AdditionalIPs []struct {
				IP string `json:"ip"`
			} `json:"additionalIps"`
		} `json:"network"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"status"`
	Info map[string]any `json:"info"`
}

// Inspect runs crictl inspectp.
func (h *Cribd) Inspect(id string) PodStatus {
	h.t.Helper()
	var st PodStatus
	h.CrictlJSON(&st, "inspectp", "-o", "json", id)
	return st
}

// PodListEntry is one item of `crictl pods -o json`.
type PodListEntry struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Metadata struct {
		Name      string `json:"name"`
		UID       string `json:"uid"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// Pods runs crictl pods and returns the pods by ID.
func (h *Cribd) Pods() map[string]PodListEntry {
	h.t.Helper()
	var list struct {
		Items []PodListEntry `json:"items"`
	}
	h.CrictlJSON(&list, "pods", "-o", "json")
	m := make(map[string]PodListEntry, len(list.Items))
	for _, p := range list.Items {
		m[p.ID] = p
	}
	return m
}

// PausePID finds the pod's pause process: `info.pid` of crictl inspectp's
// verbose info, else the crib-pause process in the pod's cgroup.
func (h *Cribd) PausePID(id string) int {
	h.t.Helper()
	st := h.Inspect(id)
	if info, ok := st.Info["info"].(map[string]any); ok {
		if pid, ok := info["pid"].(float64); ok && pid > 0 {
			return int(pid)
		}
	}
	if pid, ok := st.Info["pid"].(float64); ok && pid > 0 {
		return int(pid)
	}
	pid, err := h.PausePIDFromCgroup(id)
	if err != nil {
		h.t.Fatalf("pod %s: no info.pid in crictl inspectp and %v", id, err)
	}
	return pid
}

// PausePIDFromCgroup finds the crib-pause process in the pod's cgroup
// under the harness's cgroup parent.
func (h *Cribd) PausePIDFromCgroup(id string) (int, error) {
	files, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", h.CgroupParent, id, "cgroup.procs"))
	if len(files) == 0 {
		return 0, fmt.Errorf("no cgroup.procs under /sys/fs/cgroup/*%s/%s", h.CgroupParent, id)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(b)) {
			var pid int
			if _, err := fmt.Sscan(field, &pid); err != nil {
				continue
			}
			if ProcessName(pid) == "crib-pause" {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no crib-pause process in %s", strings.Join(files, ", "))
}
