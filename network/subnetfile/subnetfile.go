// Package subnetfile reads and writes the node subnet file that the overlay
// manager in cribd writes and the crib-vxlan CNI plugin reads: the one
// contract between the two, so neither imports the other.
package subnetfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Subnet is what the subnet file holds: the node's share of the cluster
// network. Its file format is flannel's subnet.env, so tools that read that
// file read this one:
//
//	FLANNEL_NETWORK=10.244.0.0/16
//	FLANNEL_SUBNET=10.244.1.1/24
//	FLANNEL_MTU=1450
//	FLANNEL_IPMASQ=true
type Subnet struct {
	// Network is the cluster network every node subnet is part of.
	Network *net.IPNet
	// Subnet is this node's subnet (network address, e.g. 10.244.1.0/24).
	Subnet *net.IPNet
	// MTU is the pods' MTU: the underlay's minus the VXLAN overhead.
	MTU int
	// IPMasq says whether pod traffic leaving Network is masqueraded.
	IPMasq bool
}

// Gateway is the node subnet's first address (10.244.N.1), held by the bridge.
func (s Subnet) Gateway() *net.IPNet {
	gw := ip4(s.Subnet.IP)
	gw[3]++
	return &net.IPNet{IP: gw, Mask: s.Subnet.Mask}
}

// Validate checks that the node subnet is an IPv4 subnet inside the cluster
// network with room for a gateway and pods.
func (s Subnet) Validate() error {
	if s.Network == nil || s.Subnet == nil {
		return errors.New("subnet: network and subnet are required")
	}
	if s.Network.IP.To4() == nil || s.Subnet.IP.To4() == nil {
		return fmt.Errorf("subnet: %s in %s: only IPv4 is supported", s.Subnet, s.Network)
	}
	nOnes, _ := s.Network.Mask.Size()
	sOnes, _ := s.Subnet.Mask.Size()
	if !s.Network.Contains(s.Subnet.IP) || sOnes < nOnes {
		return fmt.Errorf("subnet: %s is not inside the cluster network %s", s.Subnet, s.Network)
	}
	if sOnes > 30 {
		return fmt.Errorf("subnet: %s is too small for a gateway and pods", s.Subnet)
	}
	if s.MTU < 576 || s.MTU > 65535 {
		return fmt.Errorf("subnet: MTU %d is out of range", s.MTU)
	}
	return nil
}

// Read parses a subnet file. A missing file wraps os.ErrNotExist.
func Read(path string) (Subnet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Subnet{}, fmt.Errorf("read subnet file: %w", err)
	}
	s, err := parseSubnet(data)
	if err != nil {
		return Subnet{}, fmt.Errorf("subnet file %s: %w", path, err)
	}
	return s, nil
}

func parseSubnet(data []byte) (Subnet, error) {
	var s Subnet
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return s, fmt.Errorf("line %q is not KEY=VALUE", line)
		}
		var err error
		switch key {
		case "FLANNEL_NETWORK":
			_, s.Network, err = net.ParseCIDR(val)
		case "FLANNEL_SUBNET":
			_, s.Subnet, err = net.ParseCIDR(val)
		case "FLANNEL_MTU":
			s.MTU, err = strconv.Atoi(val)
		case "FLANNEL_IPMASQ":
			s.IPMasq, err = strconv.ParseBool(val)
		}
		if err != nil {
			return s, fmt.Errorf("%s: %w", key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	return s, s.Validate()
}

// Write writes s to path atomically (temp file, fsync, rename).
func Write(path string, s Subnet) error {
	if err := s.Validate(); err != nil {
		return err
	}
	gwOnes, _ := s.Subnet.Mask.Size()
	body := fmt.Sprintf("FLANNEL_NETWORK=%s\nFLANNEL_SUBNET=%s/%d\nFLANNEL_MTU=%d\nFLANNEL_IPMASQ=%t\n",
		s.Network, s.Gateway().IP, gwOnes, s.MTU, s.IPMasq)
	return writeFileAtomic(path, []byte(body), 0o644)
}

// writeFileAtomic replaces path with data so readers see the old or the new
// file, never a torn one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ip4 returns a copy of the 4-byte form of ip.
func ip4(ip net.IP) net.IP {
	return append(net.IP(nil), ip.To4()...)
}
