package pod

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/crib-runtime/crib/api/state"
)

// hostResolvConf is read when a pod gives no DNS config, as kubelet expects
// for pods with dnsPolicy Default when it passes nothing.
const hostResolvConf = "/etc/resolv.conf"

// renderResolvConf renders resolv.conf(5) from the pod's DNS config.
func renderResolvConf(dns state.DNS) []byte {
	var b strings.Builder
	if len(dns.Searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.Searches, " "))
	}
	for _, s := range dns.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(dns.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.Options, " "))
	}
	return []byte(b.String())
}

// renderHosts renders the pod's /etc/hosts: loopback names and its hostname.
func renderHosts(hostname string, ips []string) []byte {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	if hostname != "" {
		for _, ip := range ips {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	return []byte(b.String())
}

// writePodFiles writes hostname and resolv.conf into dir. A pod with no DNS
// config gets the host's resolv.conf. (hosts waits for the pod's IPs: see
// writeHostsFile.)
func writePodFiles(dir string, rec *state.Sandbox) error {
	resolv := renderResolvConf(rec.DNS)
	if len(resolv) == 0 {
		data, err := os.ReadFile(hostResolvConf)
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("read host %s: %w", hostResolvConf, err)
		}
		resolv = data
	}
	files := map[string][]byte{
		state.ResolvConfFile: resolv,
		state.HostnameFile:   []byte(rec.Hostname + "\n"),
	}
	for name, data := range files {
		// Plain writes: these files are rewritten from the record by every
		// Run, and a pod whose Run did not finish is never started again.
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("write pod file: %w", err)
		}
	}
	return nil
}

// writeHostsFile writes the pod's hosts file into dir once its IPs are
// known: the host's own for a host-network pod.
func writeHostsFile(dir string, rec *state.Sandbox) error {
	hosts := renderHosts(rec.Hostname, rec.IPs)
	if rec.NetworkMode == state.NamespaceNode {
		if data, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = data
		}
	}
	if err := os.WriteFile(filepath.Join(dir, state.HostsFile), hosts, 0o644); err != nil {
		return fmt.Errorf("write pod hosts file: %w", err)
	}
	return nil
}
