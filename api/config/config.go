// Package config holds cribd's configuration schema: one TOML file whose every
// key has a built-in default, so cribd runs with no file at all.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where cribd looks for its config file when --config is not given.
const DefaultPath = "/etc/crib/crib.toml"

// Config is cribd's whole configuration.
type Config struct {
	// RootDir holds persistent state (pod records, pod files).
	RootDir string `toml:"root_dir"`
	// RunDir holds state that dies with the machine (shim sockets, namespace pins).
	RunDir string `toml:"run_dir"`

	GRPC    GRPC    `toml:"grpc"`
	Log     Log     `toml:"log"`
	Runtime Runtime `toml:"runtime"`
	Network Network `toml:"network"`
}

// GRPC configures the CRI endpoint.
type GRPC struct {
	// Socket is the unix socket path kubelet and crictl connect to.
	Socket string `toml:"socket"`
	// SocketGroup, if set, is the group owning the socket (mode 0660).
	SocketGroup string `toml:"socket_group"`
}

// Log configures logrus.
type Log struct {
	// Level is one of trace, debug, info, warn, error.
	Level string `toml:"level"`
	// Format is text or json.
	Format string `toml:"format"`
}

// Runtime configures how pods and containers are run.
type Runtime struct {
	// CgroupDriver is cgroupfs or systemd.
	CgroupDriver string `toml:"cgroup_driver"`
	// CgroupParent is the cgroup parent for pods whose request names none.
	CgroupParent string `toml:"cgroup_parent"`
	// ShimBinary is the crib-shim executable; empty means next to cribd, then $PATH.
	ShimBinary string `toml:"shim_binary"`
	// PauseBinary is the crib-pause executable; empty means next to cribd, then $PATH.
	PauseBinary string `toml:"pause_binary"`
	// PauseImage, if set, is reported as the sandbox image and pinned.
	PauseImage string `toml:"pause_image"`
	// NetNSDir is where network namespaces are pinned.
	NetNSDir string `toml:"netns_dir"`
	// ShmSize is the size of each pod's /dev/shm in bytes.
	ShmSize int64 `toml:"shm_size"`
}

// Network configures CNI.
type Network struct {
	// ConfDir holds CNI network configs; the first by name is used.
	ConfDir string `toml:"conf_dir"`
	// BinDirs are searched for CNI plugin executables, in order.
	BinDirs []string `toml:"bin_dirs"`
	// CacheDir is libcni's result cache.
	CacheDir string `toml:"cache_dir"`
}

// Default returns the built-in configuration.
func Default() Config {
	return Config{
		RootDir: "/var/lib/crib",
		RunDir:  "/run/crib",
		GRPC:    GRPC{Socket: "/run/crib/crib.sock"},
		Log:     Log{Level: "info", Format: "text"},
		Runtime: Runtime{
			CgroupDriver: "cgroupfs",
			CgroupParent: "/crib",
			NetNSDir:     "/var/run/netns",
			ShmSize:      64 << 20,
		},
		Network: Network{
			ConfDir:  "/etc/cni/net.d",
			BinDirs:  []string{"/opt/cni/bin", "/usr/lib/cni"},
			CacheDir: "/var/lib/crib/cni-cache",
		},
	}
}

// Load reads the file at path over the defaults. A missing file is not an
// error when allowMissing is set (the default path); an unknown key or a bad
// value is, and the error names the key.
func Load(path string, allowMissing bool) (Config, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		if allowMissing && errors.Is(err, fs.ErrNotExist) {
			return cfg, cfg.Validate()
		}
		return cfg, fmt.Errorf("read config: %w", err)
	}
	if err := Parse(data, &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes TOML data over cfg and validates the result.
func Parse(data []byte, cfg *Config) error {
	md, err := toml.Decode(string(data), cfg)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return fmt.Errorf("%s", perr.Error())
		}
		return err
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, 0, len(undecoded))
		for _, k := range undecoded {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		return fmt.Errorf("unknown key %q", strings.Join(keys, `", "`))
	}
	return cfg.Validate()
}

// Validate checks every value and names the key of the first bad one.
func (c Config) Validate() error {
	abs := map[string]string{
		"root_dir":          c.RootDir,
		"run_dir":           c.RunDir,
		"grpc.socket":       c.GRPC.Socket,
		"runtime.netns_dir": c.Runtime.NetNSDir,
		"network.conf_dir":  c.Network.ConfDir,
		"network.cache_dir": c.Network.CacheDir,
	}
	keys := make([]string, 0, len(abs))
	for k := range abs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !filepath.IsAbs(abs[k]) {
			return fmt.Errorf("key %q: %q is not an absolute path", k, abs[k])
		}
	}
	switch c.Log.Level {
	case "trace", "debug", "info", "warn", "warning", "error":
	default:
		return fmt.Errorf("key %q: %q is not one of trace, debug, info, warn, error", "log.level", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("key %q: %q is not one of text, json", "log.format", c.Log.Format)
	}
	switch c.Runtime.CgroupDriver {
	case "cgroupfs", "systemd":
	default:
		return fmt.Errorf("key %q: %q is not one of cgroupfs, systemd", "runtime.cgroup_driver", c.Runtime.CgroupDriver)
	}
	if c.Runtime.CgroupParent != "" && !strings.HasPrefix(c.Runtime.CgroupParent, "/") && c.Runtime.CgroupDriver == "cgroupfs" {
		return fmt.Errorf("key %q: %q must start with / for the cgroupfs driver", "runtime.cgroup_parent", c.Runtime.CgroupParent)
	}
	if c.Runtime.ShmSize <= 0 {
		return fmt.Errorf("key %q: %d must be positive", "runtime.shm_size", c.Runtime.ShmSize)
	}
	if len(c.Network.BinDirs) == 0 {
		return fmt.Errorf("key %q: at least one directory is needed", "network.bin_dirs")
	}
	for _, d := range c.Network.BinDirs {
		if !filepath.IsAbs(d) {
			return fmt.Errorf("key %q: %q is not an absolute path", "network.bin_dirs", d)
		}
	}
	return nil
}

// String renders the effective configuration as TOML.
func (c Config) String() string {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return fmt.Sprintf("# cannot encode config: %v\n", err)
	}
	return buf.String()
}
