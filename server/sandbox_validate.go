package server

import (
	"net/netip"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
)

// Limits the kernel and resolv.conf put on what a pod's files hold.
const (
	// maxHostname is the kernel's HOST_NAME_MAX: sethostname refuses more.
	maxHostname = 64
	// maxDNSName is the longest domain name (RFC 1035), a search entry.
	maxDNSName = 253
	// maxDNSOption is far above any resolv.conf option ("ndots:5").
	maxDNSOption = 256
)

// checkPodFiles validates what crib writes into the pod's hostname, hosts
// and resolv.conf files: each value becomes (part of) one line, so a
// newline or other control character would add lines of the client's
// choosing. The hostname must be one the kernel takes and a name hosts can
// hold; DNS servers must be IP addresses; search domains and options words
// without whitespace.
func checkPodFiles(cfg *runtimeapi.PodSandboxConfig) error {
	if h := cfg.GetHostname(); h != "" {
		if len(h) > maxHostname {
			return errdefs.InvalidArgument("config.hostname %q is longer than %d characters", clip(h), maxHostname)
		}
		for _, r := range h {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
				return errdefs.InvalidArgument("config.hostname %q holds %q: a hostname is letters, digits, '-', '_' and '.'", clip(h), r)
			}
		}
	}
	dns := cfg.GetDnsConfig()
	for i, s := range dns.GetServers() {
		if _, err := netip.ParseAddr(s); err != nil {
			return errdefs.InvalidArgument("config.dns_config.servers[%d] %q is not an IP address", i, clip(s))
		}
	}
	for i, s := range dns.GetSearches() {
		if why := badWord(s, maxDNSName); why != "" {
			return errdefs.InvalidArgument("config.dns_config.searches[%d] %q %s", i, clip(s), why)
		}
	}
	for i, s := range dns.GetOptions() {
		if why := badWord(s, maxDNSOption); why != "" {
			return errdefs.InvalidArgument("config.dns_config.options[%d] %q %s", i, clip(s), why)
		}
	}
	return nil
}

// badWord says what is wrong with a word: empty, longer than max, or
// holding whitespace or a control character; "" if nothing.
func badWord(s string, max int) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > max:
		return "is too long"
	case strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return "holds whitespace or a control character"
	}
	return ""
}

// checkHostIP validates a port mapping's host_ip: empty (every address) or
// an IP address.
func checkHostIP(i int, ip string) error {
	if ip == "" {
		return nil
	}
	if _, err := netip.ParseAddr(ip); err != nil {
		return errdefs.InvalidArgument("config.port_mappings[%d].host_ip %q is not an IP address", i, clip(ip))
	}
	return nil
}

// clip shortens a long input for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
