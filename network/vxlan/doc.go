// Package vxlan is the logic of crib-vxlan, crib's CNI plugin for the node
// side of a VXLAN overlay (the data plane flannel builds).
//
// Per node the overlay is: a bridge (cni0) holding the node subnet's gateway,
// one veth per pod attached to it, host-local IPAM over the node subnet (its
// allocator and store, in-process), and a default route in each pod via the
// gateway. What belongs to the node, not to a pod, is not the plugin's:
// cribd's overlay manager (network/overlay) programs the VTEP (flannel.1),
// the routes to other nodes and the masquerade of pod traffic leaving the
// cluster network (an nftables table), and writes the node subnet into a
// subnet file (flannel's subnet.env format) that the plugin reads on every
// call. So ADD and DEL start no process: netlink, a few files and a lock.
//
// The plugin implements ADD, DEL, CHECK, STATUS and GC of CNI spec 1.1 and
// serialises its calls on one node with a file lock. ADD is idempotent, DEL
// of an unknown container succeeds.
package vxlan
