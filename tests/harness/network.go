package harness

import (
	"fmt"
	"os"
)

// Network is the bridge and /24 one test binary's cribd instances use.
// Each binary picks its own (from its PID), so that the integration tests,
// the end-to-end tests, critest and the benchmarks can run at once on one
// machine without sharing addresses. Tests within one binary run one at a
// time.
type Network struct {
	Octet  int    // N
	Bridge string // "cribit<N>"
	Prefix string // "10.88.<N>."
	Subnet string // "10.88.<N>.0/24"
}

// PerProcessNetwork picks the bridge <name><N> and 10.88.<N>.0/24 with N
// in [base, base+span), from this process's PID.
func PerProcessNetwork(name string, base, span int) Network {
	n := base + os.Getpid()%span
	prefix := fmt.Sprintf("10.88.%d.", n)
	return Network{Octet: n, Bridge: fmt.Sprintf("%s%d", name, n), Prefix: prefix, Subnet: prefix + "0/24"}
}

// DefaultNetwork is the integration tests' range, 10.88.100-249 (e2e uses
// 50-89, critest 10-49).
func DefaultNetwork() Network { return PerProcessNetwork("cribit", 100, 150) }

// DefaultConflist is the bridge network every cribd gets unless Options
// says otherwise; placeholders as Options.ConfFiles.
const DefaultConflist = `{
  "cniVersion": "1.0.0",
  "name": "cribit",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "@BRIDGE@",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "@SUBNET@"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "@IPAM_DIR@"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`
