package vxlan

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/crib-runtime/crib/network/subnetfile"
)

// Defaults of the network config keys.
const (
	DefaultBridge     = "cni0"
	DefaultSubnetFile = "/run/crib/overlay/subnet.env"
	DefaultDataDir    = "/var/lib/cni/networks"
)

// placeholderSubnet stands in for the node subnet when DEL or GC runs and
// the subnet file is gone: host-local needs some range to start, but
// releasing by container ID never looks at it. No traffic ever uses it.
var placeholderSubnet = subnetfile.Subnet{
	Network: &net.IPNet{IP: net.IPv4(192, 0, 2, 0).To4(), Mask: net.CIDRMask(24, 32)},
	Subnet:  &net.IPNet{IP: net.IPv4(192, 0, 2, 0).To4(), Mask: net.CIDRMask(24, 32)},
	MTU:     1450,
}

// NetConf is crib-vxlan's network config:
//
//	{"cniVersion": "1.1.0", "name": "crib", "type": "crib-vxlan",
//	 "bridge": "cni0", "subnetFile": "/run/crib/overlay/subnet.env",
//	 "dataDir": "/var/lib/cni/networks", "mtu": 0, "hairpinMode": true}
type NetConf struct {
	types.PluginConf
	// Bridge is the node bridge holding the subnet's gateway.
	Bridge string `json:"bridge"`
	// SubnetFile is the node's subnet.env, written by cribd's overlay manager.
	SubnetFile string `json:"subnetFile"`
	// DataDir is host-local's allocation directory.
	DataDir string `json:"dataDir"`
	// MTU, if set, overrides the subnet file's MTU.
	MTU int `json:"mtu,omitempty"`
	// HairpinMode lets a pod reach itself through a service address.
	HairpinMode *bool `json:"hairpinMode,omitempty"`
	// An "ipMasq" key, which crib-vxlan before issue 17 read, is ignored:
	// the masquerade is the node's, programmed by cribd's overlay manager
	// (its subnet file says FLANNEL_IPMASQ=true, as flanneld's does when
	// flanneld masquerades).
}

// config is a loaded NetConf with the subnet file applied.
type config struct {
	NetConf
	subnet subnetfile.Subnet
	// subnetErr says why the subnet file could not be used; only ADD,
	// CHECK and STATUS need it.
	subnetErr error
	mtu       int
	hairpin   bool
}

// loadConfig sets defaults, unmarshals stdin, reads the subnet file and
// validates, in that order. A missing or bad subnet file is recorded in
// subnetErr (with a placeholder subnet), not returned, so DEL and GC still
// work without it.
func loadConfig(stdin []byte) (*config, error) {
	c := &config{NetConf: NetConf{Bridge: DefaultBridge, SubnetFile: DefaultSubnetFile, DataDir: DefaultDataDir}}
	if err := json.Unmarshal(stdin, &c.NetConf); err != nil {
		return nil, fmt.Errorf("parse network config: %w", err)
	}
	if err := version.ParsePrevResult(&c.PluginConf); err != nil {
		return nil, fmt.Errorf("parse prevResult: %w", err)
	}
	switch {
	case c.Name == "":
		return nil, errors.New("network config: name is required")
	case c.Bridge == "" || len(c.Bridge) > 15:
		return nil, fmt.Errorf("network config: bridge %q is not a valid interface name", c.Bridge)
	case !filepath.IsAbs(c.SubnetFile):
		return nil, fmt.Errorf("network config: subnetFile %q is not an absolute path", c.SubnetFile)
	case !filepath.IsAbs(c.DataDir):
		return nil, fmt.Errorf("network config: dataDir %q is not an absolute path", c.DataDir)
	case c.MTU < 0:
		return nil, fmt.Errorf("network config: mtu %d is negative", c.MTU)
	case c.IPAM.Type != "" && c.IPAM.Type != "host-local":
		return nil, fmt.Errorf("network config: ipam type %q: crib-vxlan runs host-local's allocator only", c.IPAM.Type)
	}
	c.subnet, c.subnetErr = subnetfile.Read(c.SubnetFile)
	if c.subnetErr != nil {
		if errors.Is(c.subnetErr, os.ErrNotExist) {
			c.subnetErr = fmt.Errorf("node subnet not known yet: %s does not exist (cribd writes it once it has the node's pod CIDR)", c.SubnetFile)
		}
		c.subnet = placeholderSubnet
	}
	c.mtu = c.subnet.MTU
	if c.MTU > 0 {
		c.mtu = c.MTU
	}
	c.hairpin = c.HairpinMode == nil || *c.HairpinMode
	return c, nil
}

// lockPath is the node-wide lock of this network's plugin calls.
func (c *config) lockPath() string {
	return filepath.Join(c.DataDir, "crib-vxlan-"+c.Name+".lock")
}
