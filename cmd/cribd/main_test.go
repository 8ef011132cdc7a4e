package main

import (
	"strings"
	"testing"
)

func TestCgroupDriverRefusesSystemdWithoutSystemd(t *testing.T) {
	notBooted := func() bool { return false }
	if u, err := cgroupDriver("cgroupfs", notBooted); err != nil || u != nil {
		t.Fatalf("cgroupfs: %v, %v", u, err)
	}
	_, err := cgroupDriver("systemd", notBooted)
	if err == nil || !strings.Contains(err.Error(), `key "runtime.cgroup_driver"`) || !strings.Contains(err.Error(), "PID 1") {
		t.Fatalf("systemd on a host not booted with it: %v, want an error naming the key and the reason", err)
	}
}
