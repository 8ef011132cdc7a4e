package sandbox

import "github.com/crib-runtime/crib/sandbox/shimclient"

// ShimConn is what the sandbox manager asks of a pod's crib-shim.
type ShimConn = shimclient.Conn

// ShimLauncher starts and reaches pods' crib-shims. The default is
// sandbox/shimclient's, running Options.ShimBinary; unit tests give a fake.
type ShimLauncher = shimclient.Launcher
