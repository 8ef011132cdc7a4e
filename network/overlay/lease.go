package overlay

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
)

// Lease is one node's place in the overlay: what every other node needs to
// reach its pods.
type Lease struct {
	// Name is the node's name, unique in the cluster.
	Name string `json:"name"`
	// PublicIP is the node's underlay address, the VXLAN packets' destination.
	PublicIP net.IP `json:"publicIP"`
	// Subnet is the node's pod subnet (e.g. 10.244.2.0/24).
	Subnet *net.IPNet `json:"-"`
	// VtepMAC is the MAC address of the node's VTEP.
	VtepMAC net.HardwareAddr `json:"-"`
}

// leaseJSON is Lease on disk: CIDR and MAC as strings.
type leaseJSON struct {
	Name     string `json:"name"`
	PublicIP string `json:"publicIP"`
	Subnet   string `json:"subnet"`
	VtepMAC  string `json:"vtepMAC"`
	Backend  string `json:"backend"`
}

// isNodeName reports whether s is a DNS subdomain as Kubernetes names
// nodes: at most 253 of [-a-z0-9.], starting and ending alphanumeric. Not
// a regexp: a package-level one is compiled at every start of cribd and of
// each re-exec of it that unpacks a layer (docs/architecture.md,
// "Measurements behind the shim's design").
func isNodeName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	for i := 0; i < len(s); i++ {
		if c := s[i]; !alnum(c) && ((c != '-' && c != '.') || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

// Validate checks that every field is set and well formed.
func (l Lease) Validate() error {
	switch {
	case !isNodeName(l.Name):
		return fmt.Errorf("lease: node name %q is not a DNS subdomain", l.Name)
	case l.PublicIP.To4() == nil:
		return fmt.Errorf("lease %s: public IP %v is not IPv4", l.Name, l.PublicIP)
	case l.Subnet == nil || l.Subnet.IP.To4() == nil:
		return fmt.Errorf("lease %s: no IPv4 subnet", l.Name)
	case len(l.VtepMAC) != 6:
		return fmt.Errorf("lease %s: VTEP MAC %q is not a MAC-48", l.Name, l.VtepMAC)
	}
	return nil
}

// Equal reports whether two leases say the same.
func (l Lease) Equal(o Lease) bool {
	return l.Name == o.Name && l.PublicIP.Equal(o.PublicIP) &&
		l.Subnet.String() == o.Subnet.String() && l.VtepMAC.String() == o.VtepMAC.String()
}

// MarshalJSON writes the lease as {"name", "publicIP", "subnet", "vtepMAC", "backend"}.
func (l Lease) MarshalJSON() ([]byte, error) {
	j := leaseJSON{Name: l.Name, PublicIP: l.PublicIP.String(), VtepMAC: l.VtepMAC.String(), Backend: "vxlan"}
	if l.Subnet != nil {
		j.Subnet = l.Subnet.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes and validates it.
func (l *Lease) UnmarshalJSON(b []byte) error {
	var j leaseJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.Backend != "" && j.Backend != "vxlan" {
		return fmt.Errorf("lease %s: backend %q is not vxlan", j.Name, j.Backend)
	}
	out := Lease{Name: j.Name, PublicIP: net.ParseIP(j.PublicIP)}
	if j.Subnet != "" {
		_, sn, err := net.ParseCIDR(j.Subnet)
		if err != nil {
			return fmt.Errorf("lease %s: subnet: %w", j.Name, err)
		}
		out.Subnet = sn
	}
	if j.VtepMAC != "" {
		mac, err := net.ParseMAC(j.VtepMAC)
		if err != nil {
			return fmt.Errorf("lease %s: vtepMAC: %w", j.Name, err)
		}
		out.VtepMAC = mac
	}
	if out.PublicIP == nil {
		return errors.New("lease: publicIP missing or not an address")
	}
	*l = out
	return l.Validate()
}
