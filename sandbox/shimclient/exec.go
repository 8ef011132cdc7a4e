package shimclient

import (
	"context"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	shimapi "github.com/crib-runtime/crib/api/shim"
)

// Exec runs args in container id and waits for it (see shimapi.ExecRequest).
func (c *Client) Exec(ctx context.Context, req *shimapi.ExecRequest) (*shimapi.ExecResponse, error) {
	resp := new(shimapi.ExecResponse)
	if err := c.call(ctx, shimapi.MethodExec, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// ReopenLog makes the shim reopen container id's log file, which kubelet
// has just renamed for rotation.
func (c *Client) ReopenLog(ctx context.Context, id string) error {
	return c.call(ctx, shimapi.MethodReopen, &shimapi.IDRequest{ID: id}, &shimapi.Empty{})
}

// Checkpoint dumps a running container through CRIU and leaves it running.
func (c *Client) Checkpoint(ctx context.Context, req *shimapi.CheckpointRequest) error {
	return c.call(ctx, shimapi.MethodCheckpoint, req, &shimapi.Empty{})
}

// Update applies new cgroup resources to container id.
func (c *Client) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	return c.call(ctx, shimapi.MethodUpdate, &shimapi.UpdateRequest{ID: id, Resources: res}, &shimapi.Empty{})
}
