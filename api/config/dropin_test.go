package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestLoadSources: the main file, then crib.d/*.toml by name; each file
// overrides the keys it sets, tables merge, arrays replace, and errors name
// the file and the key.
func TestLoadSources(t *testing.T) {
	tests := []struct {
		name    string
		main    string            // "" means no main file
		dropIns map[string]string // name → content, in crib.d
		wantErr []string          // substrings, with "DIR" for the config dir
		check   func(t *testing.T, c Config)
	}{
		{name: "no files at all", check: func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c, Default()) {
				t.Errorf("got %+v, want defaults", c)
			}
		}},
		{name: "drop-in without main file", dropIns: map[string]string{"10-log.toml": "[log]\nlevel = \"debug\"\n"}, check: func(t *testing.T, c Config) {
			if c.Log.Level != "debug" {
				t.Errorf("log.level = %q", c.Log.Level)
			}
		}},
		{name: "later file wins, in name order", main: "[log]\nlevel = \"warn\"\n", dropIns: map[string]string{
			"20-b.toml": "[log]\nlevel = \"error\"\n",
			"10-a.toml": "[log]\nlevel = \"debug\"\n",
		}, check: func(t *testing.T, c Config) {
			if c.Log.Level != "error" {
				t.Errorf("log.level = %q, want the last file's error", c.Log.Level)
			}
		}},
		{name: "bytewise order: 10 before 9", dropIns: map[string]string{
			"9-a.toml":  "[log]\nlevel = \"debug\"\n",
			"10-b.toml": "[log]\nlevel = \"error\"\n",
		}, check: func(t *testing.T, c Config) {
			if c.Log.Level != "debug" {
				t.Errorf("log.level = %q, want 9-a's debug", c.Log.Level)
			}
		}},
		{name: "tables merge key by key", main: "[log]\nlevel = \"debug\"\nformat = \"json\"\n[network.overlay]\nvni = 7\n",
			dropIns: map[string]string{"10.toml": "[log]\nlevel = \"warn\"\n[network.overlay]\nport = 4789\n"},
			check: func(t *testing.T, c Config) {
				if c.Log.Level != "warn" || c.Log.Format != "json" {
					t.Errorf("log = %+v, want level warn from the drop-in and format json from the main file", c.Log)
				}
				if c.Network.Overlay.VNI != 7 || c.Network.Overlay.Port != 4789 || c.Network.Overlay.VTEPName != "flannel.1" {
					t.Errorf("overlay = %+v", c.Network.Overlay)
				}
			}},
		{name: "arrays replace", main: "[network]\nbin_dirs = [\"/a\", \"/b\", \"/c\"]\n",
			dropIns: map[string]string{"10.toml": "[network]\nbin_dirs = [\"/d\"]\n"},
			check: func(t *testing.T, c Config) {
				if !reflect.DeepEqual(c.Network.BinDirs, []string{"/d"}) {
					t.Errorf("bin_dirs = %q, want [/d]", c.Network.BinDirs)
				}
			}},
		{name: "other files ignored", dropIns: map[string]string{
			"10.toml.bak":  "[log]\nlevel = \"loud\"\n",
			".20.toml.swp": "garbage",
			".30.toml":     "garbage",
			"README":       "not toml",
		}, check: func(t *testing.T, c Config) {
			if c.Log.Level != "info" {
				t.Errorf("log.level = %q", c.Log.Level)
			}
		}},
		{name: "cgroup parent follows a driver set in another file", main: "[runtime]\ncgroup_driver = \"systemd\"\n",
			dropIns: map[string]string{"10.toml": "[log]\nlevel = \"debug\"\n"},
			check: func(t *testing.T, c Config) {
				if c.Runtime.CgroupParent != "crib.slice" {
					t.Errorf("cgroup_parent = %q", c.Runtime.CgroupParent)
				}
			}},
		{name: "a drop-in completes the main file", main: "[runtime]\ncgroup_parent = \"kubepods.slice\"\n",
			dropIns: map[string]string{"10.toml": "[runtime]\ncgroup_driver = \"systemd\"\n"},
			check: func(t *testing.T, c Config) {
				if c.Runtime.CgroupParent != "kubepods.slice" || c.Runtime.CgroupDriver != "systemd" {
					t.Errorf("runtime = %+v", c.Runtime)
				}
			}},
		{name: "unknown key names file and key", main: "", dropIns: map[string]string{
			"10-ok.toml":  "[log]\nlevel = \"debug\"\n",
			"20-bad.toml": "[log]\nlevle = \"debug\"\n",
		}, wantErr: []string{"DIR/crib.d/20-bad.toml", `unknown key "log.levle"`}},
		{name: "wrong type names file and key", main: "[runtime]\nshm_size = 1\n",
			dropIns: map[string]string{"10-shm.toml": "[runtime]\nshm_size = \"big\"\n"},
			wantErr: []string{"DIR/crib.d/10-shm.toml", "runtime.shm_size"}},
		{name: "syntax error names file and line", dropIns: map[string]string{"10.toml": "[log]\nlevel = \n"},
			wantErr: []string{"DIR/crib.d/10.toml", "line 2"}},
		{name: "bad value names the file that set it", main: "[log]\nformat = \"json\"\n",
			dropIns: map[string]string{"10.toml": "[log]\nformat = \"xml\"\n", "20.toml": "[log]\nlevel = \"debug\"\n"},
			wantErr: []string{"config DIR/crib.d/10.toml: ", `key "log.format"`}},
		{name: "bad value in the main file", main: "[log]\nformat = \"xml\"\n",
			dropIns: map[string]string{"10.toml": "[log]\nlevel = \"debug\"\n"},
			wantErr: []string{"config DIR/crib.toml: ", `key "log.format"`}},
		{name: "a combination names the file of the key", main: "[runtime]\ncgroup_parent = \"/crib\"\n",
			dropIns: map[string]string{"10.toml": "[runtime]\ncgroup_driver = \"systemd\"\n"},
			wantErr: []string{"config DIR/crib.toml: ", `key "runtime.cgroup_parent"`}},
		{name: "half a TLS pair in a drop-in", dropIns: map[string]string{"10.toml": "[streaming]\ntls_cert_file = \"/etc/crib/s.crt\"\n"},
			wantErr: []string{`key "streaming.tls_key_file"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			main := filepath.Join(dir, "crib.toml")
			if tc.main != "" {
				writeFile(t, main, tc.main)
			}
			if tc.dropIns != nil {
				if err := os.Mkdir(filepath.Join(dir, DropInDirName), 0o755); err != nil {
					t.Fatal(err)
				}
				for name, body := range tc.dropIns {
					writeFile(t, filepath.Join(dir, DropInDirName, name), body)
				}
			}
			c, _, err := LoadSources(Sources{Main: main, MainOptional: true})
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				tc.check(t, c)
				return
			}
			if err == nil {
				t.Fatalf("no error, want one containing %q", tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if want = strings.ReplaceAll(want, "DIR", dir); !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// TestSourcesFiles: which files are read, and what may be missing.
func TestSourcesFiles(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "crib.toml")
	writeFile(t, main, "")
	other := filepath.Join(dir, "other.d")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(other, "b.toml"), "")
	writeFile(t, filepath.Join(other, "a.toml"), "")
	if err := os.Mkdir(filepath.Join(other, "c.toml"), 0o755); err != nil { // a directory: skipped
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(other, "a.toml"), filepath.Join(other, "d.toml")); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "none")
	tests := []struct {
		name    string
		src     Sources
		want    []string
		wantErr bool
	}{
		{name: "default dir missing is fine", src: Sources{Main: main}, want: []string{main}},
		{name: "configured dir", src: Sources{Main: main, DropInDir: other}, want: []string{
			main, filepath.Join(other, "a.toml"), filepath.Join(other, "b.toml"), filepath.Join(other, "d.toml"),
		}},
		{name: "required dir missing", src: Sources{Main: main, DropInDir: missing, DropInDirRequired: true}, wantErr: true},
		{name: "optional main missing", src: Sources{Main: filepath.Join(missing, "crib.toml"), MainOptional: true}, want: nil},
		{name: "explicit main missing", src: Sources{Main: filepath.Join(missing, "crib.toml")}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.src.Files()
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestJSON: the effective config as Status(verbose) shows it, with the
// TOML key names.
func TestJSON(t *testing.T) {
	c := Default()
	c.Log.Level = "debug"
	data, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := json.Unmarshal(data, &tree); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	if tree["root_dir"] != "/var/lib/crib" {
		t.Errorf("root_dir = %v", tree["root_dir"])
	}
	log, _ := tree["log"].(map[string]any)
	if log["level"] != "debug" {
		t.Errorf("log = %v", tree["log"])
	}
	overlay, _ := tree["network"].(map[string]any)["overlay"].(map[string]any)
	if overlay["vtep_name"] != "flannel.1" {
		t.Errorf("network.overlay = %v", overlay)
	}
}

func TestErrorKey(t *testing.T) {
	for msg, want := range map[string]string{
		`key "log.level": "x" is not one of`: "log.level",
		`unknown key "x"`:                    "",
		`key log.level`:                      "",
	} {
		if got := errorKey(errorString(msg)); got != want {
			t.Errorf("errorKey(%q) = %q, want %q", msg, got, want)
		}
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
