package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crib-runtime/crib/api/config"
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

// TestPrintConfigMergesDropIns: --print-config shows the files merged and
// the result; --config-dir replaces crib.d and must exist when named.
func TestPrintConfigMergesDropIns(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "crib.toml")
	write := func(path, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(main, "[log]\nlevel = \"debug\"\n")
	write(filepath.Join(dir, "crib.d", "10-json.toml"), "[log]\nformat = \"json\"\n")
	write(filepath.Join(dir, "other", "10-warn.toml"), "[log]\nlevel = \"warn\"\n")
	tests := []struct {
		name    string
		args    []string
		want    []string
		wantErr string
	}{
		{name: "default drop-in dir", args: []string{"--config", main}, want: []string{
			"#   " + main + "\n#   " + filepath.Join(dir, "crib.d", "10-json.toml") + "\n", `level = "debug"`, `format = "json"`,
		}},
		{name: "configured drop-in dir", args: []string{"--config", main, "--config-dir", filepath.Join(dir, "other")}, want: []string{
			`level = "warn"`, `format = "text"`,
		}},
		{name: "missing configured dir", args: []string{"--config", main, "--config-dir", filepath.Join(dir, "none")}, wantErr: "drop-in directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(append(tc.args, "--print-config"), &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestStatusInfo: every entry is JSON, and config is the effective one.
func TestStatusInfo(t *testing.T) {
	cfg := config.Default()
	cfg.Log.Level = "debug"
	info, err := statusInfo(cfg, configSources{Sources: config.Sources{Main: "/etc/crib/crib.toml"}}, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"config", "configSources", "version", "streaming"} {
		var v map[string]any
		if err := json.Unmarshal([]byte(info[k]), &v); err != nil {
			t.Errorf("info[%q] = %q is not a JSON object (crictl shows anything else as a string): %v", k, info[k], err)
		}
	}
	var c struct {
		Log struct{ Level string } `json:"log"`
	}
	if err := json.Unmarshal([]byte(info["config"]), &c); err != nil || c.Log.Level != "debug" {
		t.Errorf("config = %s (%v), want log.level debug", info["config"], err)
	}
	if want := `{"dropInDir":"/etc/crib/crib.d","files":[],"main":"/etc/crib/crib.toml"}`; info["configSources"] != want {
		t.Errorf("configSources = %s, want %s", info["configSources"], want)
	}
}
