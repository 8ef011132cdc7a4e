package pod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
)

// CheckPodReady returns nil if pod id exists and is ready; NotFound or
// FailedPrecondition otherwise.
func (m *Pods) CheckPodReady(id string) error {
	v, err := m.Get(id)
	if err != nil {
		return err
	}
	if !v.Ready {
		return errdefs.FailedPrecondition("pod sandbox %s is not ready", v.ID)
	}
	return nil
}

// DialPod opens a TCP connection to localhost:port inside a ready pod's
// network namespace (on the host for host-network pods), trying IPv4 then
// IPv6 loopback.
func (m *Pods) DialPod(ctx context.Context, podID string, port int32) (net.Conn, error) {
	if port <= 0 || port > 65535 {
		return nil, errdefs.InvalidArgument("port %d is out of range", port)
	}
	v, err := m.Get(podID)
	if err != nil {
		return nil, err
	}
	if !v.Ready {
		return nil, errdefs.FailedPrecondition("pod sandbox %s is not ready", v.ID)
	}
	dial := func() (net.Conn, error) {
		var d net.Dialer
		var errs []error
		for _, host := range []string{"127.0.0.1", "::1"} {
			conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
			if err == nil {
				return conn, nil
			}
			errs = append(errs, err)
			if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENETUNREACH) {
				break
			}
		}
		return nil, errors.Join(errs...)
	}
	if v.NetworkMode == state.NamespaceNode || v.NetNSPath == "" {
		conn, err := dial()
		if err != nil {
			return nil, fmt.Errorf("port-forward to pod %s port %d: %w", v.ID, port, err)
		}
		return conn, nil
	}
	netns, err := ns.GetNS(v.NetNSPath)
	if err != nil {
		return nil, fmt.Errorf("port-forward to pod %s: open netns: %w", v.ID, err)
	}
	defer netns.Close()
	var conn net.Conn
	// The socket belongs to the namespace it was created in: it stays
	// there once Do switches the thread back.
	err = netns.Do(func(ns.NetNS) error {
		var derr error
		conn, derr = dial()
		return derr
	})
	if err != nil {
		return nil, fmt.Errorf("port-forward to pod %s port %d: %w", v.ID, port, err)
	}
	return conn, nil
}

// PortForward copies between stream and localhost:port in the pod's network
// namespace until either side closes.
func (m *Pods) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	conn, err := m.DialPod(ctx, podID, port)
	if err != nil {
		return err
	}
	defer conn.Close()
	toPod, fromPod := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, stream)
		// The client is done sending: let the server see EOF, and keep
		// copying its answer.
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		toPod <- err
	}()
	go func() {
		_, err := io.Copy(stream, conn)
		fromPod <- err
	}()
	// The server closing ends the forward; the client closing only ends
	// its direction.
	select {
	case err = <-fromPod:
	case err = <-toPod:
		if err == nil {
			select {
			case err = <-fromPod:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("port-forward to pod %s port %d: %w", podID, port, err)
	}
	return nil
}
