package vxlan

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/allocator"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/disk"
)

// IPAM is host-local's, run in the plugin's own process: its allocator and
// its on-disk store (github.com/containernetworking/plugins, the module the
// host-local binary is built from), over the same directory
// <dataDir>/<network name>/ and file format ("<container ID>\r\n<ifname>"
// in a file named by the address) and under the same lock, so allocations
// made by the host-local binary, which crib-vxlan exec'd before issue 17,
// are released and kept as before, and ADD and DEL start no process.

// store opens host-local's store of this network; the caller closes it.
func (c *config) store() (*disk.Store, error) {
	s, err := disk.New(c.Name, c.DataDir)
	if err != nil {
		return nil, fmt.Errorf("ipam: store %s: %w", filepath.Join(c.DataDir, c.Name), err)
	}
	return s, nil
}

// rangeSet is the one range addresses come from: the node subnet, without
// its network address, gateway and broadcast address.
func (c *config) rangeSet() (allocator.RangeSet, error) {
	rs := allocator.RangeSet{{Subnet: types.IPNet(*c.subnet.Subnet), Gateway: c.subnet.Gateway().IP}}
	if err := rs.Canonicalize(); err != nil {
		return nil, fmt.Errorf("ipam: range %s: %w", c.subnet.Subnet, err)
	}
	return rs, nil
}

// allocate reserves an address of the node subnet for the attachment (id,
// ifName), round robin as host-local does.
func (c *config) allocate(id, ifName string) (*types100.IPConfig, error) {
	rs, err := c.rangeSet()
	if err != nil {
		return nil, err
	}
	s, err := c.store()
	if err != nil {
		return nil, err
	}
	defer s.Close()
	ipc, err := allocator.NewIPAllocator(&rs, s, 0).Get(id, ifName, nil)
	if err != nil {
		return nil, fmt.Errorf("ipam: allocate in %s: %w", c.subnet.Subnet, err)
	}
	return ipc, nil
}

// release frees every address of the attachment (id, ifName); none is no
// error.
func (c *config) release(id, ifName string) error {
	s, err := c.store()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Lock(); err != nil {
		return fmt.Errorf("ipam: lock: %w", err)
	}
	defer s.Unlock()
	if err := s.ReleaseByID(id, ifName); err != nil {
		return fmt.Errorf("ipam: release %s/%s: %w", id, ifName, err)
	}
	return nil
}

// checkAllocation verifies that the attachment (id, ifName) holds an
// address.
func (c *config) checkAllocation(id, ifName string) error {
	s, err := c.store()
	if err != nil {
		return err
	}
	defer s.Close()
	if !s.FindByID(id, ifName) {
		return fmt.Errorf("ipam: no address allocated to %s/%s", id, ifName)
	}
	return nil
}

// allocations lists host-local's allocations of this network: one file per
// IP in <dataDir>/<name>/, holding "<container ID>\r\n<ifname>" (or, from
// host-local before v0.7, the container ID alone).
func (c *config) allocations() ([]types.GCAttachment, error) {
	dir := filepath.Join(c.DataDir, c.Name)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list allocations: %w", err)
	}
	var out []types.GCAttachment
	for _, e := range ents {
		if e.IsDir() || net.ParseIP(e.Name()) == nil {
			continue // lock, last_reserved_ip.N, ...
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("list allocations: %w", err)
		}
		lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
		a := types.GCAttachment{ContainerID: strings.TrimSpace(lines[0])}
		if len(lines) > 1 {
			a.IfName = strings.TrimSpace(lines[1])
		}
		if a.ContainerID != "" {
			out = append(out, a)
		}
	}
	return out, nil
}
