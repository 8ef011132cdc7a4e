package vxlan

import (
	"fmt"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

// CmdStatus reports whether the plugin can ADD: the node subnet is known
// and host-local's directory can be created. Otherwise it answers CNI error
// 50 (plugin not available) with the reason.
func CmdStatus(args *skel.CmdArgs) error {
	c, err := loadConfig(args.StdinData)
	if err != nil {
		return err
	}
	if c.subnetErr != nil {
		return types.NewError(types.ErrPluginNotAvailable, "node subnet unknown", c.subnetErr.Error())
	}
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "ipam data dir unusable", fmt.Sprintf("%s: %v", c.DataDir, err))
	}
	return nil
}
