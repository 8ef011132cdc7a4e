package cdi

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/crib-runtime/crib/api/errdefs"
)

// vendorSpec offers vendor.com/device=foo, backed by /dev/null, with an
// env var and a mount of its own and an env var and a control node
// (/dev/zero) for the whole spec, and
// vendor.com/device=gone, whose host node does not exist.
const vendorSpec = `cdiVersion: "0.6.0"
kind: vendor.com/device
devices:
  - name: foo
    containerEdits:
      env: ["FOO_DEVICE=foo"]
      deviceNodes:
        - path: /dev/vendor-foo
          hostPath: /dev/null
      mounts:
        - hostPath: /tmp
          containerPath: /vendor-foo
          options: ["ro", "rbind"]
  - name: gone
    containerEdits:
      deviceNodes:
        - path: /dev/vendor-gone
          hostPath: /dev/no-such-vendor-device
containerEdits:
  env: ["VENDOR_SPEC=1"]
  deviceNodes:
    - path: /dev/vendor-ctl
      hostPath: /dev/zero
`

// otherSpec is a second vendor's valid file beside a broken one.
const otherSpec = `{"cdiVersion": "0.6.0", "kind": "other.org/gpu", "devices": [{"name": "0", "containerEdits": {"env": ["GPU=0"]}}]}`

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func testSpec() *specs.Spec {
	return &specs.Spec{
		Process: &specs.Process{Env: []string{"PATH=/bin"}},
		Linux:   &specs.Linux{Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}},
	}
}

func TestInject(t *testing.T) {
	tests := []struct {
		name    string
		devices []string
		wantErr error
		errHas  []string
		check   func(t *testing.T, s *specs.Spec)
		nodes   map[string]string // host node by container path
	}{
		{name: "nothing asked", check: func(t *testing.T, s *specs.Spec) {
			if len(s.Process.Env) != 1 || len(s.Mounts) != 0 {
				t.Errorf("spec edited: %+v", s)
			}
		}},
		{name: "device, env and mount", devices: []string{"vendor.com/device=foo"}, check: func(t *testing.T, s *specs.Spec) {
			for _, env := range []string{"FOO_DEVICE=foo", "VENDOR_SPEC=1"} {
				if !slices.Contains(s.Process.Env, env) {
					t.Errorf("env %q lacks %s", s.Process.Env, env)
				}
			}
			if len(s.Linux.Devices) != 2 || s.Linux.Devices[1].Path != "/dev/vendor-foo" || s.Linux.Devices[1].Type != "c" ||
				s.Linux.Devices[1].Major != 1 || s.Linux.Devices[1].Minor != 3 {
				t.Errorf("devices %+v, want /dev/vendor-ctl and /dev/vendor-foo as c 1:3 (/dev/null)", s.Linux.Devices)
			}
			rules := s.Linux.Resources.Devices
			if last := rules[len(rules)-1]; !last.Allow || last.Type != "c" || *last.Major != 1 || *last.Minor != 3 {
				t.Errorf("device cgroup rules %+v do not end allowing c 1:3", rules)
			}
			if len(s.Mounts) != 1 || s.Mounts[0].Destination != "/vendor-foo" || s.Mounts[0].Source != "/tmp" {
				t.Errorf("mounts %+v, want /tmp at /vendor-foo", s.Mounts)
			}
		}, nodes: map[string]string{"/dev/vendor-foo": "/dev/null", "/dev/vendor-ctl": "/dev/zero"}},
		{name: "a broken file fails no other file's devices", devices: []string{"other.org/gpu=0"}, check: func(t *testing.T, s *specs.Spec) {
			if !slices.Contains(s.Process.Env, "GPU=0") {
				t.Errorf("env %q lacks GPU=0", s.Process.Env)
			}
		}},
		{name: "unknown device", devices: []string{"vendor.com/device=foo", "vendor.com/device=nope"},
			wantErr: errdefs.ErrFailedPrecondition, errHas: []string{"CDI device vendor.com/device=nope is defined by no spec file", "broken.json"}},
		{name: "host node missing", devices: []string{"vendor.com/device=gone"},
			wantErr: errdefs.ErrFailedPrecondition, errHas: []string{"vendor.com/device=gone", "/dev/no-such-vendor-device"}},
	}
	low, high := t.TempDir(), t.TempDir()
	write(t, low, "vendor.yaml", vendorSpec)
	write(t, high, "other.json", otherSpec)
	write(t, high, "broken.json", `{"cdiVersion": "0.6.0", "kind": `)
	log, hook := logtest.NewNullLogger()
	r := New([]string{low, filepath.Join(t.TempDir(), "missing"), high}, log)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := testSpec()
			nodes, err := r.Inject(s, tc.devices)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Inject() error = %v, want %v", err, tc.wantErr)
				}
				for _, want := range tc.errHas {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Inject() error %q does not name %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Inject(): %v", err)
			}
			tc.check(t, s)
			if !maps.Equal(nodes, tc.nodes) && len(nodes)+len(tc.nodes) > 0 {
				t.Errorf("host nodes %v, want %v", nodes, tc.nodes)
			}
		})
	}
	// The broken file is logged once, not at every request.
	var warned int
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel && strings.Contains(e.Data["file"].(string), "broken.json") {
			warned++
		}
	}
	if warned != 1 {
		t.Errorf("broken spec file logged %d times, want once", warned)
	}
}

// TestInjectReadsOnDemand checks that no spec file is read until a
// device is asked for, and that a file written since is seen at once.
func TestInjectReadsOnDemand(t *testing.T) {
	dir := t.TempDir()
	log, _ := logtest.NewNullLogger()
	r := New([]string{dir}, log)
	if _, err := r.Inject(testSpec(), nil); err != nil {
		t.Fatal(err)
	}
	if r.cache != nil {
		t.Fatal("a request for no device read the spec dirs")
	}
	if _, err := r.Inject(testSpec(), []string{"vendor.com/device=foo"}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("before the spec file: %v, want FailedPrecondition", err)
	}
	write(t, dir, "vendor.yaml", vendorSpec)
	if _, err := r.Inject(testSpec(), []string{"vendor.com/device=foo"}); err != nil {
		t.Fatalf("after the spec file: %v", err)
	}
}
