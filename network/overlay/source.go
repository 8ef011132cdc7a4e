package overlay

import "context"

// PeerSource is where nodes find each other: each node publishes its own
// lease and reads everyone's. The lease directory (DirSource) is the first
// implementation; a Kubernetes one would read Node objects (spec.podCIDR and
// flannel's backend-data and public-ip annotations) and publish through
// this node's annotations.
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
