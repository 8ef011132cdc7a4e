package service

import (
	"encoding/json"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/shim/rpc"
)

// Server returns the RPC server of s's methods. A successful Shutdown
// closes Exit once its reply is written.
func (s *Shim) Server() *rpc.Server {
	return rpc.NewServer(s.handlers(), func(method string, err error) {
		if method == shimapi.MethodShutdown && err == nil {
			s.RequestExit()
		}
	})
}

// handlers serves every RPC method of Shim; a method missing here answers
// "can't find method" (TestRPCHandlersCoverShim catches that).
func (s *Shim) handlers() map[string]rpc.Handler {
	create := rpc.Method(s.Create)
	return map[string]rpc.Handler{
		shimapi.MethodCreate: func(params json.RawMessage) (any, error) {
			// The new container's init will be moved into its cgroups
			// soon: start paying the kernel's wait for that now (see
			// WarmAttach).
			WarmAttach()
			return create(params)
		},
		shimapi.MethodStart:      rpc.Method(s.Start),
		shimapi.MethodKill:       rpc.Method(s.Kill),
		shimapi.MethodState:      rpc.Method(s.State),
		shimapi.MethodDelete:     rpc.Method(s.Delete),
		shimapi.MethodShutdown:   rpc.Method(s.Shutdown),
		shimapi.MethodExec:       rpc.Method(s.Exec),
		shimapi.MethodUpdate:     rpc.Method(s.Update),
		shimapi.MethodReopen:     rpc.Method(s.ReopenLog),
		shimapi.MethodCheckpoint: rpc.Method(s.Checkpoint),
		// ExecStart's reply carries descriptors: the server sends them.
		shimapi.MethodExecStart: rpc.Method(s.ExecStart),
		shimapi.MethodExecWait:  rpc.Method(s.ExecWait),
		// Attach's reply carries descriptors too.
		shimapi.MethodAttach: rpc.Method(s.Attach),
		shimapi.MethodResize: rpc.Method(s.Resize),
	}
}
