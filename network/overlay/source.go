package overlay

import "context"

// PeerSource is where nodes find each other: each node publishes its own
// lease and reads everyone's. The lease directory (DirSource) serves tests
// and static clusters; KubeSource reads Node objects (spec.podCIDR and
// flannel's annotations) and publishes through this node's annotations.
type PeerSource interface {
	// Publish makes this node's lease visible to the other nodes,
	// replacing the node's previous lease.
	Publish(ctx context.Context, own Lease) error
	// Leases returns every node's current lease, this node's included.
	// Malformed entries are left out (and logged), never fatal.
	Leases(ctx context.Context) ([]Lease, error)
	// Changes signals (coalesced) that Leases may have changed. It is
	// closed by Close.
	Changes() <-chan struct{}
	// Close stops watching.
	Close() error
}

// HealthReporter is a PeerSource that can be unusable between calls: a
// watch of an API server that cannot be reached, or credentials that do
// not load. Manager.Ready asks it first, so NetworkReady carries the
// source's reason while cribd keeps serving. A source without it is
// judged by its calls' errors alone.
type HealthReporter interface {
	// Healthy returns nil when the source can be used, else why not.
	Healthy() error
}

// SubnetSource is a PeerSource that knows this node's subnet (for
// KubeSource, the Node's spec.podCIDR). The Manager takes it at every
// reconcile, as it takes kubelet's pod CIDR through SetPodCIDR; both
// carry the same value, the one the controller-manager assigned.
type SubnetSource interface {
	// NodeSubnet returns this node's subnet as a CIDR, or "" and why it
	// is not known yet.
	NodeSubnet() (cidr, why string)
}
