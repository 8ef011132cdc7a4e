// Package vxlan is the logic of crib-vxlan, crib's CNI plugin for the node
// side of a VXLAN overlay (the data plane flannel builds).
//
// Per node the overlay is: a bridge (cni0) holding the node subnet's gateway,
// one veth per pod attached to it, host-local IPAM over the node subnet, a
// default route in each pod via the gateway, and masquerade for pod traffic
// leaving the cluster network. The VTEP (flannel.1) and the routes to other
// nodes are not the plugin's: cribd's overlay manager (network/overlay)
// programs them and writes the node subnet into a subnet file
// (flannel's subnet.env format) that the plugin reads on every call.
//
// The plugin implements ADD, DEL, CHECK, STATUS and GC of CNI spec 1.1 and
// serialises its calls on one node with a file lock. ADD is idempotent, DEL
// of an unknown container succeeds.
package vxlan
