package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		wantErr string // substring; empty means success
		check   func(t *testing.T, c Config)
	}{
		{name: "empty file keeps defaults", toml: "", check: func(t *testing.T, c Config) {
			if c.GRPC.Socket != "/run/crib/crib.sock" || c.Runtime.CgroupDriver != "cgroupfs" {
				t.Errorf("defaults changed: %+v", c)
			}
		}},
		{name: "override", toml: "root_dir = \"/tmp/x\"\n[log]\nlevel = \"debug\"\n", check: func(t *testing.T, c Config) {
			if c.RootDir != "/tmp/x" || c.Log.Level != "debug" || c.RunDir != "/run/crib" {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "unknown top-level key", toml: "rootdir = \"/x\"\n", wantErr: `unknown key "rootdir"`},
		{name: "unknown nested key", toml: "[network]\nconfdir = \"/x\"\n", wantErr: `unknown key "network.confdir"`},
		{name: "bad level", toml: "[log]\nlevel = \"loud\"\n", wantErr: `"log.level"`},
		{name: "bad driver", toml: "[runtime]\ncgroup_driver = \"v2\"\n", wantErr: `"runtime.cgroup_driver"`},
		{name: "cgroupfs default parent", toml: "", check: func(t *testing.T, c Config) {
			if c.Runtime.CgroupParent != "/crib" {
				t.Errorf("cgroup_parent = %q, want /crib", c.Runtime.CgroupParent)
			}
		}},
		{name: "systemd default parent", toml: "[runtime]\ncgroup_driver = \"systemd\"\n", check: func(t *testing.T, c Config) {
			if c.Runtime.CgroupParent != "crib.slice" {
				t.Errorf("cgroup_parent = %q, want crib.slice", c.Runtime.CgroupParent)
			}
		}},
		{name: "systemd slice parent", toml: "[runtime]\ncgroup_driver = \"systemd\"\ncgroup_parent = \"kubepods-besteffort.slice\"\n", check: func(t *testing.T, c Config) {}},
		{name: "path parent under systemd", toml: "[runtime]\ncgroup_driver = \"systemd\"\ncgroup_parent = \"/crib\"\n", wantErr: `key "runtime.cgroup_parent": "/crib" is a path, but the cgroup driver is systemd`},
		{name: "slice parent under cgroupfs", toml: "[runtime]\ncgroup_parent = \"crib.slice\"\n", wantErr: `key "runtime.cgroup_parent": "crib.slice" is a systemd slice, but the cgroup driver is cgroupfs`},
		{name: "relative parent under cgroupfs", toml: "[runtime]\ncgroup_parent = \"crib\"\n", wantErr: `key "runtime.cgroup_parent": "crib" is not a clean absolute path`},
		{name: "relative path", toml: "run_dir = \"run\"\n", wantErr: `"run_dir"`},
		{name: "wrong type", toml: "[runtime]\nshm_size = \"big\"\n", wantErr: "shm_size"},
		{name: "negative shm", toml: "[runtime]\nshm_size = -1\n", wantErr: `"runtime.shm_size"`},
		{name: "pod default sysctls on by default", toml: "", check: func(t *testing.T, c Config) {
			if !c.Runtime.PodDefaultSysctls {
				t.Errorf("runtime.pod_default_sysctls defaults to false")
			}
		}},
		{name: "pod default sysctls off", toml: "[runtime]\npod_default_sysctls = false\n", check: func(t *testing.T, c Config) {
			if c.Runtime.PodDefaultSysctls {
				t.Errorf("runtime.pod_default_sysctls = false not applied")
			}
		}},
		{name: "pod default sysctls not a bool", toml: "[runtime]\npod_default_sysctls = \"no\"\n", wantErr: "pod_default_sysctls"},
		{name: "empty bin dirs", toml: "[network]\nbin_dirs = []\n", wantErr: `"network.bin_dirs"`},
		{name: "image defaults", toml: "", check: func(t *testing.T, c Config) {
			if c.Image.StorageDriver != "overlay" || c.Image.ProgressTimeout().Minutes() != 5 || c.Image.RegistriesConf != "" {
				t.Errorf("image defaults: %+v", c.Image)
			}
		}},
		{name: "image section", toml: "[image]\nregistries_conf = \"/etc/r.conf\"\nauth_file = \"/etc/auth.json\"\npinned_images = [\"busybox\"]\npull_progress_timeout = \"0\"\n", check: func(t *testing.T, c Config) {
			if c.Image.RegistriesConf != "/etc/r.conf" || c.Image.AuthFile != "/etc/auth.json" || len(c.Image.PinnedImages) != 1 || c.Image.ProgressTimeout() != 0 {
				t.Errorf("got %+v", c.Image)
			}
		}},
		{name: "bad storage driver", toml: "[image]\nstorage_driver = \"btrfs\"\n", wantErr: `"image.storage_driver"`},
		{name: "relative registries conf", toml: "[image]\nregistries_conf = \"r.conf\"\n", wantErr: `"image.registries_conf"`},
		{name: "relative auth file", toml: "[image]\nauth_file = \"a.json\"\n", wantErr: `"image.auth_file"`},
		{name: "bad progress timeout", toml: "[image]\npull_progress_timeout = \"soon\"\n", wantErr: `"image.pull_progress_timeout"`},
		{name: "negative progress timeout", toml: "[image]\npull_progress_timeout = \"-1s\"\n", wantErr: `"image.pull_progress_timeout"`},
		{name: "blank pinned image", toml: "[image]\npinned_images = [\"\"]\n", wantErr: `"image.pinned_images"`},
		{name: "unknown image key", toml: "[image]\nmirrors = []\n", wantErr: `unknown key "image.mirrors"`},
		{name: "run dir too long for shim sockets", toml: "run_dir = \"/tmp/" + strings.Repeat("x", 40) + "\"\n", wantErr: `"run_dir"`},
		{name: "streaming defaults", toml: "", check: func(t *testing.T, c Config) {
			if c.Streaming.Address != "127.0.0.1" || c.Streaming.Port != 0 {
				t.Errorf("streaming defaults: %+v", c.Streaming)
			}
		}},
		{name: "streaming section", toml: "[streaming]\naddress = \"::1\"\nport = 10010\n", check: func(t *testing.T, c Config) {
			if c.Streaming.Address != "::1" || c.Streaming.Port != 10010 {
				t.Errorf("got %+v", c.Streaming)
			}
		}},
		{name: "streaming address not an IP", toml: "[streaming]\naddress = \"localhost\"\n", wantErr: `"streaming.address"`},
		{name: "streaming address empty", toml: "[streaming]\naddress = \"\"\n", wantErr: `"streaming.address"`},
		{name: "streaming port negative", toml: "[streaming]\nport = -1\n", wantErr: `"streaming.port"`},
		{name: "streaming port too big", toml: "[streaming]\nport = 65536\n", wantErr: `"streaming.port"`},
		{name: "unknown streaming key", toml: "[streaming]\ntls = true\n", wantErr: `unknown key "streaming.tls"`},
		{name: "streaming TLS and idle timeout", toml: "[streaming]\ntls_cert_file = \"/etc/crib/s.crt\"\ntls_key_file = \"/etc/crib/s.key\"\nidle_timeout = \"30s\"\n", check: func(t *testing.T, c Config) {
			if !c.Streaming.TLS() || c.Streaming.Idle().Seconds() != 30 {
				t.Errorf("got %+v", c.Streaming)
			}
		}},
		{name: "streaming idle timeout default", toml: "", check: func(t *testing.T, c Config) {
			if c.Streaming.TLS() || c.Streaming.Idle().Hours() != 4 {
				t.Errorf("got %+v", c.Streaming)
			}
		}},
		{name: "streaming cert without key", toml: "[streaming]\ntls_cert_file = \"/etc/crib/s.crt\"\n", wantErr: `key "streaming.tls_key_file": must be set with streaming.tls_cert_file`},
		{name: "streaming key without cert", toml: "[streaming]\ntls_key_file = \"/etc/crib/s.key\"\n", wantErr: `key "streaming.tls_cert_file": must be set with streaming.tls_key_file`},
		{name: "streaming relative cert", toml: "[streaming]\ntls_cert_file = \"s.crt\"\ntls_key_file = \"/etc/crib/s.key\"\n", wantErr: `key "streaming.tls_cert_file"`},
		{name: "streaming client CA without TLS", toml: "[streaming]\ntls_client_ca_file = \"/etc/crib/ca.crt\"\n", wantErr: `key "streaming.tls_client_ca_file"`},
		{name: "streaming relative client CA", toml: "[streaming]\ntls_cert_file = \"/etc/crib/s.crt\"\ntls_key_file = \"/etc/crib/s.key\"\ntls_client_ca_file = \"ca.crt\"\n", wantErr: `key "streaming.tls_client_ca_file"`},
		{name: "streaming bad idle timeout", toml: "[streaming]\nidle_timeout = \"forever\"\n", wantErr: `key "streaming.idle_timeout"`},
		{name: "streaming negative idle timeout", toml: "[streaming]\nidle_timeout = \"-1s\"\n", wantErr: `key "streaming.idle_timeout"`},
		{name: "metrics off by default", toml: "", check: func(t *testing.T, c Config) {
			if c.Metrics.Address != "" {
				t.Errorf("metrics default: %+v", c.Metrics)
			}
		}},
		{name: "metrics section", toml: "[metrics]\naddress = \"127.0.0.1:9090\"\n", check: func(t *testing.T, c Config) {
			if c.Metrics.Address != "127.0.0.1:9090" {
				t.Errorf("got %+v", c.Metrics)
			}
		}},
		{name: "metrics on a free IPv6 port", toml: "[metrics]\naddress = \"[::1]:0\"\n", check: func(t *testing.T, c Config) {
			if c.Metrics.Address != "[::1]:0" {
				t.Errorf("got %+v", c.Metrics)
			}
		}},
		{name: "metrics address without port", toml: "[metrics]\naddress = \"127.0.0.1\"\n", wantErr: `"metrics.address"`},
		{name: "metrics address host name", toml: "[metrics]\naddress = \"localhost:9090\"\n", wantErr: `"metrics.address"`},
		{name: "metrics address no host", toml: "[metrics]\naddress = \":9090\"\n", wantErr: `"metrics.address"`},
		{name: "metrics port not a number", toml: "[metrics]\naddress = \"127.0.0.1:http\"\n", wantErr: `"metrics.address"`},
		{name: "metrics port too big", toml: "[metrics]\naddress = \"127.0.0.1:65536\"\n", wantErr: `"metrics.address"`},
		{name: "unknown metrics key", toml: "[metrics]\npath = \"/m\"\n", wantErr: `unknown key "metrics.path"`},
		{name: "nri off by default", toml: "", check: func(t *testing.T, c Config) {
			if c.NRI.Enable || c.NRI.SocketPath != "/var/run/nri/nri.sock" || c.NRI.RequestTimeout().Seconds() != 2 || c.NRI.RegistrationTimeout().Seconds() != 5 {
				t.Errorf("nri defaults: %+v", c.NRI)
			}
		}},
		{name: "nri section", toml: "[nri]\nenable = true\nsocket_path = \"/run/nri.sock\"\nplugin_path = \"/p\"\nplugin_config_path = \"/c\"\nplugin_request_timeout = \"500ms\"\n", check: func(t *testing.T, c Config) {
			if !c.NRI.Enable || c.NRI.SocketPath != "/run/nri.sock" || c.NRI.PluginPath != "/p" || c.NRI.PluginConfigPath != "/c" || c.NRI.RequestTimeout().Milliseconds() != 500 {
				t.Errorf("got %+v", c.NRI)
			}
		}},
		{name: "nri relative socket", toml: "[nri]\nsocket_path = \"nri.sock\"\n", wantErr: `"nri.socket_path"`},
		{name: "nri socket too long", toml: "[nri]\nsocket_path = \"/" + strings.Repeat("x", 110) + "\"\n", wantErr: `"nri.socket_path"`},
		{name: "nri relative plugin path", toml: "[nri]\nplugin_path = \"plugins\"\n", wantErr: `"nri.plugin_path"`},
		{name: "nri empty plugin config path", toml: "[nri]\nplugin_config_path = \"\"\n", wantErr: `"nri.plugin_config_path"`},
		{name: "nri zero request timeout", toml: "[nri]\nplugin_request_timeout = \"0s\"\n", wantErr: `"nri.plugin_request_timeout"`},
		{name: "nri bad registration timeout", toml: "[nri]\nplugin_registration_timeout = \"soon\"\n", wantErr: `"nri.plugin_registration_timeout"`},
		{name: "unknown nri key", toml: "[nri]\ndisable = true\n", wantErr: `unknown key "nri.disable"`},
		{name: "syntax error", toml: "root_dir = \n", wantErr: "line 1"},
		{name: "runtime handler", toml: "[runtime.handlers.crun]\nruntime_path = \"/usr/bin/crun\"\nuser_namespaces = true\n", check: func(t *testing.T, c Config) {
			h, ok := c.Runtime.Handlers["crun"]
			if !ok || h.RuntimePath != "/usr/bin/crun" || h.UserNamespaces == nil || !*h.UserNamespaces || h.RecursiveReadOnlyMounts != nil {
				t.Errorf("got %+v", c.Runtime.Handlers)
			}
			if got := h.Root(c.RunDir, "crun"); got != "/run/crib/runtimes/crun" {
				t.Errorf("default root %q", got)
			}
		}},
		{name: "handler with root", toml: "[runtime.handlers.runc]\nruntime_type = \"oci\"\nruntime_path = \"runc\"\nruntime_root = \"/run/runc-crib\"\n", check: func(t *testing.T, c Config) {
			if got := c.Runtime.Handlers["runc"].Root(c.RunDir, "runc"); got != "/run/runc-crib" {
				t.Errorf("root %q", got)
			}
		}},
		{name: "handler without path", toml: "[runtime.handlers.crun]\n", wantErr: `key "runtime.handlers.crun.runtime_path"`},
		{name: "handler bad name", toml: "[runtime.handlers.Crun_1]\nruntime_path = \"crun\"\n", wantErr: `key "runtime.handlers.Crun_1": "Crun_1" is not a DNS label`},
		{name: "handler bad type", toml: "[runtime.handlers.kata]\nruntime_path = \"kata\"\nruntime_type = \"shimv2\"\n", wantErr: `key "runtime.handlers.kata.runtime_type"`},
		{name: "handler relative root", toml: "[runtime.handlers.crun]\nruntime_path = \"crun\"\nruntime_root = \"state\"\n", wantErr: `key "runtime.handlers.crun.runtime_root"`},
		{name: "handler unknown key", toml: "[runtime.handlers.crun]\nruntime_path = \"crun\"\nprivileged_without_host_devices = true\n", wantErr: `unknown key "runtime.handlers.crun.privileged_without_host_devices"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			err := Parse([]byte(tc.toml), &c)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				tc.check(t, c)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.toml")
	if _, err := Load(missing, true); err != nil {
		t.Fatalf("missing default file must be fine: %v", err)
	}
	if _, err := Load(missing, false); err == nil {
		t.Fatal("missing explicit file must be an error")
	}
}

func TestStringRoundTrip(t *testing.T) {
	c := Default()
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte(c.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, false)
	if err != nil {
		t.Fatalf("printed config does not load back: %v\n%s", err, c.String())
	}
	if got.String() != c.String() {
		t.Fatalf("round trip changed config:\n%s\nvs\n%s", got.String(), c.String())
	}
}
