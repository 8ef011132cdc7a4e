package cgroup

import (
	"strings"
	"testing"
)

func TestCheckParent(t *testing.T) {
	for _, tc := range []struct {
		driver  Driver
		parent  string
		wantErr string // substring; "" for valid
	}{
		{Cgroupfs, "/crib", ""},
		{Cgroupfs, "/kubepods/besteffort/pod1234", ""},
		{Cgroupfs, "/kubepods.slice/kubepods-besteffort.slice", ""}, // an expanded slice is a path
		{Cgroupfs, "kubepods-besteffort-pod1234.slice", "is a systemd slice, but the cgroup driver is cgroupfs"},
		{Cgroupfs, "crib", "not a clean absolute path"},
		{Cgroupfs, "/crib/../x", "not a clean absolute path"},
		{Cgroupfs, "/crib/", "not a clean absolute path"},
		{Cgroupfs, "", "not a clean absolute path"},
		{Systemd, "crib.slice", ""},
		{Systemd, "kubepods-besteffort-pod1234_5678.slice", ""},
		{Systemd, "/crib", "is a path, but the cgroup driver is systemd"},
		{Systemd, "/kubepods/besteffort/pod1", "is a path, but the cgroup driver is systemd"},
		{Systemd, "crib", "not a systemd slice name"},
		{Systemd, "a--b.slice", "not a systemd slice name"},
		{Systemd, "-.slice", "root slice"},
		{Systemd, "a:b.slice", "not allowed"},
		{Systemd, "", "not a systemd slice name"},
	} {
		err := CheckParent(tc.driver, tc.parent)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("CheckParent(%s, %q) = %v, want %q", tc.driver, tc.parent, err, tc.wantErr)
		}
	}
}

// TestParent: kubelet's systemd driver sends the pod slice as its full
// path; crib keeps the slice's name. Other paths stay refused.
func TestParent(t *testing.T) {
	for _, tc := range []struct {
		driver  Driver
		parent  string
		want    string
		wantErr string
	}{
		{Systemd, "kubepods-besteffort-pod1234.slice", "kubepods-besteffort-pod1234.slice", ""},
		{Systemd, "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice", "kubepods-besteffort-pod1234.slice", ""},
		{Systemd, "/crib.slice", "crib.slice", ""},
		{Systemd, "/kubepods.slice/kubepods-besteffort-pod1234.slice", "", "its full path"},
		{Systemd, "/kubepods/besteffort/pod1234", "", "is a path, but the cgroup driver is systemd"},
		{Systemd, "/crib", "", "is a path, but the cgroup driver is systemd"},
		{Cgroupfs, "/kubepods/besteffort/pod1234", "/kubepods/besteffort/pod1234", ""},
		{Cgroupfs, "kubepods-besteffort-pod1234.slice", "", "is a systemd slice"},
	} {
		got, err := Parent(tc.driver, tc.parent)
		if tc.wantErr == "" && (err != nil || got != tc.want) || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Parent(%s, %q) = %q, %v; want %q, %q", tc.driver, tc.parent, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestPathAndDir(t *testing.T) {
	for _, tc := range []struct {
		driver     Driver
		parent, id string
		path, dir  string
		systemd    bool
	}{
		{Cgroupfs, "/crib", "abc", "/crib/abc", "/crib/abc", false},
		{Cgroupfs, "/kubepods/besteffort/pod1", "abc", "/kubepods/besteffort/pod1/abc", "/kubepods/besteffort/pod1/abc", false},
		{Systemd, "crib.slice", "abc", "crib.slice:crib:abc", "/crib.slice/crib-abc.scope", true},
		{Systemd, "kubepods-besteffort-pod1234.slice", "abc", "kubepods-besteffort-pod1234.slice:crib:abc",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice/crib-abc.scope", true},
	} {
		p := Path(tc.driver, tc.parent, tc.id)
		if p != tc.path {
			t.Errorf("Path(%s, %q, %q) = %q, want %q", tc.driver, tc.parent, tc.id, p, tc.path)
		}
		if IsSystemd(p) != tc.systemd {
			t.Errorf("IsSystemd(%q) = %v", p, !tc.systemd)
		}
		if err := CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q): %v", p, err)
		}
		if dir, err := Dir(p); err != nil || dir != tc.dir {
			t.Errorf("Dir(%q) = %q, %v, want %q", p, dir, err, tc.dir)
		}
	}
	for _, bad := range []string{"", "/", "crib/abc", "/crib/../abc", "crib.slice:crib", "a/b.slice:crib:x", "crib:crib:x"} {
		if err := CheckPath(bad); err == nil {
			t.Errorf("CheckPath(%q) accepted", bad)
		}
	}
}

func TestCheckDriver(t *testing.T) {
	booted := func(b bool) func() bool { return func() bool { return b } }
	if err := CheckDriver(Cgroupfs, booted(false)); err != nil {
		t.Errorf("cgroupfs without systemd: %v", err)
	}
	if err := CheckDriver(Systemd, booted(true)); err != nil {
		t.Errorf("systemd with systemd: %v", err)
	}
	err := CheckDriver(Systemd, booted(false))
	if err == nil || !strings.Contains(err.Error(), `"runtime.cgroup_driver"`) || !strings.Contains(err.Error(), "PID 1") {
		t.Errorf("systemd without systemd: %v, want an error naming the key and the reason", err)
	}
	if err := CheckDriver("v2", booted(true)); err == nil {
		t.Error("unknown driver accepted")
	}
}

func TestParentSlice(t *testing.T) {
	for in, want := range map[string]string{
		"kubepods-besteffort-pod1.slice": "kubepods-besteffort.slice",
		"kubepods-besteffort.slice":      "kubepods.slice",
		"kubepods.slice":                 "",
	} {
		if got := parentSlice(in); got != want {
			t.Errorf("parentSlice(%q) = %q, want %q", in, got, want)
		}
	}
}
