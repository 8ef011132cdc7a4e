// Command crib-vxlan is crib's CNI plugin for a VXLAN overlay node: it puts
// pods on the node bridge with an address of the node subnet (see
// network/vxlan). It speaks CNI spec 0.3.0 to 1.1.0: ADD, DEL, CHECK,
// STATUS and GC.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	cniversion "github.com/containernetworking/cni/pkg/version"

	"github.com/crib-runtime/crib/network/vxlan"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    vxlan.CmdAdd,
		Del:    vxlan.CmdDel,
		Check:  vxlan.CmdCheck,
		Status: vxlan.CmdStatus,
		GC:     vxlan.CmdGC,
	}, cniversion.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"), "crib-vxlan "+version)
}
