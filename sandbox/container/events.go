package container

import (
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/sandbox/events"
	"github.com/crib-runtime/crib/sandbox/store"
)

func (m *Manager) publish(t events.Type, v ContainerView) { m.hub.Publish(t, v.ID, v.PodID) }

// watchContainer follows the state file of container c (its shim's
// directory for it), and publishes its exit if it already happened.
func (m *Manager) watchContainer(c ContainerView) {
	dir := filepath.Dir(shimStatePath(store.PodDir(m.opts.RunDir, c.PodID), c.ID))
	if err := m.watcher.Add(dir); err != nil && !os.IsNotExist(err) {
		m.opts.Log.WithError(err).WithField("container", c.ID).Warn("cannot watch container state; its exit will show in status but not as an event")
	}
	if c.Shim.Status == shimapi.StatusStopped {
		m.publish(events.Stopped, c)
	}
}

// WatchAll follows the state file of every container, and publishes the
// exits that happened while cribd was down; start-up calls it once the
// records are loaded.
func (m *Manager) WatchAll() {
	for _, c := range m.containers.List() {
		m.watchContainer(m.containerView(c))
	}
}

// WatchExits publishes a Stopped event when a shim records a container's
// exit, until Close.
func (m *Manager) WatchExits() {
	for {
		select {
		case ev, ok := <-m.watcher.Events:
			if !ok {
				return
			}
			if filepath.Base(ev.Name) != shimapi.StateName || ev.Op&(fsnotify.Create|fsnotify.Write) == 0 {
				continue
			}
			c, err := m.lookupContainer(filepath.Base(filepath.Dir(ev.Name)))
			if err != nil {
				continue
			}
			if v := m.containerView(c); v.Shim.Status == shimapi.StatusStopped {
				m.publish(events.Stopped, v)
			}
		case err, ok := <-m.watcher.Errors:
			if !ok {
				return
			}
			m.opts.Log.WithError(err).Warn("container state watcher")
		}
	}
}
