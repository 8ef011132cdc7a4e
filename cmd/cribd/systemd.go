package main

import (
	"net"
	"sync"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"
)

// cribd as a systemd service (scripts/crib.service, Type=notify): it tells
// the service manager READY=1 once the CRI socket serves, so units ordered
// after crib (kubelet) start only when their first call is answered, and
// STOPPING=1 when it begins to shut down. Outside systemd (no
// NOTIFY_SOCKET) both are no-ops.

// sdNotify sends state to the service manager, if there is one. A failure
// is logged, not returned: the service manager's bookkeeping is no reason
// to stop serving pods.
func sdNotify(log logrus.FieldLogger, state string) {
	// The variable stays set: cribd sends more than one state.
	sent, err := daemon.SdNotify(false, state)
	switch {
	case err != nil:
		log.WithError(err).WithField("state", state).Warn("notifying systemd")
	case sent:
		log.WithField("state", state).Debug("notified systemd")
	}
}

// readyListener calls ready on its first Accept. grpc.Server.Serve calls
// Accept once it serves, so ready runs when a client's call would be
// answered, not merely when the socket exists.
type readyListener struct {
	net.Listener
	once  sync.Once
	ready func()
}

// Accept runs ready the first time, then accepts as the listener does.
func (l *readyListener) Accept() (net.Conn, error) {
	l.once.Do(l.ready)
	return l.Listener.Accept()
}
