package vxlan

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ipam"
)

// ipamPlugin is the IPAM plugin crib-vxlan delegates to.
const ipamPlugin = "host-local"

// ipamVersion is the spec version the delegate is called with: the
// network's, capped at 1.0.0, the newest that distributions' host-local
// (e.g. Debian 12's v1.1.1) speaks. The verbs used (ADD, DEL, CHECK) are
// the same in 1.1.0.
func (c *config) ipamVersion() string {
	if ok, _ := version.GreaterThanOrEqualTo(c.CNIVersion, "1.1.0"); ok {
		return "1.0.0"
	}
	return c.CNIVersion
}

// ipamConf is the network config handed to host-local: one range, the node
// subnet with its gateway, a default route, and the allocation directory.
func (c *config) ipamConf() ([]byte, error) {
	type rng struct {
		Subnet  string `json:"subnet"`
		Gateway string `json:"gateway"`
	}
	conf := map[string]any{
		"cniVersion": c.ipamVersion(),
		"name":       c.Name,
		"ipam": map[string]any{
			"type":    ipamPlugin,
			"ranges":  [][]rng{{{Subnet: c.subnet.Subnet.String(), Gateway: c.subnet.Gateway().IP.String()}}},
			"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			"dataDir": c.DataDir,
		},
	}
	b, err := json.Marshal(conf)
	if err != nil {
		return nil, fmt.Errorf("ipam config: %w", err)
	}
	return b, nil
}

// allocate runs host-local ADD and returns its result in the current version.
func (c *config) allocate() (*types100.Result, error) {
	conf, err := c.ipamConf()
	if err != nil {
		return nil, err
	}
	r, err := ipam.ExecAdd(ipamPlugin, conf)
	if err != nil {
		return nil, fmt.Errorf("ipam %s ADD: %w", ipamPlugin, err)
	}
	res, err := types100.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("ipam %s ADD: convert result: %w", ipamPlugin, err)
	}
	if len(res.IPs) == 0 {
		return nil, fmt.Errorf("ipam %s ADD: no IP address returned", ipamPlugin)
	}
	return res, nil
}

// release runs host-local DEL for the calling container (CNI_* environment).
func (c *config) release() error {
	conf, err := c.ipamConf()
	if err != nil {
		return err
	}
	if err := ipam.ExecDel(ipamPlugin, conf); err != nil {
		return fmt.Errorf("ipam %s DEL: %w", ipamPlugin, err)
	}
	return nil
}

// checkAllocation runs host-local CHECK for the calling container.
func (c *config) checkAllocation() error {
	conf, err := c.ipamConf()
	if err != nil {
		return err
	}
	if err := ipam.ExecCheck(ipamPlugin, conf); err != nil {
		return fmt.Errorf("ipam %s CHECK: %w", ipamPlugin, err)
	}
	return nil
}

// releaseFor runs host-local DEL for another attachment than the calling
// one (GC), with no network namespace.
func (c *config) releaseFor(ctx context.Context, a types.GCAttachment) error {
	conf, err := c.ipamConf()
	if err != nil {
		return err
	}
	path, err := invoke.FindInPath(ipamPlugin, filepath.SplitList(os.Getenv("CNI_PATH")))
	if err != nil {
		return fmt.Errorf("ipam: %w", err)
	}
	args := &invoke.Args{Command: "DEL", ContainerID: a.ContainerID, IfName: a.IfName, Path: os.Getenv("CNI_PATH")}
	if err := invoke.ExecPluginWithoutResult(ctx, path, conf, args, nil); err != nil {
		return fmt.Errorf("ipam %s DEL %s/%s: %w", ipamPlugin, a.ContainerID, a.IfName, err)
	}
	return nil
}

// allocations lists host-local's allocations of this network: one file per
// IP in <dataDir>/<name>/, holding "<container ID>\n<ifname>".
func (c *config) allocations() ([]types.GCAttachment, error) {
	dir := filepath.Join(c.DataDir, c.Name)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
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
			if os.IsNotExist(err) {
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
