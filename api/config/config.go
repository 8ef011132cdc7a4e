// Package config holds cribd's configuration schema: one TOML file whose every
// key has a built-in default, so cribd runs with no file at all.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/crib-runtime/crib/internal/cgroup"
)

// maxSocketPath is the longest path a unix socket address holds (sun_path
// is 108 bytes with the terminating NUL).
const maxSocketPath = 107

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
	Image   Image   `toml:"image"`
	// Streaming is the HTTP server of CRI Exec and PortForward sessions.
	Streaming Streaming `toml:"streaming"`
	// Metrics is the optional Prometheus endpoint.
	Metrics Metrics `toml:"metrics"`
	// CDI is Container Device Interface devices (see cdi.go).
	CDI CDI `toml:"cdi"`
	// NRI lets NRI plugins see and adjust pods and containers.
	NRI NRI `toml:"nri"`
}

// NRI configures the Node Resource Interface (github.com/containerd/nri):
// plugins that connect to a socket, or that cribd starts from a directory,
// see pods' and containers' lifecycle and may adjust containers before they
// are created. Off by default: off, cribd opens no socket, starts no
// goroutine and converts nothing.
type NRI struct {
	// Enable turns NRI on.
	Enable bool `toml:"enable"`
	// SocketPath is where external plugins connect.
	SocketPath string `toml:"socket_path"`
	// PluginPath is a directory of plugins cribd starts itself (files
	// named IDX-NAME, such as 10-logger); a missing directory is none.
	PluginPath string `toml:"plugin_path"`
	// PluginConfigPath holds configuration for the plugins cribd starts
	// (IDX-NAME.conf or NAME.conf).
	PluginConfigPath string `toml:"plugin_config_path"`
	// PluginRegistrationTimeout bounds a plugin's registration (a Go
	// duration such as "5s").
	PluginRegistrationTimeout string `toml:"plugin_registration_timeout"`
	// PluginRequestTimeout bounds each plugin's handling of one event
	// (a Go duration such as "2s").
	PluginRequestTimeout string `toml:"plugin_request_timeout"`
}

// RegistrationTimeout returns PluginRegistrationTimeout parsed; Validate
// has checked it.
func (n NRI) RegistrationTimeout() time.Duration {
	d, _ := time.ParseDuration(n.PluginRegistrationTimeout)
	return d
}

// RequestTimeout returns PluginRequestTimeout parsed; Validate has checked it.
func (n NRI) RequestTimeout() time.Duration {
	d, _ := time.ParseDuration(n.PluginRequestTimeout)
	return d
}

func (n NRI) validate() error {
	for _, kv := range [][2]string{
		{"nri.socket_path", n.SocketPath},
		{"nri.plugin_path", n.PluginPath},
		{"nri.plugin_config_path", n.PluginConfigPath},
	} {
		if !filepath.IsAbs(kv[1]) {
			return fmt.Errorf("key %q: %q is not an absolute path", kv[0], kv[1])
		}
	}
	if len(n.SocketPath) > maxSocketPath {
		return fmt.Errorf("key %q: %q is longer than the %d bytes a unix socket path allows", "nri.socket_path", n.SocketPath, maxSocketPath)
	}
	for _, kv := range [][2]string{
		{"nri.plugin_registration_timeout", n.PluginRegistrationTimeout},
		{"nri.plugin_request_timeout", n.PluginRequestTimeout},
	} {
		if d, err := time.ParseDuration(kv[1]); err != nil || d <= 0 {
			return fmt.Errorf("key %q: %q is not a positive duration such as \"2s\"", kv[0], kv[1])
		}
	}
	return nil
}

// Metrics configures the Prometheus endpoint, served over plain HTTP at
// /metrics without authentication.
type Metrics struct {
	// Address is "ip:port" to listen on; port 0 picks a free one (logged
	// at start). Empty turns the endpoint off.
	Address string `toml:"address"`
}

func (m Metrics) validate() error {
	if m.Address == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(m.Address)
	if err != nil {
		return fmt.Errorf("key %q: %q is not \"ip:port\": %w", "metrics.address", m.Address, err)
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("key %q: %q is not an IP address (write 0.0.0.0 for every interface)", "metrics.address", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("key %q: %q is not a port number (0 picks a free port)", "metrics.address", port)
	}
	return nil
}

// Streaming configures the streaming server. Without TLS the URLs it hands
// out are reached without authentication: keep it on loopback unless the
// network in between is trusted.
type Streaming struct {
	// Address is the IP address it listens on.
	Address string `toml:"address"`
	// Port is the TCP port it listens on; 0 picks a free one at start.
	Port int `toml:"port"`
	// TLSCertFile and TLSKeyFile, both or neither, serve the streaming
	// server over HTTPS with this PEM certificate (chain) and key. They are
	// read at start.
	TLSCertFile string `toml:"tls_cert_file"`
	TLSKeyFile  string `toml:"tls_key_file"`
	// TLSClientCAFile, with TLS, makes clients present a certificate
	// signed by one of these PEM CAs (crictl's --tls-cert); without it any
	// client is served. kubelet, which proxies streams itself, presents
	// none: set it only where crictl alone streams.
	TLSClientCAFile string `toml:"tls_client_ca_file"`
	// IdleTimeout closes a session after this long without data in either
	// direction (a Go duration; "0" never). kubelet's default is the same
	// 4h.
	IdleTimeout string `toml:"idle_timeout"`
}

// TLS reports whether the streaming server serves HTTPS.
func (s Streaming) TLS() bool { return s.TLSCertFile != "" }

// Idle returns IdleTimeout parsed; Validate has checked it.
func (s Streaming) Idle() time.Duration {
	d, _ := time.ParseDuration(s.IdleTimeout)
	return d
}

func (s Streaming) validate() error {
	if net.ParseIP(s.Address) == nil {
		return fmt.Errorf("key %q: %q is not an IP address", "streaming.address", s.Address)
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("key %q: %d is not a port number (0 picks a free port)", "streaming.port", s.Port)
	}
	switch {
	case s.TLSCertFile != "" && s.TLSKeyFile == "":
		return fmt.Errorf("key %q: must be set with %s (%q)", "streaming.tls_key_file", "streaming.tls_cert_file", s.TLSCertFile)
	case s.TLSKeyFile != "" && s.TLSCertFile == "":
		return fmt.Errorf("key %q: must be set with %s (%q)", "streaming.tls_cert_file", "streaming.tls_key_file", s.TLSKeyFile)
	}
	if s.TLSClientCAFile != "" && s.TLSCertFile == "" {
		return fmt.Errorf("key %q: needs streaming.tls_cert_file and streaming.tls_key_file: client certificates are checked over TLS only", "streaming.tls_client_ca_file")
	}
	for _, kv := range [][2]string{{"streaming.tls_cert_file", s.TLSCertFile}, {"streaming.tls_key_file", s.TLSKeyFile}, {"streaming.tls_client_ca_file", s.TLSClientCAFile}} {
		if kv[1] != "" && !filepath.IsAbs(kv[1]) {
			return fmt.Errorf("key %q: %q is not an absolute path", kv[0], kv[1])
		}
	}
	if d, err := time.ParseDuration(s.IdleTimeout); err != nil || d < 0 {
		return fmt.Errorf("key %q: %q is not a non-negative duration such as \"4h\"", "streaming.idle_timeout", s.IdleTimeout)
	}
	return nil
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
	// CgroupParent is the cgroup parent for pods whose request names none:
	// an absolute path under cgroupfs (default /crib), a slice under
	// systemd (default crib.slice).
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
	// PodDefaultSysctls sets containerd 2's defaults in the network
	// namespace of every pod not on the host network:
	// net.ipv4.ip_unprivileged_port_start=0 (a non-root process may listen
	// on port 80) and net.ipv4.ping_group_range="0 2147483647" (ping
	// without CAP_NET_RAW; not for pods with their own user namespace,
	// which cannot map that range). A pod's own sysctls override them.
	PodDefaultSysctls bool `toml:"pod_default_sysctls"`
	// Handlers are the runtime handlers besides the default one (""),
	// by name (see Handler).
	Handlers map[string]Handler `toml:"handlers,omitempty"`
}

// Network configures CNI.
type Network struct {
	// ConfDir holds CNI network configs; the first by name is used.
	ConfDir string `toml:"conf_dir"`
	// BinDirs are searched for CNI plugin executables, in order.
	BinDirs []string `toml:"bin_dirs"`
	// CacheDir is libcni's result cache.
	CacheDir string `toml:"cache_dir"`
	// Overlay is the VXLAN overlay (see overlay.go).
	Overlay Overlay `toml:"overlay"`
}

// Image configures the image service: pulls, the image store and pinning.
type Image struct {
	// StorageDriver is the graph driver of the image store under
	// <root_dir>/storage: overlay (default) or vfs.
	StorageDriver string `toml:"storage_driver"`
	// RegistriesConf is a containers-registries.conf(5) file (mirrors,
	// insecure, blocked and unqualified-search registries); drop-ins are
	// read from "<registries_conf>.d". Empty means the system's
	// /etc/containers/registries.conf.
	RegistriesConf string `toml:"registries_conf"`
	// AuthFile is a docker-config-format credentials file, read per host:
	// the image's registry uses its entry when a pull request carries no
	// credentials, and a mirror or rewritten location (registries_conf)
	// always uses its own entry. A request's credentials go to the image's
	// registry only, never to a mirror. Empty means the libraries' default
	// files (such as $HOME/.docker/config.json).
	AuthFile string `toml:"auth_file"`
	// SignaturePolicy is a containers-policy.json(5) file. Empty accepts
	// every image, as kubelet's other runtimes do by default.
	SignaturePolicy string `toml:"signature_policy"`
	// PinnedImages are never garbage-collected: ImageStatus and ListImages
	// report them pinned. The runtime's pause_image is always pinned.
	PinnedImages []string `toml:"pinned_images"`
	// PullProgressTimeout cancels a pull that makes no progress for this
	// long (a Go duration, e.g. "5m"); "0" disables the watchdog.
	PullProgressTimeout string `toml:"pull_progress_timeout"`
}

// ProgressTimeout returns PullProgressTimeout parsed; Validate has checked it.
func (i Image) ProgressTimeout() time.Duration {
	d, _ := time.ParseDuration(i.PullProgressTimeout)
	return d
}

func (i Image) validate() error {
	switch i.StorageDriver {
	case "overlay", "vfs":
	default:
		return fmt.Errorf("key %q: %q is not one of overlay, vfs", "image.storage_driver", i.StorageDriver)
	}
	for _, kv := range [][2]string{
		{"image.auth_file", i.AuthFile},
		{"image.registries_conf", i.RegistriesConf},
		{"image.signature_policy", i.SignaturePolicy},
	} {
		if kv[1] != "" && !filepath.IsAbs(kv[1]) {
			return fmt.Errorf("key %q: %q is not an absolute path", kv[0], kv[1])
		}
	}
	if d, err := time.ParseDuration(i.PullProgressTimeout); err != nil || d < 0 {
		return fmt.Errorf("key %q: %q is not a non-negative duration such as \"5m\"", "image.pull_progress_timeout", i.PullProgressTimeout)
	}
	for _, name := range i.PinnedImages {
		if strings.TrimSpace(name) == "" || strings.ContainsAny(name, " \t\n") {
			return fmt.Errorf("key %q: %q is not an image reference", "image.pinned_images", name)
		}
	}
	return nil
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
			// The driver's default parent; Parse sets the systemd one
			// when a file chooses systemd and names no parent.
			CgroupParent: cgroup.DefaultParent(cgroup.Cgroupfs),
			NetNSDir:     "/var/run/netns",
			ShmSize:      64 << 20,

			PodDefaultSysctls: true,
		},
		Network: Network{
			ConfDir:  "/etc/cni/net.d",
			BinDirs:  []string{"/opt/cni/bin", "/usr/lib/cni"},
			CacheDir: "/var/lib/crib/cni-cache",
			Overlay:  defaultOverlay(),
		},
		Image: Image{
			StorageDriver:       "overlay",
			PullProgressTimeout: "5m",
		},
		// cri-streaming's own default idle timeout.
		Streaming: Streaming{Address: "127.0.0.1", IdleTimeout: "4h"},
		CDI:       defaultCDI(),
		// containerd's and CRI-O's defaults: one node, one NRI socket.
		NRI: NRI{
			SocketPath:                "/var/run/nri/nri.sock",
			PluginPath:                "/opt/nri/plugins",
			PluginConfigPath:          "/etc/nri/conf.d",
			PluginRegistrationTimeout: "5s",
			PluginRequestTimeout:      "2s",
		},
	}
}

// Load reads the file at path over the defaults, without drop-ins (cribd
// reads those too: LoadSources). A missing file is not an error when
// allowMissing is set (the default path); an unknown key or a bad value is,
// and the error names the key.
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

// Parse decodes TOML data over cfg and validates the result. A file that
// names no runtime.cgroup_parent gets its cgroup driver's default parent.
func Parse(data []byte, cfg *Config) error {
	md, err := decode(data, cfg)
	if err != nil {
		return err
	}
	// The default cgroup parent depends on the driver: /crib under
	// cgroupfs, crib.slice under systemd.
	if !md.IsDefined("runtime", "cgroup_parent") {
		cfg.Runtime.CgroupParent = cgroup.DefaultParent(cgroup.Driver(cfg.Runtime.CgroupDriver))
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
	// Each pod's shim listens on <run_dir>/pods/<64-hex id>/shim.sock, and a
	// unix socket path has room for 107 bytes.
	if n := len(filepath.Clean(c.RunDir)) + len("/pods/") + 64 + len("/shim.sock"); n > maxSocketPath {
		return fmt.Errorf("key %q: %q is too long: pod shim sockets under it would be %d bytes, over the %d a unix socket path allows (use at most %d characters)",
			"run_dir", c.RunDir, n, maxSocketPath, maxSocketPath-(n-len(filepath.Clean(c.RunDir))))
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
	if c.Runtime.CgroupParent != "" {
		if err := cgroup.CheckParent(cgroup.Driver(c.Runtime.CgroupDriver), c.Runtime.CgroupParent); err != nil {
			return fmt.Errorf("key %q: %w", "runtime.cgroup_parent", err)
		}
	}
	if err := c.Runtime.validateHandlers(); err != nil {
		return err
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
	if err := c.Network.Overlay.validate(); err != nil {
		return err
	}
	if err := c.Streaming.validate(); err != nil {
		return err
	}
	if err := c.Metrics.validate(); err != nil {
		return err
	}
	if err := c.CDI.validate(); err != nil {
		return err
	}
	if err := c.NRI.validate(); err != nil {
		return err
	}
	return c.Image.validate()
}

// String renders the effective configuration as TOML.
func (c Config) String() string {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return fmt.Sprintf("# cannot encode config: %v\n", err)
	}
	return buf.String()
}

// JSON renders the effective configuration as JSON with the TOML key
// names, as Status(verbose) reports it (crictl info).
func (c Config) JSON() ([]byte, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	// Through a generic tree, so the JSON keys are the TOML keys without a
	// second set of tags to keep in step.
	var tree map[string]any
	if _, err := toml.Decode(buf.String(), &tree); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return json.Marshal(tree)
}
