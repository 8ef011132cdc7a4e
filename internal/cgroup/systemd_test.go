package cgroup

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/godbus/dbus/v5"
)

func TestConnClosed(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"godbus closed", dbus.ErrClosed, true},
		{"godbus closed, wrapped", fmt.Errorf("stop x.scope: %w", dbus.ErrClosed), true},
		// What a call in flight on a connection closed under it returned
		// in the VM lane's benchmark.
		{"socket closed under a call", fmt.Errorf("stop x.scope: %w", &net.OpError{
			Op: "read", Net: "unix", Addr: &net.UnixAddr{Name: "/run/dbus/system_bus_socket", Net: "unix"},
			Err: net.ErrClosed,
		}), true},
		{"no such unit", dbus.Error{Name: "org.freedesktop.systemd1.NoSuchUnit"}, false},
		{"other", os.ErrPermission, false},
		{"timeout", errors.New("context deadline exceeded"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := connClosed(tc.err); got != tc.want {
				t.Errorf("connClosed(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
