package cgroup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// Units is the part of systemd's D-Bus API crib uses for pod parents and
// scopes; unit tests give a fake.
type Units interface {
	// Active reports whether unit is active (or activating).
	Active(ctx context.Context, unit string) (bool, error)
	// StartSlice starts slice as a transient unit; systemd starts the
	// slices above it with it.
	StartSlice(ctx context.Context, slice string) error
	// Stop stops unit, killing what runs in it, and resets it if it
	// failed, so that systemd forgets it. A unit systemd does not know is
	// stopped already.
	Stop(ctx context.Context, unit string) error
}

// CheckDriver reports why driver d cannot run on this host. booted is
// sd_booted(3): whether systemd is PID 1 (/run/systemd/system is a
// directory); cribd passes opencontainers/cgroups/systemd.IsRunningSystemd.
// The error names the config key.
func CheckDriver(d Driver, booted func() bool) error {
	switch d {
	case Cgroupfs:
		return nil
	case Systemd:
		if !booted() {
			return fmt.Errorf(`key "runtime.cgroup_driver": "systemd" needs systemd as the init system (PID 1), and this host was not booted with it (/run/systemd/system is not a directory): use "cgroupfs"`)
		}
		return nil
	}
	return fmt.Errorf(`key "runtime.cgroup_driver": %q is not one of cgroupfs, systemd`, d)
}

// DBus talks to systemd on the system bus, over one connection made at
// first use and made again if the bus drops it (systemctl daemon-reexec,
// a dbus restart).
type DBus struct {
	mu   sync.Mutex
	conn *sddbus.Conn
}

// Ping checks that systemd answers on the system bus.
func (b *DBus) Ping(ctx context.Context) error {
	return b.do(ctx, func(c *sddbus.Conn) error {
		_, err := c.GetManagerProperty("Version")
		return err
	})
}

// Close drops the connection.
func (b *DBus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		b.conn.Close()
		b.conn = nil
	}
}

// do runs f on the connection, connecting first and once more if the
// connection turns out closed.
func (b *DBus) do(ctx context.Context, f func(*sddbus.Conn) error) error {
	for try := 0; ; try++ {
		b.mu.Lock()
		if b.conn == nil || !b.conn.Connected() {
			c, err := sddbus.NewSystemConnectionContext(ctx)
			if err != nil {
				b.mu.Unlock()
				return fmt.Errorf("connect to systemd over D-Bus: %w", err)
			}
			b.conn = c
		}
		c := b.conn
		b.mu.Unlock()
		err := f(c)
		if try == 0 && connClosed(err) {
			b.mu.Lock()
			if b.conn == c {
				c.Close()
				b.conn = nil
			}
			b.mu.Unlock()
			continue
		}
		return err
	}
}

// connClosed tells whether err says the bus connection is gone: godbus's
// ErrClosed, or the socket's own error for a call that was in flight when
// the connection was closed under it (by another call's reconnect, since
// the connection is shared).
func connClosed(err error) bool {
	return errors.Is(err, dbus.ErrClosed) || errors.Is(err, net.ErrClosed)
}

// Active implements Units.
func (b *DBus) Active(ctx context.Context, unit string) (bool, error) {
	var state string
	err := b.do(ctx, func(c *sddbus.Conn) error {
		p, err := c.GetUnitPropertyContext(ctx, unit, "ActiveState")
		if err != nil {
			return err
		}
		state, _ = p.Value.Value().(string)
		return nil
	})
	if isNoSuchUnit(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state of %s: %w", unit, err)
	}
	return state == "active" || state == "activating" || state == "reloading", nil
}

// StartSlice implements Units.
func (b *DBus) StartSlice(ctx context.Context, slice string) error {
	props := []sddbus.Property{
		sddbus.PropDescription("crib pod cgroup parent"),
		{Name: "DefaultDependencies", Value: dbus.MakeVariant(false)},
	}
	err := b.job(ctx, "start "+slice, func(c *sddbus.Conn, ch chan<- string) error {
		_, err := c.StartTransientUnitContext(ctx, slice, "replace", props, ch)
		return err
	})
	if isDBusError(err, "org.freedesktop.systemd1.UnitExists") {
		// Loaded but inactive (a unit file, or a slice systemd made
		// implicitly): start it as it is.
		err = b.job(ctx, "start "+slice, func(c *sddbus.Conn, ch chan<- string) error {
			_, err := c.StartUnitContext(ctx, slice, "replace", ch)
			return err
		})
	}
	return err
}

// Stop implements Units.
func (b *DBus) Stop(ctx context.Context, unit string) error {
	err := b.job(ctx, "stop "+unit, func(c *sddbus.Conn, ch chan<- string) error {
		_, err := c.StopUnitContext(ctx, unit, "replace", ch)
		return err
	})
	if err != nil && !isNoSuchUnit(err) {
		return err
	}
	// A scope whose processes were killed by the OOM killer ends failed
	// and would stay listed until reset.
	err = b.do(ctx, func(c *sddbus.Conn) error { return c.ResetFailedUnitContext(ctx, unit) })
	if err != nil && !isNoSuchUnit(err) && !isDBusError(err, "org.freedesktop.systemd1.UnitNotFailed") {
		return fmt.Errorf("reset %s: %w", unit, err)
	}
	return nil
}

// job queues a systemd job through f and waits for its result.
func (b *DBus) job(ctx context.Context, what string, f func(*sddbus.Conn, chan<- string) error) error {
	ch := make(chan string, 1)
	if err := b.do(ctx, func(c *sddbus.Conn) error { return f(c, ch) }); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("%s: systemd job result %q", what, res)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

func isNoSuchUnit(err error) bool {
	return isDBusError(err, "org.freedesktop.systemd1.NoSuchUnit") || isDBusError(err, "org.freedesktop.systemd1.LoadFailed")
}

func isDBusError(err error, name string) bool {
	var derr dbus.Error
	if errors.As(err, &derr) {
		return strings.Contains(derr.Name, name)
	}
	return false
}
