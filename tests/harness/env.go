// Package harness runs a real cribd on throwaway directories for the
// integration and end-to-end tests, drives it with the real crictl and
// checks that nothing a test created outlives it.
//
// Binaries: cribd, crib-shim and crib-pause from $CRIB_BIN_DIR (default
// <repo>/bin); crictl from $CRICTL (default the cache
// scripts/build-cri-tools.sh fills under $CRIB_TOOLS_DIR). CRIB_IT_KEEP=1
// (or CRIB_E2E_KEEP=1) keeps each test's temp dir.
package harness

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// StdCNIDir is where Debian's containernetworking-plugins are.
const StdCNIDir = "/usr/lib/cni"

// RepoDir is the repository's top directory.
func RepoDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// ToolsDir is the cache of built tools ($CRIB_TOOLS_DIR).
func ToolsDir() string {
	if d := os.Getenv("CRIB_TOOLS_DIR"); d != "" {
		return d
	}
	return "/var/cache/crib/tools"
}

// BinDir is where cribd, crib-shim and crib-pause are.
func BinDir() string {
	if d := os.Getenv("CRIB_BIN_DIR"); d != "" {
		return d
	}
	return filepath.Join(RepoDir(), "bin")
}

// CrictlPath is the crictl binary.
func CrictlPath() string {
	if p := os.Getenv("CRICTL"); p != "" {
		return p
	}
	return filepath.Join(ToolsDir(), "cri-tools-v1.36.0", "crictl")
}

// RequireEnv says why a cribd cannot run here, if it cannot: not root, or
// no cribd or crictl.
func RequireEnv() error {
	if os.Geteuid() != 0 {
		return errors.New("the tests need root")
	}
	for _, b := range []string{"cribd", "crib-shim", "crib-pause"} {
		if _, err := os.Stat(filepath.Join(BinDir(), b)); err != nil {
			return fmt.Errorf("%w (run make build, or set CRIB_BIN_DIR)", err)
		}
	}
	if _, err := os.Stat(CrictlPath()); err != nil {
		return fmt.Errorf("%w (run scripts/build-cri-tools.sh, or set CRICTL)", err)
	}
	return nil
}

// keepDirs tells whether the user asked to keep the temp dirs.
func keepDirs() bool {
	return os.Getenv("CRIB_IT_KEEP") != "" || os.Getenv("CRIB_E2E_KEEP") != ""
}

// RandomHex is n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Eventually polls cond every 100ms until it returns true or timeout
// passes, then fails the test with the last reason cond gave.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %s", what, timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FreeAddr is a loopback address with a port nobody listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// FreeAddrOn is "ip:port" with a port nobody listens on right now on ip,
// an address of this network namespace.
func FreeAddrOn(t testing.TB, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// FreePort is a loopback TCP port nobody listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ReadFile is the file's contents, or "" when it cannot be read.
func ReadFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// RemoveFile removes path; a missing file is no error.
func RemoveFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// IsClosed tells whether c is closed, without blocking.
func IsClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// ProcStatus returns the fields of the line of /proc/<pid>/status that
// starts with key (e.g. "Uid:"), without the key, and fails t if there is
// none.
func ProcStatus(t testing.TB, pid int, key string) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == key {
			return f[1:]
		}
	}
	t.Fatalf("/proc/%d/status has no %s line", pid, key)
	return nil
}

// ProcessName is /proc/<pid>/comm, or the base of /proc/<pid>/exe when
// that is one of crib's (a re-exec through /proc/self/exe leaves comm "exe").
func ProcessName(pid int) string {
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
		base := filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
		if base == "crib-shim" || base == "crib-pause" {
			return base
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
