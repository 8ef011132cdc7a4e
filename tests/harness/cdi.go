package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cdiVendorSpec offers vendor.com/device=foo: /dev/null seen as
// /dev/vendor-foo, with an env var and a read-only mount of @DATA@; and
// vendor.com/device=hooked, a createRuntime hook that saves the
// container's state, which the runtime passes on its stdin, to
// @DIR@/cdi-hook-ran.
const cdiVendorSpec = `cdiVersion: "0.6.0"
kind: vendor.com/device
devices:
  - name: foo
    containerEdits:
      deviceNodes:
        - path: /dev/vendor-foo
          hostPath: /dev/null
      env: ["FOO_DEVICE=foo"]
      mounts:
        - hostPath: @DATA@
          containerPath: /vendor-foo
          type: bind
          options: ["ro", "rbind"]
  - name: hooked
    containerEdits:
      hooks:
        - hookName: createRuntime
          path: /bin/sh
          args: ["sh", "-c", "cat > @DIR@/cdi-hook-ran"]
`

// CDIProbe is a shell script that prints what a container sees of the
// CDI device WriteCDISpecs offers, one line each: "node" (the device node
// is there), "env=foo" (its env var), "hello from CDI" (its mount) and
// "wrote" (the device cgroup lets it write to the node).
const CDIProbe = `test -c /dev/vendor-foo && echo node; echo env=$FOO_DEVICE; cat /vendor-foo/hello; echo x > /dev/vendor-foo && echo wrote`

// CDIProbeWant is CDIProbe's output in a container that has the device.
var CDIProbeWant = []string{"node", "env=foo", "hello from CDI", "wrote"}

// WriteCDISpecs makes the CDI spec dir <dir>/cdi with vendor.com/device=foo
// and vendor.com/device=hooked (cdiVendorSpec), a broken spec file (broken.json) and a file that is
// no spec, and <dir>/cdi-data, the directory foo mounts.
func WriteCDISpecs(t testing.TB, dir string) {
	t.Helper()
	data := filepath.Join(dir, "cdi-data")
	for _, d := range []string{filepath.Join(dir, "cdi"), data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(data, "hello"):              "hello from CDI\n",
		filepath.Join(dir, "cdi", "vendor.yaml"):  strings.NewReplacer("@DATA@", data, "@DIR@", dir).Replace(cdiVendorSpec),
		filepath.Join(dir, "cdi", "broken.json"):  `{"cdiVersion": "0.6.0", "kind": `,
		filepath.Join(dir, "cdi", "ignored.conf"): "not a spec file",
	}
	for path, body := range files {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// HasLine tells whether out has a line that, trimmed, is want.
func HasLine(out, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}
