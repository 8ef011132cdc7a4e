package network

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/internal/nsfs"
)

// Test-only names, chosen not to clash with real networks.
const (
	pluginDir    = "/usr/lib/cni"
	testNetwork  = "crib-test-net"
	ipForwardKey = "/proc/sys/net/ipv4/ip_forward"
)

// The bridge and subnet are this test binary's own, picked from its PID in
// 10.88.90-99 (critest's, e2e's and the integration tests' ranges are
// 10-49, 50-89 and 100-249: tests/harness/network.go), so that two runs of
// these tests, or one beside the other suites, never share them.
var (
	testOctet  = 90 + os.Getpid()%10
	testBridge = fmt.Sprintf("cribut%d", testOctet)
	testPrefix = fmt.Sprintf("10.88.%d.", testOctet)
	testSubnet = testPrefix + "0/24"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func requirePlugins(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(pluginDir, n)); err != nil {
			t.Skipf("CNI plugin %s not installed in %s", n, pluginDir)
		}
	}
}

func randID(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// pinNetNS pins a fresh network namespace in a temp dir, unpinned at
// cleanup. The dir is one of the test's own, not /var/run/netns, so that test
// binaries running at once never share the directory Pin makes a shared
// mount point.
func pinNetNS(t *testing.T) string {
	t.Helper()
	dir := netnsTempDir(t)
	path := filepath.Join(dir, randID(t, "crib-test-"))
	if err := nsfs.Pin(map[nsfs.Type]string{nsfs.Net: path}); err != nil {
		t.Fatalf("pin netns: %v", err)
	}
	t.Cleanup(func() {
		if err := nsfs.Unpin(path); err != nil {
			t.Errorf("unpin: %v", err)
		}
	})
	return path
}

// netnsTempDir returns a temp dir for network namespace pins, whose shared
// bind mount (made by Pin) is undone at cleanup after the pins' Unpin.
func netnsTempDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "netns")
	t.Cleanup(func() {
		if isMountPoint(t, dir) {
			if err := unix.Unmount(dir, 0); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
			}
		}
	})
	return dir
}

func isMountPoint(t *testing.T, dir string) bool {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == real {
			return true
		}
	}
	return false
}

// ping sends ICMP echo requests to ip from the host until one is answered.
func ping(ip net.IP) error {
	c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return err
	}
	defer c.Close()
	id := os.Getpid() & 0xffff
	buf := make([]byte, 1500)
	var lastErr error
	for seq := 1; seq <= 5; seq++ {
		msg := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), 0, byte(seq), 'c', 'r', 'i', 'b'}
		sum := icmpChecksum(msg)
		msg[2], msg[3] = byte(sum>>8), byte(sum)
		if _, err := c.WriteTo(msg, &net.IPAddr{IP: ip}); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				lastErr = err
				break
			}
			// Echo reply (type 0) from ip with our id and seq.
			if n >= 8 && buf[0] == 0 && from.(*net.IPAddr).IP.Equal(ip) &&
				int(buf[4])<<8|int(buf[5]) == id && buf[7] == byte(seq) {
				return nil
			}
		}
	}
	return fmt.Errorf("no echo reply from %s: %v", ip, lastErr)
}

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// iptablesState is the rule set of iptables-save or ip6tables-save, table by
// table, without counters.
type iptablesState map[string][]string

func saveIptables(t *testing.T, cmd string) iptablesState {
	t.Helper()
	out, err := exec.Command(cmd).Output()
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	st := iptablesState{}
	table := ""
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			st[table] = nil
		case strings.HasPrefix(line, ":"):
			st[table] = append(st[table], strings.Fields(line)[0]) // ":CHAIN", no policy counters
		case strings.HasPrefix(line, "-A "):
			st[table] = append(st[table], line)
		}
	}
	return st
}

// diff returns the lines of s not in before, table by table.
func (s iptablesState) diff(before iptablesState) map[string][]string {
	out := map[string][]string{}
	for table, lines := range s {
		for _, l := range lines {
			if !slices.Contains(before[table], l) {
				out[table] = append(out[table], l)
			}
		}
	}
	return out
}

// ours reports whether an iptables line is about the test network: its
// subnet, bridge or name (the plugins' rule comments carry the network
// name). Other suites' CNI-* chains and rules are not ours.
func ours(line string) bool {
	return strings.Contains(line, testPrefix) || strings.Contains(line, testBridge) ||
		strings.Contains(line, `\"`+testNetwork+`\"`) || strings.Contains(line, `"`+testNetwork+`"`)
}

// restoreIptables removes what the plugins added to the tables since before
// and was not removed by DEL: chains created since (portmap's CNI-HOSTPORT-*
// stay for good once made) with the rules that jump to them, and rules
// mentioning the test network. Shared portmap chains are kept if another
// pod's mapping is in them. What is left of ours is reported.
func restoreIptables(t *testing.T, save, restore string, before iptablesState) {
	t.Helper()
	after := saveIptables(t, save)
	for table, added := range after.diff(before) {
		// Chains made since before that are the test's: portmap's shared
		// CNI-HOSTPORT-* (kept below while in use), and chains holding one
		// of our rules or jumped to by one. A chain another suite made
		// meanwhile (its pods' CNI-<hash>) is left alone.
		var chains []string
		for _, l := range added {
			if !strings.HasPrefix(l, ":CNI-") {
				continue
			}
			c := l[1:]
			mine := strings.HasPrefix(c, "CNI-HOSTPORT-") || slices.ContainsFunc(added, func(r string) bool {
				return ours(r) && (strings.HasPrefix(r, "-A "+c+" ") || strings.HasSuffix(r, "-j "+c))
			})
			if mine {
				chains = append(chains, c)
			}
		}
		if slices.Contains(chains, "CNI-HOSTPORT-DNAT") {
			for _, l := range after[table] {
				if strings.HasPrefix(l, "-A CNI-HOSTPORT-DNAT ") {
					t.Logf("%s: CNI-HOSTPORT-DNAT is in use (%s), keeping portmap's chains", save, l)
					chains = slices.DeleteFunc(chains, func(c string) bool { return strings.HasPrefix(c, "CNI-HOSTPORT-") })
					break
				}
			}
		}
		var script bytes.Buffer
		fmt.Fprintf(&script, "*%s\n", table)
		for _, l := range added {
			if !strings.HasPrefix(l, "-A ") {
				continue
			}
			chain := strings.Fields(l)[1]
			jumpsToRemoved := slices.ContainsFunc(chains, func(c string) bool { return strings.HasSuffix(l, "-j "+c) })
			if !slices.Contains(chains, chain) && (jumpsToRemoved || ours(l)) {
				fmt.Fprintf(&script, "-D%s\n", l[2:])
			}
		}
		for _, c := range chains {
			fmt.Fprintf(&script, "-F %s\n", c)
		}
		for _, c := range chains {
			fmt.Fprintf(&script, "-X %s\n", c)
		}
		script.WriteString("COMMIT\n")
		cmd := exec.Command(restore, "--noflush")
		cmd.Stdin = &script
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v: %s\nscript:\n%s", restore, err, out, script.String())
		}
	}
	final := saveIptables(t, save)
	for table, left := range final.diff(before) {
		for _, l := range left {
			if ours(l) {
				t.Errorf("%s %s: left behind: %s", save, table, l)
			}
		}
	}
	// A table that did not exist before and holds nothing was made by the
	// plugins' probing (portmap lists the ip6tables nat table); with the nft
	// backend it stays, so drop it.
	family := map[string]string{"iptables-save": "ip", "ip6tables-save": "ip6"}[save]
	for table, lines := range final {
		if _, existed := before[table]; existed || !onlyBuiltinChains(lines) {
			continue
		}
		if _, err := exec.LookPath("nft"); err != nil {
			continue
		}
		if out, err := exec.Command("nft", "delete", "table", family, table).CombinedOutput(); err != nil {
			t.Logf("nft delete table %s %s: %v: %s", family, table, err, out)
		}
	}
}

func onlyBuiltinChains(lines []string) bool {
	for _, l := range lines {
		switch l {
		case ":PREROUTING", ":INPUT", ":FORWARD", ":OUTPUT", ":POSTROUTING":
		default:
			return false
		}
	}
	return true
}

// bridgeEnv is a conf dir with a bridge+portmap network on testBridge and
// the host state it touches, put back at cleanup.
type bridgeEnv struct {
	m       *Manager
	dataDir string // host-local's, per network
}

func newBridgeEnv(t *testing.T) *bridgeEnv {
	t.Helper()
	requireRoot(t)
	requirePlugins(t, "bridge", "host-local", "portmap")
	if _, err := net.InterfaceByName(testBridge); err == nil {
		t.Fatalf("link %s exists: a previous run leaked it (ip link del %s)", testBridge, testBridge)
	}
	before4 := saveIptables(t, "iptables-save")
	before6 := saveIptables(t, "ip6tables-save")
	forward, err := os.ReadFile(ipForwardKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "link", "del", testBridge).CombinedOutput(); err != nil {
			t.Errorf("delete bridge: %v: %s", err, out)
		}
		restoreIptables(t, "iptables-save", "iptables-restore", before4)
		restoreIptables(t, "ip6tables-save", "ip6tables-restore", before6)
		if err := os.WriteFile(ipForwardKey, forward, 0o644); err != nil {
			t.Errorf("restore ip_forward: %v", err)
		}
	})

	tmp := t.TempDir()
	ipam := filepath.Join(tmp, "ipam")
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}`, testNetwork, testBridge, testSubnet, ipam)
	confDir := filepath.Join(tmp, "net.d")
	writeFile(t, filepath.Join(confDir, "10-crib-test.conflist"), conf)
	m, err := New(Options{ConfDir: confDir, BinDirs: []string{pluginDir}, CacheDir: filepath.Join(tmp, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if ok, msg := m.Ready(); !ok {
		t.Fatalf("not ready: %s", msg)
	}
	return &bridgeEnv{m: m, dataDir: filepath.Join(ipam, testNetwork)}
}

// allocations lists the IPs host-local holds in the test network.
func (e *bridgeEnv) allocations(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(e.dataDir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var ips []string
	for _, en := range entries {
		if net.ParseIP(en.Name()) != nil {
			ips = append(ips, en.Name())
		}
	}
	return ips
}
