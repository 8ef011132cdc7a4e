// Package apparmor is cribd's view of the node's AppArmor: whether the
// kernel enforces it, which profiles are loaded, and crib's default profile
// (crib-default), rendered from a template and loaded once at start with
// apparmor_parser. Choosing a container's profile from its CRI request is
// sandbox/ocispec's job; this package only answers questions about the host.
package apparmor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Paths are the host files the package reads and the parser it runs; tests
// point them into a temporary directory.
type Paths struct {
	// Enabled is the kernel module's switch: "Y" when AppArmor enforces.
	Enabled string
	// Profiles lists the loaded profiles, one "name (mode)" a line.
	Profiles string
	// PolicyDir holds the distribution's policy includes (tunables,
	// abstractions, abi).
	PolicyDir string
	// Current is cribd's own confinement (/proc/self/attr/current).
	Current string
	// Parser is apparmor_parser; empty means look it up in $PATH, /sbin
	// and /usr/sbin.
	Parser string
}

// HostPaths are the real locations.
func HostPaths() Paths {
	return Paths{
		Enabled:   "/sys/module/apparmor/parameters/enabled",
		Profiles:  "/sys/kernel/security/apparmor/profiles",
		PolicyDir: "/etc/apparmor.d",
		Current:   "/proc/self/attr/current",
	}
}

// Host answers questions about the node's AppArmor. The zero Host is a
// node without AppArmor.
type Host struct {
	enabled  bool
	profiles string
}

// Enabled says whether the kernel enforces AppArmor and crib's default
// profile is loaded.
func (h *Host) Enabled() bool { return h != nil && h.enabled }

// Loaded says whether a profile named name is loaded in the kernel.
func (h *Host) Loaded(name string) (bool, error) {
	if !h.Enabled() {
		return false, nil
	}
	return profileLoaded(h.profiles, name)
}

// ErrDisabled is returned by Setup when the node has no usable AppArmor;
// the error says why.
var ErrDisabled = errors.New("AppArmor is not enabled")

// Setup finds out whether the node enforces AppArmor and, when it does,
// loads crib's default profile from <runDir>/apparmor/crib-default: written
// fresh and loaded with `apparmor_parser -Kr`, unless the file already
// holds the same text and the profile is loaded (a cribd restart). On a
// node without AppArmor it returns a Host that is not Enabled and an error
// wrapping ErrDisabled that says why (cribd logs it and goes on); any other
// error means AppArmor is on but crib cannot load its profile.
func Setup(p Paths, runDir string) (*Host, error) {
	parser, err := detect(p)
	if err != nil {
		return &Host{}, err
	}
	current, _ := os.ReadFile(p.Current) // unreadable: unconfined
	text, err := renderProfile(p.PolicyDir, string(current))
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(runDir, "apparmor")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("AppArmor profile directory: %w", err)
	}
	file := filepath.Join(dir, DefaultProfile)
	h := &Host{enabled: true, profiles: p.Profiles}
	if have, err := os.ReadFile(file); err == nil && bytes.Equal(have, text) {
		if ok, err := profileLoaded(p.Profiles, DefaultProfile); err == nil && ok {
			return h, nil
		}
	}
	if err := os.WriteFile(file, text, 0o600); err != nil {
		return nil, fmt.Errorf("write AppArmor profile: %w", err)
	}
	if out, err := exec.Command(parser, "-Kr", file).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("load AppArmor profile %s (%s -Kr %s): %w: %s", DefaultProfile, parser, file, err, strings.TrimSpace(string(out)))
	}
	return h, nil
}

// detect checks the kernel's switch, the profiles list and the parser, and
// returns the parser's path.
func detect(p Paths) (string, error) {
	b, err := os.ReadFile(p.Enabled)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: the kernel has no AppArmor module (%s)", ErrDisabled, p.Enabled)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrDisabled, err)
	}
	if !bytes.HasPrefix(b, []byte("Y")) {
		return "", fmt.Errorf("%w: the kernel's AppArmor is switched off (%s is %q)", ErrDisabled, p.Enabled, strings.TrimSpace(string(b)))
	}
	if _, err := os.Stat(p.Profiles); err != nil {
		return "", fmt.Errorf("%w: the loaded profiles cannot be listed (is securityfs mounted?): %v", ErrDisabled, err)
	}
	if p.Parser != "" {
		return p.Parser, nil
	}
	if path, err := exec.LookPath("apparmor_parser"); err == nil {
		return path, nil
	}
	for _, path := range []string{"/sbin/apparmor_parser", "/usr/sbin/apparmor_parser"} {
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("%w: the kernel enforces AppArmor but apparmor_parser is not installed (Debian: apt-get install apparmor)", ErrDisabled)
}

// profileLoaded reads the kernel's list of loaded profiles for name.
func profileLoaded(list, name string) (bool, error) {
	f, err := os.Open(list)
	if err != nil {
		return false, fmt.Errorf("loaded AppArmor profiles: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.LastIndex(line, " ("); i >= 0 {
			line = line[:i]
		}
		if line == name {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("loaded AppArmor profiles: %w", err)
	}
	return false, nil
}
